"""``run_pipeline``: the named stages of ``graphmtl run``, in order.

=============  ===================================================================================
``data``        load the dataset spec and freeze it as ``graph.npz``
``base``        one model on all tasks (only for affinity methods that read it)
``projection``  projected gradients of the base model (only for the gradient methods)
``affinity``    the task affinity of ``config.affinity.method``
``clustering``  ``k`` groups from the affinity (SDP)
``pairwise``    the naive pairwise-affinity baseline (``config.compare.pairwise``)
``groups``      one model per group for every grouping, against random groups of the same sizes
                and one model on all tasks, over ``config.compare.seeds`` training seeds
``report``      the HTML / markdown report and ``summary.json``
=============  ===================================================================================

Each stage is a function ``(context, stage directory) -> outputs`` registered in :data:`STAGES`
with the inputs its cache key hashes and the files it writes (:attr:`Stage.files`); readers get
those paths from :meth:`RunContext.file`, never by rebuilding them. The
:class:`~graphmtl.pipeline.stages.RunDirectory` runs a stage only when its key changed or its
files do not check out, so a re-run skips finished stages and a killed run resumes.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from graphmtl.data import MultiTaskGraph
from graphmtl.evaluation import METRICS
from graphmtl.pipeline.config import PipelineConfig
from graphmtl.pipeline.methods import METHODS, MethodInputs, method_label
from graphmtl.pipeline.report import MethodResult, Report
from graphmtl.pipeline.stages import RunDirectory, StageRecord
from graphmtl.utils.io import atomic_path, atomic_write_json, read_json
from graphmtl.utils.timing import Stopwatch

PAIRWISE = "pairwise affinity (naive)"
SINGLE_TASK = "one model per task"


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns.

    Attributes:
        run_dir: the run directory.
        groups: the method's group id per task, int ``[n]``.
        methods: the comparison rows: the method's groups first, then the other groupings, then
            the controls (one model on all tasks, random groups).
        report_html, report_md: the report files.
        executed: stages run in this call (the others were reused).
        comparison: the full :class:`~graphmtl.evaluation.BenchmarkResult` as JSON.
    """

    run_dir: Path
    groups: np.ndarray
    methods: list[MethodResult]
    report_html: Path
    report_md: Path
    executed: list[str]
    comparison: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        """The comparison as plain text: test AP and tuned-threshold F1 (%), the differences to
        random groups of the same sizes and to one model on all tasks with their intervals, the
        ARI against planted groups, the grouping cost; then each method's verdict."""
        def iv(x) -> str:
            if x is None or not np.isfinite(x.mean):
                return ""
            if not x.defined:
                return f"{100 * x.mean:+.1f}"
            return f"{100 * x.mean:+.1f} [{100 * x.lo:+.1f}, {100 * x.hi:+.1f}]"

        head = ["method", "groups", "AP %", "F1 %", "AP - random [95% CI]",
                "AP - all tasks [95% CI]", "ARI", "grouping cost"]
        rows = []
        for m in self.methods:
            control = m.vs_random is None
            rows.append([m.name, "" if not m.groups.size else str(len(np.unique(m.groups))),
                         f"{100 * m.macro['ap']:.1f}", f"{100 * m.macro['f1_tuned']:.1f}",
                         "" if control else iv(m.vs_random["ap"]),
                         "" if control else iv(m.vs_all_tasks["ap"]),
                         "" if m.ari is None else f"{m.ari:.2f}",
                         "" if control else f"{m.cost_seconds:.1f} s"])
        widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
        fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa
        lines = [fmt(head)] + [fmt(r) for r in rows] + [""]
        lines += [f"{m.name}: {m.verdict()}." for m in self.methods if m.vs_random is not None]
        return "\n".join(lines)


