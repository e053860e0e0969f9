"""Image quality metrics shared by every model family: PSNR, SSIM, MS-SSIM
(differentiable, usable as losses) and bit accuracy over 8-bit planes.
Images are float tensors in [0, data_range], (N, C, H, W)."""

from .bits import BitErrors, bit_accuracy, bit_error_rate, bit_errors, quantize_uint8
from .psnr import PSNR_CAP_DB, psnr
from .ssim import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_min_size, ssim

__all__ = [
    "psnr",
    "PSNR_CAP_DB",
    "ssim",
    "ms_ssim",
    "ms_ssim_min_size",
    "MS_SSIM_WEIGHTS",
    "BitErrors",
    "bit_errors",
    "bit_error_rate",
    "bit_accuracy",
    "quantize_uint8",
]
