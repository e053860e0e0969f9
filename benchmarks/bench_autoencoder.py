"""The grayscale autoencoder (``stegafast.models.autoencoder``): parameters, throughput and peak memory.

For each preset and input size (H x W, default 201x201 and 1280x152): the parameter count,
the forward pass (no_grad, eval) and one training step as ``AutoencoderTask`` runs it (forward,
L1 loss, backward, AdamW) on random images, in float32 and under bf16 autocast, eager and
``torch.compile``d (``nn.Module.compile``, the training task's ``--compile``), and the training
step with gradient checkpointing of every encoder and decoder stage (``--checkpointing``).
Images per second come from the median time of ``--steps`` timed calls after one warm-up
call (which, compiled, includes the compilation; its time is reported separately).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over one call after a warm-up call.
On CPU, where tracemalloc sees none of torch's allocations, each case runs again in a fresh
process: one warm-up call, then the peak resident set size of a second call (Linux VmHWM,
reset through /proc/self/clear_refs) above the resident size just before it: activations,
gradients and temporaries (the weights and AdamW's state are already resident before it);
glibc's mmap threshold is fixed at 128 KiB there so freed tensors leave the resident set.

    python benchmarks/bench_autoencoder.py --device cpu                   # every preset: long on a CPU
    python benchmarks/bench_autoencoder.py --device cpu --quick           # tiny and small, batch 1
    python benchmarks/bench_autoencoder.py --device cuda --batch 8 --compile-presets tiny small medium large

Writes ``<out>/autoencoder_<device>.json`` and ``.md`` (``autoencoder_<device>_quick`` with --quick).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast.models.autoencoder import PRESETS, create_autoencoder  # noqa: E402
from stegafast.models.autoencoder.task import LR, WEIGHT_DECAY  # noqa: E402

SIZES = ("201x201", "1280x152")
FIXED_MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": "131072"}
COLUMNS = [
    ("preset", "preset"),
    ("params_m", "params (M)"),
    ("size", "H×W"),
    ("mode", "pass"),
    ("amp", "dtype"),
    ("compiled", "compile"),
    ("checkpointing", "checkpointing"),
    ("median_ms", "median ms"),
    ("p90_ms", "p90 ms"),
    ("images_per_s", "images/s"),
    ("peak_mb", "peak MB"),
    ("first_call_s", "first call s"),
]


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.partition("x")
    return int(h), int(w)


class Case:
    """One measurement: preset, (H, W), "forward" or "train", "fp32" or "bf16", compile, checkpointing."""

    def __init__(self, preset, size, mode, amp="fp32", compiled=False, checkpointing=False, batch=1):
        self.preset, self.size, self.mode, self.amp = preset, tuple(size), mode, amp
        self.compiled, self.checkpointing, self.batch = compiled, checkpointing, batch

    def as_dict(self) -> dict:
        return dict(vars(self), size=list(self.size))

    def build(self, device: torch.device):
        """The model, an input batch and the callable of one pass."""
        torch.manual_seed(0)
        model = create_autoencoder(self.preset, self.size).to(device)
        model.set_gradient_checkpointing(self.checkpointing)
        x = torch.rand(self.batch, 1, *self.size, device=device)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.amp == "bf16")
        if self.mode == "forward":
            model.eval()
        if self.compiled:
            model.compile()
        if self.mode == "forward":

            def call():
                with torch.no_grad(), autocast:
                    return model(x)

            return model, call
        opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast:
                out = model(x)
            loss = (out.float() - x).abs().mean()
            loss.backward()
            opt.step()

        return model, step


def _status_bytes(field: str) -> int:
    """A "VmRSS" / "VmHWM" line of /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def measure_cpu_memory(case_json: str) -> None:
    """In a fresh process: one warm-up call of the case, then the peak resident size (VmHWM,
    reset through /proc/self/clear_refs) of a second call above the resident size before it;
    prints it as JSON."""
    values = json.loads(case_json)
    case = Case(**{**values, "size": tuple(values["size"])})
    torch.set_num_threads(1)
    _, call = case.build(torch.device("cpu"))
    call()  # one-time allocations (kernel caches, AdamW's state) stay out of the figure
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
    before = _status_bytes("VmRSS")
    call()
    print(json.dumps({"peak_bytes": max(0, _status_bytes("VmHWM") - before)}))


def peak_memory_mb(case: Case, device: torch.device) -> float | None:
    if device.type == "cuda":
        _, call = case.build(device)
        call()  # compile / autotune outside the measured call
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        call()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    out = subprocess.run(
        [sys.executable, __file__, "--memory-case", json.dumps(case.as_dict())],
        capture_output=True,
        text=True,
        timeout=1800,
        # a fixed mmap threshold: glibc then maps every tensor over 128 KiB on its own and unmaps
        # it when freed (its default raises the threshold after frees and keeps freed memory
        # resident in the heap, which would hide the second call's allocations)
        env={
            **os.environ,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "MALLOC_MMAP_THRESHOLD_": "131072",
        },
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "memory case failed")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"] / 2**20


