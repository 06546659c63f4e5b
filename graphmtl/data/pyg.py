"""PyTorch Geometric in and out: a ``Data`` object or an OGB dataset <-> :class:`MultiTaskGraph`.

Input conventions of :func:`from_pyg` (``data`` is a :class:`torch_geometric.data.Data` or a
mapping with the same keys, e.g. ``data.to_dict()``):

``y`` (required), ``[N, n]``, one column per binary task; how an unlabelled (node, task) pair is
marked depends on the dtype:

- ``bool``: no marker, every pair is labelled;
- integer: ``0`` / ``1``, and ``-1`` marks an unlabelled pair;
- floating: ``0.0`` / ``1.0``, and ``NaN`` marks an unlabelled pair;
- sparse (a ``torch.sparse`` layout or a ``torch_sparse.SparseTensor``): the stored entries are
  the positives (value 1), every other pair is a negative; no marker.

``train_mask``, ``val_mask``, ``test_mask``: all three or none; each bool ``[N]`` (one split
shared by every task) or ``[N, n]`` (a split per task). A masked node that is unlabelled for a
task is left out of that task's splits. Every task needs a positive and a negative in each split.
Without masks, or with ``splits=SplitConfig(...)``, each task's labelled nodes are split by
:func:`~graphmtl.data.splits.stratified_task_splits` (seeded, stratified by class).

``edge_index``, int ``[2, E]``, directed or undirected: the result is undirected and stored both
ways, like every loader's output (:func:`~graphmtl.data.build.clean_edges`). Self-loops are
dropped, an edge listed twice is kept once and a one-way edge gets its reverse; each of these
emits one :class:`~graphmtl.data.build.DataWarning` with the counts. Storing an undirected edge
in both directions (PyG's own convention) is not a change and is not reported.

``x``, ``[N, F]``: required with ``features="x"`` (the default) and must be finite;
``features="auto"`` uses ``x`` when present and computes structural features
(:func:`~graphmtl.data.features.structural_features`) otherwise; ``features="structural"`` or
a :class:`~graphmtl.data.features.FeatureConfig` always computes them.

``task_names`` (optional, ``n`` strings) and ``provenance`` (optional JSON dict) are read when
present, as :meth:`MultiTaskGraph.to_pyg` writes them, so ``from_pyg(g.to_pyg())`` equals ``g``.

Files (:func:`load_pyg`) are read with ``torch.load(weights_only=True)``: a ``Data`` saved with
``torch.save(data, path)`` (the PyG classes it needs are allowed for that one call), or a dict of
tensors saved with ``torch.save(data.to_dict(), path)``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from graphmtl.data.build import (DataWarning, assemble, both_directions, clean_edges, file_record,
                                 sorted_unique)
from graphmtl.data.features import FeatureConfig, structural_features
from graphmtl.data.graph import SPLITS, MultiTaskGraph
from graphmtl.data.splits import SplitConfig
from graphmtl.errors import GraphMTLError, check

MASKS = tuple(f"{s}_mask" for s in SPLITS)
#: Suffixes :func:`graphmtl.data.load_dataset` reads with :func:`load_pyg`.
PYG_SUFFIXES = (".pt", ".pth")
FEATURE_CHOICES = ("x", "auto", "structural")
_OGB_SPLITS = (("train", "train"), ("val", "valid"), ("test", "test"))


# ---------------------------------------------------------------------- PyG -> graphmtl
def from_pyg(data: Any, *, task_names: list[str] | None = None,
             splits: SplitConfig | str | None = None, features: str | FeatureConfig = "x",
             name: str | None = None, provenance: Mapping[str, Any] | None = None,
             feature_cache: str | os.PathLike | None = None) -> MultiTaskGraph:
    """Convert a PyG ``Data`` (or a mapping of its attributes) to a :class:`MultiTaskGraph`.

    Args:
        data: ``y`` ``[N, n]`` and ``edge_index`` ``[2, E]``, optionally ``x`` ``[N, F]``, the
            three masks ``[N]`` or ``[N, n]``, ``task_names`` and ``provenance`` (conventions in
            the module docstring).
        task_names: ``n`` names (default: ``data.task_names``, else ``task_0`` ...).
        splits: ``None`` (the masks when present, else stratified 20/20/60 with seed 0),
            ``"masks"`` (the masks are required), ``"stratified"`` (default stratified splits,
            masks ignored) or a :class:`SplitConfig` (stratified with it, masks ignored).
        features: ``"x"``, ``"auto"``, ``"structural"`` or a :class:`FeatureConfig`.
        name: recorded as ``provenance["name"]`` (default: the input's own, else ``"pyg"``).
        provenance: extra JSON-serialisable entries for the provenance.
        feature_cache: cache directory for structural features.

    Returns:
        The validated graph; ``provenance["pyg"]`` records how it was converted (label
        convention, unlabelled pairs, where the splits came from, edge changes, features).

    Raises:
        GraphMTLError: one line naming the attribute (``y``, ``x``, ``edge_index``, a mask,
            ``task_names``) or the task at fault.
    """
    attrs = _attributes(data)
    y, sparse = _label_tensor(attrs.get("y"))
    N, n = y.shape
    _check_num_nodes(attrs, N)
    names = _task_names(task_names if task_names is not None else attrs.get("task_names"), n)
    y, labelled, convention = _labels(y, sparse, names)
    edges, edge_info = _undirected_edges(attrs.get("edge_index"), N)
    split = _split_choice(splits, attrs)
    if split is None:                       # the data's masks, checked before any feature work
        masks, shapes = _masks(attrs, N, names)
        if labelled is not None:
            lab = torch.from_numpy(labelled)
            masks = {k: m & lab for k, m in masks.items()}
        _check_every_split_has_both_classes(torch.from_numpy(y), masks, names)
    x, feat_info = _features(attrs.get("x"), features, edges, N, feature_cache)

    source = attrs.get("provenance")
    base = dict(source) if isinstance(source, Mapping) and _is_json(source) else {}
    base.update(provenance or {})
    base["name"] = name or base.get("name") or "pyg"
    base.setdefault("kind", "pyg")
    info: dict[str, Any] = {
        "labels": convention,
        "unlabelled_pairs": 0 if labelled is None else int((~labelled).sum()),
        "edges": edge_info, "features": feat_info,
        "splits": "stratified" if split is not None else f"given masks ({shapes})"}
    if split is not None:
        return assemble(edges=edges, num_nodes=N, y=y, task_names=names, split=split, x=x,
                        provenance={**base, "pyg": info}, labelled=labelled)
    return MultiTaskGraph(x=x, edge_index=both_directions(edges, N), y=torch.from_numpy(y),
                          train_mask=masks["train_mask"], val_mask=masks["val_mask"],
                          test_mask=masks["test_mask"], task_names=names,
                          provenance={**base, "pyg": info})


def from_ogb(dataset: Any, *, task_names: list[str] | None = None,
             features: str | FeatureConfig = "x", name: str | None = None,
             feature_cache: str | os.PathLike | None = None) -> MultiTaskGraph:
    """Convert an OGB node-property dataset with binary tasks, keeping OGB's split.

    Args:
        dataset: an ``ogb.nodeproppred.PygNodePropPredDataset`` (``dataset[0]`` a ``Data``) or
            ``NodePropPredDataset`` (``dataset[0]`` a ``(graph dict, labels)`` pair), or any
            object with that interface: ``__getitem__(0)``, ``get_idx_split()`` returning node
            ids under ``train`` / ``valid`` / ``test``, and optionally ``name`` and
            ``task_type``.
        task_names: ``n`` names (default ``<name without "ogbn-">-<j>``).
        features, feature_cache: as :func:`from_pyg` (ogbn-proteins has no node features:
            use ``features="structural"``, or ``load_dataset("ogb:ogbn-proteins")`` for its
            mean edge features).
        name: provenance name (default ``dataset.name``).

    Every task is labelled on every node of OGB's split (a shared ``[N]`` mask per split), unless
    ``y`` marks pairs unlabelled (module docstring).
    """
    check(callable(getattr(dataset, "get_idx_split", None)),
          f"dataset: expected an OGB node-property dataset with get_idx_split(), got "
          f"{type(dataset).__name__}")
    dname = str(getattr(dataset, "name", "ogb"))
    task_type = getattr(dataset, "task_type", None)
    check(task_type in (None, "binary classification"),
          f"{dname}: task_type is {task_type!r}; graphmtl needs binary tasks "
          "('binary classification')")
    item = dataset[0]
    if isinstance(item, tuple):                      # ogb's library-agnostic dataset
        check(len(item) == 2 and isinstance(item[0], Mapping),
              f"{dname}: dataset[0] is neither a Data nor a (graph, labels) pair")
        graph, labels = item
        attrs = {"edge_index": graph.get("edge_index"), "x": graph.get("node_feat"),
                 "y": labels, "num_nodes": graph.get("num_nodes")}
    else:
        attrs = _attributes(item)
    y = attrs.get("y")
    check(y is not None and hasattr(y, "shape") and len(y.shape) >= 1,
          f"{dname}: y: the dataset has no labels")
    N = int(y.shape[0])
    split = dataset.get_idx_split()
    check(isinstance(split, Mapping), f"{dname}: get_idx_split() must return a dict")
    for ours, theirs in _OGB_SPLITS:
        check(theirs in split, f"{dname}: get_idx_split() has no {theirs!r} entry")
        idx = _tensor(split[theirs], f"get_idx_split()[{theirs!r}]").reshape(-1).long()
        check(idx.numel() == 0 or (int(idx.min()) >= 0 and int(idx.max()) < N),
              f"{dname}: get_idx_split()[{theirs!r}]: node ids must lie in [0, {N})")
        mask = torch.zeros(N, dtype=torch.bool)
        mask[idx] = True
        attrs[f"{ours}_mask"] = mask
    short = dname.removeprefix("ogbn-")
    n = int(y.shape[1]) if len(y.shape) == 2 else 1
    names = task_names if task_names is not None else [f"{short}-{j}" for j in range(n)]
    return from_pyg(attrs, task_names=names, splits="masks", features=features,
                    name=name or dname, feature_cache=feature_cache,
                    provenance={"kind": "ogb", "ogb": {
                        "dataset": dname, "split": "get_idx_split() train/valid/test, shared by "
                                                   "all tasks"}})


# ---------------------------------------------------------------------- graphmtl -> PyG
def to_pyg(graph: MultiTaskGraph):
    """A :class:`torch_geometric.data.Data` sharing ``graph``'s tensors (no copy).

    Attributes: ``x`` float32 ``[N, F]``, ``edge_index`` int64 ``[2, 2E]`` (both directions),
    ``y`` bool ``[N, n]``, ``train_mask`` / ``val_mask`` / ``test_mask`` bool ``[N, n]``,
    ``task_names`` (``n`` strings), ``provenance`` (a JSON dict), ``num_nodes``.
    """
    Data = _pyg_data_classes()[0]
    return Data(x=graph.x, edge_index=graph.edge_index, y=graph.y, train_mask=graph.train_mask,
                val_mask=graph.val_mask, test_mask=graph.test_mask,
                task_names=list(graph.task_names), provenance=dict(graph.provenance),
                num_nodes=graph.num_nodes)


# ---------------------------------------------------------------------- files
def load_pyg(path: str | os.PathLike, **kwargs: Any) -> MultiTaskGraph:
    """Load a PyG graph saved with ``torch.save`` and convert it with :func:`from_pyg`.

    Supported files (read with ``torch.load(weights_only=True)``, so nothing else is unpickled):
    ``torch.save(data, path)`` of a homogeneous :class:`torch_geometric.data.Data`, or
    ``torch.save(data.to_dict(), path)`` (a dict of tensors, lists of strings and numbers).

    Args:
        path: the ``.pt`` file.
        **kwargs: passed to :func:`from_pyg` (``splits``, ``features``, ...).
    """
    Data, DataEdgeAttr, DataTensorAttr, GlobalStorage = _pyg_data_classes()
    path = Path(path)
    check(path.is_file(), f"{path}: file not found")
    hint = "save it with torch.save(data, path) or torch.save(data.to_dict(), path)"
    try:
        # Exactly the classes a pickled homogeneous Data references, for this call only.
        with torch.serialization.safe_globals([Data, DataEdgeAttr, DataTensorAttr,
                                               GlobalStorage]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        reason = (f"it needs {found.group(1)}, which is not allowed" if found else
                  f"{type(e).__name__}: {' '.join(str(e).split())[:120]}")
        raise GraphMTLError(f"{path}: cannot be read with torch.load(weights_only=True) "
                            f"({reason}); {hint}") from None
    check(isinstance(obj, (Data, Mapping)),
          f"{path}: holds a {type(obj).__name__}, expected a torch_geometric Data or a dict of "
          f"tensors; {hint}")
    extra = {"source_files": [file_record(path)]}
    kwargs.setdefault("name", path.stem)
    try:
        return from_pyg(obj, provenance={**extra, **kwargs.pop("provenance", {})}, **kwargs)
    except GraphMTLError as e:
        raise GraphMTLError(f"{path}: {e}") from None


# ---------------------------------------------------------------------- helpers
def _pyg_data_classes() -> tuple[type, ...]:
    """``Data`` and the classes a pickled ``Data`` references. The first import of PyG emits a
    burst of ``torch.jit.script`` deprecation warnings (PyG's, not the user's concern), which a
    caller recording warnings, such as ``graphmtl data``, would otherwise print."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated",
                                category=DeprecationWarning)
        from torch_geometric.data import Data
        from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
        from torch_geometric.data.storage import GlobalStorage
    return Data, DataEdgeAttr, DataTensorAttr, GlobalStorage


