"""Issue 14's StegaStamp regime: round_only_at_0 JPEG rounding, the critic's
gradient clipping, he_normal init, the residual of conv9 (and old checkpoints
with conv10), ``--preset paper``, distortions scaled with the training size,
JPEG at the reference scale, and the optional LPIPS term (with a stand-in
``lpips`` package of random weights: the real one is not installed here)."""

import math
import sys
import types

import pytest
import torch
from torch import nn

import stegafast.models.stamp.cli as stamp_cli
from stegafast import ops, reference
from stegafast.cli import main
from stegafast.errors import UserError
from stegafast.models.stamp import StampLossConfig, StampModelConfig, StampNoiseConfig, StampTask
from stegafast.models.stamp.config import PRESETS
from stegafast.models.stamp.inference import load_stamp
from stegafast.models.stamp.model import StampEncoder
from stegafast.models.stamp.noise import NoisePipeline, _blur_kernels, blur_half_size, jpeg_at_scale
from stegafast.models.stamp.perceptual import ALEXNET_FILE, load_lpips
from stegafast.models.stamp.task import WeightClippedRMSprop
from stegafast.nn import DiffJPEG
from stegafast.train import TrainConfig, load_checkpoint, train
from stegafast.train.checkpoint import atomic_save

# ---- round_only_at_0 ----------------------------------------------------------------------------------


def test_round_only_at_0_is_the_identity_except_a_cube_near_zero():
    v = torch.tensor([-1.7, -0.49, -0.2, 0.0, 0.3, 0.5, 2.4], dtype=torch.float64, requires_grad=True)
    out = reference.jpeg._round(v, "round_only_at_0")
    expected = torch.tensor([-1.7, -(0.49**3), -0.008, 0.0, 0.027, 0.5, 2.4], dtype=torch.float64)
    torch.testing.assert_close(out.detach(), expected)
    out.sum().backward()
    torch.testing.assert_close(v.grad, torch.tensor([1.0, 3 * 0.49**2, 0.12, 0.0, 0.27, 1.0, 1.0], dtype=torch.float64))


def test_round_only_at_0_runs_through_the_op_on_every_backend_and_is_milder_than_ste():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64) * 255
    table = reference.jpeg_quality_table(50, "luma", dtype=torch.float64)
    out = ops.jpeg_quantize_blocks(x, table, "round_only_at_0")
    assert torch.equal(out, reference.jpeg_quantize_blocks(x, table, "round_only_at_0"))
    hard = ops.jpeg_quantize_blocks(x, table, "ste")
    assert (out - x).abs().mean() < (hard - x).abs().mean()  # only the small coefficients shrink
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    DiffJPEG(50, rounding="round_only_at_0")(images).sum().backward()
    assert images.grad.abs().sum() > 0


# ---- configs --------------------------------------------------------------------------------------------


def test_defaults_follow_the_original_and_old_configs_read_as_before():
    assert StampNoiseConfig().jpeg_rounding == "round_only_at_0"
    assert StampLossConfig().critic_grad_clip == 0.25 and StampLossConfig().lpips is False
    assert StampModelConfig().residual_layer == "conv9"
    # a checkpoint's config from before issue 14 has no residual_layer: it was trained with conv10
    assert StampModelConfig.from_dict({"image_size": 32, "secret_bits": 100}).residual_layer == "conv10"
    assert StampModelConfig.from_dict(StampModelConfig(32).to_dict()).residual_layer == "conv9"
    with pytest.raises(ValueError, match="residual_layer"):
        StampModelConfig(32, residual_layer="conv8")


def test_paper_preset_holds_base_sh_weights():
    paper = StampLossConfig(**PRESETS["paper"])
    assert (paper.l2_scale, paper.secret_scale, paper.critic_scale, paper.lpips_scale) == (2.0, 1.5, 0.5, 1.5)
    assert (paper.l2_ramp, paper.critic_ramp, paper.lpips_ramp, paper.no_image_loss_steps) == (
        15000,
        15000,
        15000,
        1500,
    )
    assert paper.scaled(0.1).lpips_ramp == 1500


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"jpeg_scale": "huge"}, "jpeg_scale"),
        ({"reference_size": -1}, "reference_size"),
        ({"reference_size": 0, "jpeg_scale": "reference"}, "reference_size"),
        ({"jpeg_rounding": "floor"}, "jpeg_rounding"),
    ],
)
def test_noise_config_checks(settings, message):
    with pytest.raises(ValueError, match=message):
        StampNoiseConfig(**settings)


# ---- the networks ------------------------------------------------------------------------------------


def test_encoder_starts_from_he_normal():
    torch.manual_seed(0)
    encoder = StampEncoder(StampModelConfig(64))
    assert not hasattr(encoder, "conv10")  # the original builds it and never uses it
    for layer in (encoder.conv5[0], encoder.conv9[0], encoder.secret_dense):
        w = layer.weight
        std = math.sqrt(2 / w[0].numel())
        assert w.std().item() == pytest.approx(std, rel=0.1)  # the truncation is compensated
        assert w.abs().max().item() <= 2 * std / 0.87962566103423978 + 1e-6
        assert torch.count_nonzero(layer.bias) == 0


