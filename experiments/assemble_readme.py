"""Assemble ``experiments/README.md`` from the results pages, in the order declared here.

The page is the preamble below followed by the markdown page of every result, module by module in
the order of :data:`ORDER`; each module declares the results it records (its ``NAME`` and
``VARIANTS``, see :func:`experiments.harness.declared_results`). A declared result that has not
been run yet is skipped with a note; a file in ``results/`` that no module declares is an error
(declare it as a variant of the benchmark that wrote it, or remove it).

    .venv/bin/python -m experiments.assemble_readme            # write experiments/README.md
    .venv/bin/python -m experiments.assemble_readme --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Sequence

from experiments.harness import RESULTS, ROOT, declared_results, run

NAME = "assemble_readme"
README = ROOT / "experiments" / "README.md"

#: The benchmark modules, in the order their results appear on the page (pipeline order: data,
#: generator, training, projection, affinity, clustering, end to end, grouping methods, scale).
ORDER = ("bench_data", "bench_generator", "diag_planted_recovery", "bench_trainer",
         "bench_projection", "bench_affinity_solver", "bench_affinity_fidelity",
         "diag_duplicate_tasks", "bench_clustering", "bench_pipeline", "paper_experiments",
         "bench_grouping", "bench_affinity_budget", "bench_scale", "bench_gpu")

PREAMBLE = """# Experiments

Benchmarks and paper-style experiments. Each benchmark runs as `python -m experiments.NAME`
(`--help` lists its options; `--variant RESULT` reruns a recorded variant) and writes its results as
JSON to `results/` and a markdown table next to it; this page is assembled from those tables by
`.venv/bin/python -m experiments.assemble_readme`. Every table names the command that produced it
and the machine it ran on (2 CPU cores, 24 GB RAM, no GPU unless stated). Ratios are measured with
both sides in the same run. Most runs shared the 2 cores with other jobs (load averages are
recorded in each table), so absolute times are upper bounds.

## Goals at a glance

