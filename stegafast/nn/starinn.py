"""The StarINN block of the ILWT steganography model: ActNorm, 1x1 conv, coupling."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn

from .actnorm import ActNorm
from .conv1x1 import InvertibleConv1x1
from .coupling import AffineCouplingBlock, check_even_channels
from .invertible import InvertibleSequential, check_channels

__all__ = ["StarINNBlock", "STARINN_INITS"]

# "glow": ActNorm initialised from the first batch and a random rotation (Glow's recipe); "identity": both start
# at the identity, so with the coupling's zero-initialised subnet the whole block starts as the identity map
STARINN_INITS = ("glow", "identity")


class StarINNBlock(InvertibleSequential):
    """One Glow step as the steganography seed composes it:
    ``ActNorm -> InvertibleConv1x1 -> AffineCouplingBlock``.

    ``forward(x) -> (y, logdet)``; ``inverse(y) -> (x, logdet)`` runs the three
    layers' inverses in reverse order. The sub-layers are the attributes
    ``actnorm``, ``conv`` and ``coupling``; the arguments after ``channels`` are
    the coupling's (see :class:`AffineCouplingBlock`) and ``lu`` the 1x1 conv's.

    ``init="glow"`` (default) is Glow's start: ActNorm initialised from the
    first batch, the 1x1 conv a random rotation. ``init="identity"`` starts
    ActNorm and the 1x1 conv at the identity; the coupling's subnet ends in a
    zero-initialised layer either way, so the new block is then exactly the
    identity map (HiNet's start).
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
        init: str = "glow",
    ):
        check_even_channels("StarINNBlock", check_channels("StarINNBlock", channels))
        if init not in STARINN_INITS:
            raise ValueError(f"StarINNBlock: init must be one of {', '.join(STARINN_INITS)}, got {init!r}")
        identity = init == "identity"
        super().__init__(
            OrderedDict(
                actnorm=ActNorm(channels, data_init=not identity),
                conv=InvertibleConv1x1(channels, lu=lu, init="identity" if identity else "random"),
                coupling=AffineCouplingBlock(channels, subnet=subnet, hidden=hidden, clamp=clamp, clamp_fn=clamp_fn),
            )
        )
        self.channels = channels
        self.init = init
