"""Differentiable JPEG quantisation of 8x8 blocks in plain PyTorch.

This is the readable specification of ``stegafast.ops.jpeg_quantize_blocks``.
For each 8x8 block X of a (N, C, H, W) batch of pixel values (0..255; H and W
multiples of 8) and the block's quantisation table Q (one per sample and
channel):

    coef = D (X - 128) D^T                   forward DCT-II, D orthonormal
    Y    = D^T (Q * r(coef / Q)) D + 128     the JPEG decoder's reconstruction

with the rounding r one of

* ``"ste"``: true rounding forward, identity gradient (straight-through);
* ``"cubic"``: ``round(v) + (v - round(v))**3`` (Shin and Song 2017), its own
  gradient ``3 (v - round(v))**2``;
* ``"ste_cubic"``: true rounding forward, the cubic's gradient (Reich et al.,
  WACV 2024);
* ``"round_only_at_0"``: StegaStamp's (``utils.round_only_at_0``): ``v**3``
  where |v| < 0.5, else ``v`` itself; no value is rounded except towards 0
  near 0 (a much milder channel than true rounding). Only this module
  implements it: ``stegafast.ops`` runs it here on every device.

``round`` rounds to nearest, ties to even (``torch.round``). The tables are
not differentiated; they are rounded to x's dtype (their storage type in the
native kernels) before the arithmetic, which runs in float32 for half types.

``jpeg_quality_table`` builds the IJG (libjpeg) standard luminance or
chrominance table for a quality 1..100, scaled exactly as libjpeg's
``jpeg_quality_scaling`` with ``force_baseline`` (as Pillow calls it):
``scale = 5000 // q if q < 50 else 200 - 2 q``,
``table = clamp((T * scale + 50) // 100, 1, 255)``.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..dtypes import compute_dtype

__all__ = ["jpeg_quantize_blocks", "jpeg_quality_table", "ROUNDINGS", "TABLE_KINDS"]

ROUNDINGS = ("ste", "cubic", "ste_cubic", "round_only_at_0")
#: The largest |coefficient| of a block of 0..255 pixels: 8 * 128 (the DC term of a flat block).
MAX_COEFFICIENT = 1024
TABLE_KINDS = ("luma", "chroma")

# ITU-T T.81 Annex K, tables K.1 and K.2 (libjpeg's std_luminance_quant_tbl and
# std_chrominance_quant_tbl), row-major.
_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)  # fmt: skip


def base_table(kind: str) -> torch.Tensor:
    """The unscaled standard table ("luma" or "chroma") as an (8, 8) int64 tensor."""
    if kind not in TABLE_KINDS:
        raise ValueError(f"jpeg table kind must be one of {', '.join(map(repr, TABLE_KINDS))}, got {kind!r}")
    return torch.tensor(_LUMA if kind == "luma" else _CHROMA, dtype=torch.int64).view(8, 8)


def _quality_tensor(quality, device) -> torch.Tensor:
    """quality as an int64 tensor (0-D or 1-D), after checking it is integral in 1..100."""
    if isinstance(quality, torch.Tensor):
        if quality.dim() > 1:
            raise ValueError(f"jpeg quality must be a scalar or a 1-D tensor, got shape {tuple(quality.shape)}")
        if quality.is_floating_point():
            if not torch.compiler.is_compiling() and not bool(torch.all(quality == torch.round(quality))):
                raise ValueError("jpeg quality must hold whole numbers (libjpeg's qualities are integers)")
        elif quality.dtype == torch.bool or quality.is_complex():
            raise TypeError(f"jpeg quality must be an integer or float tensor, got {quality.dtype}")
        q = quality.to(device=device, dtype=torch.int64)
    elif isinstance(quality, bool) or not isinstance(quality, numbers.Real):
        raise TypeError(f"jpeg quality must be a number or a tensor, got {quality!r}")
    else:
        if not (math.isfinite(quality) and quality == int(quality)):
            raise ValueError(f"jpeg quality must be a whole number in 1..100, got {quality!r}")
        q = torch.tensor(int(quality), dtype=torch.int64, device=device)
    # value checks read data, which a compiled graph cannot branch on: they run eagerly
    if q.numel() and not torch.compiler.is_compiling() and not bool(torch.all((q >= 1) & (q <= 100))):
        raise ValueError(f"jpeg quality must lie in 1..100, got {q.tolist()}")
    return q


def jpeg_quality_table(quality, kind: str = "luma", *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """libjpeg's quantisation table for ``quality`` (a whole number in 1..100,
    or a 1-D tensor of them, one per image): shape (8, 8) or (N, 8, 8)."""
    base = base_table(kind)
    q = _quality_tensor(quality, device if device is not None else "cpu")
    base = base.to(q.device)
    scale = torch.where(q < 50, torch.div(5000, q, rounding_mode="floor"), 200 - 2 * q)
    table = torch.div(base * scale[..., None, None] + 50, 100, rounding_mode="floor")
    return table.clamp(1, 255).to(dtype)


def _dct_matrix(dtype: torch.dtype, device) -> torch.Tensor:
    """The orthonormal 8x8 DCT-II matrix D[k, n] = a_k cos((2n + 1) k pi / 16)."""
    k = torch.arange(8, dtype=torch.float64).view(8, 1)
    n = torch.arange(8, dtype=torch.float64).view(1, 8)
    d = torch.cos((2 * n + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    d[0] = math.sqrt(1 / 8)
    return d.to(dtype=dtype, device=device)


def _round(v: torch.Tensor, rounding: str) -> torch.Tensor:
    if rounding == "round_only_at_0":
        return torch.where(v.abs() < 0.5, v**3, v)
    hard = torch.round(v)
    if rounding == "ste":
        return v + (hard - v).detach()
    cubic = hard.detach() + (v - hard.detach()) ** 3
    if rounding == "cubic":
        return cubic
    # ste_cubic: the hard value forward, the cubic's gradient backward
    return cubic + (hard - cubic).detach()


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/8, W/8, 8, 8)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)


def _unblocks(b: torch.Tensor) -> torch.Tensor:
    n, c, bh, bw = b.shape[:4]
    return b.permute(0, 1, 2, 4, 3, 5).reshape(n, c, bh * 8, bw * 8)


def jpeg_quantize_blocks(x: torch.Tensor, qtable: torch.Tensor, rounding: str = "ste") -> torch.Tensor:
    """JPEG's lossy step on every 8x8 block of x (N, C, H, W), values 0..255,
    H and W multiples of 8; qtable broadcasts to (N, C, 8, 8) (a (N, 8, 8)
    table is one per sample). Returns the decoded pixels, x's shape and dtype."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"jpeg rounding must be one of {', '.join(map(repr, ROUNDINGS))}, got {rounding!r}")
    dtype = x.dtype
    work = compute_dtype(dtype)
    n, c = x.shape[:2]
    # the table is stored in x's dtype first, as the native kernels read it
    table = qtable.detach().to(dtype).to(work)
    if table.dim() == 3:
        table = table[:, None]
    table = table.expand(n, c, 8, 8)[:, :, None, None]
    d = _dct_matrix(work, x.device)
    coef = d @ (_blocks(x.to(work)) - 128) @ d.T
    coef = table * _round(coef / table, rounding)
    return (_unblocks(d.T @ coef @ d) + 128).to(dtype)
