"""The classical baseline: Richardson-Lucy deconvolution (scikit-image).

The measurement minus the background, clipped at 0, is deconvolved with the same PSF
(``skimage.restoration.richardson_lucy``, ``num_iter`` iterations, no clipping to [0, 1]:
the data are photons). scikit-image convolves with zero padding, the forward model's
boundary condition too.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.restoration import richardson_lucy as _skimage_rl

__all__ = ["richardson_lucy", "RL_ITERATIONS"]

RL_ITERATIONS = 30


def richardson_lucy(
    y: torch.Tensor, psf: torch.Tensor, background: float, num_iter: int = RL_ITERATIONS
) -> torch.Tensor:
    """The Richardson-Lucy estimate of one (H, W) widefield image in photons."""
    data = np.clip(y.detach().cpu().double().numpy() - background, 0, None)
    estimate = _skimage_rl(data, psf.detach().cpu().double().numpy(), num_iter=num_iter, clip=False)
    return torch.from_numpy(np.asarray(estimate, dtype=np.float32))
