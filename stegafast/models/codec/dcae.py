"""DCAE: learned image compression with a dictionary-based entropy model (Lu et al.,
CVPR 2025), on our Swin blocks (``stegafast.nn.SwinBlock``) and range coder.

Stride chain (as the public code has it; the seed's "32x" is not what it does)::

    g_a: x (H) -Down-> H/2 -Swin- -Down-> H/4 -Swin- -Down-> H/8 -Swin- -conv5/2-> y (H/16, M)
    h_a: y -Down-> H/32 -Swin- -conv3/2-> z (H/64, z_channels)
    h_s: z -deconv3/2-> H/32 -Swin- -Up-> H/16 (M)      twice: one for scales, one for means
    g_s: y_hat -deconv5/2-> H/8 -Swin- -Up-> H/4 -Swin- -Up-> H/2 -Swin- -Up-> x_hat (H)

"Down" is a 5x5 stride-2 convolution and three residual bottleneck blocks, "Up"
three such blocks and a 5x5 stride-2 transposed convolution; a "Swin" stage is
``depth`` Swin blocks (W-MSA and SW-MSA alternating, shift window / 2) and a 3x3
convolution, added to its input. Input sides must be multiples of 64.

Entropy model, channel-conditional over ``slices`` equal slices of y (slice i
sees the decoded slices 0..i-1)::

    query_i   = [scales, means, y_hat_0 .. y_hat_{i-1}]            2M + i * M/S channels
    support_i = [query_i, DictionaryCrossAttention_i(query_i, D)]   + M channels
    mean_i, scale_i = cc_mean_i(support_i), cc_scale_i(support_i)
    y_hat_i   = round(y_i - mean_i) + mean_i + 0.5 tanh(lrp_i([support_i, round(...) + mean_i]))

D is one learned dictionary (``dict_entries`` x ``dict_heads * dict_head_dim``)
shared by all slices (``dictionary.py``). z goes through an ``EntropyBottleneck``,
each slice through the ``GaussianConditional`` with its own stream.

Parameter counts (``DCAE_PRESETS``, ``sum(p.numel() for p in DcaeCodec(c).parameters())``):
"paper" (N=192, M=320, the default) 122.8 M, of which the five dictionary
cross-attentions 44.7 M and g_a / g_s 15.2 M each; "small" (the CPU preset) 6.7 M;
"tiny" (tests and smoke benchmarks) 0.21 M.
(Our Swin blocks use the plain MLP of ``stegafast.nn.SwinBlock`` where the public
code has a convolutional GLU; the dictionary attention keeps the GLU.)

Decode determinism: the entropy parameters are float computations the decoder
repeats; if it gets other CDF indexes than the encoder did, the range decoder
would silently desynchronise. The encoder therefore stores a CRC-32 of each
slice's index tensor (an extra stream), and the decoder compares before it
decodes that slice, raising ``StreamDesyncError`` on a mismatch.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ...entropy import EntropyBottleneck, EntropyModel, GaussianConditional
from ...entropy.bounds import check_finite_decoded
from ...nn import SwinBlock
from .base import LearnedCodec
from .config import MULTIPLE, DcaeConfig
from .dictionary import DictionaryCrossAttention
from .fileformat import CodecFileError, StreamDesyncError
from .model import CodecOutput

__all__ = ["DcaeCodec", "DcaeStreams", "index_checksum"]


def _conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


def _deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1)


class ResidualBottleneck(nn.Module):
    """x + (1x1 to half width, ReLU, 3x3, ReLU, 1x1 back)(x)."""

    def __init__(self, channels: int):
        super().__init__()
        mid = max(channels // 2, 1)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): x plus the bottleneck branch."""
        return x + self.body(x)


def down(cin: int, cout: int) -> nn.Sequential:
    """Halve the size: a 5x5 stride-2 convolution, then three residual bottlenecks."""
    return nn.Sequential(_conv(cin, cout), *(ResidualBottleneck(cout) for _ in range(3)))


