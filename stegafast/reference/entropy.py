"""The range coder, in plain Python: the specification of stegafast.ops.range_*.

Slow (one Python step per symbol) but byte-identical to the native coder, so it
is the test oracle. Arguments are as in :mod:`stegafast.ops.entropy`, which
validates them; this module trusts them.

The coder (a range coder with a 64-bit state and 32-bit words):

* state ``low`` (64 bits; a 65th is a carry) and ``range`` (initially
  ``2**64 - 1``); coding the interval ``[start, start + freq)`` of a total
  ``2**bits`` sets ``r = range >> bits``, ``low += r * start``,
  ``range = r * freq``; a carry out of ``low`` is added into the bytes already
  written; then, while ``range < 2**32`` (once at most), the top 32 bits of
  ``low`` are written as a big-endian word and ``low``, ``range`` shift left
  by 32;
* a value ``v`` with CDF row ``k`` is ``s = v - offsets[k]``; ``0 <= s <
  cdf_lengths[k] - 2`` codes bin ``s``; otherwise the escape bin
  ``m = cdf_lengths[k] - 2`` is coded, then the payload ``raw = -2s - 1``
  (s < 0) or ``2(s - m)`` (s >= m): its bit length ``n`` in 6 bits, then its
  bits, 16 at a time from the lowest, each chunk as a uniform symbol;
* the stream ends with the value in ``[low, low + range)`` that has the most
  trailing zero bits, as 8 big-endian bytes; trailing zero bytes are dropped
  (the decoder reads missing bytes as zeros).

Batches: see :func:`range_encode_batch` for the container layout.
"""

from __future__ import annotations

import struct

import numpy as np
import torch

__all__ = ["range_encode", "range_decode", "range_encode_batch", "range_decode_batch"]

PRECISION = 16
STATE_BITS = 64
STATE_MASK = (1 << STATE_BITS) - 1
WORD_BITS = 32
WORD_BYTES = WORD_BITS // 8
RENORM_BELOW = 1 << WORD_BITS
LENGTH_BITS = 6
CHUNK_BITS = 16
MAGIC = b"SFRC"
VERSION = 2  # of the batch container; 1 held streams renormalised in bytes


