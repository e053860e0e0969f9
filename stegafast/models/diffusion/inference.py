"""Using a trained denoiser: load its EMA weights and restore widefield images.

``load_diffusion(path, device)`` returns the EMA model (what samplers use) and the physics
the checkpoint was trained with (the default PSF, background and read noise of ``denoise``).
``denoise`` restores (H, W) widefield images in photons of any size: images whose sides are
not multiples of 8 (the UNet downsamples three times) are padded by reflection to the next
multiple and cropped back.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ...train import load_trained
from .attention import set_attention
from .config import GuidanceConfig, PhysicsConfig
from .data import measurement_scale
from .model import SIZE_MULTIPLE, WeightEMA
from .physics import ForwardModel
from .sampling import sample
from .schedulers import DPM_SIGMA_MAX
from .task import DiffusionTask

__all__ = ["LoadedDenoiser", "load_diffusion", "denoise"]


class LoadedDenoiser(NamedTuple):
    """What ``load_diffusion`` returns: ``model``, the checkpoint's EMA denoiser in eval mode, and ``physics``, the
    microscope it was trained with (``denoise``'s default PSF, background and read noise)."""

    model: WeightEMA
    physics: PhysicsConfig


def load_diffusion(
    path: str | os.PathLike, device: torch.device | str = "cpu", attention: str | None = None
) -> LoadedDenoiser:
    """The EMA denoiser of a checkpoint file or run folder (its best checkpoint by
    validation loss, else its latest), in eval mode; ``attention`` overrides the trained
    processor ("stegafast" or "sdpa": same weights). CheckpointError / RunDirError on failure."""
    trained = load_trained(DiffusionTask, path, device, names=["ema"])
    model = trained.models["ema"]
    if attention is not None:
        set_attention(model, attention)
    return LoadedDenoiser(model, trained.task.physics)


def _pad_to_multiple(y: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = y.shape[-2:]
    ph, pw = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
    if ph == 0 and pw == 0:
        return y, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"  # reflection needs a side longer than its pad
    return F.pad(y[None], (0, pw, 0, ph), mode=mode)[0], (h, w)


def denoise(
    model: WeightEMA,
    y: torch.Tensor,
    forward: ForwardModel,
    *,
    sampler: str = "ddim",
    steps: int = 50,
    guidance: GuidanceConfig | None = None,
    seed: int = 0,
    dpm_sigma_max: float | None = DPM_SIGMA_MAX,
) -> torch.Tensor:
    """The restored (H, W) image, photons, of one (H, W) widefield image ``y`` in photons.
    Guidance sees the padded image; the padding is cropped off the result."""
    padded, (h, w) = _pad_to_multiple(y.float()[None])
    batch = padded[None]  # (1, 1, H', W')
    scale = measurement_scale(batch[:, 0])
    generator = torch.Generator().manual_seed(seed)
    out = sample(
        model,
        batch,
        scale,
        forward,
        sampler=sampler,
        steps=steps,
        guidance=guidance,
        generator=generator,
        dpm_sigma_max=dpm_sigma_max,
    )
    return out[0, 0, :h, :w].cpu()
