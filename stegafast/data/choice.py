"""Which images a family trains and validates on, from the user's folders or the bundled photos."""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from .bundled import BundledPhotos
from .folder import ImageFolder

PathLike = str | os.PathLike


def training_images(
    data: PathLike | None, image_size, epoch_length: int = 1000, *, mode: str = "RGB", collection: str = "photos"
) -> Dataset:
    """Random crops (side or (H, W)) of the images under ``data``, or of the bundled training photos
    of ``collection`` when it is None, converted to ``mode``."""
    if data is None:
        return BundledPhotos("train", image_size, epoch_length=epoch_length, mode=mode, collection=collection)
    return ImageFolder(data, image_size, train=True, mode=mode)


def validation_images(
    val_data: PathLike | None,
    data: PathLike | None,
    image_size,
    eval_crops: int = 1,
    *,
    mode: str = "RGB",
    collection: str = "photos",
) -> Dataset | None:
    """Centre crops of the images under ``val_data``; without it, the bundled validation photos
    (``eval_crops`` fixed crops each) when training on the bundled set, and nothing when training
    on the user's own ``data`` (the bundled photos would say little about them). ``mode`` and
    ``collection`` as for ``training_images``."""
    if val_data is not None:
        return ImageFolder(val_data, image_size, train=False, mode=mode)
    if data is None:
        return BundledPhotos("val", image_size, eval_crops=eval_crops, mode=mode, collection=collection)
    return None
