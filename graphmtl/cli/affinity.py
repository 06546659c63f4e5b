"""``graphmtl affinity``: Grad-TAG task affinities from a projected-gradient store."""

from __future__ import annotations

import argparse
from pathlib import Path

from graphmtl.cli._common import (add_command, argtype, build_config, check_subset_params,
                                  cleanup_on_failure, config_options, load_data,
                                  parse_size, read_subsets_file)
from graphmtl.errors import check

HELP = "estimate task affinities from projected gradients (Grad-TAG)"


def register(subparsers) -> None:
    from graphmtl.affinity import MODES, GradTAGEstimator

    p = add_command(
        subparsers, "affinity", help=HELP,
        description="Sample task subsets, solve all their linearised logistic regressions at "
                    "once, score every task of every subset by its linearised validation loss, "
                    "and write the affinity matrix (affinity.npy, symmetric, zero diagonal) with "
                    "a JSON summary (summary.json, with the task names). Several --store give "
                    "an ensemble (mean and spread).")
    p.add_argument("--store", required=True, type=Path, action="append",
                   help="projection store directory (graphmtl project); repeat for an ensemble")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--subsets-file", type=Path, default=None,
                   help="JSON list of subsets (lists of task names) to score instead of "
                        "sampling (default: sample --subsets subsets of --size tasks)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="--mode reference: the base model the store was projected from")
    p.add_argument("--data", default=None,
                   help="--mode reference: the dataset spec or saved graph of the store")
    est = p.add_argument_group("estimate (GradTAGEstimator)")
    config_options(
        est, GradTAGEstimator, "est", skip=("lam_relative",),
        flags={"num_subsets": "--subsets", "subset_size": "--size", "num_pairs": "--pairs",
               "lam": "--lambda", "workers": "--threads"},
        types={"subset_size": argtype(parse_size, "size")},
        choices={"mode": MODES, "score": ("ap", "bce")},
        helps={"num_subsets": "number of sampled subsets m",
               "subset_size": "subset size s, or a range MIN-MAX",
               "num_pairs": "pairwise mode: a seeded sample of this many pairs (default: all)",
               "lam": "L2 strength, relative to the mean curvature unless --absolute-lambda",
               "tol": "solver gradient tolerance",
               "max_newton": "most Newton steps per subset solve",
               "workers": "worker threads (default: torch's)"})
    absolute = not GradTAGEstimator().lam_relative
    est.add_argument("--absolute-lambda", action="store_true", default=absolute,
                     help="use --lambda as is (objective: mean BCE + lambda/2 |w|^2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from graphmtl.affinity import GradTAGEnsemble, GradTAGEstimator
    from graphmtl.projection.store import ProjectionStore
    from graphmtl.utils.io import atomic_path, atomic_write_json

    est = build_config(args, "est", GradTAGEstimator, lam_relative=not args.absolute_lambda)
    check(est.workers is None or est.workers >= 1, f"--threads: must be >= 1, got {est.workers}")
    reference = {}
    if est.mode == "reference":
        check(args.checkpoint is not None and args.data is not None,
              "--mode reference: needs --checkpoint (the store's base model) and --data")
        check(len(args.store) == 1, "--mode reference: one --store (no ensemble)")
        check(args.checkpoint.is_file(), f"--checkpoint {args.checkpoint}: no such file")
        reference = {"checkpoint": args.checkpoint, "graph": load_data(args.data)}
    stores = [ProjectionStore(s) for s in args.store]
    names = stores[0].task_names
    for st in stores[1:]:
        check(st.task_names == names,
              f"--store {st.path}: its tasks differ from --store {stores[0].path}'s")
    if args.subsets_file is not None:
        M = read_subsets_file(args.subsets_file, names)
    else:
        check_subset_params(len(names), f"--store {args.store[0]}", pairwise=est.pairwise,
                            num_pairs=est.num_pairs, num_subsets=est.num_subsets,
                            size=est.subset_size)
        M = est.make_subsets(len(names))
    out: Path = args.out
    with cleanup_on_failure(out):
        if len(stores) == 1:
            est.fit(stores[0], subsets=M, **reference)
            summary = est.summary()
            fitted, std = est, None
        else:
            ens = GradTAGEnsemble(est).fit(stores, subsets=M)
            fitted = ens.members_[0]
            summary = {"ensemble": len(ens.members_), "spread": ens.spread_,
                       "members": [m.summary() for m in ens.members_]}
            est = ens
            std = ens.affinity_std_
        for name, arr in (("affinity", est.affinity_), ("scores", est.scores_),
                          ("subsets", est.subsets_), ("affinity_std", std)):
            if arr is None:
                continue
            with atomic_path(out / f"{name}.npy") as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, arr)
        summary.update({"stores": [str(s) for s in args.store],
                        "task_names": fitted.task_names_,
                        "files": {"affinity": "affinity.npy", "scores": "scores.npy",
                                  "subsets": "subsets.npy"}})
        atomic_write_json(out / "summary.json", summary)
    t = fitted.timings_
    print(f"{out}/affinity.npy: {len(fitted.task_names_)} tasks, {est.subsets_.shape[0]} subsets, "
          f"solve {t['solve_s']:.1f}s, total {t['total_s']:.1f}s, "
          f"{int(fitted.converged_.sum())}/{fitted.converged_.size} converged")
    return 0
