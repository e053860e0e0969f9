"""What each of issue 14's StegaStamp fixes does on its own, at one short CPU budget.

Every variant trains from the same seed and data order for the same steps, then
is evaluated like ``stegafast stamp evaluate`` (8-bit encoded images, 8 crops of
each of the 4 held-out photographs, real JPEG q75 through Pillow). The variants
are the current defaults and the defaults with one fix reverted:

* ``current``: the defaults (round_only_at_0 JPEG, distortions scaled to the
  training size, he_normal encoder, the residual of ``conv9``);
* ``ste``: the training JPEG rounds with the straight-through estimator;
* ``per-pixel``: blur and noise in the training image's own pixels
  (``reference_size=0``), as at 400 px;
* ``torch-init``: the encoder keeps PyTorch's default initialisation;
* ``conv10``: the residual comes from the extra ``conv10`` layer;
* ``before``: all four reverted (the code before issue 14);
* ``gan`` and ``gan-no-grad-clip``: with the WGAN critic, its elementwise
  gradient clipping (+-0.25) on and off (the critic fix needs the critic).

The budget is the README's before/after one: 1000 steps of batch 8 at 64 px,
no critic (but for the ``gan`` pair), every ramp at a tenth (``--ramp-scale
0.1``) and 400 secret-only steps; the train.py loss weights.

    OMP_NUM_THREADS=1 python benchmarks/stamp_ablation.py --out runs/ablation --variants current ste
    OMP_NUM_THREADS=1 python benchmarks/stamp_ablation.py --out runs/ablation --variants per-pixel torch-init
    python benchmarks/stamp_ablation.py --out runs/ablation --report benchmarks/results/stamp_ablation_cpu.md

Each variant writes ``OUT/<variant>/ablation.json``; ``--report`` gathers every
one found into a Markdown table. Run variants in separate processes to use
more cores (one thread each).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from stegafast.models.stamp import StampLossConfig, StampModelConfig, StampNoiseConfig
from stegafast.models.stamp.evaluate import evaluate_robustness, evaluation_images
from stegafast.models.stamp.inference import load_stamp
from stegafast.models.stamp.task import StampTask
from stegafast.train import TrainConfig, train

RAMP_SCALE = 0.1
SECRET_ONLY_STEPS = 4000  # x RAMP_SCALE: 400
EVAL_CROPS = 8


class _TorchInitTask(StampTask):
    """The stamp task with the encoder at PyTorch's default initialisation (before issue 14)."""

    def build_models(self) -> dict[str, torch.nn.Module]:
        models = super().build_models()
        for layer in models["encoder"].modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                layer.reset_parameters()
        return models


@dataclasses.dataclass(frozen=True)
class Variant:
    """One ablation: what it reverts, and how its model, losses and noise differ from the defaults."""

    description: str
    model: dict = dataclasses.field(default_factory=dict)
    losses: dict = dataclasses.field(default_factory=dict)
    noise: dict = dataclasses.field(default_factory=dict)
    task: Callable[..., StampTask] = StampTask


_BEFORE = {"model": {"residual_layer": "conv10"}, "noise": {"jpeg_rounding": "ste", "reference_size": 0}}

VARIANTS: dict[str, Variant] = {
    "current": Variant("the defaults (all four fixes)"),
    "ste": Variant("JPEG rounding: straight-through instead of round_only_at_0", noise={"jpeg_rounding": "ste"}),
    "per-pixel": Variant("blur and noise in the 64 px image's own pixels", noise={"reference_size": 0}),
    "torch-init": Variant("encoder at PyTorch's default init instead of he_normal", task=_TorchInitTask),
    "conv10": Variant("residual from conv10 instead of conv9", model={"residual_layer": "conv10"}),
    "before": Variant("all four reverted (the code before issue 14)", task=_TorchInitTask, **_BEFORE),
    "gan": Variant("with the critic, its gradients clipped to +-0.25", losses={"gan": True}),
    "gan-no-grad-clip": Variant("with the critic, no gradient clipping", losses={"gan": True, "critic_grad_clip": 0.0}),
}


def build_task(variant: Variant, image_size: int) -> StampTask:
    """The variant's task at the ablation budget's ramps."""
    model = StampModelConfig(image_size=image_size, **variant.model)
    losses = StampLossConfig(**{"gan": False, "no_image_loss_steps": SECRET_ONLY_STEPS, **variant.losses})
    noise = StampNoiseConfig(**variant.noise)
    return variant.task(model, losses.scaled(RAMP_SCALE), noise.scaled(RAMP_SCALE))


def run_variant(name: str, out: Path, steps: int, batch_size: int, image_size: int, seed: int) -> dict:
    """Train one variant into ``out/name`` and evaluate its last checkpoint; the result is also written as
    ``out/name/ablation.json``."""
    variant, folder = VARIANTS[name], out / name
    config = TrainConfig(
        out=folder, steps=steps, batch_size=batch_size, seed=seed, val_every=500, save_every=500, progress=False
    )
    start = time.perf_counter()
    train(build_task(variant, image_size), config)
    wall = time.perf_counter() - start
    encoder, decoder = load_stamp(folder / "checkpoints" / f"step-{steps:08d}.pt")
    images = evaluation_images(None, image_size, EVAL_CROPS)
    metrics = evaluate_robustness(encoder, decoder, images, torch.device("cpu"), distortions=("none", "jpeg75"))
    result = {
        "variant": name,
        "description": variant.description,
        "steps": steps,
        "batch_size": batch_size,
        "image_size": image_size,
        "seed": seed,
        "train_wall_s": round(wall, 1),
        "psnr": metrics["psnr"],
        "ssim": metrics["ssim"],
        "distortions": metrics["distortions"],
    }
    (folder / "ablation.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(out: Path) -> str:
    """A Markdown table of every ``ablation.json`` under ``out``, in ``VARIANTS`` order."""
    found = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/ablation.json")}
    lines = [
        "| variant | what differs from the defaults | bits / decodes, clean | bits / decodes, JPEG q75 | PSNR (dB) "
        "| SSIM | train wall (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in (n for n in VARIANTS if n in found):
        r, d = found[name], found[name]["distortions"]
        cells = [f"{d[k]['bit_accuracy']:.3f} / {100 * d[k]['decode_success']:.0f}%" for k in ("none", "jpeg75")]
        lines.append(
            f"| `{name}` | {r['description']} | {cells[0]} | {cells[1]} | {r['psnr']:.1f} | {r['ssim']:.2f} "
            f"| {r['train_wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the variants' runs")
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=())
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, metavar="F.md", help="write the table of every finished variant")
    args = parser.parse_args()
    for name in args.variants:
        result = run_variant(name, args.out, args.steps, args.batch_size, args.image_size, args.seed)
        print(json.dumps({k: result[k] for k in ("variant", "psnr", "train_wall_s")}), flush=True)
    if args.report:
        table = report(args.out)
        args.report.write_text(table)
        print(table)


if __name__ == "__main__":
    main()
