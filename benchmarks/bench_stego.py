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

import sys
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
            alpha = config.alpha_hid_start
            loss = stego_loss(cover, secret, stego, recovered, config, alpha, model.config.value_range).total
    loss.backward()
    optimizer.step()


def run_case(backend: str, amp: str, batch: int, size: int, device: torch.device, steps: int, log) -> dict:
    torch.manual_seed(0)
    model = StegoINN(StegoModelConfig()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-5)
    cover = (torch.rand(batch, 3, size, size, device=device) * 255).round() / 255
    secret = (torch.rand(batch, 3, size, size, device=device) * 255).round() / 255
    with use_backend(backend):
        timing = harness.time_steps(lambda: _training_step(model, optimizer, cover, secret, amp, device), device, steps)
    row = {"backend": backend, "amp": amp, "batch": batch, "size": f"{size}×{size}", **harness.step_row(timing, batch)}
    log(f"{backend:9s} amp={amp:4s}: {timing.median_ms:9.1f} ms/step, {row['images_per_s']:.2f} images/s")
    return row


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case after one warm-up (default 3)")
    args = harness.parse_args(parser, argv)
    run = harness.BenchmarkRun(args, copy_bandwidth=False)
    device = args.device
    batch, size = (2, 64) if args.quick else (8, 128)
    backends = ["native", "reference"] if _native.has_kernel("affine_coupling", device.type) else ["reference"]
    amps = ["off", "bf16"]
    rows = [run_case(b, a, batch, size, device, args.steps, run.log) for b in backends for a in amps]
    base = next(r for r in rows if r["backend"] == "reference" and r["amp"] == "off")["median_ms"]
    for row in rows:
        row["speedup"] = base / row["median_ms"]
    model = StegoINN(StegoModelConfig())
    params = sum(p.numel() for p in model.parameters())
    notes = [
        f"One training step = embed + extract + the seed's full loss + backward + Adam, default (seed) model: "
        f"8 StarINN blocks, hidden 128, glow subnets ({params:,} parameters); random images, batch {batch}, "
        f"{size}×{size}. Median of {args.steps} timed steps after one warm-up step "
        f"({'CUDA events' if device.type == 'cuda' else 'perf_counter'}); p10/p90 in the JSON.",
        "native: the stegafast C++ kernels (ILWT, affine coupling) where available; reference: their "
        "pure-PyTorch implementations. The convolutions are PyTorch's either way.",
        "AMP bf16: torch.autocast(bfloat16) around the model; the losses and the YCbCr composition in float32.",
        f"{run.wall_note()} Few steps on a shared machine: the numbers are noisy.",
    ]
    return run.finish(
        "stego",
        rows,
        columns=COLUMNS,
        title="stegafast stego training throughput",
        notes=notes,
        problems=[],
        extra={"steps": args.steps, "parameters": params},
    )


if __name__ == "__main__":
    sys.exit(main())
