"""The stego network's value range (the seed's [-1, 1] or the former [0, 1]), the old checkpoints that keep
[0, 1], and the parameter counts of the capacity presets."""

import dataclasses

import pytest
import torch

from stegafast.cli import build_parser
from stegafast.metrics import ssim
from stegafast.models.stego import StegoINN, StegoLossConfig, StegoModelConfig, StegoTask, losses
from stegafast.models.stego.cli import _task_from_args
from stegafast.models.stego.config import STEGO_PRESETS
from stegafast.models.stego.inference import load_stego
from stegafast.train import TrainConfig, atomic_save, load_checkpoint, train

TINY = StegoModelConfig(blocks=2, hidden=16)


def _images(b=2, size=32):
    return torch.rand(b, 3, size, size), torch.rand(b, 3, size, size)


def _perturbed(config: StegoModelConfig, seed: int = 0) -> StegoINN:
    """A model of ``config`` whose weights are all moved off their start (the identity hides nothing)."""
    torch.manual_seed(seed)
    model = StegoINN(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_the_presets_parameter_counts():
    # the seed reports 3.8M weights for 8 blocks of 128 hidden channels; Glow's 3x3-1x1-3x3 subnet holds 0.47M
    count = {name: sum(p.numel() for p in StegoINN(c).parameters()) for name, c in STEGO_PRESETS.items()}
    assert count == {"paper": 3_884_800, "small": 474_880}
    assert STEGO_PRESETS["paper"] == StegoModelConfig()


@pytest.mark.parametrize("image_range", ["signed", "unit"])
def test_a_new_model_is_the_identity_in_either_range(image_range):
    cover, secret = _images()
    model = StegoINN(dataclasses.replace(TINY, image_range=image_range))
    with torch.no_grad():
        stego = model.embed(cover, secret)
    # float32 rounding of the range mapping and colour conversions only
    assert torch.allclose(stego, cover, atol=1e-6, rtol=0)
    assert model.to_range(torch.tensor([0.0, 1.0])).tolist() == ([-1.0, 1.0] if image_range == "signed" else [0, 1])


def test_the_range_changes_what_a_trained_network_does():
    cover, secret = _images()
    unit = _perturbed(dataclasses.replace(TINY, image_range="unit"))
    signed = StegoINN(TINY)
    signed.load_state_dict(unit.state_dict())
    with torch.no_grad():
        assert not torch.allclose(unit.embed(cover, secret), signed.embed(cover, secret), atol=1e-3)
        # extraction feeds zeros in the network's range: black in [0, 1], mid-grey in [-1, 1]
        assert not torch.allclose(unit.extract(cover), signed.extract(cover), atol=1e-3)


def test_the_signed_losses_weigh_pixels_more_than_ssim():
    cover, secret = _images()
    stego, recovered = (cover + 0.01 * torch.randn_like(cover)).clamp(0, 1), torch.rand_like(secret)
    config = StegoLossConfig()
    unit = losses.stego_loss(cover, secret, stego, recovered, config, 2.0)
    signed = losses.stego_loss(cover, secret, stego, recovered, config, 2.0, (-1.0, 1.0))
    for mse in ("hiding", "rec_mse", "wavelet"):
        assert torch.allclose(getattr(signed, mse), 4 * getattr(unit, mse), rtol=1e-5)
    for l1 in ("gradient", "tv"):
        assert torch.allclose(getattr(signed, l1), 2 * getattr(unit, l1), rtol=1e-3)
    # SSIM of the mapped images with the range as its data range; not the [0, 1] value, since its luminance term
    # depends on the means, which the shift to [-1, 1] moves
    assert torch.allclose(signed.rec_ssim, 1 - ssim(2 * recovered - 1, 2 * secret - 1, data_range=2.0), atol=1e-6)
    assert not torch.allclose(signed.rec_ssim, unit.rec_ssim, atol=1e-3)


def _old_checkpoint(tmp_path):
    """A checkpoint trained in [0, 1] whose identity lacks ``image_range``, as every one written before it."""
    data = torch.utils.data.TensorDataset(*_images(4))

    class Synthetic(StegoTask):
        def train_dataset(self):
            return data

        def val_dataset(self):
            return None

    unit = dataclasses.replace(TINY, image_range="unit")
    config = TrainConfig(out=tmp_path / "run", steps=2, batch_size=2, device="cpu", workers=0, progress=False, lr=1e-2)
    result = train(Synthetic(unit, image_size=32), config)
    path = next((tmp_path / "run").rglob("step-*.pt"))
    state = load_checkpoint(path, expect_task="stego")
    del state["identity"]["model"]["image_range"]
    return atomic_save(state, tmp_path / "old.pt"), result.models["model"]


def test_an_old_checkpoint_keeps_the_unit_range(tmp_path):
    old, trained = _old_checkpoint(tmp_path)
    model = load_stego(old)
    assert model.config.image_range == "unit"
    cover, secret = _images()
    with torch.no_grad():
        stego = model.embed(cover, secret)
        assert torch.equal(stego, trained.eval().embed(cover, secret))
        assert torch.equal(model.extract(stego), trained.extract(stego))


def test_the_train_command_builds_the_preset_and_the_range():
    def task(*options):
        return _task_from_args(build_parser().parse_args(["stego", "train", "--image-size", "32", *options]))

    assert task().model_config == StegoModelConfig()
    small = task("--preset", "small", "--image-range", "unit", "--alpha-rec-ssim", "1.5")
    config = small.model_config
    assert (config.subnet, config.hidden, config.image_range) == ("glow", 128, "unit")
    assert small.loss_config.alpha_rec_ssim == 1.5
    assert task("--preset", "small", "--subnet", "dense", "--hidden", "32").model_config.subnet == "dense"
