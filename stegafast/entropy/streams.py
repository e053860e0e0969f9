"""Between the range coder's batch container and one byte string per stream.

:func:`stegafast.ops.range_encode_batch` codes many streams in parallel into one
container (layout in :mod:`stegafast.ops.entropy`: ``b"SFRC"``, a version byte,
uint32 S, S uint32 symbol counts, S uint32 byte lengths, the streams). The
entropy models hand out the bare streams, one per image, which is all a file
needs to store; :func:`join_streams` rebuilds the container to decode them in
parallel again.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import torch

from ..ops.entropy import CONTAINER_VERSION as _VERSION

__all__ = ["split_container", "join_streams"]

_MAGIC = b"SFRC"


def _header_size(count: int) -> int:
    return len(_MAGIC) + 1 + 4 + 8 * count


def split_container(container: torch.Tensor, stream_lengths: torch.Tensor) -> list[bytes]:
    """The streams of a ``range_encode_batch`` container, as byte strings."""
    data = container.cpu().numpy().tobytes()
    lengths = stream_lengths.tolist()
    pos = _header_size(len(lengths))
    streams = []
    for n in lengths:
        streams.append(data[pos : pos + n])
        pos += n
    if pos != len(data):
        raise ValueError(f"the range coder's container has {len(data)} bytes, its header accounts for {pos}")
    return streams


def join_streams(streams: Sequence[bytes], symbol_counts: Sequence[int]) -> torch.Tensor:
    """A ``range_decode_batch`` container (uint8) holding ``streams``, stream j
    decoding to ``symbol_counts[j]`` symbols."""
    if len(streams) != len(symbol_counts):
        raise ValueError(f"{len(streams)} streams but {len(symbol_counts)} symbol counts")
    for j, s in enumerate(streams):
        if not isinstance(s, (bytes, bytearray, memoryview)):
            raise TypeError(f"stream {j} must be bytes, got {type(s).__name__}")
    s = len(streams)
    header = _MAGIC + bytes([_VERSION]) + struct.pack(f"<I{s}I{s}I", s, *symbol_counts, *(len(x) for x in streams))
    data = header + b"".join(bytes(x) for x in streams)
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy())
