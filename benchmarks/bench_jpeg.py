"""Benchmark of the differentiable JPEG (stegafast.nn.DiffJPEG, stegafast.ops.jpeg_quantize_blocks).

Two measures:

* fidelity: PSNR between the simulated round trip and Pillow's real JPEG
  (libjpeg) encode-decode, on bundled photographs, at qualities 10..95, 4:2:0
  subsampling, rounding "ste" (true rounding forward); for stegafast (native
  and reference) and, as the outside peer, kornia's
  ``kornia.enhance.jpeg_codec_differentiable`` when it is importable;
* speed: the training step of the whole codec, ``DiffJPEG(images)`` then
  ``torch.autograd.grad`` for a fixed random cotangent (rounding "cubic", the
  rounding kornia uses, so that the native backward kernel runs), native vs
  reference vs kornia; and the block operator alone (native vs reference).

Targets from the issue: fidelity at least kornia's; fwd+bwd at least 5x kornia's speed on CPU.

    python benchmarks/bench_jpeg.py --device cpu            # full run (about a minute on 2 cores)
    python benchmarks/bench_jpeg.py --device cpu --quick    # smoke test
    python benchmarks/bench_jpeg.py --device cuda

Writes ``<out>/jpeg_<device>.json`` and ``.md`` (``jpeg_<device>_quick`` with
--quick) and prints the markdown table.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast import NativeKernelUnavailable, use_backend  # noqa: E402
from stegafast.data import load_bundled_photo  # noqa: E402
from stegafast.nn import DiffJPEG  # noqa: E402
from stegafast.ops import jpeg_quality_table, jpeg_quantize_blocks  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
QUALITIES = (10, 25, 50, 75, 90, 95)
QUICK_PHOTOS, QUICK_QUALITIES = ("chelsea",), (10, 75)
SPEED_CASES = ((8, 128, 128), (16, 256, 256))
QUICK_SPEED_CASES = ((4, 64, 64),)
SPEED_QUALITY, SPEED_ROUNDING = 75, "cubic"

COLUMNS = [
    ("measure", "measure"),
    ("case", "case"),
    ("native", "stegafast native"),
    ("reference", "stegafast reference"),
    ("kornia", "kornia"),
    ("vs_kornia", "native vs kornia"),
]


def _kornia():
    """kornia's differentiable JPEG, or why it is unavailable."""
    try:
        from kornia.enhance import jpeg_codec_differentiable
    except Exception as exc:  # ImportError, or a kornia broken against this torch
        return None, f"not installed ({type(exc).__name__})"
    return jpeg_codec_differentiable, None


# --- fidelity ----------------------------------------------------------------------------------


def _pillow_round_trip(photo_u8: torch.Tensor, quality: int) -> torch.Tensor:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(photo_u8.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=quality, subsampling=2)
    decoded = np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded).permute(2, 0, 1).float()[None] / 255


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / torch.mean((a.float() - b.float()) ** 2)))


def _simulate(backend: str, x: torch.Tensor, quality: int):
    try:
        with use_backend(backend), torch.no_grad():
            return DiffJPEG(quality, "4:2:0", rounding="ste").to(x.device)(x)
    except NativeKernelUnavailable:
        return None


def fidelity_rows(run, photos, qualities, kornia) -> list[dict]:
    per_photo = {q: [] for q in qualities}
    for name in photos:
        photo = load_bundled_photo(name)[:3]
        x = (photo.float()[None] / 255).to(run.device)
        for q in qualities:
            pillow = _pillow_round_trip(photo, q).to(run.device)
            entry = {"photo": name, "size": f"{photo.shape[1]}×{photo.shape[2]}", "jpeg_psnr": _psnr(x, pillow)}
            for backend in ("native", "reference"):
                y = _simulate(backend, x, q)
                entry[backend] = None if y is None else _psnr(y, pillow)
            if kornia is not None:
                with torch.no_grad():
                    y = kornia(x, torch.tensor([float(q)], device=run.device))
                entry["kornia"] = _psnr(y, pillow)
            per_photo[q].append(entry)
        run.log(f"fidelity {name}: done")
    rows = []
    for q in qualities:
        entries = per_photo[q]
        row = {
            "measure": f"PSNR vs Pillow (dB), mean of {len(entries)} photos",
            "case": f"q = {q}",
            "quality": q,
            "photos": entries,
        }
        for impl in ("native", "reference", "kornia"):
            values = [e.get(impl) for e in entries]
            row[impl] = (
                (sum(values) / len(values))
                if all(v is not None for v in values)
                else ("not installed" if impl == "kornia" else "no native kernel")
            )
        if isinstance(row["native"], float) and isinstance(row["kornia"], float):
            row["vs_kornia"] = f"{row['native'] - row['kornia']:+.2f} dB"
        rows.append(row)
        run.log(
            f"fidelity q={q}: native {harness.format_value(row['native'])} dB, "
            f"kornia {harness.format_value(row['kornia'])} dB"
        )
    return rows


# --- speed -------------------------------------------------------------------------------------------


def _codec_step(model, x, cotangent):
    leaf = x.detach().requires_grad_()

    def step():
        return torch.autograd.grad(model(leaf), leaf, cotangent)

    return step


def _kornia_step(kornia, x, cotangent):
    leaf = x.detach().requires_grad_()
    quality = torch.full((x.shape[0],), float(SPEED_QUALITY), device=x.device)

    def step():
        return torch.autograd.grad(kornia(leaf, quality), leaf, cotangent)

    return step


