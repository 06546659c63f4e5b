"""Benchmark of the SNAP recipe and structural features (issue 2, item 8).

For YouTube-100 and DBLP-100 (``../shared/datasets/snap``), each measurement runs in a fresh
subprocess (so peak RSS is its own) and reports:

- ``parse``: reading the edge list and community file (:func:`read_snap_graph`,
  :func:`read_communities`);
- ``recipe``: :func:`load_snap` without features (parse + k largest + induced subgraph + per-task
  splits);
- ``features``: :func:`structural_features` (FastRP + log-degree, 128-d) on the recipe's graph;
- ``cold``: :func:`load_dataset` with an empty cache (everything above, plus hashing the sources
  and writing the prepared ``.npz``);
- ``warm``: :func:`load_dataset` again, in a new process, reading the cached ``.npz``.

Times are medians over ``--repeats`` runs (cold: a new empty cache each time); peak RSS is the
largest ``ru_maxrss`` of the process over its runs (the Python interpreter with torch imported is
included: see ``baseline_rss_mb``).

Usage::

    nice -n 5 .venv/bin/python -m experiments.bench_data       # youtube and dblp, 3 repeats
    .venv/bin/python -m experiments.bench_data --datasets youtube --repeats 1

Writes experiments/results/bench_data.json and .md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.harness import DATA_ROOT, ROOT, Record, md_table, parse_args, run, write_results

NAME = "bench_data"
SNAP = DATA_ROOT / "snap"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(dataset: str, mode: str, repeats: int, cache: str) -> dict:
    """Runs inside the subprocess: ``mode`` is ``cold`` or ``warm``."""
    import torch  # noqa: F401  (imported first so the baseline RSS includes it)

    from graphmtl.data import FeatureConfig, SnapRecipe, load_dataset, load_snap, structural_features
    from graphmtl.data.snap import read_communities, read_snap_graph, snap_files

    torch.set_num_threads(1)
    baseline = _peak_rss_mb()
    spec = f"snap:{dataset},k=100"
    out: dict = {"baseline_rss_mb": round(baseline, 1)}
    times: dict[str, list[float]] = {}

    def timed(name, fn):
        start = time.perf_counter()
        result = fn()
        times.setdefault(name, []).append(time.perf_counter() - start)
        return result

    graph_path, cmty_path = snap_files(SNAP / f"com-{dataset}")
    for r in range(repeats):
        if mode == "cold":
            timed("parse", lambda: (read_snap_graph(graph_path), read_communities(cmty_path)))
            g = timed("recipe", lambda: load_snap(graph_path, cmty_path, SnapRecipe(k=100),
                                                  features=None))
            timed("features", lambda: structural_features(g.edge_index, g.num_nodes,
                                                          FeatureConfig()))
            run_cache = Path(cache) / f"cold{r}"
            full = timed("cold", lambda: load_dataset(spec, root=SNAP.parent, cache_dir=run_cache))
            assert full.provenance["cache"]["status"] == "miss"
            out["nodes"], out["edges"], out["tasks"] = full.num_nodes, full.num_edges, full.num_tasks
        else:
            full = timed("warm", lambda: load_dataset(spec, root=SNAP.parent,
                                                      cache_dir=Path(cache) / "cold0"))
            assert full.provenance["cache"]["status"] == "hit"
    out["seconds"] = {k: round(statistics.median(v), 3) for k, v in times.items()}
    out["seconds_all"] = {k: [round(x, 3) for x in v] for k, v in times.items()}
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return out


def _run(dataset: str, mode: str, repeats: int, cache: str) -> dict:
    cmd = [sys.executable, "-m", f"experiments.{NAME}", "--child", dataset, mode, str(repeats),
           cache]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({dataset} {mode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parser() -> argparse.ArgumentParser:
    """Its own options (:func:`experiments.harness.parse_args` adds the shared ones)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["youtube", "dblp"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # internal: one measurement
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(), argv, NAME)
    if args.child:
        dataset, mode, repeats, cache = args.child
        print(json.dumps(_child(dataset, mode, int(repeats), cache)))
        return 0
    if not (SNAP / "com-dblp.ungraph.txt.gz").is_file():
        raise SystemExit(f"SNAP files not found in {SNAP}")
    record = Record(args)
    rows = []
    for dataset in args.datasets:
        cache = tempfile.mkdtemp(prefix=f"bench-data-{dataset}-")
        try:
            cold = _run(dataset, "cold", args.repeats, cache)
            warm = _run(dataset, "warm", args.repeats, cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        rows.append({"dataset": f"{dataset}-100", "nodes": cold["nodes"], "edges": cold["edges"],
                     "tasks": cold["tasks"], **{f"{k}_s": v for k, v in cold["seconds"].items()},
                     "warm_s": warm["seconds"]["warm"], "cold_peak_rss_mb": cold["peak_rss_mb"],
                     "warm_peak_rss_mb": warm["peak_rss_mb"],
                     "baseline_rss_mb": cold["baseline_rss_mb"],
                     "all_runs": {"cold": cold["seconds_all"], "warm": warm["seconds_all"]}})
        print(f"{dataset}: {rows[-1]}", file=sys.stderr)
    table = md_table(
        ["dataset", "nodes", "edges", "tasks", "parse s", "recipe s", "features s", "cold s",
         "warm s", "cold peak RSS MB", "warm peak RSS MB"],
        [[r["dataset"], f"{r['nodes']:,}", f"{r['edges']:,}", r["tasks"], f"{r['parse_s']:.2f}",
          f"{r['recipe_s']:.2f}", f"{r['features_s']:.2f}", f"{r['cold_s']:.2f}",
          f"{r['warm_s']:.2f}", f"{r['cold_peak_rss_mb']:.0f}", f"{r['warm_peak_rss_mb']:.0f}"]
         for r in rows])
    lines = ["# bench_data: SNAP recipe + structural features", "", record.markdown(), "",
             f"{args.repeats} repeats, medians; each mode in a fresh process; torch "
             "single-threaded. recipe = parse + k largest + induced subgraph + per-task splits; "
             "features = FastRP 128-d; cold = `load_dataset` with an empty cache (recipe + "
             "features + hashing + writing the .npz); warm = `load_dataset` from the cache in a "
             "new process. Peak RSS includes the interpreter with torch imported "
             f"(about {rows[0]['baseline_rss_mb']:.0f} MB).", "", table]
    write_results(args.out, {**record.to_dict(), "repeats": args.repeats, "rows": rows},
                  "\n".join(lines), args.results_dir)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
