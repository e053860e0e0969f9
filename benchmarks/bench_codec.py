"""Learned codec (``stegafast.models.codec``): training throughput, coding time, RD.

* Training: one step as ``CodecTask.training_step`` runs it (forward, the
  rate-distortion loss, backward, the auxiliary quantile loss, both Adam steps)
  of the default model (N=64, M=96) on random 8-bit-like crops, in float32
  and under bf16 autocast; images per second from the median step time.
* Coding: ``ImageCodec.compress`` and ``decompress`` of held-out bundled photos
  at full size (the model of ``--checkpoint``, else an untrained default model
  after ``update()``), and the share of that time spent in the range coder ops
  (``range_encode_batch`` / ``range_decode_batch``, timed around each call).
* RD (with ``--checkpoint``): the table of ``stegafast codec evaluate`` (the
  same ``evaluate`` function) against JPEG and WebP on the held-out bundled photos.

    python benchmarks/bench_codec.py --device cpu [--checkpoint runs/codec]
    python benchmarks/bench_codec.py --device cpu --quick      # batch 2, 64x64, one photo: a smoke test

Writes ``<out>/codec_<device>.json`` and ``.md`` (``codec_<device>_quick`` with --quick).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast.models.codec import CodecConfig, HyperpriorCodec, ImageCodec, load_codec  # noqa: E402
from stegafast.models.codec.evaluate import evaluate, evaluation_images, write_report  # noqa: E402
from stegafast.models.codec.losses import rate_distortion  # noqa: E402
from stegafast.models.codec.task import AUX_LR, MAIN_LR  # noqa: E402
from stegafast.ops import entropy as coder  # noqa: E402

COLUMNS = [
    ("case", "case"),
    ("detail", "setting"),
    ("median_ms", "median ms"),
    ("p90_ms", "p90 ms"),
    ("runs", "runs"),
    ("images_per_s", "images/s"),
    ("bpp", "bpp"),
    ("coder_ms", "range coder ms"),
    ("coder_share_pct", "range coder share %"),
]
RD_COLUMNS = [
    ("codec", "codec"),
    ("setting", "setting"),
    ("bpp", "bpp"),
    ("psnr", "PSNR dB"),
    ("ms_ssim", "MS-SSIM"),
    ("ms_ssim_db", "MS-SSIM dB"),
    ("seconds_per_image", "s/image"),
]


def _training_step(model, main, aux, x, amp: str, device: torch.device, lmbda: float = 0.01) -> None:
    main.zero_grad(set_to_none=True)
    aux.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
        out = model(x)
    rate_distortion(x, out, lmbda).loss.backward()
    model.aux_loss().backward()
    main.step()
    aux.step()


def training_row(amp: str, batch: int, size: int, device: torch.device, steps: int, log) -> dict:
    torch.manual_seed(0)
    model = HyperpriorCodec(CodecConfig()).to(device).train()
    main = torch.optim.Adam(model.main_parameters(), lr=MAIN_LR)
    aux = torch.optim.Adam(model.aux_parameters(), lr=AUX_LR)
    x = (torch.rand(batch, 3, size, size, device=device) * 255).round() / 255
    timing = harness.time_steps(lambda: _training_step(model, main, aux, x, amp, device), device, steps)
    row = {
        "case": "train step",
        "detail": f"amp {amp}, batch {batch}, {size}×{size}",
        "amp": amp,
        **harness.step_row(timing, batch),
    }
    log(f"train amp={amp}: {timing.median_ms:.0f} ms/step, {row['images_per_s']:.1f} images/s")
    return row


class _CoderClock:
    """Wall time spent inside the range coder ops while active."""

    def __init__(self):
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed

    @contextlib.contextmanager
    def active(self):
        with (
            mock.patch.object(coder, "range_encode_batch", self.wrap(coder.range_encode_batch)),
            mock.patch.object(coder, "range_decode_batch", self.wrap(coder.range_decode_batch)),
        ):
            yield self


def coding_rows(codec: ImageCodec, images, timing_kw: dict, log) -> list[dict]:
    rows = []
    for name, image in images:
        h, w = image.shape[-2:]
        data = codec.compress(image)
        calls = (("compress", lambda i=image: codec.compress(i)), ("decompress", lambda d=data: codec.decompress(d)))
        for case, fn in calls:
            timing = harness.time_callable(fn, "cpu", **timing_kw)
            clock = _CoderClock()
            with clock.active():  # one more call, to split its time
                start = time.perf_counter()
                fn()
                total = time.perf_counter() - start
            row = {
                "case": case,
                "detail": f"{name} {h}×{w}",
                **harness.step_row(timing, 1),
                "bpp": 8 * len(data) / (h * w),
                "coder_ms": clock.seconds * 1e3,
                "coder_share_pct": 100 * clock.seconds / total,
                "coder_calls": clock.calls,
            }
            log(f"{case} {name}: {timing.median_ms:.0f} ms, range coder {row['coder_share_pct']:.1f}%")
            rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per case after one warm-up")
    parser.add_argument("--checkpoint", help="a trained codec (file or run folder): code with it and add the RD table")
    args = harness.parse_args(parser, argv)
    run = harness.BenchmarkRun(args)
    device = args.device
    batch, size = (2, 64) if args.quick else (8, 128)
    rows = [training_row(amp, batch, size, device, args.steps, run.log) for amp in ("off", "bf16")]

    if args.checkpoint:
        codec = load_codec(args.checkpoint, torch.device("cpu"))
    else:
        model = HyperpriorCodec(CodecConfig()).eval()
        model.update()
        codec = ImageCodec(model)
    images = evaluation_images(limit=1 if args.quick else None)
    rows += coding_rows(codec, images, run.timing_kw, run.log)

    rd = None
    if args.checkpoint:
        rd = evaluate([(str(args.checkpoint), codec)], images, log=run.log)
        write_report(rd, args.out / f"codec_rd_{device.type}{'_quick' if args.quick else ''}")
    params = sum(p.numel() for p in codec.model.parameters())
    notes = [
        f"Training: default model (N=64, M=96, {sum(p.numel() for p in HyperpriorCodec().parameters()):,} "
        f"parameters), random images, batch {batch}, {size}×{size}; median of {args.steps} steps after one "
        "warm-up (forward, loss, backward, aux loss, both Adam steps).",
        f"Coding: {'the model of ' + str(args.checkpoint) if args.checkpoint else 'an untrained default model'} "
        f"({params:,} parameters) on the held-out bundled photos at full size, on CPU (the range coder is a "
        "CPU kernel). bpp is the .sfc file's"
        + ("." if args.checkpoint else " (an untrained model's bpp means nothing).")
        + " The range coder share is from one extra call with each op timed.",
        run.timing_note(),
        run.wall_note(),
    ]
    code = run.finish(
        "codec",
        rows,
        columns=COLUMNS,
        title="stegafast learned codec",
        notes=notes,
        problems=[],
        extra={"steps": args.steps, "checkpoint": args.checkpoint, "rd": rd},
    )
    if rd is not None:
        md = args.out / f"codec_{device.type}{'_quick' if args.quick else ''}.md"
        points = [{k: v for k, v in p.items() if k != "per_image"} for p in rd["points"]]
        md.write_text(
            md.read_text(encoding="utf-8")
            + "\n## Rate-distortion (held-out bundled photos)\n\n"
            + harness.markdown_table(points, RD_COLUMNS)
            + "\n",
            encoding="utf-8",
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
