"""Benchmark of the windowed attention (stegafast.ops.window_attention).

Times, per case (the attention of DCAE's transforms and of Swin-T: B * nW windows of
N tokens, heads, head dim d, the relative-position bias (heads, N, N) and the
shifted-window mask (nW, N, N)):

* ``fwd``: the attention without autograd (inference);
* ``fwd+bwd``: the attention, then ``torch.autograd.grad(out, (q, k, v, bias), g)``
  for a fixed random cotangent: the training step;

for the native kernels, the pure-PyTorch reference (the eager expression), and the
two outside peers: ``F.scaled_dot_product_attention`` with the combined float mask
(bias + mask expanded to (B * nW, heads, N, N) on every call, as timm's Swin builds
it) and ``torch.nn.attention.flex_attention`` compiled, with a score_mod adding bias
and mask (forward only on CPU, where torch has no flex backward).

Memory: the bytes autograd saves for the backward during the forward (every saved
tensor's storage counted once, found with ``torch.autograd.graph.saved_tensors_hooks``;
what training holds per attention call between its forward and backward), and on CUDA
also the peak allocated during fwd+bwd beyond the inputs.

Targets from the issue: on CPU native fwd+bwd >= 1.5x SDPA-with-mask, fwd >= 2x, saved
memory below SDPA-with-mask's; on GPU at least SDPA-with-mask and flex attention.

    python benchmarks/bench_attention.py --device cpu            # full run (about three minutes on 2 cores)
    python benchmarks/bench_attention.py --device cpu --quick    # smoke test
    python benchmarks/bench_attention.py --device cuda

Writes ``<out>/attention_<device>.json`` and ``.md`` (``attention_<device>_quick`` with
--quick) and prints the markdown table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast import use_backend  # noqa: E402
from stegafast.nn import shifted_window_mask  # noqa: E402
from stegafast.ops import window_attention  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    batch: int
    height: int  # feature map
    width: int
    window: int
    heads: int
    head_dim: int = 32

    @property
    def mask_windows(self) -> int:
        return (self.height // self.window) * (self.width // self.window)

    @property
    def windows(self) -> int:
        return self.batch * self.mask_windows

    @property
    def tokens(self) -> int:
        return self.window**2

    def label(self) -> str:
        return (
            f"{self.name}: B = {self.batch}, {self.height}×{self.width}, window {self.window} "
            f"(N = {self.tokens}), {self.heads} heads × {self.head_dim}"
        )


CASES = (
    Case("DCAE window 8", 2, 128, 128, 8, 4),
    Case("DCAE hyper window 4", 32, 16, 16, 4, 6),
    Case("Swin-T stage 1", 8, 56, 56, 7, 3),
)
QUICK_CASES = (Case("DCAE window 8", 1, 32, 32, 8, 4), Case("Swin-T stage 1", 1, 28, 28, 7, 3))
GPU_CASES = (
    Case("DCAE window 8", 8, 128, 128, 8, 4),
    Case("DCAE hyper window 4", 64, 16, 16, 4, 6),
    Case("Swin-T stage 1", 64, 56, 56, 7, 3),
)
IMPLS = ("native", "reference", "sdpa", "flex")
COLUMNS = [
    ("case", "case"),
    ("op", "op"),
    ("native", "native ms"),
    ("reference", "reference ms"),
    ("sdpa", "SDPA + mask ms"),
    ("flex", "flex_attention ms"),
    ("vs_sdpa", "native vs SDPA"),
    ("vs_flex", "native vs flex"),
    ("native_saved_mib", "native saved MiB"),
    ("sdpa_saved_mib", "SDPA saved MiB"),
    ("reference_saved_mib", "reference saved MiB"),
]


def make_inputs(case: Case, device: torch.device):
    gen = torch.Generator().manual_seed(case.tokens)
    shape = (case.windows, case.heads, case.tokens, case.head_dim)
    q, k, v = (torch.randn(shape, generator=gen).to(device) for _ in range(3))
    bias = (0.1 * torch.randn(case.heads, case.tokens, case.tokens, generator=gen)).to(device)
    mask = shifted_window_mask(case.height, case.width, case.window, case.window // 2, device)
    return q, k, v, bias, mask


def sdpa_with_mask(q, k, v, bias, mask):
    """timm's Swin: the bias and the shift mask added into one (B * nW, heads, N, N) float mask."""
    windows, heads, n, _ = q.shape
    nw = mask.shape[0]
    combined = (bias[None, None] + mask[None, :, None]).expand(windows // nw, nw, heads, n, n)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=combined.reshape(windows, heads, n, n))


def _flex():
    """A compiled flex_attention, or why there is none."""
    try:
        from torch.nn.attention.flex_attention import flex_attention
    except ImportError as exc:
        return None, f"unavailable: {exc}"
    return torch.compile(flex_attention, dynamic=False), None


def flex_with_mask(flex, q, k, v, bias, mask):
    nw = mask.shape[0]

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + bias[h, q_idx, kv_idx] + mask[b % nw, q_idx, kv_idx]

    return flex(q, k, v, score_mod=score_mod)


def attention_fn(impl: str, flex):
    if impl in ("native", "reference"):  # the backend picks which (see backend_of)
        return lambda q, k, v, b, m: window_attention(q, k, v, bias=b, mask=m)
    if impl == "sdpa":
        return sdpa_with_mask
    return lambda q, k, v, b, m: flex_with_mask(flex, q, k, v, b, m)


def backend_of(impl: str) -> str | None:
    return impl if impl in ("native", "reference") else None


def forward_step(fn, inputs):
    def step():
        with torch.no_grad():
            return fn(*inputs)

    return step


def _leaves(inputs):
    """q, k, v and the bias as leaves that require grad; the mask takes none."""
    return [t.detach().requires_grad_() for t in inputs[:4]] + [inputs[4]]


def training_step(fn, inputs, cotangent):
    q, k, v, bias, mask = _leaves(inputs)

    def step():
        return torch.autograd.grad(fn(q, k, v, bias, mask), (q, k, v, bias), cotangent)

    return step


def saved_bytes(fn, inputs, backend: str | None) -> int:
    """Bytes of the distinct storages autograd saves for the backward of one forward."""
    leaves = _leaves(inputs)
    storages: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with use_backend(backend or "auto"), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*leaves)
    del out
    return sum(storages.values())


