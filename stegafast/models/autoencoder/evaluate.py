"""Reconstruction quality on held-out images: PSNR (8-bit, capped at PSNR_CAP_DB), SSIM
and MSE, per image and their means, as a JSON-able dict.

The images are centre crops at the model's ``input_size`` (the size it was trained at)
of the bundled grayscale validation photographs, or of the images of a folder (any
mode, converted to L; a smaller image is upscaled to hold the crop, see
``stegafast.data.ImageCrops``). Reconstructions are rounded to 8 bits, as a saved PNG.
"""

from __future__ import annotations

import os

import torch

from ...data import BundledPhotos, ImageFolder
from ...metrics import PSNR_CAP_DB, psnr, ssim
from .model import AutoencoderCNN

__all__ = ["evaluation_images", "evaluate", "SSIM_WINDOW"]

SSIM_WINDOW = 11

Images = list[tuple[str, torch.Tensor]]


def evaluation_images(data: str | os.PathLike | None, size: tuple[int, int], limit: int | None = None) -> Images:
    """(name, (1, H, W)) centre crops of ``size`` of the images under ``data`` or of the
    bundled grayscale validation photographs."""
    if data is None:
        dataset = BundledPhotos("val", size, mode="L", collection="grayscale")
    else:
        dataset = ImageFolder(data, size, train=False, mode="L")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return [(dataset.image_name(i), dataset[i]) for i in range(count)]


def _to_8bit(image: torch.Tensor) -> torch.Tensor:
    return (image.float().clamp(0, 1) * 255).round() / 255


@torch.no_grad()
def evaluate(model: AutoencoderCNN, images: Images) -> dict:
    """PSNR / SSIM / MSE of the model's reconstructions of ``images``; SSIM is None for an
    image under 11 pixels a side (its window)."""
    if not images:
        raise ValueError("evaluate: no images")
    device = next(model.parameters()).device
    rows = []
    for name, image in images:
        x = image[None].to(device)
        x_hat = _to_8bit(model(x)).float()
        x = x.float()
        small = min(x.shape[-2:]) < SSIM_WINDOW
        rows.append(
            {
                "image": name,
                "psnr": float(psnr(x_hat, x, cap=PSNR_CAP_DB)),
                "ssim": None if small else float(ssim(x_hat, x, window=SSIM_WINDOW)),
                "mse": float(torch.mean((x_hat - x) ** 2)),
            }
        )
    scored = [r["ssim"] for r in rows if r["ssim"] is not None]
    return {
        "images": len(rows),
        "size": list(images[0][1].shape[-2:]),
        "psnr": sum(r["psnr"] for r in rows) / len(rows),
        "ssim": sum(scored) / len(scored) if scored else None,
        "mse": sum(r["mse"] for r in rows) / len(rows),
        "metrics": f"8-bit reconstructions; PSNR capped at {PSNR_CAP_DB} dB; SSIM 11-tap Gaussian window",
        "per_image": rows,
    }
