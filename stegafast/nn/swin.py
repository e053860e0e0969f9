"""The Swin Transformer block: ``SwinBlock`` and its shifted-window mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .window_attention import WindowAttention, window_partition, window_reverse

__all__ = ["SwinBlock", "shifted_window_mask"]

# Swin's additive mask value for token pairs the cyclic shift brought together
MASKED = -100.0


def shifted_window_mask(
    height: int, width: int, window_size: int, shift: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """The SW-MSA mask of a (height, width) feature map (multiples of window_size) rolled
    by -shift in both directions: (nW, N, N) float32, 0 where tokens i and j of a window
    came from the same region of the unrolled map, -100 where the roll joined them."""
    regions = torch.zeros(1, height, width, 1, device=device)
    bounds = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    label = 0
    for rows in bounds:
        for cols in bounds:
            regions[:, rows, cols, :] = label
            label += 1
    labels = window_partition(regions, window_size).reshape(-1, window_size * window_size)
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape, device=device).masked_fill(different, MASKED)


class SwinBlock(nn.Module):
    """One Swin Transformer block: x + W-MSA(LN(x)) (SW-MSA when shift > 0), then
    x + MLP(LN(x)).

    * ``forward(x)``: x channels-last (B, H, W, dim) (``channels_last=True``, Swin's
      layout) or NCHW (B, dim, H, W); returns the same layout, shape and dtype. Any H and
      W: the normalised map is padded with zeros at the bottom and right to multiples of
      window_size and cropped back after the attention, as Swin does.
    * ``shift``: the cyclic shift of SW-MSA, 0 <= shift < window_size (0: W-MSA; Swin
      alternates 0 and window_size // 2). The shift mask is computed once per padded size
      and device and kept (under torch.compile it is traced into the graph).
    * The MLP is Linear(dim, mlp_ratio * dim), GELU, Linear back; no dropout or stochastic
      depth. Parameter names follow Swin's (norm1, attn, norm2, mlp.0, mlp.2).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        window_size: int = 7,
        shift: int = 0,
        mlp_ratio: float = 4.0,
        channels_last: bool = True,
        qkv_bias: bool = True,
    ):
        super().__init__()
        if not 0 <= shift < window_size:
            raise ValueError(f"SwinBlock: shift must be 0..{window_size - 1} (window_size - 1), got {shift}")
        if mlp_ratio <= 0:
            raise ValueError(f"SwinBlock: mlp_ratio must be > 0, got {mlp_ratio}")
        self.dim, self.window_size, self.shift, self.channels_last = dim, window_size, shift, channels_last
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self._masks: dict[tuple, torch.Tensor] = {}

    def _shift_mask(self, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return shifted_window_mask(height, width, self.window_size, self.shift, like.device).to(like.dtype)
        key = (height, width, like.device, like.dtype)
        if key not in self._masks:
            mask = shifted_window_mask(height, width, self.window_size, self.shift, like.device)
            self._masks[key] = mask.to(like.dtype)
        return self._masks[key]

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        """(S)W-MSA of a normalised (B, H, W, C) map, padded to whole windows and cropped back."""
        _, h, w, c = x.shape
        ws, shift = self.window_size, self.shift
        x = F.pad(x, (0, 0, 0, (-w) % ws, 0, (-h) % ws))
        hp, wp = x.shape[1:3]
        mask = None
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            mask = self._shift_mask(hp, wp, x)
        windows = window_partition(x, ws).reshape(-1, ws * ws, c)
        x = window_reverse(self.attn(windows, mask).reshape(-1, ws, ws, c), ws, hp, wp)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        return x[:, :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One Swin block on ``x``: float (B, H, W, dim) when ``channels_last``, else (B, dim, H, W); any H and W.

        Returns the same layout, shape and dtype. Raises ValueError for a tensor that is not 4-D or has another channel
        count.
        """
        if x.dim() != 4:
            raise ValueError(f"SwinBlock: x must be 4-D, got shape {tuple(x.shape)}")
        if not self.channels_last:
            x = x.permute(0, 2, 3, 1)
        if x.shape[-1] != self.dim:
            layout = "(B, H, W, C)" if self.channels_last else "(B, C, H, W)"
            raise ValueError(f"SwinBlock: x must be {layout} with C = {self.dim}, got {x.shape[-1]} channels")
        x = x + self._attention(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x if self.channels_last else x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        """The width, window size, shift and layout, for ``repr()``."""
        return f"dim={self.dim}, window_size={self.window_size}, shift={self.shift}, channels_last={self.channels_last}"
