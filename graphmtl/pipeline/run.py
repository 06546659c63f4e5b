"""``run_pipeline``: base model → projected gradients → affinities → groups → group models.

Every stage reuses the stage's own public API (data loaders, the one trainer, the projection
engine, the Grad-TAG estimator, the clustering estimator); this module only wires them into a
:class:`~graphmtl.pipeline.stages.RunDirectory`, so a re-run skips stages whose inputs did not
change and a killed run resumes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphmtl.data import MultiTaskGraph
from graphmtl.pipeline.config import PipelineConfig
from graphmtl.pipeline.groups import train_group_models
from graphmtl.pipeline.report import MethodResult, Report
from graphmtl.pipeline.stages import RunDirectory
from graphmtl.training import TaskMetrics, Trainer, evaluate, load_checkpoint
from graphmtl.utils.io import atomic_path, atomic_write_json, read_json


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns.

    Attributes:
        run_dir: the run directory.
        groups: Grad-TAG group id per task, int ``[n]``.
        methods: the comparison rows (Grad-TAG groups first).
        report_html, report_md: the report files.
        executed: stages run in this call (the others were reused).
    """

    run_dir: Path
    groups: np.ndarray
    methods: list[MethodResult]
    report_html: Path
    report_md: Path
    executed: list[str]


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"graphmtl: {msg}", file=sys.stderr, flush=True)


def _save_metrics(path: Path, metrics: TaskMetrics, **extra: Any) -> None:
    atomic_write_json(path, {**metrics.to_dict(), **extra})


