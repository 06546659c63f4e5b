"""``graphmtl affinity``: Grad-TAG task affinities from a projected-gradient store."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "affinity", help="estimate task affinities from projected gradients (Grad-TAG)",
        description="Sample task subsets, solve all their linearised logistic regressions at "
                    "once, score every task of every subset by its linearised validation loss, "
                    "and write the affinity matrix (affinity.npy, symmetric, zero diagonal) with "
                    "a JSON summary. Several --store give an ensemble (mean and spread).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--store", required=True, type=Path, action="append",
                   help="projection store directory (graphmtl project); repeat for an ensemble")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--subsets", type=int, default=2000, help="number of sampled subsets m")
    p.add_argument("--size", default="10", help="subset size s, or a range MIN-MAX")
    p.add_argument("--pairwise", action="store_true",
                   help="score all pairs (and singletons) instead of sampled subsets")
    p.add_argument("--pairs", type=int, default=None,
                   help="pairwise mode: a seeded sample of this many pairs (default: all)")
    p.add_argument("--subsets-file", type=Path, default=None,
                   help="JSON list of subsets (lists of task names) to score instead of sampling")
    p.add_argument("--lambda", dest="lam", type=float, default=1.0,
                   help="L2 strength, relative to the mean curvature unless --absolute-lambda")
    p.add_argument("--absolute-lambda", action="store_true",
                   help="use --lambda as is (objective: mean BCE + lambda/2 |w|^2)")
    p.add_argument("--standardize", action="store_true",
                   help="z-score each task's scores across its subsets before averaging")
    p.add_argument("--balance", action="store_true", help="balance pair co-occurrence")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset sample")
    p.add_argument("--tol", type=float, default=1e-8, help="solver gradient tolerance")
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: torch's)")
    p.set_defaults(func=run)


def parse_size(text: str) -> int | tuple[int, int]:
    from graphmtl.errors import GraphMTLError

    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return int(lo), int(hi)
        return int(text)
    except ValueError:
        raise GraphMTLError(f"--size: expected an integer or MIN-MAX, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from graphmtl.affinity import GradTAGEnsemble, GradTAGEstimator
    from graphmtl.errors import check
    from graphmtl.utils.io import atomic_path, atomic_write_json, read_json

    est = GradTAGEstimator(
        num_subsets=args.subsets, subset_size=parse_size(args.size), pairwise=args.pairwise,
        num_pairs=args.pairs, lam=args.lam, lam_relative=not args.absolute_lambda,
        standardize=args.standardize, balance=args.balance, seed=args.seed, tol=args.tol,
        workers=args.threads)
    subsets = None
    if args.subsets_file is not None:
        subsets = read_json(args.subsets_file)
        check(isinstance(subsets, list) and all(isinstance(s, list) for s in subsets),
              f"{args.subsets_file}: expected a JSON list of lists of task names")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if len(args.store) == 1:
        est.fit(args.store[0], subsets=subsets)
        summary = est.summary()
        fitted, std = est, None
    else:
        ens = GradTAGEnsemble(est).fit(args.store, subsets=subsets)
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
    summary.update({"stores": [str(s) for s in args.store], "task_names": fitted.task_names_,
                    "files": {"affinity": "affinity.npy", "scores": "scores.npy",
                              "subsets": "subsets.npy"}})
    atomic_write_json(out / "summary.json", summary)
    t = fitted.timings_
    print(f"{out}/affinity.npy: {len(fitted.task_names_)} tasks, {est.subsets_.shape[0]} subsets, "
          f"solve {t['solve_s']:.1f}s, total {t['total_s']:.1f}s, "
          f"{int(fitted.converged_.sum())}/{fitted.converged_.size} converged")
    return 0
