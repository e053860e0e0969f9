"""Using a trained stego network: load it, hide a secret image, recover it.

A secret of another size than the cover is resized to the cover's size
(bicubic, antialiased), so ``extract`` returns it at the cover's size.
Images are (1, 3, H, W) float tensors in [0, 1], H and W at least
``MIN_IMAGE_SIZE``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ...train import load_trained
from .model import StegoINN
from .task import StegoTask

__all__ = ["load_stego", "resize_to", "embed", "extract"]


def load_stego(path: str | os.PathLike, device: torch.device | str = "cpu") -> StegoINN:
    """The trained network of a checkpoint file or run folder (its best checkpoint by
    ``psnr_mean``, else its latest), in eval mode on ``device``; the checkpoint's model
    config rebuilds the architecture. Failures are CheckpointError / RunDirError."""
    return load_trained(StegoTask, path, device).model


def resize_to(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (1, 3, h, w) image resized to (H, W): bicubic, antialiased, clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


@torch.no_grad()
def embed(model: StegoINN, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
    """The (1, 3, H, W) stego image of a cover (1, 3, H, W) hiding ``secret`` (resized
    to the cover's size when it differs), on the model's device."""
    device = next(model.parameters()).device
    secret = resize_to(secret, tuple(cover.shape[-2:]))
    return model.embed(cover.to(device), secret.to(device))


@torch.no_grad()
def extract(model: StegoINN, stego: torch.Tensor) -> torch.Tensor:
    """The (1, 3, H, W) secret recovered from a (1, 3, H, W) stego image."""
    return model.extract(stego.to(next(model.parameters()).device))
