"""The affine coupling block: half the channels transform the other half."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import nn

from ..ops.coupling import CLAMP_FNS, affine_coupling, affine_coupling_inverse
from .invertible import InvertibleModule
from .subnets import build_subnet

__all__ = ["AffineCouplingBlock", "check_even_channels"]


def check_even_channels(owner: str, channels: int) -> None:
    """Raise ValueError (starting with ``owner``) when ``channels`` is odd: a coupling splits them in two halves."""
    if channels % 2:
        raise ValueError(f"{owner}: channels must be even (the coupling splits them in two halves), got {channels}")


def _check_clamp(clamp, clamp_fn) -> float:
    if isinstance(clamp, bool) or not isinstance(clamp, numbers.Real) or not (0 < clamp < math.inf):
        raise ValueError(f"AffineCouplingBlock: clamp must be a positive finite number, got {clamp!r}")
    if clamp_fn not in CLAMP_FNS:
        raise ValueError(f"AffineCouplingBlock: clamp_fn must be one of {', '.join(CLAMP_FNS)}, got {clamp_fn!r}")
    return float(clamp)


class AffineCouplingBlock(InvertibleModule):
    """Affine coupling (RealNVP/Glow): ``x = [x1 | x2]`` split along channels,

        s_raw, t = subnet(x1)
        y = [x1 | x2 * exp(s) + t],   s = clamp * tanh(s_raw / clamp)

    (``clamp_fn="atan"``: ``s = clamp * 0.636 * atan(s_raw / clamp)``). The
    soft clamp bounds the per-element log-scale to (-clamp, clamp), which keeps
    deep stacks numerically invertible. log|det| per sample is the sum of s.
    The affine step runs as the fused ``stegafast.ops.affine_coupling`` kernel.

    ``channels`` must be even. ``subnet`` is a registered name ("glow": conv3x3,
    ReLU, conv1x1, ReLU, conv3x3 of width ``hidden``; "dense": HiNet's dense
    block, growth 32, ``hidden`` unused) or a callable ``(in_channels,
    out_channels) -> nn.Module``. The subnet's last layer starts at zero, so a new
    block is the identity.
    """

    def __init__(
        self,
        channels: int,
        subnet: str | Callable[[int, int], nn.Module] = "glow",
        hidden: int = 128,
        clamp: float = 2.0,
        clamp_fn: str = "tanh",
    ):
        super().__init__(channels)
        check_even_channels("AffineCouplingBlock", channels)
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"AffineCouplingBlock: hidden must be a positive int, got {hidden!r}")
        self.clamp = _check_clamp(clamp, clamp_fn)
        self.clamp_fn = clamp_fn
        self.half = channels // 2
        # one subnet output: s_raw for the second half, then t for it
        self.subnet = build_subnet(subnet, self.half, 2 * self.half, hidden)

    def extra_repr(self) -> str:
        """The channels and the soft clamp of the log-scale, for ``repr()``."""
        return f"channels={self.channels}, clamp={self.clamp}, clamp_fn={self.clamp_fn!r}"

    def _scale_shift(self, conditioner: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """s_raw and t for the other half, in its dtype (under autocast the subnet
        may return a half type while the transformed half stays float32)."""
        h = self.subnet(conditioner)
        expected = (conditioner.shape[0], 2 * self.half, *conditioner.shape[2:])
        if tuple(h.shape) != expected:
            raise ValueError(
                f"AffineCouplingBlock: the subnet must map {tuple(conditioner.shape)} to {expected}, "
                f"got {tuple(h.shape)}"
            )
        s_raw, t = h.to(dtype).chunk(2, dim=1)
        return s_raw, t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([x1 | x2 * exp(s) + t], logdet)``; x float (B, C, H, W) with C = ``channels``, the output the same shape
        and dtype.

        ``s`` is soft-clamped to (-clamp, clamp); ``logdet`` (B,) is float64 for float64 inputs, else float32: the sum
        of ``s`` per sample.
        """
        self._check_input("forward", "x", x)
        x1, x2 = x[:, : self.half], x[:, self.half :]
        s_raw, t = self._scale_shift(x1, x2.dtype)
        y2, logdet = affine_coupling(x2, s_raw, t, clamp=self.clamp, clamp_fn=self.clamp_fn)
        return torch.cat([x1, y2], dim=1), logdet

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([y1 | (y2 - t) * exp(-s)], logdet)``: the exact inverse of ``forward``; y float (B, C, H, W) with C =
        ``channels``, same shape and dtype out.

        ``logdet`` (B,) is float64 for float64 inputs, else float32, minus ``forward``'s at the corresponding point.
        """
        self._check_input("inverse", "y", y)
        y1, y2 = y[:, : self.half], y[:, self.half :]
        s_raw, t = self._scale_shift(y1, y2.dtype)
        x2, logdet = affine_coupling_inverse(y2, s_raw, t, clamp=self.clamp, clamp_fn=self.clamp_fn)
        return torch.cat([y1, x2], dim=1), logdet
