"""Rate-distortion evaluation against JPEG and WebP on the same images.

Every codec writes real files into a temporary folder and bpp comes from their
sizes on disk (``8 * bytes / (H * W)``); the reconstructions are read back from
those files (for the learned codec: decoded from the .sfc file and rounded to
8 bits, as a saved PNG would be) and compared with the originals: PSNR (RGB,
8-bit), and MS-SSIM for images of at least 176 pixels a side (its five
scales need them). Each RD point is the mean over the images of bpp, PSNR and
MS-SSIM; MS-SSIM is also given in dB, ``-10 log10(1 - MS-SSIM)``. Each
learned codec's point also carries JPEG's PSNR at its bpp (interpolated
between the two JPEG qualities around it) and its gain over that.

``evaluate(codecs, images)`` returns the JSON-able table; ``write_report``
writes ``rd.json`` and ``rd.png`` (PSNR and MS-SSIM panels, ``plot.py``).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image

from ...data import BUNDLED_SPLITS, find_images, load_bundled_photo, load_image, write_pil_image
from ...io import write_bytes, write_json
from ...metrics import PSNR_CAP_DB, ms_ssim, psnr
from ...metrics.ssim import ms_ssim_min_size
from .inference import ImageCodec
from .plot import Panel, draw_rd_plot

__all__ = [
    "JPEG_QUALITIES",
    "WEBP_QUALITIES",
    "REPORT_FILES",
    "evaluation_images",
    "evaluate",
    "write_report",
    "jpeg_psnr_at",
    "compare_with_jpeg",
]

JPEG_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
WEBP_QUALITIES = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
REPORT_FILES = ("rd.json", "rd.png")  # what write_report puts into its folder

Images = Sequence[tuple[str, torch.Tensor]]


def evaluation_images(
    data: str | os.PathLike | None = None, limit: int | None = None
) -> list[tuple[str, torch.Tensor]]:
    """(name, float RGB (3, H, W)) pairs at full size: the images under ``data``, or
    the held-out bundled photographs (the validation split)."""
    if data is None:
        named = [(name, load_bundled_photo(name).float().div(255)) for name in BUNDLED_SPLITS["val"]]
        named = [(n, im.expand(3, -1, -1).contiguous() if im.shape[0] == 1 else im) for n, im in named]
    else:
        root = Path(data)
        named = [(p.relative_to(root).as_posix(), load_image(p, "RGB")) for p in find_images(root)]
    return named[:limit] if limit is not None else named


def _to_8bit(image: torch.Tensor) -> torch.Tensor:
    return (image.float().clamp(0, 1) * 255).round() / 255


def _quality(original: torch.Tensor, decoded: torch.Tensor) -> dict[str, float | None]:
    a, b = decoded[None].float(), original[None].float()
    value = float(psnr(a, b, cap=PSNR_CAP_DB))
    ms = None
    if min(a.shape[-2:]) >= ms_ssim_min_size():
        ms = float(ms_ssim(a, b))
    return {"psnr": value, "ms_ssim": ms}


def _pillow_round_trip(fmt: str, quality: int) -> Callable[[torch.Tensor, Path], torch.Tensor]:
    options = {"JPEG": {"quality": quality, "optimize": True}, "WEBP": {"quality": quality}}[fmt]

    def round_trip(image: torch.Tensor, path: Path) -> torch.Tensor:
        pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        write_pil_image(Image.fromarray(pixels, "RGB"), path, fmt, **options)
        return load_image(path, "RGB")

    return round_trip


def _codec_round_trip(codec: ImageCodec) -> Callable[[torch.Tensor, Path], torch.Tensor]:
    def round_trip(image: torch.Tensor, path: Path) -> torch.Tensor:
        write_bytes(path, codec.compress(image))
        return _to_8bit(codec.decompress(path.read_bytes(), name=str(path)).cpu())

    return round_trip


def _point(codec: str, setting: str, round_trip, images: Images, folder: Path, suffix: str) -> dict:
    """One RD point: every image through ``round_trip`` (which writes the file)."""
    per_image, seconds = [], 0.0
    for i, (name, image) in enumerate(images):
        path = folder / f"image-{i}{suffix}"  # settings may be paths: not in the name
        start = time.perf_counter()
        decoded = round_trip(image, path)
        seconds += time.perf_counter() - start
        h, w = image.shape[-2:]
        per_image.append(
            {
                "image": name,
                "bytes": path.stat().st_size,
                "bpp": 8 * path.stat().st_size / (h * w),
                **_quality(image, decoded),
            }
        )
        path.unlink()
    return {
        "codec": codec,
        "setting": setting,
        **_means(per_image),
        "seconds_per_image": seconds / len(images),
        "per_image": per_image,
    }


def _means(per_image: list[dict]) -> dict:
    mean = {k: sum(r[k] for r in per_image) / len(per_image) for k in ("bpp", "psnr")}
    scored = [r["ms_ssim"] for r in per_image if r["ms_ssim"] is not None]
    ms = sum(scored) / len(scored) if scored else None
    ms_db = -10 * math.log10(max(1 - ms, 1e-10)) if ms is not None else None
    return {**mean, "ms_ssim": ms, "ms_ssim_db": ms_db, "ms_ssim_images": len(scored)}


def evaluate(
    codecs: Sequence[tuple[str, ImageCodec]],
    images: Images,
    *,
    jpeg_qualities: Sequence[int] = JPEG_QUALITIES,
    webp_qualities: Sequence[int] = WEBP_QUALITIES,
    log: Callable[[str], None] | None = None,
) -> dict:
    """The RD table: one point per (label, codec) for the learned codec, one per
    quality for JPEG and WebP; all on ``images`` (name, (3, H, W) in [0, 1])."""
    if not images:
        raise ValueError("evaluate: no images")
    images = [(name, _to_8bit(image)) for name, image in images]  # the originals are 8-bit files
    points = []
    with tempfile.TemporaryDirectory(prefix="stegafast-rd-") as tmp:
        folder = Path(tmp)
        runs = [("stegafast", label, _codec_round_trip(codec), ".sfc") for label, codec in codecs]
        runs += [("JPEG", f"q{q}", _pillow_round_trip("JPEG", q), ".jpg") for q in jpeg_qualities]
        runs += [("WebP", f"q{q}", _pillow_round_trip("WEBP", q), ".webp") for q in webp_qualities]
        for codec, setting, round_trip, suffix in runs:
            point = _point(codec, setting, round_trip, images, folder, suffix)
            points.append(point)
            if log:
                log(f"{codec} {setting}: {point['bpp']:.3f} bpp, {point['psnr']:.2f} dB")
    compare_with_jpeg(points)
    return {
        "images": [{"name": n, "height": int(im.shape[-2]), "width": int(im.shape[-1])} for n, im in images],
        "metrics": "bpp from file sizes; PSNR on 8-bit RGB; MS-SSIM (5 scales) on images >= 176 px a side",
        "points": points,
        "summary": _summary(points),
    }


def jpeg_psnr_at(points: Sequence[dict], bpp: float) -> float | None:
    """JPEG's mean PSNR at ``bpp``, interpolated linearly between the two JPEG points around it;
    None when ``bpp`` lies outside the JPEG points' range (no JPEG quality gives that rate)."""
    curve = sorted((p["bpp"], p["psnr"]) for p in points if p["codec"] == "JPEG")
    for (b0, p0), (b1, p1) in zip(curve, curve[1:]):
        if b0 <= bpp <= b1:
            return p0 if b1 == b0 else p0 + (p1 - p0) * (bpp - b0) / (b1 - b0)
    return None


