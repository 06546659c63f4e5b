"""``graphmtl cluster``: group tasks from an affinity matrix (thin layer over TaskClustering)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from graphmtl.errors import GraphMTLError, check
from graphmtl.utils.io import atomic_write_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cluster", help="cluster tasks into k groups from an n x n affinity matrix (SDP)",
        description="Solve the average-density SDP on an affinity matrix, round it to exactly "
                    "k groups and write them as JSON.")
    p.add_argument("--affinity", required=True, help="n x n affinity matrix (.npy, or .npz with "
                   "one array or an array named 'affinity'/'T')")
    p.add_argument("--k", required=True, help="number of groups, or 'auto'")
    p.add_argument("--out", required=True, help="output groups.json (written atomically)")
    p.add_argument("--solver", default="auto", choices=["auto", "exact", "lowrank", "admm"])
    p.add_argument("--polish", default="auto", choices=["auto", "always", "never"],
                   help="lowrank: polish with ADMM when its X is not a partition (n <= 700)")
    p.add_argument("--k-select", default="edge", choices=["edge", "elbow"],
                   help="criterion for --k auto: eigenvalues above the noise edge (default) or "
                        "the elbow of the SDP objective over a sweep")
    p.add_argument("--task-names", help="text file with one task name per line")
    p.add_argument("--k-range", nargs=2, type=int, metavar=("KMIN", "KMAX"),
                   help="range of k for --k auto (default 2..min(n-1, 20))")
    p.add_argument("--transform", default="standardize", choices=["standardize", "exp", "none"])
    p.add_argument("--diagonal", default="zero", choices=["zero", "keep"])
    p.add_argument("--sym-tol", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def load_affinity(path: str) -> np.ndarray:
    """Read the affinity matrix; any read failure is a one-line error naming the file."""
    p = Path(path)
    check(p.is_file(), f"--affinity {path}: file not found")
    try:
        obj = np.load(p, allow_pickle=False)
    except Exception as e:  # numpy raises several types for corrupt / non-npy files
        raise GraphMTLError(f"--affinity {path}: cannot read ({type(e).__name__}: {e})") from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            keys = list(obj.keys())
            key = next((k for k in ("affinity", "T") if k in keys), keys[0] if len(keys) == 1
                       else None)
            check(key is not None, f"--affinity {path}: npz has arrays {keys}; "
                                   "name one 'affinity'")
            obj = obj[key]
    return obj


def run(args: argparse.Namespace) -> int:
    from graphmtl.clustering import TaskClustering

    A = load_affinity(args.affinity)
    k = args.k
    if k != "auto":
        try:
            k = int(k)
        except ValueError:
            raise GraphMTLError(f"--k: expected an integer or 'auto', got {args.k!r}") from None
    names = None
    if args.task_names:
        p = Path(args.task_names)
        check(p.is_file(), f"--task-names {args.task_names}: file not found")
        names = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    # Validate the matrix before comparing its size with the names / k.
    from graphmtl.clustering.preprocess import validate_affinity
    A = validate_affinity(A, name=f"--affinity {args.affinity}", sym_tol=args.sym_tol)
    n = A.shape[0]
    if names is not None:
        check(len(names) == n, f"--task-names {args.task_names}: {len(names)} names for "
                               f"n = {n} tasks in {args.affinity}")
    if k != "auto":
        check(1 <= k <= n, f"--k: need 1 <= k <= n = {n}, got {k}")
    model = TaskClustering(k, solver=args.solver, k_range=tuple(args.k_range) if args.k_range
                           else None, transform=args.transform, diagonal=args.diagonal,
                           sym_tol=args.sym_tol, random_state=args.seed, polish=args.polish,
                           k_select=args.k_select).fit(A)
    groups = model.groups(names)
    out = {
        "n_tasks": n, "k": model.n_clusters_, "solver": model.solver_,
        "groups": groups,
        "sdp_objective": model.sdp_objective_, "rounded_objective": model.rounded_objective_,
        "upper_bound": model.upper_bound_, "gap": model.gap_, "residuals": model.residuals_,
        "timings_s": model.timings_, "sweep": model.sweep_,
        "k_selection": model.k_selection_,
        "preprocess": {"transform": args.transform, "diagonal": args.diagonal},
        "affinity_file": str(args.affinity),
    }
    atomic_write_json(args.out, out)
    print(f"{n} tasks -> {model.n_clusters_} groups (sizes {sorted(map(len, groups), reverse=True)}); "
          f"SDP {model.sdp_objective_:.4g}, rounded {model.rounded_objective_:.4g}, "
          f"bound {model.upper_bound_:.4g}; wrote {args.out}")
    return 0
