"""Global multi-head self-attention over the encoder's final feature map.

Every position of the (B, C, h, w) map is a token ("patch"); all N = h * w tokens
attend to each other. The attention itself runs through the package's op
``stegafast.ops.window_attention`` as one window of N tokens. That op takes at
most ``MAX_TOKENS`` (256) tokens and 128 channels per head; a larger map (201x201
inputs give 26x26 = 676 patches with three stride-2 stages) runs through
``torch.nn.functional.scaled_dot_product_attention`` instead, the same softmax
attention computed by PyTorch. The choice depends only on N and is made
explicitly here, never by catching an error.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...ops import window_attention
from ...ops.attention import MAX_HEAD_DIM, MAX_TOKENS

__all__ = ["PatchAttention", "head_count", "MAX_HEAD_WIDTH"]

MAX_HEAD_WIDTH = 64  # channels per head the head count aims for


def head_count(channels: int) -> int:
    """The fewest heads that divide ``channels`` into at most 64 channels each."""
    return next(h for h in range(1, channels + 1) if channels % h == 0 and channels // h <= MAX_HEAD_WIDTH)


class PatchAttention(nn.Module):
    """Pre-norm residual self-attention: ``x + proj(attention(norm(x)))`` on (B, C, h, w)."""

    def __init__(self, channels: int):
        super().__init__()
        self.heads = head_count(channels)
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v of the (B, C, h, w) map, each (B, heads, N, C / heads)."""
        b, c = x.shape[:2]
        tokens = self.norm(x.flatten(2).transpose(1, 2))  # (B, N, C)
        qkv = self.qkv(tokens).unflatten(-1, (3, self.heads, c // self.heads))  # (B, N, 3, heads, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) float -> (B, C, h, w) of x's dtype: x plus the projected attention of all N = h * w patches.

        The package's ``window_attention`` op runs when N <= MAX_TOKENS (256) and C / heads <= MAX_HEAD_DIM (128),
        PyTorch's ``scaled_dot_product_attention`` otherwise."""
        q, k, v = self._qkv(x)
        n, d = q.shape[-2:]
        if n <= MAX_TOKENS and d <= MAX_HEAD_DIM:
            out = window_attention(q.contiguous(), k.contiguous(), v.contiguous())  # one window of N tokens
        else:
            out = F.scaled_dot_product_attention(q, k, v)  # beyond the op's 256 tokens
        out = out.transpose(1, 2).flatten(2)  # (B, N, C)
        return x + self.proj(out).transpose(1, 2).reshape(x.shape)

    def attention_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, N, N) attention probabilities, averaged over the heads: computed
        explicitly from q and k (the op does not return them); each row sums to 1."""
        q, k, _ = self._qkv(x)
        scores = (q.float() @ k.float().transpose(-2, -1)) * q.shape[-1] ** -0.5
        return scores.softmax(-1).mean(1)