# ---------------------------------------------------------------------- context and stages
@dataclass
class RunContext:
    """What the stages share: the configuration, the run directory and the loaded graph."""

    config: PipelineConfig
    run: RunDirectory
    quiet: bool = False
    progress: bool = True
    records: dict[str, StageRecord] = field(default_factory=dict)
    _graph: MultiTaskGraph | None = None

    @property
    def graph(self) -> MultiTaskGraph:
        """The frozen dataset of the ``data`` stage (loaded once)."""
        if self._graph is None:
            self._graph = MultiTaskGraph.load(self.file("data", "graph"))
        return self._graph

    def file(self, stage: str, name: str) -> Path:
        """The path of ``stage``'s file ``name`` (see :attr:`Stage.files`)."""
        return self.run.path / stage / STAGE_BY_NAME[stage].files[name]

    def key(self, stage: str) -> str | None:
        """The cache key of a finished stage (``None`` if it did not run)."""
        rec = self.records.get(stage)
        return None if rec is None else rec.key

    def log(self, msg: str) -> None:
        if not self.quiet:
            print(f"graphmtl: {msg}", file=sys.stderr, flush=True)

    def needs(self, what: str) -> bool:
        """Whether the affinity method reads ``base`` or ``store``."""
        return what in METHODS[self.config.affinity.method].needs


@dataclass(frozen=True)
class Stage:
    """One named stage.

    Attributes:
        name: the stage (also its directory).
        inputs: ``context -> dict`` everything its result depends on (config slices and the
            keys of the stages it reads); its hash is the cache key.
        run: ``(context, stage directory) -> outputs`` the work (JSON-ready outputs).
        describe: ``context -> str`` the stage line.
        enabled: ``context -> bool`` whether this run needs the stage.
        files: ``{name: path relative to the stage directory}`` of what it writes.
    """

    name: str
    inputs: Callable[[RunContext], dict[str, Any]]
    run: Callable[[RunContext, Path], dict[str, Any]]
    describe: Callable[[RunContext], str]
    enabled: Callable[[RunContext], bool] = lambda ctx: True
    files: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------- data
def _data_inputs(ctx: RunContext) -> dict[str, Any]:
    spec = ctx.config.data
    inputs: dict[str, Any] = {"data": spec, "root": ctx.config.data_root}
    path = Path(spec)
    if os.sep in spec or spec.endswith((".npz", ".pt")):
        if path.is_file():   # a file spec: its content, not only its name, decides the data
            from graphmtl.utils.io import file_digest

            inputs["sha256"] = file_digest(path)
    return inputs


def _data(ctx: RunContext, d: Path) -> dict[str, Any]:
    from graphmtl.data import load_dataset

    graph = load_dataset(ctx.config.data, root=ctx.config.data_root)
    ctx.config.validate_against(graph)
    graph.save(d / "graph.npz")
    return {"summary": graph.summary()}


# ---------------------------------------------------------------------- base model
def _base(ctx: RunContext, d: Path) -> dict[str, Any]:
    from graphmtl.training import Trainer, evaluate

    cfg = ctx.config
    with Stopwatch() as sw:
        result = Trainer(cfg.model, cfg.train).fit(ctx.graph, "all", out_dir=d, resume=True,
                                                   progress=ctx.progress)
    test = evaluate(result.model, ctx.graph, "all", split="test")
    atomic_write_json(d / "test_metrics.json", test.to_dict())
    # The trainer's timings add up every call of an interrupted and resumed training.
    return {"best_epoch": result.best_epoch, "test_macro_ap": test.macro_ap,
            "work_seconds": result.timings["train_s"] + result.timings["eval_s"],
            **sw.to_dict()}


# ---------------------------------------------------------------------- projection
def _projection(ctx: RunContext, d: Path) -> dict[str, Any]:
    from graphmtl.projection import GradientProjector
    from graphmtl.training import load_checkpoint

    model = load_checkpoint(ctx.file("base", "model")).model
    with Stopwatch() as sw:
        GradientProjector(ctx.config.projection).project(model, ctx.graph, d / "store",
                                                         resume=True, progress=ctx.progress)
    return sw.to_dict()


