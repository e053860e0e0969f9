#!/usr/bin/env bash
# The test command: sets everything up, compile-checks the CUDA sources with
# nvcc (no GPU needed), then runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
bash scripts/setup.sh

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "== nvcc compile check of csrc/**/*.cu"
  "$PYTHON" tools/check_cuda_compile.py
else
  echo "== nvcc not found: skipping the CUDA compile check"
fi

echo "== pytest"
"$PYTHON" -m pytest python_tests -q -ra "$@"
