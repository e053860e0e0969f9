"""Sampling the restored image: DDIM or DPM-Solver++, optionally physics-guided.

At each step the UNet (the EMA weights) predicts epsilon from (x_t, t, y_n); the predicted
clean image follows from the scheduler's own (alpha_t, sigma_t) (``schedulers.alpha_sigma``):
x0 = (x_t - sigma_t eps) / alpha_t. With guidance, x0 is taken to photons
(``data.denormalise``), corrected (``guidance.guide``), brought back, and the epsilon that
the corrected x0 implies, eps' = (x_t - alpha_t x0') / sigma_t, is what the scheduler
steps with. Both schedulers predict epsilon, so they continue from the corrected x0
exactly (DDIM and DPM-Solver++ each recover x0' from eps' with the same alpha_t, sigma_t).
The result is in photons, clamped at 0.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import GuidanceConfig
from .data import denormalise, normalise
from .guidance import guide
from .physics import ForwardModel
from .schedulers import DPM_SIGMA_MAX, alpha_sigma, sampling_scheduler

__all__ = ["sample"]


@torch.no_grad()
def sample(
    model: nn.Module,
    y: torch.Tensor,
    scale: torch.Tensor,
    forward: ForwardModel,
    *,
    sampler: str = "ddim",
    steps: int = 50,
    guidance: GuidanceConfig | None = None,
    generator: torch.Generator | None = None,
    dpm_sigma_max: float | None = DPM_SIGMA_MAX,
) -> torch.Tensor:
    """Restore widefield images ``y`` (B, 1, H, W) in photons, ``scale`` (B,) their
    normalisation scales (``data.measurement_scale``); returns (B, 1, H, W) photons."""
    guidance = guidance or GuidanceConfig(mode="none")
    device = next(model.parameters()).device
    y = y.to(device, torch.float32)
    scale = scale.to(device, torch.float32)[:, None]  # broadcast over the channel
    cond = normalise(y, scale)
    scheduler = sampling_scheduler(sampler, steps, device, dpm_sigma_max)
    x = torch.randn(y.shape, generator=generator, device="cpu").to(device) * scheduler.init_noise_sigma
    for i, t in enumerate(scheduler.timesteps):
        t_batch = torch.full((y.shape[0],), int(t), device=device, dtype=torch.long)
        eps = model(scheduler.scale_model_input(x, t), t_batch, cond).float()
        if guidance.mode != "none":
            alpha, sigma = alpha_sigma(scheduler, t, i)
            x0 = (x - sigma * eps) / alpha
            corrected = guide(denormalise(x0, scale), y, int(t), forward, guidance)
            eps = (x - alpha * normalise(corrected, scale)) / sigma
        x = scheduler.step(eps, t, x).prev_sample
    return denormalise(x, scale).clamp_min(0)
