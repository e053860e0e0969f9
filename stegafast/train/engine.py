"""The training loop: ``Trainer(task, config).fit()``, or ``train(task, config)``.

One step runs the task's phases; each phase zeroes the gradients, feeds
``grad_accum`` micro-batches to ``task.training_step`` under autocast (DDP syncs
on the last one only), then, for every optimiser the step called
``ctx.backward`` for: averages gradients DDP did not see, unscales (fp16), clips,
sets the scheduled learning rate and steps. After the step come logging,
validation and checkpointing, as the config asks. With ``config.compile`` the
models called for training forwards are ``torch.compile`` wrappers
(``stegafast.train.compiling``); the plain modules are what is saved and returned.

A run holds its folder's lock (``RunDir.locked``) from before it writes
anything until ``fit`` returns, so two runs never share a folder. A loss given
to ``ctx.backward`` that is NaN or infinite, or weights that became so, stop the
run with a ``DivergenceError`` naming the step where it was first seen; the
check runs when metrics are logged and before every checkpoint, so no
checkpoint of diverged weights is written and the latest kept checkpoint is the
last good one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, IterableDataset

from .._version import __version__
from ..device import device_type_of, resolve_device
from ..errors import DataError, DivergenceError
from .amp import AmpPolicy, resolve_amp
from .checkpoint import CHECKPOINT_FORMAT, CheckpointError, atomic_save, identity_mismatch, load_checkpoint
from .compiling import compile_models
from .config import TrainConfig
from .context import StepContext
from .data import EpochSampler, ShardSampler, TrainStream, batch_size_of, make_loader, to_device
from .distributed import (
    DistInfo,
    all_reduce_grads,
    barrier,
    gather_objects,
    init_distributed,
    sum_across_processes,
    wrap_models,
)
from .memory_format import batch_to_channels_last, models_to_channels_last
from .metrics_log import MetricAccumulator, MetricLog
from .progress import Progress, format_metrics
from .rundir import RunDir
from .schedules import Schedule
from .seeding import capture_rng_state, forked_rng, mix_seed, restore_rng_state, seed_everything
from .task import OptimizerSpec, Phase, Task, built_models

__all__ = ["Trainer", "TrainResult", "train"]

log = logging.getLogger("stegafast.train")

# Tags mixed into the run seed, one per stream, so the streams never coincide.
_SHUFFLE, _SAMPLES, _TRAIN, _VALIDATION = 1, 2, 3, 4


@dataclass
class TrainResult:
    """What a finished ``fit`` leaves: the step reached, the last logged training
    and validation metrics, the kept checkpoints and the trained models."""

    step: int
    train_metrics: dict[str, float]
    val_metrics: dict[str, float]
    latest_checkpoint: Path | None
    best_checkpoint: Path | None
    run_dir: Path
    models: dict[str, nn.Module] = field(repr=False)


@dataclass
class _Optimizer:
    name: str
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    clip_norm: float
    outside_forward: bool
    params: list[torch.Tensor]
    base_lrs: list[float]

    def set_lr(self, factor: float) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            if isinstance(group["lr"], torch.Tensor):  # capturable / fused optimisers keep lr as a tensor
                group["lr"].fill_(base * factor)
            else:
                group["lr"] = base * factor


def train(task: Task, config: TrainConfig) -> TrainResult:
    """Train ``task`` as ``config`` says; see ``Trainer``."""
    return Trainer(task, config).fit()


class Trainer:
    """Runs a task's training: ``Trainer(task, config).fit()``.

    Everything that can be checked cheaply (the task, the AMP mode for the
    device, the run folder) is checked before models are built.
    """

    def __init__(self, task: Task, config: TrainConfig):
        if not isinstance(task, Task):
            raise TypeError(f"Trainer needs a stegafast.train.Task, got {type(task).__name__}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer needs a TrainConfig, got {type(config).__name__}")
        if not isinstance(task.name, str) or not task.name:
            raise ValueError(f"{type(task).__name__}.name must name the task (it identifies its checkpoints)")
        self.task, self.config = task, config
        self.monitor = config.best_metric or task.monitor
        self.monitor_mode = config.best_mode or task.monitor_mode
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"{type(task).__name__}.monitor_mode must be 'min' or 'max', got {self.monitor_mode!r}")
        self.identity = task.identity()
        try:
            json.dumps(self.identity)
        except TypeError as exc:
            raise ValueError(f"{type(task).__name__}.identity() must be JSON-able: {exc}") from None
        self.run_dir = RunDir(config.out)

    # ---- set-up ------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train to ``config.steps`` (from the latest checkpoint with ``resume``)."""
        amp = resolve_amp(self.config.amp, device_type_of(self.config.device))
        info = init_distributed(amp.device_type)
        # Only the main process writes into the folder, so only it holds the lock.
        with self.run_dir.locked() if info.is_main else contextlib.nullcontext():
            resume_from = self.run_dir.check_start(self.identity, self.config.resume)
            return self._fit(amp, info, resume_from)

    def _fit(self, amp: AmpPolicy, info: DistInfo, resume_from: Path | None) -> TrainResult:
        cfg, task = self.config, self.task
        self.info = info
        self.device = device = resolve_device(cfg.device, info.local_rank if info.distributed else None)
        self.amp = amp
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False

        seed_everything(cfg.seed)  # datasets and models are built from the run's seed
        train_set, val_set = task.train_dataset(), task.val_dataset()
        self._check_datasets(train_set, val_set)
        self.modules = self._build_models()
        self.optimizers = self._build_optimizers()
        self.scaler = amp.make_scaler()

        step, position, rng_states = 0, {"epoch": 0, "samples": 0}, None
        if resume_from is not None:
            step, position, rng_states = self._restore(resume_from)
        if info.is_main:
            self.run_dir.prepare(self.identity, cfg.to_dict())
        barrier(info)

        self.models = wrap_models(
            self.modules, self._models_with_outside_forward(), info, device, task.find_unused_parameters
        )
        if cfg.compile:  # after DDP wrapping: the DDP wrapper is compiled, the saved modules stay plain
            self.models = compile_models(self.models, cfg.compile_mode)
        stream, val_loader = self._loaders(train_set, val_set, position)
        metric_log = MetricLog(
            self.run_dir,
            enabled=info.is_main,
            tensorboard=cfg.tensorboard,
            resume_step=step if resume_from is not None else None,
        )
        progress = Progress(cfg.steps, step, cfg.progress if info.is_main else False)
        if resume_from is not None and info.is_main:
            progress.message(f"resumed {self.run_dir.root} from {resume_from.name} at step {step}")
        self._seed_training_streams(step, rng_states)
        try:
            return self._loop(step, stream, val_loader, metric_log, progress)
        finally:
            stream.close()
            metric_log.close()
            progress.close()

    def _check_datasets(self, train_set: Any, val_set: Any) -> None:
        cfg, world = self.config, self.info.world_size
        for role, data in (("train_dataset()", train_set), ("val_dataset()", val_set)):
            if data is None and role == "val_dataset()":
                continue
            if isinstance(data, IterableDataset) or not isinstance(data, Dataset) or not hasattr(data, "__len__"):
                raise TypeError(
                    f"{type(self.task).__name__}.{role} must return a map-style Dataset "
                    f"(with __len__ and __getitem__), got {type(data).__name__}"
                )
        if len(train_set) < cfg.batch_size * world:
            raise DataError(
                f"the training set has {len(train_set)} samples, fewer than one batch "
                f"({cfg.batch_size} per process x {world} process(es)); lower --batch-size or add "
                "images"
            )
        if val_set is not None:
            if len(val_set) < world:
                raise DataError(f"the validation set has {len(val_set)} samples, fewer than the {world} processes")
            if type(self.task).validation_step is Task.validation_step:
                raise TypeError(f"{type(self.task).__name__} has a validation set but no validation_step")

    def _build_models(self) -> dict[str, nn.Module]:
        models = {name: module.to(self.device) for name, module in built_models(self.task).items()}
        return models_to_channels_last(models) if self.config.channels_last else models

    def _on_device(self, batch: Any, non_blocking: bool = False) -> Any:
        """A loaded batch on the run's device, channels-last with ``channels_last``."""
        batch = to_device(batch, self.device, non_blocking)
        return batch_to_channels_last(batch) if self.config.channels_last else batch

    def _build_optimizers(self) -> dict[str, _Optimizer]:
        built = self.task.build_optimizers(self.modules, self.config)
        specs = {"main": built} if isinstance(built, (torch.optim.Optimizer, OptimizerSpec)) else dict(built)
        if not specs:
            raise ValueError(f"{type(self.task).__name__}.build_optimizers() returned no optimiser")
        owned = {id(p) for m in self.modules.values() for p in m.parameters()}
        seen: dict[int, str] = {}
        optimizers = {}
        for name, spec in specs.items():
            spec = spec if isinstance(spec, OptimizerSpec) else OptimizerSpec(spec)
            params = [p for group in spec.optimizer.param_groups for p in group["params"]]
            for p in params:
                if id(p) not in owned:
                    raise ValueError(f"optimiser {name!r} holds a parameter that is in none of the task's models")
                if id(p) in seen:
                    raise ValueError(
                        f"a parameter is in optimisers {seen[id(p)]!r} and {name!r}; each parameter "
                        "belongs to one optimiser"
                    )
                seen[id(p)] = name
            optimizers[name] = _Optimizer(
                name,
                spec.optimizer,
                spec.schedule or self.config.schedule,
                self.config.clip_norm if spec.clip_norm is None else spec.clip_norm,
                spec.outside_forward,
                params,
                [float(g["lr"]) for g in spec.optimizer.param_groups],
            )
        return optimizers

    def _models_with_outside_forward(self) -> set[str]:
        """Names of the models holding parameters of ``outside_forward`` optimisers."""
        outside = {id(p) for o in self.optimizers.values() if o.outside_forward for p in o.params}
        return {name for name, module in self.modules.items() if any(id(p) in outside for p in module.parameters())}

    def _loaders(self, train_set: Dataset, val_set: Dataset | None, position: dict) -> tuple[TrainStream, Any]:
        cfg, info = self.config, self.info
        options = dict(
            seed=mix_seed(cfg.seed, _SAMPLES),
            workers=cfg.workers,
            collate_fn=self.task.collate_fn,
            pin_memory=self.device.type == "cuda" if cfg.pin_memory is None else cfg.pin_memory,
            persistent_workers=cfg.persistent_workers,
            prefetch_factor=cfg.prefetch_factor,
        )
        sampler = EpochSampler(
            train_set, num_replicas=info.world_size, rank=info.rank, seed=mix_seed(cfg.seed, _SHUFFLE) % 2**62
        )
        loader = make_loader(train_set, sampler, batch_size=cfg.batch_size, drop_last=True, **options)
        stream = TrainStream(
            loader,
            sampler,
            seed=cfg.seed,
            rank=info.rank,
            world_size=info.world_size,
            epoch=int(position["epoch"]),
            samples=int(position["samples"]),
        )
        val_loader = None
        if val_set is not None:
            shard = ShardSampler(val_set, num_replicas=info.world_size, rank=info.rank)
            val_loader = make_loader(
                val_set, shard, batch_size=cfg.val_batch_size or cfg.batch_size, drop_last=False, **options
            )
        return stream, val_loader

    # ---- checkpoints -------------------------------------------------------------------------

    def _restore(self, path: Path) -> tuple[int, dict, list | None]:
        ckpt = load_checkpoint(path)
        problem = identity_mismatch(ckpt["identity"], self.identity)
        if problem:
            raise CheckpointError(f"cannot resume from {path}: {problem}")
        for kind, ours, saved in (
            ("models", self.modules, ckpt["models"]),
            ("optimisers", self.optimizers, ckpt["optimizers"]),
        ):
            if set(ours) != set(saved):
                raise CheckpointError(
                    f"cannot resume from {path}: it holds {kind} {sorted(saved)}, the task builds {sorted(ours)}"
                )
        try:
            for name, module in self.modules.items():
                module.load_state_dict(ckpt["models"][name])
            for name, opt in self.optimizers.items():
                opt.optimizer.load_state_dict(ckpt["optimizers"][name])
                opt.base_lrs = [float(lr) for lr in ckpt["schedules"][name]["base_lrs"]]
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"cannot resume from {path}: {exc}") from None
        if ckpt["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.task.load_state_dict(ckpt["task_state"])
        return int(ckpt["step"]), ckpt["data"], ckpt["rng"]

    def _seed_training_streams(self, step: int, rng_states: list | None) -> None:
        """Continue each process's random streams from the checkpoint, or start
        them from the seed (per process, so ranks draw different noise)."""
        info = self.info
        if rng_states is not None and len(rng_states) == info.world_size:
            restore_rng_state(rng_states[info.rank], self.device)
            return
        if rng_states is not None:
            log.warning(
                "the checkpoint was written by %d process(es), this run has %d: random streams restart "
                "from the seed, so the run will not repeat an uninterrupted one",
                len(rng_states),
                info.world_size,
            )
        seed_everything(mix_seed(self.config.seed, _TRAIN, step, info.rank))

    def _save(self, step: int, val_metrics: dict[str, float] | None, position: dict, ctx: StepContext) -> None:
        self._check_divergence(ctx, step)
        rng = gather_objects(capture_rng_state(self.device), self.info)
        if self.info.is_main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "identity": self.identity,
                "step": step,
                "total_steps": self.config.steps,
                "models": self._model_states(step),
                "optimizers": {n: o.optimizer.state_dict() for n, o in self.optimizers.items()},
                "schedules": {
                    n: {"schedule": o.schedule.to_dict(), "base_lrs": o.base_lrs} for n, o in self.optimizers.items()
                },
                "scaler": self.scaler.state_dict(),
                "rng": rng,
                "task_state": self.task.state_dict(),
                "data": position,
                "metrics": val_metrics or {},
                "config": self.config.to_dict(),
                "versions": {"stegafast": __version__, "torch": str(torch.__version__)},
            }
            atomic_save(state, self.run_dir.checkpoint_path(step))
            metric = val_metrics.get(self.monitor) if val_metrics else None
            self.run_dir.record(step, metric, self.config.keep_best, self.monitor_mode)
        barrier(self.info)

    def _model_states(self, step: int) -> dict[str, dict]:
        try:
            return {n: m.state_dict() for n, m in self.modules.items()}
        except DivergenceError as exc:  # e.g. entropy tables built from weights that are finite but absurd
            raise self._diverged(f"at step {step}, {exc}") from None

    # ---- the loop ----------------------------------------------------------------------------

    def _loop(
        self, start: int, stream: TrainStream, val_loader: Any, metric_log: MetricLog, progress: Progress
    ) -> TrainResult:
        cfg = self.config
        ctx = StepContext(
            models=self.models,
            modules=self.modules,
            optimizer_names=list(self.optimizers),
            device=self.device,
            amp=self.amp,
            scaler=self.scaler,
            grad_accum=cfg.grad_accum,
            total_steps=cfg.steps,
            training=True,
            compile_mode=cfg.compile_mode if cfg.compile else None,
        )
        metrics = MetricAccumulator()
        train_metrics: dict[str, float] = {}
        val_metrics: dict[str, float] = {}
        self._data_wait_s = 0.0  # seconds spent in next(stream) since the last training log
        window = (time.perf_counter(), stream.consumed)
        for step in range(start, cfg.steps):
            ctx.step = step
            for phase in self._phases(step):
                for _ in range(phase.repeats):
                    self._update(phase.name, ctx, stream, metrics)
            done = step + 1
            progress.advance()
            last = done == cfg.steps
            if done % cfg.log_every == 0 or last:
                train_metrics = self._log_train(done, metrics, stream, window, metric_log, progress)
                window = (time.perf_counter(), stream.consumed)
                self._check_divergence(ctx, done)
            validated = val_loader is not None and (last or (cfg.val_every > 0 and done % cfg.val_every == 0))
            if validated:
                val_metrics = self._validate(done, val_loader, metric_log, progress)
            if validated or last or (cfg.save_every > 0 and done % cfg.save_every == 0):
                self._save(done, val_metrics if validated else None, stream.position(), ctx)
        if start >= cfg.steps and self.info.is_main:
            progress.message(f"{self.run_dir.root} has already trained {start} of {cfg.steps} steps")
        return TrainResult(
            step=max(start, cfg.steps),
            train_metrics=train_metrics,
            val_metrics=val_metrics,
            latest_checkpoint=self.run_dir.latest(),
            best_checkpoint=self.run_dir.best(self.monitor_mode),
            run_dir=self.run_dir.root,
            models=self.modules,
        )

    def _nonfinite_weights(self) -> torch.Tensor:
        """Whether any parameter holds NaN or infinity, as a bool tensor on the device (no sync)."""
        finite = [torch.isfinite(p).all() for m in self.modules.values() for p in m.parameters()]
        return torch.stack(finite).logical_not().any() if finite else torch.tensor(False)

    def _check_divergence(self, ctx: StepContext, done: int) -> None:
        """A DivergenceError (on every process) once any process's loss, or the weights after
        ``done`` steps, were non-finite."""
        first = ctx.first_nonfinite_step()
        flags = torch.stack([(first >= 0).double().cpu(), self._nonfinite_weights().double().cpu()])
        bad_loss, bad_weights = self._sum(flags.to(self.device)).tolist()
        if not (bad_loss or bad_weights):
            return
        what = "the loss" if bad_loss else "the weights"
        step = int(first) if bad_loss and int(first) >= 0 else done  # else another process saw it first
        raise self._diverged(f"{what} became NaN or infinite at step {step}")

    def _diverged(self, what: str) -> DivergenceError:
        latest = self.run_dir.latest()
        kept = f"the last good checkpoint is {latest}" if latest is not None else "no checkpoint was written"
        return DivergenceError(f"training diverged: {what}; {kept}; try a lower --lr or --clip-norm")

    def _phases(self, step: int) -> list[Phase]:
        phases = [Phase(*p) if isinstance(p, tuple) else p for p in self.task.phases(step, self.config.steps)]
        for phase in phases:
            if (
                not isinstance(phase, Phase)
                or not isinstance(phase.name, str)
                or not isinstance(phase.repeats, int)
                or phase.repeats < 1
            ):
                raise ValueError(
                    f"{type(self.task).__name__}.phases() must give Phase(name, repeats >= 1) items, got {phase!r}"
                )
        if not phases:
            raise ValueError(f"{type(self.task).__name__}.phases() gave no phase for step {step}")
        return phases

    def _update(self, phase: str, ctx: StepContext, stream: TrainStream, metrics: MetricAccumulator) -> None:
        """One optimiser update of ``phase``: accumulate micro-batches, then step."""
        for module in self.modules.values():  # all of them: another phase's losses may reach any model
            module.zero_grad(set_to_none=True)
        ctx.phase, ctx.touched = phase, set()
        ddp = [m for m in self.models.values() if isinstance(m, DistributedDataParallel)]
        non_blocking = self.device.type == "cuda"
        for micro in range(ctx.grad_accum):
            ctx.micro_batch = micro
            waited = time.perf_counter()
            loaded = next(stream)  # blocks while the loader's workers are behind
            self._data_wait_s += time.perf_counter() - waited
            batch = self._on_device(loaded, non_blocking)
            with contextlib.ExitStack() as stack:
                if micro < ctx.grad_accum - 1:  # gradients are averaged across processes once, at the end
                    for model in ddp:
                        stack.enter_context(model.no_sync())
                stack.enter_context(self.amp.autocast())
                returned = self.task.training_step(batch, ctx)
            self._accumulate(metrics, returned, "training_step")
        if not ctx.touched:
            raise RuntimeError(
                f"{type(self.task).__name__}.training_step (phase {phase!r}) called ctx.backward for no optimiser"
            )
        for opt in self.optimizers.values():
            if opt.name in ctx.touched:
                self._step(opt, ctx.step, metrics)
        self.scaler.update()

    def _step(self, opt: _Optimizer, step: int, metrics: MetricAccumulator) -> None:
        if opt.outside_forward and self.info.distributed:
            all_reduce_grads(opt.params, self.info.world_size)
        self.scaler.unscale_(opt.optimizer)
        if opt.clip_norm > 0:
            metrics.add(f"grad_norm/{opt.name}", torch.nn.utils.clip_grad_norm_(opt.params, opt.clip_norm))
        factor = opt.schedule.factor(step, self.config.steps)
        opt.set_lr(factor)
        self.scaler.step(opt.optimizer)

    def _accumulate(self, metrics: MetricAccumulator, returned: Any, where: str, weight: float = 1.0) -> None:
        if returned is None:
            return
        if not isinstance(returned, dict):
            raise TypeError(
                f"{type(self.task).__name__}.{where} must return a dict of scalar metrics, "
                f"got {type(returned).__name__}"
            )
        for name, value in returned.items():
            metrics.add(name, value, weight)

    def _sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return sum_across_processes(tensor, self.info, self.device)

    def _log_train(
        self,
        step: int,
        metrics: MetricAccumulator,
        stream: TrainStream,
        window: tuple[float, int],
        metric_log: MetricLog,
        progress: Progress,
    ) -> dict[str, float]:
        values = metrics.reduce(self._sum)
        started, consumed = window
        samples = (stream.consumed - consumed) * self.config.batch_size * self.info.world_size
        elapsed = max(time.perf_counter() - started, 1e-9)
        values["samples_per_s"] = samples / elapsed
        # The share of the window this process spent waiting for the data loader (its own,
        # not averaged over processes): near 0 when the workers keep up, near 1 when data-bound.
        values["data_wait_share"] = min(self._data_wait_s / elapsed, 1.0)
        self._data_wait_s = 0.0
        for opt in self.optimizers.values():
            values[f"lr/{opt.name}"] = float(opt.optimizer.param_groups[0]["lr"])  # the rate of the latest step
        if self.scaler.is_enabled():
            values["loss_scale"] = self.scaler.get_scale()
        metric_log.write(step, "train", values)
        progress.show(step, values)
        return values

    def _validate(self, step: int, loader: Any, metric_log: MetricLog, progress: Progress) -> dict[str, float]:
        ctx = StepContext(
            models=self.modules,
            modules=self.modules,
            optimizer_names=list(self.optimizers),
            device=self.device,
            amp=self.amp,
            scaler=self.scaler,
            grad_accum=1,
            total_steps=self.config.steps,
            training=False,
        )
        ctx.step = step
        modes = {m: m.training for module in self.modules.values() for m in module.modules()}
        metrics = MetricAccumulator()
        try:
            for module in self.modules.values():
                module.eval()
            # Fixed seeds: every validation draws the same noise, and training's streams are untouched.
            with torch.no_grad(), forked_rng(mix_seed(self.config.seed, _VALIDATION), self.device):
                for batch in loader:
                    size = batch_size_of(batch)
                    if not size:
                        raise TypeError(
                            "validation batches must hold tensors with a batch dimension "
                            "(the engine weighs batch metrics by it)"
                        )
                    with self.amp.autocast():
                        returned = self.task.validation_step(self._on_device(batch), ctx)
                    self._accumulate(metrics, returned, "validation_step", weight=size)
        finally:
            for module, mode in modes.items():
                module.training = mode  # per module: a task may keep parts in eval mode
        values = metrics.reduce(self._sum)
        if self.monitor not in values:
            raise ValueError(
                f"validation gave no {self.monitor!r} metric to rank checkpoints by (it gave "
                f"{', '.join(values) or 'nothing'}); set the task's monitor or config.best_metric"
            )
        metric_log.write(step, "val", values)
        progress.message(f"step {step} validation: {format_metrics(values)}")
        return values
