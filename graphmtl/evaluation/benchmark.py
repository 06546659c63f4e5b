"""The grouping benchmark: one model per group, for every grouping, against random groups.

:class:`GroupingBenchmark` is the arbiter every task-grouping method is judged by. Given a graph
and some groupings (group id per task), it trains one model per group with the shared
:class:`~graphmtl.training.Trainer` (through a :class:`~graphmtl.training.pool.SubsetTrainingPool`,
so the group models of all groupings train in parallel over the cores; by default each is
fine-tuned from the seed's all-task model, ``group_init``), scores every task with its own
group's model on the test split, and compares each grouping with

- **random groups of the same sizes** (``random_draws`` draws per seed, shared by groupings whose
  group sizes are equal), the control that decides whether a method finds anything;
- **one model on all tasks**, the user's real alternative;
- the **planted groups** where the data has them (with the adjusted Rand index of each method).

With ``rerun_draws=True`` the random draws are trained a second time with another training
seed, so :meth:`SeedComparison.partner_signal` can tell how much of a task's score across draws
its partners decide (:func:`~graphmtl.evaluation.partner_signal`), i.e. how much any grouping
can gain on this data.

Reported per method and metric (test split; checkpoints selected on the validation score of the
headline metric, ``metric``): macro AP, macro ROC-AUC, macro F1 at a per-task threshold chosen on
validation, and macro F1 at logit 0 (the papers' number, fragile with few positives). Differences
are paired per task and summarised with the interval of :mod:`graphmtl.evaluation.statistics`.

One call of :meth:`GroupingBenchmark.run_seed` evaluates one seed (one data split / base model /
estimate); :func:`summarize` combines seeds into a :class:`BenchmarkResult`.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.errors import check
from graphmtl.evaluation.partners import PartnerSignal, partner_signal
from graphmtl.evaluation.statistics import Interval, paired_difference
from graphmtl.models import ModelConfig
from graphmtl.training.config import TrainConfig
from graphmtl.training.pool import SubsetJob, SubsetTrainingPool

#: Reported test metrics, the headline first.
METRICS = ("ap", "roc_auc", "f1_tuned", "f1")
METRIC_LABELS = {"ap": "AP", "roc_auc": "ROC-AUC", "f1_tuned": "F1 (tuned threshold)",
                 "f1": "F1 at logit 0"}
ALL_TASKS = "all tasks"
RANDOM = "random groups"
#: How every group model (and random control) starts, the default first: ``all_tasks``
#: (fine-tuned from this seed's all-task model, its copied weights the first checkpoint
#: candidate) or ``scratch`` (fresh weights, the papers' protocol).
GROUP_INITS = ("all_tasks", "scratch")
#: Added to a seed's training seed for the second training of its random draws
#: (``rerun_draws``).
RERUN_SEED_SHIFT = 1000


def canonical_groups(groups: Sequence[int] | np.ndarray) -> np.ndarray:
    """Group ids renumbered 0..k-1 by first appearance (equal partitions compare equal)."""
    groups = np.asarray(groups)
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)


def size_profile(groups: np.ndarray) -> tuple[int, ...]:
    """Sorted group sizes (largest first): what a random control must match."""
    return tuple(sorted(np.bincount(canonical_groups(groups)).tolist(), reverse=True))


def random_groups(sizes: Sequence[int], draw: int, seed: int) -> np.ndarray:
    """A uniformly random partition of ``sum(sizes)`` tasks into groups of ``sizes``, seeded by
    ``(seed, draw, sizes)``."""
    ss = np.random.SeedSequence([int(seed), int(draw), *[int(s) for s in sizes]])
    perm = np.random.default_rng(ss).permutation(int(sum(sizes)))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    out = np.empty_like(labels)
    out[perm] = labels
    return out


@dataclass
class GroupingRun:
    """One grouping trained and scored in one seed.

    Attributes:
        name: the grouping's name.
        groups: group id per task, int ``[n]``.
        scores: ``{metric: [n]}`` test score of every task under its group's model (NaN where
            undefined).
        train_seconds: summed wall time of its group models (in their workers).
        val_scores: ``{metric: [n]}`` the same on the validation split (the metrics the
            trainer scores there: ``ap``, ``roc_auc``, ``f1``).
    """

    name: str
    groups: np.ndarray
    scores: dict[str, np.ndarray]
    train_seconds: float
    val_scores: dict[str, np.ndarray] = field(default_factory=dict)

    def macro(self, metric: str) -> float:
        v = self.scores[metric]
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


@dataclass
class SeedComparison:
    """Everything one seed of the benchmark trained (see :meth:`GroupingBenchmark.run_seed`)."""

    seed: int
    task_names: list[str]
    methods: dict[str, GroupingRun]
    random: dict[tuple[int, ...], list[GroupingRun]]
    all_tasks: GroupingRun
    planted: np.ndarray | None = None
    costs: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the random draws trained again with training seed ``seed + RERUN_SEED_SHIFT``
    #: (``rerun_draws``; empty otherwise), same keys and order as ``random``.
    random_rerun: dict[tuple[int, ...], list[GroupingRun]] = field(default_factory=dict)

    def control(self, name: str) -> list[GroupingRun]:
        """The random draws matching method ``name``'s group sizes."""
        return self.random[size_profile(self.methods[name].groups)]

    def partner_signal(self, name: str, metric: str = "ap", permutations: int = 200
                       ) -> PartnerSignal:
        """:func:`~graphmtl.evaluation.partner_signal` on the random draws of method ``name``'s
        group sizes: both trainings where the draws were trained twice (``rerun_draws``),
        else the one (``reproducibility`` NaN); its permutations are seeded by ``seed``."""
        profile = size_profile(self.methods[name].groups)
        trainings = [self.random[profile]] + ([self.random_rerun[profile]]
                                              if profile in self.random_rerun else [])
        for draws in trainings:
            check(all(metric in d.val_scores for d in draws),
                  f"partner signal: the draws have no validation {metric}")
        return partner_signal([[d.val_scores[metric] for d in t] for t in trainings],
                              [[d.scores[metric] for d in t] for t in trainings],
                              permutations=permutations, seed=self.seed)


