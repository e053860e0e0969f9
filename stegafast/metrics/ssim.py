"""Structural similarity (SSIM, Wang et al. 2004) and its multi-scale form
(MS-SSIM, Wang, Simoncelli and Bovik 2003), differentiable so either can serve
as a training loss (``1 - ssim(...)``).

Boundary handling: the local statistics are Gaussian-weighted means over a
``window`` x ``window`` neighbourhood computed only where the whole window fits
(a "valid" convolution, no padding), so an H x W image yields an
(H - window + 1) x (W - window + 1) SSIM map. scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`` filters the whole image with reflected borders
and then discards a ``(window - 1) / 2`` strip on every side before averaging:
the pixels it keeps are exactly the valid region, whose window never reaches
the border, so the two agree to rounding (see python_tests/test_metrics.py for
the tolerance measured on the bundled photographs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..dtypes import compute_dtype
from ._checks import check_data_range, check_image_pair, check_reduction, reduce

__all__ = ["ssim", "ms_ssim", "ms_ssim_min_size", "MS_SSIM_WEIGHTS"]

K1 = 0.01
K2 = 0.03
# Wang, Simoncelli and Bovik (2003), Table 1: the exponents of the five scales, finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check_window(metric: str, window, sigma) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"{metric}: window must be a positive odd int, got {window!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"{metric}: sigma must be a positive number, got {sigma!r}")


def _gaussian_taps(window: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised 1-D Gaussian, as scipy.ndimage builds it (exp(-x^2 / 2 sigma^2))."""
    x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).to(dtype=dtype, device=device)


def _blur_valid(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian mean of every channel over the positions where the
    window fits: (N, C, H, W) -> (N, C, H - k + 1, W - k + 1)."""
    c, k = x.shape[1], taps.numel()
    x = F.conv2d(x, taps.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, taps.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def _ssim_maps(a: torch.Tensor, b: torch.Tensor, taps: torch.Tensor, data_range: float):
    """The SSIM map and its contrast-structure factor, per channel, valid region only."""
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    channels = a.shape[1]
    # One grouped convolution filters all five statistics at once.
    stats = _blur_valid(torch.cat([a, b, a * a, b * b, a * b], 1), taps)
    mu_a, mu_b, aa, bb, ab = stats.split(channels, 1)
    mu_ab, mu_aa, mu_bb = mu_a * mu_b, mu_a * mu_a, mu_b * mu_b
    var_a, var_b, cov = aa - mu_aa, bb - mu_bb, ab - mu_ab  # population (weighted) moments
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    luminance = (2 * mu_ab + c1) / (mu_aa + mu_bb + c1)
    return luminance * cs, cs


def _check_ssim_args(metric, a, b, data_range, window, sigma, reduction) -> float:
    check_image_pair(metric, a, b)
    peak = check_data_range(metric, data_range)
    _check_window(metric, window, sigma)
    check_reduction(metric, reduction)
    return peak


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
    reduction: str = "mean",
) -> torch.Tensor:
    """Mean SSIM of each image pair, with a ``window``-tap Gaussian window of
    standard deviation ``sigma``, K1 = 0.01, K2 = 0.03, population covariances.

    a, b: (N, C, H, W) floating tensors of one shape with H, W >= window. Each
    channel is compared on its own and the per-channel means are averaged.
    ``reduction="none"`` gives the (N,) per-image values, ``"mean"`` (default)
    their mean. Half types are computed in float32 and return float32.
    Differentiable (a loss is ``1 - ssim(x, y)``). The module docstring explains
    the boundary handling and its agreement with scikit-image.
    """
    peak = _check_ssim_args("ssim", a, b, data_range, window, sigma, reduction)
    h, w = a.shape[-2:]
    if h < window or w < window:
        raise ValueError(f"ssim: images of {h}x{w} are smaller than the {window}x{window} window")
    # half types lose the small differences of second moments: compute in float32
    dtype = compute_dtype(a.dtype)
    a, b = a.to(dtype), b.to(dtype)
    ssim_map, _ = _ssim_maps(a, b, _gaussian_taps(window, sigma, dtype, a.device), peak)
    return reduce(ssim_map.flatten(1).mean(1), reduction)


def ms_ssim_min_size(window: int = 11, scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """The smallest image side ``ms_ssim`` accepts: the coarsest scale, after
    ``scales - 1`` halvings (2x2 means, an odd last row/column dropped), must
    still hold one window."""
    return window * 2 ** (scales - 1)


def ms_ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-scale SSIM: ``prod_j cs_j ** w_j`` over the finer scales times
    ``ssim_M ** w_M`` at the coarsest, per channel, then averaged over channels.

    Scales are made by 2x2 average pooling (an odd last row or column is
    dropped); with the standard five weights (``MS_SSIM_WEIGHTS``) and an 11-tap
    window the images must be at least 176 pixels on each side
    (``ms_ssim_min_size(window, len(weights))``). Each scale's contrast-structure
    and SSIM means are clamped to at least 1e-8 before the fractional powers, as
    common implementations (e.g. pytorch_msssim's ReLU) do, so strongly
    anti-correlated images give ~0 instead of NaN. Other arguments and the
    return value are as for ``ssim``. Differentiable.
    """
    peak = _check_ssim_args("ms_ssim", a, b, data_range, window, sigma, reduction)
    weights = tuple(weights)
    if not weights or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in weights):
        raise ValueError(f"ms_ssim: weights must be a non-empty sequence of non-negative numbers, got {weights!r}")
    h, w = a.shape[-2:]
    smallest = ms_ssim_min_size(window, len(weights))
    if min(h, w) < smallest:
        raise ValueError(
            f"ms_ssim: {len(weights)} scales with a {window}-pixel window need images of at least "
            f"{smallest}x{smallest}, got {h}x{w}; use ssim, a smaller window or fewer weights"
        )
    # half types lose the small differences of second moments: compute in float32
    dtype = compute_dtype(a.dtype)
    a, b = a.to(dtype), b.to(dtype)
    taps = _gaussian_taps(window, sigma, dtype, a.device)
    factors = []
    for scale in range(len(weights)):
        if scale:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        ssim_map, cs = _ssim_maps(a, b, taps, peak)
        last = scale == len(weights) - 1
        factors.append((ssim_map if last else cs).flatten(2).mean(2))  # (N, C)
    exponents = torch.tensor(weights, dtype=dtype, device=a.device).view(-1, 1, 1)
    per_channel = torch.stack(factors).clamp_min(1e-8).pow(exponents).prod(0)
    return reduce(per_channel.mean(1), reduction)
