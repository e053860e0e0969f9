"""Training throughput of the stego model (``stegafast.models.stego``).

One training step as ``StegoTask.training_step`` runs it (embedding, extraction,
the seed's full loss, backward, Adam step) on random 8-bit-like images, for the
default (seed) model: 8 StarINN blocks of 128 hidden channels. Cases: the
native kernels vs the pure-PyTorch reference (``stegafast.use_backend``), each
in float32 and under bf16 autocast. Reported as images per second from the
median step time after warm-up.

    python benchmarks/bench_stego.py --device cpu              # batch 8, 128x128, 3 timed steps per case
    python benchmarks/bench_stego.py --device cpu --quick      # batch 2, 64x64: a smoke test
    python benchmarks/bench_stego.py --device cuda --steps 20

Writes ``<out>/stego_<device>.json`` and ``.md`` (``stego_<device>_quick`` with --quick).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast import _native, use_backend  # noqa: E402
from stegafast.models.stego import StegoINN, StegoLossConfig, StegoModelConfig  # noqa: E402
from stegafast.models.stego.losses import stego_loss  # noqa: E402

COLUMNS = [
    ("backend", "backend"),
    ("amp", "AMP"),
    ("batch", "B"),
    ("size", "H×W"),
    ("median_ms", "step ms (median)"),
    ("p90_ms", "p90 ms"),
    ("runs", "timed steps"),
    ("images_per_s", "images/s"),
    ("speedup", "speed-up vs reference fp32"),
]


def _training_step(model, optimizer, cover, secret, amp: str, device: torch.device):
    """One optimiser step of the stego task (hiding weight at its start value, no perturbation)."""
    config = StegoLossConfig()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
        stego, recovered = model(cover, secret)
        with torch.autocast(device.type, enabled=False):
            loss = stego_loss(cover, secret, stego, recovered, config, config.alpha_hid_start).total
    loss.backward()
    optimizer.step()


def run_case(backend: str, amp: str, batch: int, size: int, device: torch.device, steps: int, log) -> dict:
    torch.manual_seed(0)
    model = StegoINN(StegoModelConfig()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-5)
    cover = (torch.rand(batch, 3, size, size, device=device) * 255).round() / 255
    secret = (torch.rand(batch, 3, size, size, device=device) * 255).round() / 255
    with use_backend(backend):
        timing = harness.time_callable(
            lambda: _training_step(model, optimizer, cover, secret, amp, device), device,
            budget_s=0.0, min_runs=steps, max_runs=steps, warmup_runs=1, warmup_s=0.0, warmup_cap_s=0.0,
            max_case_s=None)
    row = {"backend": backend, "amp": amp, "batch": batch, "size": f"{size}×{size}",
           "median_ms": timing.median_ms, "p10_ms": timing.p10_ms, "p90_ms": timing.p90_ms, "min_ms": timing.min_ms,
           "runs": timing.runs, "warmup_runs": timing.warmup_runs,
           "images_per_s": batch / (timing.median_ms / 1e3)}
    log(f"{backend:9s} amp={amp:4s}: {timing.median_ms:9.1f} ms/step, {row['images_per_s']:.2f} images/s")
    return row


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case after one warm-up (default 3)")
    args = harness.parse_args(parser, argv)
    device = args.device
    batch, size = (2, 64) if args.quick else (8, 128)
    started = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    info = harness.machine_info(device)
    log(harness.machine_line(info))
    backends = ["native", "reference"] if _native.has_kernel("affine_coupling", device.type) else ["reference"]
    amps = ["off", "bf16"]
    rows = [run_case(b, a, batch, size, device, args.steps, log) for b in backends for a in amps]
    base = next(r for r in rows if r["backend"] == "reference" and r["amp"] == "off")["median_ms"]
    for row in rows:
        row["speedup"] = base / row["median_ms"]
    model = StegoINN(StegoModelConfig())
    params = sum(p.numel() for p in model.parameters())
    wall = time.perf_counter() - started
    notes = [
        f"One training step = embed + extract + the seed's full loss + backward + Adam, default (seed) model: "
        f"8 StarINN blocks, hidden 128, glow subnets ({params:,} parameters); random images, batch {batch}, "
        f"{size}×{size}. Median of {args.steps} timed steps after one warm-up step "
        f"({'CUDA events' if device.type == 'cuda' else 'perf_counter'}); p10/p90 in the JSON.",
        "native: the stegafast C++ kernels (ILWT, affine coupling) where available; reference: their "
        "pure-PyTorch implementations. The convolutions are PyTorch's either way.",
        "AMP bf16: torch.autocast(bfloat16) around the model; the losses and the YCbCr composition in float32.",
        f"Wall time {wall:.0f} s. Few steps on a shared machine: the numbers are noisy.",
    ]
    name = f"stego_{device.type}{'_quick' if args.quick else ''}"
    json_path, md_path = harness.write_results(
        name, rows, args.out, machine=info, columns=COLUMNS,
        title=f"stegafast stego training throughput ({device.type}{', quick' if args.quick else ''})",
        notes=notes,
        extra={"device": str(device), "quick": args.quick, "steps": args.steps, "parameters": params,
               "wall_s": wall,
               "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None})
    log(f"wrote {json_path} and {md_path}")
    print(md_path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
