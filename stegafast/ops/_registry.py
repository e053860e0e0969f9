"""What stegafast knows about each of its native operators: the kernel family it
belongs to and its autocast policy. `stegafast info` reads it.

Autocast policies:

* ``"keep"``: autocast leaves the op alone: it runs on the dtype of its inputs
  and returns that dtype; half inputs are computed in float32 inside the kernel.
  Nothing needs registering, since autocast passes custom ops through unchanged.
* ``"float32"``: under autocast, floating inputs are cast to float32 first (for
  ops whose accuracy needs float32 storage as well as float32 arithmetic).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _native
from ..backend import native_devices

AUTOCAST_POLICIES = ("keep", "float32")


@dataclass(frozen=True)
class OpInfo:
    name: str  # torch.ops.stegafast.<name>
    kernel: str  # the csrc/<kernel>/ folder
    autocast: str


_ops: dict[str, OpInfo] = {}


def declare(name: str, kernel: str, autocast: str) -> None:
    if autocast not in AUTOCAST_POLICIES:
        raise ValueError(f"unknown autocast policy {autocast!r}")
    _ops[name] = OpInfo(name, kernel, autocast)
    # resolve the op's devices now, not on its first call: torch.compile cannot
    # trace the dispatcher query that answers it
    native_devices(name)
    if autocast == "float32" and _native.status().loaded:
        for device in ("cpu", "cuda"):
            torch.library.register_autocast(f"stegafast::{name}", device, torch.float32)


def ops() -> list[OpInfo]:
    return list(_ops.values())
