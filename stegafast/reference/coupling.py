"""Affine coupling of invertible networks in plain PyTorch.

This is the readable specification of ``stegafast.ops.affine_coupling`` and
``affine_coupling_inverse``. With ``c = clamp``:

    s = c * tanh(s_raw / c)              clamp_fn="tanh"
    s = c * 0.636 * atan(s_raw / c)      clamp_fn="atan" (the seed's constant, ~2/pi)

    forward:  y = x * exp(s) + t,      logdet =  s summed over every dim but the batch
    inverse:  x = (y - t) * exp(-s),   logdet = -s summed likewise

``logdet`` has shape (B,) and dtype float32 for float32, float16 and bfloat16
inputs (float64 for float64). Half inputs are computed in float32 and the
outputs rounded back to the input dtype, as the native kernels do.
"""

from __future__ import annotations

import torch

from ..dtypes import compute_dtype

__all__ = ["CLAMP_FNS", "affine_coupling", "affine_coupling_inverse", "clamped_scale"]

CLAMP_FNS = ("tanh", "atan")
ATAN_SCALE = 0.636  # the seed's constant, kept exactly (not 2 / pi)


def clamped_scale(s_raw: torch.Tensor, clamp: float = 2.0, clamp_fn: str = "tanh") -> torch.Tensor:
    """s = clamp * tanh(s_raw / clamp), or clamp * 0.636 * atan(s_raw / clamp)."""
    if clamp_fn == "tanh":
        return clamp * torch.tanh(s_raw / clamp)
    if clamp_fn == "atan":
        return clamp * ATAN_SCALE * torch.atan(s_raw / clamp)
    raise ValueError(f"clamp_fn must be one of {CLAMP_FNS}, got {clamp_fn!r}")


def affine_coupling(
    x: torch.Tensor, s_raw: torch.Tensor, t: torch.Tensor, clamp: float = 2.0, clamp_fn: str = "tanh"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, logdet): y = x * exp(s) + t, logdet = sum of s per sample."""
    dtype = compute_dtype(x.dtype)
    s = clamped_scale(s_raw.to(dtype), clamp, clamp_fn)
    y = x.to(dtype) * torch.exp(s) + t.to(dtype)
    return y.to(x.dtype), s.flatten(1).sum(1)


def affine_coupling_inverse(
    y: torch.Tensor, s_raw: torch.Tensor, t: torch.Tensor, clamp: float = 2.0, clamp_fn: str = "tanh"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, logdet): x = (y - t) * exp(-s), logdet = -(sum of s per sample)."""
    dtype = compute_dtype(y.dtype)
    s = clamped_scale(s_raw.to(dtype), clamp, clamp_fn)
    x = (y.to(dtype) - t.to(dtype)) * torch.exp(-s)
    return x.to(y.dtype), -s.flatten(1).sum(1)
