"""The one training engine every stegafast model family uses.

A family describes its training as a ``Task``; the engine owns the loop:
automatic mixed precision (bf16/fp16 autocast, fp16 loss scaling), gradient
accumulation and clipping, learning-rate schedules, atomic checkpoints that
resume bit for bit, best-k checkpoint selection, multi-process data parallelism
under torchrun (DistributedDataParallel: NCCL on GPUs, gloo on CPUs), data
loading with reproducible seeding, a progress bar and metric logs.

The task interface
------------------
``Task`` subclasses set ``name`` (it identifies the model in checkpoints) and
implement:

- ``build_models()``: a module, or a dict name -> module;
- ``build_optimizers(models, config)``: an optimiser, or a dict name ->
  optimiser or ``OptimizerSpec(optimizer, schedule=, clip_norm=, outside_forward=)``;
- ``train_dataset()`` (and optionally ``val_dataset()``): map-style datasets;
- ``training_step(batch, ctx)``: losses -> ``ctx.backward(loss, name)``, returns
  metrics; the engine steps, clips, schedules and zeroes;
- optionally ``validation_step(batch, ctx)``, ``phases(step, total_steps)``,
  ``state_dict()``/``load_state_dict()``, ``identity()``, ``monitor`` and
  ``monitor_mode``;
- for using the trained models: the classmethod ``from_identity(identity)``,
  the task a checkpoint's identity describes; ``load_trained(TaskType, path,
  device)`` then picks a run folder's best checkpoint (by ``monitor_mode``) and
  returns the task and its models with their weights.

``ctx`` (a ``StepContext``) carries ``step``, ``total_steps``, ``progress``,
``phase``, ``models`` (to call), ``modules`` (plain), ``device``,
``autocast()``, ``backward(loss, optimizer)`` and ``grad(outputs, inputs)``
(input gradients for penalties). The patterns the families need:

- one optimiser: ``ctx.backward(loss)``;
- main + auxiliary optimiser on disjoint parameters (a learned codec):
  ``ctx.backward(loss, "main"); ctx.backward(aux, "aux")``, the auxiliary one
  declared ``OptimizerSpec(opt, outside_forward=True)`` when its loss does not
  come from a forward pass;
- alternating models (a WGAN critic stepped n times per generator step):
  ``phases()`` returns ``[Phase("critic", n), Phase("generator")]`` and
  ``training_step`` branches on ``ctx.phase``; each repeat gets fresh batches;
- per-step hyper-parameters: functions of ``ctx.step`` and ``ctx.total_steps``,
  e.g. ``ramp(ctx.step, 0, ctx.total_steps, 2.0, 24.0)`` and
  ``ctx.progress >= 0.85``; state that is not such a function goes in
  ``state_dict()``.

Example::

    import torch
    from torch import nn
    from stegafast.train import Task, TrainConfig, train

    class Denoise(Task):
        name = "example.denoise"

        def build_models(self):
            return nn.Conv2d(3, 3, 3, padding=1)

        def build_optimizers(self, models, config):
            return torch.optim.Adam(models["model"].parameters(), lr=config.lr or 1e-3)

        def train_dataset(self):
            return torch.utils.data.TensorDataset(torch.rand(64, 3, 16, 16))

        def val_dataset(self):
            return torch.utils.data.TensorDataset(torch.rand(16, 3, 16, 16))

        def training_step(self, batch, ctx):
            (clean,) = batch
            loss = nn.functional.mse_loss(ctx.model(clean + 0.1 * torch.randn_like(clean)), clean)
            ctx.backward(loss)
            return {"loss": loss}

        def validation_step(self, batch, ctx):
            (clean,) = batch
            return {"loss": nn.functional.mse_loss(ctx.model(clean), clean)}

    result = train(Denoise(), TrainConfig(out="runs/denoise", steps=200, batch_size=8, val_every=50))

The engine knows nothing of command lines: the ``train`` commands build a
``TrainConfig`` from their options in ``stegafast.cli.train_args``. Several
processes: ``torchrun --nproc_per_node=N -m stegafast <family> train ...``.
"""

from ..errors import DivergenceError
from .amp import AMP_MODES, AmpPolicy, resolve_amp
from .checkpoint import CheckpointError, atomic_save, check_weights_only, load_checkpoint
from .compiling import COMPILE_MODES, compile_models, compile_parts
from .config import TrainConfig
from .context import StepContext
from .engine import Trainer, TrainResult, train
from .loading import Trained, checkpoint_file, load_trained
from .rundir import RunDir, RunDirError
from .schedules import Schedule, ramp
from .seeding import mix_seed, seed_everything
from .task import OptimizerSpec, Phase, Task

__all__ = [
    "AMP_MODES",
    "COMPILE_MODES",
    "compile_models",
    "compile_parts",
    "AmpPolicy",
    "resolve_amp",
    "CheckpointError",
    "atomic_save",
    "check_weights_only",
    "load_checkpoint",
    "TrainConfig",
    "StepContext",
    "DivergenceError",
    "Trainer",
    "TrainResult",
    "train",
    "Trained",
    "checkpoint_file",
    "load_trained",
    "RunDir",
    "RunDirError",
    "Schedule",
    "ramp",
    "mix_seed",
    "seed_everything",
    "OptimizerSpec",
    "Phase",
    "Task",
]
