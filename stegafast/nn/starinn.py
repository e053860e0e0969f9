"""The StarINN block of the ILWT steganography model: ActNorm, 1x1 conv, coupling."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn

from .actnorm import ActNorm
from .conv1x1 import InvertibleConv1x1
from .coupling import AffineCouplingBlock, check_even_channels
from .invertible import InvertibleSequential, check_channels

__all__ = ["StarINNBlock"]


class StarINNBlock(InvertibleSequential):
    """One Glow step as the steganography seed composes it:
    ``ActNorm -> InvertibleConv1x1 -> AffineCouplingBlock``.

    ``forward(x) -> (y, logdet)``; ``inverse(y) -> (x, logdet)`` runs the three
    layers' inverses in reverse order. The sub-layers are the attributes
    ``actnorm``, ``conv`` and ``coupling``; the arguments after ``channels`` are
    the coupling's (see :class:`AffineCouplingBlock`) and ``lu`` the 1x1 conv's.
    The seed stacks 8 blocks of 24 channels (cover and secret, 4 wavelet bands
    of 3 colours each) with ``hidden=128``.
    """

    def __init__(
        self,
        channels: int,
        hidden: int = 128,
        subnet: str | Callable[[int, int], nn.Module] = "glow",
        clamp: float = 2.0,
        clamp_fn: str = "tanh",
        lu: bool = True,
    ):
        check_even_channels("StarINNBlock", check_channels("StarINNBlock", channels))
        super().__init__(
            OrderedDict(
                actnorm=ActNorm(channels),
                conv=InvertibleConv1x1(channels, lu=lu),
                coupling=AffineCouplingBlock(channels, subnet=subnet, hidden=hidden, clamp=clamp, clamp_fn=clamp_fn),
            )
        )
        self.channels = channels
