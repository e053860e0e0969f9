"""The differentiable distortions between the encoder and the decoder.

``NoisePipeline(config)(images, strengths)`` applies, in the original's order:
perspective warp, blur, Gaussian noise, contrast, brightness, hue,
desaturation, JPEG (see ``StampNoiseConfig`` for each term's law). Each term
has a strength in [0, 1], its ramp's progress (``strengths_at(step)``); a term
at strength 0 is skipped, so the pipeline at step 0 is the identity. Random
draws are per image, from torch's global generator (the training engine seeds
and checkpoints it). Everything is differentiable with respect to the images;
the pipeline works in float32 whatever the autocast region.

The blur's lengths and the noise std are the original's at the config's
``reference_size`` and scale with the images' side (``StampNoiseConfig``'s
rule, ``length_scale``); JPEG runs on the images themselves or, with
``jpeg_scale="reference"``, on them resampled to the reference size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import DiffJPEG
from ...train import ramp
from .config import StampNoiseConfig

__all__ = [
    "NoisePipeline",
    "TERMS",
    "strengths_at",
    "full_strength",
    "homography_grid",
    "random_corner_shifts",
    "jpeg_at_scale",
    "blur_half_size",
]

TERMS = ("warp", "blur", "noise", "contrast", "brightness", "hue", "saturation", "jpeg")
BLUR_SIZE = 7  # the original's kernel side at its 400 px
LUMA_WEIGHTS = (0.3, 0.6, 0.1)  # the original's desaturation weights


def strengths_at(step: int, config: StampNoiseConfig) -> dict[str, float]:
    """Each term's strength at ``step``: its ramp's progress, from 0 to 1 (0 until ``noise_delay``)."""
    ramps = {
        "warp": config.warp_ramp,
        "blur": config.blur_ramp,
        "noise": config.noise_ramp,
        "contrast": config.contrast_ramp,
        "brightness": config.brightness_ramp,
        "hue": config.hue_ramp,
        "saturation": config.saturation_ramp,
        "jpeg": config.jpeg_ramp,
    }
    start = config.noise_delay
    values = {term: ramp(step, start, start + ramps[term], 0.0, 1.0) for term in TERMS}
    if not config.jpeg:
        values["jpeg"] = 0.0
    return values


def full_strength(config: StampNoiseConfig) -> dict[str, float]:
    """Every term at its maximum (JPEG only when the config enables it)."""
    return {term: 1.0 if term != "jpeg" or config.jpeg else 0.0 for term in TERMS}


def _uniform(n: int, low, high, device, *shape: int, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.rand(n, *shape, device=device, generator=generator) * (high - low) + low


# ---- perspective warp --------------------------------------------------------------------------------

_CORNERS = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))


def random_corner_shifts(n: int, fraction: float, device, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 4, 2) corner displacements in normalised coordinates (the side is 2 long),
    each coordinate uniform in +-fraction of the side (drawn from ``generator``,
    by default torch's global one)."""
    return _uniform(n, -2 * fraction, 2 * fraction, device, 4, 2, generator=generator)


def _homographies(shifts: torch.Tensor) -> torch.Tensor:
    """(n, 3, 3) maps taking the output's corners to the corners moved by ``shifts``
    (float64: the 8x8 solve is ill-conditioned in float32 for tiny shifts)."""
    src = torch.tensor(_CORNERS, dtype=torch.float64, device=shifts.device).expand(shifts.shape[0], 4, 2)
    dst = src + shifts.double()
    u, v = src[..., 0], src[..., 1]
    x, y = dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(u), torch.zeros_like(u)
    rows_x = torch.stack([u, v, one, zero, zero, zero, -u * x, -v * x], -1)
    rows_y = torch.stack([zero, zero, zero, u, v, one, -u * y, -v * y], -1)
    a = torch.cat([rows_x, rows_y], 1)  # (n, 8, 8)
    b = torch.cat([x, y], 1).unsqueeze(-1)  # (n, 8, 1)
    h = torch.linalg.solve(a, b).squeeze(-1)
    return torch.cat([h, torch.ones_like(h[:, :1])], 1).view(-1, 3, 3)


