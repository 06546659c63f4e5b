"""Train one multitask model per task group and score every task with its own group's model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from graphmtl.data import MultiTaskGraph
from graphmtl.errors import check
from graphmtl.models import ModelConfig
from graphmtl.training import TaskMetrics, TrainConfig
from graphmtl.training.pool import SubsetJob, SubsetTrainingPool, score_matrix


@dataclass
class GroupedModels:
    """Test metrics of a grouping, each task scored by the model of its group.

    Attributes:
        groups: group id per task, int ``[n]``.
        metrics: per-task metrics over all ``n`` tasks, in graph task order.
        seconds: wall time of training and evaluating every group model.
    """

    groups: np.ndarray
    metrics: TaskMetrics
    seconds: float


def train_group_models(graph: MultiTaskGraph, groups: Sequence[int] | np.ndarray,
                       model_config: ModelConfig, train_config: TrainConfig,
                       out_dir: str | Path | None = None, *, split: str = "test",
                       init_from: str | Path | None = None, workers: int = 2,
                       progress: bool = True) -> GroupedModels:
    """Train one model per group with the shared trainer, the groups in parallel.

    Args:
        graph: the data with ``n`` tasks.
        groups: group id of every task, ``[n]`` (any integers; each distinct value is a group).
        model_config, train_config: settings of every group model.
        out_dir: if given, group ``g``'s model is kept in ``out_dir/group_<g>/model.pt`` and an
            interrupted call continues where it stopped.
        split: ``val`` or ``test``, the split every task is scored on.
        init_from: a checkpoint holding every task (e.g. the all-task model) that each group
            model is fine-tuned from: its encoder and the group's head rows are copied and kept
            unless an epoch beats them on the group's validation score (``Trainer.fit``).
        workers: processes (:class:`~graphmtl.training.pool.SubsetTrainingPool`).
    """
    groups = np.asarray(groups)
    check(groups.shape == (graph.num_tasks,),
          f"groups: expected one group id per task ({graph.num_tasks}), got shape {groups.shape}")
    check(split in ("val", "test"), f"split: expected val or test, got {split!r}")
    start = time.perf_counter()
    ids = np.unique(groups)
    jobs = [SubsetJob(tuple(graph.task_names[i] for i in np.flatnonzero(groups == g)),
                      save_to=None if out_dir is None else str(Path(out_dir) / f"group_{int(g)}"))
            for g in ids]
    pool = SubsetTrainingPool(model_config, train_config, workers=workers, init_from=init_from,
                              splits=("val", "test") if split == "test" else ("val",),
                              progress=progress and len(ids) > 1, desc="group models")
    records = pool.run(graph, jobs, results=None if out_dir is None
                       else Path(out_dir) / "group_models.jsonl")
    names = list(graph.task_names)

    def get(score: str) -> np.ndarray:   # each task is in exactly one group's model
        M = score_matrix(records, names, split, score)
        ok = np.isfinite(M)
        return np.where(ok.any(0), np.where(ok, M, 0.0).sum(0), np.nan)

    labelled = graph.mask(split)
    pos = (labelled & graph.y).sum(0).numpy().astype(np.int64)
    neg = (labelled & ~graph.y).sum(0).numpy().astype(np.int64)
    undefined = {names[t]: f"no positives in the {split} split" for t in np.flatnonzero(pos == 0)}
    metrics = TaskMetrics(task_names=names, split=split, f1=get("f1"), roc_auc=get("roc_auc"),
                          ap=get("ap"), loss=get("bce"), num_pos=pos, num_neg=neg,
                          undefined=undefined)
    return GroupedModels(groups=groups, metrics=metrics, seconds=time.perf_counter() - start)


def concat_metrics(parts: Sequence[TaskMetrics]) -> TaskMetrics:
    """Join metrics of disjoint task sets (same split) into one :class:`TaskMetrics`."""
    check(len(parts) > 0, "metrics: nothing to join")
    split = parts[0].split
    check(all(p.split == split for p in parts), "metrics: cannot join different splits")
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    undefined: dict[str, str] = {}
    for p in parts:
        undefined.update(p.undefined)
    return TaskMetrics(task_names=[n for p in parts for n in p.task_names], split=split,
                       f1=cat("f1"), roc_auc=cat("roc_auc"), ap=cat("ap"), loss=cat("loss"),
                       num_pos=cat("num_pos"), num_neg=cat("num_neg"), undefined=undefined)
