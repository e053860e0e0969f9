"""The package's jobs on held-out bundled photographs, through its own commands, with their numbers.

    python3 scripts/demo_jobs.py [--out demo_out]

1. stego: hide one photo (coffee) in another (astronaut) and recover it: `stegafast stego embed` / `extract`.
2. stamp: watermark a photo with a short text, save it as a real JPEG at quality 75 (Pillow), and
   decode the text from the PNG and from the JPEG: `stegafast stamp encode` / `decode`.
3. codec: compress a photo to an .sfc file and back: `stegafast codec compress` / `decompress`, next to
   the JPEG of about the same size.

Each job uses its family's bundled checkpoint (stegafast/weights/<family>.pt, the commands' default);
a family whose checkpoint is not shipped is skipped with a line saying so. Every image goes to --out.
The photos are of scikit-image's held-out (validation) split, which no bundled model trained on.
Exits 0 when every job that ran succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from stegafast.cli import main as stegafast
from stegafast.data import load_bundled_photo, load_image, save_image, write_pil_image
from stegafast.metrics import psnr
from stegafast.train.bundled import bundled_path

CROP = 256  # the stego photos: centre crops, so hiding runs in seconds on a CPU
WATERMARK = "hello"  # StegaStamp carries up to 7 bytes
JPEG_QUALITY = 75


def _photo(name: str, crop: int | None = None) -> torch.Tensor:
    """A bundled photograph as float RGB (3, H, W) in [0, 1], optionally its centre ``crop`` x ``crop``."""
    image = load_bundled_photo(name).float().div(255)
    image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    if crop is not None:
        h, w = image.shape[-2:]
        top, left = (h - crop) // 2, (w - crop) // 2
        image = image[:, top : top + crop, left : left + crop]
    return image.contiguous()


def _run(*argv: str) -> tuple[int, str, float]:
    """``stegafast ARGV`` in this process: (exit status, what it printed, seconds); the command is shown."""
    print(f"  $ stegafast {shlex.join(argv)}")
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = stegafast(list(argv))
    seconds = time.perf_counter() - start
    for line in out.getvalue().strip().splitlines():
        print(f"    {line}")
    return status, out.getvalue(), seconds


def _psnr(a: Path | torch.Tensor, b: Path | torch.Tensor) -> float:
    """PSNR (dB) of two 8-bit RGB images (files or tensors in [0, 1])."""
    a, b = (load_image(x, "RGB") if isinstance(x, Path) else x for x in (a, b))
    return float(psnr(a[None], b[None]))


def _shipped(family: str) -> bool:
    path = bundled_path(family)
    if path.is_file():
        return True
    print(
        f"  skipped: no bundled {family} checkpoint ships with this installation ({path} is missing); "
        f"train one with scripts/bundled/{family}.sh, or pass --checkpoint to the {family} commands"
    )
    return False


def stego_job(out: Path) -> bool:
    print("\n== stego: hide a photo in another and recover it")
    if not _shipped("stego"):
        return True
    cover, secret = out / "stego_cover.png", out / "stego_secret.png"
    save_image(_photo("astronaut", CROP), cover)
    save_image(_photo("coffee", CROP), secret)
    hidden, recovered = out / "stego_hidden.png", out / "stego_recovered.png"
    status, _, embed_s = _run("stego", "embed", "--cover", str(cover), "--secret", str(secret), "--out", str(hidden))
    if status:
        return False
    status, _, extract_s = _run("stego", "extract", "--stego", str(hidden), "--out", str(recovered))
    if status:
        return False
    print(
        f"  {CROP}x{CROP}: hiding PSNR (stego vs cover) {_psnr(hidden, cover):.2f} dB, recovery PSNR (recovered vs "
        f"secret) {_psnr(recovered, secret):.2f} dB; embed {embed_s:.2f} s, extract {extract_s:.2f} s (8-bit PNGs)"
    )
    return True


def _bits_right(image: Path) -> tuple[int, int] | None:
    """(bits read right, bits) of the watermark in ``image``, by the bundled stamp decoder; None where this
    version's stamp API differs (the numbers are extra: the decode command above is the job)."""
    try:
        from stegafast.models.stamp.bch import encode_message
        from stegafast.models.stamp.inference import decode_logits, load_stamp
    except ImportError:
        return None
    _, decoder = load_stamp(bundled_path("stamp"))
    with torch.no_grad():
        read = decode_logits(decoder, load_image(image, "RGB")[None])[0] > 0
    sent = encode_message(WATERMARK).bool()
    return int((read == sent).sum()), sent.numel()


