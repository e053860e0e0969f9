"""A differentiable JPEG codec simulation: ``DiffJPEG``."""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..color import rgb_to_ycbcr_255, ycbcr_255_to_rgb
from ..dtypes import compute_dtype
from ..ops.jpeg import ROUNDINGS, jpeg_quality_table, jpeg_quantize_blocks

__all__ = ["DiffJPEG", "SUBSAMPLINGS"]

SUBSAMPLINGS = ("4:2:0", "4:4:4")


def _replicate_edges(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """x extended at the bottom and right by repeating its last row and column,
    as libjpeg fills partial MCUs. (Concatenation rather than F.pad's replicate
    mode, whose backward's meta kernel rejects the channels-last gradients a
    1x1 convolution's backward hands it under torch.compile.)"""
    if pad_w:
        x = torch.cat([x, x[..., -1:].expand(*x.shape[:-1], pad_w)], dim=-1)
    if pad_h:
        x = torch.cat([x, x[..., -1:, :].expand(*x.shape[:-2], pad_h, x.shape[-1])], dim=-2)
    return x


def _downsample(c: torch.Tensor) -> torch.Tensor:
    """libjpeg's h2v2 downsampling: the mean of each 2x2 pixel box."""
    return F.avg_pool2d(c, 2)


def _upsample(c: torch.Tensor) -> torch.Tensor:
    """libjpeg(-turbo)'s h2v2 "fancy" upsampling, the decoder's default: each
    output sample is 3/4 of its nearest input sample plus 1/4 of the next nearest
    along each axis (weights 9/16, 3/16, 3/16, 1/16), edges replicated: exactly
    bilinear interpolation by 2 with align_corners=False."""
    return F.interpolate(c, scale_factor=2, mode="bilinear", align_corners=False)


class DiffJPEG(nn.Module):
    """Differentiable simulation of a JPEG encode-decode round trip, libjpeg style.

    RGB -> YCbCr (JFIF), padding to a multiple of the MCU (16 pixels for
    4:2:0, 8 for 4:4:4) by edge replication, chroma downsampling by 2x2 box
    averaging (4:2:0), the IJG quantisation tables at ``quality`` applied to
    every 8x8 block (``stegafast.ops.jpeg_quantize_blocks``: level shift, DCT,
    quantisation with the chosen differentiable ``rounding``, dequantisation,
    inverse DCT), libjpeg's "fancy" chroma upsampling, YCbCr -> RGB, cropping
    back and clamping to [0, 1].

    Args:
        quality: a whole number in 1..100, or one per image (a sequence or 1-D tensor).
        subsampling: "4:2:0" (Pillow's and libjpeg's default) or "4:4:4".
        rounding: "ste" (default), "cubic", "ste_cubic" or "round_only_at_0"; see ``stegafast.reference.jpeg``.

    Input and output: float images in [0, 1], (N, 3, H, W), any H and W.
    ``forward(images, quality=None)`` may override the quality per call, e.g.
    with random qualities for training. Not modelled: the integer rounding of
    the colour planes and the decoded pixels, and entropy coding (lossless).
    """

    def __init__(self, quality=75, subsampling: str = "4:2:0", rounding: str = "ste"):
        super().__init__()
        if subsampling not in SUBSAMPLINGS:
            raise ValueError(
                f"DiffJPEG: subsampling must be one of {', '.join(map(repr, SUBSAMPLINGS))}, got {subsampling!r}"
            )
        if rounding not in ROUNDINGS:
            raise ValueError(f"DiffJPEG: rounding must be one of {', '.join(map(repr, ROUNDINGS))}, got {rounding!r}")
        if isinstance(quality, (list, tuple)):
            quality = torch.tensor(quality)
        self.quality = quality
        # the tables for the constructor's quality, built (and validated) once
        luma, chroma = self._tables(quality, None, torch.float32, None)
        self.register_buffer("luma_table", luma, persistent=False)
        self.register_buffer("chroma_table", chroma, persistent=False)
        self.subsampling = subsampling
        self.rounding = rounding

    def extra_repr(self) -> str:
        """The quality (or ``per-image``), chroma subsampling and rounding mode, for ``repr()``."""
        quality = self.quality if isinstance(self.quality, numbers.Real) else "per-image"
        return f"quality={quality}, subsampling={self.subsampling!r}, rounding={self.rounding!r}"

    @staticmethod
    def _tables(quality, n: int | None, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(luma, chroma) tables, (8, 8) or (N, 8, 8), for a quality or one per image."""
        if isinstance(quality, (list, tuple)):
            quality = torch.tensor(quality)
        luma = jpeg_quality_table(quality, "luma", dtype=dtype, device=device)
        chroma = jpeg_quality_table(quality, "chroma", dtype=dtype, device=device)
        DiffJPEG._check_count(luma, n)
        return luma, chroma

    @staticmethod
    def _check_count(table: torch.Tensor, n: int | None) -> None:
        if n is not None and table.dim() == 3 and table.shape[0] != n:
            raise ValueError(f"DiffJPEG: got {table.shape[0]} qualities for a batch of {n} images")

    def forward(self, images: torch.Tensor, quality=None) -> torch.Tensor:
        """The JPEG round trip of images (N, 3, H, W) in [0, 1], at the constructor's
        quality or at ``quality`` (a whole number or one per image)."""
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"DiffJPEG: images must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"DiffJPEG: images must be RGB (N, 3, H, W), got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"DiffJPEG: images must be floating point in [0, 1], got {images.dtype}")
        n, _, h, w = images.shape
        if n == 0 or h == 0 or w == 0:
            raise ValueError(f"DiffJPEG: images must be non-empty, got shape {tuple(images.shape)}")
        # half types lose whole pixel levels near 255: the codec runs in float32
        work = compute_dtype(images.dtype)
        if quality is None:
            luma = self.luma_table.to(device=images.device, dtype=work)
            chroma = self.chroma_table.to(device=images.device, dtype=work)
            self._check_count(luma, n)
        else:
            luma, chroma = self._tables(quality, n, work, images.device)
        # autocast would run the colour conversions in half precision, a loss of
        # whole pixel levels: the codec keeps its working dtype under autocast too
        with torch.autocast(images.device.type, enabled=False):
            return self._codec(images.to(work), luma, chroma).to(images.dtype)

    def _codec(self, images: torch.Tensor, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        _, _, h, w = images.shape
        mcu = 16 if self.subsampling == "4:2:0" else 8
        pad_h, pad_w = -h % mcu, -w % mcu
        x = rgb_to_ycbcr_255(images)
        x = _replicate_edges(x, pad_h, pad_w)
        if self.subsampling == "4:4:4":
            # (1 or N, 3, 8, 8): one table per channel, and per image when qualities are
            tables = torch.stack(torch.broadcast_tensors(luma, chroma, chroma), dim=-3).reshape(-1, 3, 8, 8)
            x = jpeg_quantize_blocks(x, tables, self.rounding)
        else:
            y = jpeg_quantize_blocks(x[:, :1], luma, self.rounding)
            c = jpeg_quantize_blocks(_downsample(x[:, 1:]), chroma, self.rounding)
            x = torch.cat([y, _upsample(c)], dim=1)
        rgb = ycbcr_255_to_rgb(x[:, :, :h, :w])
        return rgb.clamp(0, 1)