def peak_training_bytes(fn, inputs, cotangent, device, backend: str | None) -> int | None:
    """On CUDA: the peak memory allocated by one training step beyond what was allocated before."""
    if device.type != "cuda":
        return None
    step = training_step(fn, inputs, cotangent)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with use_backend(backend or "auto"):
        step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def run_case(run, case: Case, flex, flex_status, rows: list[dict]) -> None:
    inputs = make_inputs(case, run.device)
    cotangent = torch.randn(inputs[0].shape, generator=torch.Generator().manual_seed(1)).to(run.device)
    for op in ("fwd", "fwd+bwd"):
        row = {
            "case": case.label(),
            "op": op,
            "windows": case.windows,
            "tokens": case.tokens,
            "heads": case.heads,
            "head_dim": case.head_dim,
            "mask_windows": case.mask_windows,
            "timings": {},
        }
        for impl in IMPLS:
            if impl == "flex" and flex is None:
                result = {"status": flex_status}
            elif impl == "flex" and op == "fwd+bwd" and run.device.type == "cpu":
                result = {"status": "no CPU backward"}
            else:
                fn = attention_fn(impl, flex)
                step = forward_step(fn, inputs) if op == "fwd" else training_step(fn, inputs, cotangent)
                result = run.measure(step, backend_of(impl))
            row["timings"][impl] = result
            row[impl] = harness.median_or_status(result)
        for peer in ("sdpa", "flex"):
            if isinstance(row["native"], float) and isinstance(row[peer], float):
                row[f"speedup_vs_{peer}"] = row[peer] / row["native"]
                row[f"vs_{peer}"] = f"{row[peer] / row['native']:.2f}x"
        if op == "fwd+bwd":
            for impl in ("native", "reference", "sdpa"):
                fn = attention_fn(impl, flex)
                row[f"{impl}_saved_mib"] = saved_bytes(fn, inputs, backend_of(impl)) / 2**20
                peak = peak_training_bytes(fn, inputs, cotangent, run.device, backend_of(impl))
                if peak is not None:
                    row[f"{impl}_peak_mib"] = peak / 2**20
        rows.append(row)
        run.log(f"{case.name} {op}: " + ", ".join(f"{impl} {harness.format_value(row[impl])}" for impl in IMPLS))


