"""GPU check: every stage on CUDA agrees with the CPU, and the Grad-TAG grouping's stages timed.

One command, about 6-8 minutes on one H200 with 16 cores::

    python -m experiments.gpu_check

(a) Agreement on a small graph (``--small``, default ``synthetic``: 3000 nodes, 20 tasks),
    every stage on ``cuda`` against the CPU: full-graph and layer-wise inference, two epochs of
    training (dropout 0 and full neighbourhoods, so both devices see the same batches), the
    projection (``project_nodes``), the batched subset solver and the low-rank SDP; each with
    its largest difference and the tolerance it must meet.
(b) Stage timings of the Grad-TAG grouping on ``--large`` (default
    ``synthetic:preset=orkut500``: 400k nodes, 21.2M edges, 500 tasks) with settings that fit
    the time: one base epoch over every training seed (batch 1024, fanouts 10,5) with its
    layer-wise validation; the projection (d = 100, budgets 2000 / 1000, fanouts 10,5) timed on
    ``--proj-batches`` node batches and extrapolated to the whole store; the affinity
    (``GradTAGEstimator(num_subsets=1000, subset_size=5, standardize=True)``) on rows of the
    store's exact shape (real row selection, random ``z``) with the subset solver on the GPU;
    the clustering of the 500 tasks (low-rank SDP on the GPU). The whole grouping is then
    extrapolated for ``--epochs-goal`` base epochs.

Without CUDA the GPU parts are skipped with a message and (b) runs on the CPU (use a small
``--large`` there). Writes ``experiments/results/gpu_check.json`` and ``.md`` (``--out DIR``: in
``DIR`` instead).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from experiments.harness import (RESULTS, Record, command, describe_machine, md_table, run,
                                 write_results)
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.training import TrainConfig, Trainer, evaluate, predict_logits

NAME = "gpu_check"
PROJ = dict(dim=100, train_budget=2000, val_budget=1000)
AFFINITY = dict(num_subsets=1000, subset_size=5, standardize=True)


def _load(spec: str):
    from graphmtl.data.sources import load_dataset

    return load_dataset(spec)


def _timed(record: dict, name: str, fn, sync: bool):
    if sync:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if sync:
        torch.cuda.synchronize()
    entry = {"seconds": round(time.perf_counter() - t0, 2)}
    if sync:
        entry["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    record[name] = entry
    print(f"  {name}: {entry}", flush=True)
    return out


# ---------------------------------------------------------------------- (a) agreement
def agreement(spec: str, device: str) -> list[dict]:
    """Each stage on ``device`` against the CPU on a small graph."""
    from graphmtl.affinity.solver import BatchedSubsetSolver, SolverConfig, SplitRows
    from graphmtl.affinity.subsets import sample_subsets
    from graphmtl.clustering.sdp_lowrank import solve_sdp_lowrank
    from graphmtl.testing import planted_affinity
    from graphmtl.projection import GradientProjector, ProjectionConfig

    graph = _load(spec)
    rows = []

    def row(stage, diff, tol, extra=""):
        rows.append({"stage": stage, "max_abs_diff": float(diff), "tolerance": tol,
                     "ok": bool(diff <= tol), "note": extra})
        print(f"  {stage}: {diff:.2e} (tolerance {tol:g}) {'ok' if diff <= tol else 'FAIL'}",
              flush=True)

    for enc in ("sage", "gcn", "gat", "gin"):
        torch.manual_seed(0)
        m = MultiTaskGNN(graph.num_features, graph.num_tasks,
                         ModelConfig(encoder=enc, hidden=64)).eval()
        ref = predict_logits(m, graph, method="full_graph")
        for method in ("full_graph", "layerwise"):
            got = predict_logits(m.to(device), graph, method=method)
            m.cpu()
            row(f"inference {enc} {method}", (got - ref).abs().max(), 1e-3)
    # One training step's gradient on the same batch, then two epochs (dropout 0 and full
    # neighbourhoods: both devices see the same batches; Adam may amplify rounding in
    # parameters whose gradient is ~0, so the epochs are compared by loss and metric).
    from graphmtl.training import make_loader, masked_bce

    mc = ModelConfig(hidden=64, dropout=0.0)
    torch.manual_seed(0)
    m = MultiTaskGNN(graph.num_features, graph.num_tasks, mc)
    batch = next(iter(make_loader(graph, None, [-1, -1], 512)))
    ids = batch.n_id[:batch.batch_size]
    grads = []
    for dev in ("cpu", device):
        m.to(dev).zero_grad()
        out = m(batch.x.to(dev), batch.edge_index.to(dev))[:batch.batch_size]
        masked_bce(out, graph.y[ids].to(dev), graph.train_mask[ids].to(dev)).backward()
        grads.append(torch.cat([p.grad.flatten().cpu() for p in m.parameters()]))
    row("training step (relative gradient error)",
        float((grads[1] - grads[0]).norm() / grads[0].norm()), 1e-4)
    m.cpu()
    tc = TrainConfig(epochs=2, fanouts=(-1, -1), batch_size=512, patience=0)
    a = Trainer(mc, tc).fit(graph, progress=False)
    b = Trainer(mc, tc.replace(device=device)).fit(graph, progress=False)
    row("training 2 epochs (relative train-loss difference)",
        max(abs(x["train_loss"] - y["train_loss"]) / x["train_loss"]
            for x, y in zip(a.history, b.history)), 1e-3)
    row("training 2 epochs (val macro ROC-AUC difference)",
        abs(a.val_metrics.macro_roc_auc - b.val_metrics.macro_roc_auc), 5e-3)
    nodes = torch.arange(0, graph.num_nodes, max(1, graph.num_nodes // 256))
    for fan in (None, (10, 5)):
        cfg = dict(dim=32, batch_size=128, fanouts=fan)
        f0c, zc = GradientProjector(ProjectionConfig(**cfg)).project_nodes(a.model, graph, nodes)
        f0g, zg = GradientProjector(ProjectionConfig(**cfg, device=device)).project_nodes(
            a.model, graph, nodes)
        rel = float((zg - zc).norm() / zc.norm())
        row(f"projection jvp/vmap, fanouts {fan or 'full'} (rel. error of z)", rel, 1e-4,
            f"f0 max abs diff {float((f0g - f0c).abs().max()):.1e}")
    g = torch.Generator().manual_seed(0)
    n, d, r = 20, 16, 200
    sr = SplitRows(torch.randn(n * r, d, generator=g) * 0.3,
                   torch.randn(n * r, generator=g, dtype=torch.float64),
                   (torch.rand(n * r, generator=g) < 0.3).double(),
                   torch.ones(n * r, dtype=torch.float64), np.arange(0, n * r + 1, r),
                   [f"t{i}" for i in range(n)])
    M = sample_subsets(n, 200, 5, seed=0)
    fc = BatchedSubsetSolver(SolverConfig()).fit(sr, M)
    fg = BatchedSubsetSolver(SolverConfig(device=device)).fit(sr, M)
    row("subset solver (weights)", (fg.weights - fc.weights).abs().max(), 1e-6)
    A, _ = planted_affinity(n=300, k=6, noise=0.5, seed=0)
    sc = solve_sdp_lowrank(A, 6)
    sg = solve_sdp_lowrank(A, 6, device=device)
    row("low-rank SDP (relative objective)", abs(sg.objective - sc.objective) / abs(
        sc.objective), 1e-3)
    return rows


# ---------------------------------------------------------------------- (b) stage timings
def stages(spec: str, device: str, proj_batches: int, epochs_goal: int, dim: int = 100,
           subsets: int = 1000) -> dict:
    from graphmtl.affinity import GradTAGEstimator
    from graphmtl.clustering import TaskClustering
    from graphmtl.projection import GradientProjector, ProjectionConfig
    from graphmtl.utils.io import read_json

    from experiments.bench_scale import simulated_rows

    cuda = device.startswith("cuda")
    st: dict = {}
    graph = _timed(st, "load / generate graph", lambda: _load(spec), False)
    info = {"nodes": graph.num_nodes, "directed_edges": int(graph.edge_index.shape[1]),
            "tasks": graph.num_tasks}
    tc = TrainConfig(epochs=1, num_threads=None, device=device)
    res = _timed(st, "base model: 1 epoch + validation (layer-wise) + final validation",
                 lambda: Trainer(ModelConfig(), tc).fit(graph, progress=False), cuda)
    model = res.model
    _timed(st, "test evaluation (layer-wise, streaming metrics, AP)",
           lambda: evaluate(model, graph, None, "test", device=device), cuda)
    proj = GradientProjector(ProjectionConfig(**{**PROJ, "dim": dim}, device=device))
    with tempfile.TemporaryDirectory() as tmp:
        _timed(st, "projection setup (row selection)",
               lambda: proj.project(model, graph, Path(tmp) / "s", stop_after=0,
                                    progress=False), False)
        total = int(read_json(Path(tmp) / "s" / "progress.json")["num_batches"])
        _timed(st, f"projection, {proj_batches} batches of 512 nodes",
               lambda: proj.project(model, graph, Path(tmp) / "s", stop_after=proj_batches,
                                    progress=False), cuda)
    per_batch = st[f"projection, {proj_batches} batches of 512 nodes"]["seconds"] / proj_batches
    proj_s = st["projection setup (row selection)"]["seconds"] + per_batch * total
    train, val = _timed(st, "store-shaped rows (real selection, random z)",
                        lambda: simulated_rows(graph, dim), False)
    est = GradTAGEstimator(**{**AFFINITY, "num_subsets": subsets})
    # The estimator has no device setting yet: its solver config, with the device.
    config = _with_device(est.solver_config(), device)
    est = _timed(st, "affinity: subsets of 5, subset solver on the device",
                 lambda: est.fit_rows(train, val, _config=config), cuda)
    _timed(st, "clustering: k auto, low-rank SDP on the device",
           lambda: TaskClustering(k="auto", device=device).fit(est.affinity_), cuda)
    epoch_s = res.timings["train_s"] + res.timings["eval_s"] / 2
    whole = (epochs_goal * epoch_s + proj_s
             + st["affinity: subsets of 5, subset solver on the device"]["seconds"]
             + st["clustering: k auto, low-rank SDP on the device"]["seconds"])
    return {"graph": info, "stages": st,
            "training": {"seed_nodes_per_s": round(res.timings["seed_nodes_per_s"]),
                         "train_s": round(res.timings["train_s"], 1),
                         "eval_s": round(res.timings["eval_s"], 1)},
            "projection": {"num_batches": total, "seconds_per_batch": round(per_batch, 3),
                           "extrapolated_s": round(proj_s)},
            "grouping_extrapolated": {"base_epochs": epochs_goal,
                                      "hours": round(whole / 3600, 2)}}


def _with_device(cfg, device):
    from dataclasses import replace

    return replace(cfg, device=device)


def render(res: dict) -> str:
    L = ["# gpu_check — stages on CUDA vs CPU, and Grad-TAG stage timings", "",
         f"`{res['command']}` — {describe_machine(res['machine'])}; {res['seconds']:.0f} s.",
         ""]
    if res.get("skipped"):
        L += [f"**{res['skipped']}**", ""]
    if res.get("agreement"):
        L += ["## (a) Agreement with the CPU (small graph: " + res["small"] + ")", "",
              md_table(["stage", "max diff", "tolerance", "ok", "note"],
                       [[r["stage"], f"{r['max_abs_diff']:.2e}", f"{r['tolerance']:g}",
                         "yes" if r["ok"] else "NO", r["note"]] for r in res["agreement"]]),
              ""]
    if res.get("timings"):
        t = res["timings"]
        g = t["graph"]
        L += [f"## (b) Grad-TAG stages on {res['large']} ({g['nodes']} nodes, "
              f"{g['directed_edges']} directed edges, {g['tasks']} tasks), device "
              f"{res['device']}", "", f"Settings: {t.get('settings')}", "",
              md_table(["stage", "seconds", "CUDA peak (MB)"],
                       [[k, v["seconds"], v.get("cuda_peak_mb", "-")]
                        for k, v in t["stages"].items()])]
        p, gx = t["projection"], t["grouping_extrapolated"]
        L += ["", f"Training {t['training']['seed_nodes_per_s']} seed nodes/s. Projection "
              f"{p['seconds_per_batch']} s per batch x {p['num_batches']} batches ≈ "
              f"{p['extrapolated_s']} s. Whole grouping with {gx['base_epochs']} base epochs ≈ "
              f"**{gx['hours']} h** (goal: <= 2 h on one GPU).", ""]
    return "\n".join(L) + "\n"


def parser() -> argparse.ArgumentParser:
    """The options of the check."""
    ap = argparse.ArgumentParser(prog=f"python -m experiments.{NAME}",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--small", default="synthetic", help="graph of the agreement checks")
    ap.add_argument("--large", default="synthetic:preset=orkut500", help="graph to time")
    ap.add_argument("--device", default="auto", help="cuda, cuda:N, or auto")
    ap.add_argument("--proj-batches", type=int, default=40)
    ap.add_argument("--epochs-goal", type=int, default=10,
                    help="base epochs assumed in the extrapolated grouping")
    ap.add_argument("--dim", type=int, default=PROJ["dim"], help="projection dimension d")
    ap.add_argument("--subsets", type=int, default=AFFINITY["num_subsets"],
                    help="Grad-TAG subsets")
    # One result, always named gpu_check: --out names its folder (unlike the benchmarks' --out).
    ap.add_argument("--out", type=Path, default=RESULTS, metavar="DIR",
                    help="folder of gpu_check.json and .md (default experiments/results)")
    return ap


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    args.arguments = sys.argv[1:] if argv is None else list(argv)
    args.command = command(NAME, args.arguments)
    from graphmtl.utils.device import resolve_device

    warnings.filterwarnings("ignore")
    device = str(resolve_device(args.device))
    record = Record(args)
    res = {"device": device, "small": args.small, "large": args.large}
    if device.startswith("cuda"):
        print("(a) agreement with the CPU", flush=True)
        res["agreement"] = agreement(args.small, device)
    else:
        res["skipped"] = ("CUDA is not available: the GPU agreement checks are skipped and the "
                          "stages are timed on the CPU")
        print(res["skipped"], flush=True)
    print(f"(b) stage timings on {args.large}", flush=True)
    res["timings"] = stages(args.large, device, args.proj_batches, args.epochs_goal, args.dim,
                            args.subsets)
    res["timings"]["settings"] = {"projection": {**PROJ, "dim": args.dim, "fanouts": "auto"},
                                  "affinity": {**AFFINITY, "num_subsets": args.subsets},
                                  "base": "SAGE hidden 128, 2 layers, batch 1024, fanouts 10,5"}
    res = {**record.to_dict(), **res}
    json_path, _ = write_results(NAME, res, render(res), args.out)
    print(f"wrote {json_path} and .md")
    return res


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
