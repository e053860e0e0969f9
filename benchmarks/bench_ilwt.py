"""Benchmark of the batched 5/3 integer lifting wavelet (stegafast.ops.ilwt53_*).

Times, per case (B images of C = 6 channels, 224x224 and 512x512):

* ``fwd+inv``: ``ilwt53_inverse(ilwt53_forward(x), (H, W))`` on integer-valued
  float32 data (8-bit images), rounding=True: the lossless round trip;
* ``fwd+bwd``: ``ilwt53_forward(x)`` then its gradient for a fixed random
  cotangent (``torch.autograd.grad(y, x, g)``), float32 with requires_grad;

for the native kernel and the pure-PyTorch reference, plus the outside peers
PyWavelets (``dwt2``/``idwt2``, 'bior2.2', CPU, numpy) and pytorch_wavelets
(``DWTForward``/``DWTInverse``, 'bior2.2') where they are installed. The peers
are float DWTs with their own boundary handling (and, for bior2.2, longer
subbands), so they give speed context only.

Targets from the issue: native >= 5x the reference on CPU at B = 8; on GPU the
native forward+inverse at >= 70% of the device-to-device copy bandwidth measured
in the same run.

    python benchmarks/bench_ilwt.py --device cpu            # full run (a few minutes on 2 cores)
    python benchmarks/bench_ilwt.py --device cpu --quick    # smoke test (seconds)
    python benchmarks/bench_ilwt.py --device cuda

Writes ``<out>/ilwt_<device>.json`` and ``.md`` (``ilwt_<device>_quick`` with
--quick) and prints the markdown table.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import stegafast  # noqa: E402
from stegafast import NativeKernelUnavailable, use_backend  # noqa: E402
from stegafast.ops import ilwt53_forward, ilwt53_inverse  # noqa: E402

CHANNELS = 6
BATCHES = (1, 8, 32)
SIZES = ((224, 224), (512, 512))
QUICK_CASES = ((1, (224, 224)), (8, (224, 224)), (1, (512, 512)))
WAVE = "bior2.2"  # the float CDF 5/3 (LeGall) wavelet in PyWavelets' naming

# Column keys and headers of the markdown table.
COLUMNS = [
    ("op", "op"),
    ("B", "B"),
    ("C", "C"),
    ("size", "H×W"),
    ("native_ms", "native ms"),
    ("reference_ms", "reference ms"),
    ("speedup", "speed-up (ref/native)"),
    ("pywt_ms", "PyWavelets ms"),
    ("ptwt_ms", "pytorch_wavelets ms"),
    ("native_gbs", "native GB/s"),
    ("native_copy_pct", "native % of copy BW"),
]


# --- peers ----------------------------------------------------------------------


def _load_peer(module: str, dist: str):
    """(module, version, None) or (None, None, why it is unavailable)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None, None, "not installed"
        return None, None, f"not importable ({exc})"
    except Exception as exc:  # a broken install should not stop the benchmark
        return None, None, f"not importable ({type(exc).__name__}: {exc})"
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(mod, "__version__", "?")
    return mod, version, None


# --- the timed callables ---------------------------------------------------------------


def _stegafast_fwd_inv(x, size):
    return lambda: ilwt53_inverse(ilwt53_forward(x), size)


def _stegafast_fwd_bwd(xg, g):
    def step():
        y = ilwt53_forward(xg)
        return torch.autograd.grad(y, xg, g)

    return step


def _pywt_fwd_inv(pywt, a):
    return lambda: pywt.idwt2(pywt.dwt2(a, WAVE, mode="symmetric"), WAVE, mode="symmetric")


def _ptwt_modules(ptwt, device):
    fwd = ptwt.DWTForward(J=1, wave=WAVE, mode="symmetric").to(device)
    inv = ptwt.DWTInverse(wave=WAVE, mode="symmetric").to(device)
    return fwd, inv


def _ptwt_fwd_inv(fwd, inv, x):
    return lambda: inv(fwd(x))


