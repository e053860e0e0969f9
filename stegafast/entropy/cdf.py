"""Quantising probability tables into the range coder's 16-bit integer CDFs.

Both entropy models build their tables with :func:`quantize_pmf`, in CompressAI's
convention (the one :func:`stegafast.ops.range_encode` expects): row k describes
``lengths[k]`` regular symbols and one escape bin (the mass of everything
outside them), so it holds ``lengths[k] + 2`` entries ``0 = cdf[0] <= ... <=
cdf[lengths[k] + 1] = 65536``. Every bin gets at least one count, so every
value stays codable (the escape bin codes values outside the regular range).

The integers are computed once, from float probabilities, and then stored: an
encoder and a decoder that share the table can never disagree, whatever their
floating-point arithmetic.
"""

from __future__ import annotations

import torch

from ..errors import DivergenceError

__all__ = ["PRECISION", "TOTAL", "quantize_pmf"]

PRECISION = 16
TOTAL = 1 << PRECISION


def _bin_probabilities(pmf: torch.Tensor, tail_mass: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(K, Lmax + 1) float64: row k's regular probabilities, its escape mass at column
    lengths[k], zeros after it."""
    k, width = pmf.shape[0], int(lengths.max()) + 1
    columns = torch.arange(width, device=pmf.device)
    regular = columns[None, :] < lengths[:, None]
    probs = torch.zeros(k, width, dtype=torch.float64, device=pmf.device)
    probs[:, : min(width, pmf.shape[1])] = pmf[:, :width].double()
    probs = torch.where(regular, probs, torch.zeros((), dtype=torch.float64, device=pmf.device))
    escape = columns[None, :] == lengths[:, None]
    return torch.where(escape, tail_mass.double()[:, None], probs).clamp(min=0)


def quantize_pmf(
    pmf: torch.Tensor, tail_mass: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer CDF tables from probabilities.

    pmf:        (K, L) probabilities of the regular symbols; row k uses its first lengths[k]
    tail_mass:  (K,) probability of the escape bin (values outside the regular range)
    lengths:    (K,) number of regular symbols per row, 1 <= lengths[k] <= L

    Returns ``(cdfs, cdf_lengths)``: int32 (K, max(lengths) + 2) and int32 (K,) with
    ``cdf_lengths = lengths + 2``; entries after a row's length are 65536. The
    probabilities are normalised per row; each bin gets one count plus its share
    of the remaining ``65536 - (lengths[k] + 1)``, rounded by largest remainder so
    the counts sum to exactly 65536.
    """
    if pmf.ndim != 2 or tail_mass.shape != pmf.shape[:1] or lengths.shape != pmf.shape[:1]:
        raise ValueError(
            f"quantize_pmf: need pmf (K, L), tail_mass (K,) and lengths (K,), got "
            f"{tuple(pmf.shape)}, {tuple(tail_mass.shape)} and {tuple(lengths.shape)}"
        )
    lengths = lengths.long()
    if pmf.shape[0] == 0 or int(lengths.min()) < 1 or int(lengths.max()) > pmf.shape[1]:
        raise ValueError(f"quantize_pmf: lengths must be in [1, {pmf.shape[1]}] (the pmf's columns)")
    if int(lengths.max()) + 1 > TOTAL:
        raise ValueError(f"quantize_pmf: {int(lengths.max()) + 1} bins do not fit a {PRECISION}-bit CDF")
    if not bool(torch.isfinite(pmf).all() and torch.isfinite(tail_mass).all()):
        raise DivergenceError("quantize_pmf: the probabilities are not finite (has the model diverged?)")
    probs = _bin_probabilities(pmf, tail_mass, lengths)
    bins = lengths + 1
    valid = torch.arange(probs.shape[1], device=probs.device)[None, :] < bins[:, None]
    sums = probs.sum(1, keepdim=True)
    # a row without mass (an untrained model far from its data) falls back to uniform
    probs = torch.where(sums > 0, probs, valid.double())
    share = probs / probs.sum(1, keepdim=True) * (TOTAL - bins)[:, None].double()
    freq = torch.where(valid, share.floor().long() + 1, 0)
    remaining = TOTAL - freq.sum(1)
    remainder = torch.where(valid, share - share.floor(), -1.0)
    order = torch.sort(remainder, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(order.shape[1], device=order.device).expand_as(order).contiguous()
    )
    freq = freq + (rank < remaining[:, None]).long()
    cdfs = torch.cat([torch.zeros_like(freq[:, :1]), freq.cumsum(1)], dim=1)
    return cdfs.to(torch.int32), (lengths + 2).to(torch.int32)
