#!/usr/bin/env bash
# The codec's bundled checkpoint (stegafast/weights/codec.pt): trained, evaluated and exported by this script.
#
# Commands (from the repository root; what this script runs):
#   OMP_NUM_THREADS=1 python3 -m stegafast codec train --out runs/bundled-codec --N 64 --M 96 --lmbda 0.0018 \
#       --steps 4500 --batch-size 8 --image-size 128 --lr 5e-4 --workers 0 --seed 0
#   OMP_NUM_THREADS=1 python3 -m stegafast codec evaluate --checkpoint runs/bundled-codec \
#       --out runs/bundled-codec/heldout --jpeg-qualities 1 2 3 4 5 6 8 10 12 15 20 30 40
#   python3 scripts/export_bundled.py --family codec --run runs/bundled-codec --metrics runs/bundled-codec/heldout/rd.json
#
# Budget: 4500 steps of batch 8, 128x128 random crops of the bundled training photographs, one thread
# (OMP_NUM_THREADS=1), fp32; the codec defaults otherwise (gradient clipping 1.0, a 10x learning-rate drop at
# 80% of the steps, i.e. step 3600). lambda 0.0018 is CompressAI's lowest rate point (quality 1).
# Why not the defaults N=128/M=192 at 256 px: that model is 7.0M parameters, 14 MB in float16 (over the 10 MB
# limit of a bundled file), and a step of it at 256 px takes about 13x the time of this one on this CPU; at a
# 45-minute CPU budget the smaller model at 128 px takes many more steps. N=64/M=96 is 1.76M parameters.
# Machine: the shared 2-core Intel Xeon development machine (no GPU), 2026-12-02; wall time of each stage is
# printed below and recorded in docs/README_bundled.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
RUN=${RUN:-runs/bundled-codec}
export OMP_NUM_THREADS=1

stage() {
    local start=$SECONDS
    "$@"
    echo "[codec.sh] $((SECONDS - start)) s: $*" >&2
}

stage "$PYTHON" -m stegafast codec train --out "$RUN" --N 64 --M 96 --lmbda 0.0018 \
    --steps 4500 --batch-size 8 --image-size 128 --lr 5e-4 --workers 0 --seed 0 --no-progress
stage "$PYTHON" -m stegafast codec evaluate --checkpoint "$RUN" --out "$RUN/heldout" \
    --jpeg-qualities 1 2 3 4 5 6 8 10 12 15 20 30 40
stage "$PYTHON" scripts/export_bundled.py --family codec --run "$RUN" --metrics "$RUN/heldout/rd.json"
