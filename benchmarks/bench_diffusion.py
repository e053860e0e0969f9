"""Training and sampling costs of the diffusion family (``stegafast.models.diffusion``).

Training: one optimiser step of ``DiffusionTask`` (noise, epsilon MSE, backward, Adam) of the
UNet on random pairs, for every combination of fp32 / bf16 autocast, gradient
checkpointing off / on, and the attention processor (stegafast's ``window_attention`` vs
diffusers' SDPA). Reported: step time, images/s, and memory: on CUDA the peak allocated;
on CPU (no allocator statistics) the bytes of activations saved for the backward during
the forward (unique storages, parameters excluded, counted through
``torch.autograd.graph.saved_tensors_hooks``): the memory checkpointing and bf16 change.

Sampling: seconds per image and quality (PSNR, SSIM, FRC resolution, through
``evaluate.evaluate``, the ``stegafast diffusion evaluate`` code) of DDIM 100, DDIM 50 and
DPM-Solver++ 25 (sigma_max capped at 80, the family's default, and diffusers' uncapped
default), unguided and PKL-guided DDIM 50, with the EMA model of ``--checkpoint``; without
one, timing only, on the untrained preset.

    python benchmarks/bench_diffusion.py --quick                       # CPU preset, 32x32, batch 2
    python benchmarks/bench_diffusion.py --preset cpu --size 64 --checkpoint runs/diffusion
    python benchmarks/bench_diffusion.py --device cuda --preset seed --size 128 --batch 8

Writes ``<out>/diffusion_<device>.json`` and ``.md`` (``diffusion_<device>_quick`` with --quick).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast.models.diffusion.config import GuidanceConfig, PhysicsConfig, UNetConfig  # noqa: E402
from stegafast.models.diffusion.evaluate import Method, evaluate, evaluation_pairs  # noqa: E402
from stegafast.models.diffusion.inference import load_diffusion  # noqa: E402
from stegafast.models.diffusion.losses import epsilon_loss, noised  # noqa: E402
from stegafast.models.diffusion.model import ConditionalUNet, WeightEMA  # noqa: E402
from stegafast.models.diffusion.schedulers import training_scheduler  # noqa: E402

TRAIN_COLUMNS = [
    ("amp", "AMP"),
    ("checkpointing", "grad. checkpointing"),
    ("attention", "attention"),
    ("median_ms", "step ms (median)"),
    ("images_per_s", "images/s"),
    ("memory_mib", "memory MiB"),
    ("memory_kind", "memory measured"),
]
SAMPLE_COLUMNS = [
    ("method", "sampler"),
    ("seconds_per_image", "s / image"),
    ("psnr", "PSNR dB"),
    ("ssim", "SSIM"),
    ("frc_px", "FRC px"),
]


def _activation_bytes(fn) -> int:
    """Bytes of the unique non-parameter tensors saved for backward while ``fn`` runs."""
    seen: dict[int, int] = {}

    def pack(t):
        if not isinstance(t, torch.nn.Parameter):
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def training_case(config: UNetConfig, amp: str, batch: int, size: int, device, steps: int, log) -> dict:
    torch.manual_seed(0)
    model = ConditionalUNet(config).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scheduler = training_scheduler()
    x0 = torch.randn(batch, 1, size, size, device=device)
    cond = torch.randn(batch, 1, size, size, device=device)

    def loss_of():
        t = torch.randint(0, 1000, (batch,), device=device)
        noise = torch.randn_like(x0)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            return epsilon_loss(model(noised(scheduler, x0, noise, t), t, cond), noise)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_of().backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timing = harness.time_steps(step, device, steps)
    if device.type == "cuda":
        memory, kind = torch.cuda.max_memory_allocated(device), "CUDA peak allocated"
    else:
        holder = []
        memory, kind = _activation_bytes(lambda: holder.append(loss_of())), "saved activations"
        holder.clear()
    row = {
        "amp": amp,
        "checkpointing": "on" if config.gradient_checkpointing else "off",
        "attention": config.attention,
        "batch": batch,
        "size": size,
        "memory_mib": memory / 2**20,
        "memory_kind": kind,
        **harness.step_row(timing, batch),
    }
    log(
        f"train amp={amp} ckpt={row['checkpointing']} attn={config.attention}: {timing.median_ms:.0f} ms/step, "
        f"{row['memory_mib']:.0f} MiB ({kind})"
    )
    return row


def sampling_rows(model, physics: PhysicsConfig, images: int, log) -> list[dict]:
    pairs = evaluation_pairs(physics, images)
    rows = []
    cases = [
        ("ddim100", [Method("ddim100", "ddim", 100)], 80.0),
        ("ddim50", [Method("ddim50", "ddim", 50)], 80.0),
        ("dpmpp25 (sigma_max 80)", [Method("dpmpp25", "dpmpp", 25)], 80.0),
        ("dpmpp25 (uncapped)", [Method("dpmpp25", "dpmpp", 25)], None),
        ("ddim50+pkl", [Method("ddim50+pkl", "ddim", 50, "pkl")], 80.0),
    ]
    for case, (label, methods, sigma_max) in enumerate(cases):
        result = evaluate(model, pairs, methods, guidance=GuidanceConfig(), dpm_sigma_max=sigma_max)
        for name, row in result["rows"].items():
            if name in ("widefield", "richardson_lucy") and case > 0:
                continue  # the baselines once
            rows.append({"method": label if name == methods[0].name else name, **row})
            log(f"sample {rows[-1]['method']}: {row['seconds_per_image']:.2f} s/image, PSNR {row['psnr']:.2f}")
    return rows


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per case (default 3)")
    parser.add_argument("--preset", choices=("cpu", "seed"), default="cpu", help="UNet widths (default cpu)")
    parser.add_argument("--size", type=int, help="image side (default 64, 32 with --quick)")
    parser.add_argument("--batch", type=int, help="training batch (default 4, 2 with --quick)")
    parser.add_argument("--checkpoint", help="a diffusion run or checkpoint: sampling quality with its EMA model")
    parser.add_argument("--images", type=int, default=4, help="evaluation images for sampling (default 4)")
    args = harness.parse_args(parser, argv)
    run = harness.BenchmarkRun(args, copy_bandwidth=False)
    device = args.device
    size = args.size or (32 if args.quick else 64)
    batch = args.batch or (2 if args.quick else 4)
    base = UNetConfig.cpu() if args.preset == "cpu" else UNetConfig()
    rows = []
    for amp in ("off", "bf16"):
        for checkpointing in (False, True):
            for attention in ("stegafast", "sdpa"):
                config = dataclasses.replace(base, gradient_checkpointing=checkpointing, attention=attention)
                rows.append(training_case(config, amp, batch, size, device, args.steps, run.log))
    if args.checkpoint:
        model, physics = load_diffusion(args.checkpoint, device)
        physics = dataclasses.replace(physics, image_size=size)
    else:
        model, physics = WeightEMA(ConditionalUNet(base), 0.999).to(device).eval(), PhysicsConfig(image_size=size)
    images = 1 if args.quick else args.images
    sample_rows = sampling_rows(model, physics, images, run.log)
    params = sum(p.numel() for p in ConditionalUNet(base).parameters())
    whose = f"EMA model of {args.checkpoint}." if args.checkpoint else "untrained model: timings only, no quality."
    notes = [
        f"Training: {args.preset} preset ({params:,} parameters), batch {batch}, {size}×{size}, random inputs; "
        f"median of {args.steps} timed steps after one warm-up. At this size the attention levels have "
        f"{(size // 2) ** 2} and {(size // 4) ** 2} tokens and the mid block {(size // 8) ** 2}: levels over 256 "
        "tokens run SDPA under either processor (see attention.py).",
        "CPU memory: activations saved for the backward (unique storages, no parameters); CUDA: peak allocated.",
        f"Sampling: {images} held-out synthetic image(s) of {size}×{size}, {whose}",
        "Sampling table: the first two rows are the baselines (widefield minus background, Richardson-Lucy 30 "
        "iterations) of the first case; s / image of the diffusion rows is the whole sampler.",
        f"{run.wall_note()} Few steps on a shared machine: the numbers are noisy.",
    ]
    notes.append("Sampling results:\n\n" + harness.markdown_table(sample_rows, SAMPLE_COLUMNS))
    return run.finish(
        "diffusion",
        rows,
        columns=TRAIN_COLUMNS,
        title="stegafast diffusion training and sampling",
        notes=notes,
        problems=[],
        extra={"sampling": sample_rows, "preset": args.preset, "size": size, "batch": batch},
    )


if __name__ == "__main__":
    sys.exit(main())
