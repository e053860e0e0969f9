"""The real photographs that scikit-image ships inside its package: test and demo
data that needs no download."""

from __future__ import annotations

import numpy as np
import torch

# Photographs (not synthetic drawings) that scikit-image bundles in every install.
BUNDLED_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "immunohistochemistry",
                  "motorcycle_left", "motorcycle_right", "moon", "coins", "page", "text", "hubble_deep_field")


def load_bundled_photo(name: str) -> torch.Tensor:
    """A bundled photograph as a uint8 (C, H, W) tensor (C = 1 or 3)."""
    if name not in BUNDLED_PHOTOS:
        raise ValueError(f"unknown bundled photo {name!r}; choose one of {', '.join(BUNDLED_PHOTOS)}")
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        array = left if name.endswith("left") else right
    else:
        array = getattr(data, name)()
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1).contiguous()
