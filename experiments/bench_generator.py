"""Benchmark of the planted-group graph generator (issue 2, item 4d).

For each preset (``default``: the end-to-end demo graph; ``mid``; ``orkut500``: the scale of the
paper's largest benchmark, 500 tasks and about 21M undirected edges) one fresh subprocess builds
the graph with :func:`graphmtl.data.synthetic.make_planted_graph` and reports

- wall and CPU time of the build (features and per-task splits included);
- peak memory: the process's ``ru_maxrss`` (peak resident set, everything included) and its
  increase over the RSS right before the build, plus the ``tracemalloc`` peak (numpy and Python
  allocations only; torch's own allocations are not traced);
- the measured shape: degree, community-size and memberships-per-node summaries (with Hill
  estimates of the tail exponent from the top 1%), within- vs between-group label correlation,
  and community-inside vs background edge density (estimated from a sample of 1M edges).

A ``--transfer`` run adds a *transfer check* on the ``default`` preset: do tasks of one planted
group help each other and tasks of different groups not? It measures, with the project's own
tools, (1) trained pairwise affinity ``f_i({i, j}) - f_i({i})`` (negative validation BCE, models
trained from scratch) on a balanced sample of within- and between-group pairs, (2) the Grad-TAG
affinity of a base model (hidden 64, 30 epochs, patience 5; d = 100; 1000 subsets of 5,
standardised), its 5-group SDP clustering and the ARI against the planted groups, (3) test
macro-F1 of one model per planted group vs one model on all tasks, and (4) whole groups: test AP
and ROC-AUC of every task trained alone, in its planted group, in a *transversal* group (one task
of every planted group, so as many partners but none related) and with all tasks, as paired
per-task differences against the task alone.

Usage::

    nice -n 5 .venv/bin/python -m experiments.bench_generator                   # all presets
    .venv/bin/python -m experiments.bench_generator --presets default mid       # skip the big one
    nice -n 5 .venv/bin/python -m experiments.bench_generator --presets default --transfer 15
    # generator variants side by side (results/bench_generator_transfer*), e.g. models trained
    # longer:
    nice -n 5 .venv/bin/python -m experiments.bench_generator --transfer 10 --trial '' \
        --trial 'group_core=0.7,core_size=1.0' --train-epochs 100 --train-patience 20 \
        --out my_trials
    # a recorded variant (see VARIANTS), e.g. the scarce-label annotation preset, where a task's
    # group helps it (3 seeds), and annotated:
    nice -n 5 .venv/bin/python -m experiments.bench_generator \
        --variant bench_generator_transfer_scarce

Writes experiments/results/bench_generator.json and .md; ``--trial`` runs write
``bench_generator_transfer.json`` and ``.md`` unless ``--out`` (or ``--variant``) names them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from experiments.harness import (ROOT, Record, describe_machine, load_average, md_table,
                                 parse_args, run, write_results)

NAME = "bench_generator"
#: Results of ``--trial`` runs when ``--out`` does not name them.
TRANSFER = "bench_generator_transfer"
_CONVERGED = ["--train-epochs", "100", "--train-patience", "20", "--train-batch-size", "256"]
#: The recorded transfer checks of generator variants: result name -> options.
VARIANTS: dict[str, list[str]] = {
    "bench_generator_transfer": [
        "--transfer", "10", "--trial", "", "--trial", "group_core=0.7,core_size=1.0",
        "--trial", "feature_conflict=0.8,feature_sharing=0.9"],
    "bench_generator_transfer_converged": [
        "--transfer", "10", "--trial", "", "--trial", "group_core=0.7,core_size=1.0",
        "--trial", "feature_conflict=0.8,feature_sharing=0.9", *_CONVERGED],
    "bench_generator_transfer_annotated": [
        "--transfer", "15", "--trial", "preset=annotated",
        "--trial", "preset=annotated,member_drop=0.2", *_CONVERGED],
    "bench_generator_transfer_annotated_noisy": [
        "--transfer", "15", "--trial", "preset=annotated,feature_noise=6.0",
        "--trial", "preset=annotated,feature_noise=10.0", *_CONVERGED],
    "bench_generator_transfer_scarce": [
        "--transfer", "15", "--trial", "preset=annotated_scarce",
        "--trial", "preset=annotated_scarce,seed=1", "--trial", "preset=annotated_scarce,seed=2",
        "--trial", "preset=annotated", *_CONVERGED],
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hill(values: np.ndarray, frac: float = 0.01) -> float:
    """Hill estimate of gamma in P(v) ~ v^-gamma from the top ``frac`` of the values."""
    v = np.sort(values[values > 0].astype(float))[::-1]
    k = max(int(frac * len(v)), 10)
    if len(v) <= k:
        return float("nan")
    return float(1.0 + 1.0 / np.mean(np.log(v[:k] / v[k])))


def _summary(v: np.ndarray) -> dict:
    v = np.asarray(v)
    return {"min": int(v.min()), "p50": float(np.median(v)), "mean": round(float(v.mean()), 3),
            "p90": float(np.percentile(v, 90)), "p99": float(np.percentile(v, 99)),
            "max": int(v.max())}


def measure(preset: str, sample_edges: int = 1_000_000) -> dict:
    """Build one preset in this process and measure it (run in a fresh subprocess)."""
    import scipy.sparse as sp

    from graphmtl.data.synthetic import SyntheticConfig, make_planted_graph, planted_groups

    cfg = SyntheticConfig.preset(preset)
    rss_before = _rss_bytes()
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    graph = make_planted_graph(cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    N, n, E = graph.num_nodes, graph.num_tasks, graph.num_edges
    ei = graph.edge_index.numpy()
    deg = np.bincount(ei[0], minlength=N)
    y = graph.y.numpy()
    rows, cols = np.nonzero(y)
    Y = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(N, n))
    sizes = np.asarray(Y.sum(0)).ravel()
    memberships = np.asarray(Y.sum(1)).ravel()

    # within- vs between-group label correlation, from the n x n co-membership counts
    co = (Y.T @ Y).toarray().astype(np.float64)
    p = sizes / N
    cov = co / N - np.outer(p, p)
    corr = cov / np.sqrt(np.outer(p * (1 - p), p * (1 - p)))
    groups = planted_groups(graph)
    same = groups[:, None] == groups[None, :]
    off = ~np.eye(n, dtype=bool)

    # edge density inside communities vs background, from a sample of undirected edges
    rng = np.random.default_rng(0)
    upper = np.flatnonzero(ei[0] < ei[1])
    pick = upper if len(upper) <= sample_edges else rng.choice(upper, sample_edges, replace=False)
    scale = len(upper) / len(pick)
    u, v = ei[0, pick], ei[1, pick]
    inside = Y[u].multiply(Y[v])
    per_comm = np.asarray(inside.sum(0)).ravel() * scale       # edges inside each community
    shares = np.asarray(inside.sum(1)).ravel() > 0
    pairs = sizes * (sizes - 1) / 2
    inside_density = per_comm / pairs
    background_edges = (~shares).sum() * scale
    # pairs sharing no community >= all pairs - sum of community pairs
    background_pairs = N * (N - 1) / 2 - pairs.sum()
    background_density = background_edges / background_pairs

    return {
        "preset": preset, "config": cfg.to_dict(),
        "nodes": N, "edges": E, "tasks": n, "groups": int(groups.max()) + 1,
        "features": graph.num_features,
        "time_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "peak_rss_gb": round(maxrss / 2**30, 3),
        "rss_increase_gb": round((maxrss - rss_before) / 2**30, 3),
        "tracemalloc_peak_gb": round(traced_peak / 2**30, 3),
        "degree": {**_summary(deg), "hill_gamma_top1pct": round(_hill(deg), 2)},
        "community_size": {**_summary(sizes), "max_over_median": round(
            float(sizes.max() / np.median(sizes)), 2)},
        "memberships_per_node": {**_summary(memberships),
                                 "hill_gamma_top1pct": round(_hill(memberships), 2),
                                 "share_1_2_3_4plus": [round(float(np.mean(memberships == k)), 4)
                                                       for k in (1, 2, 3)] + [round(float(np.mean(
                                                           memberships >= 4)), 4)]},
        "label_corr_within_group": round(float(corr[same & off].mean()), 4),
        "label_corr_between_groups": round(float(corr[~same].mean()), 4),
        "inside_density_median": float(f"{np.median(inside_density):.4g}"),
        "background_density": float(f"{background_density:.4g}"),
        "inside_over_background": round(float(np.median(inside_density) / background_density), 1),
        "share_edges_inside_communities": round(float(shares.mean()), 4),
    }


def transfer_check(preset: str = "default", pairs_per_kind: int = 15, workers: int = 2,
                   overrides: dict | None = None, train: dict | None = None) -> dict:
    """Within- vs between-group transfer on one preset (see the module docstring).

    ``overrides``: generator parameters on top of the preset; ``train``: TrainConfig fields on
    top of the check's 30 epochs / patience 5 (e.g. to train every model to convergence).
    """
    import tempfile

    from sklearn.metrics import adjusted_rand_score

    from graphmtl.affinity import GradTAGEstimator, pairwise_affinity
    from graphmtl.affinity.baselines import TrainedSubsetScores
    from graphmtl.clustering import TaskClustering
    from graphmtl.data.synthetic import SyntheticConfig, make_planted_graph, planted_groups
    from graphmtl.models import ModelConfig
    from graphmtl.pipeline import train_group_models
    from graphmtl.projection import GradientProjector, ProjectionConfig
    from graphmtl.training import Trainer, TrainConfig, evaluate

    graph = make_planted_graph(SyntheticConfig.preset(preset, **(overrides or {})))
    groups = planted_groups(graph)
    n = graph.num_tasks
    k = int(groups.max()) + 1
    mc = ModelConfig(hidden=64)
    tc = TrainConfig(**{"epochs": 30, "patience": 5, "num_threads": 1, **(train or {})})
    same = groups[:, None] == groups[None, :]
    off = ~np.eye(n, dtype=bool)
    out: dict = {"preset": preset, "overrides": overrides or {}, "model": mc.to_dict(),
                 "train": tc.to_dict()}

    # (1) trained pairwise affinity on a balanced sample of within / between pairs
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    iu, ju = np.triu_indices(n, 1)
    within = np.flatnonzero(groups[iu] == groups[ju])
    between = np.flatnonzero(groups[iu] != groups[ju])
    pick = np.concatenate([rng.choice(within, min(pairs_per_kind, len(within)), replace=False),
                           rng.choice(between, min(pairs_per_kind, len(between)), replace=False)])
    P = np.zeros((len(pick), n), dtype=bool)
    P[np.arange(len(pick)), iu[pick]] = True
    P[np.arange(len(pick)), ju[pick]] = True
    M = np.concatenate([np.eye(n, dtype=bool), P])
    scores = TrainedSubsetScores(mc, tc, mode="scratch", workers=workers, progress=False
                                 ).fit(graph, M).result_.scores
    T = pairwise_affinity(M, scores, relative=True)

    def stats(mask_pairs: np.ndarray) -> dict:
        a, b = iu[mask_pairs], ju[mask_pairs]
        v = np.concatenate([T[a, b], T[b, a]])
        v = v[~np.isnan(v)]
        return {"mean": round(float(v.mean()), 5),
                "sem": round(float(v.std(ddof=1) / np.sqrt(len(v))), 5), "count": int(len(v))}

    is_within = groups[iu[pick]] == groups[ju[pick]]
    out["pairwise"] = {"within": stats(pick[is_within]), "between": stats(pick[~is_within]),
                       "seconds": round(time.perf_counter() - t0, 1)}

    # (2) Grad-TAG affinity of a base model on all tasks, clustered into the planted k
    t0 = time.perf_counter()
    base = Trainer(mc, tc).fit(graph, progress=False)
    all_metrics = evaluate(base.model, graph, split="test")
    with tempfile.TemporaryDirectory() as tmp:
        store = GradientProjector(ProjectionConfig(dim=100, train_budget=600, val_budget=300)
                                  ).project(base.model, graph, tmp, progress=False)
        A = GradTAGEstimator(num_subsets=1000, subset_size=5, standardize=True).fit(store
                                                                                  ).affinity_
    labels = TaskClustering(k).fit(A).labels_
    out["gradtag"] = {"affinity_within": round(float(A[same & off].mean()), 5),
                      "affinity_between": round(float(A[~same].mean()), 5),
                      "ari": round(float(adjusted_rand_score(groups, labels)), 4),
                      "seconds": round(time.perf_counter() - t0, 1)}

    # (3) one model per planted group vs one model on all tasks (test macro-F1)
    t0 = time.perf_counter()
    grouped = train_group_models(graph, groups, mc, tc, progress=False).metrics
    out["grouped_vs_all"] = {
        "grouped_f1": round(float(np.nanmean(grouped.f1)), 4),
        "all_task_f1": round(float(np.nanmean(all_metrics.f1)), 4),
        "grouped_auc": round(float(np.nanmean(grouped.roc_auc)), 4),
        "all_task_auc": round(float(np.nanmean(all_metrics.roc_auc)), 4),
        "seconds": round(time.perf_counter() - t0, 1)}

    # (4) whole groups: each task alone, in its planted group, in a "transversal" group (one
    # task of every planted group: as many partners, none related) and with all tasks; per-task
    # test AP and ROC-AUC, paired differences against the task alone.
    t0 = time.perf_counter()
    alone = train_group_models(graph, np.arange(n), mc, tc, progress=False).metrics
    transversal = train_group_models(graph, _transversal(groups), mc, tc, progress=False).metrics
    out["partitions"] = {
        name: {metric: _paired(getattr(m, metric), getattr(alone, metric))
               for metric in ("ap", "roc_auc")}
        for name, m in (("alone", alone), ("planted", grouped), ("transversal", transversal),
                        ("all", all_metrics))}
    out["partitions"]["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _transversal(groups: np.ndarray) -> np.ndarray:
    """Partition ``[n]`` putting the r-th task of every planted group together: each part holds
    at most one task per planted group."""
    rank = np.empty(len(groups), dtype=np.int64)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        rank[members] = np.arange(len(members))
    return rank


def _paired(values: np.ndarray, reference: np.ndarray) -> dict:
    """Mean of ``values`` over tasks and its paired difference to ``reference`` (± s.e.)."""
    ok = ~(np.isnan(values) | np.isnan(reference))
    d = values[ok] - reference[ok]
    return {"mean": round(float(values[ok].mean()), 4), "diff": round(float(d.mean()), 4),
            "sem": round(float(d.std(ddof=1) / np.sqrt(len(d))), 4) if len(d) > 1 else 0.0,
            "better": round(float((d > 0).mean()), 3)}


def _transfer_markdown(t: dict) -> list[str]:
    p, g, f = t["pairwise"], t["gradtag"], t["grouped_vs_all"]
    return [
        "",
        f"## Transfer check ({t['preset']} preset; SAGE hidden 64, 30 epochs, patience 5, "
        "1 thread)",
        "",
        md_table(["measure", "within planted group", "between groups"], [
            ["trained pairwise affinity f_i({i,j}) − f_i({i}) (neg. val BCE), mean ± s.e. (n)",
             f"{p['within']['mean']:+.4f} ± {p['within']['sem']:.4f} ({p['within']['count']})",
             f"{p['between']['mean']:+.4f} ± {p['between']['sem']:.4f} "
             f"({p['between']['count']})"],
            ["Grad-TAG affinity (d=100, 1000 subsets of 5, standardised), mean",
             f"{g['affinity_within']:+.4f}", f"{g['affinity_between']:+.4f}"]], align="lrr"),
        "",
        f"Grad-TAG + SDP into the planted number of groups: ARI vs planted groups = {g['ari']}.  ",
        f"Test macro-F1: one model per planted group {f['grouped_f1']} vs one model on all tasks "
        f"{f['all_task_f1']} (ROC-AUC {f['grouped_auc']} vs {f['all_task_auc']}).",
    ] + _partitions_line(t.get("partitions"))


def _partitions_line(part: dict | None) -> list[str]:
    """The whole-group result (test AP, paired difference to the task alone) as one line."""
    if part is None:
        return []
    cells = [f"{label} {part[name]['ap']['mean']} ({part[name]['ap']['diff']:+.3f} ± "
             f"{part[name]['ap']['sem']:.3f})"
             for name, label in (("planted", "planted group"),
                                 ("transversal", "one task of every group"), ("all", "all tasks"))]
    return ["", "Whole groups, test AP per task and its paired difference to the task trained "
            f"alone ({part['alone']['ap']['mean']}): " + "; ".join(cells) + "."]


def _parse_trial(text: str) -> tuple[str, dict]:
    """``"preset=NAME,a=1,labels=annotation"`` -> ``("NAME", {"a": 1, "labels": "annotation"})``:
    the optional preset (default ``default``) and the generator overrides, typed and validated by
    :meth:`SyntheticConfig.from_strings` (one-line GraphMTLError naming a bad key or value)."""
    from graphmtl.data.synthetic import SyntheticConfig

    raw = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: expected key=value")
        raw[key.strip()] = value.strip()
    cfg = SyntheticConfig.from_strings(raw)
    preset = raw.pop("preset", "default")
    return preset, {k: getattr(cfg, k) for k in raw}


def _trial_label(t: dict) -> str:
    parts = ([] if t["preset"] == "default" else [f"preset={t['preset']}"]) + [
        f"{k}={v}" for k, v in t["overrides"].items()]
    return ", ".join(parts) or "(default preset)"


def transfer_trials(args, train: dict) -> int:
    """Run the transfer check once per generator variant (``args.trial``) and write one
    comparison table."""
    record = Record(args)
    rows = []
    for trial in args.trial:
        before = load_average()
        preset, overrides = _parse_trial(trial)
        t = transfer_check(preset, args.transfer, overrides=overrides, train=train)
        t["loadavg"] = before
        rows.append(t)
        print(json.dumps(t), flush=True)
    tc = rows[0]["train"]
    lines = ["# Planted-group transfer check: generator variants", "", record.markdown(), "",
             "Each row: a generator preset (default unless named) plus overrides; SAGE hidden "
             f"64, {tc['epochs']} epochs, patience {tc['patience']}, batch {tc['batch_size']}, "
             "1 thread; load average at the start of each row in the JSON.", "",
             md_table(["overrides", "trained pairwise affinity within / between (± s.e.)",
                       "Grad-TAG within / between", "ARI", "test F1 per group / all tasks"],
                      [[_trial_label(t),
                        f"{t['pairwise']['within']['mean']:+.4f} ± "
                        f"{t['pairwise']['within']['sem']:.4f} / "
                        f"{t['pairwise']['between']['mean']:+.4f} ± "
                        f"{t['pairwise']['between']['sem']:.4f}",
                        f"{t['gradtag']['affinity_within']:+.4f} / "
                        f"{t['gradtag']['affinity_between']:+.4f}", t["gradtag"]["ari"],
                        f"{t['grouped_vs_all']['grouped_f1']} / "
                        f"{t['grouped_vs_all']['all_task_f1']}"] for t in rows],
                      align="lllrl")]
    if any("partitions" in t for t in rows):

        def cell(part: dict, name: str) -> str:
            ap, auc = part[name]["ap"], part[name]["roc_auc"]
            text = f"{ap['mean']:.3f} ({auc['mean']:.3f})"
            if name != "alone":
                text += f": {ap['diff']:+.3f} ± {ap['sem']:.3f} [{ap['better']:.0%}]"
            return text

        lines += ["", "Whole groups: mean test AP (ROC-AUC) per task, and the mean paired "
                  "difference to the task trained alone ± s.e. [share of tasks better]. "
                  "*Transversal*: one task of every planted group per model.", "",
                  md_table(["overrides", "alone", "planted group", "transversal", "all tasks"],
                           [[_trial_label(t)] + [cell(t["partitions"], name) for name in
                                                 ("alone", "planted", "transversal", "all")]
                            for t in rows if "partitions" in t])]
    write_results(args.out, {**record.to_dict(), "trials": rows}, "\n".join(lines),
                  args.results_dir)
    print("\n".join(lines))
    return 0


def _markdown(payload: dict) -> str:
    def shape(r: dict) -> list:
        d, c, m = r["degree"], r["community_size"], r["memberships_per_node"]
        return [r["preset"],
                f"{d['p50']:g} / {d['mean']:g} / {d['p99']:g} / {d['max']} "
                f"({d['hill_gamma_top1pct']})",
                f"{c['min']} / {c['p50']:g} / {c['max']} ({c['max_over_median']})",
                f"{m['mean']:g} / {m['max']}, "
                f"{' / '.join(f'{s:.3f}' for s in m['share_1_2_3_4plus'])} "
                f"({m['hill_gamma_top1pct']})",
                f"{r['label_corr_within_group']} / {r['label_corr_between_groups']}",
                f"{r['inside_density_median']:.3g} / {r['background_density']:.3g} "
                f"(×{r['inside_over_background']:,.0f})"]

    lines = [
        "# Planted-group graph generator: build time, peak memory, measured shape",
        "",
        f"Command: `{payload['command']}`  ",
        f"Machine: {describe_machine(payload['machine'])}; load average before / after: "
        + ", ".join(f"{r['preset']} {r['loadavg_before'][0]:.1f} / {r['loadavg_after'][0]:.1f}"
                    for r in payload["runs"]),
        "",
        "Each preset builds in a fresh process; time includes planted features and per-task "
        "20/20/60 splits. Peak RSS is `ru_maxrss` of that process (interpreter and imports "
        "included); tracemalloc counts numpy/Python allocations only.",
        "",
        md_table(["preset", "nodes", "edges", "tasks", "groups", "time (s)", "CPU (s)",
                  "peak RSS (GB)", "tracemalloc peak (GB)"],
                 [[r["preset"], f"{r['nodes']:,}", f"{r['edges']:,}", r["tasks"], r["groups"],
                   r["time_s"], r["cpu_s"], r["peak_rss_gb"], r["tracemalloc_peak_gb"]]
                  for r in payload["runs"]], align="lrrrrrrrr"),
        "",
        md_table(["preset", "degree p50 / mean / p99 / max (Hill γ)",
                  "community size min / p50 / max (max/median)",
                  "memberships mean / max, share 1/2/3/4+ (Hill γ)",
                  "label corr within / between groups", "inside / background density"],
                 [shape(r) for r in payload["runs"]]),
    ]
    if payload.get("transfer"):
        lines += _transfer_markdown(payload["transfer"])
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    """Its own options (:func:`experiments.harness.parse_args` adds the shared ones)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=["default", "mid", "orkut500"])
    p.add_argument("--transfer", type=int, default=0, metavar="PAIRS",
                        help="also run the transfer check on the default preset with PAIRS "
                             "within- and PAIRS between-group pairs (0: skip)")
    p.add_argument("--trial", action="append", metavar="K=V,...",
                        help="with --transfer: run the check on the default preset with these "
                             "generator overrides (repeatable, '' = the preset itself) and "
                             f"write {TRANSFER}.{{json,md}} (or --out) instead")
    p.add_argument("--train-epochs", type=int, help="transfer trainings: epochs")
    p.add_argument("--train-patience", type=int, help="transfer trainings: patience")
    p.add_argument("--train-batch-size", type=int, help="transfer trainings: batch size")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one preset
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = parse_args(p, argv, NAME, VARIANTS)
    train = {k: v for k, v in (("epochs", args.train_epochs), ("patience", args.train_patience),
                               ("batch_size", args.train_batch_size)) if v is not None}
    if args.trial is not None:
        if not args.transfer:
            p.error("--trial needs --transfer PAIRS")
        from graphmtl.errors import GraphMTLError

        for trial in args.trial:  # every trial checked before the first (minutes-long) check
            try:
                _parse_trial(trial)
            except (ValueError, GraphMTLError) as e:
                p.error(f"--trial {trial!r}: {e}")
        if args.out == NAME:
            args.out = TRANSFER
        return transfer_trials(args, train)
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    record = Record(args)
    runs = []
    for preset in args.presets:
        before = load_average()
        proc = subprocess.run([sys.executable, "-m", f"experiments.{NAME}", "--one", preset],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            return proc.returncode
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["loadavg_before"] = before
        result["loadavg_after"] = load_average()
        runs.append(result)
        print(f"{preset}: {result['nodes']:,} nodes, {result['edges']:,} edges, "
              f"{result['time_s']} s, peak RSS {result['peak_rss_gb']} GB", flush=True)
    transfer = None
    if args.transfer:
        before = load_average()
        transfer = transfer_check("default", args.transfer, train=train)
        transfer["loadavg_before"] = before
        transfer["loadavg_after"] = load_average()
        print(json.dumps(transfer), flush=True)
    payload = {**record.to_dict(), "runs": runs, "transfer": transfer}
    write_results(args.out, payload, _markdown(payload), args.results_dir)
    print(_markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