def _ptwt_fwd_bwd(fwd, xg):
    with torch.no_grad():
        yl, yh = fwd(xg)
    gl, gh = torch.randn_like(yl), torch.randn_like(yh[0])

    def step():
        lo, hi = fwd(xg)
        return torch.autograd.grad((lo, hi[0]), xg, (gl, gh))

    return step


# --- measuring ------------------------------------------------------------------------


def _measure(fn, device, timing_kw, backend=None):
    """{'timing': {...}} or {'status': why not}; backend wraps the calls."""
    try:
        if backend is None:
            t = harness.time_callable(fn, device, **timing_kw)
        else:
            with use_backend(backend):
                t = harness.time_callable(fn, device, **timing_kw)
    except NativeKernelUnavailable as exc:
        return {"status": "no native kernel", "detail": str(exc)}
    except torch.OutOfMemoryError:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return {"status": "out of memory"}
    except Exception as exc:  # keep the other cases' results; main() exits non-zero
        return {"status": "error", "detail": f"{type(exc).__name__}: {exc}"}
    return {"timing": t.as_dict()}


def _median(result):
    return result["timing"]["median_ms"] if "timing" in result else result["status"]


def _check_native(x, size, g1):
    """Native vs reference on the first image of the case (cheap, not timed)."""
    x1 = x[:1]
    xg = x1.clone().requires_grad_(True)
    try:
        with use_backend("native"):
            y_n = ilwt53_forward(x1)
            r_n = ilwt53_inverse(y_n, size)
            (gx_n,) = torch.autograd.grad(ilwt53_forward(xg), xg, g1)
    except NativeKernelUnavailable:
        return None
    with use_backend("reference"):
        y_r = ilwt53_forward(x1)
        (gx_r,) = torch.autograd.grad(ilwt53_forward(xg), xg, g1)
    return {
        "forward_equal": bool(torch.equal(y_n, y_r)),
        "round_trip_exact": bool(torch.equal(r_n, x1)),
        "grad_max_abs_diff": float((gx_n - gx_r).abs().max()),
    }


