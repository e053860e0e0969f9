"""Benchmark of the fused affine coupling (stegafast.ops.affine_coupling*).

Times, per case (B samples of C channels, H x W; the INN's half-channel coupling:
C = 12 at 64x64 and 112x112, i.e. a 3-channel image's 2-level wavelet at 128 and
224 input), with inputs laid out as an INN has them: x the second channel half
of a (B, 2C, H, W) batch, s_raw and t the two halves of the subnet's
(B, 2C, H, W) output (channel slices, not copies):

* ``fwd``: ``affine_coupling(x, s_raw, t)`` without autograd (inference);
* ``fwd+bwd``: the forward, then ``torch.autograd.grad((y, logdet), (x, s_raw,
  t), (gy, gl))`` for fixed random cotangents: the training step;
* ``inv+bwd``: the same for ``affine_coupling_inverse``;

for the native kernels, the pure-PyTorch reference (the expression
``clamp * tanh(s_raw / clamp)``, ``x * exp(s) + t``, ``s.flatten(1).sum(1)``
under autograd) and, as the strongest outside peer, that reference compiled by
``torch.compile`` (inductor fuses it into a few generated loops).

Targets from the issue: native fwd+bwd at least 2x the reference on CPU; on GPU
at least 70% of the device-to-device copy bandwidth measured in the same run.

    python benchmarks/bench_coupling.py --device cpu            # full run (about two minutes on 2 cores)
    python benchmarks/bench_coupling.py --device cpu --quick    # smoke test
    python benchmarks/bench_coupling.py --device cuda

Writes ``<out>/coupling_<device>.json`` and ``.md`` (``coupling_<device>_quick``
with --quick) and prints the markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast import NativeKernelUnavailable, reference, use_backend  # noqa: E402
from stegafast.ops import affine_coupling, affine_coupling_inverse  # noqa: E402

CASES = ((8, 12, 64, 64), (8, 12, 112, 112), (32, 12, 64, 64), (32, 12, 112, 112))
QUICK_CASES = ((8, 12, 64, 64),)
# on a GPU the small cases are launch-bound; a larger one shows the bandwidth
GPU_EXTRA_CASES = ((32, 12, 224, 224),)
OPS = ("fwd", "fwd+bwd", "inv+bwd")
CLAMP, CLAMP_FN = 2.0, "tanh"
# tensors of the case's size each op's native kernels read or write: the forward
# reads x, s_raw, t and writes y; its backward reads gy, x, s_raw and writes gx,
# g_s (g_t is gy itself); the inverse's backward also writes g_t
TENSORS_MOVED = {"fwd": 4, "fwd+bwd": 9, "inv+bwd": 10}

COLUMNS = [
    ("op", "op"),
    ("B", "B"),
    ("C", "C"),
    ("size", "H×W"),
    ("native_ms", "native ms"),
    ("reference_ms", "reference ms"),
    ("speedup", "speed-up (ref/native)"),
    ("compiled_ms", "torch.compile(reference) ms"),
    ("native_gbs", "native GB/s"),
    ("native_copy_pct", "native % of copy BW"),
]


# --- the timed callables -------------------------------------------------------------------


def _case_inputs(batch, channels, h, w, device, gen):
    """x, s_raw, t as channel slices of (B, 2C, H, W) tensors, and the cotangents."""
    full_x = torch.randn(batch, 2 * channels, h, w, generator=gen).to(device)
    subnet = (2 * torch.randn(batch, 2 * channels, h, w, generator=gen)).to(device)
    x, s_raw, t = full_x[:, channels:], subnet[:, :channels], subnet[:, channels:]
    gy = torch.randn(batch, channels, h, w, generator=gen).to(device)
    gl = torch.randn(batch, generator=gen).to(device)
    return (x, s_raw, t), (gy, gl)


def _step(op, fn, inputs, cotangents):
    """The timed callable of op: fn is the coupling (or its inverse)."""
    if op == "fwd":

        def forward():
            with torch.no_grad():
                return fn(*inputs, CLAMP, CLAMP_FN)

        return forward
    leaves = tuple(v.detach().requires_grad_() for v in inputs)  # views stay views

    def train_step():
        out = fn(*leaves, CLAMP, CLAMP_FN)
        return torch.autograd.grad(out, leaves, cotangents)

    return train_step


def _functions(op):
    """(stegafast op, reference function) for op."""
    if op == "inv+bwd":
        return affine_coupling_inverse, reference.affine_coupling_inverse
    return affine_coupling, reference.affine_coupling


# --- measuring ---------------------------------------------------------------------------------


def _check_native(op, inputs, cotangents):
    """Largest native-vs-reference differences on the case (cheap, not timed)."""
    fn, _ = _functions(op)
    train = op != "fwd"
    out = {}
    try:
        results = {}
        for backend in ("native", "reference"):
            with use_backend(backend):
                leaves = tuple(v.detach().requires_grad_(train) for v in inputs)
                values = fn(*leaves, CLAMP, CLAMP_FN)
                grads = torch.autograd.grad(values, leaves, cotangents) if train else ()
            results[backend] = (values, grads)
    except NativeKernelUnavailable:
        return None
    (n_vals, n_grads), (r_vals, r_grads) = results["native"], results["reference"]
    out["output_max_abs_diff"] = float((n_vals[0] - r_vals[0]).abs().max())
    out["logdet_max_abs_diff"] = float((n_vals[1] - r_vals[1]).abs().max())
    if train:
        out["grad_max_abs_diff"] = max(float((a - b).abs().max()) for a, b in zip(n_grads, r_grads))
    return out


def run_case(run, op, case, compiled, rows):
    device, log = run.device, run.log
    batch, channels, h, w = case
    gen = torch.Generator().manual_seed(1000 * batch + h)
    inputs, cotangents = _case_inputs(batch, channels, h, w, device, gen)
    numel = batch * channels * h * w
    traffic = TENSORS_MOVED[op] * numel * 4
    row = {
        "op": op,
        "B": batch,
        "C": channels,
        "size": f"{h}×{w}",
        "H": h,
        "W": w,
        "dtype": "float32",
        "clamp": CLAMP,
        "clamp_fn": CLAMP_FN,
        "bytes_moved": traffic,
    }
    try:
        row["check"] = _check_native(op, inputs, cotangents)
    except Exception as exc:  # recorded like a failed measurement
        row["check"] = {"error": f"{type(exc).__name__}: {exc}"}
    fn, ref_fn = _functions(op)
    step = _step(op, fn, inputs, cotangents)
    impls = {backend: run.measure(step, backend) for backend in ("native", "reference")}
    if compiled is None:
        impls["compiled"] = {"status": "not run (--no-compile)"}
    else:
        impls["compiled"] = run.measure(_step(op, compiled[op], inputs, cotangents))

    row.update(impls)
    row["native_ms"] = harness.median_or_status(impls["native"])
    row["reference_ms"] = harness.median_or_status(impls["reference"])
    row["compiled_ms"] = harness.median_or_status(impls["compiled"])
    run.add_speed(row, impls, traffic)
    if "timing" in impls["native"] and "timing" in impls["compiled"]:
        row["speedup_vs_compiled"] = impls["compiled"]["timing"]["median_ms"] / impls["native"]["timing"]["median_ms"]
    rows.append(row)
    log(
        f"{op:8s} B={batch:<3d} C={channels} {h}x{w}: native {harness.format_value(row['native_ms'])} ms, "
        f"reference {harness.format_value(row['reference_ms'])} ms, "
        f"speed-up {harness.format_value(row.get('speedup'))}, "
        f"compiled reference {harness.format_value(row['compiled_ms'])} ms"
    )
    del inputs, cotangents
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _target_notes(rows, device):
    notes = []
    if device.type == "cpu":
        for r in rows:
            if r["op"] == "fwd+bwd" and "speedup" in r:
                verdict = "met" if r["speedup"] >= 2 else "NOT met"
                notes.append(
                    f"Target native fwd+bwd >= 2x reference on CPU, B = {r['B']} {r['size']}: "
                    f"{r['speedup']:.2f}x, {verdict}."
                )
    else:
        notes += harness.copy_target_notes(rows, ("fwd", "fwd+bwd"))
    return notes


def _problems(rows) -> list[str]:
    """Errors and suspicious native-vs-reference differences, one line each."""
    out = []
    for r in rows:
        case = f"{r['op']} B = {r['B']} {r['size']}"
        out += harness.measurement_errors(r, ("native", "reference", "compiled"), case)
        check = r.get("check") or {}
        if "error" in check:
            out.append(f"ERROR in the native check, {case}: {check['error']}")
        elif check and (check["output_max_abs_diff"] > 1e-3 or check.get("grad_max_abs_diff", 0) > 1e-3):
            out.append(f"CHECK FAILED, {case}: native differs from the reference: {check}")
    return out


def _compiled_functions():
    """torch.compile'd references, one per op (None when compile is unavailable)."""
    fwd = torch.compile(reference.affine_coupling, dynamic=False)
    inv = torch.compile(reference.affine_coupling_inverse, dynamic=False)
    return {"fwd": fwd, "fwd+bwd": fwd, "inv+bwd": inv}


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="skip the torch.compile'd reference (its compilation takes seconds per shape)",
    )
    args = harness.parse_args(parser, argv)
    run = harness.BenchmarkRun(args)
    compiled = None if args.no_compile else _compiled_functions()
    if args.quick:
        cases = QUICK_CASES
    else:
        cases = CASES if run.device.type == "cpu" else CASES + GPU_EXTRA_CASES
    rows: list[dict] = []
    for case in cases:
        for op in OPS:
            run_case(run, op, case, compiled, rows)

    notes = [
        f"{run.timing_note()} float32, clamp = {CLAMP}, clamp_fn = {CLAMP_FN!r}.",
        "Inputs as an INN has them: x = the second channel half of a (B, 2C, H, W) batch, s_raw and t = "
        "the halves of a (B, 2C, H, W) subnet output (channel slices). fwd: the forward without autograd. "
        "fwd+bwd / inv+bwd: the forward (inverse), then torch.autograd.grad of (y, logdet) with respect to "
        "the three inputs, for fixed random cotangents.",
        run.copy_note(
            "native GB/s counts the native kernels' traffic in tensors of the case's size: fwd 4 "
            "(x, s_raw, t read, y written), fwd+bwd 9 (+ gy, x, s_raw read, gx, g_s written), "
            "inv+bwd 10 (+ g_t written)."
        ),
        "torch.compile(reference): the reference functions compiled with inductor (dynamic=False), "
        "timed the same way after their compilation: the strongest outside peer for a fused elementwise "
        "op with a reduction.",
        run.wall_note(),
        *_target_notes(rows, run.device),
    ]
    return run.finish(
        "coupling",
        rows,
        columns=COLUMNS,
        title="stegafast affine coupling benchmark",
        notes=notes,
        problems=_problems(rows),
    )


if __name__ == "__main__":
    sys.exit(main())
