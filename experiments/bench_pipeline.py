"""End-to-end time of the README's main command: ``graphmtl run`` on the built-in planted graph.

Runs the pipeline with the demo's settings in a fresh run directory and records the wall time of
every stage and the method comparison. Results: ``results/bench_pipeline.{json,md}``.

    .venv/bin/python experiments/bench_pipeline.py
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from graphmtl.pipeline import CompareConfig, PipelineConfig, run_pipeline
from graphmtl.utils.io import atomic_path, atomic_write_json

HERE = Path(__file__).resolve().parent
# Same settings as scripts/demo.sh (`graphmtl run --data synthetic --pairwise-pairs 30`).
DEMO = PipelineConfig(data="synthetic", compare=CompareConfig(pairwise_pairs=30))


def main() -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="graphmtl-bench-pipeline-"))
    load_before = os.getloadavg()
    start = time.perf_counter()
    try:
        result = run_pipeline(DEMO, run_dir, quiet=True, progress=False)
        wall = time.perf_counter() - start
        summary = json.loads((result.run_dir / "summary.json").read_text())
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    record = {"command": "python experiments/bench_pipeline.py", "config": DEMO.to_dict(),
              "wall_seconds": wall, "goal_seconds": 300, "loadavg_before": load_before,
              "loadavg_after": os.getloadavg(), **summary}
    out = HERE / "results" / "bench_pipeline"
    atomic_write_json(out.with_suffix(".json"), record)
    lines = ["# End-to-end demo: `graphmtl run` on the built-in planted graph", "",
             "Command: `.venv/bin/python experiments/bench_pipeline.py` (the settings of "
             "`bash scripts/demo.sh`, fresh run directory). Load average before / after: "
             f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f}.", "",
             f"**Wall time {wall:.0f} s** (goal ≤ 300 s), of which: " + ", ".join(
                 f"{k} {v:.0f} s" for k, v in summary["stage_seconds"].items()) + ".", "",
             "| method | groups | test macro-F1 % | macro ROC-AUC % | grouping cost | group training |",
             "|---|---|---|---|---|---|"]
    for m in summary["methods"]:
        lines.append(f"| {m['name']} | {m['groups']} | {100 * m['macro_f1']:.2f} | "
                     f"{100 * m['macro_roc_auc']:.2f} | {m['cost_seconds']:.0f} s | "
                     f"{m['train_seconds']:.0f} s |")
    ari = summary["dataset"].get("ARI vs planted groups")
    if ari is not None:
        lines += ["", f"Adjusted Rand index of the Grad-TAG groups against the planted groups: "
                      f"{ari} (see bench_generator_transfer_converged: the planted groups of "
                      "the current generator compete: trained to convergence, same-group tasks "
                      "hurt each other more than tasks of different groups, so ARI ≈ 0 is "
                      "expected)."]
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
