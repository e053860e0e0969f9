#!/usr/bin/env bash
# Trains, evaluates and exports the bundled StegaStamp checkpoint (stegafast/weights/stamp.pt).
#
# Budget: 64x64 crops of the bundled training photographs, batch 4, 20000 steps, no critic,
# scripts/base.sh's loss weights (--preset paper) with every ramp and delay at 1/4 (--ramp-scale 0.25):
# 2000 secret-only steps (--no-image-loss-steps 8000), the L2 then ramped in over 3750 steps; no
# distortions for the first 4000 steps (--noise-delay 16000), then the original's, scaled to 64 px, ramped
# in (JPEG q50-100 with round_only_at_0 on the 64 px image itself, warp over 2500 steps). One thread.
# Run on: the project's shared 2-core CPU machine (AMD EPYC, no GPU), 2026-12-03 08:50-10:08 UTC, 78 min wall for
# the 20000 steps beside one or two other one-thread trainings; evaluate 20 s, export 2 s.
# The export takes the run's best checkpoint by noised validation bit accuracy (step 19000).
# Result (held-out, 32 crops of the 4 bundled validation photos): bit accuracy 0.932 clean and 0.933 after
# JPEG q75, BCH decodes 22% clean / 25% after JPEG q75, no wrong message accepted, PSNR 13.4 dB: below
# issue 14's decode and PSNR targets (see the README, section `stamp`).
#
# Commands (from the repository root):
#   stegafast stamp train --out runs/bundled-stamp --image-size 64 --batch-size 4 --steps 20000 --no-gan \
#       --preset paper --ramp-scale 0.25 --no-image-loss-steps 8000 --noise-delay 16000 --val-every 250 \
#       --keep-best 3 --workers 0
#   stegafast stamp evaluate --checkpoint runs/bundled-stamp --json runs/bundled-stamp/evaluate.json
#   python3 scripts/export_bundled.py --family stamp --run runs/bundled-stamp --metrics runs/bundled-stamp/evaluate.json
# (--no-image-loss-steps and --noise-delay are scaled by --ramp-scale too: 2000 and 4000 steps.)
source "$(dirname "$0")/common.sh"
RUN=${RUN:-runs/bundled-stamp}
STEPS=${STEPS:-20000}

stage "$PYTHON" -m stegafast stamp train --out "$RUN" --image-size 64 --batch-size 4 --steps "$STEPS" --no-gan \
    --preset paper --ramp-scale 0.25 --no-image-loss-steps 8000 --noise-delay 16000 --val-every 250 \
    --keep-best 3 --workers 0 --no-progress ${RESUME:+--resume}
stage "$PYTHON" -m stegafast stamp evaluate --checkpoint "$RUN" --json "$RUN/evaluate.json"
stage "$PYTHON" scripts/export_bundled.py --family stamp --run "$RUN" --metrics "$RUN/evaluate.json"
