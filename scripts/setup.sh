#!/usr/bin/env bash
# Installs what stegafast needs into the active Python and builds the extension
# in place (editable). Safe to run again: it skips what is already there.
#
#   PYTHON=python3           the interpreter to install into
#   STEGAFAST_TORCH=2.13.0   the torch to install when none is installed; an
#                            installed torch is kept and built against
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_PIN=${STEGAFAST_TORCH:-2.13.0}
pip=("$PYTHON" -m pip --disable-pip-version-check)

installed_torch=$("$PYTHON" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null || true)
if [ -z "$installed_torch" ]; then
  echo "== installing torch==$TORCH_PIN"
  "${pip[@]}" install -q "torch==$TORCH_PIN"
  installed_torch=$TORCH_PIN
else
  echo "== using the installed torch $installed_torch"
fi

# Pin torch to what is installed so no dependency can pull in another build
# (a newer torch from the registry drags in gigabytes of CUDA libraries).
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==$installed_torch" >"$constraints"
echo "== installing build and test dependencies"
"${pip[@]}" install -q -c "$constraints" setuptools wheel ninja pybind11 numpy pillow scikit-image pytest bchlib
# The C++ formatter that scripts/test.sh checks csrc/ with, pinned: each release
# formats a little differently
"${pip[@]}" install -q -c "$constraints" "clang-format==23.1.3"
# The Python linter and formatter that scripts/test.sh checks with, pinned for
# the same reason (configuration in pyproject.toml)
"${pip[@]}" install -q -c "$constraints" "ruff==0.17.5"
# The optional ONNX extra, so the export tests run rather than skip
"${pip[@]}" install -q -c "$constraints" onnx onnxruntime
# The optional diffusion extra (diffusers), so the diffusion family's tests run rather than skip
"${pip[@]}" install -q -c "$constraints" "diffusers==0.42.1"

echo "== building stegafast._C (no build isolation: compile against this torch)"
MAX_JOBS=${MAX_JOBS:-2} "${pip[@]}" install -q -c "$constraints" --no-build-isolation --no-deps -e .