def up(cin: int, cout: int) -> nn.Sequential:
    """Double the size: three residual bottlenecks, then a 5x5 stride-2 transposed convolution."""
    return nn.Sequential(*(ResidualBottleneck(cin) for _ in range(3)), _deconv(cin, cout))


class SwinStage(nn.Module):
    """x + conv3x3(Swin blocks(x)) on NCHW maps of any size (the blocks pad to whole windows)."""

    def __init__(self, channels: int, head_dim: int, window: int, depth: int):
        super().__init__()
        heads = channels // head_dim
        self.blocks = nn.Sequential(
            *(SwinBlock(channels, heads, window, shift=(window // 2) * (i % 2)) for i in range(depth))
        )
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): x plus a convolution of the Swin blocks' output (run channels-last)."""
        features = self.blocks(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.conv(features)


def _slice_network(cin: int, hidden: tuple[int, int], cout: int) -> nn.Sequential:
    """Three 3x3 convolutions with GELUs: the per-slice mean, scale and LRP predictors."""
    return nn.Sequential(
        _conv(cin, hidden[0], 3, 1),
        nn.GELU(),
        _conv(hidden[0], hidden[1], 3, 1),
        nn.GELU(),
        _conv(hidden[1], cout, 3, 1),
    )


def _round_straight_through(x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """round(x - offset) + offset with the identity gradient (offset not differentiated)."""
    offset = offset.detach()
    return x + (torch.round(x - offset) + offset - x).detach()


class DcaeStreams(NamedTuple):
    """A compressed batch: per image, the z stream, one y stream per slice, and the
    slices' index checksums (``slices`` uint32, little-endian)."""

    z_strings: list[bytes]
    y_strings: list[list[bytes]]  # [slice][image]
    checks: list[bytes]
    z_shape: tuple[int, int]


def index_checksum(indexes: torch.Tensor) -> int:
    """CRC-32 of one image's int32 CDF indexes, in C order."""
    return zlib.crc32(indexes.detach().to("cpu", torch.int32).contiguous().numpy().tobytes())


class DcaeCodec(LearnedCodec):
    """The network of a ``DcaeConfig`` with its entropy models (module docstring).

    ``forward(x)`` -> ``CodecOutput`` (training: noisy or STE likelihoods, the slices'
    context from straight-through rounding; eval: rounding, exactly what decoding
    gives); ``compress(x)`` -> ``DcaeStreams``; ``decompress(streams)`` -> x_hat in
    [0, 1]; ``encode_image`` / ``decode_image`` for .sfc files.
    """

    architecture = "dcae"
    multiple = MULTIPLE

    def __init__(self, config: DcaeConfig | None = None):
        super().__init__()
        self.config = c = config or DcaeConfig()
        w, d, hd = c.widths, c.depths, c.head_dims
        m, n, s = c.M, c.N, c.slice_channels
        self.g_a = nn.Sequential(
            down(3, w[0]),
            SwinStage(w[0], hd[0], c.window, d[0]),
            down(w[0], w[1]),
            SwinStage(w[1], hd[1], c.window, d[1]),
            down(w[1], w[2]),
            SwinStage(w[2], hd[2], c.window, d[2]),
            _conv(w[2], m),
        )
        self.g_s = nn.Sequential(
            _deconv(m, w[2]),
            SwinStage(w[2], hd[3], c.window, d[2]),
            up(w[2], w[1]),
            SwinStage(w[1], hd[4], c.window, d[1]),
            up(w[1], w[0]),
            SwinStage(w[0], hd[5], c.window, d[0]),
            up(w[0], 3),
        )
        self.h_a = nn.Sequential(
            down(m, n), SwinStage(n, c.hyper_head_dim, c.hyper_window, 1), _conv(n, c.z_channels, 3, 2)
        )
        self.h_s_scales, self.h_s_means = (self._hyper_synthesis() for _ in range(2))
        self.dictionary = nn.Parameter(torch.randn(c.dict_entries, c.dict_width))
        self.cross_attention = nn.ModuleList(
            DictionaryCrossAttention(2 * m + s * i, m, c.dict_heads, c.dict_head_dim) for i in range(c.slices)
        )
        self.cc_mean = nn.ModuleList(_slice_network(3 * m + s * i, c.cc_hidden, s) for i in range(c.slices))
        self.cc_scale = nn.ModuleList(_slice_network(3 * m + s * i, c.cc_hidden, s) for i in range(c.slices))
        self.cc_lrp = nn.ModuleList(_slice_network(3 * m + s * (i + 1), c.cc_hidden, s) for i in range(c.slices))
        self.entropy_bottleneck = EntropyBottleneck(c.z_channels, quantization=c.quantization)
        self.gaussian_conditional = GaussianConditional(quantization=c.quantization)

    def _hyper_synthesis(self) -> nn.Sequential:
        c = self.config
        return nn.Sequential(
            _deconv(c.z_channels, c.N, 3, 2), SwinStage(c.N, c.hyper_head_dim, c.hyper_window, 1), up(c.N, c.M)
        )

    def entropy_models(self) -> tuple[EntropyModel, ...]:
        """The entropy models whose CDF tables ``update`` builds: the bottleneck on z, the Gaussian on y."""
        return (self.entropy_bottleneck, self.gaussian_conditional)

    # ---- the entropy parameters ------------------------------------------------------------

    def hyper_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, means) features at y's resolution from the quantised hyper-latent z_hat (B, N, H/64, W/64)."""
        return self.h_s_scales(z_hat), self.h_s_means(z_hat)

    def slice_parameters(
        self, i: int, hyper: tuple[torch.Tensor, torch.Tensor], decoded: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(support, scale, mean) of slice i from the hyper parameters and slices 0..i-1."""
        query = torch.cat([*hyper, *decoded], dim=1)
        support = torch.cat([query, self.cross_attention[i](query, self.dictionary)], dim=1)
        return support, self.cc_scale[i](support).float(), self.cc_mean[i](support).float()

    def refine(self, i: int, support: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        """Latent residual prediction: y_hat plus 0.5 tanh of the LRP network."""
        lrp = self.cc_lrp[i](torch.cat([support, y_hat.to(support.dtype)], dim=1)).float()
        return y_hat + 0.5 * torch.tanh(lrp)

    # ---- forward ---------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> CodecOutput:
        """Training pass on (B, 3, H, W) images in [0, 1] (sides multiples of 64): the reconstruction and the
        likelihoods of y and z."""
        self.check_input(x)
        y = self.g_a(x)
        z = self.h_a(y)
        with torch.autocast(x.device.type, enabled=False):
            z_likelihoods = self.entropy_bottleneck(z.float())[1]
            # the hyper-synthesis sees z rounded around the medians (straight through), as the decoder will
            z_hat = _round_straight_through(z.float(), self.entropy_bottleneck.medians.view(1, -1, 1, 1))
        hyper = self.hyper_parameters(z_hat)
        decoded, likelihoods = [], []
        for i, y_slice in enumerate(y.float().chunk(self.config.slices, dim=1)):
            support, scale, mean = self.slice_parameters(i, hyper, decoded)
            with torch.autocast(x.device.type, enabled=False):
                likelihoods.append(self.gaussian_conditional(y_slice, scale, mean)[1])
                y_hat = _round_straight_through(y_slice, mean)
            decoded.append(self.refine(i, support, y_hat))
        return CodecOutput(self.g_s(torch.cat(decoded, dim=1)), torch.cat(likelihoods, dim=1), z_likelihoods)

    # ---- coding ----------------------------------------------------------------------------

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> DcaeStreams:
        """Code a batch (B, 3, H, W), sides multiples of 64; the model must be ``update()``d.

        Every slice's parameters come from values the decoder will have: z decoded
        from its stream, the earlier slices as decoded (symbols plus means, then LRP).
        """
        self.check_input(x)
        self.check_ready("compress")
        y = self.g_a(x).float()
        z = self.h_a(y).float()
        z_strings = self.entropy_bottleneck.compress(z)
        hyper = self.hyper_parameters(self.entropy_bottleneck.decompress(z_strings, z.shape[-2:]))
        decoded, y_strings, sums = [], [], []
        for i, y_slice in enumerate(y.chunk(self.config.slices, dim=1)):
            support, scale, mean = self.slice_parameters(i, hyper, decoded)
            indexes = self.gaussian_conditional.build_indexes(scale)
            y_strings.append(self.gaussian_conditional.compress(y_slice, indexes, mean))
            sums.append([index_checksum(item) for item in indexes])
            y_hat = torch.round(y_slice - mean) + mean
            decoded.append(self.refine(i, support, y_hat))
        checks = [struct.pack(f"<{len(sums)}I", *column) for column in zip(*sums)]
        return DcaeStreams(z_strings, y_strings, checks, (int(z.shape[-2]), int(z.shape[-1])))

    @torch.no_grad()
    def decompress(self, streams: DcaeStreams, name: str = "the stream") -> torch.Tensor:
        """The reconstructions (B, 3, 64 * zh, 64 * zw) in [0, 1]; raises
        ``StreamDesyncError`` where a slice's indexes differ from the encoder's."""
        self.check_ready("decompress")
        z_hat = self.entropy_bottleneck.decompress(list(streams.z_strings), tuple(streams.z_shape))
        expected = [struct.unpack(f"<{self.config.slices}I", c) for c in streams.checks]
        hyper = self.hyper_parameters(z_hat)
        decoded = []
        for i in range(self.config.slices):
            support, scale, mean = self.slice_parameters(i, hyper, decoded)
            indexes = self.gaussian_conditional.build_indexes(scale)
            for b, item in enumerate(indexes):
                if index_checksum(item) != expected[b][i]:
                    raise StreamDesyncError(
                        f"{name}: slice {i} decodes with other CDF indexes than it was encoded with "
                        "(the float entropy model differs on this device or backend); refusing to "
                        "return a wrong image"
                    )
            y_hat = self.gaussian_conditional.decompress(list(streams.y_strings[i]), indexes, mean)
            decoded.append(self.refine(i, support, y_hat))
        x_hat = self.g_s(torch.cat(decoded, dim=1))
        check_finite_decoded("the decoded image", x_hat)  # clamp would hide inf and keep NaN
        return x_hat.clamp(0, 1)

    # ---- one image <-> .sfc streams: z, the slices, the checksums ---------------------------

    def encode_image(self, x: torch.Tensor) -> tuple[bytes, ...]:
        """The .sfc streams of one (1, 3, H, W) image: z, one per slice, then the per-slice CRC-32s."""
        streams = self.compress(x)
        return (streams.z_strings[0], *(s[0] for s in streams.y_strings), streams.checks[0])

    def decode_image(self, streams: Sequence[bytes], size: tuple[int, int], name: str) -> torch.Tensor:
        """The (1, 3, H, W) image of ``encode_image``'s streams; raises CodecFileError (or StreamDesyncError) naming
        ``name`` when they do not fit this model."""
        slices = self.config.slices
        if len(streams) != slices + 2:
            raise CodecFileError(f"{name} holds {len(streams)} streams; this DCAE model writes {slices + 2}")
        if len(streams[-1]) != 4 * slices:
            raise CodecFileError(f"{name} is corrupt: its checksum stream has {len(streams[-1])} bytes")
        packed = DcaeStreams([streams[0]], [[s] for s in streams[1:-1]], [streams[-1]], self.latent_sizes(*size))
        return self.decompress(packed, name)
