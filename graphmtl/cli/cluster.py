"""``graphmtl cluster``: group tasks from an affinity matrix (thin layer over TaskClustering)."""

from __future__ import annotations

import argparse
from pathlib import Path

from graphmtl.cli._common import (add_command, argtype, cleanup_on_failure, config_options,
                                  config_values, parse_k, task_names_near)
from graphmtl.errors import GraphMTLError, check

HELP = "cluster tasks into k groups from an n x n affinity matrix (SDP)"


def register(subparsers) -> None:
    from graphmtl.clustering.estimator import BALANCE, K_SELECT, POLISH, SOLVERS, TaskClustering
    from graphmtl.clustering.preprocess import DIAGONALS, TRANSFORMS

    p = add_command(
        subparsers, "cluster", help=HELP,
        description="Solve the average-density SDP on an affinity matrix, round it to exactly "
                    "k groups and write them as JSON, by task name (from --task-names, else "
                    "from the summary.json that graphmtl affinity / baseline writes next to "
                    "the matrix, else by position).")
    p.add_argument("--affinity", required=True, help="n x n affinity matrix (.npy, or .npz with "
                   "one array or an array named 'affinity'/'T')")
    p.add_argument("--out", required=True, help="output groups.json (written atomically)")
    p.add_argument("--task-names",
                   help="text file with one task name per line (default: the task_names of "
                        "summary.json next to --affinity, else task positions)")
    cl = p.add_argument_group("clustering (TaskClustering)")
    config_options(
        cl, TaskClustering, "cluster", required=("k",),
        only=("k", "solver", "polish", "k_select", "transform", "diagonal", "balance",
              "sym_tol", "random_state"),
        flags={"k": "--k", "random_state": "--seed"},
        types={"k": argtype(parse_k, "k")},
        choices={"solver": SOLVERS, "polish": POLISH, "k_select": K_SELECT,
                 "transform": TRANSFORMS, "diagonal": DIAGONALS, "balance": BALANCE},
        helps={"k": "number of groups, or 'auto'",
               "solver": "SDP solver: exact (cvxpy + SCS), lowrank, admm, or auto (exact for "
                         "small n, else lowrank)",
               "polish": "lowrank: polish with ADMM when its X is not a partition (n <= 700)",
               "k_select": "criterion for --k auto: eigenvalues above the noise edge or the "
                           "elbow of the SDP objective over a sweep",
               "transform": "affinity preprocessing before the SDP",
               "diagonal": "zero or keep the affinity's diagonal",
               "balance": "equal: near-equal group sizes (sizes differ by at most one); none: "
                          "sizes follow the affinity",
               "sym_tol": "largest asymmetry |A - A^T| accepted (then symmetrised)",
               "random_state": "seed of the solver's initialisation and rounding"})
    cl.add_argument("--k-range", nargs=2, type=int, metavar=("KMIN", "KMAX"),
                    help="range of k for --k auto (default: 2 to min(n - 1, 20))")
    p.set_defaults(func=run)


def load_affinity(path: str):
    """Read the affinity matrix; any read failure is a one-line error naming the file."""
    import numpy as np

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
    from graphmtl.clustering.preprocess import validate_affinity
    from graphmtl.utils.io import atomic_write_json

    settings = config_values(args, "cluster")
    k = settings["k"]
    A = load_affinity(args.affinity)
    # Validate the matrix before comparing its size with the names / k.
    A = validate_affinity(A, name=f"--affinity {args.affinity}", sym_tol=settings["sym_tol"])
    n = A.shape[0]
    if args.task_names:
        p = Path(args.task_names)
        check(p.is_file(), f"--task-names {args.task_names}: file not found")
        names = [line.strip() for line in p.read_text().splitlines() if line.strip()]
        check(len(names) == n, f"--task-names {args.task_names}: {len(names)} names for "
                               f"n = {n} tasks in {args.affinity}")
    else:
        names = task_names_near(args.affinity, n)
    if k == "auto":
        check(n >= 4, f"--k auto: needs at least 4 tasks, {args.affinity} has {n}")
        if args.k_range:
            lo, hi = args.k_range
            check(1 <= lo < hi <= n, f"--k-range: need 1 <= KMIN < KMAX <= n = {n}, "
                                     f"got {lo} {hi}")
    else:
        check(1 <= k <= n, f"--k: need 1 <= k <= n = {n}, got {k}")
    model = TaskClustering(**settings, k_range=tuple(args.k_range) if args.k_range else None)
    with cleanup_on_failure(args.out):
        model.fit(A)
        groups = model.groups(names)
        out = {
            "n_tasks": n, "k": model.k_, "solver": model.solver_,
            "groups": groups, "task_names": names,
            "sdp_objective": model.sdp_objective_, "rounded_objective": model.rounded_objective_,
            "upper_bound": model.upper_bound_, "gap": model.gap_, "residuals": model.residuals_,
            "timings_s": model.timings_, "sweep": model.sweep_,
            "k_selection": model.k_selection_,
            "preprocess": {"transform": settings["transform"],
                           "diagonal": settings["diagonal"]},
            "affinity_file": str(args.affinity),
        }
        atomic_write_json(args.out, out)
    print(f"{n} tasks -> {model.k_} groups (sizes "
          f"{sorted(map(len, groups), reverse=True)}); SDP {model.sdp_objective_:.4g}, "
          f"rounded {model.rounded_objective_:.4g}, bound {model.upper_bound_:.4g}; "
          f"wrote {args.out}")
    return 0
