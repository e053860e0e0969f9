"""Glow's invertible 1x1 convolution: a learned channel permutation/mixing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .invertible import InvertibleModule, precise_dtype

__all__ = ["InvertibleConv1x1", "CONV1X1_INITS"]

# how W starts: Glow's random rotation, or the identity (the layer then passes channels through unchanged)
CONV1X1_INITS = ("random", "identity")


def _random_rotation(channels: int) -> torch.Tensor:
    """A random orthogonal matrix from the global torch RNG (|det| = 1: logdet starts at 0)."""
    q, r = torch.linalg.qr(torch.randn(channels, channels, dtype=torch.float64))
    # the sign fix makes q Haar-distributed rather than biased by QR's convention
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


class InvertibleConv1x1(InvertibleModule):
    """``y[:, i] = sum_j W[i, j] x[:, j]`` at every pixel, W invertible (Glow).

    W starts as a random orthogonal matrix drawn from the global torch RNG
    (``init="random"``, Glow's) or as the identity (``init="identity"``, which
    draws nothing from the RNG).
    With ``lu=True`` (default) W is kept as ``P @ L @ (U + diag(sign_s * exp(log_s)))``:
    P a fixed permutation, L unit lower triangular, U strictly upper triangular,
    ``sign_s`` fixed and ``log_s`` learned, so log|det| per sample is the cheap
    ``H * W * sum(log_s)`` and W cannot become singular through a sign change.
    With ``lu=False`` W is a plain learned matrix and the determinant is
    computed with ``slogdet``.

    ``inverse`` applies W^-1, computed (from the triangular factors when
    ``lu=True``) in float64 for float64 inputs and in float32 otherwise.
    """

    def __init__(self, channels: int, lu: bool = True, init: str = "random"):
        super().__init__(channels)
        if not isinstance(lu, bool):
            raise TypeError(f"InvertibleConv1x1: lu must be True or False, got {lu!r}")
        if init not in CONV1X1_INITS:
            raise ValueError(f"InvertibleConv1x1: init must be one of {', '.join(CONV1X1_INITS)}, got {init!r}")
        self.lu = lu
        self.init = init
        w = _random_rotation(channels) if init == "random" else torch.eye(channels, dtype=torch.float64)
        if lu:
            p, lower, upper = torch.linalg.lu(w)
            s = torch.diagonal(upper)
            self.register_buffer("permutation", p.float())
            self.register_buffer("sign_s", torch.sign(s).float())
            self.lower = nn.Parameter(torch.tril(lower, -1).float())
            self.upper = nn.Parameter(torch.triu(upper, 1).float())
            self.log_s = nn.Parameter(torch.log(s.abs()).float())
        else:
            self.weight = nn.Parameter(w.float())

    def extra_repr(self) -> str:
        """The channel count, whether W is LU-factorised and how W started, for ``repr()``."""
        return f"channels={self.channels}, lu={self.lu}, init={self.init!r}"

    def _factors(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """P, L, U in dtype; the masks keep the learned parts off their fixed triangles."""
        lower = torch.tril(self.lower.to(dtype), -1) + torch.eye(self.channels, dtype=dtype, device=self.lower.device)
        diag = self.sign_s.to(dtype) * self.log_s.to(dtype).exp()
        upper = torch.triu(self.upper.to(dtype), 1) + torch.diag(diag)
        return self.permutation.to(dtype), lower, upper

    def weight_matrix(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """W as a (C, C) matrix in dtype."""
        if not self.lu:
            return self.weight.to(dtype)
        p, lower, upper = self._factors(dtype)
        return p @ lower @ upper

    def inverse_weight_matrix(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """W^-1 as a (C, C) matrix in dtype."""
        if not self.lu:
            return torch.linalg.inv(self.weight.to(dtype))
        p, lower, upper = self._factors(dtype)
        eye = torch.eye(self.channels, dtype=dtype, device=p.device)
        # W^-1 = U^-1 L^-1 P^T: triangular solves are more accurate than a general inverse
        inv_lower = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
        inv_upper = torch.linalg.solve_triangular(upper, eye, upper=True)
        return inv_upper @ inv_lower @ p.T

    def _logabsdet(self, dtype: torch.dtype) -> torch.Tensor:
        if self.lu:
            return self.log_s.to(dtype).sum()
        return torch.linalg.slogdet(self.weight.to(dtype))[1]

    def _logdet(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        return (self._logabsdet(precise_dtype(x)) * (h * w)).repeat(x.shape[0])

    @staticmethod
    def _mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        c = matrix.shape[0]
        return F.conv2d(x, matrix.to(x.dtype).view(c, c, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W x, logdet)`` at every pixel; x float (B, C, H, W) with C = ``channels``, the output the same shape
        and dtype; ``logdet`` (B,) is float64 for float64 inputs, else float32."""
        self._check_input("forward", "x", x)
        return self._mix(x, self.weight_matrix(precise_dtype(x))), self._logdet(x)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W^-1 y, logdet)`` at every pixel; y float (B, C, H, W) with C = ``channels``, the output the same shape
        and dtype; ``logdet`` (B,) is float64 for float64 inputs, else float32, minus ``forward``'s."""
        self._check_input("inverse", "y", y)
        return self._mix(y, self.inverse_weight_matrix(precise_dtype(y))), -self._logdet(y)
