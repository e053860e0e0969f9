"""Range coding of integer symbols with 16-bit quantised CDFs: the public operators.

``range_encode(symbols, indexes, cdfs, cdf_lengths, offsets)`` codes each
``symbols[i]`` (int32 [N]) with the CDF row ``indexes[i]`` (int32 [N]) of
``cdfs`` (int32 [K, Lmax]) and returns the stream as a uint8 tensor;
``range_decode(stream, indexes, cdfs, cdf_lengths, offsets)`` returns the int32
[N] symbols. The tables follow CompressAI's convention:

* row k holds ``cdf_lengths[k]`` entries (the rest of the row is ignored), with
  ``cdfs[k, 0] == 0``, ``cdfs[k, cdf_lengths[k] - 1] == 65536`` and non-decreasing
  entries in between; bin j has probability ``(cdfs[k, j+1] - cdfs[k, j]) / 65536``;
* a value v is coded as ``s = v - offsets[k]``; bins ``0 .. cdf_lengths[k] - 3``
  are the regular symbols and bin ``cdf_lengths[k] - 2`` is the escape: any
  other int32 value is coded as the escape followed by bypass-coded bits, so
  every int32 round-trips as long as its bin (the escape bin for
  out-of-range values) has non-zero probability.

``range_encode_batch(symbols, indexes, symbol_counts, ...)`` codes consecutive
runs of ``symbol_counts[j]`` (int64 [S]) symbols as S independent streams, in
parallel on CPU threads, and returns ``(container, stream_lengths)``: one uint8
container (``b"SFRC"``, the version byte :data:`CONTAINER_VERSION`, little-endian
uint32 S, S uint32 symbol counts, S uint32 stream byte lengths, then the streams
back to back) and the int64 [S] byte length of each stream. ``range_decode_batch(container, indexes,
...)`` decodes all streams in parallel. Each stream's bytes are the range
coder's big-endian 32-bit words with trailing zero bytes trimmed; the coder
itself is specified in :mod:`stegafast.reference.entropy`.

Native kernels exist for CPU only; CUDA tensors run the reference under the
``auto`` backend (after a one-time log line) and raise under ``native``. The ops
have no autograd (integer data). Under ``torch.compile`` the encoders' output
lengths are data-dependent sizes (unbacked SymInts from
``ctx.new_dynamic_size()``); decoding has static shapes.

Errors: malformed arguments (dtypes, ranks, an index outside the table, a CDF
row that does not start at 0, end at 65536 or rise monotonically, lengths
outside [2, Lmax]) and a symbol whose bin has zero probability raise
ValueError (TypeError for a dtype) naming the culprit, and nothing is returned.
The table and the indexes are checked here before any kernel runs (one pass
over the indexes); whether each symbol's bin has non-zero probability is
found while coding on the native path (the kernel re-checks everything it
reads, so no argument can make it read out of bounds).
Decoding a corrupted or truncated stream never reads out of bounds: it returns
wrong symbols (or, for a damaged container header, raises).
"""

from __future__ import annotations

import torch

from ..reference import entropy as reference
from ._validate import check_same_device, check_tensor
from .registration import DeclaredOp, declare

__all__ = ["range_encode", "range_decode", "range_encode_batch", "range_decode_batch", "CONTAINER_VERSION"]

TOTAL = 1 << 16
#: Format version of the batch container (its byte 4): 2 since streams renormalise in 32-bit words.
CONTAINER_VERSION = reference.VERSION
INT32 = (torch.int32,)


def _check_table_shapes(op: str, cdfs, cdf_lengths, offsets) -> None:
    check_tensor(op, "cdfs", cdfs, INT32, ndim=2)
    check_tensor(op, "cdf_lengths", cdf_lengths, INT32, ndim=1)
    check_tensor(op, "offsets", offsets, INT32, ndim=1)
    k = cdfs.shape[0]
    if k == 0:
        raise ValueError(f"{op}: cdfs needs at least one row, got shape {tuple(cdfs.shape)}")
    if cdf_lengths.shape[0] != k or offsets.shape[0] != k:
        raise ValueError(
            f"{op}: cdf_lengths and offsets need {k} entries (one per cdfs row), "
            f"got {cdf_lengths.shape[0]} and {offsets.shape[0]}"
        )


