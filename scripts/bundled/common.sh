# Sourced by scripts/bundled/<family>.sh: the shared set-up of a bundled-checkpoint training.
# Runs from the repository root, one torch thread (several trainings share the machine), and
# `stage CMD...` runs a command and prints its wall time, which each script's header records.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON=${PYTHON:-python3}
export OMP_NUM_THREADS=1

stage() {
    local start=$SECONDS
    "$@"
    echo "[$(basename "$0")] $((SECONDS - start)) s: $*" >&2
}
