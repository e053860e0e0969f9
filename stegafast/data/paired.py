"""Cover/secret pairs for steganography."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .crops import STREAM_PARTNER, ImageCrops, item_generator

__all__ = ["PairedImages"]


class PairedImages(Dataset):
    """Item k is ``(cover, secret)``: the cover is ``images[k]`` and the secret a
    crop of another image chosen at random (uniformly among the other images,
    never the cover's own image when there are at least two; with a single
    image the secret is an independent crop of it).

    Training datasets draw the secret's image and its random crop from a stream
    separate from the cover's, following ``images``' seed (deterministic given
    seed and epoch, whatever the DataLoader workers; torch's global generator
    without a seed). Evaluation datasets pair each item with a fixed image, seeded
    by (seed or 0, item), and use its centre crop, the same in every epoch.
    ``set_epoch`` sets the epoch of both.
    """

    def __init__(self, images: ImageCrops):
        if not isinstance(images, ImageCrops):
            raise TypeError(
                f"PairedImages needs an ImageCrops dataset (ImageFolder, BundledPhotos), got {type(images).__name__}"
            )
        self.images = images

    def set_epoch(self, epoch: int) -> None:
        """Pass ``epoch`` to the underlying images, so the random pairing and crops change each epoch."""
        self.images.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def partner(self, item: int) -> int:
        """The image whose crop is item ``item``'s secret (without a seed, a
        fresh random choice on every call)."""
        return self._draw_partner(item)[0]

    def _draw_partner(self, item: int) -> tuple[int, torch.Generator | None]:
        """The partner image and the generator, positioned after that choice,
        that then picks the secret's crop."""
        images = self.images
        if images.train:
            generator = item_generator(images.seed, images.epoch, STREAM_PARTNER, item)
        else:
            generator = item_generator(images.seed or 0, 0, STREAM_PARTNER, item)
        own, count = images.image_index(item), images.image_count()
        if count == 1:
            return own, generator
        other = int(torch.randint(count - 1, (), generator=generator))
        return other + (other >= own), generator

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        cover = self.images[item]  # also checks the range of item
        partner, generator = self._draw_partner(item)
        if self.images.train:
            return cover, self.images.random_crop(partner, generator)
        return cover, self.images.fixed_crop(partner)
