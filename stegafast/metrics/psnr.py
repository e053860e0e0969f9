"""Peak signal-to-noise ratio."""

from __future__ import annotations

import torch

from ..dtypes import HALF_TYPES
from ._checks import check_cap, check_data_range, check_image_pair, check_reduction, reduce

__all__ = ["psnr", "PSNR_CAP_DB"]

# The cap every stegafast report uses: a perfect reconstruction's +inf would make every mean
# infinite and cannot be written as JSON.
PSNR_CAP_DB = 100.0


def psnr(
    a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, reduction: str = "mean", cap: float | None = None
) -> torch.Tensor:
    """PSNR in dB of each image in a batch: ``10 log10(data_range^2 / MSE)``, the
    mean squared error taken over one image's channels and pixels.

    a, b: (N, C, H, W) floating tensors of one shape. ``reduction="none"`` gives
    the (N,) per-image values, ``"mean"`` (default) their mean as a 0-dim tensor.
    Half types are computed in float32 and the result is float32.

    Identical images have MSE 0 and a PSNR of ``+inf`` (a perfect reconstruction,
    e.g. the lossless recovery of an invertible network); the mean over a batch
    holding one is then also ``+inf``. Nothing returns NaN, so use
    ``torch.isfinite`` or ``reduction="none"`` to count or drop exact recoveries.
    Differentiable wherever the images differ.

    ``cap`` (dB, e.g. ``PSNR_CAP_DB``) clamps each image's value to at most ``cap``
    before the reduction, so a batch with an exact recovery keeps a finite mean.
    """
    check_image_pair("psnr", a, b)
    peak = check_data_range("psnr", data_range)
    check_reduction("psnr", reduction)
    check_cap("psnr", cap)
    if a.dtype in HALF_TYPES:
        a, b = a.float(), b.float()
    mse = (a - b).square().flatten(1).mean(1)
    # data_range^2 / 0 is +inf and log10(+inf) is +inf: the documented result.
    values = 10 * torch.log10(peak**2 / mse)
    if cap is not None:
        values = values.clamp(max=cap)
    return reduce(values, reduction)
