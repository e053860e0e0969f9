"""The shared timing harness of the stegafast benchmarks.

Every ``benchmarks/bench_*.py`` script uses these small pieces:

* :func:`time_callable`: warm-up, then an adaptive number of timed repeats
  (enough to fill a time budget per case, never fewer than a minimum), reported
  as the median with p10/p90 in milliseconds. CUDA work is timed with
  ``torch.cuda.Event`` pairs and one synchronize; CPU work with
  ``time.perf_counter``.
* :func:`copy_bandwidth_gbs`: the measured device-to-device copy bandwidth
  (read + write bytes), the ceiling a memory-bound kernel is compared with; on
  CPU the same measurement gives a memcpy figure for context.
* :func:`machine_info`: what the numbers were measured on (no hostname).
* :func:`write_results`: ``<out_dir>/<name>.json`` and ``<out_dir>/<name>.md``.
* :func:`make_parser` / :func:`parse_args`: the common command line
  (``--device cpu|cuda``, ``--out DIR``, ``--quick``, ``--budget``).
* :class:`BenchmarkRun`: what every script's ``main`` shares: timing settings,
  a time-stamped log, the machine, the copy-bandwidth ceiling, guarded
  measurements, and writing the results.

Benchmarks are scripts, never assertions on time: nothing here fails because a
number is slow.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

__all__ = [
    "DEFAULT_OUT",
    "BenchmarkRun",
    "median_or_status",
    "Timing",
    "copy_bandwidth_gbs",
    "cpu_model",
    "format_value",
    "machine_info",
    "machine_line",
    "make_parser",
    "markdown_table",
    "parse_args",
    "percentile",
    "synchronize",
    "time_callable",
    "write_results",
]

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


# --- timing --------------------------------------------------------------------


@dataclass
class Timing:
    """Summary of the timed repeats of one callable, in milliseconds."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    warmup_runs: int

    def as_dict(self) -> dict:
        return asdict(self)


def synchronize(device: torch.device | str) -> None:
    """Wait for all queued work on device (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of values, linearly interpolated."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _run_cpu(fn: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _run_cuda(fn: Callable[[], object], n: int, device: torch.device) -> list[float]:
    # One event pair per repeat, all recorded on the current stream; a single
    # synchronize at the end so the host never stalls the queue between repeats.
    with torch.cuda.device(device):
        stream = torch.cuda.current_stream(device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
        synchronize(device)
        for start, end in events:
            start.record(stream)
            fn()
            end.record(stream)
        synchronize(device)
        return [start.elapsed_time(end) for start, end in events]


def _run(fn: Callable[[], object], n: int, device: torch.device) -> list[float]:
    return _run_cuda(fn, n, device) if device.type == "cuda" else _run_cpu(fn, n)


def time_callable(
    fn: Callable[[], object],
    device: torch.device | str = "cpu",
    *,
    budget_s: float = 1.5,
    min_runs: int = 5,
    max_runs: int = 1000,
    warmup_runs: int = 2,
    warmup_s: float = 0.1,
    warmup_cap_s: float = 2.0,
    max_case_s: float | None = 20.0,
    floor_runs: int = 3,
) -> Timing:
    """Time fn() on device: warm-up, then repeats filling about budget_s.

    Warm-up runs at least ``warmup_runs`` calls and goes on until ``warmup_s``
    has passed (a single call when it alone takes over ``warmup_cap_s``); the
    median of its calls after the first sets the repeat count
    ``clamp(budget_s / t, min_runs, max_runs)``. When even ``min_runs`` repeats
    would exceed ``max_case_s`` (heavy cases on a small CPU) the count drops to
    what fits, but never below ``floor_runs``.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    # warm-up (also pays for first-call allocations, autotuning and lazy init)
    warm_times: list[float] = []
    start = time.perf_counter()
    while True:
        warm_times.extend(_run(fn, 1, device))
        elapsed = time.perf_counter() - start
        enough = len(warm_times) >= warmup_runs and elapsed >= warmup_s
        # a heavy case needs no second warm-up call once one took over warmup_cap_s
        if enough or elapsed >= warmup_cap_s or len(warm_times) >= 1000:
            break
    settled = warm_times[1:] or warm_times  # the first call pays for lazy set-up
    per_call_s = max(statistics.median(settled), 1e-6) / 1e3
    runs = int(budget_s / per_call_s)
    runs = max(min_runs, min(max_runs, runs))
    if max_case_s is not None and runs * per_call_s > max_case_s:
        runs = max(floor_runs, int(max_case_s / per_call_s))
    times = _run(fn, runs, device)
    return Timing(
        median_ms=statistics.median(times),
        p10_ms=percentile(times, 10),
        p90_ms=percentile(times, 90),
        mean_ms=statistics.fmean(times),
        min_ms=min(times),
        runs=len(times),
        warmup_runs=len(warm_times),
    )


