"""Every family's training forward compiles as one graph: the task's own ``training_step``
runs once with each model wrapped in ``torch.compile(fullgraph=True)`` (a graph break is an
error there), on a tiny config on the CPU, and its backward reaches the weights.

The backend is ``aot_eager``: dynamo's tracing (where graph breaks happen) and AOTAutograd's
forward and backward tracing over fake tensors (where a native op's fake or autograd
registration would fail) without inductor's C++ code generation, which takes minutes per
graph on this CPU. The engine's ``--compile`` with inductor is in test_train_compile.py.
"""

import pytest
import torch
import torch._dynamo
from testutils import tiny_dcae_config
from torch.utils.data import default_collate

from stegafast.models.autoencoder import AutoencoderTask, preset_config
from stegafast.models.codec import CodecConfig, CodecTask
from stegafast.models.stamp import StampLossConfig, StampModelConfig, StampNoiseConfig, StampTask
from stegafast.models.stego import StegoLossConfig, StegoModelConfig, StegoTask
from stegafast.train import StepContext, TrainConfig, resolve_amp
from stegafast.train.task import built_models

BATCH = 2


def _batch(task):
    data = task.train_dataset()
    return default_collate([data[i] for i in range(BATCH)])


def _context(task, models, modules, phase, step, total_steps):
    config = TrainConfig(out="unused", steps=total_steps, batch_size=BATCH, device="cpu")
    built = task.build_optimizers(modules, config)
    amp = resolve_amp("off", "cpu")
    ctx = StepContext(
        models=models,
        modules=modules,
        optimizer_names=["main"] if isinstance(built, torch.optim.Optimizer) else list(built),
        device=torch.device("cpu"),
        amp=amp,
        scaler=amp.make_scaler(),
        grad_accum=1,
        total_steps=total_steps,
        training=True,
    )
    ctx.step, ctx.phase = step, phase
    return ctx


def _compiled_step(task, *, phase="train", step=0, total_steps=10, eager_first=False):
    """Run ``task.training_step`` once, every model's forward compiled with fullgraph=True (after one eager
    step with ``eager_first``); return the metrics, the plain modules, and how many graphs dynamo compiled."""
    torch.manual_seed(0)
    modules = built_models(task)
    batch = _batch(task)
    if eager_first:
        task.training_step(batch, _context(task, modules, modules, phase, step, total_steps))
        for module in modules.values():
            module.zero_grad(set_to_none=True)
    compiled = {n: torch.compile(m, fullgraph=True, backend="aot_eager") for n, m in modules.items()}
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    metrics = task.training_step(batch, _context(task, compiled, modules, phase, step, total_steps))
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    return metrics, modules, graphs


def _assert_trained(metrics, module, key="loss"):
    assert torch.isfinite(torch.as_tensor(metrics[key])).all()
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def _stego(init="identity"):
    config = StegoModelConfig(blocks=1, hidden=8, init=init)
    return StegoTask(config, StegoLossConfig(perturb_from=0.5), image_size=16)


@pytest.mark.parametrize("step", [0, 9], ids=["clean", "perturbed"])
def test_stego(step):
    """Once ActNorm has initialised itself (one eager step, or the first compiled step, which breaks there and
    recompiles), the step is one graph."""
    metrics, modules, graphs = _compiled_step(_stego(), step=step, eager_first=True)
    assert graphs >= 1
    _assert_trained(metrics, modules["model"])


def test_stego_identity_start_has_no_graph_break():
    """The default identity start needs no data-dependent ActNorm initialisation: one graph from the first step."""
    task = _stego()
    model = built_models(task)["model"]
    cover, secret = _batch(task)
    assert torch._dynamo.explain(model)(cover, secret, None).graph_break_count == 0


def test_stego_glow_start_breaks_only_at_actnorm_initialisation():
    """The one break of Glow's start: a fresh ActNorm reads its ``initialized`` buffer (data) to decide whether to
    initialise."""
    task = _stego("glow")
    model = built_models(task)["model"]
    cover, secret = _batch(task)
    explained = torch._dynamo.explain(model)(cover, secret, None)
    assert explained.graph_break_count >= 1
    places = {(reason.user_stack[-1].filename, reason.user_stack[-1].line) for reason in explained.break_reasons}
    assert all(name.endswith("actnorm.py") and "self.initialized" in line for name, line in places), places


def _stamp():
    losses = StampLossConfig(no_image_loss_steps=0, l2_ramp=1, critic_ramp=1, l2_edge_delay=0, l2_edge_ramp=1)
    return StampTask(StampModelConfig(image_size=32), losses, StampNoiseConfig().scaled(0.001), epoch_length=4)


@pytest.mark.parametrize("phase", ["critic", "generator"])
def test_stamp(phase):
    metrics, modules, graphs = _compiled_step(_stamp(), phase=phase, step=5)
    assert graphs >= 1
    if phase == "critic":
        _assert_trained(metrics, modules["critic"], "critic_loss")
    else:
        _assert_trained(metrics, modules["encoder"])
        _assert_trained(metrics, modules["decoder"])


def test_codec_hyperprior():
    metrics, modules, graphs = _compiled_step(CodecTask(CodecConfig(N=8, M=12), image_size=64, epoch_length=4))
    assert graphs >= 1
    _assert_trained(metrics, modules["model"])


def test_autoencoder():
    task = AutoencoderTask(preset_config("tiny", (24, 20), channel_config=(4, 8, 8), latent_size=16), epoch_length=4)
    metrics, modules, graphs = _compiled_step(task)
    assert graphs >= 1
    _assert_trained(metrics, modules["model"])


def test_codec_dcae():
    config = tiny_dcae_config()
    metrics, modules, graphs = _compiled_step(CodecTask(config, image_size=64, epoch_length=4))
    assert graphs >= 1
    _assert_trained(metrics, modules["model"])


def test_diffusion():
    pytest.importorskip("diffusers")
    from stegafast.models.diffusion.config import PhysicsConfig, UNetConfig
    from stegafast.models.diffusion.task import DiffusionTask

    model = UNetConfig(block_out_channels=(8, 16, 16, 16), layers_per_block=1)
    task = DiffusionTask(model, PhysicsConfig(image_size=16, psf_size=5, psf_sigma=1.0), epoch_length=4, val_length=2)
    metrics, modules, graphs = _compiled_step(task)
    assert graphs >= 1
    _assert_trained(metrics, modules["model"])
