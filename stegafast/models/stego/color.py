"""RGB <-> YCbCr with the JFIF (JPEG File Interchange Format) matrices.

Full range, for images in [0, 1]::

    Y  =       0.299    R + 0.587    G + 0.114    B
    Cb = 0.5 - 0.168736 R - 0.331264 G + 0.5      B
    Cr = 0.5 + 0.5      R - 0.418688 G - 0.081312 B

The inverse is the exact matrix inverse of this one (computed once in float64),
not JFIF's rounded decoding constants (1.402, 0.344136, ...), so a round trip
returns its input to the dtype's precision. ``*_delta`` map differences between
images (no chroma offset): the linear part of the transform, used for residuals.
Tensors are (..., 3, H, W): the colour is the third dimension from the end.
"""

from __future__ import annotations

import torch

__all__ = ["JFIF_RGB_TO_YCBCR", "rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_ycbcr_delta", "ycbcr_to_rgb_delta"]

JFIF_RGB_TO_YCBCR = torch.tensor(
    [[0.299, 0.587, 0.114],
     [-0.168736, -0.331264, 0.5],
     [0.5, -0.418688, -0.081312]],
    dtype=torch.float64,
)
_YCBCR_TO_RGB = torch.linalg.inv(JFIF_RGB_TO_YCBCR)
_OFFSET = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)


def _check(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 3 or x.shape[-3] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a (..., 3, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating tensor, got {x.dtype}")


def _mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 colour matrix at every pixel."""
    return torch.einsum("ij,...jhw->...ihw", matrix.to(device=x.device, dtype=x.dtype), x)


def _offset(x: torch.Tensor) -> torch.Tensor:
    return _OFFSET.to(device=x.device, dtype=x.dtype).view(3, 1, 1)


def rgb_to_ycbcr_delta(d: torch.Tensor) -> torch.Tensor:
    """An RGB difference as a YCbCr difference (the linear part of the transform)."""
    _check("rgb_to_ycbcr_delta", d)
    return _mix(d, JFIF_RGB_TO_YCBCR)


def ycbcr_to_rgb_delta(d: torch.Tensor) -> torch.Tensor:
    """A YCbCr difference as an RGB difference."""
    _check("ycbcr_to_rgb_delta", d)
    return _mix(d, _YCBCR_TO_RGB)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> JFIF YCbCr (Y in [0, 1], Cb and Cr centred on 0.5)."""
    _check("rgb_to_ycbcr", rgb)
    return _mix(rgb, JFIF_RGB_TO_YCBCR) + _offset(rgb)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """JFIF YCbCr -> RGB (not clamped: out-of-gamut colours leave [0, 1])."""
    _check("ycbcr_to_rgb", ycbcr)
    return _mix(ycbcr - _offset(ycbcr), _YCBCR_TO_RGB)