def _attributes(data: Any) -> dict[str, Any]:
    """The attributes of a ``Data`` / mapping as a plain dict (no tensor copies)."""
    if isinstance(data, Mapping):
        return dict(data)
    to_dict = getattr(data, "to_dict", None)
    check(type(data).__name__ != "HeteroData",
          "data: a HeteroData is not supported; convert it to a homogeneous Data "
          "(data.to_homogeneous()) or pick one node type")
    check(callable(to_dict) and hasattr(data, "edge_index"),
          f"data: expected a torch_geometric Data or a dict of its attributes, got "
          f"{type(data).__name__}")
    return dict(to_dict())


def _tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise GraphMTLError(f"{what}: expected a tensor, got {type(value).__name__}")


def _label_tensor(y: Any) -> tuple[torch.Tensor, bool]:
    """``y`` as a dense 2-d tensor, and whether it was sparse."""
    check(y is not None, "y: missing; graphmtl needs a [N, n] multi-label y (one column per task)")
    sparse = type(y).__name__ == "SparseTensor" and callable(getattr(y, "to_dense", None))
    y = _tensor(y.to_dense() if sparse else y, "y")
    if y.layout != torch.strided:
        y, sparse = y.to_dense(), True
    check(y.dim() == 2, f"y: expected a 2-d [N, n] tensor (one column per binary task), got "
          f"shape {tuple(y.shape)}" + ("; for one task use y.view(-1, 1)" if y.dim() == 1 else ""))
    check(y.shape[0] > 0 and y.shape[1] > 0, f"y: empty, shape {tuple(y.shape)}")
    return y, sparse


