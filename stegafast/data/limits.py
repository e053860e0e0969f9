"""How large an input may be: one pixel limit for image files and .sfc headers, and one
memory budget for what a model is asked to build or process.

A file's header states its size before any pixel is read, and the memory a
decoder needs grows with it: a PNG of a few hundred bytes or an .sfc file of a
kilobyte can announce a gigapixel image. Every image the package reads (through
``stegafast.data``: ``load_image``, the folders' datasets) and every .sfc header
is checked against :func:`max_pixels` before anything is allocated, and one over
it is an :class:`ImageTooLargeError` naming the size and the limit.

The limit is, first found:

* the one a command set (its ``--max-pixels`` option: :func:`set_max_pixels`);
* the environment variable ``STEGAFAST_MAX_PIXELS`` (a positive integer);
* Pillow's ``PIL.Image.MAX_IMAGE_PIXELS`` (89,478,485 pixels, about 9459 x 9459,
  unless a program changed it), Pillow's own decompression-bomb threshold.

Pillow's own check (a warning above its limit, an error above twice it) is
switched off while a header is read (:func:`pillow_unchecked`), so the limit
above is the one that applies, whether it is lower or higher than Pillow's.

The memory budget (:func:`memory_budget`, bytes) is what a command may plan to
use: ``STEGAFAST_MEMORY_BUDGET`` (bytes, or with a K, M, G or T suffix: "6G"),
else 80% of the machine's physical memory, or of the address space
``RLIMIT_AS`` leaves (``prlimit``, ``ulimit -v``) when that is less. Work
estimated above it (a checkpoint's weights, an image through a model) is
refused with the estimate in one line (:func:`over_budget` says so) instead of
ending in an allocator's traceback.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
from collections.abc import Iterator

from PIL import Image

from ..errors import DataError

__all__ = [
    "PIXELS_ENV",
    "PILLOW_DEFAULT_PIXELS",
    "ImageTooLargeError",
    "max_pixels",
    "set_max_pixels",
    "check_pixels",
    "pillow_unchecked",
    "MEMORY_ENV",
    "memory_budget",
    "over_budget",
    "format_bytes",
]

PIXELS_ENV = "STEGAFAST_MAX_PIXELS"
MEMORY_ENV = "STEGAFAST_MEMORY_BUDGET"
_BUDGET_SHARE = 0.8  # of the memory there is: the interpreter, torch and the OS need the rest
_SUFFIXES = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
PILLOW_DEFAULT_PIXELS = 89_478_485  # Pillow's MAX_IMAGE_PIXELS as it ships (1 GiB / 4 / 3), if a program unset it

_override: int | None = None
# Pillow's limit is a module global: swap it for one reader at a time
_pillow_lock = threading.Lock()


class ImageTooLargeError(DataError):
    """An image (a file, or the size an .sfc header announces) with more pixels than
    :func:`max_pixels` allows."""


def _positive_int(text: str, source: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{source} must be a positive integer (a number of pixels), got {text!r}")
    return value


def set_max_pixels(limit: int | None) -> None:
    """Set the limit for this process (a command's ``--max-pixels``); None goes back to
    the environment's or Pillow's."""
    global _override
    _override = None if limit is None else _positive_int(str(limit), "--max-pixels")


def max_pixels() -> int:
    """The largest number of pixels (height x width) an image may have (see the module docstring)."""
    if _override is not None:
        return _override
    text = os.environ.get(PIXELS_ENV)
    if text is not None and text.strip():
        return _positive_int(text.strip(), PIXELS_ENV)
    with _pillow_lock:  # not while pillow_unchecked holds it off
        pillow = Image.MAX_IMAGE_PIXELS
    return int(pillow) if pillow else PILLOW_DEFAULT_PIXELS


def check_pixels(height: int, width: int, what: str) -> None:
    """An ImageTooLargeError when ``what`` (the image's name) of height x width pixels is over the limit."""
    limit = max_pixels()
    if height * width > limit:
        raise ImageTooLargeError(
            f"{what} is {height}x{width} = {height * width:,} pixels, more than the limit of {limit:,} "
            f"(raise it with --max-pixels or {PIXELS_ENV})"
        )


@contextlib.contextmanager
def pillow_unchecked() -> Iterator[None]:
    """Pillow's own decompression-bomb check off, for reading a header that
    :func:`check_pixels` then checks."""
    with _pillow_lock:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _parse_bytes(text: str) -> int:
    body, unit = (text[:-1], _SUFFIXES[text[-1].upper()]) if text[-1:].upper() in _SUFFIXES else (text, 1)
    try:
        value = float(body) * unit
    except ValueError:
        value = 0
    if not 1 <= value < 2**63:
        raise DataError(f"{MEMORY_ENV} must be a positive number of bytes (e.g. 6G), got {text!r}")
    return int(value)


def _address_space_left() -> int | None:
    """What RLIMIT_AS leaves this process beyond what it maps now; None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        mapped = 0
    return max(soft - mapped, 0)


def memory_budget() -> int:
    """The bytes a command may plan to use (see the module docstring)."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if text:
        return _parse_bytes(text)
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    left = _address_space_left()
    return int(_BUDGET_SHARE * (physical if left is None else min(physical, left)))


def format_bytes(n: float) -> str:
    """``n`` bytes as "1.5 GiB" (or MiB, KiB, bytes)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def over_budget(estimate: float) -> str | None:
    """None when ``estimate`` bytes fit :func:`memory_budget`, else the end of a sentence saying
    they do not: "about 7.3 GiB, more than the memory budget of 4.0 GiB (STEGAFAST_MEMORY_BUDGET)"."""
    budget = memory_budget()
    if estimate <= budget:
        return None
    return f"about {format_bytes(estimate)}, more than the memory budget of {format_bytes(budget)} ({MEMORY_ENV})"
