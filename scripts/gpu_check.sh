#!/usr/bin/env bash
# The one script to run on a lent GPU machine (torch + CUDA + nvcc preinstalled,
# no network): build stegafast with its CUDA kernels, run the whole test suite
# (the `cuda` tests run there) and every benchmark on the GPU.
#
#   OUT=/some/folder bash scripts/gpu_check.sh      (OUT defaults to ./gpu-out)
#
# Writes few files, since only a handful come back from such a machine:
#   $OUT/device.txt  date, nvidia-smi, python/torch/nvcc versions
#   $OUT/build.log   the verbose pip build
#   $OUT/info.txt    `stegafast info` and which stegafast was imported
#   $OUT/tests.txt   the pytest run
#   $OUT/benchmarks.tar.gz  every benchmark's JSON and markdown (one archive:
#                    only 8 files come back from a lent machine)
# Exit status: non-zero if the build, the tests or any benchmark failed.
set -uo pipefail
export PYTHONUNBUFFERED=1

cd "$(dirname "$0")/.."
OUT="${OUT:-./gpu-out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# python3 is the interpreter that holds torch on the lent machines.
PY="${PYTHON:-$(command -v python3 || command -v python)}"

step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "device"
{
  date -u
  nvidia-smi || echo "nvidia-smi failed or is missing"
  "$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "| torch", torch.__version__,
"| cuda", torch.version.cuda, "| gpu visible", torch.cuda.is_available())'
  nvcc --version | tail -n 1 || echo "nvcc not on PATH"
} >"$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

step "build (STEGAFAST_CUDA=1)"
# Not editable: the tests must import the built package, not the source tree.
if ! STEGAFAST_CUDA=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "$PY" -m pip install --no-build-isolation --no-deps -v . 2>&1 | tee "$OUT/build.log"; then
  echo "BUILD FAILED: see $OUT/build.log"
  exit 1
fi

# PYTHONSAFEPATH=1 (python -P) keeps the working directory, the source tree
# without the built _C, off sys.path, so the installed package is imported.
step "stegafast info"
{
  PYTHONSAFEPATH=1 "$PY" -c 'import stegafast; print("imported from", stegafast.__file__)'
  PYTHONSAFEPATH=1 "$PY" -m stegafast info || echo "stegafast info failed (rc=$?)"
} >"$OUT/info.txt" 2>&1
cat "$OUT/info.txt"

status=0
step "tests"
# --import-mode=append: even if python_tests becomes a package, pytest then adds
# the source tree after site-packages rather than before it.
if ! PYTHONSAFEPATH=1 "$PY" -m pytest python_tests -x -q -rs --import-mode=append -p no:cacheprovider 2>&1 |
    tee "$OUT/tests.txt"; then
  echo "TESTS FAILED: see $OUT/tests.txt"
  status=1
fi

step "benchmarks"
shopt -s nullglob
benches=(benchmarks/bench_*.py)
[ ${#benches[@]} -eq 0 ] && echo "no benchmarks/bench_*.py yet"
# Run as scripts (their own folder, not the source root, leads sys.path), so
# they too import the installed package.
bench_dir="$(mktemp -d)/benchmarks"
mkdir -p "$bench_dir"
for bench in "${benches[@]}"; do
  step "$bench"
  if ! "$PY" "$bench" --device cuda --out "$bench_dir"; then
    echo "BENCHMARK FAILED: $bench"
    status=1
  fi
done
tar -czf "$OUT/benchmarks.tar.gz" -C "$(dirname "$bench_dir")" benchmarks

step "done (status $status)"
ls -la "$OUT"
exit "$status"
