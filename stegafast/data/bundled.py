"""The real photographs that scikit-image ships inside its package: test and demo
data that needs no download, and the default training data when no folder is
given."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from .crops import ImageCrops
from .image_io import convert, from_pil, to_pil

__all__ = [
    "BUNDLED_PHOTOS",
    "BUNDLED_SPLITS",
    "BUNDLED_TEXTURES",
    "BUNDLED_GRAY_SPLITS",
    "BUNDLED_COLLECTIONS",
    "load_bundled_photo",
    "BundledPhotos",
]

# Photographs (not synthetic drawings) that scikit-image bundles in every install.
BUNDLED_PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "motorcycle_left",
    "motorcycle_right",
    "moon",
    "coins",
    "page",
    "text",
    "hubble_deep_field",
)

# The fixed split. Validation holds two colour photos and two grayscale ones,
# a natural scene and a document in each; the two views of the stereo
# motorcycle pair (nearly the same picture) stay together in training so the
# validation photos are unseen.
BUNDLED_SPLITS = {
    "train": (
        "chelsea",
        "rocket",
        "immunohistochemistry",
        "motorcycle_left",
        "motorcycle_right",
        "moon",
        "coins",
        "text",
        "hubble_deep_field",
    ),
    "val": ("astronaut", "coffee", "camera", "page"),
}

# Grayscale texture photographs, also bundled: used by the grayscale collection only,
# so the photo splits above (and every family trained on them) stay as they were.
BUNDLED_TEXTURES = ("brick", "grass", "gravel")

# The grayscale collection (read with mode="L"): the photo split plus the textures,
# two of them for training and one held out, so a texture is seen in validation too.
BUNDLED_GRAY_SPLITS = {
    "train": (*BUNDLED_SPLITS["train"], "brick", "grass"),
    "val": (*BUNDLED_SPLITS["val"], "gravel"),
}

# collection name -> its splits (BundledPhotos(collection=...))
BUNDLED_COLLECTIONS = {"photos": BUNDLED_SPLITS, "grayscale": BUNDLED_GRAY_SPLITS}


def load_bundled_photo(name: str) -> torch.Tensor:
    """A bundled photograph (or texture) as a uint8 (C, H, W) tensor (C = 1 or 3)."""
    if name not in BUNDLED_PHOTOS + BUNDLED_TEXTURES:
        raise ValueError(
            f"unknown bundled photo {name!r}; choose one of {', '.join(BUNDLED_PHOTOS + BUNDLED_TEXTURES)}"
        )
    return torch.from_numpy(_bundled_array(name).copy()).permute(2, 0, 1).contiguous()


@functools.cache
def _bundled_array(name: str) -> np.ndarray:
    """(H, W, C) uint8, cached: the photos are small (about 6 MB together)."""
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        array = left if name.endswith("left") else right
    else:
        array = getattr(data, name)()
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    array = np.ascontiguousarray(array[..., :3])
    array.setflags(write=False)
    return array


class BundledPhotos(ImageCrops):
    """The bundled photographs of one split ("train", "val", or "all") as a
    dataset of float32 (C, H, W) crops in [0, 1], converted to ``mode`` "RGB"
    (grayscale photos gain three equal channels) or "L".

    ``collection`` "photos" (default) uses ``BUNDLED_SPLITS``; "grayscale" uses
    ``BUNDLED_GRAY_SPLITS`` (the same photos plus the bundled textures brick,
    grass and gravel), meant for ``mode="L"``.

    The training split is small (9 photos), so it is served as random crops:
    ``epoch_length`` (default 1000) items per epoch, item k a random crop of
    photo k % 9. The validation split gives the centre crop of each photo (plus
    ``eval_crops - 1`` fixed crops each). The smallest photo is "text", 172x448;
    crops larger than a photo upscale it (see ``ImageCrops``).
    """

    def __init__(
        self,
        split: str = "train",
        crop_size: int | Sequence[int] | None = 128,
        *,
        mode: str = "RGB",
        train: bool | None = None,
        epoch_length: int | None = 1000,
        hflip: bool = True,
        seed: int | None = None,
        eval_crops: int = 1,
        collection: str = "photos",
    ):
        """``train`` defaults to ``split == "train"`` (random crops there,
        deterministic ones for the other splits)."""
        if collection not in BUNDLED_COLLECTIONS:
            raise ValueError(f"unknown collection {collection!r}; choose one of {', '.join(BUNDLED_COLLECTIONS)}")
        splits = BUNDLED_COLLECTIONS[collection]
        if split not in (*splits, "all"):
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join((*splits, 'all'))}")
        super().__init__(
            crop_size,
            mode=mode,
            train=split == "train" if train is None else train,
            epoch_length=epoch_length,
            hflip=hflip,
            seed=seed,
            eval_crops=eval_crops,
        )
        self.split, self.collection = split, collection
        self.names = tuple(name for part in splits.values() for name in part) if split == "all" else splits[split]

    def image_count(self) -> int:
        """How many bundled photos this set holds."""
        return len(self.names)

    def image_name(self, index: int) -> str:
        """The scikit-image name of photo ``index`` (for example ``"astronaut"``)."""
        return self.names[index]

    def read_array(self, index: int) -> np.ndarray:
        """Photo ``index`` as uint8 (H, W, C) pixels in ``self.mode``."""
        return _bundled_pixels(self.names[index], self.mode)


@functools.cache
def _bundled_pixels(name: str, mode: str) -> np.ndarray:
    """A bundled photo as read-only uint8 (H, W, C) pixels in ``mode``, cached per process."""
    pixels = from_pil(convert(to_pil(_bundled_array(name)), mode))
    pixels.setflags(write=False)
    return pixels