def _labels(y: torch.Tensor, sparse: bool, names: list[str]
            ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(y bool [N, n], labelled bool [N, n] or None, convention)`` (module docstring)."""
    if y.is_floating_point() and y.dtype not in (torch.float32, torch.float64):
        y = y.float()                           # numpy has no bfloat16
    y_np = y.detach().cpu().numpy()
    if sparse:                                  # no unlabelled marker: absent = negative
        marker, missing = None, np.zeros(y_np.shape, dtype=bool)
        convention = "sparse, stored entries are positives"
    elif y.dtype == torch.bool:
        return y_np, None, "bool, every pair labelled"
    elif y.is_floating_point():
        marker, missing = "NaN", np.isnan(y_np)
        convention = "float, NaN = unlabelled"
    elif not y.is_complex():
        marker, missing = "-1", y_np == -1
        convention = "integer, -1 = unlabelled"
    else:
        raise GraphMTLError(f"y: expected bool, integer or float values, got {y.dtype}")
    bad = ~missing & (y_np != 0) & (y_np != 1)
    if bad.any():
        v, t = np.argwhere(bad)[0]
        allowed = "0 or 1" + (f" ({marker} marks an unlabelled pair)" if marker else "")
        raise GraphMTLError(f"y: value {y_np[v, t].item()!r} at node {v}, task {names[t]!r} is "
                            f"not {allowed}; {int(bad.sum())} such value(s)")
    labelled = ~missing if missing.any() else None
    return y_np == 1, labelled, convention


def _check_num_nodes(attrs: Mapping[str, Any], N: int) -> None:
    num_nodes = attrs.get("num_nodes")
    if num_nodes is not None:
        check(int(num_nodes) == N, f"num_nodes: {int(num_nodes)}, but y has {N} rows")


def _task_names(names: Any, n: int) -> list[str]:
    if names is None:
        return [f"task_{j}" for j in range(n)]
    check(isinstance(names, (list, tuple)) and all(isinstance(s, str) and s for s in names),
          "task_names: expected a list of non-empty strings")
    check(len(names) == n, f"task_names: expected {n} names (one per column of y), got "
          f"{len(names)}")
    dup = sorted({s for s in names if names.count(s) > 1}) if len(set(names)) < n else []
    check(not dup, f"task_names: {dup[0] if dup else ''!r} appears more than once")
    return list(names)


def _undirected_edges(edge_index: Any, N: int) -> tuple[np.ndarray, dict[str, int]]:
    """Canonical undirected edges ``[E', 2]`` (the loaders' :func:`clean_edges`) and counts."""
    check(edge_index is not None, "edge_index: missing (a graph needs its [2, E] edge_index; "
          "an adj_t SparseTensor is not supported)")
    ei = _tensor(edge_index, "edge_index")
    check(ei.dim() == 2 and ei.shape[0] == 2,
          f"edge_index: expected shape [2, E], got {tuple(ei.shape)}")
    check(not ei.is_floating_point() and not ei.is_complex() and ei.dtype != torch.bool,
          f"edge_index: expected integer node ids, got {ei.dtype}")
    e = ei.detach().cpu().numpy().astype(np.int64, copy=False)
    if e.size:
        lo, hi = int(e.min()), int(e.max())
        check(lo >= 0 and hi < N, f"edge_index: node ids must lie in [0, {N}) (N = rows of y), "
              f"got [{lo}, {hi}]")
    loops = e[0] == e[1]
    directed = sorted_unique(e[0, ~loops] * np.int64(N) + e[1, ~loops]).size
    with warnings.catch_warnings():
        # clean_edges counts u-v next to v-u as a duplicate: PyG stores every undirected edge
        # that way, so its warning is replaced by one with the counts that mean something here.
        warnings.simplefilter("ignore", DataWarning)
        canon = clean_edges(e.T, "edge_index")
    info = {"input": int(e.shape[1]), "self_loops": int(loops.sum()),
            "repeated": int((~loops).sum()) - directed,
            "one_way": 2 * int(canon.shape[0]) - directed, "undirected": int(canon.shape[0])}
    changes = [f"{info[k]} {what}" for k, what in (
        ("self_loops", "self-loop(s) dropped"), ("repeated", "repeated edge(s) dropped"),
        ("one_way", "one-way edge(s) given their reverse")) if info[k]]
    if changes:
        warnings.warn(f"edge_index: {', '.join(changes)} (graphmtl graphs are undirected)",
                      DataWarning, stacklevel=3)
    return canon, info


def _features(x: Any, features: str | FeatureConfig, edges: np.ndarray, N: int,
              cache: str | os.PathLike | None) -> tuple[torch.Tensor, dict[str, Any]]:
    check(isinstance(features, FeatureConfig) or features in FEATURE_CHOICES,
          f"features: expected one of {', '.join(FEATURE_CHOICES)} or a FeatureConfig, got "
          f"{features!r}")
    if features == "x" or (features == "auto" and x is not None):
        check(x is not None, "x: the data has no node features; ask for structural ones "
              "computed from the edges: features='structural' (or 'auto', or a FeatureConfig) "
              "in Python, ',features=128' after a .pt path in a dataset spec")
        x = _tensor(x, "x")
        check(x.dim() == 2 and x.shape[0] == N,
              f"x: expected shape [{N}, F] (N = rows of y), got {tuple(x.shape)}")
        check(x.dtype != torch.bool and not x.is_complex(), f"x: expected numbers, got {x.dtype}")
        x = x.detach().cpu().to(torch.float32).contiguous()
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            v, f = (~finite).nonzero()[0].tolist()
            kind = "NaN" if bool(torch.isnan(x).any()) else "infinite"
            raise GraphMTLError(f"x: {int((~finite).sum())} {kind} value(s), the first at node "
                                f"{v}, feature {f}; fill or drop them before conversion")
        return x, {"method": "x", "dim": int(x.shape[1])}
    config = features if isinstance(features, FeatureConfig) else FeatureConfig()
    ei = np.concatenate([edges.T, edges.T[::-1]], axis=1)
    return structural_features(ei, N, config, cache_dir=cache), config.to_dict()


def _split_choice(splits: SplitConfig | str | None, attrs: Mapping[str, Any]
                  ) -> SplitConfig | None:
    """The stratified split to draw, or ``None`` to use the data's masks."""
    present = [k for k in MASKS if attrs.get(k) is not None]
    if isinstance(splits, SplitConfig) or splits == "stratified":
        if present:
            warnings.warn(f"{', '.join(present)} ignored: stratified splits were asked for",
                          DataWarning, stacklevel=3)
        return splits if isinstance(splits, SplitConfig) else SplitConfig()
    check(splits in (None, "masks"), f"splits: expected None, 'masks', 'stratified' or a "
          f"SplitConfig, got {splits!r}")
    if splits is None and not present:
        return SplitConfig()
    missing = [k for k in MASKS if k not in present]
    check(not missing, f"{missing[0] if missing else ''}: missing; give train_mask, val_mask and "
          "test_mask, or none of them for seeded stratified splits")
    return None


def _masks(attrs: Mapping[str, Any], N: int, names: list[str]
           ) -> tuple[dict[str, torch.Tensor], str]:
    """The three masks as bool ``[N, n]`` and a description of their shapes."""
    n = len(names)
    out, shapes = {}, set()
    for key in MASKS:
        m = _tensor(attrs[key], key)
        check(tuple(m.shape) in ((N,), (N, n)),
              f"{key}: expected shape [{N}] (shared by all tasks) or [{N}, {n}] (per task), got "
              f"{tuple(m.shape)}")
        if m.dtype != torch.bool:
            check(not m.is_complex() and bool(((m == 0) | (m == 1)).all()),
                  f"{key}: expected bool (or 0 / 1) values, got {m.dtype}")
            m = m != 0
        shapes.add("shared [N]" if m.dim() == 1 else "per task [N, n]")
        out[key] = m.detach().cpu().view(N, -1).expand(N, n).contiguous()
    for i, a in enumerate(MASKS):
        for b in MASKS[i + 1:]:
            both = (out[a] & out[b]).nonzero()
            if both.numel():
                v, t = both[0].tolist()
                raise GraphMTLError(f"{a} and {b}: both contain node {v} (task {names[t]!r}); "
                                    "the splits must be disjoint")
    return out, " and ".join(sorted(shapes))


def _check_every_split_has_both_classes(y: torch.Tensor, masks: Mapping[str, torch.Tensor],
                                        names: list[str]) -> None:
    for key in MASKS:
        m = masks[key]
        pos, lab = (m & y).sum(0), m.sum(0)
        for count, what in ((pos, "positives"), (lab - pos, "negatives")):
            empty = (count == 0).nonzero()
            if empty.numel():
                t = int(empty[0])
                raise GraphMTLError(
                    f"task {names[t]!r}: no {what} in {key} ({int(lab[t])} labelled nodes there, "
                    f"{empty.numel()} task(s) affected); every task needs both classes in each "
                    "split: drop the task, or pass splits='stratified' for seeded stratified "
                    "splits")


def _is_json(obj: Any) -> bool:
    try:
        json.dumps(obj)
        return True
    except (TypeError, ValueError):
        return False
