"""Bit accuracy over the 8-bit planes of an image: how exactly a recovered
image (e.g. the secret an invertible steganography network reveals) matches
the original once both are stored as 8-bit pixels."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["BitErrors", "bit_errors", "bit_error_rate", "bit_accuracy", "quantize_uint8"]

PLANES = 8


class BitErrors(NamedTuple):
    """ber:       fraction of all compared bits that differ (0-dim float64 tensor)
    per_plane: (8,) float64 error rate of each bit plane, index 0 the least
               significant bit (value 1), index 7 the most significant (128)
    bits:      number of bits compared (8 per channel value)
    """

    ber: torch.Tensor
    per_plane: torch.Tensor
    bits: int

    @property
    def accuracy(self) -> torch.Tensor:
        """1 - ber: the fraction of bits recovered."""
        return 1 - self.ber


def quantize_uint8(image: torch.Tensor) -> torch.Tensor:
    """A floating image in [0, 1] as the uint8 pixels it would be saved as:
    ``round(x * 255)`` clamped to 0..255 (round half to even, as torch.round).
    uint8 input is returned unchanged. Raises on NaN or infinite values, which
    have no 8-bit representation."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"quantize_uint8: expected a torch.Tensor, got {type(image).__name__}")
    if image.dtype == torch.uint8:
        return image
    if not image.is_floating_point():
        raise TypeError(f"quantize_uint8: expected a floating image in [0, 1] or uint8, got {image.dtype}")
    if not torch.isfinite(image).all():
        raise ValueError("quantize_uint8: the image holds NaN or infinite values")
    return (image.detach().float() * 255).round().clamp(0, 255).to(torch.uint8)


def bit_errors(recovered: torch.Tensor, original: torch.Tensor) -> BitErrors:
    """Compares all 8 bit planes of two images of one shape (any layout, e.g.
    (N, C, H, W)), each floating in [0, 1] (quantised by ``quantize_uint8``) or
    already uint8. Not differentiable: it is an evaluation metric."""
    if not isinstance(recovered, torch.Tensor) or not isinstance(original, torch.Tensor):
        raise TypeError("bit_errors: recovered and original must be torch.Tensors")
    if recovered.shape != original.shape:
        raise ValueError(
            f"bit_errors: recovered and original must have the same shape, "
            f"got {tuple(recovered.shape)} and {tuple(original.shape)}"
        )
    if recovered.numel() == 0:
        raise ValueError("bit_errors: empty images")
    if recovered.device != original.device:
        raise ValueError(f"bit_errors: images on different devices, {recovered.device} and {original.device}")
    diff = torch.bitwise_xor(quantize_uint8(recovered), quantize_uint8(original)).flatten()
    planes = torch.arange(PLANES, device=diff.device, dtype=torch.uint8)
    wrong = torch.bitwise_right_shift(diff.unsqueeze(1), planes).bitwise_and(1)  # (values, 8)
    per_plane = wrong.sum(0, dtype=torch.int64).double().cpu() / diff.numel()
    return BitErrors(ber=per_plane.mean(), per_plane=per_plane, bits=diff.numel() * PLANES)


def bit_error_rate(recovered: torch.Tensor, original: torch.Tensor) -> float:
    """Fraction of the 8-bit planes' bits that differ (see ``bit_errors``)."""
    return bit_errors(recovered, original).ber.item()


def bit_accuracy(recovered: torch.Tensor, original: torch.Tensor) -> float:
    """Fraction of the 8-bit planes' bits that agree: ``1 - bit_error_rate``."""
    return 1.0 - bit_error_rate(recovered, original)