def homography_grid(shifts: torch.Tensor, height: int, width: int, dtype: torch.dtype) -> torch.Tensor:
    """The ``F.grid_sample`` grid (n, H, W, 2) of the perspective warp whose output
    corners come from the input's corners moved by ``shifts`` (n, 4, 2)."""
    n = shifts.shape[0]
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64, device=shifts.device)
    base = F.affine_grid(identity.expand(n, 2, 3), [n, 1, height, width], align_corners=False)
    points = torch.cat([base, torch.ones_like(base[..., :1])], -1).view(n, -1, 3)
    mapped = points @ _homographies(shifts).transpose(1, 2)
    grid = mapped[..., :2] / mapped[..., 2:]
    return grid.view(n, height, width, 2).to(dtype)


def warp(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """``images`` seen through the perspective warp of ``shifts`` (bilinear, black outside)."""
    grid = homography_grid(shifts, images.shape[-2], images.shape[-1], images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ---- blur --------------------------------------------------------------------------------------------


def blur_half_size(scale: float) -> int:
    """The half-side of the blur kernel at ``scale`` times the reference size: the original's 3 scaled, at least 1."""
    return max(1, round((BLUR_SIZE // 2) * scale))


def _blur_kernels(n: int, probability: float, device, scale: float = 1.0) -> torch.Tensor:
    """(n, k, k) normalised kernels: Gaussian (sigma 1..3) with probability p/2, a
    motion line (the original's law) with probability p/2, else the identity;
    every length (sigmas, line width, half-side) multiplied by ``scale``."""
    half = blur_half_size(scale)
    r = torch.arange(2 * half + 1, device=device, dtype=torch.float32) - half
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    manhattan = (xx.abs() + yy.abs()).expand(n, -1, -1)
    identity = (manhattan < 0.5).float()
    sigma = _uniform(n, 1.0 * scale, 3.0 * scale, device, 1, 1)
    gauss = torch.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    theta = _uniform(n, 0.0, 2 * math.pi, device, 1, 1)
    along = yy * torch.cos(theta) + xx * torch.sin(theta)
    line_sigma = _uniform(n, 0.25 * scale, 1.0 * scale, device, 1, 1)
    line_width = _uniform(n, 3.0 * scale, (BLUR_SIZE // 2 + 0.1) * scale, device, 1, 1)
    line = torch.exp(-(along**2) / (2 * line_sigma**2)) * (manhattan < line_width).float()
    line = torch.where(line.sum(dim=(1, 2), keepdim=True) > 0, line, identity)  # a line shorter than a pixel
    pick = torch.rand(n, 1, 1, device=device)
    kernels = torch.where(pick < probability / 2, gauss, torch.where(pick < probability, line, identity))
    return kernels / kernels.sum(dim=(1, 2), keepdim=True)


def blur(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each image convolved with its own (k, k) kernel (k odd), every channel alike (zero padding)."""
    n, c, h, w = images.shape
    weight = kernels.to(images.dtype).repeat_interleave(c, 0).unsqueeze(1)  # (n*c, 1, k, k)
    out = F.conv2d(images.reshape(1, n * c, h, w), weight, padding=kernels.shape[-1] // 2, groups=n * c)
    return out.view(n, c, h, w)


# ---- the pipeline ------------------------------------------------------------------------------------


class NoisePipeline(nn.Module):
    """The training distortions; ``forward(images, strengths)`` with ``strengths``
    a term -> [0, 1] mapping (missing terms are off), see the module docstring."""

    def __init__(self, config: StampNoiseConfig | None = None):
        super().__init__()
        self.config = config or StampNoiseConfig()
        self.jpeg = DiffJPEG(quality=100, subsampling="4:2:0", rounding=self.config.jpeg_rounding)

    def forward(self, images: torch.Tensor, strengths: Mapping[str, float]) -> torch.Tensor:
        """``images`` (float (B, 3, H, W) in [0, 1]) after each term of ``TERMS`` at its strength in [0, 1].

        A term missing from ``strengths`` (or at 0) is skipped; the terms run in ``TERMS`` order in float32 and the
        result returns in the input's dtype and shape. Raises ValueError for an unknown term or a strength outside [0,
        1].
        """
        unknown = sorted(set(strengths) - set(TERMS))
        if unknown:
            raise ValueError(f"unknown noise terms {unknown}; the terms are {', '.join(TERMS)}")
        for term, value in strengths.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"noise strength {term}={value!r} must be within [0, 1]")
        with torch.autocast(images.device.type, enabled=False):
            x = images.float()
            for term in TERMS:
                r = float(strengths.get(term, 0.0))
                if r > 0:
                    x = getattr(self, f"_{term}")(x, r)
        return x.to(images.dtype)

    def _warp(self, x: torch.Tensor, r: float) -> torch.Tensor:
        return warp(x, random_corner_shifts(x.shape[0], r * self.config.warp, x.device))

    def _scale(self, x: torch.Tensor) -> float:
        return self.config.length_scale(max(x.shape[-2:]))

    def _blur(self, x: torch.Tensor, r: float) -> torch.Tensor:
        kernels = _blur_kernels(x.shape[0], self.config.blur_prob, x.device, self._scale(x))
        centre = torch.zeros_like(kernels)
        half = kernels.shape[-1] // 2
        centre[:, half, half] = 1.0
        return blur(x, (1 - r) * centre + r * kernels)

    def _noise(self, x: torch.Tensor, r: float) -> torch.Tensor:
        std = torch.rand(x.shape[0], 1, 1, 1, device=x.device) * (r * self.config.noise * self._scale(x))
        return (x + torch.randn_like(x) * std).clamp(0, 1)

    def _contrast(self, x: torch.Tensor, r: float) -> torch.Tensor:
        c = self.config
        low, high = 1 - r * (1 - c.contrast_low), 1 + r * (c.contrast_high - 1)
        return x * _uniform(x.shape[0], low, high, x.device, 1, 1, 1)

    def _brightness(self, x: torch.Tensor, r: float) -> torch.Tensor:
        bound = r * self.config.brightness
        return (x + _uniform(x.shape[0], -bound, bound, x.device, 1, 1, 1)).clamp(0, 1)

    def _hue(self, x: torch.Tensor, r: float) -> torch.Tensor:
        # the original's "hue": an offset per image and colour channel
        bound = r * self.config.hue
        return (x + _uniform(x.shape[0], -bound, bound, x.device, 3, 1, 1)).clamp(0, 1)

    def _saturation(self, x: torch.Tensor, r: float) -> torch.Tensor:
        amount = torch.rand(x.shape[0], 1, 1, 1, device=x.device) * (r * self.config.saturation)
        luma = (x * x.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return (1 - amount) * x + amount * luma

    def _jpeg(self, x: torch.Tensor, r: float) -> torch.Tensor:
        span = r * (100 - self.config.jpeg_quality_min)
        quality = torch.round(100 - torch.rand(x.shape[0], device=x.device) * span).long()
        if self.config.jpeg_scale == "native":
            return self.jpeg(x.clamp(0, 1), quality)
        return jpeg_at_scale(self.jpeg, x.clamp(0, 1), quality, 1 / self._scale(x))


def jpeg_at_scale(jpeg: DiffJPEG, x: torch.Tensor, quality: torch.Tensor, factor: float) -> torch.Tensor:
    """``jpeg`` applied to ``x`` resampled by ``factor`` (bilinear), then resampled back to x's size (area: the
    mean of the pixels each output pixel covers), so its 8x8 blocks are those of the larger image."""
    h, w = x.shape[-2:]
    big = (max(1, round(h * factor)), max(1, round(w * factor)))
    if big == (h, w):
        return jpeg(x, quality)
    up = F.interpolate(x, size=big, mode="bilinear", align_corners=False).clamp(0, 1)
    return F.interpolate(jpeg(up, quality), size=(h, w), mode="area")