def run_case(op, batch, size, device, timing_kw, peers, copy_gbs, rows, log):
    h, w = size
    gen = torch.Generator().manual_seed(1000 * batch + h)
    x_cpu = torch.randint(0, 256, (batch, CHANNELS, h, w), generator=gen).to(torch.float32)
    x = x_cpu.to(device)
    kh, kw = (h + 1) // 2, (w + 1) // 2
    band_numel = batch * 4 * CHANNELS * kh * kw
    # traffic of the two native kernels: read x, write bands, read bands (or their
    # gradient), write the image (or its gradient)
    traffic = 2 * (x.numel() + band_numel) * x.element_size()
    row = {
        "op": op,
        "B": batch,
        "C": CHANNELS,
        "size": f"{h}×{w}",
        "H": h,
        "W": w,
        "dtype": "float32",
        "bytes_moved": traffic,
    }
    g = torch.randn(batch, 4 * CHANNELS, kh, kw, generator=gen).to(device)
    try:
        row["check"] = _check_native(x, (h, w), g[:1])
    except Exception as exc:  # recorded like a failed measurement
        row["check"] = {"error": f"{type(exc).__name__}: {exc}"}
    if op == "fwd+inv":
        fn = _stegafast_fwd_inv(x, (h, w))
    else:
        fn = _stegafast_fwd_bwd(x.clone().requires_grad_(True), g)
    impls = {backend: _measure(fn, device, timing_kw, backend) for backend in ("native", "reference")}

    # peers
    pywt, _, pywt_why = peers["pywt"]
    if pywt is None:
        impls["pywt"] = {"status": pywt_why}
    elif device.type != "cpu":
        impls["pywt"] = {"status": "n/a (CPU only)"}
    elif op != "fwd+inv":
        impls["pywt"] = {"status": "n/a (no autograd)"}
    else:
        impls["pywt"] = _measure(_pywt_fwd_inv(pywt, x_cpu.numpy()), device, timing_kw)
    ptwt, _, ptwt_why = peers["pytorch_wavelets"]
    if ptwt is None:
        impls["ptwt"] = {"status": ptwt_why}
    else:
        fwd, inv = _ptwt_modules(ptwt, device)
        if op == "fwd+inv":
            impls["ptwt"] = _measure(_ptwt_fwd_inv(fwd, inv, x), device, timing_kw)
        else:
            impls["ptwt"] = _measure(_ptwt_fwd_bwd(fwd, x.clone().requires_grad_(True)), device, timing_kw)

    row.update({name: result for name, result in impls.items()})
    row["native_ms"] = _median(impls["native"])
    row["reference_ms"] = _median(impls["reference"])
    row["pywt_ms"] = _median(impls["pywt"])
    row["ptwt_ms"] = _median(impls["ptwt"])
    if "timing" in impls["native"] and "timing" in impls["reference"]:
        row["speedup"] = impls["reference"]["timing"]["median_ms"] / impls["native"]["timing"]["median_ms"]
        # ratio of the fastest runs: less sensitive to other work on a shared machine
        row["speedup_of_minimums"] = impls["reference"]["timing"]["min_ms"] / impls["native"]["timing"]["min_ms"]
    if "timing" in impls["native"]:
        gbs = harness.effective_bandwidth_gbs(traffic, impls["native"]["timing"]["median_ms"])
        row["native_gbs"] = gbs
        row["native_copy_fraction"] = gbs / copy_gbs
        row["native_copy_pct"] = 100 * gbs / copy_gbs
    rows.append(row)
    log(
        f"{op:8s} B={batch:<3d} {h}x{w}: native {harness.format_value(row['native_ms'])} ms, "
        f"reference {harness.format_value(row['reference_ms'])} ms, "
        f"speed-up {harness.format_value(row.get('speedup'))}, "
        f"PyWavelets {harness.format_value(row['pywt_ms'])}, "
        f"pytorch_wavelets {harness.format_value(row['ptwt_ms'])}"
    )
    del x, x_cpu
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _target_notes(rows, device):
    notes = []
    if device.type == "cpu":
        for r in rows:
            if r["B"] == 8 and "speedup" in r:
                verdict = "met" if r["speedup"] >= 5 else "NOT met"
                notes.append(
                    f"Target native >= 5x reference on CPU at B = 8, {r['op']} {r['size']}: "
                    f"{r['speedup']:.2f}x, {verdict}."
                )
    else:
        for r in rows:
            if r["op"] == "fwd+inv" and "native_copy_fraction" in r:
                verdict = "met" if r["native_copy_fraction"] >= 0.7 else "NOT met"
                notes.append(
                    f"Target native fwd+inv >= 70% of copy bandwidth, B = {r['B']} {r['size']}: "
                    f"{100 * r['native_copy_fraction']:.0f}%, {verdict}."
                )
        if not any("native_copy_fraction" in r for r in rows):
            notes.append("GPU target not assessed: no native CUDA kernel ran (see the native column).")
    return notes


def _problems(rows) -> list[str]:
    """Errors and failed native-vs-reference checks, one line each."""
    out = []
    for r in rows:
        case = f"{r['op']} B = {r['B']} {r['size']}"
        for impl in ("native", "reference", "pywt", "ptwt"):
            if r[impl].get("status") == "error":
                out.append(f"ERROR in {impl}, {case}: {r[impl]['detail']}")
        check = r.get("check") or {}
        if "error" in check:
            out.append(f"ERROR in the native check, {case}: {check['error']}")
        elif check and not (check["forward_equal"] and check["round_trip_exact"]):
            out.append(f"CHECK FAILED, {case}: native {check} (forward equal to the reference, exact round trip)")
    return out


