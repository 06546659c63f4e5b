"""Shared assembly steps of the loaders: clean an edge list, build labels, split, wrap.

Edge-list policy (every loader): the graph is undirected. Self-loops are dropped, and an edge listed
more than once (``u v`` twice, or ``u v`` and ``v u``) is kept once; either case emits a
:class:`DataWarning` that names the file and gives the counts, so nothing is changed silently.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.data.splits import SplitConfig, stratified_task_splits
from graphmtl.errors import check
from graphmtl.utils.io import file_digest


class DataWarning(UserWarning):
    """A loader changed the input in a documented way (dropped self-loops, merged duplicates,
    dropped tasks); the message names the file and gives counts."""


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy >= 2.3's hash-based unique is several times slower on
    millions of int64 ids)."""
    s = np.sort(np.asarray(a).ravel(), kind="stable")
    if s.size == 0:
        return s
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def clean_edges(edges: np.ndarray, source: str | os.PathLike) -> np.ndarray:
    """Canonical undirected edge list: ``u < v``, unique, sorted, no self-loops.

    Args:
        edges: int64 ``[E, 2]`` as read from a file.
        source: the file, named in the warning.

    Returns:
        int64 ``[E', 2]`` with ``E' <= E``.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    loops = edges[:, 0] == edges[:, 1]
    n_loops = int(loops.sum())
    if n_loops:
        edges = edges[~loops]
    lo = np.minimum(edges[:, 0], edges[:, 1])
    hi = np.maximum(edges[:, 0], edges[:, 1])
    if lo.size == 0:
        out = np.zeros((0, 2), dtype=np.int64)
        n_dup = 0
    else:
        # One sortable int64 key per edge; ids are bounded by hi.max() so no overflow below 3e9.
        base = int(hi.max()) + 1
        if base < 3_000_000_000:
            keys = sorted_unique(lo * base + hi)
            out = np.stack([keys // base, keys % base], axis=1)
        else:
            out = np.unique(np.stack([lo, hi], axis=1), axis=0)
        n_dup = int(lo.size - out.shape[0])
    if n_loops or n_dup:
        warnings.warn(f"{Path(source).name}: dropped {n_loops} self-loop(s) and {n_dup} duplicate "
                      "edge(s) (u-v and v-u count as the same undirected edge)", DataWarning,
                      stacklevel=3)
    return out


def both_directions(edges: np.ndarray, num_nodes: int) -> torch.Tensor:
    """``[E, 2]`` canonical edges -> coalesced int64 ``edge_index`` ``[2, 2E]`` (row-major)."""
    e = np.asarray(edges, dtype=np.int64)
    row = np.concatenate([e[:, 0], e[:, 1]])
    col = np.concatenate([e[:, 1], e[:, 0]])
    order = np.lexsort((col, row))
    return torch.from_numpy(np.stack([row[order], col[order]]))


def file_record(path: str | os.PathLike) -> dict[str, Any]:
    """``{"path", "bytes", "sha256"}`` of a source file, for provenance."""
    path = Path(path)
    return {"path": str(path.resolve()), "bytes": path.stat().st_size,
            "sha256": file_digest(path)}


def min_splittable(split: SplitConfig) -> int:
    """The fewest positives a task needs so that ``split`` gives each of train, val and test at
    least one of them (the rule of :func:`stratified_task_splits`)."""
    c = 3
    while True:
        n_train, n_val = (int(v) for v in split.counts(np.array(c), positive=True))
        if n_train >= 1 and n_val >= 1 and c - n_train - n_val >= 1:
            return c
        c += 1


def drop_rare_tasks(y: np.ndarray, names: list[str], min_positives: int, source: str
                    ) -> tuple[np.ndarray, list[str]]:
    """Keep the tasks with at least ``min_positives`` positives (warn with the count dropped)."""
    if min_positives <= 0:
        return y, names
    keep = y.sum(0) >= min_positives
    if not bool(keep.all()):
        dropped = [n for n, k in zip(names, keep) if not k]
        warnings.warn(f"{source}: dropped {len(dropped)} task(s) with fewer than {min_positives} "
                      f"positives (e.g. {dropped[0]!r})", DataWarning, stacklevel=3)
    check(bool(keep.any()), f"{source}: min_positives={min_positives} leaves no task")
    return y[:, keep], [n for n, k in zip(names, keep) if k]


def assemble(*, edges: np.ndarray, num_nodes: int, y: np.ndarray, task_names: Sequence[str],
             split: SplitConfig, x: torch.Tensor, provenance: dict[str, Any],
             labelled: np.ndarray | None = None) -> MultiTaskGraph:
    """Split every task and wrap everything into a validated :class:`MultiTaskGraph`.

    Args:
        edges: canonical int64 ``[E, 2]`` (see :func:`clean_edges`), ids in ``[0, num_nodes)``.
        y: bool ``[N, n]``.
        task_names: ``n`` names.
        split: per-task split fractions and seed (:func:`stratified_task_splits`).
        x: float32 ``[N, F]``.
        provenance: JSON-serialisable; the split parameters are added.
        labelled: bool ``[N, n]`` or ``None`` (every node labelled for every task).
    """
    y_t = torch.from_numpy(np.ascontiguousarray(y, dtype=bool))
    lab_t = None if labelled is None else torch.from_numpy(np.ascontiguousarray(labelled, bool))
    train, val, test = stratified_task_splits(y_t, lab_t, split, task_names=list(task_names))
    record = {"train": split.train, "val": split.val,
              "test": round(1 - split.train - split.val, 10), "seed": split.seed}
    if split.train_pos is not None:   # recorded only when used: older provenance unchanged
        record.update(train_pos=split.train_pos, pos_cutoff=split.pos_cutoff)
    provenance = {**provenance, "split": record}
    return MultiTaskGraph(x=x, edge_index=both_directions(edges, num_nodes), y=y_t,
                          train_mask=train, val_mask=val, test_mask=test,
                          task_names=list(task_names), provenance=provenance)
