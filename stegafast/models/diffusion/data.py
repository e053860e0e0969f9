"""Training and evaluation pairs (clean specimen x, widefield measurement y), and their
intensity normalisation.

Normalisation (what the network sees): the reference code (PKL-DiffusionDenoising) maps
intensities per image from [0, max] to [-1, 1]. Here one scale per pair, taken from the
measurement, serves both images: ``s = max(y)`` (at least 1 photon), x_n = 2 x / s - 1 and
y_n = 2 y / s - 1. At inference only y is known, so the scale must come from y; sharing it
keeps x and y in the same photometric units, which is what the physics guidance needs
(``denormalise`` maps the prediction back to photons). Clean values above max(y) (a
deconvolved peak is brighter than its blur) land above 1: the sampler does not clip.

Datasets return ``(x_n, y_n, scale)``: (1, S, S) float32 tensors and a 0-d tensor.
* ``SyntheticPairs``: seeded specimens (``specimens``) measured through the forward model;
  item i is a pure function of (seed, i).
* ``CleanFolderPairs``: clean images from a folder (TIFF/PNG, 8/16-bit, scaled to [0, 1]
  then to ``peak_photons``), measured with a noise seeded by (seed, i); centre crops of
  ``image_size``.
* ``PairFolder``: ``clean/`` and ``widefield/`` subfolders of same-named files, in photons
  (what ``stegafast diffusion simulate`` writes).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .config import PhysicsConfig
from .imagefiles import ImageFileError, find_microscopy_images, read_intensity
from .physics import ForwardModel
from .specimens import specimen

__all__ = [
    "measurement_scale",
    "normalise",
    "denormalise",
    "SyntheticPairs",
    "CleanFolderPairs",
    "PairFolder",
    "pairs_from_folder",
]

MIN_SCALE = 1.0  # photons: an empty measurement still maps to a finite range


def measurement_scale(y: torch.Tensor) -> torch.Tensor:
    """The per-image scale s = max(y), at least MIN_SCALE: shape (...,) of (..., H, W)."""
    return y.flatten(-2).amax(-1).clamp_min(MIN_SCALE)


def normalise(image: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Photons -> network range: 2 image / s - 1 (``scale`` broadcast over H, W)."""
    return 2 * image / scale[..., None, None] - 1


def denormalise(image: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Network range -> photons: (image + 1) s / 2."""
    return (image + 1) * scale[..., None, None] / 2


def _pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    scale = measurement_scale(y)
    return normalise(x, scale)[None], normalise(y, scale)[None], scale


def _noise_generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, index, 1]).generate_state(1)[0]))


class SyntheticPairs(Dataset):
    """``length`` seeded (specimen, measurement) pairs of ``physics.image_size``."""

    def __init__(self, physics: PhysicsConfig, length: int, seed: int = 0, forward: ForwardModel | None = None):
        self.physics, self.length, self.seed = physics, length, seed
        self.forward = forward or ForwardModel.from_config(physics)

    def __len__(self) -> int:
        return self.length

    def clean(self, index: int) -> torch.Tensor:
        """The clean specimen of ``index`` in photons, (S, S)."""
        p = self.physics
        return torch.from_numpy(specimen(self.seed, index, p.image_size, p.specimen)) * p.peak_photons

    def measurement(self, index: int) -> torch.Tensor:
        """The noisy widefield image of ``index`` in photons, (S, S)."""
        return self.forward.measure(self.clean(index), _noise_generator(self.seed, index))

    def __getitem__(self, index: int):
        return _pair(self.clean(index), self.measurement(index))


def _centre_crop(image: np.ndarray, size: int, path: Path) -> np.ndarray:
    h, w = image.shape
    if h < size or w < size:
        raise ImageFileError(f"image {path} is {h}x{w}, smaller than the {size}x{size} crops")
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


class CleanFolderPairs(Dataset):
    """Clean images of a folder, measured through the forward model (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, physics: PhysicsConfig, seed: int = 0):
        self.files = find_microscopy_images(folder)
        self.physics, self.seed = physics, seed
        self.forward = ForwardModel.from_config(physics)

    def __len__(self) -> int:
        return len(self.files)

    def clean(self, index: int) -> torch.Tensor:
        """The clean image of ``index`` in photons: its centre ``image_size`` crop, float32 (S, S), scaled to [0, 1]
        (integer files by their type's maximum; float files as stored) then times ``peak_photons``. An ImageFileError
        when the file is unreadable, not one channel, or smaller than the crop."""
        path = self.files[index]
        unit = _centre_crop(read_intensity(path, as_unit=True), self.physics.image_size, path)
        return torch.from_numpy(np.ascontiguousarray(unit)) * self.physics.peak_photons

    def measurement(self, index: int) -> torch.Tensor:
        """The noisy widefield image of ``index`` in photons, (S, S)."""
        return self.forward.measure(self.clean(index), _noise_generator(self.seed, index))

    def __getitem__(self, index: int):
        return _pair(self.clean(index), self.measurement(index))


class PairFolder(Dataset):
    """Measured pairs: ``clean/NAME`` and ``widefield/NAME`` in photons, centre-cropped."""

    def __init__(self, folder: str | os.PathLike, image_size: int):
        folder = Path(folder)
        self.clean_files = find_microscopy_images(folder / "clean")
        widefield = {p.name: p for p in find_microscopy_images(folder / "widefield")}
        missing = [p.name for p in self.clean_files if p.name not in widefield]
        if missing:
            raise ImageFileError(f"{folder}: clean/{missing[0]} has no widefield/{missing[0]}")
        self.widefield_files = [widefield[p.name] for p in self.clean_files]
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.clean_files)

    def measurement(self, index: int) -> torch.Tensor:
        """The stored widefield image of ``index`` in photons, its centre ``image_size`` crop: float32 (S, S). An
        ImageFileError when the file is unreadable, not one channel, or smaller than the crop."""
        return self._read(self.widefield_files[index])

    def _read(self, path: Path) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(_centre_crop(read_intensity(path), self.image_size, path)))

    def clean(self, index: int) -> torch.Tensor:
        """The stored clean image of ``index`` in photons, its centre ``image_size`` crop: float32 (S, S). An
        ImageFileError when the file is unreadable, not one channel, or smaller than the crop."""
        return self._read(self.clean_files[index])

    def __getitem__(self, index: int):
        return _pair(self.clean(index), self.measurement(index))


def pairs_from_folder(folder: str | os.PathLike, physics: PhysicsConfig, seed: int = 0) -> Dataset:
    """A folder with ``clean/`` and ``widefield/`` is read as pairs; any other as clean images."""
    folder = Path(folder)
    if (folder / "clean").is_dir() and (folder / "widefield").is_dir():
        return PairFolder(folder, physics.image_size)
    return CleanFolderPairs(folder, physics, seed)
