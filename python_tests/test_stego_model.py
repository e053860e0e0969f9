"""The stego family: colour conversion, the INN steganography model, its
losses and perturbations, and training through the shared engine."""

import dataclasses
import json

import pytest
import torch

from stegafast.color import JFIF_RGB_TO_YCBCR, rgb_to_ycbcr_01, rgb_to_ycbcr_delta, ycbcr_01_to_rgb, ycbcr_to_rgb_delta
from stegafast.models.stego import StegoINN, StegoLossConfig, StegoModelConfig, StegoTask, losses
from stegafast.ops.lifting import ilwt53_forward
from stegafast.train import RunDir, TrainConfig, load_checkpoint, train

TINY = StegoModelConfig(blocks=2, hidden=16)


def _images(b=2, h=32, w=32, dtype=torch.float32):
    return torch.rand(b, 3, h, w, dtype=dtype), torch.rand(b, 3, h, w, dtype=dtype)


# ---- colour ----------------------------------------------------------------------------------


def test_jfif_ycbcr_known_values_and_round_trip():
    rgb = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(3, 1, 1)  # pure red
    ycc = rgb_to_ycbcr_01(rgb).flatten()
    assert torch.allclose(ycc, torch.tensor([0.299, 0.5 - 0.168736, 1.0], dtype=torch.float64))
    grey = torch.full((3, 1, 1), 0.4, dtype=torch.float64)
    assert torch.allclose(rgb_to_ycbcr_01(grey).flatten(), torch.tensor([0.4, 0.5, 0.5], dtype=torch.float64))
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    assert torch.allclose(ycbcr_01_to_rgb(rgb_to_ycbcr_01(x)), x, atol=1e-12)
    assert torch.allclose(ycbcr_to_rgb_delta(rgb_to_ycbcr_delta(x)), x, atol=1e-12)
    # the delta is the linear part: differences of images map to differences of their YCbCr
    y = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    assert torch.allclose(rgb_to_ycbcr_01(x) - rgb_to_ycbcr_01(y), rgb_to_ycbcr_delta(x - y), atol=1e-12)
    assert JFIF_RGB_TO_YCBCR[0].sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        rgb_to_ycbcr_01(torch.rand(2, 4, 5, 5))


# ---- the model -------------------------------------------------------------------------------


