"""Benchmark: the 21M-edge / 500-task graph on one machine — time and peak memory per stage.

Sections (``--sections``, default all):

* ``youtube`` — what sampled instead of full neighbourhoods changes, on YouTube-100 (SAGE base
  model): the test metrics of sampled evaluation (fanouts 10,5, three sampling seeds) against
  exact evaluation, and the projection store (d = 100, budgets 2000 / 1000) with sampled
  neighbourhoods against full ones — per-row gradients, per-task mean gradients, and the
  Grad-TAG affinity of ``GradTAGEstimator(num_subsets=1000, subset_size=5, standardize=True)``
  with the groups clustered from it.
* ``orkut`` — ``synthetic:preset=orkut500`` (400k nodes, 21.2M undirected edges, 500 tasks):
  time and peak RSS of every Grad-TAG stage (base training, its validation, the projection,
  the affinity, the clustering) and the whole grouping extrapolated; then time and memory
  against tasks (100 / 250 / 500 of the same graph) and edges (the preset at 20k / 100k / 400k
  nodes: about 1M / 5M / 21M edges).
* ``speedup`` — two ranks (``torchrun --nproc-per-node 2``, gloo) against one process on the
  projection (a fixed number of node batches) and on a group model's training.
* ``train_cli`` — ``graphmtl train --data synthetic:preset=orkut500 --epochs 1`` under
  ``/usr/bin/time -v``: does it finish, and its peak RSS.
* ``surrogate`` — the default affinity's batched surrogate training on orkut500: one chunk of
  subsets scored on the default validation-row budget and on every validation row (time, peak
  RSS, agreement of the scores), the whole estimate extrapolated.
* ``subspace`` — the default affinity (shared-subspace models, 1,000 subsets of 5) on orkut500:
  time by phase and peak RSS of the whole estimate, and the ARI against the planted groups of
  the groups clustered (k = the planted number) from it and from each of its two parts.
* ``run_cli`` — ``graphmtl run`` on orkut500 end to end with the settings documented for this
  machine (``RUN_ARGS``), under ``/usr/bin/time -v`` in ``--run-dir``: every stage's time and
  peak memory from the run's manifest, the peak RSS of the command, and the run's verdict. The
  run resumes, so a run stopped part-way is finished by calling the section again; the record
  says which stages ran in this call.

``--short`` is the reduced mode for a small shared machine: training throughput from one epoch
over a fraction of the training seeds (the validation is the full one), the projection from a
few batches, each extrapolated linearly (stated in the tables). Stage timings on a GPU need
``--device cuda`` (CUDA peak memory is then recorded too).

Usage::

    nice -n 10 .venv/bin/python -m experiments.bench_scale --short            # all sections
    nice -n 10 .venv/bin/python -m experiments.bench_scale --short --sections orkut

Writes ``experiments/results/bench_scale.json`` (sections merged into the existing file) and
``bench_scale.md`` (rendered from the whole JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from experiments.harness import (ROOT, describe_machine, load_average, machine, md_table,
                                 parse_args, run, write_results)
from graphmtl.data.graph import MultiTaskGraph
from graphmtl.models import ModelConfig
from graphmtl.training import TrainConfig, Trainer, evaluate, layerwise_embeddings

NAME = "bench_scale"
ORKUT = "synthetic:preset=orkut500"
YOUTUBE = "snap:youtube,k=100"
MODEL = ModelConfig(encoder="sage", hidden=128)   # message passing: what the scale stresses
PROJ = dict(dim=100, train_budget=2000, val_budget=1000)   # the pipeline's projection
AFFINITY = dict(num_subsets=1000, subset_size=5, standardize=True)
#: ``graphmtl run`` settings that fit orkut500 on a 2-core, 24 GB machine (docs/scale.md): 10
#: epochs per model instead of 100, one training seed and one random draw of the group models,
#: no pairwise baseline.
RUN_ARGS = ["--k", "20", "--epochs", "10", "--seeds", "1", "--random-draws", "1",
            "--no-pairwise"]


# ---------------------------------------------------------------------- measuring
def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stage:
    """Wall time, peak RSS (Linux ``VmHWM``, reset on entry) and CUDA peak of a block."""

    def __init__(self, record: dict, name: str):
        self.record, self.name = record, name

    def __enter__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self.rss0 = _status_mb("VmRSS")
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            return False
        entry = {"seconds": round(time.perf_counter() - self.t0, 2),
                 "rss_start_mb": round(self.rss0), "peak_rss_mb": round(_status_mb("VmHWM"))}
        if torch.cuda.is_available():
            entry["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        self.record[self.name] = entry
        print(f"  {self.name}: {entry}", flush=True)
        return False


def load(spec: str) -> MultiTaskGraph:
    from graphmtl.data.sources import load_dataset

    return load_dataset(spec)


def seed_fraction(graph: MultiTaskGraph, fraction: float) -> MultiTaskGraph:
    """The graph with training labels kept on the first ``fraction`` of the nodes only (a
    shorter epoch; validation and test unchanged)."""
    if fraction >= 1:
        return graph
    keep = torch.arange(graph.num_nodes) < int(fraction * graph.num_nodes)
    return MultiTaskGraph(x=graph.x, edge_index=graph.edge_index, y=graph.y,
                          train_mask=graph.train_mask & keep[:, None], val_mask=graph.val_mask,
                          test_mask=graph.test_mask, task_names=graph.task_names)


# ---------------------------------------------------------------------- youtube
def section_youtube(args) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from graphmtl.affinity import GradTAGEstimator
    from graphmtl.clustering import TaskClustering
    from graphmtl.projection import GradientProjector, ProjectionConfig

    out: dict = {"data": YOUTUBE, "stages": {}}
    st = out["stages"]
    graph = load(YOUTUBE)
    out["graph"] = {"nodes": graph.num_nodes, "directed_edges": int(graph.edge_index.shape[1]),
                    "tasks": graph.num_tasks}
    epochs = 3 if args.short else 10
    with Stage(st, f"train SAGE {epochs} epochs"):
        res = Trainer(MODEL, TrainConfig(epochs=epochs, num_threads=args.threads,
                                         device=args.device)).fit(graph, progress=False)
    model = res.model
    out["base_model"] = {"epochs": epochs, "val_roc_auc": res.val_metrics.macro_roc_auc}

    # Evaluation: exact (one full-graph pass; layer-wise agrees) vs sampled 10,5.
    with Stage(st, "evaluate test, full graph"):
        exact = evaluate(model, graph, None, "test", method="full_graph")
    with Stage(st, "evaluate test, layer-wise"):
        lw = evaluate(model, graph, None, "test", method="layerwise")
    rows = []
    for seed in range(3):
        with Stage(st, f"evaluate test, sampled 10,5 (seed {seed})"):
            s = evaluate(model, graph, None, "test", fanouts=[10, 5], seed=seed)
        rows.append({m: s.macro(m) - exact.macro(m) for m in ("roc_auc", "ap", "f1", "loss")}
                    | {"mean_abs_task_roc_auc": float(np.nanmean(np.abs(s.roc_auc
                                                                         - exact.roc_auc)))})
    out["evaluation"] = {
        "exact": {m: exact.macro(m) for m in ("roc_auc", "ap", "f1", "loss")},
        "layerwise_minus_full_graph_max_abs_roc_auc": float(np.nanmax(np.abs(
            lw.roc_auc - exact.roc_auc))),
        "sampled_minus_exact": rows}

    # Projection: full neighbourhoods vs sampled 10,5.
    stores = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_yt_"))
    try:
        for name, fan in (("full", None), ("sampled", (10, 5))):
            cfg = ProjectionConfig(**PROJ, fanouts=fan, device=args.device)
            with Stage(st, f"project {name} (d=100, budgets 2000/1000)"):
                stores[name] = GradientProjector(cfg).project(model, graph, tmp / name,
                                                              progress=False)
        out["projection"] = compare_stores(stores["full"], stores["sampled"])
        est = {}
        for name, store in stores.items():
            with Stage(st, f"Grad-TAG affinity on the {name} store"):
                est[name] = GradTAGEstimator(**AFFINITY).fit(store)
        # The estimate's own noise as the yardstick: other subsets, full neighbourhoods.
        est["full, subset seed 1"] = GradTAGEstimator(**AFFINITY, seed=1).fit(stores["full"])
        from scipy.stats import pearsonr, spearmanr

        A = est["full"].affinity_
        iu = np.triu_indices(len(A), 1)
        k_auto = int(TaskClustering(k="auto").fit(A).k_)
        ks = sorted({k_auto, 5, 10})
        ref = {k: TaskClustering(k=k).fit(A).labels_ for k in ks}
        out["affinity"] = {"estimator": AFFINITY, "k_full_auto": k_auto, "against_full": {}}
        for name in ("sampled", "full, subset seed 1"):
            B = est[name].affinity_
            out["affinity"]["against_full"][name] = {
                "pearson": float(pearsonr(A[iu], B[iu])[0]),
                "spearman": float(spearmanr(A[iu], B[iu])[0]),
                "k_auto": int(TaskClustering(k="auto").fit(B).k_),
                "ari_groups": {str(k): float(adjusted_rand_score(
                    ref[k], TaskClustering(k=k).fit(B).labels_)) for k in ks}}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def compare_stores(full, sampled) -> dict:
    """Row-level and per-task comparison of two stores with the same rows."""
    out = {}
    for split in ("train", "val"):
        zf, zs = np.asarray(full.array(split, "z")), np.asarray(sampled.array(split, "z"))
        ff, fs = np.asarray(full.array(split, "f0")), np.asarray(sampled.array(split, "f0"))
        assert np.array_equal(full.array(split, "node"), sampled.array(split, "node"))
        w = np.asarray(full.array(split, "weight"), dtype=np.float64)
        ptr = full.task_ptr(split)
        cos = []
        for t in range(full.num_tasks):
            sl = slice(ptr[t], ptr[t + 1])
            gf = (w[sl, None] * zf[sl]).sum(0) / w[sl].sum()
            gs = (w[sl, None] * zs[sl]).sum(0) / w[sl].sum()
            cos.append(float(gf @ gs / (np.linalg.norm(gf) * np.linalg.norm(gs))))
        out[split] = {
            "rows": int(len(ff)),
            "z_relative_error": float(np.linalg.norm(zs - zf) / np.linalg.norm(zf)),
            "z_pearson": float(np.corrcoef(zf.ravel(), zs.ravel())[0, 1]),
            "f0_mean_abs_diff": float(np.abs(fs - ff).mean()),
            "task_mean_gradient_cosine_mean": float(np.mean(cos)),
            "task_mean_gradient_cosine_min": float(np.min(cos))}
    return out


# ---------------------------------------------------------------------- orkut
def projection_probe(model, graph, batches: int, device: str, record: dict, tag: str) -> dict:
    """Time the projection's setup and ``batches`` node batches; extrapolate to the store."""
    from graphmtl.projection import GradientProjector, ProjectionConfig
    from graphmtl.utils.io import read_json

    cfg = ProjectionConfig(**PROJ, device=device)      # fanouts auto -> 10,5 on these graphs
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_proj_"))
    try:
        proj = GradientProjector(cfg)
        with Stage(record, f"{tag}projection setup (row selection, store files)"):
            proj.project(model, graph, tmp / "s", stop_after=0, progress=False)
        total = int(read_json(tmp / "s" / "progress.json")["num_batches"])
        with Stage(record, f"{tag}projection setup + {batches} batches"):
            proj.project(model, graph, tmp / "s", resume=False, stop_after=batches,
                         progress=False)
        setup = record[f"{tag}projection setup (row selection, store files)"]["seconds"]
        per = (record[f"{tag}projection setup + {batches} batches"]["seconds"] - setup) / batches
        return {"fanouts": list(cfg.resolve(model, graph).fanouts or []),
                "num_batches": total, "batch_size": cfg.batch_size,
                "seconds_per_batch": round(per, 2),
                "extrapolated_hours": round((setup + per * total) / 3600, 2)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def simulated_rows(graph: MultiTaskGraph, dim: int, seed: int = 0):
    """Store rows of the pipeline's budgets with the real row selection (labels, weights) and
    random ``z`` (timing the affinity stage needs the store's shapes, not its values)."""
    from graphmtl.affinity.solver import SplitRows
    from graphmtl.projection import select_rows

    rng = np.random.default_rng(seed)
    out = {}
    for split, budget in (("train", PROJ["train_budget"]), ("val", PROJ["val_budget"])):
        sel = select_rows(graph.y, graph.mask(split), budget, 0, split)
        R = len(sel.node)
        z = (rng.standard_normal((R, dim)) * 0.1).astype(np.float32)
        f0 = (2.0 * sel.y - 1.0) + rng.standard_normal(R)
        out[split] = SplitRows.from_arrays(z, f0, sel.y, sel.weight, sel.task_ptr,
                                           graph.task_names)
    return out["train"], out["val"]


def section_orkut(args) -> dict:
    from graphmtl.affinity import GradTAGEstimator
    from graphmtl.clustering import TaskClustering

    frac = 0.05 if args.short else 1.0
    batches = 3 if args.short else 20
    out: dict = {"data": args.orkut, "stages": {}, "settings": {
        "model": MODEL.to_dict(), "train": f"batch 1024, fanouts 10,5, {args.threads} thread(s)"
        f", device {args.device}; one epoch over {frac:.0%} of the training seeds, "
        "extrapolated to all (the validation is the full one)",
        "projection": {**PROJ, "fanouts": "auto (10,5 here)", "batches timed": batches},
        "affinity": {**AFFINITY, "rows": "the real row selection, random z (timing only)"}}}
    st = out["stages"]
    with Stage(st, "load graph (cached .npz)"):
        graph = load(args.orkut)
    out["graph"] = {"nodes": graph.num_nodes, "directed_edges": int(graph.edge_index.shape[1]),
                    "tasks": graph.num_tasks}
    seeds_all = int(graph.train_mask.any(1).sum())
    with Stage(st, f"base training, 1 epoch on {frac:.0%} of the seeds + validation"):
        res = Trainer(MODEL, TrainConfig(epochs=1, num_threads=args.threads,
                                         device=args.device)).fit(seed_fraction(graph, frac),
                                                                  progress=False)
    model = res.model
    rate = res.timings["seed_nodes_per_s"]
    out["training"] = {"seed_nodes_per_s": round(rate), "seeds_per_epoch": seeds_all,
                       "epoch_train_s_extrapolated": round(seeds_all / rate),
                       "fit_eval_s": round(res.timings["eval_s"], 1)}
    val_nodes = graph.val_mask.any(1).nonzero().flatten()
    with Stage(st, f"layer-wise embeddings of the {len(val_nodes)} validation nodes"):
        with torch.no_grad():
            layerwise_embeddings(model, graph, val_nodes)
    with Stage(st, "validation (layer-wise + streaming metrics, no AP)"):
        evaluate(model, graph, None, "val", with_ap=False, device=args.device)
    out["projection"] = projection_probe(model, graph, batches, args.device, st, "")
    with Stage(st, "simulated store rows (budgets 2000/1000, d=100)"):
        train, val = simulated_rows(graph, PROJ["dim"])
    out["store_rows"] = {"train": int(train.z.shape[0]), "val": int(val.z.shape[0])}
    with Stage(st, "Grad-TAG affinity, 1000 subsets of 5 (500 tasks)"):
        est = GradTAGEstimator(**AFFINITY).fit_rows(train, val)
    with Stage(st, "clustering, k auto (500 tasks)"):
        clu = TaskClustering(k="auto").fit(est.affinity_)
    out["clustering"] = {"k": int(clu.k_), "solver": clu.solver_}
    epochs = 10
    val_s = st["validation (layer-wise + streaming metrics, no AP)"]["seconds"]
    whole = (epochs * (out["training"]["epoch_train_s_extrapolated"] + val_s)
             + out["projection"]["extrapolated_hours"] * 3600
             + st["Grad-TAG affinity, 1000 subsets of 5 (500 tasks)"]["seconds"]
             + st["clustering, k auto (500 tasks)"]["seconds"])
    out["grouping_extrapolated"] = {"base_epochs": epochs, "hours": round(whole / 3600, 2)}
    del train, val, est
    out["scaling_tasks"] = scaling_tasks(graph, model, args)
    del graph, model
    # The full-size row of the edge scaling is the 500-task row just measured.
    full = [r for r in out["scaling_tasks"]["rows"] if r["tasks"] == out["graph"]["tasks"]]
    out["scaling_edges"] = scaling_edges(args, reuse={out["graph"]["nodes"]: full[0]}
                                         if full else {})
    return out


def scaling_probe(graph: MultiTaskGraph, args, tag: str, record: dict, model=None) -> dict:
    """Train throughput (one epoch on a seed fraction), a validation pass and projection
    batches on one graph; peak RSS of each."""
    frac = max(0.01, min(1.0, 8192 / graph.num_nodes)) if args.short else 1.0
    with Stage(record, f"{tag}train"):
        res = Trainer(MODEL, TrainConfig(epochs=1, num_threads=args.threads,
                                         device=args.device)).fit(seed_fraction(graph, frac),
                                                                  progress=False)
    model = res.model if model is None else model
    with Stage(record, f"{tag}validation"):
        evaluate(model, graph, None, "val", with_ap=False, device=args.device)
    proj = projection_probe(model, graph, 1 if args.short else 5, args.device, record, tag)
    return {"nodes": graph.num_nodes, "directed_edges": int(graph.edge_index.shape[1]),
            "tasks": graph.num_tasks, "train_seed_nodes_per_s": round(
                res.timings["seed_nodes_per_s"]),
            "train_peak_rss_mb": record[f"{tag}train"]["peak_rss_mb"],
            "validation_s": record[f"{tag}validation"]["seconds"],
            "validation_peak_rss_mb": record[f"{tag}validation"]["peak_rss_mb"],
            "projection_fanouts": proj["fanouts"] or "full",
            "projection_s_per_batch": proj["seconds_per_batch"],
            "projection_batches": proj["num_batches"],
            "projection_hours_extrapolated": proj["extrapolated_hours"]}


def scaling_tasks(graph, model, args) -> dict:
    rows, record = [], {}
    for k in [int(v) for v in args.scaling_tasks.split(",")]:
        print(f" tasks {k}", flush=True)
        sub = graph.select_tasks(list(range(k)))
        rows.append(scaling_probe(sub, args, f"tasks={k}: ", record))
    return {"rows": rows, "stages": record}


def scaling_edges(args, reuse: dict) -> dict:
    rows, record = [], {}
    for nodes in [int(v) for v in args.scaling_nodes.split(",")]:
        if nodes in reuse:
            rows.append(reuse[nodes])
            continue
        print(f" nodes {nodes}", flush=True)
        spec = ORKUT if nodes == 400_000 else f"{ORKUT},num_nodes={nodes}"
        with Stage(record, f"N={nodes}: load"):
            graph = load(spec)
        rows.append(scaling_probe(graph, args, f"N={nodes}: ", record))
        del graph
    return {"rows": rows, "stages": record}


# ---------------------------------------------------------------------- speed-up
SPEEDUP_DATA = f"{ORKUT},num_nodes=100000"


def speedup_worker(out: Path, args) -> None:
    """One process or one rank of the speed-up measurement (started by :func:`section_speedup`)."""
    from graphmtl.projection import GradientProjector, ProjectionConfig
    from graphmtl.utils.distributed import barrier, init_from_env, rank_world

    init_from_env("cpu")
    rank, world = rank_world()
    torch.set_num_threads(1)
    graph = load(SPEEDUP_DATA)
    group = graph.select_tasks(list(range(25)))
    tc = TrainConfig(epochs=1, num_threads=1, patience=0)
    barrier()
    res = Trainer(MODEL, tc).fit(seed_fraction(group, 0.3), progress=False)
    proj = GradientProjector(ProjectionConfig(**PROJ))
    tmp = out / "store"
    batches = 2 * args.speedup_batches // world          # the same batches in all
    proj.project(res.model, group, tmp, stop_after=0, progress=False)   # setup (row selection)
    barrier()
    t0 = time.perf_counter()
    proj.project(res.model, group, tmp, stop_after=batches, progress=False)
    barrier()
    proj_s = time.perf_counter() - t0
    if rank == 0:
        (out / f"speedup_{world}.json").write_text(json.dumps({
            "world": world, "group_train_s": res.timings["train_s"],
            "group_seed_nodes_per_s": res.timings["seed_nodes_per_s"],
            "projection_batches": 2 * args.speedup_batches, "projection_s": proj_s}))


def section_speedup(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_speedup_"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    me = ["-m", f"experiments.{NAME}", "--worker", "speedup", "--speedup-batches",
          str(args.speedup_batches)]
    load(SPEEDUP_DATA)   # generate and cache once, outside the timed runs
    results = {}
    try:
        for world in (1, 2):
            out = tmp / f"w{world}"
            out.mkdir()
            cmd = [sys.executable] + (["-m", "torch.distributed.run", "--standalone",
                                       "--nproc-per-node", "2"] if world == 2 else [])
            t0 = time.perf_counter()
            subprocess.run(cmd + me + ["--worker-dir", str(out)], env=env, check=True)
            results[world] = json.loads((out / f"speedup_{world}.json").read_text())
            results[world]["wall_s"] = round(time.perf_counter() - t0, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    one, two = results[1], results[2]
    return {"data": SPEEDUP_DATA, "group": "25 tasks, one epoch over 30% of the seeds",
            "projection": f"the group model, {2 * args.speedup_batches} batches of 512 nodes, "
                          "d=100, fanouts 10,5",
            "one_process": one, "two_ranks": two,
            "group_training_speedup": round(one["group_train_s"] / two["group_train_s"], 2),
            "projection_speedup": round(one["projection_s"] / two["projection_s"], 2),
            "load_average": load_average()}


# ---------------------------------------------------------------------- CLI commands
def _timed_command(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float, float | None]:
    """Run a graphmtl command under ``/usr/bin/time -v`` (one BLAS thread, this checkout on the
    path): the finished process, its wall seconds and its peak RSS in GiB (``None`` if
    ``time`` did not report one)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return proc, wall, None if rss is None else int(rss.group(1)) / 2**20


def section_train_cli(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_cli_"))
    cmd = [sys.executable, "-m", "graphmtl.cli", "train", "--data", ORKUT, "--epochs", "1",
           "--threads", str(args.threads), "--device", args.device, "--out", str(tmp / "run"),
           "--no-progress"]
    proc, wall, peak_gb = _timed_command(cmd)
    results = None
    if (tmp / "run" / "results.json").is_file():
        r = json.loads((tmp / "run" / "results.json").read_text())
        results = {"timings": r["timings"], "test_macro_roc_auc": r["test"]["macro"]["roc_auc"]}
    shutil.rmtree(tmp, ignore_errors=True)
    return {"command": "/usr/bin/time -v graphmtl train --data synthetic:preset=orkut500 "
                       f"--epochs 1 --threads {args.threads} --device {args.device} "
                       "--out RUN --no-progress",
            "exit_status": proc.returncode, "wall_s": round(wall, 1),
            "peak_rss_gb": None if peak_gb is None else round(peak_gb, 2),
            "within_24_gb": bool(peak_gb is not None and peak_gb < 24 and
                                 proc.returncode == 0),
            "results": results, "stderr_tail": proc.stderr.strip().splitlines()[-3:]
            if proc.returncode else []}


def section_run_cli(args) -> dict:
    run_dir = Path(args.run_dir)
    cmd = [sys.executable, "-m", "graphmtl.cli", "run", "--data", args.orkut, *RUN_ARGS,
           "--out", str(run_dir), "--quiet"]
    proc, wall, peak_gb = _timed_command(cmd)
    manifest = run_dir / "manifest.json"
    m = json.loads(manifest.read_text()) if manifest.is_file() else {"stages": {}}
    stages = {name: {"seconds": rec.get("seconds"), "peak_rss_mb": rec.get("peak_rss_mb")}
              for name, rec in m["stages"].items()}
    summary_path = run_dir / "report" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    finished = proc.returncode == 0 and all(v["seconds"] is not None for v in stages.values())
    return {"command": f"/usr/bin/time -v graphmtl run --data {args.orkut} {' '.join(RUN_ARGS)} "
                       f"--out {run_dir}",
            "exit_status": proc.returncode, "finished": finished,
            "this_call_wall_s": round(wall, 1),
            "this_call_peak_rss_gb": None if peak_gb is None else round(peak_gb, 2),
            "stages": stages,
            "stage_seconds_total": round(sum(v["seconds"] or 0.0 for v in stages.values()), 1),
            "verdict": summary and summary["verdict"],
            "methods": summary and [{k: x[k] for k in ("name", "groups", "macro", "verdict")}
                                    for x in summary["methods"]],
            "stderr_tail": proc.stderr.strip().splitlines()[-3:] if proc.returncode else []}


def section_surrogate(args) -> dict:
    """The default affinity on the large graph: the surrogate's inputs, then one chunk of subsets
    trained for ``eval_every`` steps and scored once (the peak of a chunk, whatever its number of
    steps), its time extrapolated to the default. Run twice on the same subsets: scored on the
    default validation-row budget and on every validation row, with the agreement of the two
    scores (what the budget changes in the estimate)."""
    from dataclasses import replace

    from scipy.stats import spearmanr

    from graphmtl.affinity import SurrogateAffinityEstimator, SurrogateConfig
    from graphmtl.affinity.surrogate import surrogate_inputs, validation_rows

    default = SurrogateConfig()
    record: dict = {}
    with Stage(record, "load graph"):
        graph = load(args.orkut)
    inputs = "surrogate inputs (propagated features, PCA)"
    with Stage(record, inputs):
        surrogate_inputs(graph, default.hops, default.input_dim)
    probe = replace(default, steps=default.eval_every)
    chunks = -(-1000 // default.chunk)
    passes = default.steps // default.eval_every
    runs, est = {}, {}
    for label, cfg in (("budget", probe), ("all rows", replace(probe, val_rows=None))):
        rows = len(validation_rows(graph, cfg.val_rows))
        name = (f"surrogate: one chunk of {default.chunk} subsets, {probe.steps} steps and one "
                f"validation pass on {rows} rows (inputs included)")
        with Stage(record, name):
            est[label] = SurrogateAffinityEstimator(num_subsets=default.chunk, subset_size=5,
                                                    config=cfg, device=args.device).fit(graph)
        t_chunk = record[name]["seconds"] - record[inputs]["seconds"]
        runs[label] = {"validation_rows": rows, "chunk_s": round(t_chunk, 1),
                       "default_extrapolated_s": round(record[inputs]["seconds"]
                                                       + chunks * passes * t_chunk)}
    a, b = est["budget"], est["all rows"]
    both = a.subsets_ & np.isfinite(a.scores_) & np.isfinite(b.scores_)
    per_task = [spearmanr(a.scores_[both[:, t], t], b.scores_[both[:, t], t]).statistic
                for t in range(graph.num_tasks) if both[:, t].sum() >= 5]
    off_diagonal = ~np.eye(graph.num_tasks, dtype=bool)
    return {"graph": {"spec": args.orkut, "nodes": graph.num_nodes, "tasks": graph.num_tasks,
                      "validation_rows": int(graph.val_mask.any(1).sum()),
                      "validation_positive_rows": int((graph.val_mask & graph.y).any(1).sum())},
            "stages": record, "runs": runs,
            "default_val_rows": default.val_rows,
            "default_extrapolated_s": runs["budget"]["default_extrapolated_s"],
            "agreement": {"scores_spearman": round(float(spearmanr(
                              a.scores_[both], b.scores_[both]).statistic), 4),
                          "per_task_spearman_median": round(float(np.nanmedian(per_task)), 4),
                          "affinity_pearson": round(float(np.corrcoef(
                              a.affinity_[off_diagonal], b.affinity_[off_diagonal])[0, 1]), 4),
                          "tasks": len(per_task)},
            "extrapolation": f"{chunks} chunks x {passes} (steps + validation) blocks"}


def section_subspace(args) -> dict:
    """The default affinity on the large graph, whole: ``SubspaceAffinityEstimator`` with its
    defaults, its phases, its peak memory, and whether its groups are the planted ones."""
    from sklearn.metrics import adjusted_rand_score

    from graphmtl.affinity import SubspaceAffinityEstimator
    from graphmtl.clustering import TaskClustering

    record: dict = {}
    with Stage(record, "load graph"):
        graph = load(args.orkut)
    with Stage(record, "shared-subspace affinity (1000 subsets of 5, inputs included)"):
        est = SubspaceAffinityEstimator(seed=0).fit(graph)
    planted = graph.provenance.get("planted_groups")
    ari = {}
    if planted is not None:
        k = int(max(planted)) + 1
        off_diagonal = 1 - np.eye(graph.num_tasks)
        with Stage(record, f"clustering (k = {k})"):
            labels = TaskClustering(k=k).fit(est.affinity_).labels_
        ari["affinity"] = round(float(adjusted_rand_score(planted, labels)), 3)
        for part in ("affinity_subsets_", "correlation_"):
            labels = TaskClustering(k=k).fit(getattr(est, part) * off_diagonal).labels_
            ari[part.rstrip("_")] = round(float(adjusted_rand_score(planted, labels)), 3)
    return {"graph": {"spec": args.orkut, "nodes": graph.num_nodes, "tasks": graph.num_tasks,
                      "training_rows": int(graph.train_mask.any(1).sum()),
                      "validation_rows": int(graph.val_mask.any(1).sum())},
            # milliseconds: on a small graph a phase takes less than 0.05 s
            "stages": record, "timings": {k: round(v, 3) for k, v in est.timings_.items()},
            "coverage": est.coverage_, "ari": ari}


# ---------------------------------------------------------------------- report
def render(res: dict) -> str:
    L = ["# bench_scale — the 21M-edge / 500-task graph on one machine", ""]
    meta = res.get("meta", {})
    for name, m in meta.items():
        where = describe_machine(m["machine"]) + (f", device {m['device']}" if "device" in m
                                                   else "")
        L.append(f"- `{name}`: `{m['command']}` — {where}; load average "
                 f"{m['load_start']} -> {m['load_end']}; {m['seconds']:.0f} s")
    L.append("")

    def stages(st: dict) -> list[str]:
        return [md_table(["stage", "seconds", "peak RSS (MB)", "RSS at start (MB)",
                          "CUDA peak (MB)"],
                         [[k, v["seconds"], v["peak_rss_mb"], v["rss_start_mb"],
                           v.get("cuda_peak_mb", "-")] for k, v in st.items()])]

    if "youtube" in res:
        y = res["youtube"]
        e = y["evaluation"]
        L += [f"## Sampled vs full neighbourhoods on YouTube-100 ({y['graph']['nodes']} nodes, "
              f"{y['graph']['directed_edges']} directed edges, {y['graph']['tasks']} tasks)", "",
              f"SAGE base model, {y['base_model']['epochs']} epochs (val ROC-AUC "
              f"{y['base_model']['val_roc_auc']:.4f}).", "",
              "**Evaluation** (test split): exact macro ROC-AUC "
              f"{e['exact']['roc_auc']:.4f}, AP {e['exact']['ap']:.4f}, F1 "
              f"{e['exact']['f1']:.4f}; layer-wise vs one full-graph pass: max per-task "
              f"|Δ ROC-AUC| {e['layerwise_minus_full_graph_max_abs_roc_auc']:.1e}.", "",
              md_table(["sampled 10,5 (seed)", "Δ macro ROC-AUC", "Δ macro AP", "Δ macro F1",
                        "Δ mean BCE", "mean per-task abs Δ ROC-AUC"],
                       [[i, f"{r['roc_auc']:+.4f}", f"{r['ap']:+.4f}", f"{r['f1']:+.4f}",
                         f"{r['loss']:+.4f}", f"{r['mean_abs_task_roc_auc']:.4f}"]
                        for i, r in enumerate(e["sampled_minus_exact"])])]
        if "projection" in y:
            L += ["", "**Projection store** (d = 100, budgets 2000 / 1000): sampled 10,5 "
                  "against full neighbourhoods, same rows.", "",
                  md_table(["split", "rows", "rel. error of z", "Pearson of z", "mean abs Δ f0",
                            "cosine of per-task mean gradients (mean / min)"],
                           [[s, p["rows"], f"{p['z_relative_error']:.3f}",
                             f"{p['z_pearson']:.4f}", f"{p['f0_mean_abs_diff']:.4f}",
                             f"{p['task_mean_gradient_cosine_mean']:.4f} / "
                             f"{p['task_mean_gradient_cosine_min']:.4f}"]
                            for s, p in y["projection"].items()])]
            a = y["affinity"]
            L += ["", "**Grad-TAG affinity** (`GradTAGEstimator(num_subsets=1000, "
                  "subset_size=5, standardize=True)`) against the full-neighbourhood estimate "
                  f"(k auto there: {a['k_full_auto']}); the second row, the same store with "
                  "other sampled subsets, is the estimate's own noise:", "",
                  md_table(["estimate", "off-diagonal Pearson", "Spearman", "k auto",
                            "groups: ARI at k"],
                           [[name, f"{r['pearson']:.4f}", f"{r['spearman']:.4f}", r["k_auto"],
                             ", ".join(f"k={k}: {v:.2f}" for k, v in r["ari_groups"].items())]
                            for name, r in a["against_full"].items()])]
            L.append("")
        L += stages(y["stages"]) + [""]
    if "orkut" in res:
        o = res["orkut"]
        g = o["graph"]
        L += [f"## orkut500: {g['nodes']} nodes, {g['directed_edges']} directed edges, "
              f"{g['tasks']} tasks", ""]
        for k, v in o["settings"].items():
            L.append(f"- {k}: {v}")
        t, p = o["training"], o["projection"]
        L += [""] + stages(o["stages"]) + [
            "",
            f"Training: {t['seed_nodes_per_s']} seed nodes/s, so one epoch over "
            f"{t['seeds_per_epoch']} seeds ≈ {t['epoch_train_s_extrapolated']} s plus its "
            "validation. Projection: "
            f"{p['num_batches']} batches of {p['batch_size']} nodes with fanouts "
            f"{p['fanouts']}, {p['seconds_per_batch']} s per batch ≈ "
            f"{p['extrapolated_hours']} h. Store rows: {o['store_rows']}. Clustering: k = "
            f"{o['clustering']['k']} ({o['clustering']['solver']}).", "",
            "**Whole Grad-TAG grouping, extrapolated** "
            f"({o['grouping_extrapolated']['base_epochs']} base epochs with validation, "
            "projection, affinity, clustering): "
            f"{o['grouping_extrapolated']['hours']} h on this machine.", ""]
        for key, title in (("scaling_tasks", "Scaling with tasks (same graph)"),
                           ("scaling_edges", "Scaling with edges (the preset at other sizes)")):
            if key not in o:
                continue
            L += [f"### {title}", "",
                  md_table(["nodes", "directed edges", "tasks", "train seeds/s",
                            "train peak RSS (MB)", "validation s", "validation peak RSS (MB)",
                            "projection fanouts", "projection s/batch", "batches",
                            "projection h (extrap.)"],
                           [[r["nodes"], r["directed_edges"], r["tasks"],
                             r["train_seed_nodes_per_s"], r["train_peak_rss_mb"],
                             r["validation_s"], r["validation_peak_rss_mb"],
                             r.get("projection_fanouts", ""), r["projection_s_per_batch"],
                             r["projection_batches"], r["projection_hours_extrapolated"]]
                            for r in o[key]["rows"]])]
            L.append("")
        L += [f"Train peak RSS is that of `Trainer.fit` (one epoch over a seed fraction, its "
              "validation and the final validation with AP); validation is `evaluate(split="
              "'val')` alone. Projection rows: fanouts auto (full neighbourhoods up to 4M "
              "directed edges, so the 20k-node graph projects exactly and slower per batch).",
              ""]
        if o.get("notes"):
            L += [f"Note: {n}" for n in o["notes"]] + [""]
    if "speedup" in res:
        s = res["speedup"]
        L += ["## Two ranks (torchrun, gloo, 1 thread each) vs one process", "",
              f"{s['data']}; group model: {s['group']}; projection: {s['projection']}; load "
              f"average at the end {s['load_average']}.", "",
              md_table(["", "one process", "two ranks", "speed-up"], [
                  ["group training (s)", f"{s['one_process']['group_train_s']:.1f}",
                   f"{s['two_ranks']['group_train_s']:.1f}", f"{s['group_training_speedup']}x"],
                  ["projection (s)", f"{s['one_process']['projection_s']:.1f}",
                   f"{s['two_ranks']['projection_s']:.1f}", f"{s['projection_speedup']}x"]]),
              ""]
        if s.get("note"):
            L += [f"Note: {s['note']}", ""]
    if "surrogate" in res:
        r = res["surrogate"]
        L += [f"## The default affinity's surrogate on {r['graph'].get('spec', ORKUT)}", "",
              f"{r['graph']['nodes']} nodes, {r['graph']['tasks']} tasks, "
              f"{r['graph']['validation_rows']} validation rows"
              + (f" ({r['graph']['validation_positive_rows']} of them a validation positive)"
                 if "validation_positive_rows" in r["graph"] else "") + ".", ""]
        L += stages(r["stages"]) + [""]
        if "runs" in r:       # the validation-row budget against every row, same subsets
            g = r["agreement"]
            L += [md_table(["scored rows", "rows", "chunk (s)", "default extrapolated (s)"],
                           [[k, v["validation_rows"], v["chunk_s"], v["default_extrapolated_s"]]
                            for k, v in r["runs"].items()]), "",
                  f"Default budget: {r['default_val_rows']} validation rows. Budget against all "
                  f"rows, same subsets: Spearman of the scores "
                  f"{g['scores_spearman']}, median per-task Spearman "
                  f"{g['per_task_spearman_median']} ({g['tasks']} tasks), Pearson of the "
                  f"affinities {g['affinity_pearson']}.", ""]
        L += [f"The default (1000 subsets of 5, 200 steps, a validation pass every 25) "
              f"extrapolated: about {r['default_extrapolated_s']} s on this machine "
              f"({r['extrapolation']}); its memory is that of one chunk.", ""]
    if "subspace" in res:
        r = res["subspace"]
        L += [f"## The default affinity (shared subspace) on {r['graph']['spec']}", "",
              f"{r['graph']['nodes']} nodes, {r['graph']['tasks']} tasks, "
              f"{r['graph']['training_rows']} training and {r['graph']['validation_rows']} "
              "validation rows (the estimate scores a sample of at most 100,000).", ""]
        L += stages(r["stages"]) + [""]
        t = r["timings"]
        L += [f"Phases: features {t['features_s']} s, ridge fits {t['fit_s']} s, scoring "
              f"{t['score_s']} s."]
        if r["ari"]:
            a = r["ari"]
            L += [f"ARI of its groups against the planted ones: {a['affinity']} (the subsets' "
                  f"affinity alone: {a['affinity_subsets']}, the fitted-score correlation "
                  f"alone: {a['correlation']}; its 1,000 subsets of 5 leave "
                  f"{r['coverage']['zero_pairs']:,} of the "
                  f"{r['graph']['tasks'] * (r['graph']['tasks'] - 1) // 2:,} pairs of tasks "
                  "together in none)."]
        L += [""]
    if "run_cli" in res:
        c = res["run_cli"]
        L += ["## `graphmtl run` on orkut500, every stage", "", f"`{c['command']}`", "",
              md_table(["stage", "seconds", "peak memory (GB)"],
                       [[k, "-" if v["seconds"] is None else f"{v['seconds']:.0f}",
                         "not recorded" if v["peak_rss_mb"] is None
                         else f"{v['peak_rss_mb'] / 1024:.1f}"]
                        for k, v in c["stages"].items()]), "",
              f"{'Finished' if c['finished'] else 'NOT finished'} (exit status "
              f"{c['exit_status']}): {c['stage_seconds_total'] / 3600:.2f} h of stages in all; "
              f"the last call took {c['this_call_wall_s']:.0f} s with a peak RSS of "
              f"{c['this_call_peak_rss_gb']} GB (the command and its workers)."]
        if c.get("verdict"):
            L.append(f"Verdict of the run: {c['verdict']}")
        if c.get("methods"):
            L += ["", md_table(["method", "groups", "test AP", "verdict"],
                               [[x["name"], x["groups"], f"{100 * x['macro']['ap']:.1f}",
                                 x["verdict"]] for x in c["methods"]])]
        if c.get("note"):
            L += ["", f"Note: {c['note']}"]
        L.append("")
    if "train_cli" in res:
        c = res["train_cli"]
        L += ["## `graphmtl train` on orkut500, one epoch", "", f"`{c['command']}`", "",
              f"Exit status {c['exit_status']}, {c['wall_s']} s, peak RSS {c['peak_rss_gb']} GB: "
              f"{'finishes within 24 GB' if c['within_24_gb'] else 'does NOT finish within 24 GB'}"
              "."]
        if c.get("results"):
            tm = c["results"]["timings"]
            L.append(f"Train {tm['train_s']:.0f} s ({tm['seed_nodes_per_s']:.0f} seed nodes/s), "
                     f"evaluation {tm['eval_s']:.0f} s; test macro ROC-AUC "
                     f"{c['results']['test_macro_roc_auc']:.4f}.")
        L.append("")
    return "\n".join(L) + "\n"


def parser() -> argparse.ArgumentParser:
    """Its own options (:func:`experiments.harness.parse_args` adds the shared ones)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sections", default="youtube,orkut,speedup,train_cli")
    ap.add_argument("--short", action="store_true", help="reduced mode (see the docstring)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--speedup-batches", type=int, default=4,
                    help="projection batches per rank in the speed-up section")
    ap.add_argument("--orkut", default=ORKUT, help="the large graph (smaller for a smoke run)")
    ap.add_argument("--run-dir", default="runs/orkut500",
                    help="run directory of the run_cli section (resumed when it exists)")
    ap.add_argument("--scaling-tasks", default="100,250,500")
    ap.add_argument("--scaling-nodes", default="20000,100000,400000",
                    help="preset sizes for the edge scaling (about 1M / 5M / 21M edges)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-dir", type=Path, default=None, help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(), argv, NAME)
    warnings.filterwarnings("ignore")
    if args.worker == "speedup":
        speedup_worker(args.worker_dir, args)
        return 0
    torch.set_num_threads(args.threads)
    # Sections are merged into the existing result: each run adds or replaces its sections.
    path = Path(args.results_dir) / f"{args.out}.json"
    res = json.loads(path.read_text()) if path.is_file() else {}
    res.setdefault("meta", {})
    funcs = {"youtube": section_youtube, "orkut": section_orkut, "speedup": section_speedup,
             "train_cli": section_train_cli, "surrogate": section_surrogate,
             "subspace": section_subspace, "run_cli": section_run_cli}
    for name in [s.strip() for s in args.sections.split(",") if s.strip()]:
        print(f"== {name}", flush=True)
        t0, info = time.perf_counter(), machine()
        res[name] = funcs[name](args)
        res["meta"][name] = {
            "command": args.command, "machine": info, "device": args.device,
            "load_start": info["loadavg"], "load_end": load_average(),
            "seconds": time.perf_counter() - t0}
        write_results(args.out, res, render(res), args.results_dir)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
