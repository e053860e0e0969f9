"""A lower bound whose gradient still pulls values up from below it.

``torch.clamp(x, min=b)`` has zero gradient for ``x < b``, so a scale or a GDN
parameter that falls under its bound could never come back. ``lower_bound``
passes the gradient through wherever it points up (gradient descent would raise
``x``) and blocks it only where it would push ``x`` further down, as in Balle et
al.'s reference code and CompressAI.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["lower_bound", "LowerBound"]


class _LowerBoundFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, bound = ctx.saved_tensors
        passes = (x >= bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float | torch.Tensor) -> torch.Tensor:
    """``max(x, bound)`` elementwise, with the gradient rule of the module docstring."""
    bound = torch.as_tensor(bound, dtype=x.dtype, device=x.device)
    return _LowerBoundFunction.apply(x, bound)


class LowerBound(nn.Module):
    """``lower_bound`` with a fixed bound, stored as a buffer."""

    bound: torch.Tensor

    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``max(x, bound)`` elementwise: any shape, floating dtype, same shape and dtype out."""
        return lower_bound(x, self.bound.to(x.dtype))

    def extra_repr(self) -> str:
        """The bound, for ``repr()``."""
        return f"bound={self.bound.item():g}"
