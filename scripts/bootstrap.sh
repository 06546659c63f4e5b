#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install graphmtl into it.
# Idempotent: a stamp keyed on the install inputs makes the second run a no-op.
#
# Optional settings (environment variables; docs/install.md explains them):
#   GRAPHMTL_VENV         where the environment goes (default: .venv in the repository)
#   PYTHON                interpreter that creates it (default: python3.11, else python3)
#   GRAPHMTL_TORCH_INDEX  package index for torch alone, e.g. https://download.pytorch.org/whl/cpu
#                         (CPU build, ~200 MB) or https://download.pytorch.org/whl/cu126 (CUDA);
#                         default: pip's configured index (on PyPI for Linux: the CUDA build, GBs).
#                         If it cannot be reached, the plain pinned install is used instead.
#   GRAPHMTL_WHEELS       folder or URL (a pip --find-links page) with prebuilt torch-scatter /
#                         torch-sparse wheels for this Python and torch; ../shared/wheels is
#                         used too when it exists. Without a matching wheel they are compiled
#                         from source: about 40 minutes on 2 cores, needs a C++ compiler.
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

say() { echo "graphmtl: $*" >&2; }
say "setting up $venv (first run only) ..."
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# 1. torch, pinned. The plain install comes first unless an index is asked for, so that no
#    index this machine cannot reach is ever required.
"${pip[@]}" install -q setuptools wheel
if [ -n "${GRAPHMTL_TORCH_INDEX:-}" ] && ! "${pip[@]}" install -q -c scripts/constraints.txt \
        --index-url "$GRAPHMTL_TORCH_INDEX" torch; then
    say "warning: could not install torch from $GRAPHMTL_TORCH_INDEX; using pip's configured index"
fi
"${pip[@]}" install -q -c scripts/constraints.txt torch
say "$("$venv/bin/python" -c 'import torch
print("torch", torch.__version__, "(CUDA %s build)" % torch.version.cuda if torch.version.cuda
      else "(CPU build)")')"

# 2. torch-scatter / torch-sparse: prebuilt wheels when there are some for this Python/torch,
#    else a source build against the torch just installed (no build isolation).
find_links=()
for d in "${GRAPHMTL_WHEELS:-}" "$root/../shared/wheels"; do
    if [[ "$d" == http://* || "$d" == https://* ]] || { [ -n "$d" ] && [ -d "$d" ]; }; then
        find_links+=(--find-links "$d")
    fi
done
ext=(-c scripts/constraints.txt "${find_links[@]}" --no-build-isolation torch-scatter torch-sparse)

if ! "${pip[@]}" install -q --only-binary torch-scatter,torch-sparse "${ext[@]}" 2>/dev/null; then
    cxx="${CXX:-}"
    [ -n "$cxx" ] || cxx="$(command -v c++ || command -v g++ || command -v clang++ || true)"
    if [ -z "$cxx" ]; then
        say "error: torch-scatter / torch-sparse have no prebuilt wheel here and no C++ compiler"
        say "was found to build them: install one (Debian/Ubuntu: apt-get install build-essential"
        say "python3-dev; Fedora: dnf install gcc-c++ python3-devel; macOS: xcode-select --install)"
        say "or point GRAPHMTL_WHEELS at prebuilt wheels (see docs/install.md)"
        exit 1
    fi
    if ! "$venv/bin/python" -c 'import os, sys, sysconfig
sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
        say "error: building torch-scatter / torch-sparse needs the Python headers (Python.h);"
        say "install them (Debian/Ubuntu: apt-get install python3-dev) or use GRAPHMTL_WHEELS"
        exit 1
    fi
    log="$venv/graphmtl-build.log"
    say "no prebuilt torch-scatter / torch-sparse wheel for this Python and torch: building them"
    say "from source with $cxx. This takes about 40 minutes on 2 cores (torch-scatter ~15,"
    say "torch-sparse ~25) and runs once; full log: $log"
    start=$SECONDS
    # In its own process group (setsid), so that stopping this script stops the compilers too.
    if command -v setsid >/dev/null 2>&1; then
        setsid "${pip[@]}" install -v "${ext[@]}" >"$log" 2>&1 &
    else
        "${pip[@]}" install -v "${ext[@]}" >"$log" 2>&1 &
    fi
    build=$!
    trap 'kill -- -"$build" 2>/dev/null || kill "$build" 2>/dev/null || true' EXIT
    trap 'exit 130' INT TERM
    while kill -0 "$build" 2>/dev/null; do
        for _ in $(seq 60); do kill -0 "$build" 2>/dev/null && sleep 1; done
        if kill -0 "$build" 2>/dev/null; then
            step=$(grep -aoE "(Building wheel for|building '|Successfully built) [^ ]*" "$log" \
                   | tail -n 1 || true)
            say "still building: $(( (SECONDS - start) / 60 )) min so far${step:+ ($step)}"
        fi
    done
    rc=0
    wait "$build" || rc=$?
    trap - EXIT INT TERM
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$log" >&2
        say "error: the torch-scatter / torch-sparse build failed (full log: $log)"
        exit "$rc"
    fi
    say "built torch-scatter / torch-sparse in $(( (SECONDS - start) / 60 )) min"
fi

# 3. graphmtl itself (editable) with the test extra.
"${pip[@]}" install -q -c scripts/constraints.txt "${find_links[@]}" -e ".[test]"
"$venv/bin/python" -c "import torch_geometric, torch_sparse; from torch_geometric.loader import NeighborLoader" \
    || { say "install check failed (torch_geometric / torch_sparse import)"; exit 1; }
echo "$stamp_key" > "$stamp"
say "environment ready"
