"""Reading and writing single images with Pillow, and finding images in folders.

Conversions: every image is decoded to 8 bits per channel and converted to
``mode`` "RGB" or "L" (grayscale, ITU-R 601-2 luma). Grayscale files gain three
equal channels in RGB; alpha (RGBA, LA, palette transparency) is discarded,
keeping the stored colour values; 16-bit files are scaled to 8 bits
(round(v / 257)). The EXIF orientation tag is not applied: tensors hold the
pixel grid as stored, which is what other raw readers (and a steganography
decoder) see.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError, OutputError
from ..io import atomic_write
from .limits import check_pixels, pillow_unchecked

__all__ = [
    "IMAGE_EXTENSIONS",
    "MODES",
    "find_images",
    "open_image",
    "opened_image",
    "image_size",
    "load_image",
    "save_image",
    "write_pil_image",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
MODES = ("RGB", "L")
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError)


def check_mode(mode) -> str:
    """Return ``mode`` if it is one of ``MODES`` (Pillow mode names), else raise ValueError naming the choices."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return mode


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def find_images(root: str | os.PathLike) -> list[Path]:
    """Every PNG/JPEG file (extension case-insensitive) under ``root``,
    recursively, sorted by relative path so the order is the same on every
    machine. Hidden files and folders (names starting with ".", such as macOS's
    "._photo.jpg" resource forks) are skipped; symbolic links to folders are not
    followed. Raises DataError for a missing folder or one with no images."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found += [Path(folder, name) for name in files if _is_image_name(name)]
    if not found:
        raise DataError(f"no PNG or JPEG images ({', '.join('*' + e for e in IMAGE_EXTENSIONS)}) under {root}")
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def _to_8bit(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I"):  # 16-bit PNGs ("I;16", or "I" in older Pillow)
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.round(values / 257), 0, 255).astype(np.uint8))
    if image.mode == "P":
        # Through RGBA, so palette transparency is read (and then dropped) without a warning.
        return image.convert("RGBA")
    return image


def convert(image: Image.Image, mode: str) -> Image.Image:
    """An opened Pillow image decoded and converted to ``mode`` ("RGB" or "L")."""
    image = _to_8bit(image)
    return image if image.mode == mode else image.convert(mode)


def open_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """Decodes ``path`` into a Pillow image of ``mode``; DataError names the file
    when it is missing, not an image, truncated or otherwise unreadable, and
    ImageTooLargeError (a DataError) when it has more pixels than
    ``stegafast.data.limits.max_pixels()``, before its pixels are decoded."""
    check_mode(mode)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        with opened_image(path) as image:
            image.load()
            return convert(image, mode)
    except _DECODE_ERRORS as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


@contextlib.contextmanager
def opened_image(path: str | os.PathLike) -> Iterator[Image.Image]:
    """``Image.open(path)`` (the header only) whose size is within ``stegafast.data.limits``:
    an ImageTooLargeError before a pixel is decoded. Every reader of image files goes through it."""
    with pillow_unchecked():
        image = Image.open(path)
    with image:
        check_pixels(image.height, image.width, f"image {path}")
        yield image


def check_image_header(path: Path) -> None:
    """Reads only the header: cheap, and catches files that are not images at all
    or larger than the pixel limit (ImageTooLargeError)."""
    try:
        with opened_image(path):
            pass
    except _DECODE_ERRORS as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file from its header alone (nothing decoded); the
    errors of ``open_image``, ImageTooLargeError included."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        with opened_image(path) as image:
            return image.height, image.width
    except _DECODE_ERRORS as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def from_pil(image: Image.Image) -> np.ndarray:
    """A Pillow "RGB" or "L" image as uint8 (H, W, C) pixels (read-only)."""
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def to_pil(pixels: np.ndarray) -> Image.Image:
    """uint8 (H, W, C) pixels, C = 1, 3 or 4, as a Pillow "L", "RGB" or "RGBA" image."""
    return Image.fromarray(np.ascontiguousarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels))


def to_tensor(image: Image.Image) -> torch.Tensor:
    """A Pillow "RGB" or "L" image as a uint8 (C, H, W) tensor."""
    array = np.array(image, dtype=np.uint8)  # a writable copy: Pillow's buffer is read-only
    if array.ndim == 2:
        return torch.from_numpy(array).unsqueeze(0)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def load_image(path: str | os.PathLike, mode: str = "RGB") -> torch.Tensor:
    """One image file as a float32 (C, H, W) tensor in [0, 1]; C is 3 for
    ``mode="RGB"`` and 1 for ``mode="L"``. Raises DataError naming the file
    when it cannot be read (see the module docstring for the conversions)."""
    return to_tensor(open_image(path, mode)).float().div_(255)


def _check_savable(image) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"save_image: expected a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] not in (1, 3, 4):
        hint = " (one image, not a batch: pass batch[i])" if image.dim() == 4 else ""
        raise ValueError(
            f"save_image: expected a (C, H, W) image with C in 1, 3, 4 or an (H, W) one, "
            f"got shape {tuple(image.shape)}{hint}"
        )
    if image.shape[1] == 0 or image.shape[2] == 0:
        raise ValueError(f"save_image: empty image, shape {tuple(image.shape)}")
    if image.dtype != torch.uint8:
        if not image.is_floating_point():
            raise TypeError(f"save_image: expected a floating image in [0, 1] or uint8, got {image.dtype}")
        if not torch.isfinite(image).all():
            raise ValueError("save_image: the image holds NaN or infinite values")
    return image


def write_pil_image(image: Image.Image, path: str | os.PathLike, format: str = "PNG", **options) -> Path:
    """A Pillow image saved as ``format`` (Pillow's options, e.g. ``quality=``) through the
    atomic writer ``stegafast.io.atomic_write``: a failed write leaves any old file as it was
    and raises OutputError."""
    return atomic_write(path, lambda f: image.save(f, format=format, **options))


def save_image(image: torch.Tensor, path: str | os.PathLike) -> None:
    """Writes a (C, H, W) image (C = 1, 3 or 4; or (H, W)) as an 8-bit PNG.

    Floating values in [0, 1] are stored as ``round(x * 255)`` clamped to
    0..255; uint8 tensors are stored as they are. The path must end in ".png"
    (the file is lossless: a JPEG would destroy hidden data). The file is written
    atomically (``write_pil_image``): a failed write keeps any old file. Raises
    DataError when the file cannot be written (e.g. a missing folder, a full disk)."""
    image = _check_savable(image)
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DataError(f"save_image writes PNG files; {path} should end in .png")
    if image.dtype != torch.uint8:
        image = (image.detach().float() * 255).round().clamp(0, 255).to(torch.uint8)
    pil = to_pil(image.cpu().permute(1, 2, 0).numpy())
    try:
        write_pil_image(pil, path, "PNG")
    except OutputError as exc:
        raise DataError(str(exc)) from None
