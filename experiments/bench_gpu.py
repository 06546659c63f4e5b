"""GPU check of the default grouping: every stage on CUDA agrees with the CPU, and the 500-task,
21M-edge grouping timed on one GPU.

One command, about 6-8 minutes on one H200 (it also runs without CUDA, on a small graph, for
the test suite)::

    PYTHONUNBUFFERED=1 python -m experiments.bench_gpu --out bench_gpu

(a) Agreement on a small planted graph (``--small``): message-passing inference of SAGE, GCN,
    GAT and GIN (one full-graph pass and layer-wise), SIGN training (dropout 0), the batched
    surrogate estimate, the projection and the Grad-TAG subset solver, and the low-rank SDP,
    each on the GPU against the CPU, with its largest difference and the tolerance it must meet.
(b) The grouping of ``--large`` (default ``synthetic:preset=orkut500``: 400k nodes, 21.2M edges,
    500 tasks) on the GPU with the pipeline's defaults: the propagated features, the surrogate
    estimate (1000 subsets of 5), the clustering into ``--k`` groups; then the gradient path
    (a SIGN base model for ``--epochs`` epochs, the projection at d = 100 with budgets
    2000 / 1000, the offset-form subset solve of 1000 subsets of 5, the clustering) and one
    group model of the found groups, to extrapolate the comparison stage.
(c) The two-process speed-up on the machine's CPU cores (gloo): ``graphmtl train`` of a SIGN
    model on ``--speedup-data`` with 1 and with 2 ranks (``torchrun``).

Writes ``results/<out>.{json,md}`` (``--results-dir``: elsewhere). Needs no torch-sparse /
pyg-lib (SIGN samples no neighbourhoods), cvxpy or ogb.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from experiments.harness import ROOT, command, machine, md_table, run, write_results

NAME = "bench_gpu"
#: The results this module records: the whole check and a rerun of its speed-up section.
RESULT_NAMES = (NAME, "bench_gpu_speedup")


def _timed(rec: dict, name: str, fn: Callable[[], Any], cuda: bool) -> Any:
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    rec[name] = {"seconds": round(time.perf_counter() - t0, 2)}
    if cuda:
        rec[name]["cuda_peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(f"  {name}: {rec[name]}", flush=True)
    return out


#: Largest difference each agreement check allows (float32 on two devices; the surrogate's AP
#: moves by one rank swap near ties).
TOLERANCE = {"inference": 1e-3, "training": 1e-3, "surrogate": 1e-2, "projection": 1e-4,
             "solver": 1e-6, "sdp": 1e-6}


def agreement(spec: str, device: str) -> list[dict[str, Any]]:
    """Each stage on ``device`` against the CPU on the small graph ``spec``: one row per check,
    with its largest difference, its tolerance and whether it is met."""
    from graphmtl.affinity import GradTAGEstimator, SurrogateAffinityEstimator
    from graphmtl.clustering import TaskClustering
    from graphmtl.testing import planted_affinity
    from graphmtl.data import load_dataset
    from graphmtl.models import ModelConfig, MultiTaskGNN
    from graphmtl.projection import GradientProjector, ProjectionConfig
    from graphmtl.training import Trainer, TrainConfig, predict_logits

    graph = load_dataset(spec)
    rows: list[dict[str, Any]] = []

    def row(stage: str, kind: str, diff: float, **extra: Any) -> None:
        tol = TOLERANCE[kind]
        rows.append({"stage": stage, "max_abs_diff": float(diff), "tolerance": tol,
                     "ok": bool(diff <= tol), **extra})
        print(f"  {rows[-1]}", flush=True)

    # Message-passing inference, one pass and layer by layer, against the CPU's one pass.
    for enc in ("sage", "gcn", "gat", "gin"):
        torch.manual_seed(0)
        m = MultiTaskGNN(graph.num_features, graph.num_tasks,
                         ModelConfig(encoder=enc, hidden=64)).eval()
        ref = predict_logits(m, graph, method="full_graph")
        for method in ("full_graph", "layerwise"):
            got = predict_logits(m, graph, method=method, device=device)
            row(f"inference {enc} {method} (logits)", "inference", (got - ref).abs().max())
    mc = ModelConfig(dropout=0.0)
    tc = TrainConfig(epochs=3, patience=0)
    a = Trainer(mc, tc).fit(graph, progress=False).model
    b = Trainer(mc, tc.replace(device=device)).fit(graph, progress=False).model
    row("SIGN training, 3 epochs (logits)", "training",
        (predict_logits(a, graph) - predict_logits(b, graph)).abs().max())
    sa = SurrogateAffinityEstimator(60, 5, seed=0).fit(graph)
    sb = SurrogateAffinityEstimator(60, 5, seed=0, device=device).fit(graph)
    ok = np.isfinite(sa.scores_)
    row("surrogate scores (60 subsets)", "surrogate", np.abs(sa.scores_[ok] - sb.scores_[ok]).max(),
        affinity_corr=float(np.corrcoef(sa.affinity_.ravel(), sb.affinity_.ravel())[0, 1]))
    with tempfile.TemporaryDirectory() as tmp:
        pc = ProjectionConfig(dim=32, train_budget=500, val_budget=300)
        st_a = GradientProjector(pc).project(a, graph, f"{tmp}/a", progress=False)
        st_b = GradientProjector(replace(pc, device=device)).project(a, graph, f"{tmp}/b",
                                                                      progress=False)
        row("projection z (d = 32)", "projection", np.abs(
            np.asarray(st_a.array("train", "z")) - np.asarray(st_b.array("train", "z"))).max())
        ga = GradTAGEstimator(200, 5, seed=0).fit(st_a)
        gb = GradTAGEstimator(200, 5, seed=0, device=device).fit(st_a)
        row("subset solver (200 subsets)", "solver", np.abs(ga.weights_ - gb.weights_).max())
    A, labels = planted_affinity(300, 6, noise=0.8, seed=0)
    la = TaskClustering(k=6, solver="lowrank").fit(A)
    lb = TaskClustering(k=6, solver="lowrank", device=device).fit(A)
    row("low-rank SDP (n = 300, objective)", "sdp", abs(la.sdp_objective_ - lb.sdp_objective_),
        same_partition=bool(np.array_equal(la.labels_, lb.labels_)))
    return rows


def grouping(spec: str, device: str, k: int, epochs: int) -> dict[str, Any]:
    from graphmtl.affinity import GradTAGEstimator, SurrogateAffinityEstimator
    from graphmtl.affinity.surrogate import surrogate_inputs
    from graphmtl.clustering import TaskClustering
    from graphmtl.data import load_dataset
    from graphmtl.models import ModelConfig
    from graphmtl.projection import GradientProjector, ProjectionConfig
    from graphmtl.training import Trainer, TrainConfig

    cuda = torch.device(device).type == "cuda"
    rec: dict[str, Any] = {}
    graph = _timed(rec, "generate graph (CPU)", lambda: load_dataset(spec), False)
    rec["graph"] = {"nodes": graph.num_nodes, "edges": graph.num_edges, "tasks": graph.num_tasks}
    _timed(rec, "propagated features", lambda: surrogate_inputs(graph, 2, 64), False)
    est = _timed(rec, "surrogate affinity (1000 x 5)",
                 lambda: SurrogateAffinityEstimator(1000, 5, device=device).fit(graph), cuda)
    labels = _timed(rec, f"clustering (k = {k})",
                    lambda: TaskClustering(k=k, device=device).fit(est.affinity_).labels_, cuda)
    rec["sizes"] = sorted(np.bincount(labels).tolist(), reverse=True)
    planted = graph.provenance.get("planted_groups")
    if planted is not None:
        from sklearn.metrics import adjusted_rand_score

        rec["ari_vs_planted"] = round(float(adjusted_rand_score(planted, labels)), 3)
    grouping_s = sum(rec[key]["seconds"] for key in ("propagated features",
                                                      "surrogate affinity (1000 x 5)",
                                                      f"clustering (k = {k})"))
    rec["surrogate grouping seconds"] = round(grouping_s, 1)
    # The gradient path.
    tc = TrainConfig(epochs=epochs, patience=0, device=device, batch_size=4096)
    base = _timed(rec, f"SIGN base model, {epochs} epochs",
                  lambda: Trainer(ModelConfig(), tc).fit(graph, progress=False).model, cuda)
    with tempfile.TemporaryDirectory() as tmp:
        pc = ProjectionConfig(dim=100, train_budget=2000, val_budget=1000, device=device,
                              batch_size=4096)
        store = _timed(rec, "projection (d = 100)",
                       lambda: GradientProjector(pc).project(base, graph, tmp, progress=False),
                       cuda)
        g = _timed(rec, "Grad-TAG offset solve (1000 x 5)",
                   lambda: GradTAGEstimator(1000, 5, standardize=True,
                                            device=device).fit(store), cuda)
        _timed(rec, f"clustering of the gradient affinity (k = {k})",
               lambda: TaskClustering(k=k, device=device).fit(g.affinity_), cuda)
    # One group model of the found groups: the comparison stage trains
    # seeds x (1 + draws) x k of them (plus the all-task one).
    tasks = [graph.task_names[i] for i in np.flatnonzero(labels == np.bincount(labels).argmax())]
    _timed(rec, f"one group model ({len(tasks)} tasks, {epochs} epochs)",
           lambda: Trainer(ModelConfig(), tc).fit(graph, tasks, progress=False), cuda)
    return rec


def speedup(spec: str, epochs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for ranks in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ([sys.executable, "-m", "graphmtl.cli"] if ranks == 1 else
                   [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={ranks}", "-m", "graphmtl.cli"])
            cmd += ["train", "--data", spec, "--epochs", str(epochs), "--patience", "0",
                    "--threads", "1", "--no-progress", "--out", tmp]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
            out[f"{ranks} rank(s) seconds"] = round(time.perf_counter() - t0, 1)
            if proc.returncode != 0:
                out[f"{ranks} rank(s) error"] = proc.stderr.strip().splitlines()[-1:]
    if all(f"{r} rank(s) error" not in out for r in (1, 2)):
        out["speedup"] = round(out["1 rank(s) seconds"] / out["2 rank(s) seconds"], 2)
    print(f"  {out}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", default="synthetic:preset=annotated_scarce")
    p.add_argument("--large", default="synthetic:preset=orkut500")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--speedup-data", default="synthetic:preset=mid")
    p.add_argument("--speedup-epochs", type=int, default=3)
    p.add_argument("--skip", nargs="*", default=[], choices=["agreement", "grouping",
                                                              "speedup"])
    p.add_argument("--out", default=NAME)
    p.add_argument("--results-dir", default=None, help="default experiments/results")
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    res: dict[str, Any] = {"command": command(NAME, argv), "machine": machine(),
                           "device": device}
    if not cuda:
        print("no CUDA device: the GPU parts run on the CPU (agreement is CPU against CPU)")
    sections = {"agreement": lambda: agreement(args.small, device),
                "grouping": lambda: grouping(args.large, device, args.k, args.epochs),
                "speedup": lambda: speedup(args.speedup_data, args.speedup_epochs)}
    for name, run in sections.items():
        if name in args.skip:
            continue
        print(f"({name})", flush=True)
        res[name] = run()
        _write(res, args)          # after every section: a later failure keeps the earlier ones
    return 0


def _write(res: dict[str, Any], args) -> None:
    device = res["device"]
    lines = [f"# GPU check: {res['machine'].get('cuda', 'no GPU')}", "",
             f"Command: `{res['command']}`  ", f"Device: {device}; CPUs: "
             f"{res['machine']['cpus']}; load {res['machine']['loadavg']}.", ""]
    if "agreement" in res:
        lines += ["## (a) GPU against CPU", "", md_table(
            ["stage", "largest difference", "tolerance", "ok", "other"],
            [[r["stage"], f"{r['max_abs_diff']:.2e}", r.get("tolerance", "-"),
              {True: "yes", False: "**no**"}.get(r.get("ok"), "-"),
              ", ".join(f"{k_}: {v}" for k_, v in r.items()
                        if k_ not in ("stage", "max_abs_diff", "tolerance", "ok"))]
             for r in res["agreement"]]), ""]
    if "grouping" in res:
        g = res["grouping"]
        lines += [f"## (b) {args.large}: {g['graph']}", "", md_table(
            ["step", "seconds", "GPU peak GB"],
            [[key, v["seconds"], v.get("cuda_peak_gb", "")] for key, v in g.items()
             if isinstance(v, dict) and "seconds" in v]), "",
            f"Default grouping (features + surrogate + clustering): "
            f"{g['surrogate grouping seconds']} s; group sizes {g['sizes']}"
            + (f"; ARI vs planted {g['ari_vs_planted']}" if "ari_vs_planted" in g else "")
            + ".", ""]
    if "speedup" in res:
        lines += ["## (c) two ranks against one (CPU, gloo)", "",
                  ", ".join(f"{k_}: {v}" for k_, v in res["speedup"].items()), ""]
    write_results(args.out, res, "\n".join(lines), args.results_dir)
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