def _blocks_step(x, table, cotangent):
    leaf = x.detach().requires_grad_()

    def step():
        return torch.autograd.grad(jpeg_quantize_blocks(leaf, table, SPEED_ROUNDING), leaf, cotangent)

    return step


def speed_rows(run, cases, kornia, kornia_status) -> list[dict]:
    rows = []
    for batch, h, w in cases:
        gen = torch.Generator().manual_seed(batch * h)
        x = torch.rand(batch, 3, h, w, generator=gen).to(run.device)
        cotangent = torch.randn(x.shape, generator=gen).to(run.device)
        model = DiffJPEG(SPEED_QUALITY, "4:2:0", rounding=SPEED_ROUNDING).to(run.device)
        step = _codec_step(model, x, cotangent)
        impls = {backend: run.measure(step, backend) for backend in ("native", "reference")}
        impls["kornia"] = (
            run.measure(_kornia_step(kornia, x, cotangent)) if kornia is not None else {"status": kornia_status}
        )
        row = {"measure": "DiffJPEG fwd+bwd (ms)", "case": f"B = {batch}, {h}×{w}", "B": batch, "H": h, "W": w}
        for impl in ("native", "reference", "kornia"):
            row[impl] = harness.median_or_status(impls[impl])
        row["timings"] = impls
        if isinstance(row["native"], float) and isinstance(row["kornia"], float):
            row["speedup_vs_kornia"] = row["kornia"] / row["native"]
            row["vs_kornia"] = f"{row['speedup_vs_kornia']:.1f}x faster"
        rows.append(row)
        run.log(
            f"codec fwd+bwd B={batch} {h}x{w}: native {harness.format_value(row['native'])} ms, "
            f"reference {harness.format_value(row['reference'])} ms, kornia {harness.format_value(row['kornia'])} ms"
        )

        blocks = x * 255
        table = jpeg_quality_table(SPEED_QUALITY, device=run.device)
        step = _blocks_step(blocks, table, cotangent)
        impls = {backend: run.measure(step, backend) for backend in ("native", "reference")}
        row = {
            "measure": "jpeg_quantize_blocks fwd+bwd (ms)",
            "case": f"B = {batch}, 3×{h}×{w}",
            "B": batch,
            "H": h,
            "W": w,
            "timings": impls,
            "native": harness.median_or_status(impls["native"]),
            "reference": harness.median_or_status(impls["reference"]),
            "kornia": "n/a",
        }
        rows.append(row)
        run.log(
            f"blocks fwd+bwd B={batch} {h}x{w}: native {harness.format_value(row['native'])} ms, "
            f"reference {harness.format_value(row['reference'])} ms"
        )
    return rows


def _target_notes(rows, device) -> list[str]:
    notes = []
    for r in rows:
        if r["measure"].startswith("PSNR") and isinstance(r["kornia"], float) and isinstance(r["native"], float):
            verdict = "met" if r["native"] >= r["kornia"] else "NOT met"
            notes.append(
                f"Target fidelity >= kornia's, {r['case']}: {r['native']:.2f} vs {r['kornia']:.2f} dB, {verdict}."
            )
        if device.type == "cpu" and "speedup_vs_kornia" in r:
            verdict = "met" if r["speedup_vs_kornia"] >= 5 else "NOT met"
            notes.append(f"Target fwd+bwd >= 5x kornia on CPU, {r['case']}: {r['speedup_vs_kornia']:.1f}x, {verdict}.")
    return notes


def _problems(rows) -> list[str]:
    out = []
    for r in rows:
        for impl in ("native", "reference", "kornia"):
            timing = (r.get("timings") or {}).get(impl) or {}
            if timing.get("status") == "error":
                out.append(f"ERROR in {impl}, {r['measure']} {r['case']}: {timing['detail']}")
    return out


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    args = harness.parse_args(parser, argv)
    run = harness.BenchmarkRun(args)
    kornia, kornia_status = _kornia()
    if kornia is None:
        run.log(f"kornia: {kornia_status}")
    photos, qualities = (QUICK_PHOTOS, QUICK_QUALITIES) if args.quick else (PHOTOS, QUALITIES)
    rows = fidelity_rows(run, photos, qualities, kornia)
    rows += speed_rows(run, QUICK_SPEED_CASES if args.quick else SPEED_CASES, kornia, kornia_status)
    kornia_version = None
    if kornia is not None:
        import kornia as kornia_module

        kornia_version = kornia_module.__version__
    notes = [
        f"{run.timing_note()} float32.",
        "Fidelity: PSNR (images in [0, 1]) between the simulated round trip and Pillow's decoded JPEG "
        f"(Pillow's libjpeg, quality q, 4:2:0), averaged over the bundled photos {', '.join(photos)}; "
        "stegafast with rounding 'ste' (true rounding forward); kornia's jpeg_codec_differentiable with "
        "its own rounding. Per-photo values, and the PSNR of the originals against Pillow, are in the JSON.",
        f"Speed: DiffJPEG(quality {SPEED_QUALITY}, 4:2:0, rounding {SPEED_ROUNDING!r}) forward, then "
        "torch.autograd.grad for a fixed random cotangent; kornia the same with its codec; "
        "jpeg_quantize_blocks fwd+bwd: the block operator alone on a 3-channel batch, one table.",
        f"kornia: {kornia_version or kornia_status}.",
        run.wall_note(),
        *_target_notes(rows, run.device),
    ]
    return run.finish(
        "jpeg",
        rows,
        columns=COLUMNS,
        title="stegafast differentiable JPEG benchmark",
        notes=notes,
        problems=_problems(rows),
        extra={"kornia": kornia_version or kornia_status},
    )


if __name__ == "__main__":
    sys.exit(main())
