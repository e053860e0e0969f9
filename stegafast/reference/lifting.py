"""Batched LeGall 5/3 integer lifting wavelet in plain PyTorch.

This is the readable specification of ``stegafast.ops.ilwt53_forward`` and
``ilwt53_inverse``: the native kernels must agree with it bit for bit on
integer-valued input. JPEG 2000 Part 1 (ITU-T T.800, Annex F) reversible lifting:

    d[n] = x[2n+1] - floor((x[2n] + x[2n+2]) / 2)
    s[n] = x[2n]   + floor((d[n-1] + d[n] + 2) / 4)

with whole-sample symmetric extension (x[-k] = x[k], x[N-1+k] = x[N-1-k]). An odd
length is first extended for the whole batch by one sample x[N] = x[N-2], so
every subband has ceil(N/2) samples and a batch of images shares one padding
rule. The 2-D transform runs along H first, then along W; the output is
subband-major ``[LL | HL | LH | HH]`` with C channels each (HL: high-pass along W).

Arithmetic, which the native kernels follow bit for bit:

* int32: two's-complement int32 throughout, intermediate results included:
  every sum and difference wraps modulo 2**32 (as torch's int32 arithmetic
  does) and the floors divide the wrapped value. Each lifting step adds to one
  half of the samples a function of the other half, which the inverse
  subtracts again, so the round trip is exact for every int32 input. The
  sums reach 8 times the input's magnitude, so inputs of magnitude 2**28 or
  more can give wrapped subbands.
* floating types: IEEE arithmetic in ``compute_dtype`` (float32 for the half
  types), the operations in the order written above. Integer-valued inputs
  round-trip exactly while every intermediate stays an integer the compute
  dtype holds (the sums reach 8 times the input's magnitude): |x| <= 2**21 in
  float32, 2**50 in float64; half types also need subbands their storage
  holds exactly (8-bit images in float16). Beyond that both backends still
  agree, but the round trip is not exact; half outputs beyond the storage
  range become inf, and infinities and NaN propagate as IEEE arithmetic does.

Floors pass gradients straight through, so the gradients are those of the
linear lifting, as the native backward kernels compute them.
"""

from __future__ import annotations

import torch

from ..dtypes import compute_dtype

__all__ = ["ilwt53_forward", "ilwt53_inverse"]


def _floor(v: torch.Tensor) -> torch.Tensor:
    """floor(v) whose gradient is the identity; floor(+-inf) = +-inf (the
    correction floor(v) - v, NaN for an infinity, is 0 there)."""
    return v + torch.nan_to_num(torch.floor(v) - v, nan=0.0).detach()


def _predict(a: torch.Tensor, b: torch.Tensor, rounding: bool) -> torch.Tensor:
    if not a.is_floating_point():
        return torch.div(a + b, 2, rounding_mode="floor")
    return _floor((a + b) * 0.5) if rounding else (a + b) * 0.5


def _update(a: torch.Tensor, b: torch.Tensor, rounding: bool) -> torch.Tensor:
    if not a.is_floating_point():
        return torch.div(a + b + 2, 4, rounding_mode="floor")
    return _floor((a + b + 2) * 0.25) if rounding else (a + b) * 0.25


def _shift_left(v: torch.Tensor, dim: int) -> torch.Tensor:
    """v[n+1] along dim, the last sample repeated: x[2K] = x[2K-2] in even terms."""
    return torch.cat([v.narrow(dim, 1, v.shape[dim] - 1), v.narrow(dim, -1, 1)], dim)


def _shift_right(v: torch.Tensor, dim: int) -> torch.Tensor:
    """v[n-1] along dim, the first sample repeated: d[-1] = d[0]."""
    return torch.cat([v.narrow(dim, 0, 1), v.narrow(dim, 0, v.shape[dim] - 1)], dim)


def _lift(x: torch.Tensor, dim: int, rounding: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward 1-D lifting along dim: (low, high), each ceil(N/2) long."""
    n = x.shape[dim]
    if n % 2:
        x = torch.cat([x, x.narrow(dim, n - 2, 1)], dim)  # shared padding x[N] = x[N-2]
    pairs = x.unflatten(dim, (-1, 2))
    even, odd = pairs.select(dim + 1, 0), pairs.select(dim + 1, 1)
    high = odd - _predict(even, _shift_left(even, dim), rounding)
    low = even + _update(_shift_right(high, dim), high, rounding)
    return low, high


def _unlift(low: torch.Tensor, high: torch.Tensor, dim: int, n: int, rounding: bool) -> torch.Tensor:
    """Inverse of _lift: the length-n signal along dim."""
    even = low - _update(_shift_right(high, dim), high, rounding)
    odd = high + _predict(even, _shift_left(even, dim), rounding)
    x = torch.stack([even, odd], dim + 1).flatten(dim, dim + 1)
    return x.narrow(dim, 0, n)


def ilwt53_forward(x: torch.Tensor, rounding: bool = True) -> torch.Tensor:
    """(B, C, H, W) -> (B, 4C, ceil(H/2), ceil(W/2)) subbands [LL | HL | LH | HH]."""
    work = x.to(compute_dtype(x.dtype))
    low, high = _lift(work, 2, rounding)
    ll, hl = _lift(low, 3, rounding)
    lh, hh = _lift(high, 3, rounding)
    return torch.cat([ll, hl, lh, hh], 1).to(x.dtype)


def ilwt53_inverse(y: torch.Tensor, out_size: tuple[int, int], rounding: bool = True) -> torch.Tensor:
    """(B, 4C, ceil(H/2), ceil(W/2)) subbands -> (B, C, H, W) with (H, W) = out_size."""
    h, w = (int(s) for s in out_size)
    ll, hl, lh, hh = y.to(compute_dtype(y.dtype)).chunk(4, 1)
    low = _unlift(ll, hl, 3, w, rounding)
    high = _unlift(lh, hh, 3, w, rounding)
    return _unlift(low, high, 2, h, rounding).to(y.dtype)
