"""The four block types of the autoencoder's stages (``BLOCK_TYPES``).

Every block maps (B, in, H, W) to (B, out, ceil(H / stride), ceil(W / stride)) and
carries a residual shortcut inside itself (a 1x1 projection when the shape
changes): the only skips in the model, never between encoder and decoder.
Normalisation is GroupNorm, so a sample's output never depends on the rest of
its batch (batch size 1 and a 1x1 feature map train as well as any).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["make_block", "ResNetBlock", "ResNeXtBlock", "SEBlock", "InceptionBlock", "group_norm"]


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups (as many as divide ``channels``)."""
    return nn.GroupNorm(math.gcd(channels, 8), channels)


def conv_norm(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Convolution ("same" padding, no bias: the norm has one) and GroupNorm."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), group_norm(cout))


class Shortcut(nn.Module):
    """Identity, or a strided 1x1 projection when channels or size change."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.project = conv_norm(cin, cout, 1, stride) if cin != cout or stride != 1 else nn.Identity()

    def forward(self, x):
        """(B, cin, H, W) -> (B, cout, ceil(H / stride), ceil(W / stride)): x itself, or its 1x1 projection."""
        return self.project(x)


class ResNetBlock(nn.Module):
    """The basic residual block: conv3x3 (stride) - norm - ReLU - conv3x3 - norm, plus the shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(conv_norm(cin, cout, 3, stride), nn.ReLU(inplace=True), conv_norm(cout, cout))
        self.shortcut = Shortcut(cin, cout, stride)

    def residual(self, x):
        """The residual branch, (B, cin, H, W) -> (B, cout, ceil(H / stride), ceil(W / stride)), before the shortcut
        is added; subclasses change only this."""
        return self.body(x)

    def forward(self, x):
        """(B, cin, H, W) -> (B, cout, ceil(H / stride), ceil(W / stride)), x's dtype, >= 0: ReLU(residual +
        shortcut)."""
        return (self.residual(x) + self.shortcut(x)).relu()


class SqueezeExcite(nn.Module):
    """Channel attention: global average, a bottleneck MLP and a sigmoid gate per channel."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        """(B, C, H, W) -> (B, C, H, W): each channel of x scaled by its gate in (0, 1), computed from x's spatial
        mean."""
        return x * self.gate(x)


class SEBlock(ResNetBlock):
    """The basic residual block whose residual branch is gated by squeeze-and-excitation."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(cin, cout, stride)
        self.excite = SqueezeExcite(cout)

    def residual(self, x):
        """The basic block's residual branch, (B, cin, H, W) -> (B, cout, ceil(H / stride), ceil(W / stride)), gated
        per channel by squeeze-and-excitation."""
        return self.excite(self.body(x))


class ResNeXtBlock(nn.Module):
    """The bottleneck with grouped convolutions: 1x1 down to ``width``, 3x3 in
    ``cardinality`` groups (stride), 1x1 up, plus the shortcut. ``width`` is half of
    ``cout`` rounded up to a multiple of the cardinality (8, or 1 for very narrow blocks)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, cardinality: int = 8):
        super().__init__()
        groups = cardinality if cout >= 2 * cardinality else 1
        width = groups * math.ceil(max(1, cout // 2) / groups)
        self.body = nn.Sequential(
            conv_norm(cin, width, 1),
            nn.ReLU(inplace=True),
            conv_norm(width, width, 3, stride, groups=groups),
            nn.ReLU(inplace=True),
            conv_norm(width, cout, 1),
        )
        self.shortcut = Shortcut(cin, cout, stride)

    def forward(self, x):
        """(B, cin, H, W) -> (B, cout, ceil(H / stride), ceil(W / stride)), x's dtype, >= 0: ReLU(bottleneck +
        shortcut)."""
        return (self.body(x) + self.shortcut(x)).relu()


def _split(total: int, parts: int) -> list[int]:
    """``total`` channels in ``parts`` branches, the remainder going to the first ones (none empty)."""
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts) if base + (i < extra) > 0]


class InceptionBlock(nn.Module):
    """Multi-branch block: 1x1, 3x3, 5x5 (two 3x3) and 3x3-max-pool + 1x1 branches, each
    strided, concatenated to ``cout`` channels, plus the shortcut. With fewer than four
    output channels the later branches are dropped."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        widths = _split(cout, 4)
        makers = (
            lambda w: conv_norm(cin, w, 1, stride),
            lambda w: conv_norm(cin, w, 3, stride),
            lambda w: nn.Sequential(conv_norm(cin, w, 3, stride), nn.ReLU(inplace=True), conv_norm(w, w, 3)),
            lambda w: nn.Sequential(nn.MaxPool2d(3, stride, 1), conv_norm(cin, w, 1)),
        )
        self.branches = nn.ModuleList(make(w) for make, w in zip(makers, widths, strict=False))
        self.shortcut = Shortcut(cin, cout, stride)

    def forward(self, x):
        """(B, cin, H, W) -> (B, cout, ceil(H / stride), ceil(W / stride)), x's dtype, >= 0: ReLU(the branches
        concatenated along channels + shortcut)."""
        return (torch.cat([branch(x) for branch in self.branches], 1) + self.shortcut(x)).relu()


BLOCKS = {"resnet": ResNetBlock, "resnext": ResNeXtBlock, "se": SEBlock, "inception": InceptionBlock}


def make_block(kind: str, cin: int, cout: int, stride: int = 1) -> nn.Module:
    """A block of type ``kind`` (one of BLOCK_TYPES)."""
    return BLOCKS[kind](cin, cout, stride)