# ---------------------------------------------------------------------- affinity
def _affinity_inputs(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.config
    inputs: dict[str, Any] = {"data": ctx.key("data"), "affinity": vars(cfg.affinity)}
    if ctx.needs("base"):
        inputs["base"] = ctx.key("base")
    if ctx.needs("store"):
        inputs["projection"] = ctx.key("projection")
    if cfg.affinity.method == "trained":   # trains subset models with the run's settings
        inputs |= {"model": cfg.model.to_dict(), "train": cfg.train.to_dict(),
                   "workers": cfg.compare.workers}
    return inputs


def _affinity(ctx: RunContext, d: Path) -> dict[str, Any]:
    cfg = ctx.config.affinity
    inp = MethodInputs(graph=ctx.graph, config=ctx.config,
                       base_checkpoint=ctx.file("base", "model") if ctx.needs("base") else None,
                       store=ctx.file("projection", "store") if ctx.needs("store") else None)
    with Stopwatch() as sw:
        est = METHODS[cfg.method].estimate(inp, cfg, d)
    with atomic_path(d / "affinity.npy") as tmp:
        np.save(tmp, est.affinity)
    for name, arr in est.arrays.items():
        with atomic_path(d / f"{name}.npy") as tmp:
            np.save(tmp, arr)
    # The summary names the tasks, so `graphmtl cluster` can label its groups.
    atomic_write_json(d / "summary.json", {"method": cfg.method, "label": method_label(cfg),
                                           "task_names": ctx.graph.task_names, **est.info})
    return {"method": cfg.method, **sw.to_dict(), **{k: v for k, v in est.info.items()
                                                     if k in ("subsets", "subset_size")}}


# ---------------------------------------------------------------------- clustering
def _cluster(A: np.ndarray, k: int | str, solver: str, names: list[str],
             device: str | None = None) -> dict[str, Any]:
    from graphmtl.clustering import TaskClustering

    tcl = TaskClustering(k=k, solver=solver,
                         device=None if device in (None, "cpu") else device).fit(A)
    sizes = np.bincount(tcl.labels_)
    if tcl.k_ >= 3 and (sizes.min() == 1 or sizes.max() > len(names) / 2):
        warnings.warn(f"degenerate groups: sizes {sorted(sizes.tolist(), reverse=True)} for "
                      f"{len(names)} tasks (the affinity may carry little signal)",
                      RuntimeWarning, stacklevel=2)
    groups = {int(g): [names[i] for i in np.flatnonzero(tcl.labels_ == g)]
              for g in range(tcl.k_)}
    return {"labels": tcl.labels_.tolist(), "task_names": names, "groups": groups,
            "k": int(tcl.k_), "sdp_objective": tcl.sdp_objective_,
            "rounded_objective": tcl.rounded_objective_, "gap": tcl.gap_,
            "solver": tcl.solver_, "timings": tcl.timings_}


def _clustering(ctx: RunContext, d: Path) -> dict[str, Any]:
    A = np.load(ctx.file("affinity", "affinity"))
    with Stopwatch() as sw:
        out = _cluster(A, ctx.config.k, ctx.config.cluster_solver, ctx.graph.task_names,
                       ctx.config.train.device)
    atomic_write_json(d / "groups.json", out)
    return {"k": out["k"], "sizes": sorted(np.bincount(out["labels"]).tolist(), reverse=True),
            **sw.to_dict()}


# ---------------------------------------------------------------------- pairwise baseline
def _pairwise_inputs(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.config
    return {"data": ctx.key("data"), "model": cfg.model.to_dict(), "train": cfg.train.to_dict(),
            "pairs": cfg.compare.num_pairs(ctx.graph.num_tasks), "seed": cfg.seed,
            "k": ctx.records["clustering"].outputs["k"], "solver": cfg.cluster_solver}


def _pairwise(ctx: RunContext, d: Path) -> dict[str, Any]:
    from graphmtl.affinity import (TrainedSubsetScores, pair_subsets, pairwise_affinity,
                                   symmetrize)

    cfg, graph = ctx.config, ctx.graph
    n = graph.num_tasks
    total = n * (n - 1) // 2
    pairs = cfg.compare.num_pairs(n)
    M = pair_subsets(n, None if pairs >= total else pairs, seed=cfg.seed, singletons=True)
    with Stopwatch() as sw:
        scores = TrainedSubsetScores(cfg.model, cfg.train, workers=cfg.compare.workers,
                                     progress=ctx.progress).fit(
            graph, M, results=d / "pair_scores.jsonl").result_
        A = symmetrize(pairwise_affinity(M, scores.scores, relative=True))
        out = _cluster(A, ctx.records["clustering"].outputs["k"], cfg.cluster_solver,
                       graph.task_names, cfg.train.device)
    with atomic_path(d / "affinity.npy") as tmp:
        np.save(tmp, A)
    atomic_write_json(d / "groups.json", out)
    # Every model's own time is recorded with it, so resumed runs count all of them; the cost
    # of all pairs is the mean per model times their number.
    per_model = float(scores.seconds.mean())
    return {"pairs_trained": pairs, "pairs_total": total, "models": int(M.shape[0]),
            "model_seconds": float(scores.seconds.sum()),
            "all_pairs_seconds": per_model * (total + n), **sw.to_dict()}


# ---------------------------------------------------------------------- groups and controls
def _groups_inputs(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.config
    return {"data": ctx.key("data"), "clustering": ctx.key("clustering"),
            "pairwise": ctx.key("pairwise"), "model": cfg.model.to_dict(),
            "train": cfg.train.to_dict(),
            "compare": {k: v for k, v in vars(cfg.compare).items() if k != "pairwise_pairs"}}


def _groupings(ctx: RunContext) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]],
                                         dict[str, str]]:
    """The groupings to judge, what each cost to obtain, and how that cost was measured."""
    cfg, n = ctx.config, ctx.graph.num_tasks
    label = method_label(cfg.affinity)
    stages = [s for s in ("base", "projection") if s in ctx.records] + ["affinity", "clustering"]
    cost = {"wall_s": sum(ctx.records[s].outputs.get("wall_s", 0.0) for s in stages),
            "cpu_s": sum(ctx.records[s].outputs.get("cpu_s", 0.0) for s in stages)}
    groupings = {label: np.array(read_json(ctx.file("clustering", "groups"))["labels"])}
    costs = {label: cost}
    notes = {label: "measured: " + " + ".join(stages)}
    if "pairwise" in ctx.records:
        o = ctx.records["pairwise"].outputs
        groupings[PAIRWISE] = np.array(read_json(ctx.file("pairwise", "groups"))["labels"])
        sampled = o["pairs_trained"] < o["pairs_total"]
        costs[PAIRWISE] = {"wall_s": o["all_pairs_seconds"] if sampled else o["wall_s"],
                           "cpu_s": o["all_pairs_seconds"] if sampled else o["cpu_s"]}
        notes[PAIRWISE] = (f"{o['pairs_trained']} of {o['pairs_total']} pairs + {n} single "
                           "tasks trained; cost extrapolated to all pairs" if sampled else
                           f"all {o['pairs_total']} pairs + {n} single tasks trained")
    if cfg.compare.single_task:
        groupings[SINGLE_TASK] = np.arange(n)
        notes[SINGLE_TASK] = "no grouping"
    return groupings, costs, notes