def stamp_job(out: Path) -> bool:
    print(f"\n== stamp: watermark a photo with {WATERMARK!r}, save it as JPEG q{JPEG_QUALITY}, decode it")
    if not _shipped("stamp"):
        return True
    photo = out / "stamp_photo.png"
    save_image(_photo("coffee"), photo)
    status, _, encode_s = _run("stamp", "encode", "--image", str(photo), "--secret", WATERMARK, "--out", str(out))
    if status:
        return False
    hidden = out / "stamp_photo_hidden.png"
    jpeg = out / f"stamp_photo_hidden_q{JPEG_QUALITY}.jpg"
    with Image.open(hidden) as image:
        write_pil_image(image.convert("RGB"), jpeg, "JPEG", quality=JPEG_QUALITY)
    print(f"  encoded PSNR (watermarked vs photo) {_psnr(hidden, photo):.2f} dB; encode {encode_s:.2f} s")
    found = []
    for image in (hidden, jpeg):
        status, printed, decode_s = _run("stamp", "decode", "--image", str(image))
        bits = _bits_right(image)
        shown = f", {bits[0]}/{bits[1]} bits right" if bits else ""
        found.append(
            f"{image.suffix[1:].upper()}: {'decoded' if status == 0 else 'not decoded'}{shown} ({decode_s:.2f} s)"
        )
        if status not in (0, 1):  # 1: decoded nothing (a result, not a failure of the command)
            return False
        if status == 0 and repr(WATERMARK) not in printed:
            found[-1] += " to another text"
    print(f"  {WATERMARK!r} ({len(WATERMARK.encode())} bytes, BCH-protected) from the " + "; ".join(found))
    return True


def _jpeg_of_size(image: torch.Tensor, budget: int, path: Path) -> tuple[int, int] | None:
    """(quality, bytes) of the best JPEG of ``image`` within ``budget`` bytes (written to ``path``), or None."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    best = None
    for quality in range(1, 96):
        write_pil_image(Image.fromarray(pixels, "RGB"), path, "JPEG", quality=quality, optimize=True)
        size = path.stat().st_size
        if size > budget:
            break
        best = (quality, size)
    if best is not None:
        write_pil_image(Image.fromarray(pixels, "RGB"), path, "JPEG", quality=best[0], optimize=True)
    return best


def codec_job(out: Path) -> bool:
    print("\n== codec: compress a photo to an .sfc file and back")
    if not _shipped("codec"):
        return True
    photo, sfc, decoded = out / "codec_photo.png", out / "codec_photo.sfc", out / "codec_decoded.png"
    image = _photo("astronaut")
    save_image(image, photo)
    status, _, compress_s = _run("codec", "compress", str(photo), "-o", str(sfc))
    if status:
        return False
    status, _, decompress_s = _run("codec", "decompress", str(sfc), "-o", str(decoded))
    if status:
        return False
    h, w = image.shape[-2:]
    size = sfc.stat().st_size
    print(
        f"  {h}x{w}: {size} bytes, {8 * size / (h * w):.3f} bpp, PSNR {_psnr(decoded, photo):.2f} dB; "
        f"compress {compress_s:.2f} s, decompress {decompress_s:.2f} s"
    )
    jpeg = out / "codec_jpeg_same_size.jpg"
    match = _jpeg_of_size(image, size, jpeg)
    if match is None:
        print(f"  JPEG: no quality fits in {size} bytes (JPEG's smallest file of this photo is larger)")
    else:
        quality, jpeg_size = match
        print(
            f"  JPEG q{quality} in {jpeg_size} bytes ({8 * jpeg_size / (h * w):.3f} bpp): "
            f"PSNR {_psnr(load_image(jpeg, 'RGB'), image):.2f} dB"
        )
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo_out", help="folder for every image (default: %(default)s)")
    out = Path(p.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)
    results = [job(out) for job in (stego_job, stamp_job, codec_job)]
    print(f"\nimages in {out}/")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