def _tiny_train(out, task, steps=2):
    config = TrainConfig(
        out=out, steps=steps, batch_size=2, val_every=0, progress=False, tensorboard=False, device="cpu"
    )
    return train(task, config)


def test_checkpoint_from_before_issue_14_still_loads(tmp_path):
    # train with the old residual, then write the checkpoint as the old code did: no residual_layer field
    old = StampModelConfig(32, residual_layer="conv10")
    losses = StampLossConfig(gan=False, no_image_loss_steps=0)
    result = _tiny_train(tmp_path / "run", StampTask(old, losses, StampNoiseConfig().scaled(0)))
    state = load_checkpoint(result.latest_checkpoint, expect_task="stamp")
    del state["identity"]["model"]["residual_layer"]
    legacy = tmp_path / "legacy.pt"
    atomic_save(state, legacy)
    encoder, decoder = load_stamp(legacy, torch.device("cpu"))
    assert encoder.config.residual_layer == "conv10" and hasattr(encoder, "conv10")
    for key, value in state["models"]["encoder"].items():  # every trained weight, conv10's included
        torch.testing.assert_close(encoder.state_dict()[key], value)
    assert encoder(torch.ones(1, 100), torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


# ---- the critic's gradient clipping ------------------------------------------------------------------


def test_critic_gradients_are_clipped_before_the_step_and_weights_after():
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(3))
    clipped = WeightClippedRMSprop([a], lr=1e-3, clip=0.01, grad_clip=0.25)
    plain = torch.optim.RMSprop([b], lr=1e-3)
    a.grad = torch.tensor([5.0, -0.1, -3.0])
    b.grad = torch.tensor([0.25, -0.1, -0.25])  # what the clipping leaves
    clipped.step()
    plain.step()
    torch.testing.assert_close(a.detach(), b.detach().clamp(-0.01, 0.01))
    assert torch.equal(a.grad, torch.tensor([0.25, -0.1, -0.25]))
    task = StampTask(StampModelConfig(32), StampLossConfig(critic_grad_clip=0.5))
    critic = task.build_optimizers(task.build_models(), TrainConfig(out="unused", steps=1, batch_size=1))[
        "critic"
    ].optimizer
    assert critic.grad_clip == 0.5 and critic.clip == 0.01


# ---- distortions and the training size ---------------------------------------------------------------


def test_blur_and_noise_scale_with_the_training_size():
    assert blur_half_size(1.0) == 3 and blur_half_size(64 / 400) == 1 and blur_half_size(2.0) == 6
    torch.manual_seed(0)
    kernels = _blur_kernels(64, 1.0, "cpu", 64 / 400)
    assert kernels.shape == (64, 3, 3)
    torch.testing.assert_close(kernels.sum(dim=(1, 2)), torch.ones(64))
    # sigma at most 3 * 0.16 = 0.48 px: the centre keeps most of the weight
    assert kernels[:, 1, 1].min() > 0.5
    assert NoisePipeline(StampNoiseConfig())._scale(torch.zeros(1, 3, 64, 64)) == pytest.approx(0.16)
    assert NoisePipeline(StampNoiseConfig(reference_size=0))._scale(torch.zeros(1, 3, 64, 64)) == 1.0
    torch.manual_seed(1)
    x = torch.full((16, 3, 64, 64), 0.5)
    scaled = NoisePipeline(StampNoiseConfig())(x, {"noise": 1.0}) - x
    pixels = NoisePipeline(StampNoiseConfig(reference_size=0))(x, {"noise": 1.0}) - x
    assert scaled.std() < 0.3 * pixels.std()  # std 0.02 * 0.16 against 0.02


def test_jpeg_at_the_reference_scale():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    quality = torch.tensor([50, 90])
    jpeg = DiffJPEG(100, rounding="ste")
    out = jpeg_at_scale(jpeg, x, quality, 4.0)
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    assert torch.equal(jpeg_at_scale(jpeg, x, quality, 1.0), jpeg(x, quality))
    # blocks of 8 px at 4x are 2 px of the image: less loss than JPEG on the image itself
    smooth = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8), size=32, mode="bilinear")
    assert (jpeg_at_scale(jpeg, smooth, quality, 4.0) - smooth).abs().mean() < (
        jpeg(smooth, quality) - smooth
    ).abs().mean()
    pipeline = NoisePipeline(StampNoiseConfig(jpeg_scale="reference", reference_size=128, jpeg_rounding="ste"))
    assert pipeline(torch.rand(2, 3, 32, 32), {"jpeg": 1.0}).shape == (2, 3, 32, 32)


# ---- LPIPS --------------------------------------------------------------------------------------------


class _FakeAlexFeatures(nn.Module):
    """lpips's backbone layout: slices holding layers under their torchvision feature index."""

    def __init__(self):
        super().__init__()
        self.slice1 = nn.Sequential()
        self.slice1.add_module("0", nn.Conv2d(3, 4, 3, padding=1))
        self.slice2 = nn.Sequential()
        self.slice2.add_module("3", nn.Conv2d(4, 4, 3, padding=1))