def _groups(ctx: RunContext, d: Path) -> dict[str, Any]:
    from graphmtl.evaluation import GroupingBenchmark, mean_partner_signal, summarize

    cfg, graph = ctx.config, ctx.graph
    groupings, costs, notes = _groupings(ctx)
    label = next(iter(groupings))
    planted = graph.provenance.get("planted_groups")
    if planted is not None and len(planted) != graph.num_tasks:
        planted = None
    bench = GroupingBenchmark(cfg.model, cfg.train, metric=cfg.train.metric
                              if cfg.train.metric in ("ap", "roc_auc") else "ap",
                              random_draws=cfg.compare.random_draws,
                              workers=cfg.compare.workers, group_init=cfg.compare.group_init,
                              rerun_draws=cfg.compare.partner_signal, progress=ctx.progress)
    runs = []
    for s in range(cfg.compare.seeds):
        runs.append(bench.run_seed(
            graph, groupings, seed=cfg.train.seed + s, planted=planted, costs=costs,
            results=d / "models.jsonl",
            save_models={label: d / "models"} if s == 0 else None))
    # One split and one grouping; the seeds vary only the training: Welch over the runs.
    result = summarize(runs, metric=bench.metric, design="runs")
    per_task = {name: {m: np.nanmean(np.stack([r.methods[name].scores[m] for r in runs]), 0)
                       for m in METRICS} for name in runs[0].methods}
    per_task["all tasks"] = {m: np.nanmean(np.stack([r.all_tasks.scores[m] for r in runs]), 0)
                             for m in METRICS}
    if planted is not None:
        notes["planted groups"] = "reference: the groups the generator planted"
    signal = {}
    if cfg.compare.partner_signal:      # on the draws of the method's group sizes
        per_seed = [r.partner_signal(label, metric=bench.metric) for r in runs]
        signal = {"mean": mean_partner_signal(per_seed).to_dict(),
                  "per_seed": [x.to_dict() for x in per_seed]}
    atomic_write_json(d / "comparison.json", {
        "result": result.to_dict(), "notes": notes, "task_names": graph.task_names,
        "groupings": {k: r.groups.tolist() for k, r in runs[0].methods.items()},
        "per_task": {k: {m: v.tolist() for m, v in d_.items()} for k, d_ in per_task.items()},
        "partner_signal": signal})
    return {"method": label, "verdict": result.method(label).verdict(),
            "seeds": len(runs), "draws": result.draws}


