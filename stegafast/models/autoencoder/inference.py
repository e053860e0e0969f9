"""Using a trained autoencoder: load it, reconstruct an image, encode it to its latent.

Images are float (1, H, W) grayscale tensors in [0, 1] of any size (1..8192 a side);
the model runs at the image's own size.
"""

from __future__ import annotations

import io
import os

import numpy as np
import torch

from ...io import write_bytes
from ...train import load_trained
from .model import AutoencoderCNN
from .task import AutoencoderTask

__all__ = ["load_autoencoder", "reconstruct", "encode", "write_latent"]


def load_autoencoder(path: str | os.PathLike, device: torch.device | str = "cpu") -> AutoencoderCNN:
    """The trained model of a checkpoint file or run folder (its best checkpoint by validation
    PSNR, else its latest), in eval mode on ``device``. Failures are CheckpointError /
    RunDirError."""
    return load_trained(AutoencoderTask, path, device).model.eval()


def _batch(model: AutoencoderCNN, image: torch.Tensor) -> torch.Tensor:
    if image.ndim != 3 or image.shape[0] != 1:
        raise ValueError(f"expected one grayscale image (1, H, W), got {tuple(image.shape)}")
    return image[None].to(next(model.parameters()).device)


@torch.no_grad()
def reconstruct(model: AutoencoderCNN, image: torch.Tensor) -> torch.Tensor:
    """The (1, H, W) reconstruction of a (1, H, W) image, on the CPU."""
    return model(_batch(model, image))[0].cpu()


@torch.no_grad()
def encode(model: AutoencoderCNN, image: torch.Tensor) -> np.ndarray:
    """The flat float32 latent (``model.latent_size``,) of a (1, H, W) image."""
    return model.encode(_batch(model, image))[0].float().cpu().numpy()


def write_latent(path: str | os.PathLike, latent: np.ndarray) -> None:
    """``latent`` as a .npy file (numpy's format), written atomically."""
    buffer = io.BytesIO()
    np.save(buffer, latent, allow_pickle=False)
    write_bytes(path, buffer.getvalue())
