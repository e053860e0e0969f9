"""The codec's training defaults that depend on the run: the learning-rate drop and the crop size.

* LR: one drop by ``LR_DROP_GAMMA`` (10x) at ``LR_DROP_AT`` (80%) of the steps.
  CompressAI's example trainer lowers the rate with ``ReduceLROnPlateau`` on the
  validation loss; the engine's schedules are pure functions of the step (so a
  resumed run follows exactly the same rates), so the codec uses the fixed form
  of the same idea: a single late 10x drop, as the published hyperprior and
  DCAE recipes schedule it, written as ``step,every=K,gamma=0.1`` with K at 80%
  of the run (the second drop would come after the last step).
* Crops: ``PREFERRED_CROP`` (256 px, the published codecs' training crops) when
  the data allow it, that is when the median training image is at least that
  large on its short side (smaller images are upscaled to fit, as every crop
  reader does). Otherwise the largest multiple of 64 that fits the median
  image, and the command says so.
"""

from __future__ import annotations

import os
import statistics

from ...data import BUNDLED_SPLITS, find_images, image_size, load_bundled_photo
from .config import MULTIPLE

__all__ = ["LR_DROP_AT", "LR_DROP_GAMMA", "PREFERRED_CROP", "default_lr_schedule", "default_crop_size"]

LR_DROP_AT = 0.8
LR_DROP_GAMMA = 0.1
PREFERRED_CROP = 256


def default_lr_schedule(steps: int) -> str:
    """The ``--lr-schedule`` spec of a codec run of ``steps`` steps: a 10x drop at 80% of them."""
    return f"step,every={max(1, round(LR_DROP_AT * steps))},gamma={LR_DROP_GAMMA}"


def _short_sides(data: str | os.PathLike | None) -> list[int]:
    """The short side of every training image: the bundled training photos, or the images under ``data``."""
    if data is None:
        return [min(load_bundled_photo(name).shape[-2:]) for name in BUNDLED_SPLITS["train"]]
    return [min(image_size(path)) for path in find_images(data)]


def default_crop_size(data: str | os.PathLike | None) -> tuple[int, str | None]:
    """(crop side, note): ``PREFERRED_CROP`` and None when the median training image's short side
    is at least that; else the largest multiple of 64 within it (at least 64) and a sentence saying why."""
    median = statistics.median(_short_sides(data))
    if median >= PREFERRED_CROP:
        return PREFERRED_CROP, None
    size = max(MULTIPLE, int(median) // MULTIPLE * MULTIPLE)
    note = (
        f"training on {size} px crops: the median training image is {median:g} px on its short side, "
        f"smaller than the {PREFERRED_CROP} px crops the codec prefers (--image-size sets them)"
    )
    return size, note
