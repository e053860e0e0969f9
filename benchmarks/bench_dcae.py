"""DCAE codec (``stegafast.models.codec``, ``--model dcae``): size, training step, attention share, coding.

* Size and training step: parameters, and forward + backward of the rate-distortion
  loss (plus the auxiliary loss, no optimiser step) at batch 1, 256x256, of the
  ``paper`` configuration and the ``small`` CPU preset.
* Window attention share: one forward + backward under ``torch.profiler``, with the
  native window-attention op and with the pure-PyTorch reference. Forward: the time
  inside ``window_attention`` calls (wrapped in a ``record_function`` scope);
  backward: the autograd nodes of the ops created inside those scopes (matched by
  sequence number). Shares are of the profiled wall time.
* Coding: ``ImageCodec.compress`` and ``decompress`` of the 512x512 ``astronaut``
  photo (held out), split into the range coder ops (timed around each call) and the
  rest (the networks), with the model of ``--checkpoint`` or an untrained ``small``
  model (``--paper-coding`` adds an untrained ``paper`` model).

    python benchmarks/bench_dcae.py --device cpu [--checkpoint runs/dcae] [--paper-coding]
    python benchmarks/bench_dcae.py --device cpu --quick    # small only, 64x64: a smoke test

Writes ``<out>/dcae_<device>.json`` and ``.md`` (``dcae_<device>_quick`` with --quick).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from unittest import mock

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_codec  # noqa: E402
import harness  # noqa: E402

import stegafast.nn.window_attention as window_module  # noqa: E402
from stegafast import use_backend  # noqa: E402
from stegafast.data import load_bundled_photo  # noqa: E402
from stegafast.models.codec import ImageCodec, load_codec  # noqa: E402
from stegafast.models.codec.config import DCAE_PRESETS  # noqa: E402
from stegafast.models.codec.dcae import DcaeCodec  # noqa: E402
from stegafast.models.codec.losses import rate_distortion  # noqa: E402

COLUMNS = [
    ("case", "case"),
    ("detail", "setting"),
    ("params_m", "params (M)"),
    ("median_ms", "median ms"),
    ("runs", "runs"),
    ("attention_fwd_pct", "attention fwd %"),
    ("attention_bwd_pct", "attention bwd %"),
    ("attention_pct", "attention total %"),
    ("bpp", "bpp"),
    ("coder_ms", "range coder ms"),
    ("coder_share_pct", "range coder share %"),
]
SCOPE = "stegafast.window_attention"


def _loss_backward(model, x) -> None:
    model.zero_grad(set_to_none=True)
    (rate_distortion(x, model(x), 0.013).loss + model.aux_loss()).backward()


def _batch(size: int, device) -> torch.Tensor:
    return (torch.rand(1, 3, size, size, device=device) * 255).round() / 255


def step_row(preset: str, size: int, device, steps: int, log) -> dict:
    torch.manual_seed(0)
    model = DcaeCodec(DCAE_PRESETS[preset]).to(device).train()
    x = _batch(size, device)
    timing = harness.time_steps(lambda: _loss_backward(model, x), device, steps)
    params = sum(p.numel() for p in model.parameters())
    log(f"{preset}: {params / 1e6:.1f}M parameters, fwd+bwd {timing.median_ms:.0f} ms")
    return {
        "case": "fwd+bwd",
        "detail": f"{preset}, batch 1, {size}×{size}",
        "params_m": params / 1e6,
        **harness.step_row(timing, 1),
    }


def _scoped(fn):
    def attention(*args, **kwargs):
        with record_function(SCOPE):
            return fn(*args, **kwargs)

    return attention


def _attention_times(events) -> tuple[float, float]:
    """(forward, backward) microseconds of window attention: the forward inside the
    scopes, the backward the autograd nodes of the ops those scopes created (matched by
    sequence number), for the native op and the reference's many ops alike."""
    scopes = [e for e in events if e.name == SCOPE]

    def inside(e) -> bool:
        return any(
            s.thread == e.thread and s.time_range.start <= e.time_range.start and e.time_range.end <= s.time_range.end
            for s in scopes
        )

    created = {e.sequence_nr for e in events if e.sequence_nr >= 0 and e.name != SCOPE and inside(e)}
    nodes = [
        e
        for e in events
        if e.sequence_nr in created
        and "Backward" in e.name
        and not e.name.startswith("autograd::engine")
        and not inside(e)
    ]
    return sum(s.cpu_time_total for s in scopes), sum(e.cpu_time_total for e in nodes)


