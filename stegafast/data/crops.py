"""Crops of a fixed list of images: the dataset behaviour shared by image
folders and the bundled photographs.

Training items are random crops with random horizontal flips; evaluation items
are deterministic (the centre crop of each image, plus optional fixed extra
crops). Images smaller than the crop are upscaled (bicubic, aspect ratio kept)
until the crop fits, never padded: padding would add flat borders that a
steganography model could learn to hide data in and that inflate PSNR/SSIM.

Randomness: with ``seed=None`` the random choices come from torch's global
generator, which a DataLoader seeds differently in every worker and every
epoch. With an int ``seed`` each item draws from its own generator seeded by
(seed, epoch, item), so the data depend only on the seed and the epoch set with
``set_epoch``, not on the number of workers or the order items are read in.
``set_epoch`` must be called before the epoch's DataLoader iterator is created
(with ``persistent_workers=True`` the workers keep the epoch they started with).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..config import is_int
from .image_io import check_mode, from_pil, to_pil

__all__ = ["ImageCrops", "item_generator", "check_crop_size"]

# Independent random streams of one item: its own crop, and the partner a
# paired dataset draws for it.
STREAM_CROP, STREAM_PARTNER, STREAM_EVAL = 0, 1, 2


def check_crop_size(crop_size) -> tuple[int, int] | None:
    """None, an int side or an (H, W) pair of positive ints -> None or (H, W)."""
    if crop_size is None:
        return None
    pair = (crop_size, crop_size) if is_int(crop_size) else crop_size
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or any(not is_int(v) or v < 1 for v in pair):
        raise ValueError(f"crop_size must be a positive int or an (H, W) pair of them, got {crop_size!r}")
    return int(pair[0]), int(pair[1])


def _check_count(name: str, value, minimum: int) -> int:
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def item_generator(seed: int | None, epoch: int, stream: int, index: int) -> torch.Generator | None:
    """The generator of one item's random stream, or None (torch's global one) without a seed."""
    if seed is None:
        return None
    state = np.random.SeedSequence([seed, epoch, stream, index]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _randint(high: int, generator: torch.Generator | None) -> int:
    """Uniform in [0, high)."""
    return int(torch.randint(high, (), generator=generator))


def upscale_to_fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image, enlarged (bicubic, aspect kept) just enough to hold an (H, W) crop."""
    h, w = size
    scale = max(h / image.height, w / image.width)
    if scale <= 1:
        return image
    new_size = (max(w, math.ceil(image.width * scale)), max(h, math.ceil(image.height * scale)))
    return image.resize(new_size, Image.Resampling.BICUBIC)


class ImageCrops(Dataset, abc.ABC):
    """Float32 (C, H, W) crops in [0, 1] of an ordered list of images.

    Subclasses name the images (``image_count``, ``image_name``) and decode one
    (``read_array``: uint8 (H, W, C) pixels already in ``mode``).

    crop_size:    int or (H, W); None serves whole images (batchable only when
                  they share a size).
    train:        True: random crops and flips, ``epoch_length`` items (default:
                  one per image), item k cropping image k % count. False: the
                  centre crop of each image, then ``eval_crops - 1`` more crops
                  per image at fixed positions; item k is crop k % eval_crops of
                  image k // eval_crops, identical in every epoch.
    hflip:        random horizontal flips (train only).
    seed:         see the module docstring.
    """

    def __init__(
        self,
        crop_size: int | Sequence[int] | None,
        *,
        mode: str = "RGB",
        train: bool = True,
        epoch_length: int | None = None,
        hflip: bool = True,
        seed: int | None = None,
        eval_crops: int = 1,
    ):
        self.crop_size = check_crop_size(crop_size)
        self.mode = check_mode(mode)
        self.train = bool(train)
        self.epoch_length = None if epoch_length is None else _check_count("epoch_length", epoch_length, 1)
        self.hflip = bool(hflip)
        self.seed = None if seed is None else _check_count("seed", seed, 0)
        self.eval_crops = _check_count("eval_crops", eval_crops, 1)
        if self.eval_crops > 1 and self.crop_size is None:
            raise ValueError("eval_crops > 1 needs a crop_size")
        self.epoch = 0

    # --- what a subclass provides -------------------------------------------

    @abc.abstractmethod
    def image_count(self) -> int:
        """How many images there are."""

    @abc.abstractmethod
    def image_name(self, index: int) -> str:
        """A name for image ``index`` (for messages and listings)."""

    @abc.abstractmethod
    def read_array(self, index: int) -> np.ndarray:
        """Image ``index`` decoded to uint8 (H, W, C) pixels in ``self.mode``."""

    # --- the dataset ----------------------------------------------------------

    @property
    def channels(self) -> int:
        return 3 if self.mode == "RGB" else 1

    def set_epoch(self, epoch: int) -> None:
        """Selects the epoch whose random crops a seeded dataset serves."""
        self.epoch = _check_count("epoch", epoch, 0)

    def __len__(self) -> int:
        if self.train:
            return self.epoch_length or self.image_count()
        return self.image_count() * self.eval_crops

    def image_index(self, item: int) -> int:
        """Which image item ``item`` crops."""
        return item % self.image_count() if self.train else item // self.eval_crops

    def __getitem__(self, item: int) -> torch.Tensor:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for a dataset of {len(self)}")
        if self.train:
            return self.random_crop(self.image_index(item), item_generator(self.seed, self.epoch, STREAM_CROP, item))
        return self.fixed_crop(self.image_index(item), item % self.eval_crops)

    def random_crop(self, image: int, generator: torch.Generator | None) -> torch.Tensor:
        """A random crop of image ``image``, flipped with probability 1/2 when
        ``hflip``, drawn from ``generator`` (None: torch's global generator)."""
        pixels = self._pixels(image)
        if self.crop_size is not None:
            (h, w), (ch, cw) = pixels.shape[:2], self.crop_size
            top, left = _randint(h - ch + 1, generator), _randint(w - cw + 1, generator)
            pixels = pixels[top : top + ch, left : left + cw]
        if self.hflip and _randint(2, generator):
            pixels = pixels[:, ::-1]
        return _to_float(pixels)

    def fixed_crop(self, image: int, crop: int = 0) -> torch.Tensor:
        """Crop ``crop`` of image ``image``: 0 is the centre, others sit at
        positions fixed by (seed or 0, image, crop), never flipped."""
        pixels = self._pixels(image)
        if self.crop_size is not None:
            (h, w), (ch, cw) = pixels.shape[:2], self.crop_size
            if crop == 0:
                top, left = (h - ch) // 2, (w - cw) // 2
            else:
                generator = item_generator(self.seed or 0, 0, STREAM_EVAL, image * self.eval_crops + crop)
                top, left = _randint(h - ch + 1, generator), _randint(w - cw + 1, generator)
            pixels = pixels[top : top + ch, left : left + cw]
        return _to_float(pixels)

    def _pixels(self, image: int) -> np.ndarray:
        """Image ``image`` as uint8 (H, W, C), upscaled when smaller than the crop."""
        pixels = self.read_array(image)
        if self.crop_size is None:
            return pixels
        h, w = self.crop_size
        if pixels.shape[0] >= h and pixels.shape[1] >= w:
            return pixels
        return from_pil(upscale_to_fit(to_pil(pixels), self.crop_size))


def _to_float(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) pixels (any strides) -> float32 (C, H, W) in [0, 1], contiguous."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).float().div_(255)
