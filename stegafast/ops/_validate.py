"""Input checks shared by the operator wrappers: they raise before any kernel
runs, with messages that name the argument and what was wrong with it."""

from __future__ import annotations

from typing import Iterable, Sequence

import torch


def dtype_names(dtypes: Iterable[torch.dtype]) -> str:
    return ", ".join(str(d).replace("torch.", "") for d in dtypes)


def check_tensor(op: str, name: str, value, dtypes: Sequence[torch.dtype], ndim: int | None = None):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} dims, got shape {tuple(value.shape)}")
    if value.dtype not in dtypes:
        raise TypeError(f"{op}: {name} has dtype {value.dtype}; supported: {dtype_names(dtypes)}")


def check_same_device(op: str, named: dict) -> None:
    """All tensors among named's values on one device (non-tensors are skipped)."""
    tensors = {n: t for n, t in named.items() if isinstance(t, torch.Tensor)}
    if len({t.device for t in tensors.values()}) > 1:
        where = ", ".join(f"{n} on {t.device}" for n, t in tensors.items())
        raise ValueError(f"{op}: all tensors must be on one device, got {where}")


def check_size_pair(op: str, name: str, value) -> tuple[int, int]:
    """A (H, W) pair of Python ints (or SymInts under torch.compile)."""
    if isinstance(value, torch.Size):
        value = tuple(value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{op}: {name} must be a pair (H, W), got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, torch.SymInt)):
            raise TypeError(f"{op}: {name} must hold ints, got {value!r}")
    return value[0], value[1]
