"""Builds stegafast._C, the native kernels, against the torch that is installed.

Install with ``pip install --no-build-isolation .``: an isolated build would
compile against whatever torch pip fetches into the build environment, which
need not be the torch the package then runs with (an ABI mismatch).

Environment:
  STEGAFAST_CUDA=auto|0|1   auto (default) builds the CUDA kernels when nvcc and a
                            CUDA build of torch are present; no GPU is needed.
  TORCH_CUDA_ARCH_LIST      GPU architectures (default "8.0;9.0").
  MAX_JOBS                  parallel compile jobs (ninja).
"""

import datetime
import glob
import json
import os
import subprocess

import torch
from setuptools import setup
from torch.utils import cpp_extension

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARCH_LIST = "8.0;9.0"


def cuda_mode():
    mode = os.environ.get("STEGAFAST_CUDA", "auto").strip().lower()
    if mode not in {"auto", "0", "1"}:
        raise SystemExit(f"STEGAFAST_CUDA must be auto, 0 or 1, got {mode!r}")
    return mode


def cuda_unavailable_reason():
    """Why CUDA kernels cannot be built here, or None when they can."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if cpp_extension.CUDA_HOME is None:
        return "nvcc not found (set CUDA_HOME)"
    return None


def nvcc_version():
    nvcc = os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc")
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip().splitlines()[-1]


def kernels_with(suffix):
    """Kernel folder names under csrc/ that have a source ending in suffix."""
    paths = glob.glob(os.path.join(ROOT, "csrc", "*", "*" + suffix))
    return sorted({os.path.basename(os.path.dirname(p)) for p in paths})


def write_build_info(info):
    path = os.path.join(ROOT, "stegafast", "_build_info.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")


def extension():
    mode = cuda_mode()
    reason = cuda_unavailable_reason() if mode != "0" else "disabled by STEGAFAST_CUDA=0"
    if mode == "1" and reason is not None:
        raise SystemExit(f"STEGAFAST_CUDA=1 but CUDA kernels cannot be built: {reason}")
    with_cuda = reason is None

    rel = lambda paths: sorted(os.path.relpath(p, ROOT) for p in paths)  # noqa: E731
    sources = rel(glob.glob(os.path.join(ROOT, "csrc", "*.cpp")))
    sources += rel(glob.glob(os.path.join(ROOT, "csrc", "*", "*.cpp")))
    defines = [("STEGAFAST_TORCH_VERSION", f'"{torch.__version__}"')]
    # -fopenmp: at::parallel_for is inline and runs serially without it; at run
    # time the library shares torch's own libgomp.
    cxx = ["-O3", "-std=c++20", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
    nvcc = ["-O3", "-std=c++20", "--expt-relaxed-constexpr", "-lineinfo"]
    info = {
        "version": read_version(),
        "torch_version": torch.__version__,
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_kernels": kernels_with("_cpu.cpp"),
        "cuda_kernels": [],
        "cuda_version": None,
        "nvcc": None,
        "cuda_arch_list": None,
        "cuda_skipped_reason": reason,
    }
    if with_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_ARCH_LIST)
        sources += rel(glob.glob(os.path.join(ROOT, "csrc", "*", "*_cuda.cu")))
        defines.append(("STEGAFAST_WITH_CUDA", "1"))
        info.update(
            cuda_kernels=kernels_with("_cuda.cu"),
            cuda_version=torch.version.cuda,
            nvcc=nvcc_version(),
            cuda_arch_list=os.environ["TORCH_CUDA_ARCH_LIST"],
        )
    write_build_info(info)

    make = cpp_extension.CUDAExtension if with_cuda else cpp_extension.CppExtension
    return make(
        name="stegafast._C",
        sources=sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        define_macros=defines,
        extra_compile_args={"cxx": cxx, "nvcc": nvcc} if with_cuda else {"cxx": cxx},
        extra_link_args=["-fopenmp"],
    )


def read_version():
    with open(os.path.join(ROOT, "stegafast", "_version.py"), encoding="utf-8") as f:
        return f.read().split("=")[1].strip().strip('"')


setup(
    ext_modules=[extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
