"""Which implementation an operator runs: the native kernel or the reference.

``STEGAFAST_BACKEND=auto|native|reference`` (read once, at import) sets the
default; ``set_backend(name)`` changes it and ``with use_backend(name):`` changes
it for a block. Per call:

* ``reference`` always runs the pure-PyTorch reference;
* ``native`` runs the native kernel or raises :class:`NativeKernelUnavailable`
  naming what is missing;
* ``auto`` (default) runs the native kernel where one exists for the tensor's
  device and dtype, otherwise the reference, and logs that once per op and device.

The setting is process-wide (not per thread), so that compiled graphs can guard
on it like any other global.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterable, Iterator

import torch

from . import _native

__all__ = ["BACKENDS", "NativeKernelUnavailable", "get_backend", "set_backend", "use_backend"]

BACKENDS = ("auto", "native", "reference")
_logger = logging.getLogger("stegafast")


class NativeKernelUnavailable(RuntimeError):
    """The native backend was requested for an op/device/dtype that has no kernel."""


def _checked(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown stegafast backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def _initial_backend() -> str:
    name = os.environ.get("STEGAFAST_BACKEND", "auto").strip().lower() or "auto"
    if name not in BACKENDS:
        warnings.warn(
            f"ignoring STEGAFAST_BACKEND={name!r}: expected one of {', '.join(BACKENDS)}; using auto",
            RuntimeWarning,
            stacklevel=3,
        )
        return "auto"
    return name


_backend = _initial_backend()
_native_devices: dict[str, frozenset[str]] = {}
_fallbacks_logged: set[tuple[str, str]] = set()


def get_backend() -> str:
    """The process-wide backend: ``"auto"``, ``"native"`` or ``"reference"``."""
    return _backend


def set_backend(name: str) -> None:
    """Set the process-wide backend to ``name`` (one of ``BACKENDS``); raises ValueError for any other name."""
    global _backend
    _backend = _checked(name)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the enclosed block with the given backend."""
    global _backend
    previous, _backend = _backend, _checked(name)
    try:
        yield
    finally:
        _backend = previous


def native_devices(op: str) -> frozenset[str]:
    """Device types with a native kernel for op (looked up once per op)."""
    devices = _native_devices.get(op)
    if devices is None:
        devices = frozenset(d for d in ("cpu", "cuda") if _native.has_kernel(op, d))
        _native_devices[op] = devices
    return devices


def _missing(op: str, tensor: torch.Tensor, native_dtypes: Iterable[torch.dtype]) -> str | None:
    device = tensor.device.type
    if device not in native_devices(op):
        return _native.unavailable_reason(op, device) or f"no {device} kernel"
    if tensor.dtype not in native_dtypes:
        return f"no native kernel for {tensor.dtype}"
    return None


def use_native(op: str, tensor: torch.Tensor, native_dtypes: Iterable[torch.dtype]) -> bool:
    """Resolve the backend for one call of op on tensor: True runs the native kernel."""
    if _backend == "reference":
        return False
    missing = _missing(op, tensor, native_dtypes)
    if missing is None:
        return True
    if _backend == "native":
        raise NativeKernelUnavailable(
            f"stegafast.ops.{op}: no native kernel for {tensor.device.type} {tensor.dtype} "
            f"tensors: {missing}. Use STEGAFAST_BACKEND=auto to fall back to the reference."
        )
    key = (op, tensor.device.type)
    if key not in _fallbacks_logged:
        _fallbacks_logged.add(key)
        # Without the library the import already warned; a loaded library missing
        # one kernel is news worth a warning.
        level = logging.WARNING if _native.status().loaded else logging.INFO
        _logger.log(level, "stegafast.ops.%s runs the reference on %s: %s", op, key[1], missing)
    return False
