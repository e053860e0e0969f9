#!/usr/bin/env bash
# The main job: sets everything up, shows what was built, then runs a lossless
# multi-level wavelet round trip on a photograph bundled with scikit-image.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
bash scripts/setup.sh
"$PYTHON" -m stegafast info
"$PYTHON" -m stegafast demo --image chelsea --levels 3 --save ilwt_chelsea_level1.png "$@"
