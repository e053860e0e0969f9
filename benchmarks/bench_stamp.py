"""Training throughput and robustness of the StegaStamp family (``stegafast.models.stamp``).

Throughput: one full training step as ``StampTask`` runs it once every ramp is
complete (one WGAN critic update, then the generator update: encoder, the
noise pipeline at full strength with the differentiable JPEG, decoder, the
YUV L2 + secret BCE + critic losses, backward, Adam), on random 8-bit-like
images, in float32 and under bf16 autocast. Reported as images per second
from the median step time after warm-up.

Robustness (with ``--checkpoint``): ``stegafast stamp evaluate``'s own
function (``evaluate_robustness``) on the bundled validation photographs:
bit accuracy and BCH decode success under no distortion, real JPEG 50 and 75
(Pillow), Gaussian blur, noise, a perspective warp and a resize, and PSNR/SSIM.

    python benchmarks/bench_stamp.py --device cpu                 # batch 4, 64x64, 3 timed steps per case
    python benchmarks/bench_stamp.py --device cpu --quick         # batch 2, 32x32
    python benchmarks/bench_stamp.py --checkpoint runs/stamp --crops 8

Writes ``<out>/stamp_<device>.json`` and ``.md`` (``stamp_<device>_quick`` with --quick).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast.models.stamp import (  # noqa: E402
    NoisePipeline,
    StampCritic,
    StampDecoder,
    StampEncoder,
    StampLossConfig,
    StampModelConfig,
    StampNoiseConfig,
)
from stegafast.models.stamp.evaluate import evaluate_robustness, evaluation_images  # noqa: E402
from stegafast.models.stamp.inference import load_stamp  # noqa: E402
from stegafast.models.stamp.losses import critic_loss, generator_critic_loss, secret_loss, yuv_l2_loss  # noqa: E402
from stegafast.models.stamp.noise import full_strength  # noqa: E402
from stegafast.models.stamp.task import WeightClippedRMSprop, random_bits  # noqa: E402

COLUMNS = [
    ("amp", "AMP"),
    ("batch", "B"),
    ("size", "H×W"),
    ("median_ms", "step ms (median)"),
    ("p90_ms", "p90 ms"),
    ("runs", "timed steps"),
    ("images_per_s", "images/s"),
]
ROBUSTNESS_COLUMNS = [
    ("distortion", "distortion"),
    ("bit_accuracy", "bit accuracy"),
    ("decode_success", "BCH decode success"),
    ("wrong_message_rate", "wrong messages"),
]


class _Step:
    """The models, optimisers and losses of one full-strength training step."""

    def __init__(self, size: int, device: torch.device):
        config = StampModelConfig(image_size=size)
        self.encoder, self.decoder = StampEncoder(config).to(device), StampDecoder(config).to(device)
        self.critic = StampCritic(config).to(device)
        self.losses, noise = StampLossConfig(), StampNoiseConfig()
        self.noise, self.strengths = NoisePipeline(noise), full_strength(noise)
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        self.opt = torch.optim.Adam(params, lr=self.losses.lr)
        self.critic_opt = WeightClippedRMSprop(
            self.critic.parameters(), lr=self.losses.critic_lr, clip=self.losses.critic_clip
        )

    def __call__(self, image: torch.Tensor, amp: str) -> None:
        c, device = self.losses, image.device
        bits = random_bits(image.shape[0], 100, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            self.critic_opt.zero_grad(set_to_none=True)
            with torch.no_grad():
                encoded = image + self.encoder(bits, image)
            critic_loss(self.critic(image), self.critic(encoded)).backward()
            self.critic_opt.step()
            self.opt.zero_grad(set_to_none=True)
            encoded = image + self.encoder(bits, image)
            logits = self.decoder(self.noise(encoded.clamp(0, 1), self.strengths))
            with torch.autocast(device.type, enabled=False):
                loss = (
                    c.l2_scale * yuv_l2_loss(encoded, image, c.yuv_scales, c.l2_edge_gain)
                    + c.secret_scale * secret_loss(logits, bits)
                    + c.critic_scale * generator_critic_loss(self.critic(encoded))
                )
        loss.backward()
        self.opt.step()


def run_case(amp: str, batch: int, size: int, device: torch.device, steps: int, log) -> dict:
    torch.manual_seed(0)
    step = _Step(size, device)
    image = (torch.rand(batch, 3, size, size, device=device) * 255).round() / 255
    timing = harness.time_steps(lambda: step(image, amp), device, steps)
    row = {"amp": amp, "batch": batch, "size": f"{size}×{size}", **harness.step_row(timing, batch)}
    log(f"amp={amp:4s}: {timing.median_ms:9.1f} ms/step, {row['images_per_s']:.2f} images/s")
    return row


def robustness(checkpoint: str, device: torch.device, crops: int, limit: int | None, log) -> tuple[dict, list]:
    encoder, decoder = load_stamp(checkpoint, device)
    images = evaluation_images(None, encoder.config.image_size, crops)
    result = evaluate_robustness(encoder, decoder, images, device, limit=limit)
    log(f"robustness on {result['images']} crops: PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}")
    rows = [{"distortion": name, **values} for name, values in result["distortions"].items()]
    return result, rows


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case after one warm-up (default 3)")
    parser.add_argument("--checkpoint", help="a trained stamp checkpoint or run folder: also measure robustness")
    parser.add_argument("--crops", type=int, default=8, help="evaluation crops per validation photo (default 8)")
    parser.add_argument("--limit", type=int, help="evaluate at most this many crops")
    args = harness.parse_args(parser, argv)
    run = harness.BenchmarkRun(args, copy_bandwidth=False)
    device = args.device
    batch, size = (2, 32) if args.quick else (4, 64)
    rows = [run_case(amp, batch, size, device, args.steps, run.log) for amp in ("off", "bf16")]
    extra: dict = {"steps": args.steps}
    notes = [
        f"One training step = a WGAN critic update + the generator update with every loss and noise term at "
        f"full strength (differentiable JPEG included); random images, batch {batch}, {size}×{size}. Median of "
        f"{args.steps} timed steps after one warm-up ({'CUDA events' if device.type == 'cuda' else 'perf_counter'}).",
        "AMP bf16: torch.autocast(bfloat16) around the networks; the noise pipeline and the losses in float32.",
    ]
    if args.checkpoint:
        result, robust_rows = robustness(args.checkpoint, device, args.crops, args.limit, run.log)
        extra["robustness"] = result
        extra["checkpoint"] = args.checkpoint
        notes.append(
            f"Robustness of {args.checkpoint} on {result['images']} crops of the bundled validation "
            f"photographs: encoded PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}.\n\n"
            + harness.markdown_table(robust_rows, ROBUSTNESS_COLUMNS)
        )
    notes.append(f"{run.wall_note()} Few steps on a shared machine: the numbers are noisy.")
    return run.finish(
        "stamp",
        rows,
        columns=COLUMNS,
        title="stegafast stamp training throughput",
        notes=notes,
        problems=[],
        extra=extra,
    )


if __name__ == "__main__":
    sys.exit(main())