class _Encoder:
    def __init__(self):
        self.out = bytearray()
        self.low = 0
        self.range = STATE_MASK

    def encode(self, start: int, freq: int, bits: int) -> None:
        r = self.range >> bits
        self.low += r * start
        self.range = r * freq
        self._carry()
        while self.range < RENORM_BELOW:
            self.out += (self.low >> WORD_BITS).to_bytes(WORD_BYTES, "big")
            self.low = (self.low << WORD_BITS) & STATE_MASK
            self.range <<= WORD_BITS

    def _carry(self) -> None:
        # every interval lies inside the first one, so a carry stops inside the stream
        if self.low > STATE_MASK:
            i = len(self.out) - 1
            while self.out[i] == 0xFF:
                self.out[i] = 0
                i -= 1
            self.out[i] += 1
            self.low &= STATE_MASK

    def finish(self) -> bytes:
        for b in range(STATE_BITS, -1, -1):
            mask = (1 << b) - 1
            v = (self.low + mask) & ~mask
            if v - self.low < self.range:
                self.low = v
                break
        self._carry()
        self.out += self.low.to_bytes(STATE_BITS // 8, "big")
        return bytes(self.out).rstrip(b"\0")


class _Decoder:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0
        self.range = STATE_MASK
        self.step = 1
        self.code = self._next_bytes(STATE_BITS // 8)

    def _next_bytes(self, n: int) -> int:
        """The next n bytes as a big-endian integer, zeros past the end."""
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return int.from_bytes(chunk.ljust(n, b"\0"), "big")

    def target(self, bits: int) -> int:
        self.step = self.range >> bits
        return min(self.code // self.step, (1 << bits) - 1)

    def consume(self, start: int, freq: int) -> None:
        self.code -= self.step * start
        self.range = self.step * freq
        while self.range < RENORM_BELOW:
            self.range <<= WORD_BITS
            self.code = ((self.code << WORD_BITS) | self._next_bytes(WORD_BYTES)) & STATE_MASK


def _rows(cdfs, cdf_lengths, offsets):
    lengths = cdf_lengths.tolist()
    table = cdfs.tolist()
    return [(row[:n], n, off) for row, n, off in zip(table, lengths, offsets.tolist())]


def _encode_values(values, idx, rows) -> bytes:
    enc = _Encoder()
    for value, k in zip(values, idx):
        cdf, n, offset = rows[k]
        m = n - 2
        s = value - offset
        escape = s < 0 or s >= m
        if escape:
            raw = -2 * s - 1 if s < 0 else 2 * (s - m)
            s = m
        start, freq = cdf[s], cdf[s + 1] - cdf[s]
        if freq == 0:
            raise ValueError(f"value {value} falls in a bin of zero probability of cdfs row {k}")
        enc.encode(start, freq, PRECISION)
        if escape:
            nbits = raw.bit_length()
            enc.encode(nbits, 1, LENGTH_BITS)
            for i in range(0, nbits, CHUNK_BITS):
                bits = min(CHUNK_BITS, nbits - i)
                enc.encode((raw >> i) & ((1 << bits) - 1), 1, bits)
    return enc.finish()


def _find_bin(cdf, t: int) -> int:
    lo, hi = 0, len(cdf) - 1  # cdf[lo] <= t < cdf[hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cdf[mid] <= t:
            lo = mid
        else:
            hi = mid
    return lo


def _to_int32(v: int) -> int:
    return ((v + 2**31) % 2**32) - 2**31


def _decode_values(data: bytes, idx, rows) -> list[int]:
    dec = _Decoder(data)
    out = []
    for k in idx:
        cdf, n, offset = rows[k]
        m = n - 2
        s = _find_bin(cdf, dec.target(PRECISION))
        dec.consume(cdf[s], cdf[s + 1] - cdf[s])
        if s == m:
            nbits = dec.target(LENGTH_BITS)
            dec.consume(nbits, 1)
            raw = 0
            for i in range(0, nbits, CHUNK_BITS):
                bits = min(CHUNK_BITS, nbits - i)
                chunk = dec.target(bits)
                dec.consume(chunk, 1)
                raw |= chunk << i
            s = -((raw >> 1) + 1) if raw & 1 else m + (raw >> 1)
        out.append(_to_int32(s + offset))
    return out


def _bytes_tensor(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(bytearray(data), dtype=np.uint8).copy())


def range_encode(symbols, indexes, cdfs, cdf_lengths, offsets) -> torch.Tensor:
    """Codes ``symbols[i]`` with cdfs row ``indexes[i]``; returns the stream (uint8)."""
    data = _encode_values(symbols.tolist(), indexes.tolist(), _rows(cdfs, cdf_lengths, offsets))
    return _bytes_tensor(data)


def range_decode(stream, indexes, cdfs, cdf_lengths, offsets) -> torch.Tensor:
    """Decodes ``len(indexes)`` values from a stream of :func:`range_encode`."""
    out = _decode_values(bytes(stream.tolist()), indexes.tolist(), _rows(cdfs, cdf_lengths, offsets))
    return torch.tensor(out, dtype=torch.int32)


def range_encode_batch(symbols, indexes, symbol_counts, cdfs, cdf_lengths, offsets):
    """Codes consecutive runs of ``symbol_counts[j]`` symbols as independent streams.

    Returns ``(container, stream_lengths)``. The container, integers little-endian:
    ``b"SFRC"``, version byte :data:`VERSION`, uint32 S, S x uint32 symbol counts, S x uint32
    stream byte lengths, then the S streams concatenated.
    """
    rows = _rows(cdfs, cdf_lengths, offsets)
    sym, idx, counts = symbols.tolist(), indexes.tolist(), symbol_counts.tolist()
    streams, start = [], 0
    for c in counts:
        streams.append(_encode_values(sym[start : start + c], idx[start : start + c], rows))
        start += c
    lengths = [len(s) for s in streams]
    header = MAGIC + bytes([VERSION]) + struct.pack(f"<I{len(counts)}I{len(counts)}I", len(counts), *counts, *lengths)
    return _bytes_tensor(header + b"".join(streams)), torch.tensor(lengths, dtype=torch.int64)


def _parse_container(data: bytes):
    if len(data) < 9 or data[:4] != MAGIC:
        raise ValueError("stream is not a range_encode_batch container (bad magic)")
    if data[4] != VERSION:
        raise ValueError(f"unsupported container version {data[4]}")
    (s,) = struct.unpack_from("<I", data, 5)
    if 9 + 8 * s > len(data):
        raise ValueError("truncated container header")
    counts = struct.unpack_from(f"<{s}I", data, 9)
    lengths = struct.unpack_from(f"<{s}I", data, 9 + 4 * s)
    pos = 9 + 8 * s
    if pos + sum(lengths) > len(data):
        raise ValueError("a stream runs past the end of the container")
    return counts, lengths, pos


def range_decode_batch(stream, indexes, cdfs, cdf_lengths, offsets) -> torch.Tensor:
    """Decodes a :func:`range_encode_batch` container; the counts must sum to len(indexes)."""
    data = bytes(stream.tolist())
    counts, lengths, pos = _parse_container(data)
    if sum(counts) != len(indexes):
        raise ValueError(f"the container holds {sum(counts)} symbols, expected {len(indexes)}")
    rows, idx, out, start = _rows(cdfs, cdf_lengths, offsets), indexes.tolist(), [], 0
    for c, n in zip(counts, lengths):
        out += _decode_values(data[pos : pos + n], idx[start : start + c], rows)
        pos, start = pos + n, start + c
    return torch.tensor(out, dtype=torch.int32)
