"""`stegafast info`: version, torch, build, backend, which kernels are native, and the bundled checkpoints."""

from __future__ import annotations

import json
import platform

import torch

from .. import _native, backend
from .._version import __version__
from ..ops import registration
from ..train import bundled

DEVICES = ("cpu", "cuda")


def add_parser(sub) -> None:
    """Add ``stegafast info`` (the build and which kernels run natively) to ``sub``."""
    p = sub.add_parser("info", help="show the build, which kernels run natively and the bundled checkpoints")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(run=run)


def collect() -> dict:
    """The facts ``stegafast info`` prints, as a JSON-able dict.

    Versions (stegafast, Python, torch, CUDA), the GPU if any, whether ``_C`` loaded and why not, the CPU variant, the
    build info, the current backend, and per declared op its kernel, autocast policy and, per device, ``"native"`` or
    the reason it is unavailable; ``bundled``: family -> facts of each shipped checkpoint (``bundled_checkpoints``).
    """
    status = _native.status()
    ops = {}
    for op in registration.declared():
        ops[op.name] = {
            "kernel": op.kernel,
            "autocast": op.autocast,
            "devices": {d: _native.unavailable_reason(op.name, d) or "native" for d in DEVICES},
        }
    return {
        "stegafast": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "native_loaded": status.loaded,
        "native_reason": status.reason,
        "cpu_variant": status.cpu_variant,
        "build": status.build_info,
        "backend": backend.get_backend(),
        "ops": ops,
        "bundled": bundled.bundled_checkpoints(),
    }


def _print_text(facts: dict) -> None:
    print(
        f"stegafast {facts['stegafast']}  (python {facts['python']}, torch {facts['torch']}, "
        f"torch CUDA {facts['torch_cuda'] or 'none'})"
    )
    print(f"GPU: {facts['gpu'] or 'none visible'}")
    if facts["native_loaded"]:
        print("native library: loaded")
    else:
        print(f"native library: NOT loaded ({facts['native_reason']}); every op runs its reference")
    build = facts["build"]
    if build:
        cuda = ", ".join(build["cuda_kernels"]) or f"none ({build.get('cuda_skipped_reason')})"
        print(f"build: torch {build['torch_version']}, built {build['built_at']}")
        variant = facts["cpu_variant"] or "not loaded"
        print(
            f"  CPU kernels: {', '.join(build['cpu_kernels'])} (running the {variant} build; "
            "STEGAFAST_CPU_VARIANT=auto|baseline|avx2 chooses it)"
        )
        print(f"  CUDA kernels: {cuda}")
        if build.get("cuda_version"):
            print(f"  CUDA {build['cuda_version']}, arch list {build['cuda_arch_list']}, {build['nvcc']}")
    print(f"backend: {facts['backend']} (STEGAFAST_BACKEND=auto|native|reference)")
    print("operators:")
    width = max((len(n) for n in facts["ops"]), default=0)
    for name, op in facts["ops"].items():
        where = "; ".join(f"{d}: {state}" for d, state in op["devices"].items())
        print(f"  {name:<{width}}  [{op['kernel']}, autocast {op['autocast']}]  {where}")
    _print_bundled(facts["bundled"])


def _print_bundled(shipped: dict) -> None:
    print(f"bundled checkpoints ({bundled.WEIGHTS_DIR}; the default --checkpoint of their family's commands):")
    for family in bundled.BUNDLED_FAMILIES:
        facts = shipped.get(family)
        if facts is None:
            print(f"  {family:<6} not shipped")
        elif "error" in facts:
            print(f"  {family:<6} {facts['bytes'] / 1e6:.2f} MB, unreadable: {facts['error']}")
        else:
            numbers = f"; held-out: {facts['summary']}" if facts["summary"] else ""
            print(
                f"  {family:<6} {facts['bytes'] / 1e6:.2f} MB, {facts['parameters']:,} parameters, "
                f"step {facts['step']}{numbers}"
            )


def run(args) -> int:
    """``stegafast info``: print ``collect()`` as text, or as JSON with ``--json``; returns 0."""
    facts = collect()
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        _print_text(facts)
    return 0
