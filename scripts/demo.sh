#!/usr/bin/env bash
# The main job: sets everything up, shows what was built, then the package's jobs on photographs bundled
# with scikit-image, each with its numbers, every image written to demo_out/ (DEMO_OUT sets the folder):
#   1. a lossless multi-level wavelet round trip (stegafast demo)
#   2. hiding one photo in another and recovering it (stegafast stego embed / extract)
#   3. watermarking a photo with a short text and decoding it after a real JPEG q75 save (stegafast stamp)
#   4. compressing a photo to an .sfc file and back (stegafast codec compress / decompress)
# Jobs 2-4 use the bundled checkpoints (stegafast/weights/*.pt, listed by `stegafast info`); a family whose
# checkpoint is not shipped is skipped with a line saying so. SKIP_SETUP=1 skips scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${DEMO_OUT:-demo_out}
if [ "${SKIP_SETUP:-0}" != 1 ]; then
    bash scripts/setup.sh
fi
mkdir -p "$OUT"
"$PYTHON" -m stegafast info
echo
echo "== wavelet: a lossless 3-level integer 5/3 round trip"
"$PYTHON" -m stegafast demo --image chelsea --levels 3 --save "$OUT/ilwt_chelsea_level1.png" "$@"
"$PYTHON" scripts/demo_jobs.py --out "$OUT"