def _load_metrics(path: Path, task_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-task test ``(f1, roc_auc)`` ``[n]`` from a metrics JSON, in ``task_names`` order."""
    rows = {r["task"]: r for r in read_json(path)["tasks"]}
    get = lambda key: np.array([np.nan if rows[t][key] is None else rows[t][key]  # noqa: E731
                                for t in task_names], dtype=float)
    return get("f1"), get("roc_auc")


def run_pipeline(config: PipelineConfig, run_dir: str | Path, *, quiet: bool = False,
                 progress: bool = True) -> PipelineResult:
    """Run (or resume) every stage of ``config`` in ``run_dir`` and write the report.

    Stages: ``data`` (load and freeze the dataset), ``base`` (all-task model), ``projection``,
    ``affinity`` (Grad-TAG), ``clustering``, ``groups`` (one model per group), and the baselines
    ``pairwise``, ``random``, ``single_task`` as enabled in ``config.compare``.
    """
    from graphmtl.affinity import GradTAGEstimator, pair_subsets, pairwise_affinity, symmetrize
    from graphmtl.affinity.baselines import TrainedSubsetScores
    from graphmtl.clustering import TaskClustering, random_partition
    from graphmtl.data import load_dataset
    from graphmtl.projection import GradientProjector, ProjectionStore

    run = RunDirectory(run_dir, config.to_dict())
    cfg = config
    mc, tc = cfg.model, cfg.train
    t_run = time.perf_counter()

    # -------------------------------------------------------------------------- data
    def data_stage(d: Path) -> dict:
        graph = load_dataset(cfg.data, root=cfg.data_root)
        graph.save(d / "graph.npz")
        return {"summary": graph.summary()}

    _log(f"data: {cfg.data}", quiet)
    rec_data = run.run("data", {"data": cfg.data, "root": cfg.data_root}, data_stage)
    graph = MultiTaskGraph.load(run.path / "data" / "graph.npz")
    names, n = graph.task_names, graph.num_tasks
    model_keys = {"model": mc.to_dict(), "train": tc.to_dict()}

    # -------------------------------------------------------------------------- base model
    def base_stage(d: Path) -> dict:
        result = Trainer(mc, tc).fit(graph, "all", out_dir=d, resume=True, progress=progress)
        test = evaluate(result.model, graph, "all", split="test")
        _save_metrics(d / "test_metrics.json", test, seconds=result.timings.get("total_s"))
        return {"best_epoch": result.best_epoch, "test_macro_f1": test.macro_f1,
                "test_macro_roc_auc": test.macro_roc_auc}

    _log(f"base model: {mc.encoder} on all {n} tasks", quiet)
    rec_base = run.run("base", {"data": rec_data.key, **model_keys}, base_stage)
    base_ckpt = run.path / "base" / "model.pt"

    # -------------------------------------------------------------------------- projection
    def projection_stage(d: Path) -> dict:
        model = load_checkpoint(base_ckpt).model
        GradientProjector(cfg.projection).project(model, graph, d / "store", resume=True,
                                                  progress=progress)
        return {"store": "store"}

    _log(f"projection: d = {cfg.projection.dim}", quiet)
    rec_proj = run.run("projection", {"base": rec_base.key,
                                      "projection": cfg.projection.to_dict()}, projection_stage)
    store_path = run.path / "projection" / "store"

    # -------------------------------------------------------------------------- affinity
    ac = cfg.affinity
    size = min(ac.subset_size, n - 1) if n > 2 else 2

    def affinity_stage(d: Path) -> dict:
        est = GradTAGEstimator(num_subsets=ac.num_subsets, subset_size=size, lam=ac.lam,
                               standardize=ac.standardize, seed=ac.seed)
        est.fit(ProjectionStore(store_path))
        for name, arr in (("affinity", est.affinity_), ("subsets", est.subsets_),
                          ("scores", est.scores_)):
            with atomic_path(d / f"{name}.npy") as tmp:
                np.save(tmp, arr)
        return {"timings": est.timings_, "coverage": est.coverage_,
                "converged": int(np.sum(est.converged_)), "subsets": int(est.subsets_.shape[0])}

    _log(f"affinity: {ac.num_subsets} subsets of {size} tasks", quiet)
    rec_aff = run.run("affinity", {"projection": rec_proj.key, "affinity": vars(ac) | {"s": size}},
                      affinity_stage)
    affinity = np.load(run.path / "affinity" / "affinity.npy")

    # -------------------------------------------------------------------------- clustering
    def cluster(A: np.ndarray, k: int | str) -> tuple[np.ndarray, dict]:
        tcl = TaskClustering(k=k, solver=cfg.cluster_solver).fit(A)
        info = {"k": int(tcl.k_), "sdp_objective": tcl.sdp_objective_,
                "rounded_objective": tcl.rounded_objective_, "gap": tcl.gap_,
                "solver": tcl.solver_, "timings": tcl.timings_}
        return tcl.labels_, info

    def clustering_stage(d: Path) -> dict:
        labels, info = cluster(affinity, cfg.k)
        atomic_write_json(d / "groups.json", {"labels": labels.tolist(), "task_names": names,
                                              **info})
        return info

    _log(f"clustering: k = {cfg.k}", quiet)
    rec_cl = run.run("clustering", {"affinity": rec_aff.key, "k": cfg.k,
                                    "solver": cfg.cluster_solver}, clustering_stage)
    groups = np.array(read_json(run.path / "clustering" / "groups.json")["labels"])
    k = int(rec_cl.outputs["k"])

    # -------------------------------------------------------------------------- group models
    def groups_stage_for(labels_path: Path):
        def stage(d: Path) -> dict:
            labels = np.array(read_json(labels_path)["labels"])
            res = train_group_models(graph, labels, mc, tc, d / "models", progress=progress)
            _save_metrics(d / "test_metrics.json", res.metrics, seconds=res.seconds,
                          groups=labels.tolist())
            return {"seconds": res.seconds, "test_macro_f1": res.metrics.macro_f1}
        return stage

    _log(f"group models: {k} groups", quiet)
    rec_groups = run.run("groups", {"clustering": rec_cl.key, **model_keys},
                         groups_stage_for(run.path / "clustering" / "groups.json"))

    methods: list[MethodResult] = []
    f1, auc = _load_metrics(run.path / "groups" / "test_metrics.json", names)
    grad_tag_cost = sum(run.stages[s].seconds or 0.0 for s in ("projection", "affinity",
                                                               "clustering"))
    methods.append(MethodResult("Grad-TAG groups", groups, f1, auc, cost_seconds=grad_tag_cost,
                                train_seconds=rec_groups.outputs["seconds"],
                                note="measured: projection + affinity + clustering (base model "
                                     "reused from the all-task run)"))
    f1, auc = _load_metrics(run.path / "base" / "test_metrics.json", names)
    methods.append(MethodResult("All tasks, one model", np.zeros(n, dtype=int), f1, auc,
                                cost_seconds=0.0, train_seconds=run.stages["base"].seconds or 0.0,
                                note="no grouping"))

    # -------------------------------------------------------------------------- pairwise
    comp = cfg.compare
    if comp.pairwise:
        total_pairs = n * (n - 1) // 2
        num_pairs = None if comp.pairwise_pairs is None or comp.pairwise_pairs >= total_pairs \
            else comp.pairwise_pairs

        def pairwise_stage(d: Path) -> dict:
            M = pair_subsets(n, num_pairs, seed=cfg.seed, singletons=True)
            start = time.perf_counter()
            scores = TrainedSubsetScores(mc, tc, mode="scratch", workers=comp.workers,
                                         progress=progress).fit(
                graph, M, results=d / "pair_scores.jsonl").result_
            train_s = time.perf_counter() - start
            A = symmetrize(pairwise_affinity(M, scores.scores, relative=True))
            with atomic_path(d / "affinity.npy") as tmp:
                np.save(tmp, A)
            t0 = time.perf_counter()
            labels, info = cluster(A, k)
            cluster_s = time.perf_counter() - t0
            atomic_write_json(d / "groups.json", {"labels": labels.tolist(), **info})
            # Work of one pair training in its worker; the full cost is extrapolated per pair.
            per_pair = float(scores.seconds[n:].mean())
            full = (train_s if num_pairs is None else
                    train_s * (total_pairs + n) / (num_pairs + n))
            return {"pairs_trained": int(M.shape[0] - n), "pairs_total": total_pairs,
                    "train_seconds": train_s, "cluster_seconds": cluster_s,
                    "per_pair_seconds": per_pair, "all_pairs_seconds": full}

        _log(f"pairwise baseline: {num_pairs or total_pairs} of {total_pairs} pairs", quiet)
        rec_pw = run.run("pairwise", {"data": rec_data.key, **model_keys, "k": k,
                                      "pairs": num_pairs, "seed": cfg.seed}, pairwise_stage)
        rec_pw_groups = run.run("pairwise_groups", {"pairwise": rec_pw.key, **model_keys},
                                groups_stage_for(run.path / "pairwise" / "groups.json"))
        f1, auc = _load_metrics(run.path / "pairwise_groups" / "test_metrics.json", names)
        o = rec_pw.outputs
        sampled = o["pairs_trained"] < o["pairs_total"]
        cost = o["all_pairs_seconds"] + o["cluster_seconds"]
        note = (f"trained {o['pairs_trained']} of {o['pairs_total']} pairs + {n} single tasks in "
                f"{o['train_seconds']:.0f} s; cost extrapolated to all pairs" if sampled else
                f"measured: {o['pairs_total']} pairs + {n} single tasks trained")
        methods.append(MethodResult("Pairwise-affinity groups (naive)",
                                    np.array(read_json(run.path / "pairwise" / "groups.json")
                                             ["labels"]), f1, auc, cost_seconds=cost,
                                    train_seconds=rec_pw_groups.outputs["seconds"], note=note))

    # -------------------------------------------------------------------------- random groups
    if comp.random_groups:
        def random_stage(d: Path) -> dict:
            labels = random_partition(np.bincount(groups), seed=cfg.seed)
            atomic_write_json(d / "groups.json", {"labels": labels.tolist()})
            return {}

        rec_rand = run.run("random", {"clustering": rec_cl.key, "seed": cfg.seed}, random_stage)
        rec_rand_groups = run.run("random_groups", {"random": rec_rand.key, **model_keys},
                                  groups_stage_for(run.path / "random" / "groups.json"))
        f1, auc = _load_metrics(run.path / "random_groups" / "test_metrics.json", names)
        methods.append(MethodResult("Random groups (same sizes)",
                                    np.array(read_json(run.path / "random" / "groups.json")
                                             ["labels"]), f1, auc,
                                    train_seconds=rec_rand_groups.outputs["seconds"],
                                    note="no affinity needed"))

    if comp.single_task:
        def stl_stage(d: Path) -> dict:
            atomic_write_json(d / "groups.json", {"labels": list(range(n))})
            return {}

        run.run("single_task", {"n": n}, stl_stage)
        rec_stl = run.run("single_task_models", {"data": rec_data.key, **model_keys},
                          groups_stage_for(run.path / "single_task" / "groups.json"))
        f1, auc = _load_metrics(run.path / "single_task_models" / "test_metrics.json", names)
        methods.append(MethodResult("One model per task", np.arange(n), f1, auc,
                                    train_seconds=rec_stl.outputs["seconds"], note="no grouping"))

    # -------------------------------------------------------------------------- report
    summary = rec_data.outputs["summary"]
    dataset = {"spec": cfg.data, "nodes": summary["nodes"], "edges": summary["edges"],
               "tasks": summary["tasks"], "features": summary["features"],
               "encoder": f"{mc.encoder} (hidden {mc.hidden}, {mc.num_layers} layers)",
               "projection dim": cfg.projection.dim,
               "subsets": f"{rec_aff.outputs['subsets']} of size {size}",
               "groups k": f"{k} ({'auto' if cfg.k == 'auto' else 'given'})"}
    planted = graph.provenance.get("planted_groups")
    notes = []
    if planted is not None:
        from sklearn.metrics import adjusted_rand_score

        ari = adjusted_rand_score(planted, groups)
        dataset["ARI vs planted groups"] = f"{ari:.3f}"
        notes.append(f"Planted synthetic graph: adjusted Rand index of the Grad-TAG groups against "
                     f"the planted task groups: {ari:.3f} (1 = identical, 0 = chance).")
    stage_seconds = {s: r.seconds for s, r in run.stages.items() if r.seconds is not None}
    report = Report(title=f"graphmtl run: {cfg.data}", dataset=dataset, task_names=names,
                    affinity=affinity, methods=methods, stage_seconds=stage_seconds, notes=notes)
    html_path, md_path = report.write(run.path / "report")
    atomic_write_json(run.path / "summary.json", {
        "dataset": dataset, "k": k,
        "methods": [{"name": m.name, "macro_f1": m.macro_f1, "macro_roc_auc": m.macro_auc,
                     "groups": int(len(np.unique(m.groups))), "cost_seconds": m.cost_seconds,
                     "train_seconds": m.train_seconds, "note": m.note} for m in methods],
        "stage_seconds": stage_seconds, "executed": run.executed,
        "wall_seconds_this_call": time.perf_counter() - t_run})
    return PipelineResult(run.path, groups, methods, html_path, md_path, list(run.executed))
