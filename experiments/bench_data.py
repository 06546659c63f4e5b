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

    nice -n 5 .venv/bin/python experiments/bench_data.py             # youtube and dblp, 3 repeats
    .venv/bin/python experiments/bench_data.py --datasets youtube --repeats 1

Writes experiments/results/bench_data.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphmtl.utils.io import atomic_path, atomic_write_json  # noqa: E402

RESULTS = ROOT / "experiments" / "results"
SNAP = ROOT.parent / "shared" / "datasets" / "snap"


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
    cmd = [sys.executable, __file__, "--child", dataset, mode, str(repeats), cache]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({dataset} {mode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, dataset, mode, repeats, cache = sys.argv
        print(json.dumps(_child(dataset, mode, int(repeats), cache)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["youtube", "dblp"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (SNAP / "com-dblp.ungraph.txt.gz").is_file():
        raise SystemExit(f"SNAP files not found in {SNAP}")
    command = "nice -n 5 .venv/bin/python experiments/bench_data.py " + " ".join(
        sys.argv[1:]) if sys.argv[1:] else "nice -n 5 .venv/bin/python experiments/bench_data.py"
    load_before = os.getloadavg()
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
    load_after = os.getloadavg()
    result = {"benchmark": "bench_data", "command": command, "repeats": args.repeats,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version()},
              "loadavg_before": [round(x, 2) for x in load_before],
              "loadavg_after": [round(x, 2) for x in load_after],
              "time": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "bench_data.json", result)
    head = ("| dataset | nodes | edges | tasks | parse s | recipe s | features s | cold s | warm s "
            "| cold peak RSS MB | warm peak RSS MB |")
    lines = ["# bench_data: SNAP recipe + structural features", "",
             f"Command: `{command}` ({args.repeats} repeats, medians; each mode in a fresh "
             "process; torch single-threaded).",
             f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; load average before "
             f"{result['loadavg_before']}, after {result['loadavg_after']} (other jobs share the "
             "cores, so times are upper bounds).", "",
             "recipe = parse + k largest + induced subgraph + per-task splits; features = FastRP "
             "128-d; cold = `load_dataset` with an empty cache (recipe + features + hashing + "
             "writing the .npz); warm = `load_dataset` from the cache in a new process. Peak RSS "
             "includes the interpreter with torch imported "
             f"(about {rows[0]['baseline_rss_mb']:.0f} MB).", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['nodes']:,} | {r['edges']:,} | {r['tasks']} | "
                     f"{r['parse_s']:.2f} | {r['recipe_s']:.2f} | {r['features_s']:.2f} | "
                     f"{r['cold_s']:.2f} | {r['warm_s']:.2f} | {r['cold_peak_rss_mb']:.0f} | "
                     f"{r['warm_peak_rss_mb']:.0f} |")
    with atomic_path(RESULTS / "bench_data.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print((RESULTS / "bench_data.md").read_text())


if __name__ == "__main__":
    main()
