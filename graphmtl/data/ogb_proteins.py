"""ogbn-proteins (Hu et al., Open Graph Benchmark 2020) through ``ogb``'s own dataset class.

ogbn-proteins is a protein-association graph (132,534 nodes, 39.6M undirected edges with 8-d
association-strength features) with 112 binary node tasks (protein functions), evaluated by
ROC-AUC, and split by species. It becomes a :class:`~graphmtl.data.graph.MultiTaskGraph` with:

- 112 tasks named ``proteins-<j>``; a node is labelled for every task in the split OGB gives it
  (``train`` / ``valid`` -> ``val`` / ``test``), so the masks are OGB's species split repeated over
  tasks, not :func:`~graphmtl.data.splits.stratified_task_splits`;
- node features: ``"edge"`` (default) the mean of the 8-d features of a node's incident edges,
  as is usual for this dataset, or structural features (:mod:`graphmtl.data.features`).

The raw files must already be under ``ROOT/ogbn_proteins`` (as OGB unpacks
``http://snap.stanford.edu/ogb/data/nodeproppred/proteins.zip``): this loader never downloads and
never lets ``ogb`` ask a question on the terminal; a missing or stale folder is a one-line error.
The dataset folder is only read (see :func:`_read_with_ogb`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from graphmtl.data.build import file_record
from graphmtl.data.features import FeatureConfig, structural_features
from graphmtl.data.graph import MultiTaskGraph
from graphmtl.errors import GraphMTLError, check

NAME = "ogbn-proteins"
DOWNLOAD_URL = "http://snap.stanford.edu/ogb/data/nodeproppred/proteins.zip"
#: Bump when the output of this loader changes, so cached prepared graphs are rebuilt.
OGB_RECIPE_VERSION = 1


def proteins_dir(root: str | os.PathLike) -> Path:
    """``ROOT/ogbn_proteins`` after checking that ogb can load it without downloading or asking.

    Raises:
        GraphMTLError: the folder, its release marker or its raw / processed files are missing.
    """
    root = Path(root)
    folder = root / "ogbn_proteins"
    hint = (f"download {DOWNLOAD_URL} and unzip it into {root} so that {folder}/raw/edge.csv.gz "
            "exists (rename the unzipped 'proteins' folder to 'ogbn_proteins')")
    check(folder.is_dir(), f"{NAME}: no dataset at {folder}; {hint}")
    version = _meta_version()
    check((folder / f"RELEASE_v{version}.txt").is_file(),
          f"{NAME}: {folder} lacks RELEASE_v{version}.txt (an old or partial copy); {hint}")
    has_raw = (folder / "raw" / "edge.csv.gz").is_file()
    has_processed = (folder / "processed" / "data_processed").is_file()
    check(has_raw or has_processed, f"{NAME}: {folder} has neither raw/edge.csv.gz nor "
          f"processed/data_processed; {hint}")
    check((folder / "split" / "species" / "train.csv.gz").is_file(),
          f"{NAME}: {folder}/split/species/train.csv.gz not found; {hint}")
    return folder


def load_ogbn_proteins(root: str | os.PathLike, features: str | FeatureConfig = "edge", *,
                       feature_cache: str | os.PathLike | None = None) -> MultiTaskGraph:
    """ogbn-proteins as a multitask graph (module docstring).

    Args:
        root: the folder that contains ``ogbn_proteins/``.
        features: ``"edge"`` (mean incident edge features, 8-d) or a :class:`FeatureConfig`.
        feature_cache: cache directory for structural features (also holds ogb's scratch
            folder while loading; default: the system temporary folder).
    """
    folder = proteins_dir(root)
    check(features == "edge" or isinstance(features, FeatureConfig),
          f"features: expected 'edge' or a FeatureConfig for {NAME}, got {features!r}")
    graph, labels, split = _read_with_ogb(Path(root), scratch=feature_cache)
    N = int(graph["num_nodes"])
    edge_index = torch.as_tensor(np.asarray(graph["edge_index"], dtype=np.int64))
    check(edge_index.dim() == 2 and edge_index.shape[0] == 2,
          f"{NAME}: unexpected edge_index shape {tuple(edge_index.shape)}")
    labels = np.asarray(labels)
    check(labels.shape[0] == N, f"{NAME}: labels have {labels.shape[0]} rows for {N} nodes")
    y = torch.from_numpy(labels > 0)
    n = y.shape[1]
    # ogb adds the inverse edges itself (add_inverse_edge=True), so edge_index holds both
    # directions; coalesce in case a raw edge was already listed both ways or is a self-loop.
    from torch_geometric.utils import coalesce, remove_self_loops

    edge_index, edge_attr = remove_self_loops(edge_index, _edge_feat(graph, edge_index))
    if features == "edge":
        check(edge_attr is not None, f"{NAME}: the files have no edge features; use features=128")
        x = _mean_incident(edge_index, edge_attr, N)
        feat_prov = {"method": "mean incident edge features", "dim": int(x.shape[1])}
    else:
        x = structural_features(edge_index, N, features, cache_dir=feature_cache)
        feat_prov = features.to_dict()
    edge_index = coalesce(edge_index, num_nodes=N)

    masks = {}
    for ours, theirs in (("train", "train"), ("val", "valid"), ("test", "test")):
        idx = torch.from_numpy(np.array(split[theirs], dtype=np.int64).ravel())
        check(idx.numel() == 0 or (int(idx.min()) >= 0 and int(idx.max()) < N),
              f"{NAME}: split '{theirs}' has node ids outside [0, {N})")
        m = torch.zeros(N, dtype=torch.bool)
        m[idx] = True
        masks[ours] = m[:, None].expand(N, n).contiguous()
    raw = [folder / "raw" / f for f in ("edge.csv.gz", "node-label.csv.gz")
           if (folder / "raw" / f).is_file()]
    provenance = {"name": NAME, "kind": "ogb",
                  "source_files": [file_record(p) for p in raw],
                  "recipe": {"split": "ogb species split (train/valid/test), all tasks labelled "
                                      "on every split node", "version": OGB_RECIPE_VERSION},
                  "features": feat_prov}
    return MultiTaskGraph(x=x.float().contiguous(), edge_index=edge_index, y=y,
                          train_mask=masks["train"], val_mask=masks["val"],
                          test_mask=masks["test"], task_names=[f"proteins-{j}" for j in range(n)],
                          provenance=provenance)


def _read_with_ogb(root: Path, scratch: str | os.PathLike | None = None):
    """Load with :class:`ogb.nodeproppred.NodePropPredDataset`; its prints go to stderr.

    ogb parses the CSVs and caches the result as ``processed/data_processed``, a protocol-4 pickle
    of numpy arrays that ``torch.load(weights_only=True)`` cannot read, and it writes that file
    into the dataset folder (which may be read-only). So ogb works on a scratch copy made of
    symlinks to the raw and split files, and its pickle is deleted afterwards: nothing is ever
    unpickled. The parsed graph is cached by :func:`graphmtl.data.load_dataset` as ``.npz``.
    """
    from ogb.nodeproppred import NodePropPredDataset

    folder = root / "ogbn_proteins"
    check((folder / "raw" / "edge.csv.gz").is_file(),
          f"{NAME}: {folder}/raw/edge.csv.gz not found (a processed/data_processed pickle alone "
          f"cannot be loaded safely); download {DOWNLOAD_URL} again")
    if scratch is not None:
        Path(scratch).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ogb-", dir=scratch) as tmp:
        work = Path(tmp) / "ogbn_proteins"
        work.mkdir()
        (work / "processed").mkdir()
        for entry in folder.iterdir():
            if entry.name != "processed":
                (work / entry.name).symlink_to(entry.resolve())
        try:
            with contextlib.redirect_stdout(sys.stderr):
                dataset = NodePropPredDataset(name=NAME, root=tmp)
                split = dataset.get_idx_split()
                graph, labels = dataset[0]
        except GraphMTLError:
            raise
        except Exception as e:  # ogb / pandas raise many types on damaged files
            msg = " ".join(str(e).split())[:200]
            raise GraphMTLError(f"{NAME}: ogb could not read {folder} "
                                f"({type(e).__name__}: {msg})") from None
    return graph, labels, split


def _edge_feat(graph: dict, edge_index: torch.Tensor) -> torch.Tensor | None:
    feat = graph.get("edge_feat")
    if feat is None:
        return None
    feat = torch.as_tensor(np.asarray(feat, dtype=np.float32))
    check(feat.shape[0] == edge_index.shape[1],
          f"{NAME}: {feat.shape[0]} edge feature rows for {edge_index.shape[1]} edges")
    return feat


def _mean_incident(edge_index: torch.Tensor, edge_attr: torch.Tensor, N: int) -> torch.Tensor:
    from torch_geometric.utils import scatter

    return scatter(edge_attr, edge_index[1], dim=0, dim_size=N, reduce="mean")


def _meta_version() -> str:
    import pandas as pd
    import ogb.nodeproppred

    master = pd.read_csv(Path(ogb.nodeproppred.__file__).parent / "master.csv", index_col=0,
                         keep_default_na=False)
    if NAME not in master:
        raise GraphMTLError(f"{NAME}: the installed ogb does not know this dataset")
    return str(master[NAME]["version"])