def _check_table_values(op: str, cdfs, cdf_lengths, offsets) -> None:
    lmax = cdfs.shape[1]
    bad = ((cdf_lengths < 2) | (cdf_lengths > lmax)).nonzero()
    if bad.numel():
        r = int(bad[0, 0])
        raise ValueError(f"{op}: cdf_lengths[{r}] = {int(cdf_lengths[r])} must be in [2, {lmax}] (Lmax)")
    lengths = cdf_lengths.long()
    rows = torch.arange(cdfs.shape[0], device=cdfs.device)
    first, last = cdfs[:, 0], cdfs[rows, lengths - 1]
    bad = ((first != 0) | (last != TOTAL)).nonzero()
    if bad.numel():
        r = int(bad[0, 0])
        raise ValueError(
            f"{op}: cdfs row {r} must start at 0 and end at 65536 (entry cdf_lengths[{r}] - 1), "
            f"got {int(first[r])} and {int(last[r])}"
        )
    inside = torch.arange(1, lmax, device=cdfs.device) < lengths[:, None]
    bad = ((cdfs[:, 1:] < cdfs[:, :-1]) & inside).nonzero()
    if bad.numel():
        r, j = int(bad[0, 0]), int(bad[0, 1]) + 1
        raise ValueError(f"{op}: cdfs row {r} is not non-decreasing at entry {j}")


def _check_index_values(op: str, indexes, k: int) -> None:
    # min/max first: locating the culprit costs more, and only on failure
    if indexes.numel() == 0:
        return
    lo, hi = torch.aminmax(indexes)  # one pass over what may be millions of indexes
    if int(lo) >= 0 and int(hi) < k:
        return
    bad = ((indexes < 0) | (indexes >= k)).nonzero()
    if bad.numel():
        i = int(bad[0, 0])
        raise ValueError(f"{op}: indexes[{i}] = {int(indexes[i])} is outside [0, {k}) (the cdfs rows)")


def _check_codable(op: str, symbols, indexes, cdfs, cdf_lengths, offsets) -> None:
    """Every symbol's bin (the escape bin when out of range) must have non-zero probability."""
    idx = indexes.long()
    m = cdf_lengths.long()[idx] - 2
    s = symbols.long() - offsets.long()[idx]
    s = torch.where((s < 0) | (s >= m), m, s)
    freq = cdfs[idx, s + 1] - cdfs[idx, s]
    bad = (freq == 0).nonzero()
    if bad.numel():
        i = int(bad[0, 0])
        raise ValueError(
            f"{op}: symbols[{i}] = {int(symbols[i])} falls in a bin of zero probability of cdfs row {int(indexes[i])}"
        )


def _check_values(op: str, indexes, cdfs, cdf_lengths, offsets) -> None:
    """The table's and the indexes' values (the kernels check them again; the reference trusts them)."""
    _check_table_values(op, cdfs, cdf_lengths, offsets)
    _check_index_values(op, indexes, cdfs.shape[0])


def _run_native(op: DeclaredOp, *args):
    # A symbol of zero probability is found while coding (a separate pass here
    # would cost about as much as the coding); the kernel's message names it,
    # prefixed by the op's name, and becomes the reference path's ValueError.
    try:
        return op.native(*args)
    except RuntimeError as e:
        if str(e).startswith(f"{op.name}: "):
            raise ValueError(str(e).splitlines()[0]) from None
        raise


def _check_encode(op, symbols, indexes, cdfs, cdf_lengths, offsets) -> None:
    check_tensor(op, "symbols", symbols, INT32, ndim=1)
    check_tensor(op, "indexes", indexes, INT32, ndim=1)
    _check_table_shapes(op, cdfs, cdf_lengths, offsets)
    if symbols.shape != indexes.shape:
        raise ValueError(
            f"{op}: symbols and indexes must have one shape, got {tuple(symbols.shape)} and {tuple(indexes.shape)}"
        )


def _check_decode(op, stream, indexes, cdfs, cdf_lengths, offsets) -> None:
    check_tensor(op, "stream", stream, (torch.uint8,), ndim=1)
    check_tensor(op, "indexes", indexes, INT32, ndim=1)
    _check_table_shapes(op, cdfs, cdf_lengths, offsets)


def _check_counts(op: str, symbol_counts, n: int) -> None:
    check_tensor(op, "symbol_counts", symbol_counts, (torch.int64,), ndim=1)
    if symbol_counts.numel() and int(symbol_counts.min()) < 0:
        raise ValueError(f"{op}: symbol_counts must be non-negative")
    if symbol_counts.numel() and int(symbol_counts.max()) >= 2**32:
        raise ValueError(f"{op}: a stream holds at most 2**32 - 1 symbols")
    total = int(symbol_counts.sum())
    if total != n:
        raise ValueError(f"{op}: symbol_counts sum to {total}, but there are {n} symbols")