class GroupingBenchmark:
    """Train and compare groupings (scikit-learn style parameters, one call per seed).

    Args:
        model_config, train_config: every group model's settings (the training seed is set per
            benchmark seed).
        metric: the headline metric (one of :data:`METRICS` except the F1s) and the validation
            metric that selects every model's checkpoint.
        random_draws: ``R`` random groupings per distinct group-size profile and seed.
        workers: processes training group models in parallel.
        level: confidence level of the intervals.
        group_init: one of :data:`GROUP_INITS`. ``all_tasks`` (default) trains the all-task
            model first and fine-tunes every other model (group models and random controls
            alike) from it: a group model then starts where the user's alternative ends, and its
            checkpoint is selected on its own tasks' validation score. ``scratch``: every model
            starts from fresh weights.
        rerun_draws: also train every random draw a second time, with training seed
            ``seed + RERUN_SEED_SHIFT`` (same start: the same all-task model when fine-tuning),
            for :meth:`SeedComparison.partner_signal`; doubles the controls' cost.
        progress: a tqdm bar over the models of a seed.
    """

    def __init__(self, model_config: ModelConfig | None = None,
                 train_config: TrainConfig | None = None, *, metric: str = "ap",
                 random_draws: int = 5, workers: int = 2, level: float = 0.95,
                 group_init: str = GROUP_INITS[0], rerun_draws: bool = False,
                 progress: bool = True):
        check(metric in ("ap", "roc_auc"),
              f"benchmark metric: expected ap or roc_auc, got {metric!r}")
        check(random_draws >= 1, f"benchmark random_draws: must be >= 1, got {random_draws}")
        check(workers >= 1, f"benchmark workers: must be >= 1, got {workers}")
        check(0 < level < 1, f"benchmark level: must lie in (0, 1), got {level}")
        check(group_init in GROUP_INITS, f"benchmark group_init: unknown {group_init!r} "
                                         f"(choose from {', '.join(GROUP_INITS)})")
        self.model_config = model_config or ModelConfig()
        self.train_config = (train_config or TrainConfig()).replace(metric=metric)
        self.metric = metric
        self.random_draws = random_draws
        self.workers = workers
        self.level = level
        self.group_init = group_init
        self.rerun_draws = rerun_draws
        self.progress = progress

    def run_seed(self, graph: MultiTaskGraph, groupings: Mapping[str, Sequence[int]], *,
                 seed: int = 0, planted: Sequence[int] | None = None,
                 costs: Mapping[str, Mapping[str, float]] | None = None,
                 results: str | os.PathLike | None = None,
                 save_models: Mapping[str, str | os.PathLike] | None = None) -> SeedComparison:
        """Train every grouping's group models, the random controls and one all-task model.

        Args:
            graph: the data (its split is this seed's).
            groupings: ``{name: group id per task [n]}``.
            seed: training seed of every model of this seed, and seed of the random draws.
            planted: the true grouping, if known (scored as a method named ``planted groups``
                unless ``groupings`` has it, and used for ARIs).
            costs: ``{name: {"wall_s", "cpu_s"}}`` what obtaining each grouping cost.
            results: the pool's JSON-lines file (resume; models shared between calls). With
                ``group_init="all_tasks"`` the fine-tuned models go to ``<results stem>
                .tuned-seed<seed>.jsonl`` and the all-task checkpoints to ``<results stem>
                .all_tasks/seed<seed>/``.
            save_models: ``{name: directory}``: keep the checkpoints of that grouping's models
                in ``directory/group_<g>/model.pt``.
        """
        n = graph.num_tasks
        groupings = {name: canonical_groups(g) for name, g in groupings.items()}
        if planted is not None:
            planted = canonical_groups(planted)
            groupings.setdefault("planted groups", planted)
        for name, g in groupings.items():
            check(g.shape == (n,), f"grouping {name!r}: expected one group id per task ({n}), "
                                   f"got shape {g.shape}")
        check(ALL_TASKS not in groupings and RANDOM not in groupings,
              f"grouping names {ALL_TASKS!r} and {RANDOM!r} are reserved")
        profiles = {size_profile(g) for g in groupings.values()}
        random = {p: [random_groups(p, r, seed) for r in range(self.random_draws)]
                  for p in sorted(profiles)}
        rerun = seed + RERUN_SEED_SHIFT
        # (name, groups, where to keep its models, training seed)
        entries: list[tuple[str, np.ndarray, str | None, int]] = [
            (name, g, None if save_models is None or name not in save_models
             else str(save_models[name]), seed) for name, g in groupings.items()]
        entries.append((ALL_TASKS, np.zeros(n, dtype=np.int64), None, seed))
        for p, draws in random.items():
            entries += [(f"{RANDOM} {p} #{r}", g, None, seed) for r, g in enumerate(draws)]
            if self.rerun_draws:
                entries += [(f"{RANDOM} {p} #{r} (seed {rerun})", g, None, rerun)
                            for r, g in enumerate(draws)]

        jobs, spans = [], []
        for name, g, save, train_seed in entries:
            lo = len(jobs)
            for gid in range(int(g.max()) + 1):
                tasks = tuple(graph.task_names[i] for i in np.flatnonzero(g == gid))
                jobs.append(SubsetJob(tasks, seed=train_seed, save_to=None if save is None
                                      else str(Path(save) / f"group_{gid}")))
            spans.append((lo, len(jobs)))
        if self.group_init == "scratch":
            records = self._pool(seed).run(graph, jobs, results=results)
        else:
            base = spans[[e[0] for e in entries].index(ALL_TASKS)][0]
            # the all-task checkpoint is kept beside the results, else only for this call
            with (tempfile.TemporaryDirectory(prefix="graphmtl-all-tasks-") if results is None
                  else nullcontext(Path(results).with_suffix(".all_tasks"))) as root:
                records = self._fine_tuned(graph, jobs, base, seed, results, Path(root))

        runs = []
        pos = {t: i for i, t in enumerate(graph.task_names)}
        for (name, g, _, _), (lo, hi) in zip(entries, spans):
            split_scores = {split: {m: np.full(n, np.nan) for m in METRICS}
                            for split in ("test", "val")}
            seen, seconds = set(), 0.0
            for rec in records[lo:hi]:
                for split, scores in split_scores.items():
                    for m in METRICS:
                        for task, v in rec["scores"][split].get(m, {}).items():
                            scores[m][pos[task]] = np.nan if v is None else v
                if rec["job"] not in seen:
                    seen.add(rec["job"])
                    seconds += rec["seconds"]
            val = {m: v for m, v in split_scores["val"].items() if np.isfinite(v).any()}
            runs.append(GroupingRun(name, g, split_scores["test"], seconds, val))
        by_name = {r.name: r for r in runs}
        return SeedComparison(
            seed=seed, task_names=list(graph.task_names),
            methods={name: by_name[name] for name in groupings},
            random={p: [by_name[f"{RANDOM} {p} #{r}"] for r in range(len(draws))]
                    for p, draws in random.items()},
            all_tasks=by_name[ALL_TASKS], planted=planted,
            costs={k: dict(v) for k, v in (costs or {}).items()},
            random_rerun={p: [by_name[f"{RANDOM} {p} #{r} (seed {rerun})"]
                              for r in range(len(draws))]
                          for p, draws in random.items()} if self.rerun_draws else {})

    def _pool(self, seed: int, init_from: Path | None = None, threads: int = 1
              ) -> SubsetTrainingPool:
        return SubsetTrainingPool(self.model_config, self.train_config, workers=self.workers,
                                  threads=threads, init_from=init_from, splits=("val", "test"),
                                  progress=self.progress,
                                  desc=f"group models (seed {seed})")

    def _fine_tuned(self, graph: MultiTaskGraph, jobs: list[SubsetJob], base: int, seed: int,
                    results: str | os.PathLike | None, root: Path) -> list[dict[str, Any]]:
        """``group_init="all_tasks"``: ``jobs[base]``, the all-task model, first (its checkpoint
        in ``root/seed<seed>``), then every other job warm-started from it; records in job
        order."""
        base_job = SubsetJob(jobs[base].tasks, seed=seed, save_to=str(root / f"seed{seed}"))
        # alone in its pool: it gets the threads the workers would have had
        record = self._pool(seed, threads=self.workers).run(graph, [base_job],
                                                            results=results)[0]
        tuned = self._pool(seed, init_from=Path(base_job.save_to) / "model.pt").run(
            graph, jobs[:base] + jobs[base + 1:], results=None if results is None
            else Path(results).with_suffix(f".tuned-seed{seed}.jsonl"))   # one base per file
        return tuned[:base] + [record] + tuned[base:]


