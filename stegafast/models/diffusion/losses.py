"""The training loss: epsilon-prediction MSE of the conditional denoiser (DDPM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["noised", "epsilon_loss"]


def noised(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, the DDPM forward process."""
    return scheduler.add_noise(x0, noise, t)


def epsilon_loss(predicted: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the predicted noise, in float32."""
    return F.mse_loss(predicted.float(), noise.float())
