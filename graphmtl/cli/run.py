"""``graphmtl run``: the whole pipeline on one dataset, with a comparison report."""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

from graphmtl.errors import GraphMTLError
from graphmtl.utils.io import read_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="base model -> projected gradients -> affinities -> groups -> group models",
        description="Run every stage on a dataset and write an HTML + markdown report. "
                    "Re-running skips stages whose inputs did not change; a killed run resumes.")
    p.add_argument("--data", default=None,
                   help="dataset spec (default: the built-in planted synthetic graph)")
    p.add_argument("--root", default=None, help="where bare dataset names are looked up")
    p.add_argument("--out", default=None, help="run directory (default: runs/<dataset>)")
    p.add_argument("--config", default=None,
                   help="JSON file with a full PipelineConfig; flags below override it")
    p.add_argument("--model", default=None, help="encoder: sage, gcn, gat, gin, sign")
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--fanouts", default=None, help="e.g. 10,5")
    p.add_argument("--threads", type=int, default=None, help="torch threads per training")
    p.add_argument("--dim", type=int, default=None, help="projection dimension d")
    p.add_argument("--subsets", type=int, default=None, help="number of sampled task subsets m")
    p.add_argument("--subset-size", type=int, default=None, help="tasks per subset s")
    p.add_argument("--k", default=None, help="number of groups, or 'auto'")
    p.add_argument("--solver", default=None, choices=["auto", "exact", "lowrank"])
    p.add_argument("--pairwise-pairs", type=int, default=None,
                   help="train a seeded sample of this many pairs for the naive baseline")
    p.add_argument("--no-pairwise", action="store_true", help="skip the naive pairwise baseline")
    p.add_argument("--no-random", action="store_true", help="skip the random-groups baseline")
    p.add_argument("--single-task", action="store_true", help="also train one model per task")
    p.add_argument("--quiet", action="store_true", help="no stage lines or progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from graphmtl.pipeline import PipelineConfig, run_pipeline

    config = (PipelineConfig.from_dict(read_json(args.config)) if args.config
              else PipelineConfig())
    if args.data is not None:
        config = replace(config, data=args.data)
    if args.root is not None:
        config = replace(config, data_root=args.root)
    model = {k: v for k, v in (("encoder", args.model), ("hidden", args.hidden)) if v is not None}
    if model:
        config = replace(config, model=replace(config.model, **model))
    train = {k: v for k, v in (("epochs", args.epochs), ("fanouts", args.fanouts),
                               ("num_threads", args.threads)) if v is not None}
    if train:
        config = replace(config, train=replace(config.train, **train))
    if args.dim is not None:
        config = replace(config, projection=replace(config.projection, dim=args.dim))
    aff = {k: v for k, v in (("num_subsets", args.subsets), ("subset_size", args.subset_size))
           if v is not None}
    if aff:
        config = replace(config, affinity=replace(config.affinity, **aff))
    if args.k is not None:
        if args.k != "auto" and not args.k.isdigit():
            raise GraphMTLError(f"--k: expected a positive integer or 'auto', got {args.k!r}")
        config = replace(config, n_groups=args.k if args.k == "auto" else int(args.k))
    if args.solver is not None:
        config = replace(config, cluster_solver=args.solver)
    comp = {}
    if args.pairwise_pairs is not None:
        comp["pairwise_pairs"] = args.pairwise_pairs
    if args.no_pairwise:
        comp["pairwise"] = False
    if args.no_random:
        comp["random_groups"] = False
    if args.single_task:
        comp["single_task"] = True
    if comp:
        config = replace(config, compare=replace(config.compare, **comp))

    out = Path(args.out) if args.out else Path("runs") / re.sub(r"[^A-Za-z0-9_.=-]+", "_",
                                                                   config.data)
    result = run_pipeline(config, out, quiet=args.quiet, progress=not args.quiet)
    width = max(len(m.name) for m in result.methods)
    print(f"{'method':<{width}}  groups  macro-F1  ROC-AUC  grouping cost  group training")
    for m in result.methods:
        print(f"{m.name:<{width}}  {len(set(m.groups.tolist())):>6}  {100 * m.macro_f1:>8.2f}  "
              f"{100 * m.macro_auc:>7.2f}  {m.cost_seconds:>11.1f} s  {m.train_seconds:>12.1f} s")
    print(f"report: {result.report_html}")
    print(f"        {result.report_md}")
    return 0
