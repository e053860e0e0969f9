"""Argument checks shared by the image metrics: they raise before any work,
naming the metric, the argument and what was wrong with it."""

from __future__ import annotations

import math

import torch

REDUCTIONS = ("mean", "none")


def check_image_pair(metric: str, a, b) -> None:
    """Two floating (N, C, H, W) tensors of one shape, dtype and device."""
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{metric}: {name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() != 4:
            raise ValueError(f"{metric}: {name} must be an (N, C, H, W) batch, got shape {tuple(value.shape)}")
        if not value.is_floating_point():
            raise TypeError(
                f"{metric}: {name} must be a floating tensor (images in [0, data_range]), got {value.dtype}"
            )
    if a.shape != b.shape:
        raise ValueError(f"{metric}: a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"{metric}: a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{metric}: a and b must be on the same device, got {a.device} and {b.device}")
    if a.numel() == 0:
        raise ValueError(f"{metric}: empty images, shape {tuple(a.shape)}")


def check_data_range(metric: str, data_range) -> float:
    """``data_range`` as a float; TypeError if it is not a number, ValueError unless positive and finite."""
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)):
        raise TypeError(f"{metric}: data_range must be a number, got {data_range!r}")
    if not math.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"{metric}: data_range must be positive and finite, got {data_range!r}")
    return float(data_range)


def check_cap(metric: str, cap) -> None:
    """None (no cap) or a finite number of dB."""
    if cap is None:
        return
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not math.isfinite(cap):
        raise ValueError(f"{metric}: cap must be None or a finite number of dB, got {cap!r}")


def check_reduction(metric: str, reduction) -> None:
    """Raise ValueError (starting with ``metric``) unless ``reduction`` is one of ``REDUCTIONS``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{metric}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-image values (N,) -> their mean (a 0-dim tensor) or themselves."""
    return values.mean() if reduction == "mean" else values
