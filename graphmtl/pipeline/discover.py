"""``find_groups``: the whole label-group discovery on your own graph in one call.

A thin wrapper over :func:`~graphmtl.pipeline.run.run_pipeline`: it converts the input (a PyG
``Data``, an OGB dataset, a :class:`~graphmtl.data.MultiTaskGraph` or a dataset spec) to a
``MultiTaskGraph``, saves it as ``.npz`` in the run directory, runs the pipeline on that file and
collects the results by task name. Everything it returns is read from the
:class:`~graphmtl.pipeline.run.PipelineResult` and from files the pipeline writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphmtl.data import MultiTaskGraph
from graphmtl.errors import GraphMTLError, check
from graphmtl.pipeline.config import PipelineConfig
from graphmtl.pipeline.report import MethodResult
from graphmtl.pipeline.run import PipelineResult, run_pipeline

#: Options of :func:`find_groups` that set one field of one part of :class:`PipelineConfig`.
SHORTCUTS: dict[str, str] = {
    "encoder": "model", "hidden": "model", "num_layers": "model", "dropout": "model",
    "epochs": "train", "patience": "train", "lr": "train", "batch_size": "train",
    "fanouts": "train", "num_threads": "train",
    "dim": "projection",
    "method": "affinity", "num_subsets": "affinity", "subset_size": "affinity",
    "pairwise": "compare", "pairwise_pairs": "compare", "random_draws": "compare",
    "seeds": "compare", "single_task": "compare", "workers": "compare",
}
#: Options passed to the conversion of a PyG ``Data`` / OGB dataset.
CONVERSION_OPTIONS = ("task_names", "splits", "features", "name")
_PARTS = ("model", "train", "projection", "affinity", "compare")
_TOP = ("cluster_solver", "seed")


@dataclass
class GroupDiscovery:
    """What :func:`find_groups` returns.

    Attributes:
        task_names: the ``n`` tasks, in the graph's order.
        labels: group id of every task, int ``[n]``.
        groups: group id -> names of its tasks.
        group_of: task name -> group id.
        affinity: the estimated task affinity, float ``[n, n]``, rows and columns in
            ``task_names`` order.
        model_paths: group id -> checkpoint of that group's model (load it with
            :meth:`load_model` or :func:`graphmtl.training.load_checkpoint`).
        methods: the comparison rows (:class:`~graphmtl.pipeline.report.MethodResult`): the
            method's groups and any other grouping that ran, each with per-task test scores and
            its differences to random groups of the same sizes and to one model on all tasks;
            then those two controls.
        report_html, report_md: the report.
        run_dir: the run directory (re-running with the same input and settings reuses it).
        graph_path: the ``.npz`` graph the pipeline ran on.
        pipeline: the :class:`PipelineResult` itself.
    """

    task_names: list[str]
    labels: np.ndarray
    groups: dict[int, list[str]]
    group_of: dict[str, int]
    affinity: np.ndarray
    model_paths: dict[int, Path]
    methods: list[MethodResult]
    report_html: Path
    report_md: Path
    run_dir: Path
    graph_path: Path
    pipeline: PipelineResult

    @property
    def k(self) -> int:
        """The number of groups."""
        return len(self.groups)

    def load_model(self, group: int | str):
        """The trained model of ``group`` (a group id, or a task name: that task's group)."""
        from graphmtl.training import load_checkpoint

        g = self.group_of.get(group) if isinstance(group, str) else group
        check(g in self.model_paths, f"group {group!r}: unknown (groups: "
              f"{', '.join(map(str, self.model_paths))}; or give a task name)")
        return load_checkpoint(self.model_paths[g]).model

    def __str__(self) -> str:
        lines = [f"{self.k} groups of {len(self.task_names)} tasks:"]
        lines += [f"  group {g} ({len(t)}): {', '.join(t)}" for g, t in self.groups.items()]
        lines.append(self.pipeline.table())
        lines.append(f"report: {self.report_html}")
        return "\n".join(lines)


def find_groups(data: Any, k: int | str = "auto", out: str | os.PathLike | None = None, *,
                config: PipelineConfig | None = None, root: str | os.PathLike | None = None,
                verbose: bool = True, **options: Any) -> GroupDiscovery:
    """Find groups of tasks that help each other, train one model per group, compare.

    Args:
        data: a :class:`torch_geometric.data.Data` (multi-label ``y [N, n]``; conventions in
            :mod:`graphmtl.data.pyg`), an OGB node-property dataset (``get_idx_split()``), a
            :class:`~graphmtl.data.MultiTaskGraph`, or a dataset spec / path for
            :func:`graphmtl.data.load_dataset` (``"snap:youtube,k=100"``, ``"graph.pt"``).
        k: number of groups, or ``"auto"``.
        out: run directory (default ``runs/find_groups-<digest of the graph>``); a second call
            with the same graph and settings reuses every stage, a changed setting redoes only
            the stages that depend on it.
        config: the starting :class:`PipelineConfig` (default: its defaults, with the naive
            pairwise baseline off: it trains a model per pair of tasks); its ``data`` and
            ``k`` are replaced.
        root: data root for spec strings.
        verbose: print stage lines and progress bars to stderr.
        **options: conversion options for a ``Data`` / OGB input (``task_names``, ``splits``,
            ``features``, ``name``; see :func:`graphmtl.data.pyg.from_pyg`); whole parts of the
            config (``model=ModelConfig(...)``, ``train=``, ``projection=``, ``affinity=``,
            ``compare=``), ``cluster_solver``, ``seed``; or single fields: ``encoder``,
            ``hidden``, ``num_layers``, ``dropout``, ``epochs``, ``patience``, ``lr``,
            ``batch_size``, ``fanouts``, ``num_threads``, ``dim`` (projection),
            ``method`` (affinity), ``num_subsets``, ``subset_size``, ``pairwise``,
            ``pairwise_pairs``, ``random_draws``, ``seeds``, ``single_task``, ``workers``.

    Returns:
        A :class:`GroupDiscovery`.

    Raises:
        GraphMTLError: bad input or option (one line naming it).
    """
    convert = {key: options.pop(key) for key in CONVERSION_OPTIONS if key in options}
    cfg = _config(config, k, options)
    graph = _as_graph(data, root, convert)
    digest = _digest(graph)
    run_dir = Path(out) if out is not None else Path("runs") / f"find_groups-{digest[:12]}"
    graph_path = (run_dir / "input" / f"graph-{digest[:16]}.npz").resolve()
    if not graph_path.is_file():     # the name holds the content digest: same name, same graph
        graph.save(graph_path)
    cfg = cfg.replace(data=str(graph_path), data_root=None)
    result = run_pipeline(cfg, run_dir, quiet=not verbose, progress=verbose)
    return _collect(result, graph.task_names, graph_path)


def _config(config: PipelineConfig | None, k: int | str, options: dict[str, Any]
            ) -> PipelineConfig:
    """``config`` (or the defaults) with ``k`` and the options applied; validated by the
    configs' own constructors."""
    check(config is None or isinstance(config, PipelineConfig),
          f"config: expected a PipelineConfig, got {type(config).__name__}")
    if config is None:
        base = PipelineConfig()
        config = base.replace(compare=dataclasses.replace(base.compare, pairwise=False))
    known = (*_PARTS, *_TOP, *SHORTCUTS, *CONVERSION_OPTIONS)
    unknown = [key for key in options if key not in known]
    check(not unknown, f"{unknown[0] if unknown else ''}: unknown option of find_groups "
          f"(known: {', '.join(known)})")
    changes: dict[str, Any] = {"k": k}
    for part in _PARTS:
        if part in options:
            expected = type(getattr(config, part))
            check(isinstance(options[part], expected),
                  f"{part}: expected a {expected.__name__}, got {type(options[part]).__name__}")
            changes[part] = options[part]
    changes.update({key: options[key] for key in _TOP if key in options})
    for part in _PARTS:
        fields = {key: options[key] for key, p in SHORTCUTS.items() if p == part and key in options}
        if fields:
            current = changes.get(part, getattr(config, part))
            if part == "train" and isinstance(fields.get("fanouts"), list):
                fields["fanouts"] = tuple(fields["fanouts"])
            try:
                changes[part] = dataclasses.replace(current, **fields)
            except TypeError as e:   # a field the config does not have
                raise GraphMTLError(f"{part}: {e}") from None
    return config.replace(**changes)


def _as_graph(data: Any, root: str | os.PathLike | None, convert: dict[str, Any]
              ) -> MultiTaskGraph:
    from graphmtl.data import load_dataset

    if isinstance(data, MultiTaskGraph) or isinstance(data, (str, os.PathLike)):
        check(not convert, f"{next(iter(convert), '')}: applies only to a PyG Data or an OGB "
              "dataset (a MultiTaskGraph or a spec is used as it is)")
        if isinstance(data, MultiTaskGraph):
            return data
        return load_dataset(os.fspath(data), root=root)
    if callable(getattr(data, "get_idx_split", None)):
        check("splits" not in convert, "splits: an OGB dataset keeps its own get_idx_split()")
        return MultiTaskGraph.from_ogb(data, **convert)
    return MultiTaskGraph.from_pyg(data, **convert)


def _digest(graph: MultiTaskGraph) -> str:
    """sha256 of the graph's content (tensors and task names; provenance left out, as it
    records load times and cache hits)."""
    h = hashlib.sha256()
    for t in (graph.x, graph.edge_index, graph.y, graph.train_mask, graph.val_mask,
              graph.test_mask):
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(np.ascontiguousarray(t.numpy()).tobytes())
    h.update(json.dumps(graph.task_names).encode())
    return h.hexdigest()


def _collect(result: PipelineResult, names: list[str], graph_path: Path) -> GroupDiscovery:
    """Read the pipeline's outputs: ``result.groups`` / ``methods`` / report paths, and the
    files ``affinity/affinity.npy`` and ``groups/models/group_<g>/model.pt`` of the run."""
    labels = np.asarray(result.groups, dtype=int)
    check(labels.shape == (len(names),), f"{result.run_dir}: {labels.shape[0]} group labels for "
          f"{len(names)} tasks")
    ids = [int(g) for g in np.unique(labels)]
    groups = {g: [names[i] for i in np.flatnonzero(labels == g)] for g in ids}
    affinity = np.load(result.run_dir / "affinity" / "affinity.npy", allow_pickle=False)
    models = {g: result.run_dir / "groups" / "models" / f"group_{g}" / "model.pt" for g in ids}
    missing = [p for p in models.values() if not p.is_file()]
    check(not missing, f"{missing[0] if missing else ''}: the run has no model for this group")
    return GroupDiscovery(task_names=list(names), labels=labels, groups=groups,
                          group_of={t: int(g) for t, g in zip(names, labels)},
                          affinity=affinity, model_paths=models, methods=list(result.methods),
                          report_html=result.report_html, report_md=result.report_md,
                          run_dir=result.run_dir, graph_path=graph_path, pipeline=result)
