"""The .sfc file: one compressed image.

Layout (integers little-endian)::

    magic          4 bytes   b"\\x89SFC" (the high byte catches 7-bit transfers, as PNG's does)
    version        1 byte    FORMAT_VERSION
    model id      16 bytes   identifies the model that wrote it (``codec.model_identifier``)
    height, width  2 x uint32  the image size before padding
    stream count   1 byte
    stream lengths count x uint32
    streams        the bytes, back to back (for the codec: z, then y)
    checksum       uint32    CRC-32 of everything before it

``read_sfc`` checks the magic, the version, that the lengths account for every
byte, the checksum, the image size (``stegafast.data.limits``: an
``ImageTooLargeError`` above the pixel limit) and (given one) the model id, in
that order, and raises ``CodecFileError`` (a ValueError) naming the problem: a
truncated or corrupt file, or one written by another model (``ModelMismatchError``).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ...data.limits import check_pixels
from ...errors import UserError

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "MODEL_ID_BYTES",
    "MAX_SIDE",
    "SfcFile",
    "CodecFileError",
    "ModelMismatchError",
    "StreamDesyncError",
    "write_sfc",
    "read_sfc",
]

MAGIC = b"\x89SFC"
FORMAT_VERSION = 2  # 2: range-coder streams renormalise in 32-bit words
MODEL_ID_BYTES = 16
MAX_SIDE = 1 << 16  # a sanity bound: a checksummed header still should not ask for a gigapixel decode
_FIXED = struct.Struct(f"<4sB{MODEL_ID_BYTES}sIIB")
_CRC = struct.Struct("<I")


class CodecFileError(UserError, ValueError):
    """An .sfc file that cannot be decoded: not one, truncated, corrupt, or unsupported
    (a UserError: the command reports it as one line)."""


class ModelMismatchError(CodecFileError):
    """An intact .sfc file written by another model than the one asked to decode it."""


class StreamDesyncError(CodecFileError):
    """The decoder computed other CDF indexes than the encoder did (its float entropy
    model came out differently on this machine or backend): the range decoder would
    read the stream with the wrong tables and return a wrong image."""


@dataclass(frozen=True)
class SfcFile:
    """The contents of an .sfc file."""

    model_id: bytes
    height: int
    width: int
    streams: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.model_id, bytes) or len(self.model_id) != MODEL_ID_BYTES:
            raise ValueError(f"model_id must be {MODEL_ID_BYTES} bytes")
        for name, side in (("height", self.height), ("width", self.width)):
            if not 1 <= side <= MAX_SIDE:
                raise ValueError(f"{name} must be in [1, {MAX_SIDE}], got {side}")
        if len(self.streams) > 255:
            raise ValueError(f"at most 255 streams, got {len(self.streams)}")


def write_sfc(file: SfcFile) -> bytes:
    """The bytes of ``file``."""
    count = len(file.streams)
    body = (
        _FIXED.pack(MAGIC, FORMAT_VERSION, file.model_id, file.height, file.width, count)
        + struct.pack(f"<{count}I", *(len(s) for s in file.streams))
        + b"".join(file.streams)
    )
    return body + _CRC.pack(zlib.crc32(body))


def read_sfc(data: bytes, expect_model_id: bytes | None = None, *, name: str = "the file") -> SfcFile:
    """Parse and check .sfc bytes (see the module docstring); ``name`` goes into messages."""
    if not data or not MAGIC.startswith(bytes(data[: len(MAGIC)])):
        raise CodecFileError(f"{name} is not an .sfc file (wrong magic number)")
    if len(data) < _FIXED.size:
        raise CodecFileError(f"{name} is truncated ({len(data)} bytes, shorter than the header)")
    _, version, model_id, height, width, count = _FIXED.unpack_from(data)
    if version != FORMAT_VERSION:
        raise CodecFileError(f"{name} has format version {version}; this stegafast reads version {FORMAT_VERSION}")
    header = _FIXED.size + 4 * count
    if len(data) < header + _CRC.size:
        raise CodecFileError(f"{name} is truncated ({len(data)} bytes, shorter than its header)")
    lengths = struct.unpack_from(f"<{count}I", data, _FIXED.size)
    expected = header + sum(lengths) + _CRC.size
    if len(data) < expected:
        raise CodecFileError(f"{name} is truncated: {len(data)} bytes, its header announces {expected}")
    if len(data) > expected:
        raise CodecFileError(f"{name} is corrupt: {len(data)} bytes, its header announces {expected}")
    (checksum,) = _CRC.unpack_from(data, expected - _CRC.size)
    if zlib.crc32(data[: expected - _CRC.size]) != checksum:
        raise CodecFileError(f"{name} is corrupt (checksum mismatch)")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise CodecFileError(f"{name} announces an image of {height}x{width}, outside 1..{MAX_SIDE}")
    check_pixels(height, width, f"the image {name} announces")  # before a decoder allocates for it
    if expect_model_id is not None and model_id != expect_model_id:
        raise ModelMismatchError(
            f"{name} was written by another model (id {model_id.hex()}), not this "
            f"checkpoint's (id {expect_model_id.hex()})"
        )
    streams, pos = [], header
    for n in lengths:
        streams.append(bytes(data[pos : pos + n]))
        pos += n
    return SfcFile(model_id, height, width, tuple(streams))
