"""Image metrics: PSNR and SSIM against scikit-image on the bundled photographs,
MS-SSIM against an independent NumPy/SciPy oracle, gradients, bit errors on
constructed inputs, and bad input."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.filters import gaussian
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch.autograd import gradcheck

from stegafast.data import load_bundled_photo
from stegafast.metrics import (
    MS_SSIM_WEIGHTS,
    bit_accuracy,
    bit_error_rate,
    bit_errors,
    ms_ssim,
    ms_ssim_min_size,
    psnr,
    quantize_uint8,
    ssim,
)

PHOTOS = ["astronaut", "camera", "chelsea", "coins", "text"]
DISTORTIONS = ["noise", "blur", "noise+blur"]


def _photo(name):
    """(H, W, C) float64 in [0, 1]."""
    return load_bundled_photo(name).permute(1, 2, 0).numpy().astype(np.float64) / 255


def _distort(x, kind, seed=0):
    rng = np.random.default_rng(seed)
    if "noise" in kind:
        x = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)
    if "blur" in kind:
        x = gaussian(x, sigma=2, channel_axis=-1)
    return x


def _batch(*arrays, dtype=torch.float64):
    """(H, W, C) arrays -> one (N, C, H, W) tensor."""
    return torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a in arrays]).to(dtype)


def _skimage_ssim(x, y, data_range=1.0):
    return structural_similarity(
        x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range, channel_axis=2
    )


# --- PSNR -----------------------------------------------------------------------


def test_psnr_known_value_and_per_image():
    a = torch.zeros(2, 3, 4, 5)
    b = torch.stack([torch.full((3, 4, 5), 0.1), torch.full((3, 4, 5), 0.01)])
    values = psnr(a, b, reduction="none")
    torch.testing.assert_close(values, torch.tensor([20.0, 40.0]))
    torch.testing.assert_close(psnr(a, b), torch.tensor(30.0))
    torch.testing.assert_close(psnr(a * 255, b * 255, data_range=255), torch.tensor(30.0))


@pytest.mark.parametrize("name", ["chelsea", "camera"])
def test_psnr_matches_skimage(name):
    x = _photo(name)
    y = _distort(x, "noise")
    expected = peak_signal_noise_ratio(x, y, data_range=1.0)
    assert psnr(_batch(x), _batch(y)).item() == pytest.approx(expected, abs=1e-9)
    assert psnr(_batch(x, dtype=torch.float32), _batch(y, dtype=torch.float32)).item() == pytest.approx(
        expected, abs=1e-4
    )


def test_psnr_identical_images_are_infinite():
    a = torch.rand(3, 3, 8, 8)
    b = a.clone()
    b[1] += 0.01
    values = psnr(a, b, reduction="none")
    assert math.isinf(values[0]) and values[0] > 0 and math.isinf(values[2])
    assert values[1].item() == pytest.approx(40.0, abs=1e-3)
    assert psnr(a, b).item() == math.inf
    assert not torch.isnan(values).any()


def test_psnr_half_types_compute_in_float32():
    a, b = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    out = psnr(a.bfloat16(), b.bfloat16())
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(psnr(a.bfloat16().float(), b.bfloat16().float()).item(), abs=1e-5)


# --- SSIM against scikit-image ---------------------------------------------------


@pytest.mark.parametrize("kind", DISTORTIONS)
@pytest.mark.parametrize("name", PHOTOS)
def test_ssim_matches_skimage_on_photos(name, kind):
    x = _photo(name)
    y = _distort(x, kind)
    expected = _skimage_ssim(x, y)
    assert ssim(_batch(x), _batch(y)).item() == pytest.approx(expected, abs=1e-10)
    # float32 accumulates rounding in the second moments; measured worst 2.8e-6 over these photos.
    got32 = ssim(_batch(x, dtype=torch.float32), _batch(y, dtype=torch.float32)).item()
    assert got32 == pytest.approx(expected, abs=1e-5)


def test_ssim_per_image_and_data_range():
    x1, x2 = _photo("astronaut")[:200, :240], _photo("coffee")[:200, :240]
    y1, y2 = _distort(x1, "noise", seed=1), _distort(x2, "blur")
    values = ssim(_batch(x1, x2), _batch(y1, y2), reduction="none")
    expected = torch.tensor([_skimage_ssim(x1, y1), _skimage_ssim(x2, y2)], dtype=torch.float64)
    torch.testing.assert_close(values, expected, rtol=0, atol=1e-10)
    scaled = ssim(_batch(x1) * 255, _batch(y1) * 255, data_range=255)
    assert scaled.item() == pytest.approx(_skimage_ssim(x1 * 255, y1 * 255, data_range=255), abs=1e-10)


def test_ssim_averages_channels():
    a, b = torch.rand(2, 3, 20, 24, dtype=torch.float64), torch.rand(2, 3, 20, 24, dtype=torch.float64)
    per_channel = torch.stack([ssim(a[:, c : c + 1], b[:, c : c + 1], reduction="none") for c in range(3)])
    torch.testing.assert_close(ssim(a, b, reduction="none"), per_channel.mean(0))


def test_ssim_of_identical_images_is_one_and_window_sized_input_works():
    a = torch.rand(1, 3, 11, 11)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(a, torch.rand(1, 3, 11, 11)).item() < 0.5


def test_ssim_gradcheck_float64():
    a = torch.rand(2, 1, 12, 11, dtype=torch.float64, requires_grad=True)
    b = torch.rand(2, 1, 12, 11, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda x, y: ssim(x, y, reduction="none"), (a, b))
    c = torch.rand(1, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 2, 7, 6, dtype=torch.float64)
    assert gradcheck(lambda x: ssim(x, target, window=5, sigma=0.8), (c,))


def test_ssim_as_a_loss_improves_a_reconstruction():
    target = torch.from_numpy(_photo("camera")[200:248, 200:248]).permute(2, 0, 1)[None].float()
    guess = torch.rand_like(target).requires_grad_()
    opt = torch.optim.Adam([guess], lr=0.05)
    start = ssim(guess, target).item()
    for _ in range(30):
        opt.zero_grad()
        (1 - ssim(guess, target)).backward()
        opt.step()
    assert ssim(guess, target).item() > start + 0.5


def test_ssim_half_types_compute_in_float32():
    a = torch.rand(1, 3, 32, 32)
    b = (a + 0.05 * torch.randn_like(a)).clamp(0, 1)
    out = ssim(a.half(), b.half())
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(ssim(a.half().float(), b.half().float()).item(), abs=1e-6)


# --- MS-SSIM ----------------------------------------------------------------------


def _oracle_ms_ssim(x, y, weights=MS_SSIM_WEIGHTS):
    """One channel (H, W) float64, written independently with scipy.ndimage: the
    scale's statistics filtered with reflected borders and the border strip
    dropped, scales made by block means of 2x2 pixels."""
    c1, c2, pad = 0.01**2, 0.03**2, 5
    result = 1.0
    for scale, weight in enumerate(weights):
        if scale:
            h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
            x = x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
            y = y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
        f = lambda v: ndimage.gaussian_filter(v, 1.5, truncate=3.5, mode="reflect")[pad:-pad, pad:-pad]  # noqa: E731
        mx, my = f(x), f(y)
        vx, vy, cov = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
        cs = (2 * cov + c2) / (vx + vy + c2)
        luminance = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
        value = (luminance * cs).mean() if scale == len(weights) - 1 else cs.mean()
        result *= max(value, 1e-8) ** weight
    return result


@pytest.mark.parametrize("kind", DISTORTIONS)
def test_ms_ssim_matches_oracle_on_a_photo(kind):
    x = _photo("chelsea")[:, :401]  # 300x401: odd sides exercise the dropped row/column
    y = _distort(x, kind)
    expected = np.mean([_oracle_ms_ssim(x[..., c], y[..., c]) for c in range(3)])
    assert ms_ssim(_batch(x), _batch(y)).item() == pytest.approx(expected, abs=1e-10)
    assert ms_ssim(_batch(x, dtype=torch.float32), _batch(y, dtype=torch.float32)).item() == pytest.approx(
        expected, abs=1e-5
    )


def test_ms_ssim_orders_distortions_and_is_one_for_identical():
    x = _batch(_photo("coins"), dtype=torch.float32)
    assert ms_ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    values = [ms_ssim(x, (x + s * torch.randn_like(x)).clamp(0, 1)).item() for s in (0.02, 0.05, 0.15)]
    assert values[0] > values[1] > values[2] > 0


def test_ms_ssim_needs_five_scales_of_image():
    assert ms_ssim_min_size() == 176
    a = torch.rand(1, 3, 176, 200)
    assert 0 < ms_ssim(a, torch.rand_like(a)).item() < 1
    with pytest.raises(ValueError, match=r"at least 176x176, got 175x200"):
        ms_ssim(torch.rand(1, 3, 175, 200), torch.rand(1, 3, 175, 200))


def test_ms_ssim_gradcheck_with_two_small_scales():
    a = torch.rand(2, 1, 9, 8, dtype=torch.float64, requires_grad=True)
    b = torch.rand(2, 1, 9, 8, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda x, y: ms_ssim(x, y, window=3, sigma=0.7, weights=(0.4, 0.6), reduction="none"), (a, b))


def test_ms_ssim_anticorrelated_images_give_zero_not_nan():
    a = torch.rand(1, 1, 176, 176)
    out = ms_ssim(a, 1 - a)
    assert torch.isfinite(out) and 0 <= out.item() < 0.1


# --- bad input --------------------------------------------------------------------


@pytest.mark.parametrize("metric", [psnr, ssim, ms_ssim])
def test_metrics_reject_bad_input(metric):
    a = torch.rand(1, 3, 180, 180)
    with pytest.raises(ValueError, match="same shape"):
        metric(a, a[:, :2])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        metric(a[0], a[0])
    with pytest.raises(TypeError, match="floating"):
        metric((a * 255).byte(), (a * 255).byte())
    with pytest.raises(TypeError, match="same dtype"):
        metric(a, a.double())
    with pytest.raises(ValueError, match="data_range"):
        metric(a, a, data_range=0)
    with pytest.raises(ValueError, match="reduction"):
        metric(a, a, reduction="sum")


def test_ssim_rejects_bad_windows():
    a = torch.rand(1, 1, 10, 12)
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        ssim(a, a)
    with pytest.raises(ValueError, match="odd"):
        ssim(a, a, window=4)
    with pytest.raises(ValueError, match="sigma"):
        ssim(a, a, window=5, sigma=0)
    with pytest.raises(ValueError, match="weights"):
        ms_ssim(torch.rand(1, 1, 200, 200), torch.rand(1, 1, 200, 200), weights=())


# --- bit errors ---------------------------------------------------------------------


def test_bit_errors_count_flipped_bits_per_plane():
    original = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    recovered = original.clone()
    flat = recovered.view(-1)
    flat[:10] ^= 1 << 0  # 10 values: least significant bit
    flat[10:13] ^= 1 << 7  # 3 values: most significant bit
    flat[20:25] ^= (1 << 2) | (1 << 5)  # 5 values: two planes each
    result = bit_errors(recovered, original)
    n = original.numel()
    expected = torch.zeros(8, dtype=torch.float64)
    expected[0], expected[7], expected[2], expected[5] = 10 / n, 3 / n, 5 / n, 5 / n
    torch.testing.assert_close(result.per_plane, expected)
    assert result.bits == 8 * n
    assert result.ber.item() == pytest.approx((10 + 3 + 10) / (8 * n))
    assert result.accuracy.item() == pytest.approx(1 - result.ber.item())
    assert bit_error_rate(recovered, original) == pytest.approx(result.ber.item())


def test_bit_errors_identical_and_complement():
    original = torch.randint(0, 256, (1, 3, 5, 7), dtype=torch.uint8)
    assert bit_error_rate(original, original) == 0.0
    assert bit_accuracy(original, original) == 1.0
    complement = bit_errors(255 - original, original)
    assert complement.ber.item() == 1.0
    assert torch.equal(complement.per_plane, torch.ones(8, dtype=torch.float64))


def test_bit_errors_quantise_floats():
    levels = torch.arange(256, dtype=torch.float32).view(1, 1, 16, 16)
    original = levels / 255
    # Within half a level the recovery rounds back to the same byte: no errors.
    assert bit_error_rate(original + 0.49 / 255, original) == 0.0
    assert bit_error_rate(original - 0.49 / 255, original) == 0.0
    # One level up at 127 (0111 1111 -> 1000 0000) flips all eight bits of that value.
    recovered = original.clone()
    recovered[0, 0, 7, 15] = 128 / 255
    result = bit_errors(recovered, original)
    torch.testing.assert_close(result.per_plane, torch.full((8,), 1 / 256, dtype=torch.float64))


def test_quantize_uint8_rounds_and_clamps():
    x = torch.tensor([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 1.0, 1.7])
    assert quantize_uint8(x).tolist() == [0, 0, 0, 1, 255, 255]
    with pytest.raises(ValueError, match="NaN"):
        quantize_uint8(torch.tensor([0.5, float("nan")]))
    with pytest.raises(TypeError, match="floating"):
        quantize_uint8(torch.tensor([1, 2], dtype=torch.int32))


def test_bit_errors_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        bit_errors(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
