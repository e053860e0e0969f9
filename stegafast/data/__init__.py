"""Datasets and image I/O.

* ``ImageFolder``: crops of the PNG/JPEG images under a folder.
* ``BundledPhotos``: the default data, scikit-image's bundled photographs with a
  fixed train/validation split (``BUNDLED_SPLITS``); the grayscale collection
  adds the bundled textures (``BUNDLED_GRAY_SPLITS``).
* ``training_images`` / ``validation_images``: a family's datasets from the
  user's folders or the bundled photos.
* ``PairedImages``: (cover, secret) pairs of different images for steganography.
* ``load_image`` / ``save_image``: one image file <-> float (C, H, W) in [0, 1].
* ``DataError``: every problem with the user's files (one-line message).
* ``max_pixels`` / ``ImageTooLargeError`` (``stegafast.data.limits``): the largest image decoded.
"""

from ..errors import DataError
from .bundled import (
    BUNDLED_COLLECTIONS,
    BUNDLED_GRAY_SPLITS,
    BUNDLED_PHOTOS,
    BUNDLED_SPLITS,
    BUNDLED_TEXTURES,
    BundledPhotos,
    load_bundled_photo,
)
from .choice import training_images, validation_images
from .crops import ImageCrops
from .folder import ImageFolder
from .image_io import (
    IMAGE_EXTENSIONS,
    find_images,
    image_size,
    load_image,
    opened_image,
    save_image,
    write_pil_image,
)
from .limits import ImageTooLargeError, check_pixels, max_pixels
from .paired import PairedImages

__all__ = [
    "BUNDLED_COLLECTIONS",
    "BUNDLED_GRAY_SPLITS",
    "BUNDLED_PHOTOS",
    "BUNDLED_SPLITS",
    "BUNDLED_TEXTURES",
    "BundledPhotos",
    "DataError",
    "IMAGE_EXTENSIONS",
    "ImageCrops",
    "ImageTooLargeError",
    "ImageFolder",
    "PairedImages",
    "check_pixels",
    "opened_image",
    "find_images",
    "image_size",
    "load_bundled_photo",
    "load_image",
    "max_pixels",
    "save_image",
    "write_pil_image",
    "training_images",
    "validation_images",
]