def compare_with_jpeg(points: list[dict]) -> None:
    """Give each learned codec's point ``jpeg_psnr_at_bpp`` (``jpeg_psnr_at`` its bpp) and
    ``psnr_gain_over_jpeg`` (its PSNR minus that; None where JPEG has no point at that rate)."""
    for point in points:
        if point["codec"] == "stegafast":
            jpeg = jpeg_psnr_at(points, point["bpp"])
            point["jpeg_psnr_at_bpp"] = jpeg
            point["psnr_gain_over_jpeg"] = None if jpeg is None else point["psnr"] - jpeg


def _summary(points: list[dict]) -> str | None:
    """One line of the first learned codec's numbers (what ``stegafast info`` shows for a bundled codec)."""
    point = next((p for p in points if p["codec"] == "stegafast"), None)
    if point is None:
        return None
    ms = f", MS-SSIM {point['ms_ssim']:.4f}" if point["ms_ssim"] is not None else ""
    jpeg = point.get("jpeg_psnr_at_bpp")
    versus = f"; JPEG {jpeg:.2f} dB at that bpp" if jpeg is not None else "; no JPEG quality gives that bpp"
    return f"{point['bpp']:.3f} bpp, {point['psnr']:.2f} dB PSNR{ms}{versus}"


def _series(table: dict, metric: str) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {}
    for p in table["points"]:
        if p[metric] is not None:
            series.setdefault(p["codec"], []).append((p["bpp"], p[metric]))
    return series


def write_report(table: dict, out: str | os.PathLike) -> tuple[Path, Path]:
    """``out/rd.json`` (the table, strict JSON) and ``out/rd.png`` (PSNR and MS-SSIM against
    bpp), each written atomically (``stegafast.io``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = (out / name for name in REPORT_FILES)
    write_json(json_path, table, sort_keys=False)
    panels = [
        Panel("PSNR (RGB)", "bits per pixel", "PSNR [dB]", _series(table, "psnr")),
        Panel("MS-SSIM", "bits per pixel", "MS-SSIM [dB]", _series(table, "ms_ssim_db")),
    ]
    draw_rd_plot(panels, png_path)
    return json_path, png_path
