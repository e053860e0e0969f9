"""Automatic mixed precision: which autocast dtype runs where, and the gradient scaler.

``bf16`` autocasts to bfloat16 on CUDA (Ampere or newer) and on CPU; ``fp16``
autocasts to float16 on CUDA with dynamic loss scaling (float16's narrow
exponent would flush small gradients to zero otherwise); ``off`` runs in the
models' own dtype. float16 autocast on CPU is refused: CPU kernels for it are
few and slow, and bfloat16 is the CPU's half type.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

__all__ = ["AMP_MODES", "AmpPolicy", "resolve_amp"]

AMP_MODES = ("bf16", "fp16", "off")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class AmpPolicy:
    """The resolved ``--amp`` choice for one device type."""

    mode: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None when AMP is off."""
        return _DTYPES.get(self.mode)

    @property
    def scales_loss(self) -> bool:
        return self.mode == "fp16"

    def autocast(self, enabled: bool = True) -> AbstractContextManager:
        """The autocast region (a no-op context when AMP is off); ``enabled=False``
        opens a full-precision region inside an autocast one."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=enabled)

    def make_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled only for fp16 (a disabled one passes everything through)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.scales_loss)


def resolve_amp(mode: str, device: torch.device | str) -> AmpPolicy:
    """Check ``mode`` against the device and return the policy; raises ValueError
    for an unknown mode, fp16 on CPU, or bf16 on a GPU without bfloat16."""
    device_type = torch.device(device).type
    if mode not in AMP_MODES:
        raise ValueError(f"unknown AMP mode {mode!r}; choose one of {', '.join(AMP_MODES)}")
    if mode == "off":
        return AmpPolicy(mode, device_type)
    if device_type == "cpu" and mode == "fp16":
        raise ValueError("--amp fp16 needs a CUDA device; on CPU use --amp bf16 or --amp off")
    if device_type == "cuda" and mode == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU has no bfloat16 support; use --amp fp16 or --amp off")
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"AMP runs on cpu and cuda only, not {device_type}; use --amp off")
    return AmpPolicy(mode, device_type)
