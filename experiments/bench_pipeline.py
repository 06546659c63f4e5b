"""End-to-end time of the README's main command: ``graphmtl run`` on the built-in planted graph.

Runs the pipeline with the demo's settings in a fresh run directory and records the wall time of
every stage and the method comparison. Results: ``results/bench_pipeline.{json,md}``.

    .venv/bin/python -m experiments.bench_pipeline
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from experiments.harness import Record, md_table, parse_args, run, write_results
from graphmtl.pipeline import CompareConfig, PipelineConfig, run_pipeline

NAME = "bench_pipeline"
# Same settings as scripts/demo.sh (`graphmtl run --k 5 --pairwise-pairs 30` on the default
# planted graph).
DEMO = PipelineConfig(k=5, compare=CompareConfig(pairwise_pairs=30))


def parser() -> argparse.ArgumentParser:
    """Its own options (:func:`experiments.harness.parse_args` adds the shared ones)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(), argv, NAME)
    record = Record(args)
    run_dir = Path(tempfile.mkdtemp(prefix="graphmtl-bench-pipeline-"))
    start = time.perf_counter()
    try:
        result = run_pipeline(DEMO, run_dir, quiet=True, progress=False)
        wall = time.perf_counter() - start
        summary = json.loads((result.run_dir / "report" / "summary.json").read_text())
        table = result.table()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    data = {**record.to_dict(), "config": DEMO.to_dict(), "wall_seconds": wall,
            "goal_seconds": 300, **summary}
    lines = ["# End-to-end demo: `graphmtl run` on the built-in planted graph", "",
             record.markdown() + " The settings of `bash scripts/demo.sh`, fresh run "
             "directory.", "",
             f"**Wall time {wall:.0f} s** (goal ≤ 300 s), of which: " + ", ".join(
                 f"{k} {v:.0f} s" for k, v in summary["stage_seconds"].items()) + ".", "",
             "What the demo prints (test scores over 3 training seeds; intervals: Welch over "
             "the training runs):", "", "```", table, "```"]
    write_results(args.out, data, "\n".join(lines), args.results_dir)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
