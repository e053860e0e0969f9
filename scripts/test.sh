#!/usr/bin/env bash
# The test command: sets everything up, checks the C++ and Python formatting
# (clang-format, ruff), compile-checks
# the CUDA sources with nvcc (no GPU needed), then runs the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
bash scripts/setup.sh

echo "== clang-format check of csrc/ and python_tests/native/"
# The clang-format that scripts/setup.sh installed into $PYTHON, whatever else
# is on PATH. Fix a failure with: clang-format -i FILE
clang_format=$("$PYTHON" -c "import clang_format; print(clang_format.get_executable('clang-format'))")
"$clang_format" --version
find csrc python_tests/native -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) -print0 |
  sort -z | xargs -0 "$clang_format" --dry-run --Werror

echo "== ruff check and ruff format --check of the Python sources"
# Fix a failure with: ruff check --fix . && ruff format .
"$PYTHON" -m ruff --version
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "== nvcc compile check of csrc/**/*.cu"
  "$PYTHON" tools/check_cuda_compile.py
else
  echo "== nvcc not found: skipping the CUDA compile check"
fi

echo "== pytest"
"$PYTHON" -m pytest python_tests -q -ra "$@"