def run_case(case: Case, device: torch.device, steps: int, log) -> dict:
    model, call = case.build(device)
    start = time.perf_counter()
    call()  # the warm-up outside the timing: compiles a compiled model
    harness.synchronize(device)
    first = time.perf_counter() - start
    timing = harness.time_steps(call, device, steps)
    row = {
        "preset": case.preset,
        "params_m": model.parameter_count() / 1e6,
        "size": f"{case.size[0]}×{case.size[1]}",
        "mode": case.mode,
        "amp": case.amp,
        "compiled": "compile" if case.compiled else "eager",
        "checkpointing": "yes" if case.checkpointing else "no",
        "batch": case.batch,
        "first_call_s": first,
        **harness.step_row(timing, case.batch),
    }
    del model, call
    row["peak_mb"] = peak_memory_mb(case, device)
    log(
        f"{case.preset} {row['size']} {case.mode} {case.amp} {row['compiled']} ckpt={row['checkpointing']}: "
        f"{timing.median_ms:9.1f} ms, {row['images_per_s']:.2f} images/s, peak {row['peak_mb']:.0f} MB"
    )
    return row


def cases(presets, sizes, compile_presets, compile_sizes, batch) -> list[Case]:
    out = []
    for preset in presets:
        for size in sizes:
            for mode in ("forward", "train"):
                out += [Case(preset, size, mode, amp, batch=batch) for amp in ("fp32", "bf16")]
                if preset in compile_presets and size in compile_sizes:
                    out.append(Case(preset, size, mode, compiled=True, batch=batch))
            out.append(Case(preset, size, "train", checkpointing=True, batch=batch))
    return out


def main(argv=None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--memory-case":
        measure_cpu_memory(sys.argv[2])
        return 0
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", choices=tuple(PRESETS), help="default: all (tiny small with --quick)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="HxW sizes (default: %(default)s)")
    parser.add_argument("--batch", type=int, help="images per call (default 2, 1 with --quick)")
    parser.add_argument("--steps", type=int, help="timed calls per case after one warm-up (default 3, 2 with --quick)")
    parser.add_argument(
        "--compile-presets",
        nargs="*",
        choices=tuple(PRESETS),
        help="presets also measured with torch.compile (default: tiny)",
    )
    parser.add_argument("--compile-sizes", nargs="+", help="sizes measured compiled (default: every size)")
    args = harness.parse_args(parser, argv)
    run = harness.BenchmarkRun(args, copy_bandwidth=False)
    device = args.device
    presets = args.presets or (["tiny", "small"] if args.quick else list(PRESETS))
    compile_presets = args.compile_presets if args.compile_presets is not None else ["tiny"]
    batch = args.batch or (1 if args.quick else 2)
    steps = args.steps or (2 if args.quick else 3)
    sizes = [_size(s) for s in args.sizes]
    compile_sizes = [_size(s) for s in args.compile_sizes] if args.compile_sizes else sizes
    rows, problems = [], []
    for case in cases(presets, sizes, compile_presets, compile_sizes, batch):
        try:
            rows.append(run_case(case, device, steps, run.log))
        except Exception as exc:  # a failed case is reported in the notes, the others still run
            problems.append(f"ERROR in {case.as_dict()}: {type(exc).__name__}: {exc}")
            run.log(problems[-1])
    memory = (
        "torch.cuda.max_memory_allocated over one call (after a warm-up call), above the memory allocated before it"
        if device.type == "cuda"
        else "peak RSS (VmHWM, reset) of a fresh process during its second call, above its RSS before that call"
    )
    notes = [
        f"Random images, batch {batch}; median of {steps} timed calls after one warm-up call "
        f"({'CUDA events' if device.type == 'cuda' else 'perf_counter'}); 'first call s' is the warm-up "
        "(with compile: the compilation).",
        "forward: eval mode, no_grad. train: forward, L1 loss (float32), backward, AdamW (1e-4, wd 1e-5).",
        "bf16: torch.autocast(bfloat16) around the model. compile: nn.Module.compile() (default mode), fp32 only.",
        f"Peak memory: {memory}.",
        f"Presets measured: {', '.join(presets)}; compiled: {', '.join(p for p in compile_presets if p in presets)}"
        f" at {', '.join(f'{h}x{w}' for h, w in compile_sizes)}.",
        f"{run.wall_note()} Few steps on a shared machine: the numbers are noisy.",
    ]
    return run.finish(
        "autoencoder",
        rows,
        columns=COLUMNS,
        title="stegafast autoencoder throughput and memory",
        notes=notes,
        problems=problems,
        extra={"presets": presets, "sizes": [list(s) for s in sizes], "batch": batch, "steps": steps},
    )


if __name__ == "__main__":
    sys.exit(main())
