"""The rate-distortion objective: ``lmbda * 255^2 * MSE + bpp``.

bpp is the estimated rate, ``sum(-log2 likelihoods)`` of y and z over the number
of image pixels; MSE is on [0, 1] images, so ``255^2 * MSE`` is the MSE of 8-bit
pixel values (CompressAI's convention: lambda = 0.0018 .. 0.0932 span its
quality levels 1 .. 8).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ...metrics import psnr
from .model import CodecOutput

__all__ = ["RateDistortion", "rate_distortion"]


class RateDistortion(NamedTuple):
    """The rate-distortion loss and its terms, each a 0-dim float32 tensor.

    ``loss = lmbda * 255^2 * mse + bpp``; ``mse`` on [0, 1] pixels; ``bpp`` estimated bits per pixel; ``psnr`` in dB of
    the clamped reconstruction (no gradient).
    """

    loss: torch.Tensor
    mse: torch.Tensor
    bpp: torch.Tensor
    psnr: torch.Tensor


def rate_distortion(x: torch.Tensor, out: CodecOutput, lmbda: float) -> RateDistortion:
    """The loss and its terms for images x (B, 3, H, W) and the model's output (float32)."""
    pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
    bits = -(torch.log2(out.y_likelihoods).sum() + torch.log2(out.z_likelihoods).sum())
    bpp = bits / pixels
    mse = torch.mean((out.x_hat.float() - x.float()) ** 2)
    with torch.no_grad():
        quality = psnr(out.x_hat.detach().float().clamp(0, 1), x.float())
    return RateDistortion(lmbda * 255**2 * mse + bpp, mse, bpp, quality)
