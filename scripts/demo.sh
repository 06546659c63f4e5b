#!/usr/bin/env bash
# Set up .venv if needed (first run only), then run the whole graphmtl pipeline on the built-in
# planted graph (synthetic:preset=annotated_scarce, 5 planted groups of 6 tasks) and print the
# comparison with random groups of the same sizes. Extra args go to `graphmtl run`
# (e.g. --k auto to estimate the number of groups).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec "$root/.venv/bin/graphmtl" run --out runs/demo --k 5 --pairwise-pairs 30 "$@"
