"""Cost against recovery of planted groups: the surrogate affinity at several subset budgets,
alone and combined with the base model's head cosine.

For every planted preset and seed (a new graph per seed), one base model on all tasks is trained
with the pipeline's defaults (its head cosine is the cheap control), then the surrogate affinity
is estimated from ``m`` sampled subsets of ``s`` tasks for each ``m`` of ``--budgets``; each
affinity, and its combination with the head cosine (``combine_affinities``), is clustered into
the planted number of groups with the pipeline's clustering, and its adjusted Rand index against
the planted groups is recorded with the cost (wall and CPU seconds; the combination adds the
base model's cost). No group models are trained: the grouping benchmark
(``experiments.bench_grouping``) judges the groups themselves.

    OMP_NUM_THREADS=1 nice .venv/bin/python -m experiments.bench_affinity_budget
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from experiments.harness import WORK, Record, md_table, parse_args, run, write_results

NAME = "bench_affinity_budget"
PRESETS = ("annotated_scarce", "annotated_disjoint", "annotated_moderate")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=list(PRESETS[:2]), choices=PRESETS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budgets", type=int, nargs="+", default=[100, 250, 500, 1000],
                   help="numbers of sampled subsets m")
    p.add_argument("--subset-size", type=int, default=5)
    p.add_argument("--work", type=Path, default=WORK / NAME,
                   help="where base models are kept (reused on a rerun)")
    return p


def one_seed(preset: str, seed: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Rows ``{preset, seed, method, m, ari, wall_s, cpu_s}`` for one graph."""
    from sklearn.metrics import adjusted_rand_score

    from graphmtl.affinity import (SurrogateAffinityEstimator, combine_affinities,
                                   head_cosine_affinity)
    from graphmtl.clustering import TaskClustering
    from graphmtl.data import load_dataset
    from graphmtl.pipeline import PipelineConfig
    from graphmtl.training import Trainer, load_checkpoint
    from graphmtl.utils.io import atomic_write_json, read_json
    from graphmtl.utils.timing import Stopwatch

    spec = f"synthetic:preset={preset},seed={seed}"
    graph = load_dataset(spec)
    planted = np.asarray(graph.provenance["planted_groups"])
    k = int(planted.max()) + 1
    cfg = PipelineConfig(data=spec, k=k, seed=seed)
    base_dir = args.work / preset / f"seed{seed}" / "base"
    if not (base_dir / "cost.json").is_file():
        with Stopwatch() as sw:
            Trainer(cfg.model, cfg.train.replace(seed=seed)).fit(
                graph, "all", out_dir=base_dir, resume=True, progress=False)
        atomic_write_json(base_dir / "cost.json", sw.to_dict())
    base_cost = read_json(base_dir / "cost.json")
    head = head_cosine_affinity(load_checkpoint(base_dir / "model.pt").model)

    def score(A: np.ndarray) -> float:
        return float(adjusted_rand_score(planted, TaskClustering(k=k).fit(A).labels_))

    rows = [{"preset": preset, "seed": seed, "method": "head cosine", "m": 0,
             "ari": score(head), **base_cost}]
    for m in args.budgets:
        with Stopwatch() as sw:
            sur = SurrogateAffinityEstimator(num_subsets=m, subset_size=args.subset_size,
                                             seed=seed).fit(graph).affinity_
        cost = sw.to_dict()
        rows.append({"preset": preset, "seed": seed, "method": "surrogate", "m": m,
                     "ari": score(sur), **cost})
        rows.append({"preset": preset, "seed": seed, "method": "surrogate + head cosine",
                     "m": m, "ari": score(combine_affinities(sur, head)),
                     **{key: cost[key] + base_cost[key] for key in cost}})
        print(f"[{preset} seed {seed}] m = {m}: surrogate ARI {rows[-2]['ari']:.2f}, "
              f"combined {rows[-1]['ari']:.2f} ({cost['cpu_s']:.0f} CPU-s)", flush=True)
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per preset, method and budget: ARI per seed, its mean, mean wall / CPU seconds."""
    keys = sorted({(r["preset"], r["method"], r["m"]) for r in rows},
                  key=lambda t: (t[0], t[1] != "head cosine", t[1], t[2]))
    out = []
    for preset, method, m in keys:
        sel = [r for r in rows if (r["preset"], r["method"], r["m"]) == (preset, method, m)]
        out.append({"preset": preset, "method": method, "m": m,
                    "ari_per_seed": [r["ari"] for r in sel],
                    "ari": float(np.mean([r["ari"] for r in sel])),
                    "wall_s": float(np.mean([r["wall_s"] for r in sel])),
                    "cpu_s": float(np.mean([r["cpu_s"] for r in sel]))})
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(), argv, NAME)
    record = Record(args)
    rows = [row for preset in args.presets for seed in args.seeds
            for row in one_seed(preset, seed, args)]
    summary = summarize(rows)
    table = md_table(
        ["preset", "method", "subsets m", "ARI per seed", "mean ARI", "wall s", "CPU s"],
        [[s["preset"], s["method"], s["m"] or "–",
          " / ".join(f"{a:.2f}" for a in s["ari_per_seed"]), f"{s['ari']:.2f}",
          f"{s['wall_s']:.0f}", f"{s['cpu_s']:.0f}"] for s in summary], align="lllrrrr")
    markdown = (f"# Affinity budget: recovery of planted groups against cost\n\n"
                f"{record.markdown()}\n\n"
                f"Seeds {args.seeds} (each a new graph); subsets of {args.subset_size} tasks; "
                f"k = the planted number; clustering as in `graphmtl run`. Cost of the "
                f"combination = surrogate + base model (the head cosine's only cost).\n\n"
                f"{table}\n")
    write_results(args.out, {**record.to_dict(), "presets": args.presets, "seeds": args.seeds,
                             "budgets": args.budgets, "subset_size": args.subset_size,
                             "rows": rows, "summary": summary}, markdown, args.results_dir)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
