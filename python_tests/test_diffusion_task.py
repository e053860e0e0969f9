"""Training the diffusion family on the shared engine: steps, EMA, resume, loading."""

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402

from stegafast.models.diffusion.config import PhysicsConfig, UNetConfig  # noqa: E402
from stegafast.models.diffusion.inference import denoise, load_diffusion  # noqa: E402
from stegafast.models.diffusion.physics import ForwardModel  # noqa: E402
from stegafast.models.diffusion.task import DiffusionTask  # noqa: E402
from stegafast.train import TrainConfig, train  # noqa: E402

TINY = UNetConfig(block_out_channels=(8, 16, 16, 16), layers_per_block=1)
PHYSICS = PhysicsConfig(image_size=16, psf_size=5, psf_sigma=1.0)


def _task():
    return DiffusionTask(TINY, PHYSICS, epoch_length=16, val_length=2)


def _config(out, steps, resume=False):
    return TrainConfig(
        out=str(out), steps=steps, batch_size=2, workers=0, val_every=2, save_every=2, log_every=1, resume=resume
    )


def _weights(models, name):
    return torch.cat([p.detach().flatten() for p in models[name].parameters()])


def test_training_resumes_exactly_and_keeps_the_ema(tmp_path):
    straight = train(_task(), _config(tmp_path / "a", 4))
    train(_task(), _config(tmp_path / "b", 2))
    resumed = train(_task(), _config(tmp_path / "b", 4, resume=True))
    assert resumed.step == 4 and "loss" in resumed.val_metrics
    for name in ("model", "ema"):
        assert torch.equal(_weights(straight.models, name), _weights(resumed.models, name))
    ema = resumed.models["ema"]
    assert int(ema.updates) == 4  # one update per optimiser step, resumed from the checkpoint
    assert not torch.equal(_weights(resumed.models, "ema"), _weights(resumed.models, "model"))

    loaded = load_diffusion(tmp_path / "b", attention="sdpa")
    assert loaded.physics == PHYSICS
    assert torch.equal(_weights({"ema": loaded.model}, "ema"), _weights(resumed.models, "ema"))
    y = torch.poisson(torch.full((19, 21), 30.0))  # not multiples of 8: padded and cropped back
    out = denoise(loaded.model, y, ForwardModel.from_config(PHYSICS), sampler="dpmpp", steps=3)
    assert out.shape == (19, 21) and (out >= 0).all()


def test_identity_rebuilds_the_task():
    task = DiffusionTask.from_identity(_task().identity())
    assert task.model_config == TINY and task.physics == PHYSICS
