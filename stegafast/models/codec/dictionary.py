"""The dictionary part of DCAE's entropy model (Lu et al., CVPR 2025, section 3).

Each channel slice of y is predicted from a query built of the hyper-decoder's
scales and means and the slices decoded before it. ``DictionaryCrossAttention``
turns that query into what a learned dictionary (a parameter of ``entries x
width`` shared by every slice) says about it:

1. a linear map to the dictionary's width, then the multi-scale aggregation
   (``MultiScaleAggregation``: three depthwise 3x3 stages in a row, so receptive
   fields of 3, 5 and 7 latent pixels, concatenated with the input, fused by a
   1x1 convolution and gated by a spatial attention map), added to its input;
2. cross-attention of every latent position (queries) to the dictionary entries:
   keys are a linear map of the normalised dictionary, values the normalised
   dictionary itself, softmax over the entries with a learnable temperature per
   head (initially 1, no 1/sqrt(d)); ``F.scaled_dot_product_attention`` computes
   it (the temperature folded into the queries): the query count is the latent
   map's size, unbounded, and keys are not the queries' tokens, which our window
   op does not cover;
3. a linear map with a residual, a convolutional GLU feed-forward block with a
   residual, and a linear map to the output channels.

Every residual branch is added to a learnable per-channel scale of its input
(initially 1), as in the public code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ChannelScale", "ConvGLU", "MultiScaleAggregation", "DictionaryCrossAttention"]


class ChannelScale(nn.Module):
    """x * s with a learnable per-channel s on the last axis (initially 1)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., C) times the learned per-channel weight."""
        return x * self.weight


class ConvGLU(nn.Module):
    """The convolutional gated linear unit on channels-last (B, H, W, C) maps:
    ``fc2(GELU(dwconv3x3(a)) * g)`` where ``(a, g) = fc1(x)``."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, 2 * hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C): the gated, depthwise-convolved MLP."""
        a, gate = self.fc1(x).chunk(2, dim=-1)
        a = F.gelu(self.dwconv(a.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
        return self.fc2(a * gate)


class _PointDepthPoint(nn.Module):
    """1x1, GELU, depthwise 3x3, GELU, 1x1 (NCHW): one stage of the aggregation."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GELU(),
            nn.Conv2d(channels, channels, 1),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MultiScaleAggregation(nn.Module):
    """Features of growing receptive field fused and spatially gated (channels-last in
    and out); see the module docstring."""

    stages = 3

    def __init__(self, channels: int, gate_kernel: int = 7):
        super().__init__()
        self.inp = nn.Conv2d(channels, channels, 1)
        self.scales = nn.ModuleList(_PointDepthPoint(channels) for _ in range(self.stages))
        self.fuse = nn.Conv2d(channels * (self.stages + 1), channels, 1)
        # the gate sees the channel mean and maximum at each position
        self.gate = nn.Conv2d(2, 1, gate_kernel, padding=gate_kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C): features at several scales fused and spatially gated."""
        features = [self.inp(x.permute(0, 3, 1, 2))]
        for stage in self.scales:
            features.append(stage(features[-1]))
        fused = self.fuse(torch.cat(features, dim=1))
        summary = torch.cat([fused.mean(dim=1, keepdim=True), fused.amax(dim=1, keepdim=True)], dim=1)
        return (fused * torch.sigmoid(self.gate(summary))).permute(0, 2, 3, 1)


class DictionaryCrossAttention(nn.Module):
    """The query (B, in_channels, h, w) cross-attends to the dictionary (entries, heads *
    head_dim); returns (B, out_channels, h, w). See the module docstring."""

    def __init__(self, in_channels: int, out_channels: int, heads: int, head_dim: int, mlp_ratio: int = 4):
        super().__init__()
        width = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.embed = nn.Linear(in_channels, width)
        self.norm_aggregate = nn.LayerNorm(width)
        self.aggregate = MultiScaleAggregation(width)
        self.scale_aggregate = ChannelScale(width)
        self.norm_query = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.norm_dictionary = nn.LayerNorm(width)
        self.key = nn.Linear(width, width)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(width, width)
        self.scale_attention = ChannelScale(width)
        self.norm_mlp = nn.LayerNorm(width)
        # fc1 widens to mlp_ratio * width, split into the value and the gate halves
        self.mlp = ConvGLU(width, mlp_ratio * width // 2)
        self.scale_mlp = ChannelScale(width)
        self.out = nn.Linear(width, out_channels)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n, heads * d) -> (B, heads, n, d)."""
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def attend(self, x: torch.Tensor, dictionary: torch.Tensor) -> torch.Tensor:
        """Channels-last (B, h, w, width) queries against the (entries, width) dictionary."""
        b, h, w, c = x.shape
        q = self._split_heads(self.query(self.norm_query(x)).reshape(b, h * w, c))
        entries = self.norm_dictionary(dictionary).expand(b, -1, -1)
        k, v = self._split_heads(self.key(entries)), self._split_heads(entries)
        # the per-head temperature multiplies the logits q.k: fold it into q
        out = F.scaled_dot_product_attention(q * self.temperature.to(q.dtype), k, v, scale=1.0)
        return out.transpose(1, 2).reshape(b, h, w, c)

    def forward(self, query: torch.Tensor, dictionary: torch.Tensor) -> torch.Tensor:
        """(B, Cq, H, W) query features and the (entries, width) dictionary -> (B, Cout, H, W) context."""
        x = self.embed(query.permute(0, 2, 3, 1))
        x = self.aggregate(self.norm_aggregate(x)) + self.scale_aggregate(x)
        x = self.proj(self.attend(x, dictionary)) + self.scale_attention(x)
        x = self.mlp(self.norm_mlp(x)) + self.scale_mlp(x)
        return self.out(x).permute(0, 3, 1, 2)
