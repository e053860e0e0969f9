"""The 100-bit secret: a 7-byte UTF-8 message protected by BCH (bchlib, as the original).

Layout, most significant bit of each byte first::

    bits  0..55   the message: its UTF-8 bytes, padded with spaces to 7 bytes
    bits 56..95   the 5 BCH ECC bytes (GF(2^7), t = 5, primitive polynomial 137):
                  35 parity bits then 5 bits bchlib leaves at zero
    bits 96..99   a CRC-4 (x^4 + x + 1) of the 7 message bytes

The original StegaStamp fills bits 96..99 with zeros. Here they carry a CRC,
and decoding counts every disagreement with a valid codeword: the bits the BCH
decoder flips, the 5 unused ECC bits that are not zero and the CRC bits that
do not match. A packet is accepted only when that total is at most 5, the
decoded bytes are UTF-8 and the text is printable. Every pattern of up to 5
flipped bits anywhere in the 100 is corrected; more flips are reported as
uncorrectable (``message=None``) except in rare miscorrections, which no
5-error-correcting code can rule out: the received word then lies within 5 bits
of another valid packet. The checks above make those far rarer than bchlib's
own answer (about 1 in 10 000 words with 6 to 12 random flips instead of 1 in
150; measured by ``python_tests/test_stamp_bch.py``).

bchlib's behaviour this relies on (bchlib 2.x, measured): ``decode`` returns
the number of bit errors it locates, or a negative number when it finds none
that fit; error locations beyond the shortened codeword count as failure; the
5 padding bits of the last ECC byte are ignored (a flip there is invisible to
it, hence counted here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

__all__ = ["SECRET_BITS", "MESSAGE_BYTES", "DecodeResult", "encode_message", "decode_bits", "check_message"]

MESSAGE_BYTES = 7
BCH_T = 5
BCH_POLY = 137
ECC_BYTES = 5
CRC_BITS = 4
PACKET_BITS = 8 * (MESSAGE_BYTES + ECC_BYTES)  # 96
SECRET_BITS = PACKET_BITS + CRC_BITS  # 100
_PARITY_BITS = 35  # BCH over GF(2^7) with t = 5: 7 * 5 parity bits
_UNUSED_ECC = slice(8 * MESSAGE_BYTES + _PARITY_BITS, PACKET_BITS)


class DecodeResult(NamedTuple):
    """message: the decoded text (padding stripped), or None when uncorrectable.
    corrected_bits: how many of the 100 bits were wrong (None when uncorrectable)."""

    message: str | None
    corrected_bits: int | None

    @property
    def ok(self) -> bool:
        return self.message is not None


def _bch():
    import bchlib  # imported here: only the stamp commands need it

    return bchlib.BCH(BCH_T, BCH_POLY)


SHOWN_CHARACTERS = 20  # an error quotes at most this much of a message


def _shown(text: str) -> str:
    """The message as an error quotes it: its repr, cut short when long."""
    if len(text) <= SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:SHOWN_CHARACTERS]!r}... ({len(text)} characters)"


def check_message(text: str) -> bytes:
    """The message's UTF-8 bytes, or a ValueError saying why it cannot be hidden (quoting at
    most SHOWN_CHARACTERS of it)."""
    if not isinstance(text, str):
        raise TypeError(f"the message must be a str, got {type(text).__name__}")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        # Python keeps command-line bytes that are not UTF-8 as lone surrogates ("surrogateescape").
        raise ValueError(f"the message {_shown(text)} is not valid UTF-8 text") from None
    if len(data) > MESSAGE_BYTES:
        raise ValueError(f"the message {_shown(text)} is {len(data)} bytes in UTF-8; at most {MESSAGE_BYTES} fit")
    if not text.isprintable():
        raise ValueError(f"the message {_shown(text)} holds control characters; only printable text is hidden")
    return data


def _crc4(data: bytes) -> int:
    """CRC-4 (polynomial x^4 + x + 1, initial value 0) of ``data``, bits MSB first."""
    register = 0
    for byte in data:
        for i in range(7, -1, -1):
            feedback = ((register >> 3) & 1) ^ ((byte >> i) & 1)
            register = (register << 1) & 0xF
            if feedback:
                register ^= 0x3
    return register


def _to_bits(data: bytes) -> list[int]:
    return [(byte >> i) & 1 for byte in data for i in range(7, -1, -1)]


def _to_bytes(bits: Sequence[int]) -> bytearray:
    return bytearray(sum(bit << (7 - i) for i, bit in enumerate(bits[k : k + 8])) for k in range(0, len(bits), 8))


def encode_message(text: str) -> torch.Tensor:
    """The 100 secret bits (float32 0/1) of a printable message of at most 7 UTF-8
    bytes; a ValueError for longer or non-printable messages."""
    data = check_message(text).ljust(MESSAGE_BYTES, b" ")
    ecc = bytes(_bch().encode(data))
    crc = _crc4(data)
    bits = _to_bits(data + ecc) + [(crc >> i) & 1 for i in range(CRC_BITS - 1, -1, -1)]
    return torch.tensor(bits, dtype=torch.float32)


def _hard_bits(bits) -> list[int]:
    values = torch.as_tensor(bits).detach().flatten().cpu()
    if values.numel() != SECRET_BITS:
        raise ValueError(f"decode_bits needs {SECRET_BITS} bits, got {values.numel()}")
    return [int(v) for v in (values.float() > 0.5).tolist()]


def decode_bits(bits) -> DecodeResult:
    """Error-correct 100 bits (any tensor or sequence; values above 0.5 are ones)
    back to the message; see the module docstring for when it is accepted."""
    hard = _hard_bits(bits)
    packet = _to_bytes(hard[:PACKET_BITS])
    data, ecc = packet[:MESSAGE_BYTES], packet[MESSAGE_BYTES:]
    bch = _bch()
    located = bch.decode(bytes(data), bytes(ecc))
    if located < 0:
        return DecodeResult(None, None)
    bch.correct(data, ecc)
    crc = _crc4(bytes(data))
    crc_mismatch = sum(((crc >> (CRC_BITS - 1 - i)) & 1) != hard[PACKET_BITS + i] for i in range(CRC_BITS))
    corrected = located + sum(hard[_UNUSED_ECC]) + crc_mismatch
    if corrected > BCH_T:
        return DecodeResult(None, None)
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return DecodeResult(None, None)
    if not text.isprintable():
        return DecodeResult(None, None)
    return DecodeResult(text.rstrip(" "), corrected)
