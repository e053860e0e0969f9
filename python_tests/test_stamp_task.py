"""The StegaStamp training task through the shared engine: a tiny run with the
WGAN critic, resumed; the critic's weight clipping; the phases."""

import pytest
import torch

from stegafast.models.stamp import StampLossConfig, StampModelConfig, StampNoiseConfig, StampTask
from stegafast.models.stamp.task import WeightClippedRMSprop
from stegafast.train import CheckpointError, Phase, RunDirError, TrainConfig, load_checkpoint, train


def _task(gan=True, data=None):
    # every ramp shortened so that a few steps see every loss and noise term
    losses = StampLossConfig(gan=gan, no_image_loss_steps=1, l2_ramp=2, critic_ramp=2, l2_edge_delay=1, l2_edge_ramp=2)
    return StampTask(
        StampModelConfig(image_size=32), losses, StampNoiseConfig().scaled(0.001), data=data, epoch_length=16
    )


def _config(out, steps, **kw):
    return TrainConfig(
        out=out, steps=steps, batch_size=2, val_every=0, progress=False, tensorboard=False, device="cpu", **kw
    )


def test_train_and_resume(tmp_path):
    first = train(_task(), _config(tmp_path / "run", 2))
    assert first.step == 2
    assert set(first.models) == {"encoder", "decoder", "critic"}
    for name in ("loss", "secret_loss", "bit_acc", "critic_loss", "psnr"):
        assert name in first.train_metrics
    assert 0 <= first.val_metrics["bit_acc_noised"] <= 1  # the bundled validation photos, at the end
    resumed = train(_task(), _config(tmp_path / "run", 4, resume=True))
    assert resumed.step == 4
    state = load_checkpoint(resumed.latest_checkpoint, expect_task="stamp")
    model = {"image_size": 32, "secret_bits": 100, "residual_layer": "conv9"}
    assert state["identity"] == {"task": "stamp", "model": model, "gan": True}
    clip = StampLossConfig().critic_clip
    assert all(v.abs().max() <= clip for v in state["models"]["critic"].values())


def test_resume_with_another_gan_setting_is_refused(tmp_path):
    train(_task(gan=False), _config(tmp_path / "run", 1))
    with pytest.raises((RunDirError, CheckpointError), match="gan"):
        train(_task(gan=True), _config(tmp_path / "run", 2, resume=True))


def test_phases():
    task = _task()
    assert task.phases(0, 10) == [Phase("generator")]  # the secret loss trains alone first
    assert task.phases(1, 10) == [Phase("critic", 1), Phase("generator")]
    assert _task(gan=False).phases(5, 10) == [Phase("generator")]


def test_weight_clipped_rmsprop():
    p = torch.nn.Parameter(torch.tensor([0.005, -0.005]))
    opt = WeightClippedRMSprop([p], lr=1.0, clip=0.01)
    p.grad = torch.tensor([-1.0, 1.0])
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([0.01, -0.01]))
