"""Colour conversions of RGB images: each follows one named standard, and its name says the range.

Every function takes a floating (..., 3, H, W) tensor (the colour is the third
dimension from the end) and is differentiable. None clamps: colours outside
the gamut leave the range.

JFIF YCbCr (ITU-T T.871, the YCbCr of JPEG files): BT.601 luma weights
(Kr = 0.299, Kb = 0.114) at full range (Y spans the whole range, with none of
BT.601's studio footroom and headroom). The matrix is T.871's definition,
Cb = (B - Y) / 1.772 and Cr = (R - Y) / 1.402, computed in float64 (libjpeg's
``jccolor.c`` constants are these to nine decimals)::

    Y  =  0.299       R + 0.587       G + 0.114       B
    Cb = -0.168735892 R - 0.331264108 G + 0.5         B   + offset
    Cr =  0.5         R - 0.418687589 G - 0.081312411 B   + offset

The inverse is the exact (float64) inverse of this matrix: the decoder's
1.402, 0.344136286, 0.714136286 and 1.772, so a round trip returns its input
to the dtype's precision.

* ``rgb_to_ycbcr_01`` / ``ycbcr_01_to_rgb``: RGB in [0, 1] <-> Y in [0, 1],
  Cb and Cr centred on 0.5;
* ``rgb_to_ycbcr_255`` / ``ycbcr_255_to_rgb``: RGB in [0, 1] <-> JPEG's 8-bit
  sample range, Y in 0..255, Cb and Cr centred on 128 (``nn.DiffJPEG``);
* ``rgb_to_ycbcr_delta`` / ``ycbcr_to_rgb_delta``: differences of images (the
  linear part, no offset), for residuals.

Analog YUV (BT.601's YUV, the matrix of TensorFlow's ``tf.image.rgb_to_yuv``):
the same Y, U = 0.492111 (B - Y) and V = 0.877283 (R - Y), so for RGB in
[0, 1] U lies in +-0.436 and V in +-0.615, centred on 0:

* ``rgb_to_yuv_bt601``: used by the StegaStamp image loss, as in the original.
"""

from __future__ import annotations

import torch

__all__ = [
    "KR",
    "KB",
    "JFIF_RGB_TO_YCBCR",
    "JFIF_YCBCR_TO_RGB",
    "BT601_RGB_TO_YUV",
    "rgb_to_ycbcr_01",
    "ycbcr_01_to_rgb",
    "rgb_to_ycbcr_255",
    "ycbcr_255_to_rgb",
    "rgb_to_ycbcr_delta",
    "ycbcr_to_rgb_delta",
    "rgb_to_yuv_bt601",
]

KR, KB = 0.299, 0.114  # BT.601's luma weights of red and blue (green: 1 - KR - KB)


def _jfif_matrix(kr: float, kb: float) -> torch.Tensor:
    """T.871's definition: Cb = (B - Y) / (2 (1 - Kb)), Cr = (R - Y) / (2 (1 - Kr))."""
    kg = 1.0 - kr - kb
    return torch.tensor(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ],
        dtype=torch.float64,
    )


JFIF_RGB_TO_YCBCR = _jfif_matrix(KR, KB)
JFIF_YCBCR_TO_RGB = torch.linalg.inv(JFIF_RGB_TO_YCBCR)
BT601_RGB_TO_YUV = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.14714119, -0.28886916, 0.43601035], [0.61497538, -0.51496512, -0.10001026]],
    dtype=torch.float64,
)
_CHROMA = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)  # where the offset goes: Cb and Cr


def _check(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 3 or x.shape[-3] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a (..., 3, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating tensor, got {x.dtype}")


def _affine(x: torch.Tensor, matrix: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """matrix @ x + bias over the colour dimension of x (..., 3, H, W); matrix and bias float64."""
    n = x.shape[:-3].numel()
    m, b = matrix.to(x), bias.to(x)
    # a batched matrix product with the bias fused: one pass forward and backward
    # (a 1x1 convolution is several times slower on CPU for 3 channels)
    out = torch.baddbmm(b.view(1, 3, 1), m.expand(n, 3, 3), x.reshape(n, 3, -1))
    return out.view(x.shape)


def _to_ycbcr(name: str, rgb: torch.Tensor, peak: float, centre: float) -> torch.Tensor:
    """JFIF YCbCr of RGB in [0, 1]: Y in [0, peak], Cb and Cr centred on ``centre``."""
    _check(name, rgb)
    return _affine(rgb, JFIF_RGB_TO_YCBCR * peak, _CHROMA * centre)


def _from_ycbcr(name: str, ycbcr: torch.Tensor, peak: float, centre: float) -> torch.Tensor:
    """The inverse of ``_to_ycbcr``: rgb = M^-1 (ycbcr - offset) / peak, the offset folded into the bias."""
    _check(name, ycbcr)
    inverse = JFIF_YCBCR_TO_RGB / peak
    return _affine(ycbcr, inverse, -(inverse @ (_CHROMA * centre)))


def rgb_to_ycbcr_01(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> JFIF YCbCr with Y in [0, 1] and Cb, Cr centred on 0.5; (..., 3, H, W)."""
    return _to_ycbcr("rgb_to_ycbcr_01", rgb, 1.0, 0.5)


def ycbcr_01_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """JFIF YCbCr on [0, 1] (Cb, Cr centred on 0.5) -> RGB in [0, 1]; (..., 3, H, W)."""
    return _from_ycbcr("ycbcr_01_to_rgb", ycbcr, 1.0, 0.5)


def rgb_to_ycbcr_255(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> JFIF YCbCr on JPEG's 0..255, Cb and Cr centred on 128; (..., 3, H, W)."""
    return _to_ycbcr("rgb_to_ycbcr_255", rgb, 255.0, 128.0)


def ycbcr_255_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """JFIF YCbCr on 0..255 (Cb, Cr centred on 128) -> RGB in [0, 1]; (..., 3, H, W)."""
    return _from_ycbcr("ycbcr_255_to_rgb", ycbcr, 255.0, 128.0)


def rgb_to_ycbcr_delta(d: torch.Tensor) -> torch.Tensor:
    """A difference of RGB images as a difference of their JFIF YCbCr (any scale)."""
    _check("rgb_to_ycbcr_delta", d)
    return _affine(d, JFIF_RGB_TO_YCBCR, torch.zeros(3, dtype=torch.float64))


def ycbcr_to_rgb_delta(d: torch.Tensor) -> torch.Tensor:
    """A difference of JFIF YCbCr images as a difference of their RGB (any scale)."""
    _check("ycbcr_to_rgb_delta", d)
    return _affine(d, JFIF_YCBCR_TO_RGB, torch.zeros(3, dtype=torch.float64))


def rgb_to_yuv_bt601(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> BT.601 analog YUV (TensorFlow's matrix): Y in [0, 1], U in +-0.436,
    V in +-0.615; linear, so differences map to differences. (..., 3, H, W)."""
    _check("rgb_to_yuv_bt601", rgb)
    return _affine(rgb, BT601_RGB_TO_YUV, torch.zeros(3, dtype=torch.float64))