def time_steps(fn: Callable[[], object], device: torch.device | str, steps: int) -> Timing:
    """Exactly ``steps`` timed calls after one warm-up call: for training steps, each too heavy
    for a time budget and each changing the model (so no calibration runs)."""
    return time_callable(
        fn,
        device,
        budget_s=0.0,
        min_runs=steps,
        max_runs=steps,
        warmup_runs=1,
        warmup_s=0.0,
        warmup_cap_s=0.0,
        max_case_s=None,
    )


def step_row(timing: Timing, batch: int) -> dict:
    """The table fields of a timed training step: its statistics and the images per second."""
    return {
        "median_ms": timing.median_ms,
        "p10_ms": timing.p10_ms,
        "p90_ms": timing.p90_ms,
        "min_ms": timing.min_ms,
        "runs": timing.runs,
        "warmup_runs": timing.warmup_runs,
        "images_per_s": batch / (timing.median_ms / 1e3),
    }


def copy_bandwidth_gbs(device: torch.device | str, nbytes: int = 256 * 2**20, *, budget_s: float = 1.0) -> dict:
    """Measured copy bandwidth of ``dst.copy_(src)`` for an nbytes buffer, in GB/s.

    The figure counts read + write bytes (2 * nbytes per copy), the same way
    :func:`effective_bandwidth_gbs` counts a kernel's traffic, so a kernel's
    fraction of it is a fair "fraction of achievable memory bandwidth". On CUDA
    this is the device-to-device ceiling; on CPU it is torch's (threaded) memcpy,
    for context only.
    """
    device = torch.device(device)
    numel = nbytes // 4
    src = torch.empty(numel, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    timing = time_callable(lambda d=dst, s=src: d.copy_(s), device, budget_s=budget_s, min_runs=10)
    bytes_moved = 2 * numel * 4
    result = {
        "device": str(device),
        "buffer_bytes": numel * 4,
        "bytes_counted_per_copy": bytes_moved,
        "median_ms": timing.median_ms,
        "runs": timing.runs,
        "gbs": effective_bandwidth_gbs(bytes_moved, timing.median_ms),
        "gbs_p90_time": effective_bandwidth_gbs(bytes_moved, timing.p90_ms),
    }
    del src, dst
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def effective_bandwidth_gbs(nbytes: float, ms: float) -> float:
    """Bytes moved over time, in GB/s (1 GB = 1e9 bytes)."""
    return nbytes / (ms * 1e-3) / 1e9 if ms > 0 else float("nan")


# --- machine description --------------------------------------------------------


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _stegafast_info() -> dict:
    try:
        import stegafast
        from stegafast import _native
    except Exception as exc:  # a benchmark should still say what it could not import
        return {"error": f"stegafast could not be imported: {exc}"}
    status = _native.status()
    return {
        "version": stegafast.__version__,
        "native_loaded": status.loaded,
        "native_reason": status.reason,
        "build_info": _native.build_info(),
        "backend_env": os.environ.get("STEGAFAST_BACKEND", ""),
    }


def machine_info(device: torch.device | str = "cpu") -> dict:
    """What a result was measured on: date (UTC), CPU, cores, torch, stegafast, GPU.

    Deliberately hostname-free, so results can be committed and quoted.
    """
    device = torch.device(device)
    info = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cuda": torch.version.cuda,
        "stegafast": _stegafast_info(),
        "device": str(device),
        # other work on the machine inflates CPU timings: the 1, 5 and 15 minute
        # load averages when the benchmark started say whether it was idle
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info["gpu"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
        }
    return info


def machine_line(info: dict) -> str:
    """One line describing the machine, for the top of a markdown report."""
    sf = info.get("stegafast", {})
    build = sf.get("build_info") or {}
    native = "native loaded" if sf.get("native_loaded") else f"native NOT loaded ({sf.get('native_reason')})"
    parts = [
        info["date_utc"],
        f"{info['cpu_model']} ({info['cpu_count']} cores, torch threads {info['torch_threads']})",
        f"torch {info['torch_version']}",
        f"stegafast {sf.get('version', '?')} built {build.get('built_at', '?')} ({native}; CPU kernels: "
        f"{', '.join(build.get('cpu_kernels') or []) or 'none'}; CUDA kernels: "
        f"{', '.join(build.get('cuda_kernels') or []) or 'none'})",
        f"Python {info['python']}",
    ]
    if info.get("load_average"):
        parts.append(f"load average at start {info['load_average'][0]:.2f}")
    if "gpu" in info:
        gpu = info["gpu"]
        parts.insert(
            2, f"GPU {gpu['name']} (sm {gpu['capability']}, {gpu['memory_gib']} GiB, CUDA {info['torch_cuda']})"
        )
    return "; ".join(parts)


# --- results ------------------------------------------------------------------


def format_value(value, digits: int = 3) -> str:
    """A table cell: floats to `digits` significant figures, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value == 0:
            return "0"
        magnitude = math.floor(math.log10(abs(value)))
        decimals = max(0, digits - 1 - magnitude)
        return f"{value:.{decimals}f}"
    return str(value)


def markdown_table(rows: Iterable[dict], columns: Sequence[tuple[str, str]] | None = None) -> str:
    """A markdown table of rows; columns are (key, header) pairs (default: all keys)."""
    rows = list(rows)
    if columns is None:
        keys: list[str] = []
        for row in rows:
            keys.extend(k for k in row if k not in keys)
        columns = [(k, k) for k in keys]
    header = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(format_value(row.get(k)).replace("|", "\\|") for k, _ in columns) + " |" for row in rows]
    return "\n".join([header, rule, *body])


def _json_default(obj):
    if isinstance(obj, (torch.dtype, torch.device, Path)):
        return str(obj)
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_results(
    name: str,
    rows: list[dict],
    out_dir: str | os.PathLike = DEFAULT_OUT,
    *,
    machine: dict | None = None,
    columns: Sequence[tuple[str, str]] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
    extra: dict | None = None,
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` (everything) and ``<out_dir>/<name>.md`` (a table).

    The JSON holds the machine description, any ``extra`` fields and every row
    in full; the markdown has a title, a header line with the machine and date,
    the table of the chosen columns and the notes as a list.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine if machine is not None else machine_info()
    payload = {"name": name, "machine": machine, **(extra or {}), "rows": rows}
    json_path = out / f"{name}.json"
    md_path = out / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n", encoding="utf-8")
    lines = [f"# {title or name}", "", f"Measured {machine_line(machine)}.", ""]
    lines.append(markdown_table(rows, columns))
    if notes:
        lines.append("")
        lines.extend(f"- {note}" for note in notes)
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return json_path, md_path


# --- command line ---------------------------------------------------------------


def make_parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: --device, --out, --quick."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default cpu)")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for the JSON and markdown results (default benchmarks/results)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer and smaller cases: a smoke test")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds of timed repeats per measurement (default 1.5, 0.25 with --quick)",
    )
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse, and refuse --device cuda where no GPU is visible."""
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device cuda: torch sees no CUDA device (torch {torch.__version__})")
    args.device = torch.device(args.device)
    return args


# --- one run ---------------------------------------------------------------------


def median_or_status(result: dict):
    """The median ms of a measurement, or why there is none."""
    return result["timing"]["median_ms"] if "timing" in result else result["status"]


def copy_target_notes(rows: Sequence[dict], ops: Sequence[str], fraction: float = 0.7) -> list[str]:
    """One line per row of ``ops`` saying whether the native kernel reached ``fraction`` of
    the measured copy bandwidth (the GPU target), or that no native kernel ran."""
    notes = []
    for r in rows:
        if r["op"] in ops and "native_copy_fraction" in r:
            verdict = "met" if r["native_copy_fraction"] >= fraction else "NOT met"
            notes.append(
                f"Target native {r['op']} >= {100 * fraction:.0f}% of copy bandwidth, B = {r['B']} "
                f"{r['size']}: {100 * r['native_copy_fraction']:.0f}%, {verdict}."
            )
    if not any("native_copy_fraction" in r for r in rows):
        notes.append("GPU target not assessed: no native CUDA kernel ran (see the native column).")
    return notes


def measurement_errors(row: dict, impls: Sequence[str], case: str) -> list[str]:
    """An "ERROR in <impl>, <case>: ..." line for each of ``impls`` whose measurement failed."""
    return [f"ERROR in {impl}, {case}: {row[impl]['detail']}" for impl in impls if row[impl].get("status") == "error"]


class BenchmarkRun:
    """The parts of a benchmark's ``main`` that every script shares."""

    def __init__(self, args: argparse.Namespace, *, copy_bandwidth: bool = True):
        """``copy_bandwidth=False`` for benchmarks that report no bandwidth (training steps)."""
        self.args = args
        self.device = args.device
        quick = args.quick
        self.budget = args.budget if args.budget is not None else (0.25 if quick else 1.5)
        self.timing_kw = {
            "budget_s": self.budget,
            "min_runs": 3 if quick else 5,
            "max_case_s": 2.0 if quick else 12.0,
            "floor_runs": 3,
            "warmup_s": 0.05 if quick else 0.2,
        }
        self.started = time.perf_counter()
        torch.manual_seed(0)
        self.info = machine_info(self.device)
        self.log(machine_line(self.info))
        self.copy = None
        if copy_bandwidth:
            self.copy = copy_bandwidth_gbs(self.device, (64 if quick else 256) * 2**20, budget_s=0.3 if quick else 1.0)
            self.log(f"copy bandwidth ({self.device.type}, read+write): {self.copy['gbs']:.1f} GB/s")

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def measure(self, fn: Callable[[], object], backend: str | None = None) -> dict:
        """{'timing': {...}} or {'status': why not}; backend wraps the calls."""
        from stegafast import NativeKernelUnavailable, use_backend

        try:
            if backend is None:
                t = time_callable(fn, self.device, **self.timing_kw)
            else:
                with use_backend(backend):
                    t = time_callable(fn, self.device, **self.timing_kw)
        except NativeKernelUnavailable as exc:
            return {"status": "no native kernel", "detail": str(exc)}
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return {"status": "out of memory"}
        except Exception as exc:  # keep the other cases' results; finish() exits non-zero
            return {"status": "error", "detail": f"{type(exc).__name__}: {exc}"}
        return {"timing": t.as_dict()}

    def add_speed(self, row: dict, impls: dict, traffic_bytes: float) -> None:
        """Native's speed-up over the reference (medians, and fastest runs: less
        sensitive to other work on a shared machine) and its effective bandwidth
        against the measured copy ceiling, into row."""
        native, ref = impls["native"], impls["reference"]
        if "timing" in native and "timing" in ref:
            row["speedup"] = ref["timing"]["median_ms"] / native["timing"]["median_ms"]
            row["speedup_of_minimums"] = ref["timing"]["min_ms"] / native["timing"]["min_ms"]
        if "timing" in native:
            gbs = effective_bandwidth_gbs(traffic_bytes, native["timing"]["median_ms"])
            row["native_gbs"] = gbs
            row["native_copy_fraction"] = gbs / self.copy["gbs"]
            row["native_copy_pct"] = 100 * gbs / self.copy["gbs"]

    def timing_note(self) -> str:
        clock = "CUDA events" if self.device.type == "cuda" else "perf_counter"
        return (
            f"Medians of repeated runs after warm-up ({clock}); p10/p90 and run counts are in the "
            f"JSON. Budget {self.budget} s per measurement."
        )

    def copy_note(self, traffic: str) -> str:
        what = "device-to-device copy" if self.device.type == "cuda" else "CPU memcpy (torch copy_, for context)"
        return (
            f"Measured {what} bandwidth: {self.copy['gbs']:.1f} GB/s (read + write bytes, "
            f"{self.copy['buffer_bytes'] // 2**20} MiB buffer). {traffic}"
        )

    def wall_note(self) -> str:
        note = f"Wall time of the whole run: {time.perf_counter() - self.started:.0f} s."
        if self.info.get("load_average") and hasattr(os, "getloadavg"):
            note += (
                f" Load average (1 min) at start {self.info['load_average'][0]:.2f}, at end "
                f"{os.getloadavg()[0]:.2f}, on {self.info['cpu_count']} cores (other work on the "
                "machine inflates CPU timings, the reference's most)."
            )
        return note

    def finish(
        self,
        stem: str,
        rows: list[dict],
        *,
        columns,
        title: str,
        notes: Sequence[str],
        problems: Sequence[str],
        extra: dict | None = None,
    ) -> int:
        """Write <stem>_<device>[_quick].json/.md, print the table; 1 if any measurement failed."""
        quick = self.args.quick
        name = f"{stem}_{self.device.type}{'_quick' if quick else ''}"
        json_path, md_path = write_results(
            name,
            rows,
            self.args.out,
            machine=self.info,
            columns=columns,
            title=f"{title} ({self.device.type}{', quick' if quick else ''})",
            notes=[*notes, *problems],
            extra={
                "device": str(self.device),
                "quick": quick,
                "timing": self.timing_kw,
                **({"copy_bandwidth": self.copy} if self.copy is not None else {}),
                "wall_s": time.perf_counter() - self.started,
                "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                **(extra or {}),
            },
        )
        self.log(f"wrote {json_path} and {md_path}")
        print(md_path.read_text(encoding="utf-8"))
        errors = sum(p.startswith("ERROR") for p in problems)
        if errors:
            self.log(f"{errors} measurement(s) failed: see the notes")
        return 1 if errors else 0
