"""What a decoded stream may hold: the checks every decoder runs on what it decodes.

A file's checksum proves only that its bytes arrived as they were written; a
corrupted file whose checksum was recomputed reaches the range decoder, which
reads any bytes without going out of bounds but returns whatever symbols they
spell. Unchecked, those symbols (up to +-2**31 through the escape code) drive a
synthesis network to inf and NaN. So:

* **symbol range** (:func:`check_symbol_range`, :func:`check_decoded_symbols`): the
  encoders refuse to code values beyond +-:data:`SYMBOL_LIMIT` (2**24: float32,
  the latents' dtype, holds every integer only up to 2**24, so a larger value
  would not decode to the integer coded anyway), and the decoders refuse a
  stream that decodes to one. Encoder and decoder share the bound, so no stream
  an encoder writes is refused.
* **stream capacity** (:func:`max_stream_bytes`, :func:`check_stream_capacity`): a
  stream cannot be longer than its symbols can fill. The coder
  (:mod:`stegafast.reference.entropy`) keeps ``range >= 2**32`` between steps;
  a step coding ``freq`` of ``2**bits`` shrinks it by at most ``2**bits / freq``
  times ``1 / (1 - 2**bits / 2**32)``, i.e. by at most ``bits + 1`` bits
  (``freq >= 1``). A regular symbol is one 16-bit step (<= 17 bits); an escape adds
  its 6-bit length and at most 34 payload bits in 3 chunks (the offset value of
  two int32s is below 2**33): <= 17 + 7 + 34 + 3 = 61 bits. Each 32 bits consumed
  emit one 4-byte word and the flush adds 8 bytes, so n symbols make at most
  ``4 * (61 n / 32 + 1) + 8 <= 8 n + 16`` bytes (trimming only shortens it).
  There is no sound bound the other way, on symbols per byte: the decoder reads
  the trimmed trailing zeros back, and a run of symbols in each row's first bin
  (cdf start 0) leaves the coder's ``low`` at 0 and codes to no bytes at all.
  What bounds a decoder's memory is therefore the size its header announces,
  checked against :mod:`stegafast.data.limits` before anything is allocated.
* **finite values** (:func:`check_finite_decoded`): whatever a network computes from
  in-range symbols is checked before it goes on (a hyperprior's means and scales,
  a synthesis network's image), so a decoder ends in ``CorruptStreamError``,
  never in NaN.

Every failure is a one-line :class:`~stegafast.errors.CorruptStreamError` starting
with "corrupt stream".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import CorruptStreamError, DivergenceError

__all__ = [
    "SYMBOL_LIMIT",
    "MAX_BITS_PER_SYMBOL",
    "max_stream_bytes",
    "check_symbol_range",
    "check_decoded_symbols",
    "check_stream_capacity",
    "check_finite_decoded",
]

SYMBOL_LIMIT = 2**24
MAX_BITS_PER_SYMBOL = 61  # an escaped symbol, derived in the module docstring


def max_stream_bytes(symbols: int) -> int:
    """The longest stream ``symbols`` symbols can code to (derived in the module docstring)."""
    return 8 * symbols + 16


def _beyond_limit(symbols: torch.Tensor) -> int | None:
    """The value of ``symbols`` furthest beyond +-SYMBOL_LIMIT (the minimum first), or None when all are within."""
    if symbols.numel() == 0:
        return None
    lo, hi = (int(t) for t in torch.aminmax(symbols))
    if lo < -SYMBOL_LIMIT:
        return lo
    return hi if hi > SYMBOL_LIMIT else None


def check_symbol_range(symbols: torch.Tensor, op: str) -> None:
    """Encoder side: a DivergenceError when a value to code is beyond +-SYMBOL_LIMIT (only a
    model that has diverged, or an input far outside its training, makes one)."""
    culprit = _beyond_limit(symbols)
    if culprit is not None:
        raise DivergenceError(
            f"{op}: a value to code is {culprit}, beyond +-2**24 (the coder's limit; has the model diverged?)"
        )


def check_decoded_symbols(symbols: torch.Tensor, op: str) -> None:
    """Decoder side: a CorruptStreamError when a decoded symbol is beyond +-SYMBOL_LIMIT,
    which no encoder writes."""
    culprit = _beyond_limit(symbols)
    if culprit is not None:
        raise CorruptStreamError(f"corrupt stream: {op} decoded the value {culprit}, beyond +-2**24")


def check_stream_capacity(streams: Sequence[bytes], symbol_counts: Sequence[int], op: str) -> None:
    """A CorruptStreamError for a stream longer than its symbol count can fill
    (:func:`max_stream_bytes`); run before decoding, it costs nothing."""
    for j, (stream, count) in enumerate(zip(streams, symbol_counts)):
        if len(stream) > max_stream_bytes(count):
            raise CorruptStreamError(
                f"corrupt stream: {op} stream {j} has {len(stream)} bytes, more than {count} symbols can "
                f"code to ({max_stream_bytes(count)})"
            )


def check_finite_decoded(what: str, *tensors: torch.Tensor) -> None:
    """A CorruptStreamError when any of ``tensors`` (computed from decoded symbols) holds NaN or inf."""
    for t in tensors:
        if not bool(torch.isfinite(t).all()):
            raise CorruptStreamError(f"corrupt stream: {what} is not finite")
