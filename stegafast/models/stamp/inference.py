"""Using a trained StegaStamp model: load it (``load_stamp``), then encode and decode
images of any size with networks trained at one size S.

The choice (the original's ``encode_image.py`` for full-resolution output):

* encoding resizes the image to S x S (bilinear, antialiased), runs the
  encoder there, takes the residual of the clamped encoded image, upsamples it
  bilinearly to the image's own size and adds it to the full-resolution image
  (then clamps to [0, 1]); so the output keeps the input's size and detail,
  and an S x S image is encoded exactly as in training;
* decoding resizes the image to S x S the same way and runs the decoder.

A non-square image is stretched to the square and the residual stretched
back; the decoder sees the same stretch, so the bits survive it.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ...train import load_trained
from .model import StampDecoder, StampEncoder
from .task import StampTask

__all__ = ["load_stamp", "resize", "encode_images", "decode_logits"]


def load_stamp(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[StampEncoder, StampDecoder]:
    """The trained encoder and decoder of a checkpoint file or run folder (its best
    checkpoint by ``bit_acc_noised``, else its latest), in eval mode on ``device``; the
    critic is not loaded. Failures are CheckpointError / RunDirError."""
    models = load_trained(StampTask, path, device, names=("encoder", "decoder")).models
    return models["encoder"], models["decoder"]


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 3, h, w) images resized to (H, W): bilinear, antialiased when shrinking."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


def encode_images(encoder: StampEncoder, images: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) images in [0, 1] and (B, bits) secrets -> (encoded images in [0, 1],
    the residual added), both (B, 3, H, W); see the module docstring."""
    size = encoder.config.image_size
    small = resize(images, (size, size)).clamp(0, 1)
    residual = (small + encoder(bits.to(images.dtype), small)).clamp(0, 1) - small
    residual = resize(residual, tuple(images.shape[-2:]))
    encoded = (images + residual).clamp(0, 1)
    return encoded, encoded - images


def decode_logits(decoder: StampDecoder, images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) images in [0, 1] -> (B, bits) logits (positive: a one)."""
    size = decoder.config.image_size
    return decoder(resize(images, (size, size)).clamp(0, 1))