def _fake_lpips_package(root):
    """A stand-in ``lpips`` module: the real package's constructor and call, randomly initialised layers."""
    package = types.ModuleType("lpips")
    package.__file__ = str(root / "lpips" / "__init__.py")

    class LPIPS(nn.Module):
        def __init__(self, net="alex", pretrained=True, pnet_rand=False, verbose=True):
            super().__init__()
            assert net == "alex" and pnet_rand  # never ask torchvision for its weights
            self.net = _FakeAlexFeatures()

        def forward(self, a, b, normalize=False):
            if normalize:
                a, b = 2 * a - 1, 2 * b - 1
            fa, fb = self.net.slice1(a), self.net.slice1(b)
            d = (fa - fb).square().mean(dim=(1, 2, 3)) + (self.net.slice2(fa) - self.net.slice2(fb)).square().mean(
                dim=(1, 2, 3)
            )
            return d.view(-1, 1, 1, 1)

    package.LPIPS = LPIPS
    return package


@pytest.fixture
def lpips_weights(tmp_path, monkeypatch):
    """A TORCH_HOME with random 'AlexNet' weights and an lpips package with its linear weights file."""
    try:
        import lpips as package  # the real one, when installed: its own layers, random backbone weights

        features = package.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False).net
    except ImportError:
        package = _fake_lpips_package(tmp_path)
        monkeypatch.setitem(sys.modules, "lpips", package)
        features = _FakeAlexFeatures()
        linear = tmp_path / "lpips" / "weights" / "v0.1" / "alex.pth"
        linear.parent.mkdir(parents=True)
        torch.save({}, linear)
    state = {}
    for _, block in features.named_children():
        for index, layer in block.named_children():
            state.update({f"features.{index}.{k}": v for k, v in layer.state_dict().items()})
    hub = tmp_path / "torch_home"
    (hub / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, hub / "hub" / "checkpoints" / ALEXNET_FILE)
    monkeypatch.setenv("TORCH_HOME", str(hub))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return state


def test_lpips_loads_local_weights_and_is_a_differentiable_distance(lpips_weights):
    distance = load_lpips()
    key = next(iter(lpips_weights))
    slice_key = next(k for k in distance.model.net.state_dict() if k.endswith(key.split(".", 1)[1]))
    torch.testing.assert_close(distance.model.net.state_dict()[slice_key], lpips_weights[key])
    a = torch.rand(2, 3, 32, 32, requires_grad=True)
    b = torch.rand(2, 3, 32, 32)
    d = distance(a, b)
    assert d.shape == (2,) and (d > 0).all()
    torch.testing.assert_close(distance(b, b), torch.zeros(2))
    d.sum().backward()
    assert a.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in distance.parameters())


def test_lpips_joins_the_generator_loss(lpips_weights, tmp_path):
    losses = StampLossConfig(gan=False, lpips=True, no_image_loss_steps=0, l2_ramp=1, lpips_ramp=1)
    task = StampTask(StampModelConfig(32), losses, StampNoiseConfig().scaled(0), epoch_length=4)
    result = _tiny_train(tmp_path / "run", task)
    assert result.train_metrics["w_lpips"] > 0 and result.train_metrics["lpips"] > 0  # averaged over the steps
    assert "lpips" not in result.models  # a fixed measure, not a trained model


def test_lpips_missing_weights_or_package_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setitem(sys.modules, "lpips", _fake_lpips_package(tmp_path))
    with pytest.raises(UserError, match="LPIPS weights not found"):
        load_lpips()
    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips raises ImportError
    with pytest.raises(UserError, match="lpips package"):
        load_lpips()


# ---- the command line ------------------------------------------------------------------------------


def _task_of(args):
    parser = __import__("argparse").ArgumentParser()
    sub = parser.add_subparsers()
    stamp_cli.add_parser(sub)
    return stamp_cli._task_from_args(parser.parse_args(["stamp", "train", *args]))


def test_train_options_reach_the_configs():
    task = _task_of(["--preset", "paper", "--secret-scale", "3", "--image-size", "64"])
    assert task.loss_config.l2_scale == 2.0 and task.loss_config.secret_scale == 3.0  # the option wins
    assert task.loss_config.no_image_loss_steps == 1500
    task = _task_of(["--jpeg-scale", "reference", "--reference-size", "256", "--jpeg-rounding", "ste"])
    assert (task.noise_config.jpeg_scale, task.noise_config.reference_size) == ("reference", 256)
    assert task.noise_config.jpeg_rounding == "ste"
    default = _task_of([])
    assert default.loss_config == StampLossConfig() and default.noise_config == StampNoiseConfig()


def test_lpips_without_the_package_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)
    args = ["stamp", "train", "--lpips", "--out", str(tmp_path / "run"), "--image-size", "32", "--steps", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lpips" in err[0]
    assert main(["stamp", "train", "--jpeg-scale", "reference", "--reference-size", "0", "--out", str(tmp_path)]) == 2
    assert "reference" in capsys.readouterr().err
