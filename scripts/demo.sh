#!/usr/bin/env bash
# Set up .venv if needed (first run only), then run graphmtl's main job on the built-in default.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec "$root/.venv/bin/graphmtl" data summary synthetic "$@"
