"""Compile-check every CUDA source under csrc/ without a GPU.

Runs ``nvcc -c`` (no link) on each ``csrc/**/*.cu`` against the installed
torch's headers with the flags torch's extension build uses, for sm_80 and
sm_90, and reports per file. No GPU and no CUDA build of torch are needed: the
CPU wheel ships the ATen/cuda and c10/cuda headers, and the one generated header
it lacks (c10/cuda/impl/cuda_cmake_macros.h) is stubbed in a temporary folder.

    python tools/check_cuda_compile.py [--allow-missing-nvcc] [--jobs N] [FILE ...]

Exit status: 0 when every file compiles (or nvcc is missing and
--allow-missing-nvcc was given), 1 otherwise, with nvcc's output.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
ARCHS = ("80", "90")
CMAKE_MACROS = Path("c10") / "cuda" / "impl" / "cuda_cmake_macros.h"


def find_nvcc() -> str | None:
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    found = shutil.which("nvcc")
    if found:
        return found
    default = Path("/usr/local/cuda/bin/nvcc")
    return str(default) if default.is_file() else None


def nvcc_flags(stub_dir: str) -> list[str]:
    """The flags of torch's CUDA extension build, plus the project's own."""
    import torch
    from torch.utils import cpp_extension

    includes = [str(CSRC), *cpp_extension.include_paths()]
    if not any((Path(p) / CMAKE_MACROS).is_file() for p in includes):
        stub = Path(stub_dir) / CMAKE_MACROS
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n", encoding="utf-8")
        includes.append(stub_dir)  # last: a real header, where present, wins
    flags = ["-c", "-std=c++20", "-O3", "--expt-relaxed-constexpr", "-Xcompiler", "-fPIC"]
    # torch's COMMON_NVCC_FLAGS: c10::Half/BFloat16 convert explicitly on the device.
    flags += [
        "-D__CUDA_NO_HALF_OPERATORS__",
        "-D__CUDA_NO_HALF_CONVERSIONS__",
        "-D__CUDA_NO_BFLOAT16_CONVERSIONS__",
        "-D__CUDA_NO_HALF2_OPERATORS__",
        "-DTORCH_API_INCLUDE_EXTENSION_H",
        "-DTORCH_EXTENSION_NAME=_C",
        "-DSTEGAFAST_WITH_CUDA=1",
        f'-DSTEGAFAST_TORCH_VERSION="{torch.__version__}"',
    ]
    abi = getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", None)
    if abi is not None:
        flags.append(f"-D_GLIBCXX_USE_CXX11_ABI={int(abi)}")
    for arch in ARCHS:
        flags.append(f"-gencode=arch=compute_{arch},code=sm_{arch}")
    flags += [f"-I{p}" for p in includes]
    return flags


def compile_one(nvcc: str, flags: list[str], source: Path, out_dir: str) -> tuple[Path, bool, float, str]:
    obj = Path(out_dir) / ("_".join(source.parts[-3:]) + ".o")  # unique per source
    start = time.monotonic()
    proc = subprocess.run(
        [nvcc, *flags, str(source), "-o", str(obj)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return source, proc.returncode == 0, time.monotonic() - start, proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="sources to check (default: csrc/**/*.cu)")
    parser.add_argument("--allow-missing-nvcc", action="store_true", help="exit 0 when nvcc is not installed")
    parser.add_argument(
        "--jobs", type=int, default=min(4, os.cpu_count() or 1), help="files compiled at once (default: min(4, CPUs))"
    )
    args = parser.parse_args(argv)

    nvcc = find_nvcc()
    if nvcc is None:
        print("nvcc not found (set CUDA_HOME or put nvcc on PATH): CUDA sources not checked")
        return 0 if args.allow_missing_nvcc else 1

    sources = [p.resolve() for p in args.files] or sorted(CSRC.rglob("*.cu"))
    if not sources:
        print("no CUDA sources under csrc/")
        return 0

    failed = []
    with tempfile.TemporaryDirectory(prefix="sf_nvcc_") as tmp:
        flags = nvcc_flags(tmp)
        # Files compile in parallel only when there are several: nvcc on one
        # file is itself heavy, and a lone file gains nothing.
        jobs = max(1, min(args.jobs, len(sources)))
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futures = [pool.submit(compile_one, nvcc, flags, s, tmp) for s in sources]
            for future in concurrent.futures.as_completed(futures):
                source, ok, seconds, output = future.result()
                name = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
                warned = "warning" in output.lower()
                status = "ok" if ok else "FAILED"
                if ok and warned:
                    status = "ok (with warnings)"
                print(f"{status:<18} {name}  {seconds:.1f} s", flush=True)
                if output.strip() and (not ok or warned):
                    print(output.rstrip(), file=sys.stderr if not ok else sys.stdout, flush=True)
                if not ok:
                    failed.append(name)
    if failed:
        print(f"{len(failed)} of {len(sources)} CUDA sources failed to compile", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
