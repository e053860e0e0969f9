"""``LearnedCodec``: what the hyperprior and DCAE share, and what ``ImageCodec``,
the task and the CLI rely on.

A learned codec is a network with an ``EntropyBottleneck`` on its hyper-latents
(whose quantiles only the auxiliary loss trains) and further entropy models; its
input sides must be multiples of ``multiple``. ``encode_image`` turns one padded
image into the byte streams an .sfc file stores, ``decode_image`` turns them back.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch
from torch import nn

from ...entropy import EntropyModel

__all__ = ["LearnedCodec"]


class LearnedCodec(nn.Module, abc.ABC):
    """Base of ``HyperpriorCodec`` and ``DcaeCodec``.

    Subclasses set ``architecture`` (the registry name, ``architectures.py``) and
    ``multiple``, keep their config in ``self.config`` and their bottleneck in
    ``self.entropy_bottleneck``.
    """

    architecture: str = ""
    multiple: int = 64
    entropy_bottleneck: nn.Module

    # ---- parameters ------------------------------------------------------------------------

    @abc.abstractmethod
    def entropy_models(self) -> Sequence[EntropyModel]:
        """Every entropy model whose tables coding needs."""

    def aux_parameters(self) -> list[nn.Parameter]:
        """The parameters only ``aux_loss`` trains (the bottleneck's quantiles)."""
        return self.entropy_bottleneck.quantile_parameters()

    def main_parameters(self) -> list[nn.Parameter]:
        """Every other parameter: the rate-distortion loss trains these."""
        aux = {id(p) for p in self.aux_parameters()}
        return [p for p in self.parameters() if id(p) not in aux]

    def aux_loss(self) -> torch.Tensor:
        """The entropy bottleneck's auxiliary quantile loss (0-dim); it trains only ``aux_parameters``."""
        return self.entropy_bottleneck.loss()

    def update(self, force: bool = False) -> bool:
        """Build every entropy model's CDF tables (if missing or stale, or with force)."""
        built = False
        for model in self.entropy_models():
            built = model.update(force) or built
        return built

    def check_ready(self, op: str) -> None:
        """Raise unless every entropy model has CDF tables for ``op`` (compress or decompress)."""
        for model in self.entropy_models():
            model.check_ready(op)

    # ---- input -----------------------------------------------------------------------------

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless ``x`` is (B, 3, H, W) with H and W positive multiples of ``multiple``."""
        name = type(self).__name__
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{name}: expected (B, 3, H, W) images, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple or h == 0 or w == 0:
            raise ValueError(
                f"{name}: image sides must be positive multiples of {self.multiple}, got "
                f"{h}x{w} (stegafast.models.codec.inference pads any size)"
            )

    def latent_sizes(self, height: int, width: int) -> tuple[int, int]:
        """The hyper-latents' (h, w) for a padded input of height x width."""
        return height // self.multiple, width // self.multiple

    # ---- one image <-> the streams of an .sfc file ------------------------------------------

    @abc.abstractmethod
    def encode_image(self, x: torch.Tensor) -> tuple[bytes, ...]:
        """The streams of one padded image (1, 3, H, W)."""

    @abc.abstractmethod
    def decode_image(self, streams: Sequence[bytes], size: tuple[int, int], name: str) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] from ``encode_image``'s streams; ``size`` is the padded
        (H, W); a wrong stream count or a desynchronised decode raises ``CodecFileError``
        naming ``name``."""