# ---------------------------------------------------------------------- report
def _report(ctx: RunContext, d: Path) -> dict[str, Any]:
    report, summary = _build_report(ctx)
    html_path, md_path = report.write(d)
    atomic_write_json(d / "summary.json", summary)
    return {"html": html_path.name, "md": md_path.name}


def _build_report(ctx: RunContext) -> tuple[Report, dict[str, Any]]:
    from graphmtl.evaluation import Interval

    cfg, graph = ctx.config, ctx.graph
    comp = read_json(ctx.file("groups", "comparison"))
    res, notes_by, per_task = comp["result"], comp["notes"], comp["per_task"]
    nan = float("nan")

    def interval(d: dict) -> Interval:
        v = {k: (nan if d[k] is None else d[k]) for k in ("mean", "lo", "hi")}
        return Interval(v["mean"], v["lo"], v["hi"], d["level"], d["seeds"], d["draws"],
                        d["kind"], tuple(d["per_seed"]))

    methods = []
    for m in res["methods"]:
        methods.append(MethodResult(
            name=m["name"], groups=np.array(comp["groupings"][m["name"]]),
            scores={k: np.array(v, dtype=float) for k, v in per_task[m["name"]].items()},
            macro=m["macro"], vs_random={k: interval(v) for k, v in m["vs_random"].items()},
            vs_all_tasks={k: interval(v) for k, v in m["vs_all_tasks"].items()}, ari=m["ari"],
            cost_seconds=m["wall_s"] or 0.0, cpu_seconds=m["cpu_s"] or 0.0,
            train_seconds=m["train_s"], note=notes_by.get(m["name"], "")))
    n = graph.num_tasks
    methods.append(MethodResult("all tasks (one model)", np.zeros(n, dtype=int),
                                {k: np.array(v, dtype=float)
                                 for k, v in per_task["all tasks"].items()},
                                res["all_tasks"], note="control: no grouping"))
    methods.append(MethodResult("random groups (mean of draws)", np.zeros(0, dtype=int),
                                {k: np.full(n, nan) for k in METRICS}, res["random"],
                                note=f"control: {res['draws']} draws per seed"))
    main = methods[0]
    summary = ctx.records["data"].outputs["summary"]
    aff_out = ctx.records["affinity"].outputs
    dataset = {"spec": cfg.data, "nodes": summary["nodes"], "edges": summary["edges"],
               "tasks": summary["tasks"], "features": summary["features"],
               "model": f"{cfg.model.encoder} (hidden {cfg.model.hidden}); selection on "
                        f"validation {cfg.train.metric}"
                        + ("; every model but the all-task one fine-tuned from it"
                           if cfg.compare.group_init == "all_tasks" else ""),
               "affinity": main.name + (f" ({aff_out['subsets']} subsets of "
                                        f"{aff_out['subset_size']})" if "subsets" in aff_out
                                        else ""),
               "groups k": f"{ctx.records['clustering'].outputs['k']} "
                           f"({'auto' if cfg.k == 'auto' else 'given'})",
               "comparison": f"{res['draws']} random draws per seed, seeds {res['seeds']}"}
    notes = [f"Every number is a test score; each difference is paired per task and its "
             f"{int(100 * res['level'])} % interval is "
             f"{res.get('interval', 'over the training seeds')}.",
             f"{main.name}: {main.verdict()}."]
    if main.ari is not None:
        notes.append(f"Planted groups are known: adjusted Rand index of {main.name} against "
                     f"them {main.ari:.2f} (1 = identical, 0 = chance).")
    if comp.get("partner_signal"):
        from graphmtl.evaluation import PartnerSignal

        notes.append("Partner signal (the random draws trained twice): "
                     + PartnerSignal.from_dict(comp["partner_signal"]["mean"]).describe())
    run_dir = ctx.run.path
    saved = {"groups by task name": str(ctx.file("clustering", "groups")),
             "group models (one checkpoint per group)":
                 str(ctx.file("groups", "models") / "group_<g>" / "model.pt"),
             "affinity (n x n)": str(ctx.file("affinity", "affinity")),
             "comparison (all numbers, JSON)": str(ctx.file("groups", "comparison")),
             "run manifest": str(run_dir / "manifest.json")}
    report = Report(title=f"graphmtl run: {cfg.data}", dataset=dataset,
                    task_names=graph.task_names,
                    affinity=np.load(ctx.file("affinity", "affinity")), methods=methods,
                    stage_seconds={s: r.seconds for s, r in ctx.records.items()
                                   if r.seconds is not None},
                    stage_peak_mb={s: r.peak_rss_mb for s, r in ctx.records.items()
                                   if r.peak_rss_mb is not None},
                    saved=saved, next_steps=_next_steps(cfg, main, methods), notes=notes)
    summary_json = {
        "dataset": dataset, "k": ctx.records["clustering"].outputs["k"],
        "verdict": main.verdict(),
        "methods": [{"name": m.name, "groups": int(len(np.unique(m.groups))),
                     "macro": m.macro, "verdict": m.verdict(), "cost_seconds": m.cost_seconds,
                     "train_seconds": m.train_seconds, "note": m.note} for m in methods],
        "stage_seconds": report.stage_seconds, "stage_peak_mb": report.stage_peak_mb}
    return report, summary_json


