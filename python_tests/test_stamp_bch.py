"""The BCH-protected 100-bit secret: round trips, up to 5 flipped bits
corrected anywhere, more flips reported as uncorrectable (and how much rarer
the guards make wrong messages than bchlib's own answer)."""

import random

import pytest
import torch

pytest.importorskip("bchlib")

from stegafast.models.stamp.bch import (  # noqa: E402
    BCH_POLY,
    BCH_T,
    MESSAGE_BYTES,
    PACKET_BITS,
    SECRET_BITS,
    _bch,
    _to_bytes,
    decode_bits,
    encode_message,
)

MESSAGES = ["Hello!", "", "1234567", "héllo", "a b", "€uro"]


def _flipped(bits: torch.Tensor, positions) -> torch.Tensor:
    out = bits.clone()
    for p in positions:
        out[p] = 1 - out[p]
    return out


@pytest.mark.parametrize("message", MESSAGES)
def test_round_trip(message):
    bits = encode_message(message)
    assert bits.shape == (SECRET_BITS,) and set(bits.tolist()) <= {0.0, 1.0}
    assert decode_bits(bits) == (message, 0)
    assert decode_bits(bits.bool()).message == message  # any 0/1 tensor, or logits > 0
    assert decode_bits(bits.tolist()).message == message


def test_layout_is_the_originals_bch():
    bits = encode_message("Hello!")
    data = _to_bytes([int(b) for b in bits[:56].tolist()])
    assert bytes(data) == b"Hello! "  # space padding, as the original
    ecc = _to_bytes([int(b) for b in bits[56:PACKET_BITS].tolist()])
    assert bytes(ecc) == bytes(_bch().encode(bytes(data)))
    assert (_bch().m, _bch().ecc_bits, BCH_T, BCH_POLY) == (7, 35, 5, 137)


def test_every_single_flip_is_corrected():
    bits = encode_message("Stamp")
    for p in range(SECRET_BITS):
        assert decode_bits(_flipped(bits, [p])) == ("Stamp", 1), p


def test_up_to_five_flips_anywhere_are_corrected():
    rng = random.Random(0)
    for _ in range(1500):
        message = "".join(rng.choice("abcXYZ019 !") for _ in range(rng.randint(0, MESSAGE_BYTES)))
        flips = rng.sample(range(SECRET_BITS), rng.randint(0, BCH_T))
        result = decode_bits(_flipped(encode_message(message), flips))
        assert result == (message.rstrip(" "), len(flips)), (message, flips)


def _bchlib_alone(bits: torch.Tensor) -> bytes | None:
    """What bchlib by itself would accept: its corrected data when it finds <= 5 errors."""
    packet = _to_bytes([int(b) for b in (bits[:PACKET_BITS] > 0.5).tolist()])
    data, ecc = packet[:MESSAGE_BYTES], packet[MESSAGE_BYTES:]
    bch = _bch()
    if bch.decode(bytes(data), bytes(ecc)) < 0:
        return None
    bch.correct(data, ecc)
    return bytes(data)


def test_more_than_five_flips_are_reported_uncorrectable():
    """Bounded-distance decoding cannot rule out every miscorrection (a word 6 flips
    from its packet may lie within 5 of another); bchlib alone accepts a wrong
    message for about 1 in 150 such words, the guards for about 1 in 20 000
    (measured over 20 000 words). Over these seeded trials: no wrong message
    at all from decode_bits, while bchlib alone accepts many."""
    rng = random.Random(1)
    accepted, bchlib_wrong = [], 0
    for _ in range(4000):
        message = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(MESSAGE_BYTES))
        bits = _flipped(encode_message(message), rng.sample(range(SECRET_BITS), rng.randint(BCH_T + 1, 30)))
        result = decode_bits(bits)
        if result.ok:  # more than 5 bits from its packet: any message accepted would be a wrong one
            accepted.append((message, result))
        else:
            assert result.corrected_bits is None
        raw = _bchlib_alone(bits)
        bchlib_wrong += raw is not None and raw != message.encode()
    assert accepted == []
    assert bchlib_wrong >= 5  # the guards are what stops these


def test_bad_messages_and_bits():
    with pytest.raises(ValueError, match="8 bytes in UTF-8; at most 7"):
        encode_message("12345678")
    with pytest.raises(ValueError, match="at most 7"):
        encode_message("ééééé")  # 5 characters, 10 bytes
    with pytest.raises(ValueError, match="control characters"):
        encode_message("a\nb")
    with pytest.raises(ValueError, match="needs 100 bits"):
        decode_bits(torch.zeros(96))
