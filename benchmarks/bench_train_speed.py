"""Whole training steps of every family: eager vs ``torch.compile``, fp32 vs bf16, NCHW vs channels-last.

Each family's own ``Task.training_step`` (its models, losses and ``ctx.backward``), run as
the engine runs it (every phase of one step, zeroed gradients, autocast, the optimisers'
steps), on one fixed synthetic batch, for eight variants per family: eager or compiled
(the engine's ``--compile``: each model wrapped in ``torch.compile``, inductor, and the
losses the tasks compile through ``ctx.compiled``), AMP off or
bf16 (``--amp``), NCHW or channels-last (``--channels-last``, ``stegafast.train.memory_format``).

The machine is shared: the variants of a family are timed in interleaved rounds (round r
times every variant once, in turn), so that other work slows all of them alike, and each
variant's figure is the median of all its timed steps. The load average is recorded before
and after each family. Compile time is the compiled variant's first step (dynamo, AOTAutograd
and inductor for the forward and the backward) less the eager variant's first step.
Finally one compiled step of each family is profiled (torch.profiler, CPU) and its five most
expensive operators by self time are named.

    python benchmarks/bench_train_speed.py --device cpu --quick        # tiny models, 3 rounds
    python benchmarks/bench_train_speed.py --device cpu --families stego,codec --rounds 5

Writes ``<out>/train_speed_<device>[_quick].json`` and ``.md``. ``bench_train_speed.py merge NAME
a.json b.json ...`` joins the results of several runs into ``benchmarks/results/NAME.json`` and ``.md``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import default_collate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from stegafast.train import OptimizerSpec, Phase, StepContext, TrainConfig, resolve_amp  # noqa: E402
from stegafast.train.data import to_device  # noqa: E402
from stegafast.train.memory_format import batch_to_channels_last, models_to_channels_last  # noqa: E402
from stegafast.train.task import built_models  # noqa: E402

# One fixed step of a long run: step-dependent schedules (loss ramps, perturbation start)
# stay constant, so a compiled graph is never invalidated by the step number.
STEP, TOTAL_STEPS = 500, 1000

COLUMNS = [
    ("family", "family"),
    ("mode", "mode"),
    ("amp", "AMP"),
    ("format", "format"),
    ("median_ms", "step ms (median)"),
    ("images_per_s", "images/s"),
    ("speedup", "vs eager fp32 NCHW"),
    ("compile_s", "compile s"),
    ("steps_timed", "timed steps"),
]


# --- the families, at benchmark sizes ----------------------------------------------------


def _stego(quick: bool):
    from stegafast.models.stego import StegoLossConfig, StegoModelConfig, StegoTask

    model = StegoModelConfig(blocks=2, hidden=16) if quick else StegoModelConfig(blocks=4, hidden=64)
    return StegoTask(model, StegoLossConfig(perturb_from=0.9), image_size=32 if quick else 64)


def _stamp(quick: bool):
    from stegafast.models.stamp import StampLossConfig, StampModelConfig, StampNoiseConfig, StampTask

    losses = StampLossConfig(no_image_loss_steps=0, l2_ramp=1, critic_ramp=1, l2_edge_delay=0, l2_edge_ramp=1)
    size = 32 if quick else 64
    return StampTask(StampModelConfig(image_size=size), losses, StampNoiseConfig().scaled(0.001), epoch_length=8)


def _codec(quick: bool):
    from stegafast.models.codec import CodecConfig, CodecTask

    config = CodecConfig(N=16, M=24) if quick else CodecConfig(N=64, M=96)
    return CodecTask(config, image_size=64 if quick else 128, epoch_length=8)


def _autoencoder(quick: bool):
    from stegafast.models.autoencoder import AutoencoderTask, preset_config

    channels = (8, 16, 16) if quick else (32, 64, 64)
    config = preset_config("tiny", (32, 32) if quick else (64, 64), channel_config=channels, latent_size=16)
    return AutoencoderTask(config, epoch_length=8)


def _diffusion(quick: bool):
    from stegafast.models.diffusion.config import PhysicsConfig, UNetConfig
    from stegafast.models.diffusion.task import DiffusionTask

    model = UNetConfig(block_out_channels=(8, 16, 16, 16) if quick else (32, 64, 64, 64), layers_per_block=1)
    physics = PhysicsConfig(image_size=16 if quick else 32, psf_size=5, psf_sigma=1.0)
    return DiffusionTask(model, physics, epoch_length=8, val_length=2)


def _dcae(quick: bool):
    from stegafast.models.codec import DCAE_PRESETS, CodecTask

    config = DCAE_PRESETS["tiny"]
    return CodecTask(config, image_size=64 if quick else 128, epoch_length=8)


FAMILIES: dict[str, Callable] = {
    "stego": _stego,
    "stamp": _stamp,
    "codec": _codec,
    "autoencoder": _autoencoder,
    "diffusion": _diffusion,
    "dcae": _dcae,
}


# --- one variant: a task's models, optimisers and batch, set up as the engine would -------


@dataclass(frozen=True)
class Variant:
    compiled: bool
    amp: str
    channels_last: bool

    @property
    def label(self) -> str:
        return f"{'compiled' if self.compiled else 'eager'} {self.amp} {'CL' if self.channels_last else 'NCHW'}"


VARIANTS = [Variant(c, a, cl) for c in (False, True) for a in ("off", "bf16") for cl in (False, True)]


def _variant_name(v: Variant) -> str:
    return f"{'compiled' if v.compiled else 'eager'}-{v.amp}-{'cl' if v.channels_last else 'nchw'}"


VARIANT_NAMES = {_variant_name(v): v for v in VARIANTS}


def _optimizers(task, modules, batch: int) -> dict[str, torch.optim.Optimizer]:
    config = TrainConfig(out="unused", steps=TOTAL_STEPS, batch_size=batch, device="cpu")
    built = task.build_optimizers(modules, config)
    specs = {"main": built} if isinstance(built, (torch.optim.Optimizer, OptimizerSpec)) else dict(built)
    return {n: s.optimizer if isinstance(s, OptimizerSpec) else s for n, s in specs.items()}


class Stepper:
    """One family in one variant: ``step()`` runs one whole training step."""

    def __init__(self, family: str, variant: Variant, quick: bool, batch: int, device: torch.device):
        torch.manual_seed(0)
        self.task = FAMILIES[family](quick)
        self.modules = {n: m.to(device) for n, m in built_models(self.task).items()}
        data = self.task.train_dataset()
        collate = self.task.collate_fn or default_collate
        self.batch = to_device(collate([data[i % len(data)] for i in range(batch)]), device)
        if variant.channels_last:
            models_to_channels_last(self.modules)
            self.batch = batch_to_channels_last(self.batch)
        models = dict(self.modules)
        if variant.compiled:
            models = {n: torch.compile(m) for n, m in models.items()}
        self.optimizers = _optimizers(self.task, self.modules, batch)
        self.amp = resolve_amp(variant.amp, device.type)
        self.ctx = StepContext(
            models=models,
            modules=self.modules,
            optimizer_names=list(self.optimizers),
            device=device,
            amp=self.amp,
            scaler=self.amp.make_scaler(),
            grad_accum=1,
            total_steps=TOTAL_STEPS,
            training=True,
            compile_mode="default" if variant.compiled else None,  # the losses tasks compile (ctx.compiled)
        )
        self.ctx.step = STEP

    def step(self) -> None:
        for phase in self.task.phases(STEP, TOTAL_STEPS):
            phase = Phase(*phase) if isinstance(phase, tuple) else phase
            for _ in range(phase.repeats):
                for module in self.modules.values():
                    module.zero_grad(set_to_none=True)
                self.ctx.phase, self.ctx.touched = phase.name, set()
                with self.amp.autocast():
                    self.task.training_step(self.batch, self.ctx)
                for name in self.ctx.touched:
                    self.optimizers[name].step()


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- the measurements ----------------------------------------------------------------------


def measure_family(family: str, args, batch: int, log) -> tuple[list[dict], dict]:
    """The variants' rows (interleaved rounds), and the family's profile of a compiled bf16 step."""
    load_before = os.getloadavg()
    steppers, first_s, times = {}, {}, {}
    variants = args.variants
    for variant in variants:
        stepper = Stepper(family, variant, args.quick, batch, args.device)
        first_s[variant] = _timed(stepper.step)
        stepper.step()  # a second warm-up step: lazy state (Adam's moments, ActNorm) is set up
        steppers[variant], times[variant] = stepper, []
        log(f"{family:11s} {variant.label:22s} first step {first_s[variant]:7.2f} s")
    for _ in range(args.rounds):
        for variant, stepper in steppers.items():
            for _ in range(args.steps):
                times[variant].append(_timed(stepper.step))
    load_after = os.getloadavg()
    rows = []
    for variant in variants:
        median_ms = 1e3 * statistics.median(times[variant])
        eager = Variant(False, variant.amp, variant.channels_last)
        rows.append(
            {
                "family": family,
                "mode": "compiled" if variant.compiled else "eager",
                "amp": variant.amp,
                "format": "channels-last" if variant.channels_last else "NCHW",
                "batch": batch,
                "median_ms": median_ms,
                "p10_ms": 1e3 * harness.percentile(times[variant], 10),
                "p90_ms": 1e3 * harness.percentile(times[variant], 90),
                "images_per_s": batch / (median_ms / 1e3),
                "compile_s": first_s[variant] - first_s[eager] if variant.compiled and eager in first_s else None,
                "first_step_s": first_s[variant],
                "steps_timed": len(times[variant]),
                "load_average_before": list(load_before),
                "load_average_after": list(load_after),
            }
        )
    base = rows[0]["median_ms"]  # eager fp32 NCHW
    for row in rows:
        row["speedup"] = base / row["median_ms"]
    compiled_bf16 = [v for v in variants if v.compiled and v.amp == "bf16"]
    profile = profile_step(steppers[compiled_bf16[0]], args.top, args.profile_steps) if compiled_bf16 else {}
    for variant, row in zip(variants, rows, strict=True):
        log(f"{family:11s} {variant.label:22s} {row['images_per_s']:9.1f} images/s")
    return rows, profile


def _kind(name: str) -> str:
    """Which part of the step a profiled event is: inductor's generated code (the self time of its
    graph call), a native stegafast op, the optimiser, or an ATen op (eager, or a convolution or
    matmul that inductor's code calls out to)."""
    if "CompiledFxGraph" in name or "CompiledFunction" in name or name.startswith("graph_"):
        return "compiled code"
    if name.startswith("stegafast::"):
        return "native ops"
    if name.startswith("Optimizer."):
        return "optimiser"
    if name.startswith("aten::"):
        return "ATen ops"
    return "other"


def profile_step(stepper: Stepper, top: int, steps: int) -> dict:
    """The ``top`` operators of ``steps`` (warm) steps by self CPU time, with their share of the total, and the
    shares of compiled code, native ops, the optimiser and ATen ops. On a loaded machine an op that was running
    when the process was preempted takes the wait: several steps even that out."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            stepper.step()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    kinds: dict[str, float] = {}
    for e in events:
        kinds[_kind(e.key)] = kinds.get(_kind(e.key), 0.0) + e.self_cpu_time_total / total
    return {
        "steps": steps,
        "total_self_ms": total / 1e3 / steps,
        "kinds": kinds,
        "top": [
            {
                "name": e.key,
                "self_ms": e.self_cpu_time_total / 1e3 / steps,
                "share": e.self_cpu_time_total / total,
                "calls": e.count / steps,
            }
            for e in events[:top]
        ],
    }


def _target_notes(rows: list[dict], profiles: dict[str, dict]) -> list[str]:
    notes = []
    for family, profile in profiles.items():
        if not profile:  # no compiled bf16 variant measured
            continue
        mine = [r for r in rows if r["family"] == family]
        best = max((r for r in mine if r["mode"] == "compiled" and r["amp"] == "bf16"), key=lambda r: r["speedup"])
        verdict = "met" if best["speedup"] >= 1.5 else "NOT met"
        compiled = [r for r in mine if r["mode"] == "compiled"]
        profiled = next(r for r in compiled if r["amp"] == "bf16")  # measure_family profiles the first such
        slower = [f"{r['amp']} {r['format']}" for r in compiled if r["speedup"] < _eager(mine, r)]
        top = ", ".join(f"{t['name']} {100 * t['share']:.0f}%" for t in profile["top"])
        kinds = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(profile.get("kinds", {}).items()))
        notes.append(
            f"{family}: compiled bf16 ({best['format']}) {best['speedup']:.2f}x eager fp32 NCHW, "
            f"target 1.5x {verdict}; "
            f"compiled slower than eager in: {', '.join(slower) or 'none'}; top self-time operators of a compiled "
            f"bf16 {profiled['format']} step ({profile['total_self_ms']:.1f} ms, {profile.get('steps', 1)} step(s) "
            f"profiled): {top}" + (f"; by kind: {kinds}." if kinds else ".")
        )
    return notes


def _eager(rows: list[dict], compiled: dict) -> float:
    """The speed-up of the eager row with the compiled row's AMP and format."""
    return next(
        r["speedup"]
        for r in rows
        if r["mode"] == "eager" and r["amp"] == compiled["amp"] and r["format"] == compiled["format"]
    )


def merge(paths: list[Path], out: Path, name: str) -> int:
    """One table (``<out>/<name>.json`` and ``.md``) from the JSON results of several runs (families
    measured in separate invocations, say), each run's machine line, load and settings kept in the notes."""
    runs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    rows = [row for run in runs for row in run["rows"]]
    profiles = {family: profile for run in runs for family, profile in run["profiles"].items()}
    notes = [
        f"Families {', '.join(sorted({r['family'] for r in run['rows']}))}: measured "
        f"{harness.machine_line(run['machine'])}; "
        f"batch {run['batch']}, {run['rounds']} rounds x {run['steps']} steps, load average at end "
        f"{run['load_average_at_end'][0]:.2f}, wall {run['wall_s']:.0f} s."
        for run in runs
    ]
    notes += _target_notes(rows, profiles)
    harness.write_results(
        name,
        rows,
        out,
        machine=runs[-1]["machine"],
        columns=COLUMNS,
        title="stegafast training speed: eager vs compiled, fp32 vs bf16, NCHW vs channels-last (merged runs)",
        notes=notes,
        extra={
            "merged_from": [str(p) for p in paths],
            "runs": [{k: v for k, v in r.items() if k != "rows"} for r in runs],
            "profiles": profiles,
        },
    )
    return 0


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "merge":  # bench_train_speed.py merge OUT_NAME a.json b.json ...
        if len(argv) < 3:
            print("usage: bench_train_speed.py merge OUT_NAME RESULT.json [RESULT.json ...]", file=sys.stderr)
            return 2
        return merge([Path(p) for p in argv[2:]], harness.DEFAULT_OUT, argv[1])
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of timed steps (default 3)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per variant and round (default 2)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 2 with --quick, else 8)")
    parser.add_argument("--top", type=int, default=5, help="operators named per profile (default 5)")
    parser.add_argument("--profile-steps", type=int, default=3, help="steps profiled per family (default 3)")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANT_NAMES),
        help="comma-separated, eager-off-nchw first (the baseline), of: %(default)s",
    )
    args = harness.parse_args(parser, argv)
    families = [f for f in args.families.split(",") if f]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"--families: unknown {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    try:
        args.variants = [VARIANT_NAMES[name] for name in args.variants.split(",") if name]
    except KeyError as exc:
        parser.error(f"--variants: unknown {exc}; choose from {', '.join(VARIANT_NAMES)}")
    if args.variants[0] != VARIANTS[0]:
        parser.error("--variants must start with eager-off-nchw, the baseline of the speed-ups")
    batch = args.batch or (2 if args.quick else 8)
    run = harness.BenchmarkRun(args, copy_bandwidth=False)
    rows, profiles, problems = [], {}, []
    status = 0
    for family in families:
        try:
            family_rows, profiles[family] = measure_family(family, args, batch, run.log)
        except Exception as exc:  # keep the other families' results; finish() exits non-zero
            problems.append(f"ERROR in {family}: {type(exc).__name__}: {exc}")
            run.log(problems[-1])
            family_rows = []
        rows.extend(family_rows)
        status = _write(run, rows, profiles, problems, args, batch)  # after each family: a long run keeps its part
    return status