# ---------------------------------------------------------------------- summary over seeds
@dataclass
class MethodSummary:
    """One grouping method over all seeds.

    Attributes:
        name: the method.
        groups: number of groups per seed.
        macro: ``{metric: mean over seeds of the macro test score}``.
        vs_random, vs_all_tasks: ``{metric: Interval}`` paired per-task differences.
        ari: mean adjusted Rand index against the planted groups (``None`` if unknown) and
            ``ari_per_seed``.
        wall_s, cpu_s: mean cost of obtaining the groups (as given to ``run_seed``).
        train_s: mean summed training time of its group models.
    """

    name: str
    groups: list[int]
    macro: dict[str, float]
    vs_random: dict[str, Interval]
    vs_all_tasks: dict[str, Interval]
    ari: float | None
    ari_per_seed: list[float]
    wall_s: float | None
    cpu_s: float | None
    train_s: float

    def verdict(self, metric: str = "ap") -> str:
        return self.vs_random[metric].verdict("random groups of the same sizes",
                                              METRIC_LABELS[metric])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "groups": self.groups, "macro": self.macro,
                "vs_random": {m: v.to_dict() for m, v in self.vs_random.items()},
                "vs_all_tasks": {m: v.to_dict() for m, v in self.vs_all_tasks.items()},
                "ari": self.ari, "ari_per_seed": self.ari_per_seed, "wall_s": self.wall_s,
                "cpu_s": self.cpu_s, "train_s": self.train_s}


