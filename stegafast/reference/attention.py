"""Windowed multi-head attention in plain PyTorch.

This is the readable specification of ``stegafast.ops.window_attention``. For
``q, k, v`` of shape (B * nW, heads, N, d), one row per window:

    s   = scale * q @ k^T + bias + mask        scale defaults to d ** -0.5
    out = softmax(s, dim=-1) @ v               shape (B * nW, heads, N, d)

* ``bias``: (heads, N, N), the relative-position bias already gathered from its
  table; the same for every window.
* ``mask``: (nW, N, N), additive, with nW dividing B * nW: window ``w`` uses
  ``mask[w % nW]``, which is how shifted-window attention masks the pairs of
  tokens that the cyclic shift brought together. ``-inf`` entries are allowed.
* A row whose every score is ``-inf`` (fully masked) attends to nothing: its
  output is zeros and it passes no gradient, where the plain softmax would give
  NaN.

Half inputs are computed in float32 and the output rounded back to the input
dtype, as the native kernels do.
"""

from __future__ import annotations

import torch

from ..dtypes import HALF_TYPES

__all__ = ["attention_scores", "window_attention"]


def attention_scores(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """s = scale * q k^T + bias + mask[w % nW], shape (B * nW, heads, N, N), in q's dtype."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = scale * (q @ k.transpose(-2, -1))
    if bias is not None:
        s = s + bias
    if mask is not None:
        windows, heads, n, _ = s.shape
        nw = mask.shape[0]
        s = (s.view(windows // nw, nw, heads, n, n) + mask[None, :, None]).view(windows, heads, n, n)
    return s


def window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(scale * q k^T + bias + mask) v for q, k, v (B * nW, heads, N, d),
    bias (heads, N, N), mask (nW, N, N); fully masked rows give zeros."""
    dtype = q.dtype
    if dtype in HALF_TYPES:
        q, k, v = q.float(), k.float(), v.float()
        bias = bias.float() if bias is not None else None
        mask = mask.float() if mask is not None else None
    s = attention_scores(q, k, bias=bias, mask=mask, scale=scale)
    empty = torch.isneginf(s.amax(dim=-1, keepdim=True))
    # a fully masked row is softmaxed as zeros (no NaN, no gradient), then zeroed
    p = torch.softmax(s.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    return (p @ v).to(dtype)