def _next_steps(cfg: PipelineConfig, main: MethodResult, methods: list[MethodResult]
                ) -> list[str]:
    steps = []
    iv = main.vs_random["ap"]
    alltask = next(m for m in methods if m.name.startswith("all tasks"))
    if iv.defined and iv.lo > 0:
        steps.append("Use the group models: graphmtl.training.load_checkpoint(path).model, one "
                     "per group (paths above); each predicts its group's tasks.")
    else:
        steps.append("The groups are not distinguishable from random groups of the same sizes "
                     "here: try more subsets (--subsets), another number of groups "
                     "(--k), or more training seeds for a tighter interval (--seeds).")
    ia = main.vs_all_tasks["ap"]
    if ia.defined and ia.hi < 0:
        steps.append(f"One model on all tasks scores higher ({100 * alltask.macro['ap']:.1f} "
                     "AP): on this data grouping does not pay; keep the all-task model.")
    steps.append("Judge other groupings (yours, or another method's) the same way: graphmtl "
                 "compare --data SPEC --groups NAME=groups.json ...")
    return steps


# ---------------------------------------------------------------------- the stage list
STAGES: list[Stage] = [
    Stage("data", _data_inputs, _data, lambda c: f"data: {c.config.data}",
          files={"graph": "graph.npz"}),
    Stage("base", lambda c: {"data": c.key("data"), "model": c.config.model.to_dict(),
                             "train": c.config.train.to_dict()},
          _base, lambda c: f"base model: {c.config.model.encoder} on all tasks",
          enabled=lambda c: c.needs("base"),
          files={"model": "model.pt", "metrics": "test_metrics.json"}),
    Stage("projection", lambda c: {"base": c.key("base"),
                                   "projection": c.config.projection.to_dict()},
          _projection, lambda c: f"projection: d = {c.config.projection.dim}",
          enabled=lambda c: c.needs("store"), files={"store": "store"}),
    Stage("affinity", _affinity_inputs, _affinity,
          lambda c: f"affinity: {method_label(c.config.affinity)}",
          files={"affinity": "affinity.npy", "summary": "summary.json",
                 "subsets": "subsets.npy", "scores": "scores.npy"}),
    Stage("clustering", lambda c: {"affinity": c.key("affinity"), "k": c.config.k,
                                   "solver": c.config.cluster_solver},
          _clustering, lambda c: f"clustering: k = {c.config.k}",
          files={"groups": "groups.json"}),
    Stage("pairwise", _pairwise_inputs, _pairwise,
          lambda c: f"pairwise baseline: {c.config.compare.num_pairs(c.graph.num_tasks)} of "
                    f"{c.graph.num_tasks * (c.graph.num_tasks - 1) // 2} pairs",
          enabled=lambda c: c.config.compare.pairwise,
          files={"groups": "groups.json", "affinity": "affinity.npy",
                 "scores": "pair_scores.jsonl"}),
    Stage("groups", _groups_inputs, _groups,
          lambda c: f"group models and controls: {c.config.compare.random_draws} random "
                    f"draws, {c.config.compare.seeds} seeds"
                    + (", fine-tuned from the all-task model"
                       if c.config.compare.group_init == "all_tasks" else ""),
          files={"comparison": "comparison.json", "models": "models",
                 "pool": "models.jsonl"}),
    Stage("report", lambda c: {s: r.key for s, r in c.records.items()}, _report,
          lambda c: "report", files={"html": "report.html", "md": "report.md",
                                     "summary": "summary.json"}),
]
STAGE_BY_NAME = {s.name: s for s in STAGES}