def _write(run, rows: list[dict], profiles: dict, problems: list[str], args, batch: int) -> int:
    notes = [
        f"One step = every phase of the family's training step at a fixed step {STEP} of {TOTAL_STEPS} "
        f"(forward, loss, backward, optimiser), batch {batch}, {'tiny (--quick)' if args.quick else 'small'} models "
        f"(sizes in bench_train_speed.py). {args.rounds} interleaved rounds x {args.steps} steps per variant after "
        "two warm-up steps; medians (p10/p90 and the load averages per family in the JSON).",
        "compiled: as the engine's --compile: each model's forward through torch.compile (inductor, default mode), "
        "and the losses the tasks pass through ctx.compiled (stego, stamp's image loss, codec and DCAE, "
        "autoencoder). Compile time: first compiled step less first eager step.",
        f"torch threads: {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}).",
        *_target_notes(rows, profiles),
        run.wall_note(),
    ]
    return run.finish(
        "train_speed",
        rows,
        columns=COLUMNS,
        title="stegafast training speed: eager vs compiled, fp32 vs bf16, NCHW vs channels-last",
        notes=notes,
        problems=problems,
        extra={"rounds": args.rounds, "steps": args.steps, "batch": batch, "profiles": profiles},
    )


if __name__ == "__main__":
    sys.exit(main())
