"""Fourier ring correlation (FRC) and the resolution it gives (1/7 threshold).

FRC(r) = Re sum_ring F1 conj(F2) / sqrt(sum_ring |F1|^2 sum_ring |F2|^2) over rings of
spatial frequency (cycles per pixel, rings 1 / min(H, W) wide, up to Nyquist 0.5). The
resolution is 1 / f at the first ring (after the zero-frequency one) where the FRC drops
below 1/7, in pixels; if it never does, the Nyquist limit, 2 px. Here the FRC compares an
estimate with the ground truth.
"""

from __future__ import annotations

import torch

__all__ = ["FRC_THRESHOLD", "frc_curve", "frc_resolution"]

FRC_THRESHOLD = 1.0 / 7.0


def frc_curve(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(frequencies, FRC values) of two (H, W) images: ring centres in cycles per pixel."""
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"frc needs two (H, W) images of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    h, w = a.shape
    fa, fb = torch.fft.fft2(a.double()), torch.fft.fft2(b.double())
    fy, fx = torch.fft.fftfreq(h, dtype=torch.float64), torch.fft.fftfreq(w, dtype=torch.float64)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    width = 1.0 / min(h, w)
    rings = torch.round(radius / width).long().flatten()
    count = int(round(0.5 / width)) + 1
    keep = rings < count
    rings = rings[keep]

    def ring_sum(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(count, dtype=torch.float64).index_add_(0, rings, values.flatten()[keep])

    cross = ring_sum((fa * fb.conj()).real)
    power = ring_sum(fa.abs() ** 2) * ring_sum(fb.abs() ** 2)
    curve = torch.where(power > 0, cross / power.clamp_min(1e-300).sqrt(), torch.zeros_like(cross))
    return torch.arange(count, dtype=torch.float64) * width, curve


def frc_resolution(a: torch.Tensor, b: torch.Tensor, threshold: float = FRC_THRESHOLD) -> float:
    """The FRC resolution of the module docstring, in pixels (2.0 at best)."""
    freqs, curve = frc_curve(a, b)
    below = (curve[1:] < threshold).nonzero()
    if below.numel() == 0:
        return 2.0
    return float(1.0 / freqs[1 + int(below[0])])