def range_encode(
    symbols: torch.Tensor,
    indexes: torch.Tensor,
    cdfs: torch.Tensor,
    cdf_lengths: torch.Tensor,
    offsets: torch.Tensor,
) -> torch.Tensor:
    """Codes int32 [N] symbols, symbol i with cdfs row indexes[i]; returns a uint8 stream."""
    args = (symbols, indexes, cdfs, cdf_lengths, offsets)
    check_same_device("range_encode", dict(zip(("symbols", "indexes", "cdfs", "cdf_lengths", "offsets"), args)))
    _check_encode("range_encode", *args)
    _check_values("range_encode", *args[1:])
    if ENCODE.use_native(symbols):
        return _run_native(ENCODE, *args)
    _check_codable("range_encode", *args)
    return reference.range_encode(*args).to(symbols.device)


def range_decode(
    stream: torch.Tensor,
    indexes: torch.Tensor,
    cdfs: torch.Tensor,
    cdf_lengths: torch.Tensor,
    offsets: torch.Tensor,
) -> torch.Tensor:
    """Decodes len(indexes) int32 symbols from a :func:`range_encode` stream."""
    args = (stream, indexes, cdfs, cdf_lengths, offsets)
    check_same_device("range_decode", dict(zip(("stream", "indexes", "cdfs", "cdf_lengths", "offsets"), args)))
    _check_decode("range_decode", *args)
    _check_values("range_decode", *args[1:])
    if DECODE.use_native(indexes):
        return _run_native(DECODE, *args)
    return reference.range_decode(*args).to(indexes.device)


def range_encode_batch(
    symbols: torch.Tensor,
    indexes: torch.Tensor,
    symbol_counts: torch.Tensor,
    cdfs: torch.Tensor,
    cdf_lengths: torch.Tensor,
    offsets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes runs of symbol_counts[j] symbols as independent streams, in parallel.

    Returns (container uint8, stream_lengths int64 [S]); see the module docstring.
    """
    op = "range_encode_batch"
    names = ("symbols", "indexes", "symbol_counts", "cdfs", "cdf_lengths", "offsets")
    args = (symbols, indexes, symbol_counts, cdfs, cdf_lengths, offsets)
    check_same_device(op, dict(zip(names, args)))
    _check_encode(op, symbols, indexes, cdfs, cdf_lengths, offsets)
    _check_counts(op, symbol_counts, symbols.shape[0])
    _check_values(op, indexes, cdfs, cdf_lengths, offsets)
    if ENCODE_BATCH.use_native(symbols):
        return _run_native(ENCODE_BATCH, *args)
    _check_codable(op, symbols, indexes, cdfs, cdf_lengths, offsets)
    container, lengths = reference.range_encode_batch(*args)
    return container.to(symbols.device), lengths.to(symbols.device)


def range_decode_batch(
    stream: torch.Tensor,
    indexes: torch.Tensor,
    cdfs: torch.Tensor,
    cdf_lengths: torch.Tensor,
    offsets: torch.Tensor,
) -> torch.Tensor:
    """Decodes a :func:`range_encode_batch` container into int32 [len(indexes)] symbols.

    Raises ValueError when the container header is malformed or its symbol
    counts do not sum to len(indexes).
    """
    op = "range_decode_batch"
    args = (stream, indexes, cdfs, cdf_lengths, offsets)
    check_same_device(op, dict(zip(("stream", "indexes", "cdfs", "cdf_lengths", "offsets"), args)))
    _check_decode(op, *args)
    _check_values(op, *args[1:])
    if DECODE_BATCH.use_native(indexes):
        return _run_native(DECODE_BATCH, *args)  # a damaged header is a ValueError, as in the reference
    return reference.range_decode_batch(*args).to(indexes.device)


# --- the native ops' declarations: fake (meta) implementations for torch.compile ---


def _fake_encode(symbols, indexes, cdfs, cdf_lengths, offsets):
    n = torch.library.get_ctx().new_dynamic_size()
    return symbols.new_empty((n,), dtype=torch.uint8)


def _fake_decode(stream, indexes, cdfs, cdf_lengths, offsets):
    return indexes.new_empty(indexes.shape)


def _fake_encode_batch(symbols, indexes, symbol_counts, cdfs, cdf_lengths, offsets):
    n = torch.library.get_ctx().new_dynamic_size()
    return symbols.new_empty((n,), dtype=torch.uint8), symbol_counts.new_empty(symbol_counts.shape)


def _declare(name: str, fake):
    # integer data: no autograd formula
    return declare(name, kernel="entropy", dtypes=INT32, fake=fake)


ENCODE = _declare("range_encode", _fake_encode)
DECODE = _declare("range_decode", _fake_decode)
ENCODE_BATCH = _declare("range_encode_batch", _fake_encode_batch)
DECODE_BATCH = _declare("range_decode_batch", _fake_decode)
