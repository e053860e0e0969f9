"""Datasets and image I/O."""

from .bundled import BUNDLED_PHOTOS, load_bundled_photo

__all__ = ["BUNDLED_PHOTOS", "load_bundled_photo"]
