"""Paper-style experiments: grouped MTL vs all-task MTL vs pairwise-affinity and random groups.

For each dataset and seed, one ``run_pipeline`` call (the same API as ``graphmtl run``) trains
the all-task base model, estimates Grad-TAG affinities, clusters into k groups and trains one
model per group, next to the naive pairwise-affinity groups and random groups of the same sizes,
all through the same trainer. Results: ``results/paper_experiments.json`` and a markdown table.

    .venv/bin/python -m experiments.paper_experiments --datasets youtube --seeds 0 1 2

Several invocations (one per core, say) may add runs to the same results file: each keeps the runs
the others finished meanwhile; every run records the command that reproduces it alone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from experiments.harness import (DATA_ROOT, ROOT, command, load_average, machine, md_table,
                                 parse_args, run, write_results)
from graphmtl.models import ModelConfig
from graphmtl.pipeline import AffinityConfig, CompareConfig, PipelineConfig, run_pipeline
from graphmtl.projection import ProjectionConfig
from graphmtl.training import TrainConfig

NAME = "paper_experiments"
#: The options of one run, as recorded in its command (the rest only say where files go).
RUN_OPTIONS = ("encoder", "hidden", "epochs", "patience", "dim", "train_budget", "val_budget",
               "subsets", "subset_size", "k", "pairs")
SPECS = {"youtube": "snap:youtube,k=100", "amazon": "snap:amazon,k=100",
         "dblp": "snap:dblp,k=100"}


def config_for(dataset: str, seed: int, args: argparse.Namespace) -> PipelineConfig:
    return PipelineConfig(
        data=f"{SPECS[dataset]},seed={seed}",
        model=ModelConfig(encoder=args.encoder, hidden=args.hidden),
        train=TrainConfig(epochs=args.epochs, patience=args.patience, seed=seed, num_threads=1),
        projection=ProjectionConfig(dim=args.dim, seed=seed, train_budget=args.train_budget,
                                    val_budget=args.val_budget),
        affinity=AffinityConfig(num_subsets=args.subsets, subset_size=args.subset_size,
                                seed=seed),
        k=args.k,
        compare=CompareConfig(pairwise=args.pairs > 0, pairwise_pairs=args.pairs or None,
                              random_groups=True),
        seed=seed)


def parser() -> argparse.ArgumentParser:
    """Its own options (:func:`experiments.harness.parse_args` adds the shared ones)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["youtube", "amazon", "dblp"],
                   choices=sorted(SPECS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--encoder", default="sage")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--train-budget", type=int, default=1000)
    p.add_argument("--val-budget", type=int, default=500)
    p.add_argument("--subsets", type=int, default=2000)
    p.add_argument("--subset-size", type=int, default=10)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--pairs", type=int, default=100,
                   help="pairs trained for the naive baseline (0: skip it)")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "paper",
                   help="where the pipeline runs go (one folder per dataset and seed)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(), argv, NAME)
    if not DATA_ROOT.is_dir():
        raise SystemExit(f"skipped: {DATA_ROOT} (the shared SNAP files) is absent")

    out = Path(args.results_dir) / args.out
    for dataset in args.datasets:
        for seed in args.seeds:
            cfg = config_for(dataset, seed, args)
            start = time.perf_counter()
            result = run_pipeline(cfg, Path(args.runs) / f"{dataset}-seed{seed}")
            summary = json.loads((result.run_dir / "summary.json").read_text())
            stages = summary["stage_seconds"]
            records = {(dataset, seed): {
                "dataset": dataset, "seed": seed, "config": cfg.to_dict(),
                "methods": summary["methods"], "stage_seconds": stages,
                "end_to_end_seconds": sum(stages.get(s, 0.0) for s in (
                    "data", "base", "projection", "affinity", "clustering", "groups")),
                "wall_seconds_this_call": time.perf_counter() - start,
                "command": command_line(args, dataset, seed),
                "machine": machine(), "loadavg": load_average()}}
            write(out, records)
    return 0


def command_line(args: argparse.Namespace, dataset: str, seed: int) -> str:
    """The command that (re)produces one dataset/seed run with these settings."""
    argv = ["--datasets", dataset, "--seeds", str(seed)]
    for key in RUN_OPTIONS:
        argv += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    return command(NAME, argv)


def write(out: Path, records: dict) -> None:
    """Write ``out.json`` / ``out.md`` with ``records`` and the runs already in ``out.json``."""
    # Re-read just before writing: several invocations (one per core) may add runs to the same
    # results file, and each must keep the runs the others finished meanwhile.
    if out.with_suffix(".json").is_file():
        on_disk = json.loads(out.with_suffix(".json").read_text()).get("runs", [])
        records = {**{(r["dataset"], r["seed"]): r for r in on_disk}, **records}
    runs = sorted(records.values(), key=lambda r: (r["dataset"], r["seed"]))
    commands = [r.get("command", f"(command of {r['dataset']} seed {r['seed']} not recorded)")
                for r in runs]
    lines = ["# Paper-style experiments: grouped MTL vs all-task MTL (test macro-F1, %)", "",
             "Commands (one per dataset and seed; each run's full config and machine are in the "
             "JSON):", ""]
    lines += [f"- `{c}`" for c in commands] + [""]
    rows = []
    for dataset in sorted({r["dataset"] for r in runs}):
        rs = [r for r in runs if r["dataset"] == dataset]

        def stat(name: str, key: str = "macro_f1", scale: float = 100.0):
            v = [scale * m[key] for r in rs for m in r["methods"] if m["name"].startswith(name)]
            return (float(np.mean(v)), float(np.std(v))) if v else (float("nan"),) * 2

        def fmt(name):
            m, s = stat(name)
            return "–" if np.isnan(m) else f"{m:.2f} ± {s:.2f}"

        diff = [100 * (a["macro_f1"] - b["macro_f1"]) for r in rs for a in r["methods"]
                for b in r["methods"] if a["name"].startswith("Grad-TAG")
                and b["name"].startswith("All tasks")]
        cost_gt = stat("Grad-TAG", "cost_seconds", 1.0)[0]
        cost_pw = stat("Pairwise", "cost_seconds", 1.0)[0]
        e2e = float(np.mean([r["end_to_end_seconds"] for r in rs]))
        pw_cost = "–" if np.isnan(cost_pw) else f"{cost_pw / 60:.1f} min"
        rows.append([f"{dataset}-100", len(rs), fmt("Grad-TAG"), fmt("All tasks"),
                     fmt("Pairwise"), fmt("Random"), f"{np.mean(diff):+.2f}",
                     f"{cost_gt / 60:.1f} min", pw_cost, f"{e2e / 60:.1f} min"])
    lines += [md_table(["dataset", "seeds", "Grad-TAG groups", "all tasks, one model",
                        "pairwise-affinity groups", "random groups", "Grad-TAG − all-task",
                        "Grad-TAG grouping cost", "pairwise cost (all pairs)",
                        "end-to-end (Grad-TAG, incl. group training)"], rows),
              "", "Grouping cost = projection + affinity + clustering (Grad-TAG) or pair trainings "
              "+ clustering (pairwise; extrapolated to all n(n−1)/2 pairs when a sample was "
              "trained). End-to-end = data + base model + projection + affinity + clustering + "
              f"group models. Load average during the last run: {runs[-1]['loadavg'][0]:.1f}."]
    write_results(out.name, {"machine": machine(), "runs": runs}, "\n".join(lines), out.parent)


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