def attention_row(preset: str, size: int, backend: str, device, log) -> dict:
    torch.manual_seed(0)
    model = DcaeCodec(DCAE_PRESETS[preset]).to(device).train()
    x = _batch(size, device)
    with (
        use_backend(backend),
        mock.patch.object(window_module, "window_attention", _scoped(window_module.window_attention)),
    ):
        _loss_backward(model, x)  # warm-up
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            start = time.perf_counter()
            _loss_backward(model, x)
            harness.synchronize(device)
            wall_us = (time.perf_counter() - start) * 1e6
    forward, backward = _attention_times(prof.events())
    row = {
        "case": "attention share",
        "detail": f"{preset}, {backend}, batch 1, {size}×{size}",
        "median_ms": wall_us / 1e3,
        "runs": 1,
        "attention_fwd_pct": 100 * forward / wall_us,
        "attention_bwd_pct": 100 * backward / wall_us,
        "attention_pct": 100 * (forward + backward) / wall_us,
    }
    log(f"attention {preset} {backend}: fwd {row['attention_fwd_pct']:.1f}% of {wall_us / 1e3:.0f} ms")
    return row


def _astronaut(size: int) -> list[tuple[str, torch.Tensor]]:
    photo = load_bundled_photo("astronaut").float().div(255)[:, :size, :size].contiguous()
    return [("astronaut", photo)]


def _untrained(preset: str) -> ImageCodec:
    torch.manual_seed(0)
    model = DcaeCodec(DCAE_PRESETS[preset]).eval()
    model.update()
    return ImageCodec(model)


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed fwd+bwd steps per case after one warm-up")
    parser.add_argument("--checkpoint", help="a trained DCAE codec (file or run folder) for the coding rows")
    parser.add_argument("--paper-coding", action="store_true", help="also time coding with an untrained paper model")
    args = harness.parse_args(parser, argv)
    run = harness.BenchmarkRun(args, copy_bandwidth=False)
    device = args.device
    size = 64 if args.quick else 256
    presets = ("small",) if args.quick else ("small", "paper")
    rows = [step_row(p, size, device, args.steps, run.log) for p in presets]
    rows += [attention_row(p, size, b, device, run.log) for p in presets for b in ("native", "reference")]

    codecs = (
        [(str(args.checkpoint), load_codec(args.checkpoint))]
        if args.checkpoint
        else [("small, untrained", _untrained("small"))]
    )
    if args.paper_coding and not args.quick:
        codecs.append(("paper, untrained", _untrained("paper")))
    for label, codec in codecs:
        for row in bench_codec.coding_rows(codec, _astronaut(64 if args.quick else 512), run.timing_kw, run.log):
            row["detail"] = f"{label}: {row['detail']}"
            row["params_m"] = sum(p.numel() for p in codec.model.parameters()) / 1e6
            rows.append(row)
    notes = [
        "fwd+bwd: rate-distortion loss (lambda 0.013) plus the auxiliary loss, backward, no optimiser "
        f"step; random 8-bit-like images; median of {args.steps} steps after one warm-up.",
        "Attention share: one profiled fwd+bwd after a warm-up; forward = time inside window_attention "
        "calls, backward = the autograd nodes of the ops created there (by sequence number).",
        "Coding: range coder share from one extra call with each coder op timed; the rest is the networks "
        "(and tensor glue). An untrained model's bpp means nothing.",
        run.timing_note(),
        run.wall_note(),
    ]
    return run.finish(
        "dcae",
        rows,
        columns=COLUMNS,
        title="stegafast DCAE codec",
        notes=notes,
        problems=[],
        extra={"steps": args.steps, "checkpoint": args.checkpoint},
    )


if __name__ == "__main__":
    sys.exit(main())
