"""Reading and writing one-channel microscopy images (intensities, not colours).

Read: TIFF or PNG, 8- or 16-bit integers or 32-bit float, one channel (an RGB file is an
error: a microscope image has one). Integer files are returned as their stored values
(counts); ``as_unit`` scales them to [0, 1] by their type's maximum (8-bit: 255, 16-bit:
65535) for folders of clean specimens. Written: 32-bit float TIFF, so photon counts and
restored intensities keep their values (through ``stegafast.data.write_pil_image``, atomic).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...data import DataError, ImageTooLargeError, opened_image, write_pil_image
from ...errors import OutputError

__all__ = ["ImageFileError", "MICROSCOPY_EXTENSIONS", "find_microscopy_images", "read_intensity", "write_float_tiff"]

MICROSCOPY_EXTENSIONS = (".tif", ".tiff", ".png")
_INTEGER_MAX = {"L": 255.0, "I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0}


class ImageFileError(DataError):
    """A microscopy image that cannot be read or written."""


def find_microscopy_images(folder: str | os.PathLike) -> list[Path]:
    """The TIFF/PNG files directly in ``folder``, sorted by name; an ImageFileError for a
    missing folder or one without any."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageFileError(f"image folder {folder} does not exist or is not a folder")
    found = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in MICROSCOPY_EXTENSIONS and not p.name.startswith(".")
    )
    if not found:
        raise ImageFileError(f"no TIFF or PNG images ({', '.join(MICROSCOPY_EXTENSIONS)}) in {folder}")
    return found


def read_intensity(path: str | os.PathLike, as_unit: bool = False) -> np.ndarray:
    """A one-channel image as a float32 (H, W) array (see the module docstring)."""
    path = Path(path)
    try:
        with opened_image(path) as image:  # the pixel limit, checked on the header
            image.load()
            mode = image.mode
            array = np.asarray(image)
    except FileNotFoundError:
        raise ImageFileError(f"image {path} does not exist") from None
    except ImageTooLargeError:
        raise
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as exc:
        raise ImageFileError(f"cannot read image {path}: {exc}") from None
    if array.ndim != 2:
        raise ImageFileError(f"image {path} has {array.shape[-1]} channels ({mode}); a one-channel image is needed")
    values = array.astype(np.float32)
    if as_unit and mode in _INTEGER_MAX:
        values /= _INTEGER_MAX[mode]
    elif as_unit and mode == "I":  # 32-bit integers: scale by the image's own maximum
        values /= max(float(values.max()), 1.0)
    if not np.isfinite(values).all():
        raise ImageFileError(f"image {path} holds NaN or infinite values")
    return values


def write_float_tiff(values: np.ndarray, path: str | os.PathLike) -> Path:
    """An (H, W) array saved as a 32-bit float TIFF; a DataError when it cannot be written."""
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))  # mode "F"
    try:
        return write_pil_image(image, path, "TIFF")
    except OutputError as exc:
        raise ImageFileError(str(exc)) from None
