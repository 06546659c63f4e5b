#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install graphmtl into it.
# Idempotent: a stamp keyed on the install inputs makes the second run a no-op.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${GRAPHMTL_VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

stamp_key=$(cat pyproject.toml scripts/constraints.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)
stamp="$venv/.graphmtl-installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_key" ]; then
    exit 0
fi

echo "graphmtl: setting up $venv (first run only) ..." >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

# Prebuilt torch-sparse / torch-scatter wheels for this Python/torch, if the workplace has them;
# otherwise pip builds them from source (needs torch installed first: no build isolation).
find_links=()
for d in "${GRAPHMTL_WHEELS:-}" "$root/../shared/wheels"; do
    [ -n "$d" ] && [ -d "$d" ] && find_links+=(--find-links "$d")
done

"${pip[@]}" install -c scripts/constraints.txt torch setuptools wheel
"${pip[@]}" install -c scripts/constraints.txt "${find_links[@]}" --no-build-isolation torch-scatter torch-sparse
"${pip[@]}" install -c scripts/constraints.txt "${find_links[@]}" -e ".[test]"
"$venv/bin/python" -c "import torch_geometric, torch_sparse; from torch_geometric.loader import NeighborLoader" \
    || { echo "graphmtl: install check failed (torch_geometric / torch_sparse import)" >&2; exit 1; }
echo "$stamp_key" > "$stamp"
echo "graphmtl: environment ready" >&2
