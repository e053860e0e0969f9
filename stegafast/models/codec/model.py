"""The mean-scale hyperprior codec (Minnen, Balle and Toderici 2018, "Joint
autoregressive and hierarchical priors", its mean-scale variant without context
model; Balle et al. 2018 for the scale hyperprior).

::

    x --g_a--> y --h_a--> z --EntropyBottleneck--> z_hat --h_s--> (scales, means)
    y --GaussianConditional(scales, means)--> y_hat --g_s--> x_hat

g_a: four 5x5 stride-2 convolutions with GDN between them (x / 16); g_s mirrors it
with transposed convolutions and IGDN; h_a: 3x3 then two 5x5 stride-2
convolutions (y / 4), h_s mirrors it and predicts 2M channels (scales, means).
So input sides must be multiples of 64 (``MULTIPLE``; ``codec.py`` pads).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ...entropy import EntropyBottleneck, EntropyModel, GaussianConditional
from ...entropy.bounds import check_finite_decoded
from .base import LearnedCodec
from .config import MULTIPLE, CodecConfig
from .fileformat import CodecFileError
from .gdn import GDN

__all__ = ["HyperpriorCodec", "CodecOutput", "CodecStreams"]


class CodecOutput(NamedTuple):
    """The training/evaluation forward: the reconstruction (unclamped) and the
    likelihoods of the quantised latents y and hyper-latents z."""

    x_hat: torch.Tensor
    y_likelihoods: torch.Tensor
    z_likelihoods: torch.Tensor


class CodecStreams(NamedTuple):
    """A compressed batch: one byte string per image for y and for z, and the
    hyper-latents' spatial size (all a decoder needs besides the model)."""

    y_strings: list[bytes]
    z_strings: list[bytes]
    z_shape: tuple[int, int]


def _conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


def _deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1)


class HyperpriorCodec(LearnedCodec):
    """The network of ``CodecConfig`` (N, M, quantization) with its two entropy models.

    ``forward(x)`` -> ``CodecOutput`` for training and evaluation; ``aux_loss()``
    the entropy bottleneck's quantile loss; ``update()`` builds the integer CDF
    tables (checkpoints carry them: see ``stegafast.entropy.base``);
    ``compress(x)`` -> ``CodecStreams`` and ``decompress(streams)`` -> x_hat in
    [0, 1] for inputs whose sides are multiples of ``MULTIPLE``.
    """

    architecture = "hyperprior"
    multiple = MULTIPLE

    def __init__(self, config: CodecConfig | None = None):
        super().__init__()
        self.config = config = config or CodecConfig()
        n, m = config.N, config.M
        self.g_a = nn.Sequential(_conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m))
        self.g_s = nn.Sequential(
            _deconv(m, n),
            GDN(n, inverse=True),
            _deconv(n, n),
            GDN(n, inverse=True),
            _deconv(n, n),
            GDN(n, inverse=True),
            _deconv(n, 3),
        )
        self.h_a = nn.Sequential(
            _conv(m, n, 3, 1), nn.LeakyReLU(inplace=True), _conv(n, n), nn.LeakyReLU(inplace=True), _conv(n, n)
        )
        self.h_s = nn.Sequential(
            _deconv(n, m),
            nn.LeakyReLU(inplace=True),
            _deconv(m, m * 3 // 2),
            nn.LeakyReLU(inplace=True),
            _conv(m * 3 // 2, 2 * m, 3, 1),
        )
        self.entropy_bottleneck = EntropyBottleneck(n, quantization=config.quantization)
        self.gaussian_conditional = GaussianConditional(quantization=config.quantization)

    def entropy_models(self) -> tuple[EntropyModel, ...]:
        """The entropy models whose CDF tables ``update`` builds: the bottleneck on z, the Gaussian on y."""
        return (self.entropy_bottleneck, self.gaussian_conditional)

    # ---- forward ---------------------------------------------------------------------------

    def _hyper_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scales, means = self.h_s(z_hat).float().chunk(2, dim=1)
        return scales, means

    def forward(self, x: torch.Tensor) -> CodecOutput:
        """The training forward of images ``x``: float (B, 3, H, W) in [0, 1], H and W multiples of 64.

        Returns ``CodecOutput``: ``x_hat`` (B, 3, H, W) unclamped, in ``x``'s dtype; the float32 likelihoods of the
        quantised latents ``y`` (B, M, H/16, W/16) and hyper-latents ``z`` (B, N, H/64, W/64), each in (0, 1]. Raises
        ValueError for any other shape (``check_input``).
        """
        self.check_input(x)
        y = self.g_a(x)
        z = self.h_a(y)
        # likelihoods and quantisation in float32, also under autocast: -log2 of
        # small probabilities and the rounding offsets need the precision
        with torch.autocast(x.device.type, enabled=False):
            z_hat, z_likelihoods = self.entropy_bottleneck(z.float())
        scales, means = self._hyper_parameters(z_hat)
        with torch.autocast(x.device.type, enabled=False):
            y_hat, y_likelihoods = self.gaussian_conditional(y.float(), scales, means)
        return CodecOutput(self.g_s(y_hat), y_likelihoods, z_likelihoods)

    # ---- coding ----------------------------------------------------------------------------

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> CodecStreams:
        """Code a batch (B, 3, H, W), sides multiples of 64; the model must be ``update()``d.

        The encoder derives the Gaussian parameters from the hyper-latents as the
        decoder will see them (decoded from their own streams), so both run
        ``h_s`` on identical inputs.
        """
        self.check_input(x)
        self.entropy_bottleneck.check_ready("compress")
        self.gaussian_conditional.check_ready("compress")
        y = self.g_a(x).float()
        z = self.h_a(y).float()
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        scales, means = self._hyper_parameters(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_strings = self.gaussian_conditional.compress(y, indexes, means)
        return CodecStreams(y_strings, z_strings, (int(z.shape[-2]), int(z.shape[-1])))

    @torch.no_grad()
    def decompress(self, streams: CodecStreams) -> torch.Tensor:
        """The reconstructions (B, 3, 64 * zh, 64 * zw) in [0, 1] of ``compress``'s streams."""
        z_hat = self.entropy_bottleneck.decompress(list(streams.z_strings), tuple(streams.z_shape))
        scales, means = self._hyper_parameters(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_hat = self.gaussian_conditional.decompress(list(streams.y_strings), indexes, means)
        x_hat = self.g_s(y_hat)
        check_finite_decoded("the decoded image", x_hat)  # clamp would hide inf and keep NaN
        return x_hat.clamp(0, 1)

    def encode_image(self, x: torch.Tensor) -> tuple[bytes, ...]:
        """The z and y streams of one padded image (1, 3, H, W)."""
        streams = self.compress(x)
        return streams.z_strings[0], streams.y_strings[0]

    def decode_image(self, streams: Sequence[bytes], size: tuple[int, int], name: str) -> torch.Tensor:
        """The (1, 3, H, W) image of the (z, y) streams; raises CodecFileError naming ``name`` for another count."""
        if len(streams) != 2:
            raise CodecFileError(f"{name} holds {len(streams)} streams; the hyperprior codec writes 2")
        z_string, y_string = streams
        return self.decompress(CodecStreams([y_string], [z_string], self.latent_sizes(*size)))
