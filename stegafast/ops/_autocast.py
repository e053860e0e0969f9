"""Autocast policies, declared per operator so that `stegafast info` can state them.

* ``"keep"``: autocast leaves the op alone: it runs on the dtype of its inputs
  and returns that dtype; half inputs are computed in float32 inside the kernel.
  Nothing needs registering, since autocast passes custom ops through unchanged.
* ``"float32"``: under autocast, floating inputs are cast to float32 first (for
  ops whose accuracy needs float32 storage as well as float32 arithmetic).
"""

from __future__ import annotations

import torch

from .. import _native

POLICIES = ("keep", "float32")
_declared: dict[str, str] = {}


def declare(op: str, policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"unknown autocast policy {policy!r}")
    _declared[op] = policy
    if policy == "float32" and _native.status().loaded:
        for device in ("cpu", "cuda"):
            torch.library.register_autocast(f"stegafast::{op}", device, torch.float32)


def policy(op: str) -> str | None:
    return _declared.get(op)


def declared() -> dict[str, str]:
    return dict(_declared)
