"""Robustness of a trained StegaStamp model on held-out images (``stegafast stamp evaluate``
and ``benchmarks/bench_stamp.py``): ``evaluation_images`` and ``evaluate_robustness``.

Each image (an S x S crop, S the model's size) gets a random 7-character
message (letters and digits, seeded), BCH-encoded to 100 bits. The encoded
image is quantised to 8 bits, as a user would save it, then each distortion
of ``DISTORTIONS`` is applied to that 8-bit image, its result quantised to 8
bits again, and the decoder reads it. Reported per distortion: the bit
accuracy of the raw decoded bits, the BCH decode success rate (the message
recovered exactly) and the rate of wrong messages accepted (miscorrections);
and the PSNR/SSIM of the 8-bit encoded images against the originals; and a
``summary`` line of the clean and JPEG q75 numbers.

The distortions (fixed settings, seeded randomness):

* ``none``: the 8-bit encoded image itself;
* ``jpeg50`` / ``jpeg75``: real JPEG through Pillow (libjpeg, 4:2:0), saved to
  memory at that quality and decoded;
* ``blur``: Pillow's Gaussian blur of radius (sigma) 1 pixel;
* ``noise``: additive Gaussian noise of std 0.02;
* ``warp``: a perspective warp, every corner moved by up to 5 % of the side
  (uniform per coordinate), bilinear, black outside;
* ``resize``: down to half the side and back up, Pillow bilinear (antialiased).
"""

from __future__ import annotations

import io
import os
import random
import string
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageFilter

from ...data import BundledPhotos, ImageFolder
from ...metrics import PSNR_CAP_DB, psnr, quantize_uint8, ssim
from .bch import decode_bits, encode_message
from .inference import decode_logits, encode_images
from .model import StampDecoder, StampEncoder
from .noise import random_corner_shifts, warp

__all__ = ["DISTORTIONS", "evaluation_images", "evaluate_robustness", "random_message"]

NOISE_STD = 0.02
BLUR_SIGMA = 1.0
WARP_FRACTION = 0.05
_MESSAGE_CHARS = string.ascii_letters + string.digits


def _to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(quantize_uint8(image[0]).permute(1, 2, 0).cpu().numpy())


def _from_pil(pil: Image.Image, like: torch.Tensor) -> torch.Tensor:
    array = np.asarray(pil.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).to(like.device)


def _jpeg(quality: int) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    def apply(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        buffer = io.BytesIO()
        _to_pil(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return _from_pil(decoded, image)

    return apply


def _blur(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return _from_pil(_to_pil(image).filter(ImageFilter.GaussianBlur(BLUR_SIGMA)), image)


def _noise(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(image.shape, generator=generator).to(image.device)
    return (image + NOISE_STD * noise).clamp(0, 1)


def _warp(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    shifts = random_corner_shifts(image.shape[0], WARP_FRACTION, "cpu", generator=generator).to(image.device)
    return warp(image, shifts)


def _resize(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    pil = _to_pil(image)
    small = pil.resize((max(1, pil.width // 2), max(1, pil.height // 2)), Image.Resampling.BILINEAR)
    return _from_pil(small.resize(pil.size, Image.Resampling.BILINEAR), image)


DISTORTIONS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "none": lambda image, generator: image,
    "jpeg50": _jpeg(50),
    "jpeg75": _jpeg(75),
    "blur": _blur,
    "noise": _noise,
    "warp": _warp,
    "resize": _resize,
}


def evaluation_images(data: str | os.PathLike | None, size: int, crops: int) -> BundledPhotos | ImageFolder:
    """The held-out S x S crops (``crops`` per image: the centre one and crops-1 at fixed
    places) of the images under ``data``, or of the bundled validation photographs.
    A ValueError for crops < 1, a DataError for a bad folder."""
    if crops < 1:
        raise ValueError(f"crops must be at least 1, got {crops}")
    if data is None:
        return BundledPhotos("val", size, eval_crops=crops)
    return ImageFolder(data, size, train=False, eval_crops=crops)


def random_message(rng: random.Random) -> str:
    """Seven random letters and digits: a message that fills the 7 bytes."""
    return "".join(rng.choice(_MESSAGE_CHARS) for _ in range(7))


def _quantized(image: torch.Tensor) -> torch.Tensor:
    return quantize_uint8(image).float().div(255).to(image.device)


def evaluate_robustness(
    encoder: StampEncoder,
    decoder: StampDecoder,
    images: Sequence[torch.Tensor],
    device: torch.device,
    *,
    limit: int | None = None,
    seed: int = 0,
    distortions: Sequence[str] | None = None,
) -> dict:
    """Bit accuracy and BCH decode rates per distortion, and PSNR/SSIM of the
    8-bit encoded images, over ``images`` ((3, S, S) tensors in [0, 1]; at most
    ``limit``); see the module docstring. Deterministic for a given ``seed``."""
    names = list(DISTORTIONS) if distortions is None else list(distortions)
    unknown = sorted(set(names) - set(DISTORTIONS))
    if unknown:
        raise ValueError(f"unknown distortions {unknown}; known: {', '.join(DISTORTIONS)}")
    count = len(images) if limit is None else min(limit, len(images))
    if count < 1:
        raise ValueError("no images to evaluate")
    rng, generator = random.Random(seed), torch.Generator().manual_seed(seed)
    stats = {name: {"correct_bits": 0, "decoded": 0, "wrong": 0} for name in names}
    psnrs, ssims = [], []
    encoder.eval()
    decoder.eval()
    with torch.no_grad():
        for i in range(count):
            image = images[i].unsqueeze(0).to(device)
            message = random_message(rng)
            bits = encode_message(message).to(device)
            encoded, _ = encode_images(encoder, image, bits.unsqueeze(0))
            encoded = _quantized(encoded)
            psnrs.append(psnr(encoded, image, cap=PSNR_CAP_DB).item())
            ssims.append(ssim(encoded, image, reduction="none").item())
            for name in names:
                seen = _quantized(DISTORTIONS[name](encoded, generator))
                logits = decode_logits(decoder, seen)[0]
                stats[name]["correct_bits"] += int(((logits > 0).float() == bits).sum())
                result = decode_bits(logits > 0)
                stats[name]["decoded"] += result.message == message
                stats[name]["wrong"] += result.ok and result.message != message
    total_bits = count * bits.numel()
    rates = {
        name: {
            "bit_accuracy": s["correct_bits"] / total_bits,
            "decode_success": s["decoded"] / count,
            "wrong_message_rate": s["wrong"] / count,
        }
        for name, s in stats.items()
    }
    return {
        "summary": _summary(rates, sum(psnrs) / count),
        "images": count,
        "psnr": sum(psnrs) / count,
        "ssim": sum(ssims) / count,
        "psnr_cap_db": PSNR_CAP_DB,
        "distortions": rates,
    }


def _summary(rates: dict[str, dict[str, float]], mean_psnr: float) -> str:
    """One line of the headline numbers (``stegafast info`` shows it for a bundled checkpoint)."""
    parts = [
        f"{label} decoded {100 * rates[name]['decode_success']:.0f}% (bits {rates[name]['bit_accuracy']:.3f})"
        for name, label in (("none", "clean"), ("jpeg75", "JPEG q75"))
        if name in rates
    ]
    return ", ".join([*parts, f"PSNR {mean_psnr:.1f} dB"])
