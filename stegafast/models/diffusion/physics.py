"""The widefield microscope's forward model: y = Poisson(A x + B) (+ Gaussian read noise).

``A`` is convolution with the PSF, computed with FFTs as a *linear* (zero-padded)
convolution cropped to the image ("same" size): any image size works, small or larger
than the PSF, and nothing wraps around the borders. ``A^T`` (``adjoint``) is the exact
adjoint of that operator (correlation with the PSF, zero-padded, cropped the same way), so
``<A x, y> = <x, A^T y>`` holds to rounding. Images are batched (..., H, W) float tensors
in photons; the PSF is normalised to sum 1 so A preserves total flux away from the
borders.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ...errors import UserError
from .config import PhysicsConfig

__all__ = ["PSFError", "gaussian_psf", "load_psf", "psf_from_config", "ForwardModel"]


class PSFError(UserError):
    """A PSF file that cannot be used (unreadable, not 2-D, not positive)."""


def gaussian_psf(sigma: float = 2.0, size: int = 21, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A (size, size) isotropic Gaussian of standard deviation ``sigma`` pixels, centred on
    the middle pixel and normalised to sum 1 (``size`` odd)."""
    if not sigma > 0 or size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian_psf needs sigma > 0 and an odd size, got sigma={sigma}, size={size}")
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    psf = g[:, None] * g[None, :]
    return (psf / psf.sum()).to(dtype)


def load_psf(path: str | os.PathLike) -> torch.Tensor:
    """A PSF from a ``.npy`` array or a one-channel image (TIFF/PNG, 8/16-bit or float),
    normalised to sum 1; a PSFError when it is missing, not 2-D, negative or all zero."""
    from .imagefiles import ImageFileError, read_intensity  # one reader for every microscopy image

    path = Path(path)
    if not path.is_file():
        raise PSFError(f"PSF file {path} does not exist")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise PSFError(f"PSF file {path} is not a readable .npy array: {exc}") from None
    else:
        try:
            array = read_intensity(path)
        except ImageFileError as exc:
            raise PSFError(f"PSF file: {exc}") from None
    if array.ndim != 2 or min(array.shape) < 1:
        raise PSFError(f"PSF file {path} must hold a 2-D array, got shape {tuple(array.shape)}")
    psf = torch.as_tensor(np.asarray(array, dtype=np.float64))
    if not torch.isfinite(psf).all() or (psf < 0).any() or not psf.sum() > 0:
        raise PSFError(f"PSF file {path} must hold finite, non-negative values with a positive sum")
    return (psf / psf.sum()).float()


def psf_from_config(config: PhysicsConfig) -> torch.Tensor:
    """The PSF the config names: its file, else the Gaussian of ``psf_sigma`` / ``psf_size``."""
    return load_psf(config.psf_file) if config.psf_file else gaussian_psf(config.psf_sigma, config.psf_size)


class ForwardModel:
    """``A`` (PSF convolution), ``A^T``, the noiseless mean ``A x + B`` and the noisy
    measurement. ``psf``: (kh, kw), centred at (kh // 2, kw // 2); ``background``: photons
    per pixel; ``read_noise``: standard deviation of the Gaussian read noise (photons)."""

    def __init__(self, psf: torch.Tensor, background: float = 0.0, read_noise: float = 0.0):
        if psf.dim() != 2:
            raise ValueError(f"psf must be 2-D, got shape {tuple(psf.shape)}")
        self.psf = psf
        self.background = float(background)
        self.read_noise = float(read_noise)
        self._spectra: dict[tuple, torch.Tensor] = {}  # by (padded size, dtype, device)

    @classmethod
    def from_config(cls, config: PhysicsConfig, psf: torch.Tensor | None = None) -> ForwardModel:
        """The forward model of ``config``: its background and read noise, with ``psf`` when given, else the PSF it
        names (``psf_from_config``: its file or its Gaussian). A PSFError for an unusable PSF file, a ValueError for a
        ``psf`` that is not 2-D."""
        return cls(psf_from_config(config) if psf is None else psf, config.background, config.read_noise)

    def _padded(self, h: int, w: int) -> tuple[int, int]:
        kh, kw = self.psf.shape
        return h + kh - 1, w + kw - 1  # the full linear convolution: no wrap-around

    def _spectrum(self, h: int, w: int, ref: torch.Tensor) -> torch.Tensor:
        dtype = torch.float64 if ref.dtype == torch.float64 else torch.float32
        key = (h, w, dtype, ref.device)
        if key not in self._spectra:
            self._spectra[key] = torch.fft.rfft2(self.psf.to(ref.device, dtype), s=self._padded(h, w))
        return self._spectra[key]

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"images must be (..., H, W), got shape {tuple(x.shape)}")
        return x if x.dtype == torch.float64 else x.float()

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """A x: the PSF convolution of (..., H, W) images, cropped to (H, W)."""
        x = self._check(x)
        h, w = x.shape[-2:]
        kh, kw = self.psf.shape
        full = torch.fft.irfft2(
            torch.fft.rfft2(x, s=self._padded(h, w)) * self._spectrum(h, w, x), s=self._padded(h, w)
        )
        return full[..., kh // 2 : kh // 2 + h, kw // 2 : kw // 2 + w]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y: correlation with the PSF, the exact adjoint of ``apply``."""
        y = self._check(y)
        h, w = y.shape[-2:]
        kh, kw = self.psf.shape
        ph, pw = self._padded(h, w)
        embedded = torch.nn.functional.pad(y, (kw // 2, pw - w - kw // 2, kh // 2, ph - h - kh // 2))
        full = torch.fft.irfft2(torch.fft.rfft2(embedded) * self._spectrum(h, w, y).conj(), s=(ph, pw))
        return full[..., :h, :w]

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """A x + B: the expected photon count of each pixel."""
        return self.apply(x) + self.background

    def measure(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A noisy widefield image: Poisson(A x + B), plus N(0, read_noise^2) when set."""
        rate = self.mean(x).clamp_min(0)
        y = torch.poisson(rate, generator=generator)
        if self.read_noise > 0:
            y = y + self.read_noise * torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        return y
