"""The reconstruction loss: L1, MSE, or a weighted sum of both (``--loss``)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ...metrics import PSNR_CAP_DB, psnr

__all__ = ["LOSSES", "LossWeights", "Reconstruction", "reconstruction_loss"]

LOSSES = ("l1", "mse", "both")


class LossWeights(NamedTuple):
    """The weights of the L1 and MSE terms; "l1" is (1, 0), "mse" (0, 1), "both" the user's."""

    l1: float
    mse: float

    @classmethod
    def of(cls, loss: str, l1_weight: float = 1.0, mse_weight: float = 1.0) -> LossWeights:
        """The weights of ``loss`` (one of LOSSES); the two weights are read only for "both".

        A ValueError names an unknown ``loss``, a weight that is not a finite number >= 0, or two zero weights.
        """
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if loss == "l1":
            return cls(1.0, 0.0)
        if loss == "mse":
            return cls(0.0, 1.0)
        for name, value in (("l1_weight", l1_weight), ("mse_weight", mse_weight)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if l1_weight + mse_weight <= 0:
            raise ValueError("l1_weight and mse_weight must not both be 0")
        return cls(float(l1_weight), float(mse_weight))


class Reconstruction(NamedTuple):
    """What ``reconstruction_loss`` returns, each a float32 scalar: ``loss`` (the weighted sum to back-propagate),
    ``l1`` and ``mse`` (with gradients) and ``psnr`` (mean dB, capped at PSNR_CAP_DB, no gradient)."""

    loss: torch.Tensor
    l1: torch.Tensor
    mse: torch.Tensor
    psnr: torch.Tensor


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, weights: LossWeights) -> Reconstruction:
    """The weighted loss of a reconstruction (B, 1, H, W) of x, in float32, with its L1, MSE
    and PSNR (capped at PSNR_CAP_DB, no gradient) for logging."""
    diff = x_hat.float() - x.float()
    l1, mse = diff.abs().mean(), diff.pow(2).mean()
    with torch.no_grad():
        quality = psnr(x_hat.detach().float().clamp(0, 1), x.float(), cap=PSNR_CAP_DB)
    return Reconstruction(weights.l1 * l1 + weights.mse * mse, l1, mse, quality)
