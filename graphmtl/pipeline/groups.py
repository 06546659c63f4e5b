"""Train one multitask model per task group and score every task with its own group's model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from graphmtl.data import MultiTaskGraph
from graphmtl.errors import check
from graphmtl.models import ModelConfig
from graphmtl.training import TaskMetrics, Trainer, TrainConfig, evaluate


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
                       progress: bool = True) -> GroupedModels:
    """Train one model per group with the shared :class:`~graphmtl.training.Trainer`.

    Args:
        graph: the data with ``n`` tasks.
        groups: group id of every task, ``[n]`` (any integers; each distinct value is a group).
        model_config, train_config: settings of every group model.
        out_dir: if given, group ``g`` trains in ``out_dir/group_<g>`` with ``resume=True``, so an
            interrupted call continues where it stopped.
        split: the split every task is scored on.
    """
    groups = np.asarray(groups)
    check(groups.shape == (graph.num_tasks,),
          f"groups: expected one group id per task ({graph.num_tasks}), got shape {groups.shape}")
    start = time.perf_counter()
    parts: list[TaskMetrics] = []
    ids = np.unique(groups)
    for g in tqdm(ids, desc="group models", disable=not progress or len(ids) == 1):
        tasks = [graph.task_names[i] for i in np.flatnonzero(groups == g)]
        sub_dir = None if out_dir is None else Path(out_dir) / f"group_{int(g)}"
        result = Trainer(model_config, train_config).fit(graph, tasks, out_dir=sub_dir,
                                                         resume=sub_dir is not None,
                                                         progress=False)
        parts.append(evaluate(result.model, graph, tasks, split=split))
    metrics = concat_metrics(parts).select(graph.task_names)
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
