"""The invertible-layer protocol and a container that chains such layers.

An invertible layer maps a (B, C, H, W) feature map both ways::

    y, logdet = layer(x)            # forward
    x, logdet_inv = layer.inverse(y)

``logdet`` is log|det dy/dx| per sample, shape (B,), float64 for float64
inputs and float32 otherwise (a half-precision sum of H*W log-scales would
overflow), as ``stegafast.ops.affine_coupling`` returns it. The inverse
returns log|det dx/dy| at the corresponding point, so ``logdet + logdet_inv == 0``.
Flow models add these to their likelihood; steganography models (which only
need exact invertibility) may ignore them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["InvertibleModule", "InvertibleSequential", "check_channels", "precise_dtype"]


def precise_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for float64 inputs, float32 otherwise: the dtype of log-determinants
    and of the 1x1 conv's weight algebra, whatever the parameters' dtype."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def check_channels(owner: str, channels) -> int:
    """A positive int channel count, or a ValueError naming owner."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"{owner}: channels must be a positive int, got {channels!r}")
    return channels


class InvertibleModule(nn.Module):
    """Base of the invertible layers: input checks shared by both directions.

    Subclasses implement ``forward(x) -> (y, logdet)`` and
    ``inverse(y) -> (x, logdet)`` and call :meth:`_check_input` first, so a
    wrong input fails with a message naming the layer before any work is done.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = check_channels(type(self).__name__, channels)

    def extra_repr(self) -> str:
        """The channel count, for ``repr()``."""
        return f"channels={self.channels}"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, logdet)`` for x float (B, C, H, W) with C = ``channels``; y has x's shape and dtype, ``logdet`` (B,) is
        float64 for float64 inputs, else float32.

        Abstract: raises NotImplementedError; every subclass implements it.
        """
        raise NotImplementedError

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, logdet)`` for y float (B, C, H, W) with C = ``channels``: the exact inverse of ``forward``, its
        ``logdet`` the negative.

        Abstract: raises NotImplementedError; every subclass implements it.
        """
        raise NotImplementedError

    def _check_input(self, direction: str, name: str, t) -> None:
        where = f"{type(self).__name__}.{direction}"
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{where}: {name} must be a (B, C, H, W) feature map, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{where}: {name} must be a floating tensor, got {t.dtype}")
        if t.shape[1] != self.channels:
            raise ValueError(
                f"{where}: {name} has {t.shape[1]} channels, but the layer was built for {self.channels} "
                f"(shape {tuple(t.shape)})"
            )
        if t.numel() == 0:
            raise ValueError(f"{where}: {name} is empty (shape {tuple(t.shape)})")


class InvertibleSequential(nn.Module):
    """Invertible layers run in order; the inverse runs them in reverse order.

    Built like :class:`torch.nn.Sequential`, from layers or one ``OrderedDict``
    of named layers. Each layer must have ``forward(x) -> (y, logdet)`` and
    ``inverse(y) -> (x, logdet)``; the log-determinants are summed. Inputs are
    checked by the layers themselves, the first one failing with its own name.
    """

    def __init__(self, *layers: nn.Module):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            named = list(layers[0].items())
        else:
            named = [(str(i), layer) for i, layer in enumerate(layers)]
        if not named:
            raise ValueError("InvertibleSequential: needs at least one layer")
        for name, layer in named:
            if not isinstance(layer, nn.Module) or not callable(getattr(layer, "inverse", None)):
                raise TypeError(
                    f"InvertibleSequential: layer {name!r} ({type(layer).__name__}) is not an invertible "
                    "module with forward(x) -> (y, logdet) and inverse(y) -> (x, logdet)"
                )
            self.add_module(name, layer)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int) -> nn.Module:
        return list(self._modules.values())[index]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, logdet)``: ``x`` (B, C, H, W) through every layer in order, the layers' (B,) log-determinants
        summed."""
        logdet = None
        for layer in self:
            x, layer_logdet = layer(x)
            logdet = layer_logdet if logdet is None else logdet + layer_logdet
        return x, logdet

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, logdet)``: ``y`` (B, C, H, W) through every layer's inverse in reverse order, the (B,)
        log-determinants summed."""
        logdet = None
        for layer in reversed(list(self)):
            y, layer_logdet = layer.inverse(y)
            logdet = layer_logdet if logdet is None else logdet + layer_logdet
        return y, logdet
