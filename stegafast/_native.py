"""Loads the native library stegafast._C and says why a kernel is unavailable.

Importing stegafast never fails because of the native library: when it is
missing, or was built against another torch, one warning gives the reason and
every operator runs its pure-PyTorch reference instead.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from dataclasses import dataclass, field

import torch

__all__ = ["NativeStatus", "status", "build_info", "has_kernel", "unavailable_reason"]

# Dispatch keys for the device types that can have native kernels.
_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}
_BUILD_INFO_PATH = os.path.join(os.path.dirname(__file__), "_build_info.json")


@dataclass
class NativeStatus:
    """Whether the native library ``stegafast._C`` loaded, why not, its build info and the CPU variant in use."""

    loaded: bool
    reason: str | None  # why the library is not loaded; None when it is
    build_info: dict = field(default_factory=dict)
    cpu_variant: str | None = None  # "avx2" or "baseline": the CPU kernel build in use
    # why STEGAFAST_CPU_VARIANT (auto, baseline or avx2) was not followed as written; None when it was
    cpu_variant_note: str | None = None


def _read_build_info() -> dict:
    try:
        with open(_BUILD_INFO_PATH, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _load() -> NativeStatus:
    info = _read_build_info()
    if os.environ.get("STEGAFAST_DISABLE_NATIVE", "") == "1":
        return NativeStatus(False, "disabled by STEGAFAST_DISABLE_NATIVE=1", info)
    built_for = info.get("torch_version")
    # Check before loading: a library built against another torch can fail to
    # load, or load and misbehave, because the C++ ABI of torch is not stable.
    if built_for is not None and built_for != torch.__version__:
        return NativeStatus(
            False,
            f"stegafast._C was built for torch {built_for} but torch {torch.__version__} "
            "is installed; rebuild with `pip install --no-build-isolation .`",
            info,
        )
    try:
        module = importlib.import_module("stegafast._C")
    except (ImportError, OSError) as exc:
        return NativeStatus(False, f"stegafast._C could not be loaded ({exc})", info)
    if module.torch_version != torch.__version__:
        return NativeStatus(
            False,
            f"stegafast._C was built for torch {module.torch_version} but torch "
            f"{torch.__version__} is installed; rebuild with `pip install --no-build-isolation .`",
            info,
        )
    # a library built before cpu_variant_note existed has nothing to say
    note = module.cpu_variant_note() if hasattr(module, "cpu_variant_note") else None
    return NativeStatus(True, None, info, module.cpu_variant(), note)


_STATUS = _load()
if not _STATUS.loaded:
    warnings.warn(
        f"stegafast is using its pure-PyTorch reference kernels: {_STATUS.reason}",
        RuntimeWarning,
        stacklevel=2,
    )
elif _STATUS.cpu_variant_note:
    # the library decides the CPU build (csrc/common/cpu_variants.cpp) and says
    # why it did not follow STEGAFAST_CPU_VARIANT as written
    warnings.warn(f"stegafast: {_STATUS.cpu_variant_note}", RuntimeWarning, stacklevel=2)


def status() -> NativeStatus:
    """The native library's load status, decided once at import (the same object on every call)."""
    return _STATUS


def build_info() -> dict:
    """A copy of the build info stored with ``_C`` (torch and CUDA versions, arch list, kernels); ``{}`` when not
    loaded."""
    return dict(_STATUS.build_info)


def has_kernel(op: str, device_type: str) -> bool:
    """Whether torch.ops.stegafast.<op> has a native kernel for device_type."""
    key = _DISPATCH_KEYS.get(device_type)
    if not _STATUS.loaded or key is None:
        return False
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(f"stegafast::{op}", key)
    except RuntimeError:  # a library built before this op existed has no schema for it
        return False


def unavailable_reason(op: str, device_type: str) -> str | None:
    """Why op has no native kernel on device_type, or None when it has one."""
    if not _STATUS.loaded:
        return _STATUS.reason
    if device_type not in _DISPATCH_KEYS:
        return f"stegafast has no native kernels for {device_type} tensors"
    if has_kernel(op, device_type):
        return None
    if device_type == "cuda":
        skipped = _STATUS.build_info.get("cuda_skipped_reason")
        return f"built without CUDA kernels ({skipped})" if skipped else "no CUDA kernel for this op"
    return f"no {device_type} kernel for this op"
