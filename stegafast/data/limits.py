"""The largest image the package decodes: one pixel limit for image files and .sfc headers.

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
"""

from __future__ import annotations

import contextlib
import os
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
]

PIXELS_ENV = "STEGAFAST_MAX_PIXELS"
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
