"""Evaluating a trained stego network on 8-bit PNG files (``stegafast stego evaluate``).

Each cover/secret pair is embedded, the stego image saved as an 8-bit PNG and
read back, the secret extracted from it, saved and read back the same way:
what a user of ``embed`` and ``extract`` gets. Reported: hiding PSNR/SSIM
(stego vs cover) and recovery PSNR/SSIM (recovered vs secret), means over the
pairs with each PSNR capped at ``PSNR_CAP_DB``, and the bit error rate of the
recovered secrets' 8-bit planes pooled over all their bits.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ...data import BundledPhotos, ImageFolder, PairedImages, load_image, save_image
from ...metrics import PSNR_CAP_DB, bit_errors, psnr, ssim
from .config import MIN_IMAGE_SIZE
from .model import StegoINN

__all__ = ["evaluation_pairs", "evaluate"]


def evaluation_pairs(data: str | os.PathLike | None, image_size: int) -> PairedImages:
    """Cover/secret pairs of ``image_size`` centre crops: of the images under ``data``, or
    of the bundled validation photographs. A ValueError for a size under MIN_IMAGE_SIZE,
    a DataError for a bad folder."""
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image size must be at least {MIN_IMAGE_SIZE}, got {image_size}")
    if data is None:
        return PairedImages(BundledPhotos("val", image_size))
    return PairedImages(ImageFolder(data, image_size, train=False))


def _through_png(image: torch.Tensor, path: Path) -> torch.Tensor:
    """A (1, 3, H, W) image as saved to an 8-bit PNG and read back."""
    save_image(image[0].cpu(), path)
    return load_image(path, "RGB").unsqueeze(0).to(image.device)


def evaluate(model: StegoINN, pairs, device: torch.device, limit: int | None = None) -> dict:
    """The metrics of the module docstring over the first ``limit`` (default all) of
    ``pairs`` ((3, S, S) cover and secret tensors in [0, 1]), as a JSON-able dict:
    pairs, hiding_psnr, hiding_ssim, recovery_psnr, recovery_ssim, ber, bit_accuracy,
    psnr_cap_db."""
    count = len(pairs) if limit is None else min(limit, len(pairs))
    per_image: dict[str, list[float]] = {k: [] for k in ("hid_psnr", "hid_ssim", "rec_psnr", "rec_ssim")}
    wrong_bits = total_bits = 0
    with tempfile.TemporaryDirectory(prefix="stegafast-eval-") as tmp, torch.no_grad():
        for i in range(count):
            cover, secret = (t.unsqueeze(0).to(device) for t in pairs[i])
            stego = _through_png(model.embed(cover, secret), Path(tmp, f"stego-{i}.png"))
            recovered = _through_png(model.extract(stego), Path(tmp, f"secret-{i}.png"))
            per_image["hid_psnr"] += psnr(stego, cover, reduction="none", cap=PSNR_CAP_DB).tolist()
            per_image["hid_ssim"] += ssim(stego, cover, reduction="none").tolist()
            per_image["rec_psnr"] += psnr(recovered, secret, reduction="none", cap=PSNR_CAP_DB).tolist()
            per_image["rec_ssim"] += ssim(recovered, secret, reduction="none").tolist()
            errors = bit_errors(recovered, secret)
            wrong_bits += round(errors.ber.item() * errors.bits)
            total_bits += errors.bits
    means = {k: sum(v) / len(v) for k, v in per_image.items()}
    return {
        "pairs": count,
        "hiding_psnr": means["hid_psnr"],
        "hiding_ssim": means["hid_ssim"],
        "recovery_psnr": means["rec_psnr"],
        "recovery_ssim": means["rec_ssim"],
        "ber": wrong_bits / total_bits,
        "bit_accuracy": 1 - wrong_bits / total_bits,
        "psnr_cap_db": PSNR_CAP_DB,
    }
