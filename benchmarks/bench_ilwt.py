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
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

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


def run_case(run, op, batch, size, peers, rows):
    device, log = run.device, run.log
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
    impls = {backend: run.measure(fn, backend) for backend in ("native", "reference")}

    # peers
    pywt, _, pywt_why = peers["pywt"]
    if pywt is None:
        impls["pywt"] = {"status": pywt_why}
    elif device.type != "cpu":
        impls["pywt"] = {"status": "n/a (CPU only)"}
    elif op != "fwd+inv":
        impls["pywt"] = {"status": "n/a (no autograd)"}
    else:
        impls["pywt"] = run.measure(_pywt_fwd_inv(pywt, x_cpu.numpy()))
    ptwt, _, ptwt_why = peers["pytorch_wavelets"]
    if ptwt is None:
        impls["ptwt"] = {"status": ptwt_why}
    else:
        fwd, inv = _ptwt_modules(ptwt, device)
        if op == "fwd+inv":
            impls["ptwt"] = run.measure(_ptwt_fwd_inv(fwd, inv, x))
        else:
            impls["ptwt"] = run.measure(_ptwt_fwd_bwd(fwd, x.clone().requires_grad_(True)))

    row.update({name: result for name, result in impls.items()})
    row["native_ms"] = harness.median_or_status(impls["native"])
    row["reference_ms"] = harness.median_or_status(impls["reference"])
    row["pywt_ms"] = harness.median_or_status(impls["pywt"])
    row["ptwt_ms"] = harness.median_or_status(impls["ptwt"])
    run.add_speed(row, impls, traffic)
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
        notes += harness.copy_target_notes(rows, ("fwd+inv",))
    return notes


def _problems(rows) -> list[str]:
    """Errors and failed native-vs-reference checks, one line each."""
    out = []
    for r in rows:
        case = f"{r['op']} B = {r['B']} {r['size']}"
        out += harness.measurement_errors(r, ("native", "reference", "pywt", "ptwt"), case)
        check = r.get("check") or {}
        if "error" in check:
            out.append(f"ERROR in the native check, {case}: {check['error']}")
        elif check and not (check["forward_equal"] and check["round_trip_exact"]):
            out.append(f"CHECK FAILED, {case}: native {check} (forward equal to the reference, exact round trip)")
    return out


def main(argv=None) -> int:
    args = harness.parse_args(harness.make_parser(__doc__.splitlines()[0]), argv)
    run = harness.BenchmarkRun(args)
    peers = {
        "pywt": _load_peer("pywt", "PyWavelets"),
        "pytorch_wavelets": _load_peer("pytorch_wavelets", "pytorch_wavelets"),
    }
    cases = QUICK_CASES if args.quick else [(b, s) for s in SIZES for b in BATCHES]
    rows: list[dict] = []
    for batch, size in cases:
        for op in ("fwd+inv", "fwd+bwd"):
            run_case(run, op, batch, size, peers, rows)

    peer_versions = {name: (ver or why) for name, (_, ver, why) in peers.items()}
    notes = [
        run.timing_note(),
        "fwd+inv: ilwt53_inverse(ilwt53_forward(x)) on integer-valued float32 (0..255), rounding=True. "
        "fwd+bwd: ilwt53_forward(x) then torch.autograd.grad(y, x, g) for a fixed random g.",
        run.copy_note(
            "native GB/s counts the two kernels' traffic: input + bands written + bands read + "
            "output (4 tensors of the image's size for even H, W)."
        ),
        "Peers are float DWTs ('bior2.2', the float CDF 5/3, mode='symmetric') with other boundary "
        "handling and subbands 2 samples longer: speed context only, not the same transform. "
        f"PyWavelets runs single-threaded on numpy and has no autograd. Versions: {peer_versions}.",
        run.wall_note(),
        *_target_notes(rows, run.device),
    ]
    return run.finish(
        "ilwt",
        rows,
        columns=COLUMNS,
        title="stegafast ILWT 5/3 benchmark",
        notes=notes,
        problems=_problems(rows),
        extra={"peers": peer_versions},
    )


if __name__ == "__main__":
    sys.exit(main())
