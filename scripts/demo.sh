#!/usr/bin/env bash
# Set up .venv if needed (first run only), then run the whole graphmtl pipeline on the built-in
# planted synthetic graph and print where the report is. Extra args go to `graphmtl run`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec "$root/.venv/bin/graphmtl" run --data synthetic --out runs/synthetic --pairwise-pairs 30 "$@"
