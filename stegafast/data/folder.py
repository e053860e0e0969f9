"""A dataset of the images in a folder (and its subfolders)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .crops import ImageCrops
from .image_io import check_image_header, find_images, from_pil, open_image

__all__ = ["ImageFolder"]


class ImageFolder(ImageCrops):
    """Crops of every PNG/JPEG image under ``root`` (recursive, extensions
    case-insensitive, sorted by relative path; see ``find_images``), converted
    to ``mode`` "RGB" or "L" (see ``stegafast.data.image_io`` for the
    conversions) and served as float32 (C, H, W) tensors in [0, 1].

    Crop, flip, epoch and seed options are those of ``ImageCrops``. A missing
    folder or one without images raises DataError at construction; so does a
    file whose header is not an image when ``verify`` (default; set it False to
    skip opening every file up front in a very large folder). A file that fails
    to decode later raises DataError naming it.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        crop_size: int | Sequence[int] | None = None,
        *,
        mode: str = "RGB",
        train: bool = True,
        epoch_length: int | None = None,
        hflip: bool = True,
        seed: int | None = None,
        eval_crops: int = 1,
        verify: bool = True,
    ):
        super().__init__(
            crop_size, mode=mode, train=train, epoch_length=epoch_length, hflip=hflip, seed=seed, eval_crops=eval_crops
        )
        self.root = Path(root)
        self.paths = find_images(self.root)
        if verify:
            for path in self.paths:
                check_image_header(path)

    def image_count(self) -> int:
        """How many image files were found under the folder."""
        return len(self.paths)

    def image_name(self, index: int) -> str:
        """Image ``index``'s path relative to the folder, with ``/`` separators."""
        return self.paths[index].relative_to(self.root).as_posix()

    def read_array(self, index: int) -> np.ndarray:
        """Image ``index`` decoded to uint8 (H, W, C) pixels in ``self.mode``; raises ``ImageReadError`` if
        unreadable."""
        return from_pil(open_image(self.paths[index], self.mode))
