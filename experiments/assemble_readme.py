"""Assemble experiments/README.md from the markdown tables the benchmarks wrote.

Each benchmark ``experiments/<name>.py`` writes ``results/<name>.json`` and ``results/<name>.md``;
this script concatenates the ``.md`` files (in pipeline order) under a short preamble.

    .venv/bin/python experiments/assemble_readme.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["bench_data", "bench_generator", "bench_trainer", "bench_projection",
         "bench_affinity_solver", "bench_affinity_fidelity", "bench_clustering",
         "bench_pipeline", "paper_experiments"]

PREAMBLE = """# Experiments

Benchmarks and paper-style experiments. Each script writes its results as JSON to `results/` and a
markdown table next to it; this page is assembled from those tables by
`.venv/bin/python experiments/assemble_readme.py`. Every table names the command that produced it
and the machine it ran on (2 CPU cores, 24 GB RAM, no GPU unless stated). Ratios are measured with
both sides in the same run.
"""


def main() -> None:
    results = HERE / "results"
    parts = [PREAMBLE]
    names = sorted(p.stem for p in results.glob("*.md"))
    for name in [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]:
        text = (results / f"{name}.md").read_text().strip()
        parts.append(text)
    (HERE / "README.md").write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