@dataclass
class BenchmarkResult:
    """The benchmark over seeds: one :class:`MethodSummary` per grouping method, plus the
    controls' macro scores."""

    methods: list[MethodSummary]
    all_tasks: dict[str, float]
    random: dict[str, float]
    seeds: list[int]
    draws: int
    level: float
    metric: str
    design: str = "seeds"

    def method(self, name: str) -> MethodSummary:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "draws": self.draws, "level": self.level,
                "metric": self.metric, "all_tasks": self.all_tasks, "random": self.random,
                "methods": [m.to_dict() for m in self.methods], "design": self.design,
                "interval": self.interval_text()}

    def interval_text(self) -> str:
        """Which interval the differences carry (see :mod:`graphmtl.evaluation.statistics`)."""
        if len(self.seeds) < 2:
            return "Student t over the random draws of the one seed"
        if self.design == "runs":
            return (f"Welch over the independent training runs ({len(self.seeds)} seeds of the "
                    f"method, {len(self.seeds)} x {self.draws} of random groups)")
        return f"Student t over the {len(self.seeds)} per-seed mean paired differences"

    def table(self, metrics: Sequence[str] = METRICS, scale: float = 100.0) -> str:
        """A markdown table: macro scores, differences to random groups and to one model on all
        tasks with their intervals, ARI, cost."""
        pct = lambda v: "–" if v is None or not np.isfinite(v) else f"{scale * v:.1f}"  # noqa
        def iv(x: Interval) -> str:
            if not np.isfinite(x.mean):
                return "–"
            if not x.defined:
                return f"{scale * x.mean:+.1f}"
            mark = "**" if x.lo > 0 else ""
            return f"{mark}{scale * x.mean:+.1f} [{scale * x.lo:+.1f}, {scale * x.hi:+.1f}]{mark}"
        head = ["method", "groups"] + [METRIC_LABELS[m] for m in metrics] + \
            [f"{METRIC_LABELS[m]} − random" for m in metrics] + \
            [f"{METRIC_LABELS[metrics[0]]} − all tasks", "ARI", "cost (wall / CPU s)"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for m in self.methods:
            cost = "–" if m.wall_s is None else f"{m.wall_s:.0f} / {m.cpu_s:.0f}"
            ari = "–" if m.ari is None else f"{m.ari:.2f}"
            sizes = "/".join(str(g) for g in sorted(set(m.groups)))
            lines.append("| " + " | ".join(
                [m.name, sizes] + [pct(m.macro[x]) for x in metrics]
                + [iv(m.vs_random[x]) for x in metrics] + [iv(m.vs_all_tasks[metrics[0]]),
                                                           ari, cost]) + " |")
        for label, row in ((ALL_TASKS + " (one model)", self.all_tasks),
                           (RANDOM + " (mean of draws)", self.random)):
            lines.append("| " + " | ".join([f"*{label}*", ""] + [pct(row[x]) for x in metrics]
                                           + [""] * (len(metrics) + 3)) + " |")
        return "\n".join(lines)


def summarize(runs: Sequence[SeedComparison], level: float = 0.95, metric: str = "ap",
              design: str = "seeds") -> BenchmarkResult:
    """Combine seeds (each a :class:`SeedComparison` with the same methods and tasks).

    ``design``: ``"seeds"`` when the seeds resample the split, ``"runs"`` when they vary only
    the training (see :func:`~graphmtl.evaluation.paired_difference`)."""
    from sklearn.metrics import adjusted_rand_score

    check(len(runs) >= 1, "benchmark: no seeds to summarise")
    names = list(runs[0].methods)
    tasks = runs[0].task_names
    for r in runs[1:]:
        check(list(r.methods) == names and r.task_names == tasks,
              f"benchmark: seed {r.seed} has other methods or tasks than seed {runs[0].seed}")
    draws = min(len(d) for r in runs for d in r.random.values())
    out = []
    for name in names:
        vs_random, vs_all, macro = {}, {}, {}
        for m in METRICS:
            method = np.stack([r.methods[name].scores[m] for r in runs])
            control = np.stack([np.stack([d.scores[m] for d in r.control(name)[:draws]])
                                for r in runs])
            alltask = np.stack([r.all_tasks.scores[m] for r in runs])
            vs_random[m] = paired_difference(method, control, level, design)
            vs_all[m] = paired_difference(method, alltask, level, design)
            macro[m] = float(np.mean([r.methods[name].macro(m) for r in runs]))
        aris = [float(adjusted_rand_score(r.planted, r.methods[name].groups))
                for r in runs if r.planted is not None]
        costs = [r.costs.get(name) for r in runs]
        known = [c for c in costs if c]
        out.append(MethodSummary(
            name=name, groups=[int(r.methods[name].groups.max()) + 1 for r in runs],
            macro=macro, vs_random=vs_random, vs_all_tasks=vs_all,
            ari=float(np.mean(aris)) if aris else None, ari_per_seed=aris,
            wall_s=float(np.mean([c["wall_s"] for c in known])) if known else None,
            cpu_s=float(np.mean([c["cpu_s"] for c in known])) if known else None,
            train_s=float(np.mean([r.methods[name].train_seconds for r in runs]))))
    all_tasks = {m: float(np.mean([r.all_tasks.macro(m) for r in runs])) for m in METRICS}
    rnd = {m: float(np.mean([d.macro(m) for r in runs for ds in r.random.values() for d in ds]))
           for m in METRICS}
    return BenchmarkResult(methods=out, all_tasks=all_tasks, random=rnd,
                           seeds=[r.seed for r in runs], draws=draws, level=level,
                           metric=metric, design=design)