def _load_note(info) -> str:
    if not info.get("load_average") or not hasattr(os, "getloadavg"):
        return ""
    return (
        f" Load average (1 min) at start {info['load_average'][0]:.2f}, at end "
        f"{os.getloadavg()[0]:.2f}, on {info['cpu_count']} cores (other work on the machine "
        "inflates CPU timings, the reference's most)."
    )


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of timed repeats per measurement (default 1.5, 0.25 with --quick)")
    args = harness.parse_args(parser, argv)
    device = args.device
    budget = args.budget if args.budget is not None else (0.25 if args.quick else 1.5)
    timing_kw = {
        "budget_s": budget,
        "min_runs": 3 if args.quick else 5,
        "max_case_s": 2.0 if args.quick else 12.0,
        "floor_runs": 3,
        "warmup_s": 0.05 if args.quick else 0.2,
    }
    started = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    torch.manual_seed(0)
    info = harness.machine_info(device)
    log(harness.machine_line(info))
    copy = harness.copy_bandwidth_gbs(device, (64 if args.quick else 256) * 2**20,
                                      budget_s=0.3 if args.quick else 1.0)
    log(f"copy bandwidth ({device.type}, read+write): {copy['gbs']:.1f} GB/s")

    peers = {
        "pywt": _load_peer("pywt", "PyWavelets"),
        "pytorch_wavelets": _load_peer("pytorch_wavelets", "pytorch_wavelets"),
    }
    cases = QUICK_CASES if args.quick else [(b, s) for s in SIZES for b in BATCHES]
    rows: list[dict] = []
    for batch, size in cases:
        for op in ("fwd+inv", "fwd+bwd"):
            run_case(op, batch, size, device, timing_kw, peers, copy["gbs"], rows, log)

    wall = time.perf_counter() - started
    copy_what = "device-to-device copy" if device.type == "cuda" else "CPU memcpy (torch copy_, for context)"
    peer_versions = {name: (ver or why) for name, (_, ver, why) in peers.items()}
    notes = [
        f"Medians of repeated runs after warm-up ({'CUDA events' if device.type == 'cuda' else 'perf_counter'}); "
        f"p10/p90 and run counts are in the JSON. Budget {budget} s per measurement.",
        "fwd+inv: ilwt53_inverse(ilwt53_forward(x)) on integer-valued float32 (0..255), rounding=True. "
        "fwd+bwd: ilwt53_forward(x) then torch.autograd.grad(y, x, g) for a fixed random g.",
        f"Measured {copy_what} bandwidth: {copy['gbs']:.1f} GB/s (read + write bytes, "
        f"{copy['buffer_bytes'] // 2**20} MiB buffer). native GB/s counts the two kernels' traffic: "
        "input + bands written + bands read + output (4 tensors of the image's size for even H, W).",
        "Peers are float DWTs ('bior2.2', the float CDF 5/3, mode='symmetric') with other boundary "
        "handling and subbands 2 samples longer: speed context only, not the same transform. "
        f"PyWavelets runs single-threaded on numpy and has no autograd. Versions: {peer_versions}.",
        f"Wall time of the whole run: {wall:.0f} s.{_load_note(info)}",
        *_target_notes(rows, device),
    ]
    problems = _problems(rows)
    notes.extend(problems)
    suffix = "_quick" if args.quick else ""
    name = f"ilwt_{device.type}{suffix}"
    json_path, md_path = harness.write_results(
        name,
        rows,
        args.out,
        machine=info,
        columns=COLUMNS,
        title=f"stegafast ILWT 5/3 benchmark ({device.type}{', quick' if args.quick else ''})",
        notes=notes,
        extra={
            "device": str(device),
            "quick": args.quick,
            "timing": timing_kw,
            "copy_bandwidth": copy,
            "peers": peer_versions,
            "wall_s": wall,
            "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
    )
    log(f"wrote {json_path} and {md_path}")
    print(md_path.read_text(encoding="utf-8"))
    if any(p.startswith("ERROR") for p in problems):
        log(f"{sum(p.startswith('ERROR') for p in problems)} measurement(s) failed: see the notes")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
