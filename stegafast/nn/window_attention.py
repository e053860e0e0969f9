"""Window multi-head self-attention (Swin's W-MSA / SW-MSA) on ``stegafast.ops.window_attention``:
``WindowAttention`` and the ``window_partition`` / ``window_reverse`` helpers."""

from __future__ import annotations

import torch
from torch import nn

from ..ops.attention import MAX_HEAD_DIM, MAX_TOKENS, window_attention

__all__ = ["WindowAttention", "relative_position_index", "window_partition", "window_reverse"]


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut (B, H, W, C) into its non-overlapping windows, (B * nW, ws, ws, C), nW = (H / ws) * (W / ws),
    windows in row-major order within each image (H and W multiples of ws; as Swin's)."""
    b, h, w, c = x.shape
    if h % window_size or w % window_size:
        raise ValueError(f"window_partition: H and W must be multiples of the window size {window_size}, got {h} x {w}")
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """The inverse of ``window_partition``: (B * nW, ws, ws, C) back to (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.reshape(-1, height // window_size, width // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, c)


def relative_position_index(window_size: int) -> torch.Tensor:
    """(N, N) int64, N = ws^2: the row of the (2ws - 1)^2 relative-position table holding the
    bias between tokens i and j of a window, (dy + ws - 1) * (2ws - 1) + (dx + ws - 1) (Swin's)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    coords = coords.flatten(1)  # (2, N)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
    return relative[..., 0] * (2 * window_size - 1) + relative[..., 1]


class WindowAttention(nn.Module):
    """Multi-head self-attention within windows of ws x ws tokens, with Swin's learned
    relative-position bias.

    ``forward(x, mask=None)``: x (B * nW, N, dim) with N = ws^2, one row per window; mask
    (nW, N, N) additive (the shifted-window mask, window w using mask[w % nW]) or None;
    returns (B * nW, N, dim) in x's dtype. Parameters: ``qkv`` (dim -> 3 dim, with a bias
    when qkv_bias), ``proj`` (dim -> dim), ``relative_position_bias_table``
    ((2ws - 1)^2, heads), and the buffer ``relative_position_index`` (N, N), named as in
    Swin so that its checkpoints load. Requires dim divisible by heads, dim / heads <= 128
    and ws^2 <= 256.
    """

    def __init__(self, dim: int, window_size: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"WindowAttention: dim {dim} must be a positive multiple of heads {heads}")
        if dim // heads > MAX_HEAD_DIM:
            raise ValueError(f"WindowAttention: dim / heads = {dim // heads} channels per head; at most {MAX_HEAD_DIM}")
        if window_size < 1 or window_size**2 > MAX_TOKENS:
            raise ValueError(
                f"WindowAttention: window_size must be 1..16 (at most {MAX_TOKENS} tokens), got {window_size}"
            )
        self.dim, self.window_size, self.heads = dim, window_size, heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window_size))

    def relative_position_bias(self) -> torch.Tensor:
        """The (heads, N, N) bias gathered from the table."""
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention within each window: ``x`` (B * nW, ws^2, dim) float -> the same shape and dtype.

        ``mask``: additive (nW, ws^2, ws^2) (window w uses ``mask[w % nW]``) or None. Raises ValueError for another
        token count or width.
        """
        windows, n, c = x.shape
        if n != self.window_size**2 or c != self.dim:
            raise ValueError(
                f"WindowAttention: x must be (B * nW, {self.window_size**2}, {self.dim}), got {tuple(x.shape)}"
            )
        qkv = self.qkv(x).view(windows, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = window_attention(q, k, v, bias=self.relative_position_bias(), mask=mask, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(windows, n, c))

    def extra_repr(self) -> str:
        """The width, window size and heads, for ``repr()``."""
        return f"dim={self.dim}, window_size={self.window_size}, heads={self.heads}"