def _target_notes(rows, device) -> list[str]:
    notes = []
    goals = {"cpu": {"fwd": 2.0, "fwd+bwd": 1.5}, "cuda": {"fwd": 1.0, "fwd+bwd": 1.0}}[device.type]
    for r in rows:
        speedup = r.get("speedup_vs_sdpa")
        if speedup is not None:
            verdict = "met" if speedup >= goals[r["op"]] else "NOT met"
            notes.append(
                f"Target native {r['op']} >= {goals[r['op']]}x SDPA-with-mask on {device.type}, "
                f"{r['case']}: {speedup:.2f}x, {verdict}."
            )
        if device.type == "cuda" and r.get("speedup_vs_flex") is not None:
            verdict = "met" if r["speedup_vs_flex"] >= 1.0 else "NOT met"
            notes.append(
                f"Target native {r['op']} >= flex_attention on cuda, {r['case']}: "
                f"{r['speedup_vs_flex']:.2f}x, {verdict}."
            )
        if "native_saved_mib" in r:
            verdict = "met" if r["native_saved_mib"] < r["sdpa_saved_mib"] else "NOT met"
            notes.append(
                f"Target saved memory below SDPA-with-mask's, {r['case']}: {r['native_saved_mib']:.1f} "
                f"vs {r['sdpa_saved_mib']:.1f} MiB, {verdict}."
            )
    return notes


def _problems(rows) -> list[str]:
    out = []
    for r in rows:
        out += harness.measurement_errors(r["timings"], IMPLS, f"{r['case']} {r['op']}")
    return out


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--no-flex", action="store_true", help="skip flex_attention (its compilation takes seconds per shape)"
    )
    args = harness.parse_args(parser, argv)
    run = harness.BenchmarkRun(args, copy_bandwidth=False)
    flex, flex_status = (None, "skipped (--no-flex)") if args.no_flex else _flex()
    if args.quick:
        cases = QUICK_CASES
    else:
        cases = CASES if run.device.type == "cpu" else GPU_CASES
    rows: list[dict] = []
    for case in cases:
        run_case(run, case, flex, flex_status, rows)
    notes = [
        f"{run.timing_note()} float32, with the relative-position bias and the shifted-window mask "
        "(Swin's 0 / -100 mask of a map rolled by window // 2).",
        "fwd: the attention under torch.no_grad. fwd+bwd: the attention, then torch.autograd.grad of the output "
        "with respect to q, k, v and the bias for a fixed random cotangent.",
        "SDPA + mask: F.scaled_dot_product_attention with bias + mask expanded to one (B * nW, heads, N, N) "
        "float mask on every call (timm's Swin). flex_attention: torch.compile(flex_attention, dynamic=False) "
        "with a score_mod adding bias[h] and mask[b % nW]; compiled once per shape before timing.",
        "Saved MiB: the storages autograd keeps for the backward after one forward (saved_tensors_hooks), "
        "each counted once: the training memory of one attention call; the inputs q, k, v are among them for "
        "every implementation.",
        run.wall_note(),
        *_target_notes(rows, run.device),
    ]
    return run.finish(
        "attention",
        rows,
        columns=COLUMNS,
        title="stegafast windowed attention benchmark",
        notes=notes,
        problems=_problems(rows),
    )


if __name__ == "__main__":
    sys.exit(main())
