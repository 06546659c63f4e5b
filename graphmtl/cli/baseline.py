"""``graphmtl baseline``: the expensive (trained) and cheap (gradient cosine) affinity baselines."""

from __future__ import annotations

import argparse
from pathlib import Path

from graphmtl.cli._common import (add_command, argtype, check_subset_params, cleanup_on_failure,
                                  load_checkpoint, load_data, parse_size, read_subsets_file)
from graphmtl.errors import check

HELP = "task affinities by training subset models, or by gradient cosine"
KINDS = ("trained", "finetune", "pairwise", "cosine")


def register(subparsers) -> None:
    p = add_command(
        subparsers, "baseline", help=HELP,
        description="trained: train a model on each sampled subset from scratch; finetune: "
                    "fine-tune the base checkpoint on each subset; pairwise: train every pair "
                    "(and singleton), or --pairs of them; cosine: cosine similarity of per-task "
                    "loss gradients at the base model, from a projection store. Trained kinds "
                    "append one JSON line per finished subset to OUT/results.jsonl and resume "
                    "from it; the affinity goes to OUT/affinity.npy with OUT/summary.json.")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--data", default=None,
                   help="dataset spec or saved graph .npz (needed by the trained kinds)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="base model: its architecture and training settings are reused; "
                        "finetune starts from it (needed by the trained kinds)")
    p.add_argument("--store", type=Path, default=None,
                   help="projection store: cosine reads it; trained kinds score the store's "
                        "validation rows (same rows as the estimate) and check it matches "
                        "(default: the data's validation split)")
    # A trained subset costs a whole training run, hence far fewer subsets than Grad-TAG's.
    p.add_argument("--subsets", type=int, default=200, help="number of sampled subsets")
    p.add_argument("--size", default=10, type=argtype(parse_size, "size"),
                   help="subset size s, or a range MIN-MAX")
    p.add_argument("--subsets-file", type=Path, default=None,
                   help="JSON list of subsets (lists of task names) instead of sampling")
    p.add_argument("--pairs", type=int, default=None,
                   help="pairwise: a seeded sample of this many pairs (default: all pairs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset / pair sample")
    p.add_argument("--standardize", action="store_true",
                   help="z-score each task's scores across its subsets before averaging")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the training epochs (default: the checkpoint's)")
    p.add_argument("--workers", type=int, default=2, help="training processes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from graphmtl.affinity import (higher_order_affinity, pair_subsets, pairwise_affinity,
                                   sample_subsets, symmetrize)
    from graphmtl.affinity.baselines import (TrainedSubsetScores, check_store_matches,
                                             gradient_cosine, val_rows_from_store)
    from graphmtl.affinity.subsets import coverage_report
    from graphmtl.projection.store import ProjectionStore
    from graphmtl.utils.io import atomic_path, atomic_write_json

    out: Path = args.out
    summary: dict = {"kind": args.kind}
    trained = args.kind != "cosine"
    # Settings that need no data.
    check(args.epochs is None or args.epochs >= 1, f"--epochs: must be >= 1, got {args.epochs}")
    check(args.workers >= 1, f"--workers: must be >= 1, got {args.workers}")
    if trained:
        check(args.data is not None, f"baseline {args.kind}: needs --data")
        check(args.checkpoint is not None,
              f"baseline {args.kind}: needs --checkpoint (the base model's settings)")
    else:
        check(args.store is not None, "baseline cosine: needs --store")
    store = ProjectionStore(args.store) if args.store is not None else None

    if not trained:
        if args.checkpoint is not None:
            check_store_matches(store, checkpoint=args.checkpoint)
        with cleanup_on_failure(out):
            A = gradient_cosine(store)
        names = store.task_names
    else:
        ckpt = load_checkpoint(args.checkpoint)
        graph = load_data(args.data)
        missing = [t for t in ckpt.task_names if t not in set(graph.task_names)]
        check(not missing, f"{args.checkpoint}: task {missing[0] if missing else ''!r} is not in "
                           f"--data {args.data} (model/data mismatch)")
        if list(graph.task_names) != list(ckpt.task_names):
            graph = graph.select_tasks(ckpt.task_names)
        names = list(graph.task_names)
        val_rows = None
        if store is not None:
            check_store_matches(store, graph, args.checkpoint)
            val_rows = val_rows_from_store(store, graph)
        n = len(names)
        if args.subsets_file is not None:
            M = read_subsets_file(args.subsets_file, names)
        else:
            check_subset_params(n, f"--data {args.data}", pairwise=args.kind == "pairwise",
                                num_pairs=args.pairs, num_subsets=args.subsets, size=args.size)
            M = (pair_subsets(n, args.pairs, seed=args.seed, singletons=True)
                 if args.kind == "pairwise" else
                 sample_subsets(n, args.subsets, args.size, seed=args.seed))
        tc = ckpt.train_config
        if args.epochs is not None and tc is not None:
            tc = tc.replace(epochs=args.epochs)
        runner = TrainedSubsetScores(
            ckpt.model_config, tc, mode="finetune" if args.kind == "finetune" else "scratch",
            init_from=args.checkpoint if args.kind == "finetune" else None,
            workers=args.workers, progress=not args.no_progress)
        with cleanup_on_failure(out):
            res = runner.fit(graph, M, results=out / "results.jsonl", val_rows=val_rows).result_
        if args.kind == "pairwise":
            T = pairwise_affinity(M, res.scores)
        else:
            T = higher_order_affinity(M, res.scores, standardize=args.standardize)
        A = symmetrize(T)
        with atomic_path(out / "scores.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, res.scores)
        summary.update({"subsets": int(M.shape[0]), "coverage": coverage_report(M).to_dict(),
                        "train_seconds_total": float(res.seconds.sum()),
                        "train_seconds_mean": float(res.seconds.mean()),
                        "results": "results.jsonl"})
    with atomic_path(out / "affinity.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, A)
    summary.update({"task_names": list(names), "affinity": "affinity.npy"})
    atomic_write_json(out / "summary.json", summary)
    print(f"{out}/affinity.npy: {args.kind} affinity of {len(names)} tasks")
    return 0
