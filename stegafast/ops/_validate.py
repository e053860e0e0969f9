"""Input checks shared by the operator wrappers: they raise before any kernel
runs, with messages that name the argument and what was wrong with it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch


def dtype_names(dtypes: Iterable[torch.dtype]) -> str:
    """The dtypes as a comma-separated list without the ``torch.`` prefix, for messages."""
    return ", ".join(str(d).replace("torch.", "") for d in dtypes)


def check_tensor(op: str, name: str, value, dtypes: Sequence[torch.dtype], ndim: int | None = None):
    """Check an op's argument: TypeError unless ``value`` is a tensor of one of ``dtypes``.

    ValueError unless it has ``ndim`` dimensions (when given). Messages start with ``op: name``.
    """
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


def _out_of_range(op: str, name: str, original, became, dtype: torch.dtype, minimum: float, what: str) -> ValueError:
    return ValueError(
        f"{op}: {name} must {what}, at least {minimum:.3g} in {dtype_names([dtype])} "
        f"(the dtype the kernel reads it in); {original!r} becomes {became!r} there"
    )


def as_kernel_values(
    op: str, name: str, value: torch.Tensor, dtype: torch.dtype, *, minimum: float, what: str
) -> torch.Tensor:
    """``value`` converted to ``dtype``, the dtype the kernel reads it in, after
    checking every entry there: finite and >= ``minimum`` (> 0).

    Checking the caller's values is not enough: 1e-8 passes "> 0" in float32 but
    is 0 in float16, 1e39 is inf in float32. The error names the argument, the
    first offending value, what it becomes in ``dtype`` and the accepted range;
    ``what`` completes "name must ..." ("hold finite quantisation steps > 0"). The values are
    not read under ``torch.compile`` (a graph cannot branch on data): eager
    calls check them.
    """
    converted = value.to(dtype)
    if converted.numel() == 0 or torch.compiler.is_compiling():
        return converted
    good = torch.isfinite(converted) & (converted >= minimum)
    if not bool(torch.all(good)):
        first = int((~good).flatten().nonzero()[0, 0])
        raise _out_of_range(
            op, name, value.flatten()[first].item(), converted.flatten()[first].item(), dtype, minimum, what
        )
    return converted


def check_kernel_scalar(op: str, name: str, value: float, dtype: torch.dtype, *, minimum: float, what: str) -> float:
    """The same check for a real number the kernel converts to ``dtype``: finite
    and >= ``minimum`` there (at most the dtype's largest value). Plain Python,
    so it also runs under ``torch.compile``; returns ``value`` as a float."""
    value = float(value)
    if math.isfinite(value) and minimum <= value <= torch.finfo(dtype).max:
        return value
    became = value if torch.compiler.is_compiling() else torch.tensor(value, dtype=torch.float64).to(dtype).item()
    raise _out_of_range(op, name, value, became, dtype, minimum, what)