| goal (issue) | result | met? |
|---|---|---|
| SNAP recipe sizes (2) | YouTube-100 16,751 / 104,513 and DBLP-100 57,367 / 209,833 exact; Amazon-100 needs SNAP's file with duplicate lines (shared file: k=61 gives 3,225 / 10,262) | YouTube, DBLP yes |
| 500 tasks / ~21M edges generated in minutes within memory (2) | 21.2M edges in 49 s, 2.7 GB peak RSS (load 0.6; 187 s at load 9) | yes |
| planted groups help each other (2) | `labels=annotation`, preset `annotated_scarce`, 3 seeds: a task's planted group +0.18 to +0.21 test AP over the task alone (29/30 tasks), as many other-group tasks −0.06 to −0.08, per-group models beat one model on all tasks by 0.16–0.20 AP; single partners do not help on their own; `labels=community` (default) plants competing groups; on `annotated_scarce` Grad-TAG's groups score test AP 0.167 (ARI 0.01) against 0.156 random, 0.217 naive pairwise (all pairs), 0.230 head-weight cosine and 0.404 planted (3 seeds) | generator yes; no affinity recovers them, Grad-TAG least |
| trainer ≥ plain PyG loop (3) | 1.27× (YouTube-100), 1.69× (DBLP-100) | yes |
| projection ≥ 1000× reference (4) | 1,069–1,117× per (node, task) pair, 426–447× per needed train/val row | per pair only |
| subset solver m=2000, n=500, d=200 in ≤ 60 s (5) | 34–35 s; 23–24× one scikit-learn fit per subset | yes |
| ≤ 2 % error at ≤ 1 % compute (5) | cost 0.10–0.48 % of subset trainings; error vs 100 fine-tuned subsets 10.4 % (planted; a rerun with another seed: 8.0 %), per-task Spearman 0.02 (rerun 0.33); YouTube-100, 40 subsets: 12.6 % (rerun 14.7 %) | cost yes, error no (below the rerun noise) |
| clustering n=500 ≤ 2 s, n=2000 ≤ 30 s at ≥ 99.5 % of exact (6) | 0.15–1.02 s / 3.0–9.0 s at every noise level, certificate included (load ~1); ≥ 99.62 % of SCS wherever SCS ran | yes |
| certified-close objective at n = 2000 (6) | bound gap 0.0001 at moderate noise (ν = 0.6; 0.0003 at n = 1000); 28–54 % at ν ≥ 1.0 past n = 700 | moderate noise |
| demo ≤ 5 min (7) | 134 s | yes |
| YouTube-100 end to end ≤ 15 min (7) | 5.9–10.1 min (mean 7.7 over 3 seeds, loads 1–5) | yes |
| grouped ≥ all-task + 3 F1 on YouTube-100 / DBLP-100 (7) | YouTube-100, 3 seeds: +0.9 (29.1 ± 1.4 vs 28.2 ± 3.1; random groups 29.3 ± 0.8); DBLP-100, 3 seeds: +25.5 (65.2 ± 2.5 vs 39.7 ± 4.9; ROC-AUC 93.8–94.9 vs 91.9–93.4), but random groups of the same sizes 64.6 ± 0.7; Amazon-100, 3 seeds: −1.8 | DBLP yes, YouTube no; not better than random groups |
| grouped ≥ pairwise-affinity groups at < 5 % of their cost (7) | 29.1 vs 27.0, 94.0 vs 90.8, 65.2 vs 47.0 (YouTube, Amazon, DBLP; 60 sampled pairs) at 0.8 %, 0.7 %, 1.2 % of the extrapolated all-pairs cost | yes |
| planted groups at ≤ 2 % of the trained affinity's cost, ARI ≥ 0.9 (14) | shared subspace: ARI 1.00 on every preset-seed (3 presets × 3 seeds from scratch, scarce and disjoint × 5 seeds fine-tuned), 0.4–5 CPU-s against 536–848 for 150 trained subsets | yes |
| default groups beat random groups, interval above 0, AP and tuned F1 (14) | from scratch / fine-tuned: Amazon-100 +13.0 [+5.5, +20.4] / +6.2 [+5.5, +6.9] AP (tuned F1 +12.4 / +6.0, both above 0; head cosine +7.3 / +3.7); YouTube-100 +0.5 [−0.0, +1.0] / +0.4 [−0.2, +1.0]; BlogCatalog −0.1 [−0.7, +0.5] / +0.3 [−0.0, +0.7]; DBLP-100 −0.3 [−3.4, +2.9] / +0.2 [−1.7, +2.1] (2 seeds each). Partner signal (draws trained twice, fine-tuned): picking partners on validation gains +0.2 [−0.1, +0.5] AP on a new training on YouTube-100, +2.6 [+2.1, +3.2] on Amazon-100 | Amazon yes; YouTube, BlogCatalog, DBLP no |
| default groups ≥ one all-task model (14) | fine-tuned (the default): scarce +10.5 [+4.8, +16.2], disjoint +6.5 [+1.1, +11.9], Amazon-100 +14.9 [+11.4, +18.4], BlogCatalog +1.5 [+0.9, +2.0], YouTube-100 +1.5 [+0.7, +2.3] (5 seeds each), DBLP-100 +9.0 [+1.5, +16.5] (2 seeds); from scratch below it except DBLP-100 (+8.3 [−11.5, +28.0]) | fine-tuned: yes where measured |
| estimate vs trained subset scores: per-task Spearman ≥ 0.3 (14) | 0.06 / 0.22 / 0.08 on `annotated_scarce`; the same 150 subsets trained twice agree at only 0.04 / 0.24 / 0.38; against the mean of both trainings 0.09 / 0.21 / 0.06 where about 0.28 / 0.62 / 0.75 is reachable (`bench_grouping_annotated_scarce_fidelity`) | no |
| estimate < 5 % of sampled pairwise affinity's cost (14) | 0.5–1.3 % of its CPU time, same runs (scarce and disjoint, 5 seeds each, clustering included) | yes |
"""


def sections(order: Sequence[str] = ORDER) -> list[tuple[str, list[str]]]:
    """``(module, its declared result names)`` for every module of ``order``."""
    return [(m, declared_results(importlib.import_module(f"experiments.{m}"))) for m in order]


def assemble(results: Path, declared: Sequence[tuple[str, Sequence[str]]],
             preamble: str = PREAMBLE) -> tuple[str, list[str]]:
    """The page built from ``results/<name>.md`` of every declared name, and the declared names
    with no page yet.

    Raises:
        GraphMTLError: a file in ``results`` belongs to no declared result, or a name is declared
            twice.
    """
    from graphmtl.errors import GraphMTLError, check

    names = [n for _, ns in declared for n in ns]
    twice = sorted({n for n in names if names.count(n) > 1})
    check(not twice, f"results declared twice: {', '.join(twice)}")
    known = {f"{n}{ext}" for n in names for ext in (".json", ".md")}
    stray = sorted(p.name for p in Path(results).iterdir()
                   if p.name not in known and not p.name.startswith("."))
    if stray:
        raise GraphMTLError(
            f"{results}: {len(stray)} file(s) no benchmark declares: {', '.join(stray)} (add the "
            "result to the VARIANTS of the module that wrote it, or remove the file)")
    parts, missing = [preamble.rstrip() + "\n"], []
    for name in names:
        path = Path(results) / f"{name}.md"
        if not path.is_file():
            missing.append(name)
            continue
        lines = path.read_text().strip().splitlines()
        # Several results share a title (the same benchmark with other settings): the file name
        # tells them apart.
        if lines and lines[0].startswith("# "):
            lines[0] += f" (`results/{name}.md`)"
        # Each page's own headings sit one level below this page's title.
        parts.append("\n".join("#" + line if line.startswith("#") else line for line in lines))
    return "\n\n".join(parts) + "\n", missing


def main(argv: list[str] | None = None) -> int:
    from graphmtl.utils.io import atomic_path

    p = argparse.ArgumentParser(prog=f"python -m experiments.{NAME}",
                                description=__doc__.splitlines()[0])
    p.add_argument("--results-dir", type=Path, default=RESULTS, metavar="DIR",
                   help="the results pages (default experiments/results)")
    p.add_argument("--output", type=Path, default=README, metavar="FILE",
                   help="the page to write (default experiments/README.md)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if the page is not what it would be")
    args = p.parse_args(argv)
    page, missing = assemble(args.results_dir, sections())
    if missing:
        print(f"{NAME}: not run yet (skipped): {', '.join(missing)}", file=sys.stderr)
    if args.check:
        current = args.output.read_text() if args.output.is_file() else ""
        if current != page:
            print(f"{NAME}: {args.output} is out of date; run python -m experiments.{NAME}",
                  file=sys.stderr)
            return 1
        return 0
    with atomic_path(args.output) as tmp:
        tmp.write_text(page)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
