"""Does ``--compile`` pay on the inference commands? Compile time against the time per image.

For each inference verb, the parts its ``--compile`` compiles (``stegafast.train.compile_parts``,
the same names as the commands use) on the family's default (seed) network with random
weights (speed does not depend on training): the first compiled call less the first eager call
(compile time), then eager and compiled calls on one image size in interleaved rounds (medians),
and the break-even image count, compile time / time saved per image (never, when compiled is
not faster). Single-image calls, batch 1, as the commands run them, under no_grad.

    python benchmarks/bench_infer_compile.py --device cpu --quick     # 64x64 images (stamp: its own size)
    python benchmarks/bench_infer_compile.py --device cpu             # 256x256

Writes ``<out>/infer_compile_<device>[_quick].json`` and ``.md``.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast.models.codec import CodecConfig, ImageCodec  # noqa: E402
from stegafast.models.codec.cli import DECODER_PARTS, ENCODER_PARTS  # noqa: E402
from stegafast.models.codec.model import HyperpriorCodec  # noqa: E402
from stegafast.models.stamp import StampModelConfig  # noqa: E402
from stegafast.models.stamp.bch import encode_message  # noqa: E402
from stegafast.models.stamp.inference import decode_logits, encode_images  # noqa: E402
from stegafast.models.stamp.model import StampDecoder, StampEncoder  # noqa: E402
from stegafast.models.stego import StegoINN, StegoModelConfig  # noqa: E402
from stegafast.train import compile_parts  # noqa: E402

COLUMNS = [
    ("verb", "command"),
    ("parts", "compiled parts"),
    ("size", "image"),
    ("eager_ms", "eager ms/image"),
    ("compiled_ms", "compiled ms/image"),
    ("speedup", "speed-up"),
    ("compile_s", "compile s"),
    ("break_even_images", "break-even images"),
]


def _stego_cases(size: int):
    model = StegoINN(StegoModelConfig()).eval()
    cover, secret = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
    stego = model.embed(cover, secret).detach()
    yield "stego embed", model, ("embed",), lambda m: m.embed(cover, secret)
    yield "stego extract", model, ("extract",), lambda m: m.extract(stego)


def _stamp_cases(size: int):
    config = StampModelConfig()
    encoder, decoder = StampEncoder(config).eval(), StampDecoder(config).eval()
    image = torch.rand(1, 3, size, size)
    bits = encode_message("bench").unsqueeze(0)
    yield "stamp encode", encoder, (), lambda m: encode_images(m, image, bits)
    yield "stamp decode", decoder, (), lambda m: decode_logits(m, image)


def _codec_cases(size: int):
    model = HyperpriorCodec(CodecConfig()).eval()
    model.update(force=True)
    image = torch.rand(3, size, size)
    data = ImageCodec(model).compress(image)
    codecs: dict[int, ImageCodec] = {}  # one per model (eager, compiled), made once: it hashes the weights

    def codec_of(m) -> ImageCodec:
        return codecs.setdefault(id(m), ImageCodec(m))

    yield "codec compress", model, ENCODER_PARTS, lambda m: codec_of(m).compress(image)
    yield "codec decompress", model, DECODER_PARTS, lambda m: codec_of(m).decompress(data)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(verb, model, parts, call, size, rounds, log) -> dict:
    compiled = compile_parts(copy.deepcopy(model), parts)
    with torch.no_grad():
        eager_first = _timed(lambda: call(model))
        compiled_first = _timed(lambda: call(compiled))
        times = {"eager": [], "compiled": []}
        for _ in range(rounds):
            times["eager"].append(_timed(lambda: call(model)))
            times["compiled"].append(_timed(lambda: call(compiled)))
    eager_ms = 1e3 * statistics.median(times["eager"])
    compiled_ms = 1e3 * statistics.median(times["compiled"])
    compile_s = compiled_first - eager_first
    saved_s = (eager_ms - compiled_ms) / 1e3
    row = {
        "verb": verb,
        "parts": ", ".join(parts) or "the network",
        "size": f"{size}×{size}",
        "eager_ms": eager_ms,
        "compiled_ms": compiled_ms,
        "speedup": eager_ms / compiled_ms,
        "compile_s": compile_s,
        "break_even_images": round(compile_s / saved_s) if saved_s > 0 else "never",
        "eager_p90_ms": 1e3 * harness.percentile(times["eager"], 90),
        "compiled_p90_ms": 1e3 * harness.percentile(times["compiled"], 90),
        "rounds": rounds,
        "load_average_after": list(os.getloadavg()),
    }
    log(f"{verb:17s} eager {eager_ms:8.1f} ms, compiled {compiled_ms:8.1f} ms, compile {compile_s:6.1f} s")
    return row


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="timed calls of each (default 5, 10 without --quick)")
    args = harness.parse_args(parser, argv)
    if args.device.type != "cpu":
        parser.error("this benchmark measures the CPU commands")
    rounds = args.rounds or (5 if args.quick else 10)
    size = 64 if args.quick else 256
    run = harness.BenchmarkRun(args, copy_bandwidth=False)
    rows, problems = [], []
    for cases in (_stego_cases(size), _stamp_cases(size), _codec_cases(size)):
        for verb, model, parts, call in cases:
            try:
                rows.append(measure(verb, model, parts, call, size, rounds, run.log))
            except Exception as exc:  # keep the other verbs' results; finish() exits non-zero
                problems.append(f"ERROR in {verb}: {type(exc).__name__}: {exc}")
                run.log(problems[-1])
    notes = [
        f"Default (seed) networks with random weights, batch 1, {size}×{size} inputs (stamp resizes to its "
        f"{StampModelConfig().image_size}×{StampModelConfig().image_size}), under no_grad, "
        f"torch threads {torch.get_num_threads()}. Medians of {rounds} interleaved eager/compiled calls after "
        "one call each; compile time = first compiled call less first eager call.",
        "Break-even: the images one process must handle at this size before compiling has saved its own cost. "
        "Every command handles one image (stamp: a list of images) per process, and a new size compiles again.",
        "codec: compress compiles g_a and h_a, decompress g_s; the range coder and the networks both sides share "
        "(h_s) stay eager (stegafast/models/codec/cli.py says why).",
        run.wall_note(),
    ]
    return run.finish(
        "infer_compile",
        rows,
        columns=COLUMNS,
        title="stegafast inference commands: does --compile pay?",
        notes=notes,
        problems=problems,
        extra={"rounds": rounds, "size": size},
    )


if __name__ == "__main__":
    sys.exit(main())
