"""The one data container: a graph with ``n`` binary node-labelling tasks."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from graphmtl.errors import GraphMTLError, check
from graphmtl.utils.integrity import DamagedFileError, content_digest
from graphmtl.utils.io import atomic_path
from graphmtl.utils.text import preview

SPLITS = ("train", "val", "test")
_FORMAT_VERSION = 1


@dataclass
class MultiTaskGraph:
    """A graph with node features and ``n`` binary tasks, each with its own splits.

    Attributes:
        x: node features, float32 ``[N, F]``.
        edge_index: undirected edges stored in both directions, coalesced, no self-loops,
            int64 ``[2, 2E]``.
        y: labels, bool ``[N, n]`` (``y[v, t]`` is meaningful only where ``v`` is labelled for
            ``t``).
        train_mask, val_mask, test_mask: bool ``[N, n]``; disjoint per task. A node may be
            unlabelled for a task (all three masks false).
        task_names: ``n`` unique names.
        provenance: JSON-serialisable description of where the data came from (source files and
            their digests, recipe parameters, seeds).
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor
    task_names: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ shape facts
    @property
    def num_nodes(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_tasks(self) -> int:
        return int(self.y.shape[1])

    @property
    def num_edges(self) -> int:
        """Number of undirected edges (``edge_index`` holds each one twice)."""
        return int(self.edge_index.shape[1]) // 2

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])

    def mask(self, split: str) -> torch.Tensor:
        """The bool ``[N, n]`` mask of ``split`` (one of ``train``, ``val``, ``test``)."""
        check(split in SPLITS, f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
        return getattr(self, f"{split}_mask")

    def task_index(self, tasks: str | Sequence[int | str] | None) -> torch.Tensor:
        """Resolve a task selection to a sorted-as-given int64 index ``[k]``.

        ``tasks`` may be ``None`` or ``"all"`` (every task), or a sequence of task positions or
        names. Unknown or duplicate tasks and an empty selection are errors.
        """
        if tasks is None or (isinstance(tasks, str) and tasks == "all"):
            return torch.arange(self.num_tasks)
        if isinstance(tasks, str):
            tasks = [t for t in tasks.split(",") if t.strip()]
        by_name = {name: i for i, name in enumerate(self.task_names)}
        index = []
        for t in tasks:
            if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
                check(0 <= int(t) < self.num_tasks,
                      f"task {int(t)}: out of range (the data has {self.num_tasks} tasks)")
                index.append(int(t))
            else:
                t = str(t).strip()
                if t in by_name:
                    index.append(by_name[t])
                elif t.lstrip("-").isdigit() and 0 <= int(t) < self.num_tasks:
                    index.append(int(t))
                else:
                    raise GraphMTLError(f"task {t!r}: unknown (known: {preview(self.task_names)})")
        check(len(index) > 0, "tasks: the task selection is empty")
        dup = {i for i in index if index.count(i) > 1}
        check(not dup, f"task {self.task_names[min(dup)] if dup else ''}: listed more than once")
        return torch.tensor(index, dtype=torch.long)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check shapes, dtypes and split disjointness; raise :class:`GraphMTLError` if off."""
        N, n = self.y.shape if self.y.dim() == 2 else (None, None)
        check(self.y.dim() == 2, f"y: expected a 2-d [N, n] tensor, got shape {tuple(self.y.shape)}")
        check(self.y.dtype == torch.bool, f"y: expected dtype bool, got {self.y.dtype}")
        check(self.x.dim() == 2 and self.x.shape[0] == N,
              f"x: expected shape [{N}, F], got {tuple(self.x.shape)}")
        check(self.x.dtype == torch.float32, f"x: expected float32, got {self.x.dtype}")
        check(self.edge_index.dim() == 2 and self.edge_index.shape[0] == 2,
              f"edge_index: expected shape [2, E], got {tuple(self.edge_index.shape)}")
        check(self.edge_index.dtype == torch.long, "edge_index: expected dtype int64")
        if self.edge_index.numel():
            lo, hi = int(self.edge_index.min()), int(self.edge_index.max())
            check(lo >= 0 and hi < N, f"edge_index: node ids must lie in [0, {N}), got [{lo}, {hi}]")
        for split in SPLITS:
            m = getattr(self, f"{split}_mask")
            check(m.shape == (N, n) and m.dtype == torch.bool,
                  f"{split}_mask: expected bool [{N}, {n}], got {m.dtype} {tuple(m.shape)}")
        overlap = (self.train_mask & self.val_mask) | (self.train_mask & self.test_mask) | (
            self.val_mask & self.test_mask)
        if bool(overlap.any()):
            t = int(overlap.any(0).nonzero()[0])
            raise GraphMTLError(f"task {self.task_names[t]!r}: train/val/test masks overlap")
        check(len(self.task_names) == n,
              f"task_names: expected {n} names, got {len(self.task_names)}")
        check(len(set(self.task_names)) == n, "task_names: names must be unique")

    # ------------------------------------------------------------------ views
    def select_tasks(self, tasks: str | Sequence[int | str] | None) -> "MultiTaskGraph":
        """A graph with the same nodes and edges and only the selected tasks (in that order)."""
        idx = self.task_index(tasks)
        return MultiTaskGraph(
            x=self.x, edge_index=self.edge_index, y=self.y[:, idx],
            train_mask=self.train_mask[:, idx], val_mask=self.val_mask[:, idx],
            test_mask=self.test_mask[:, idx], task_names=[self.task_names[i] for i in idx],
            provenance={**self.provenance, "task_subset": idx.tolist()})

    @classmethod
    def from_pyg(cls, data, task_names: list[str] | None = None, splits=None, *,
                 features="x", **kwargs: Any) -> "MultiTaskGraph":
        """Convert a :class:`torch_geometric.data.Data` (multi-label ``y [N, n]``, optional masks,
        ``x``, ``task_names``); see :func:`graphmtl.data.pyg.from_pyg` for the conventions
        (unlabelled pairs, ``splits``, ``features``) and the other keyword arguments."""
        from graphmtl.data.pyg import from_pyg

        return from_pyg(data, task_names=task_names, splits=splits, features=features, **kwargs)

    @classmethod
    def from_ogb(cls, dataset, **kwargs: Any) -> "MultiTaskGraph":
        """Convert an OGB node-property dataset with binary tasks, keeping its
        ``get_idx_split()``; see :func:`graphmtl.data.pyg.from_ogb`."""
        from graphmtl.data.pyg import from_ogb

        return from_ogb(dataset, **kwargs)

    def to_pyg(self):
        """A :class:`torch_geometric.data.Data` with the same tensors (no copy), plus
        ``task_names`` and ``provenance``, so ``MultiTaskGraph.from_pyg(g.to_pyg())`` equals
        ``g``; see :func:`graphmtl.data.pyg.to_pyg`."""
        from graphmtl.data.pyg import to_pyg

        return to_pyg(self)

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict[str, Any]:
        """Sizes and per-task statistics as a JSON-serialisable dict."""
        pos = self.y.sum(0).numpy()
        out: dict[str, Any] = {
            "nodes": self.num_nodes, "edges": self.num_edges, "tasks": self.num_tasks,
            "features": self.num_features,
            "positives_per_task": {"min": int(pos.min()), "median": float(np.median(pos)),
                                    "max": int(pos.max())},
        }
        for split in SPLITS:
            m = self.mask(split)
            labelled = m.sum(0).numpy()
            positives = (m & self.y).sum(0).numpy()
            out[f"{split}_rows"] = {"total": int(labelled.sum()),
                                    "per_task_min": int(labelled.min()),
                                    "per_task_max": int(labelled.max()),
                                    "positives_min": int(positives.min())}
        out["name"] = self.provenance.get("name", "")
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Save to an ``.npz`` (no pickled objects), atomically.

        Masks are packed as one uint8 code per (node, task): 0 unlabelled, 1 train, 2 val,
        3 test, so the file is small even at N x n = millions. ``meta["sha256"]`` is the
        :func:`~graphmtl.utils.integrity.content_digest` of the arrays and the rest of the
        metadata, checked by :meth:`load`.
        """
        split_code = (self.train_mask.to(torch.uint8) * 1 + self.val_mask.to(torch.uint8) * 2
                      + self.test_mask.to(torch.uint8) * 3)
        arrays = {"x": self.x.numpy(), "edge_index": self.edge_index.numpy(),
                  "y": np.packbits(self.y.numpy(), axis=1), "split": split_code.numpy()}
        meta = {"format": "graphmtl.MultiTaskGraph", "version": _FORMAT_VERSION,
                "task_names": self.task_names, "provenance": self.provenance}
        meta = json.loads(json.dumps(meta))  # the digest sees what load() will read back
        meta["sha256"] = _graph_digest(arrays, meta)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MultiTaskGraph":
        """Load a graph written by :meth:`save`, checking its content digest.

        Raises:
            GraphMTLError: one line naming the file when it is missing, is not a graphmtl graph,
                or is damaged or truncated (a :class:`~graphmtl.utils.integrity.DamagedFileError`).
                A file written before digests existed loads with a warning.
        """
        path = Path(path)
        check(path.is_file(), f"{path}: file not found")
        fix = "re-create it (graphmtl data prepare SPEC --out FILE.npz) or restore a copy"
        try:  # our own handle: np.load leaks its own when the zip is unreadable
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                arrays = {k: z[k] for k in ("x", "edge_index", "y", "split")}
        except Exception as e:  # noqa: BLE001 - zip, zlib, npy-header, JSON, missing members
            raise DamagedFileError(path, f"not a graphmtl dataset file, or a damaged or "
                                         f"truncated one ({_reason(e)})", fix) from None
        check(isinstance(meta, dict) and meta.get("format") == "graphmtl.MultiTaskGraph",
              f"{path}: not a graphmtl dataset file")
        recorded = meta.pop("sha256", None)
        if recorded is None:
            warnings.warn(f"{path}: written by an older graphmtl without a content digest, so it "
                          "cannot be checked for damage; re-save it to add one", stacklevel=2)
        elif _graph_digest(arrays, meta) != recorded:
            raise DamagedFileError(path, "content does not match its recorded sha256 (damaged "
                                         "or edited)", fix)
        try:
            n = len(meta["task_names"])
            y = np.unpackbits(arrays["y"], axis=1, count=n).astype(bool)
            split = torch.from_numpy(arrays["split"])
            return cls(x=torch.from_numpy(arrays["x"]),
                       edge_index=torch.from_numpy(arrays["edge_index"]), y=torch.from_numpy(y),
                       train_mask=split == 1, val_mask=split == 2, test_mask=split == 3,
                       task_names=list(meta["task_names"]), provenance=meta["provenance"])
        except (GraphMTLError, KeyError, TypeError, ValueError) as e:
            raise GraphMTLError(f"{path}: inconsistent graph file ({_reason(e)}); {fix}") from None


def _graph_digest(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    return content_digest({"arrays": arrays, "meta": {k: v for k, v in meta.items()
                                                      if k != "sha256"}})


def _reason(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text[:120]}" if text else type(e).__name__