def _trained_like(model: StegoINN, sigma: float = 0.05) -> StegoINN:
    """``model`` with every parameter moved off its identity start, as training would: a new model is exactly the
    identity map, which would make an inversion test trivial."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(sigma * torch.randn_like(parameter))
    return model


def test_a_new_model_embeds_the_cover_unchanged():
    # the INN starts at the identity, so the proposal is the cover itself and stego == cover at step 0
    cover, secret = _images(2, 32, 32)
    with torch.no_grad():
        stego = StegoINN(StegoModelConfig(blocks=3, hidden=16)).embed(cover, secret)
    # float32 rounding of the colour conversions in compose only (its change is exactly zero)
    assert torch.allclose(stego, cover, atol=1e-6, rtol=0)
    # the INN core alone is the identity to float64 precision, odd sizes included
    x = torch.rand(2, 6, 18, 23, dtype=torch.float64)
    assert torch.allclose(StegoINN(TINY).double().transform(x), x, atol=1e-12, rtol=0)


def test_the_glow_start_mixes_cover_and_secret():
    torch.manual_seed(0)
    cover, secret = _images(2, 32, 32)
    with torch.no_grad():
        stego = StegoINN(StegoModelConfig(blocks=2, hidden=16, init="glow")).embed(cover, secret)
    # data-initialised ActNorm and random rotations: the change saturates the luma bound for many pixels
    assert (rgb_to_ycbcr_01(stego) - rgb_to_ycbcr_01(cover))[:, 0].abs().max() > 0.015


@pytest.mark.parametrize("size", [(16, 16), (32, 32), (18, 22)])
def test_inn_core_inverts_exactly_in_float64(size):
    model = _trained_like(StegoINN(TINY).double())
    x = torch.rand(3, 6, *size, dtype=torch.float64)
    y = model.transform(x)
    assert (y - x).abs().max() > 1e-3  # not trivially the identity
    assert torch.allclose(model.inverse_transform(y), x, atol=1e-6, rtol=0)


def test_blocks_invert_exactly_in_the_wavelet_domain_at_odd_sizes():
    model = _trained_like(StegoINN(TINY).double())
    z = ilwt53_forward(torch.rand(2, 6, 17, 23, dtype=torch.float64), False)
    out, _ = model.blocks(z)
    back, _ = model.blocks.inverse(out)
    assert torch.allclose(back, z, atol=1e-6, rtol=0)


@pytest.mark.parametrize("batch,h,w", [(1, 32, 32), (3, 32, 32), (2, 17, 23), (1, 16, 16)])
def test_shapes_and_stego_range(batch, h, w):
    model = StegoINN(TINY)
    cover, secret = _images(batch, h, w)
    stego, recovered = model(cover, secret)
    assert stego.shape == recovered.shape == (batch, 3, h, w)
    assert stego.dtype == recovered.dtype == torch.float32
    for image in (stego, recovered):
        assert image.min() >= 0 and image.max() <= 1 and torch.isfinite(image).all()
    assert torch.equal(model.extract(stego), recovered)


@pytest.mark.parametrize("image_range, span", [("unit", 1.0), ("signed", 2.0)])
def test_the_residual_is_bounded_per_ycbcr_channel(image_range, span):
    # kY and kC are in the network's range: in [-1, 1] the bound is half as large in [0, 1]
    model = StegoINN(StegoModelConfig(blocks=1, hidden=8, k_y=0.02, k_c=0.06, image_range=image_range))
    cover = torch.full((1, 3, 16, 16), 0.5)  # mid-grey: the final clamp to [0, 1] does not act
    wild = cover + 10 * torch.randn_like(cover)  # a proposal far from the cover
    change = rgb_to_ycbcr_01(model.compose(cover, wild)) - rgb_to_ycbcr_01(cover)
    assert change[:, 0].abs().max() <= 0.02 / span + 1e-6
    assert change[:, 1:].abs().max() <= 0.06 / span + 1e-6
    assert change[:, 0].abs().max() > 0.019 / span  # saturates near the bound
    small = cover + 1e-4 * torch.randn_like(cover)  # small changes pass almost unchanged (unit slope)
    assert torch.allclose(model.compose(cover, small), small, atol=1e-6)


def test_gradients_reach_every_parameter():
    model = StegoINN(TINY)
    cover, secret = _images()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)

    def backward():
        optimizer.zero_grad()
        stego, recovered = model(cover, secret)
        losses.stego_loss(cover, secret, stego, recovered, StegoLossConfig(), alpha_hid=2.0).total.backward()

    backward()
    assert all(p.grad is not None for p in model.parameters())
    # the couplings' last layers start at zero, which blocks the gradient to the layers before them
    # at first; after one step every parameter gets a gradient
    optimizer.step()
    backward()
    missing = [n for n, p in model.named_parameters() if not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize(
    "bad,message",
    [
        (torch.rand(1, 3, 15, 32), "at least 16x16"),
        (torch.rand(1, 4, 32, 32), r"\(B, 3, H, W\)"),
        (torch.rand(3, 32, 32), r"\(B, 3, H, W\)"),
    ],
)
def test_bad_images_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        StegoINN(TINY).extract(bad)


def test_cover_and_secret_must_share_a_size():
    with pytest.raises(ValueError, match="resize the secret"):
        StegoINN(TINY).embed(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 48))


def test_config_is_checked_and_round_trips():
    assert StegoModelConfig() == StegoModelConfig(blocks=8, hidden=128, k_y=0.02, k_c=0.06)
    assert StegoModelConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="blocks must be a positive integer"):
        StegoModelConfig(blocks=0)
    with pytest.raises(ValueError, match="unknown stego model settings"):
        StegoModelConfig.from_dict({"blocks": 2, "depth": 3})
    assert StegoModelConfig().init == "identity"
    # a checkpoint written before `init` existed loads (its saved weights then replace the start anyway); one
    # written before `image_range` existed was trained in [0, 1] and keeps it
    assert StegoModelConfig.from_dict({"blocks": 2, "hidden": 16}) == dataclasses.replace(TINY, image_range="unit")
    with pytest.raises(ValueError, match="init must be one of glow, identity"):
        StegoModelConfig(init="random")
    with pytest.raises(ValueError, match="quant_prob must be a probability"):
        StegoLossConfig(quant_prob=1.5)
    defaults = StegoLossConfig()
    assert (defaults.alpha_hid_start, defaults.alpha_hid_end, defaults.alpha_rec_mse, defaults.alpha_rec_ssim) == (
        2.0,
        24.0,
        3.0,
        1.0,  # rebalanced from the seed's 5.0 (config.py)
    )
    assert (defaults.w_ll, defaults.w_lh, defaults.w_hl, defaults.w_hh, defaults.w_ll2) == (0.35, 0.14, 0.14, 0.06, 0.2)
    assert (defaults.perturb_from, defaults.lr) == (0.85, 3e-5)


# ---- losses ----------------------------------------------------------------------------------


def test_each_loss_term_on_constructed_inputs():
    a = torch.rand(2, 3, 32, 32)
    config = StegoLossConfig()
    for term in (losses.hiding_loss, losses.recovery_mse, losses.recovery_ssim, losses.gradient_loss):
        assert term(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.wavelet_loss(a, a, config).item() == 0.0
    assert losses.hiding_loss(a, a + 0.1).item() == pytest.approx(0.01, rel=1e-4)
    assert losses.recovery_ssim(a, 1 - a).item() > 1.0  # anti-correlated images: SSIM < 0
    # a constant shift has no edges: the gradient loss ignores it, the wavelet loss sees it only in LL
    assert losses.gradient_loss(a, a + 0.1).item() == pytest.approx(0.0, abs=1e-5)
    # the gradient loss compares edge strength: inverted contrast keeps it, halved contrast does not
    assert losses.gradient_loss(a, 1 - a).item() == pytest.approx(0.0, abs=1e-5)
    assert losses.gradient_loss(a, a / 2).item() > 0.1
    shifted = losses.wavelet_loss(a, a + 0.1, config).item()
    assert shifted == pytest.approx((config.w_ll + config.w_ll2) * 0.01, rel=1e-3)
    # TV: a vertical stripe pattern of amplitude 1 changes at every horizontal step, never vertically
    stripes = (torch.arange(32) % 2).float().expand(1, 3, 32, 32)
    assert losses.total_variation(stripes).item() == pytest.approx(0.5)
    assert losses.total_variation(torch.full((1, 3, 32, 32), 0.3)).item() == 0.0
    # high-frequency noise costs the HH band, weighted less than LL
    only_ll = StegoLossConfig(w_lh=0, w_hl=0, w_hh=0, w_ll2=0)
    only_hh = StegoLossConfig(w_ll=0, w_lh=0, w_hl=0, w_ll2=0)
    checker = ((torch.arange(32).view(-1, 1) + torch.arange(32)) % 2).float().expand(1, 3, 32, 32) * 0.1
    z = torch.zeros(1, 3, 32, 32)
    assert losses.wavelet_loss(z, checker, only_hh).item() > 0
    assert losses.wavelet_loss(z, checker, only_ll).item() < losses.wavelet_loss(z, checker, only_hh).item()


def test_total_combines_the_terms_with_the_configured_weights():
    cover, secret = _images()
    stego, recovered = cover + 0.01, secret * 0.9
    config = StegoLossConfig(alpha_rec_ssim=5.0)
    terms = losses.stego_loss(cover, secret, stego, recovered, config, alpha_hid=7.0)
    expected = (
        7.0 * terms.hiding
        + 3.0 * terms.rec_mse
        + 5.0 * terms.rec_ssim
        + config.lambda_grad * terms.gradient
        + config.lambda_tv * terms.tv
        + terms.wavelet
    )
    assert torch.allclose(terms.total, expected)


def test_straight_through_quantisation():
    x = torch.tensor([0.0, 0.1, 0.5, 1.0], requires_grad=True)
    q = losses.quantize_straight_through(x)
    assert torch.equal(q.detach(), (x.detach() * 255).round() / 255)
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones(4))


def test_perturbation_probabilities_and_noise_level():
    stego = torch.rand(400, 3, 16, 16)
    never = losses.perturb(stego, StegoLossConfig(quant_prob=0, noise_prob=0))
    assert torch.equal(never, stego)
    quantised = losses.perturb(stego, StegoLossConfig(quant_prob=1, noise_prob=0))
    assert torch.equal(quantised, (stego * 255).round() / 255)
    noisy = losses.perturb(stego, StegoLossConfig(quant_prob=0, noise_prob=1)) - stego
    assert 0.002 <= noisy.std().item() <= 0.003
    seed = losses.perturb(stego, StegoLossConfig())  # the seed's 0.15 each
    changed = ((seed - stego).flatten(1).abs().amax(1) > 0).float().mean().item()
    assert 0.15 < changed < 0.45  # 1 - 0.85^2 = 0.28 of the samples


def test_perturbation_switches_on_at_85_percent_of_training():
    task = StegoTask(TINY, image_size=32)
    assert not task.perturbing(0.0) and not task.perturbing(0.849)
    assert task.perturbing(0.85) and task.perturbing(0.99)
    assert task.alpha_hid(0, 100) == 2.0 and task.alpha_hid(50, 100) == 13.0 and task.alpha_hid(100, 100) == 24.0


# ---- training through the engine -------------------------------------------------------------


def _quick_config(out, steps, **kw):
    return TrainConfig(
        out=out,
        steps=steps,
        batch_size=2,
        device="cpu",
        workers=0,
        log_every=1,
        progress=False,
        tensorboard=False,
        lr=1e-3,
        **kw,
    )


def _losses(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_decreases_the_loss_checkpoints_and_resumes(tmp_path):
    torch.manual_seed(0)
    # one fixed pair, so the loss trend is not drowned by the variety of the crops
    cover, secret = _images(1, 32, 32)
    data = torch.utils.data.TensorDataset(cover.repeat(8, 1, 1, 1), secret.repeat(8, 1, 1, 1))

    class Fixed(StegoTask):
        def train_dataset(self):
            return data

        def val_dataset(self):
            return torch.utils.data.TensorDataset(cover, secret)

    run = tmp_path / "run"
    train(Fixed(TINY, StegoLossConfig(perturb_from=1.0), image_size=32), _quick_config(run, 12))
    values = [r["loss"] for r in _losses(run) if r["split"] == "train"]
    assert len(values) == 12
    assert any(r["split"] == "val" and "psnr_mean" in r for r in _losses(run))
    assert sum(values[-3:]) / 3 < sum(values[:3]) / 3
    latest = RunDir(run).latest()
    state = load_checkpoint(latest, expect_task="stego")
    assert state["identity"]["model"] == TINY.to_dict()
    result = train(Fixed(TINY, image_size=32), _quick_config(run, 14, resume=True))
    assert result.step == 14 and RunDir(run).latest().name == "step-00000014.pt"


def test_bundled_photo_datasets():
    task = StegoTask(TINY, image_size=32)
    cover, secret = task.train_dataset()[0]
    assert cover.shape == secret.shape == (3, 32, 32)
    assert len(task.val_dataset()) == 4
    assert StegoTask(TINY, data="somewhere", image_size=32).val_dataset() is None
    with pytest.raises(ValueError, match="image size must be an integer >= 16"):
        StegoTask(TINY, image_size=8)


def test_bf16_autocast_training_steps(tmp_path):
    data = torch.utils.data.TensorDataset(*_images(4, 32, 32))

    class Synthetic(StegoTask):
        def train_dataset(self):
            return data

        def val_dataset(self):
            return None

    result = train(Synthetic(TINY, image_size=32), _quick_config(tmp_path / "run", 2, amp="bf16"))
    assert result.step == 2 and torch.isfinite(torch.tensor(result.train_metrics["loss"]))
    stego, recovered = result.models["model"](*_images(1, 32, 32))
    assert stego.dtype == torch.float32 and torch.isfinite(recovered).all()