def _execute(stage: Stage, ctx: RunContext, d: Path) -> dict[str, Any]:
    """Run ``stage`` (called only when it is not reused)."""
    if stage.name != "data":
        # The stages past the data use PyG: importing it here (seconds, torch._dynamo included),
        # before the stage's own stopwatch, keeps that one-off cost out of the grouping cost,
        # and a re-run whose stages are all reused never pays it.
        import torch_geometric  # noqa: F401
    return stage.run(ctx, d)


def run_pipeline(config: PipelineConfig, run_dir: str | Path, *, quiet: bool = False,
                 progress: bool = True) -> PipelineResult:
    """Run (or resume) the enabled :data:`STAGES` of ``config`` in ``run_dir``.

    Each stage prints one line: ``ran (time, peak memory)`` or ``reused``. Returns a
    :class:`PipelineResult`; the report is in ``run_dir/report/``.
    """
    with RunDirectory(run_dir, config.to_dict()) as run:
        ctx = RunContext(config, run, quiet=quiet, progress=progress)
        for stage in STAGES:
            if not stage.enabled(ctx):
                continue
            t0 = time.perf_counter()
            ctx.records[stage.name] = run.run(stage.name, stage.inputs(ctx),
                                              lambda d, s=stage: _execute(s, ctx, d))
            if stage.name == "data":
                config.validate_against(ctx.graph)   # also when the data stage was reused
                from graphmtl.pipeline.plan import plan_warnings

                for message in plan_warnings(config, ctx.graph):
                    warnings.warn(message, RuntimeWarning, stacklevel=2)
            ran = stage.name in run.executed
            peak = ctx.records[stage.name].peak_rss_mb
            ctx.log(f"{stage.describe(ctx)}: "
                    + (f"ran ({time.perf_counter() - t0:.1f} s, peak {peak / 1024:.1f} GB)"
                       if ran else "reused"))
        comp = read_json(ctx.file("groups", "comparison"))
        report, _ = _build_report(ctx)
        return PipelineResult(
            run_dir=run.path, groups=report.methods[0].groups, methods=report.methods,
            report_html=ctx.file("report", "html"), report_md=ctx.file("report", "md"),
            executed=list(run.executed), comparison=comp["result"])
