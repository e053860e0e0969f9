"""Subnetworks that compute a coupling's scale and shift from its conditioning half.

A subnet maps (B, in_channels, H, W) to (B, out_channels, H, W) at the same
size. Its last layer starts at zero, so a fresh coupling block is the identity
(Glow's and HiNet's initialisation: deep flows then start stable).

Subnets are chosen by name from a small registry (:func:`register_subnet` adds
one) or passed to the coupling as a callable ``(in_channels, out_channels) -> nn.Module``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["GlowSubnet", "DeepSubnet", "DenseSubnet", "SUBNETS", "register_subnet", "build_subnet"]

SubnetBuilder = Callable[[int, int, int], nn.Module]


def _zero(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class GlowSubnet(nn.Sequential):
    """Glow's coupling network: conv3x3 -> ReLU -> conv1x1 -> ReLU -> conv3x3 (zero-initialised)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 128):
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(inplace=True),
            _zero(nn.Conv2d(hidden, out_channels, 3, padding=1)),
        )


class DeepSubnet(nn.Sequential):
    """Five 3x3 convolutions of width ``hidden`` with ReLUs between them, the last zero-initialised.

    The stego seed's coupling capacity: at ``hidden=128`` eight StarINN blocks
    of 24 channels hold about 3.9M weights (the seed reports 3.8M), where
    Glow's conv3x3-conv1x1-conv3x3 subnet gives 0.47M. ``depth`` counts every
    convolution (at least 2)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 128, depth: int = 5):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
            raise ValueError(f"DeepSubnet: depth must be an integer >= 2, got {depth!r}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(_zero(nn.Conv2d(hidden, out_channels, 3, padding=1)))
        super().__init__(*layers)


class DenseSubnet(nn.Module):
    """HiNet's residual dense block: five 3x3 convs, each fed the input and all
    earlier outputs (``growth`` channels each), LeakyReLU(0.2), last conv zero-initialised."""

    def __init__(self, in_channels: int, out_channels: int, growth: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(in_channels + i * growth, growth, 3, padding=1) for i in range(4))
        self.out = _zero(nn.Conv2d(in_channels + 4 * growth, out_channels, 3, padding=1))
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The scale/shift map of ``x``: float (B, in_channels, H, W) -> (B, out_channels, H, W), same dtype."""
        features = [x]
        for conv in self.convs:
            features.append(self.act(conv(torch.cat(features, 1))))
        return self.out(torch.cat(features, 1))


SUBNETS: dict[str, SubnetBuilder] = {
    "glow": lambda in_channels, out_channels, hidden: GlowSubnet(in_channels, out_channels, hidden),
    "deep": lambda in_channels, out_channels, hidden: DeepSubnet(in_channels, out_channels, hidden),
    # HiNet's block has a fixed growth of 32 channels; `hidden` does not apply to it
    "dense": lambda in_channels, out_channels, hidden: DenseSubnet(in_channels, out_channels),
}


def register_subnet(name: str, builder: SubnetBuilder) -> None:
    """Make ``builder(in_channels, out_channels, hidden) -> nn.Module`` available by name."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_subnet: name must be a non-empty string, got {name!r}")
    if not callable(builder):
        raise TypeError(f"register_subnet: builder must be callable, got {type(builder).__name__}")
    SUBNETS[name] = builder


def build_subnet(
    subnet: str | Callable[[int, int], nn.Module], in_channels: int, out_channels: int, hidden: int
) -> nn.Module:
    """A subnet from a registered name (given ``hidden``) or a ``(in, out) -> nn.Module`` callable."""
    if isinstance(subnet, str):
        if subnet not in SUBNETS:
            choices = ", ".join(sorted(SUBNETS))
            raise ValueError(f"unknown subnet {subnet!r}; choose one of {choices} or pass a callable")
        module = SUBNETS[subnet](in_channels, out_channels, hidden)
    elif callable(subnet):
        module = subnet(in_channels, out_channels)
    else:
        raise TypeError(f"subnet must be a registered name or a callable, got {type(subnet).__name__}")
    if not isinstance(module, nn.Module):
        raise TypeError(f"the subnet builder returned {type(module).__name__}, not an nn.Module")
    return module
