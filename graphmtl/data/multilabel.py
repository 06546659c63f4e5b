"""Real multi-label node classification graphs: BlogCatalog (``.mat``) and Deezer (CSV + JSON).

Both become a :class:`~graphmtl.data.graph.MultiTaskGraph` with one binary task per label, every
node labelled for every task (the absence of a label is a negative), per-task seeded splits of
positives and negatives, and structural node features (:mod:`graphmtl.data.features`; neither
dataset has node attributes).

Formats:

- **BlogCatalog** (Tang & Liu 2009, as distributed with DeepWalk): a MATLAB v5 file with
  ``network`` (sparse ``N x N`` adjacency) and ``group`` (sparse ``N x L`` node-label matrix).
  The adjacency is symmetrised (with a warning if it was not); tasks are named ``label<j>``
  (the file has no label names).
- **Deezer** (Rozemberczki et al., GEMSEC): ``PREFIX.edges.csv[.gz]`` with a ``node_1,node_2``
  header and one edge per line, and ``PREFIX.genres.json[.gz]``, ``{"node id": [genre, ...]}``.
  Tasks are the genres, sorted by name.

Labels too rare to split: by default (``min_positives=None``) a label with fewer positives than
the split needs to give each of train / val / test one (3 at 20 / 20 / 60) is dropped with a
:class:`~graphmtl.data.build.DataWarning` that gives the count (Deezer HU has 6 such genres).
``min_positives=N`` drops labels with fewer than ``N`` positives instead; ``min_positives=0``
keeps every label, and a label too rare to split is then an error naming it.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graphmtl.data.build import (DataWarning, assemble, clean_edges, drop_rare_tasks,
                                  file_record, min_splittable)
from graphmtl.data.features import FeatureConfig, structural_features
from graphmtl.data.graph import MultiTaskGraph
from graphmtl.data.splits import SplitConfig
from graphmtl.data.textio import parse_int_rows, read_bytes
from graphmtl.errors import GraphMTLError, check

#: Bump when the output of these loaders changes, so cached prepared graphs are rebuilt.
MULTILABEL_RECIPE_VERSION = 1


def read_blogcatalog(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a BlogCatalog-style ``.mat`` file.

    Returns:
        ``(edges, y, names)``: canonical undirected int64 ``[E, 2]``, bool ``[N, L]``, ``L`` names.

    Raises:
        GraphMTLError: not a MATLAB file, missing ``network`` / ``group``, shape mismatch.
    """
    import scipy.io

    path = Path(path)
    check(path.is_file(), f"{path}: file not found")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for non-MATLAB input
        raise GraphMTLError(f"{path.name}: not a readable MATLAB .mat file ({e})") from None
    for key in ("network", "group"):
        check(key in mat, f"{path.name}: no '{key}' matrix (found: "
              f"{', '.join(k for k in mat if not k.startswith('__'))})")
    A = sp.coo_matrix(mat["network"])
    G = sp.csr_matrix(mat["group"])
    N = A.shape[0]
    check(A.shape == (N, N), f"{path.name}: 'network' must be square, got {A.shape}")
    check(G.shape[0] == N, f"{path.name}: 'group' has {G.shape[0]} rows, 'network' {N} nodes")
    A = (A.tocsr() != 0).astype(np.int8)
    one_way = int((A != A.T).nnz)
    if one_way:
        warnings.warn(f"{path.name}: 'network' is not symmetric ({one_way} one-way entries); "
                      "symmetrised", DataWarning, stacklevel=2)
    # Each undirected edge once; the diagonal is kept so clean_edges reports self-loops.
    U = sp.triu(A + A.T).tocoo()
    edges = clean_edges(np.stack([U.row, U.col], axis=1).astype(np.int64), path)
    y = (G != 0).toarray()
    return edges, y, [f"label{j}" for j in range(G.shape[1])]


def deezer_files(prefix: str | os.PathLike) -> tuple[Path, Path]:
    """``PREFIX.edges.csv[.gz]`` and ``PREFIX.genres.json[.gz]`` (gzip'd preferred)."""
    prefix = Path(prefix)
    found = []
    for suffix in ("edges.csv", "genres.json"):
        names = [prefix.parent / f"{prefix.name}.{suffix}{ext}" for ext in (".gz", "")]
        hit = next((p for p in names if p.is_file()), None)
        check(hit is not None, f"{names[0]}: file not found (nor {names[1].name})")
        found.append(hit)
    return found[0], found[1]


def read_deezer(edges_path: str | os.PathLike, genres_path: str | os.PathLike
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a Deezer edge CSV and genre JSON.

    ``N`` is one more than the largest node id in either file; a node absent from the JSON has
    no genre (negative for every task).

    Returns:
        ``(edges, y, names)`` as :func:`read_blogcatalog`, genres sorted by name.

    Raises:
        GraphMTLError: malformed CSV line (line named), invalid JSON, non-integer node ids or
            non-string genres (node named), empty files.
    """
    edges_path, genres_path = Path(edges_path), Path(genres_path)
    data = read_bytes(edges_path)
    rows = parse_int_rows(data, edges_path, delimiter=b",", comment=b"#",
                          header=not data[:1].isdigit(), columns=2)
    check(rows.num_rows > 0, f"{edges_path.name}: no edges in the file")
    edges = clean_edges(rows.values.reshape(-1, 2), edges_path)
    try:
        genres = json.loads(read_bytes(genres_path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        line = f"line {e.lineno}: " if isinstance(e, json.JSONDecodeError) else ""
        raise GraphMTLError(f"{genres_path.name}: {line}invalid JSON ({e})") from None
    check(isinstance(genres, dict) and genres, f"{genres_path.name}: expected a non-empty JSON "
          "object {node id: [genre, ...]}")
    ids = []
    for key, value in genres.items():
        check(str(key).isdigit(), f"{genres_path.name}: node id {key!r} is not a non-negative "
              "integer")
        check(isinstance(value, list) and all(isinstance(g, str) for g in value),
              f"{genres_path.name}: node {key}: expected a list of genre names")
        ids.append(int(key))
    names = sorted({g for v in genres.values() for g in v})
    check(names, f"{genres_path.name}: no genres in the file")
    N = max(int(edges.max()) + 1 if edges.size else 0, max(ids) + 1)
    col = {g: j for j, g in enumerate(names)}
    r = np.fromiter((int(k) for k, v in genres.items() for _ in v), dtype=np.int64)
    c = np.fromiter((col[g] for v in genres.values() for g in v), dtype=np.int64)
    y = np.zeros((N, len(names)), dtype=bool)
    y[r, c] = True
    return edges, y, names


def load_blogcatalog(path: str | os.PathLike, split: SplitConfig | None = None,
                     features: FeatureConfig | None = FeatureConfig(), *,
                     min_positives: int | None = None,
                     feature_cache: str | os.PathLike | None = None
                     ) -> MultiTaskGraph:
    """BlogCatalog as a multitask graph (one task per group label).

    Args:
        path: the ``.mat`` file.
        split: per-task split fractions and seed (``None``: 20 / 20 / 60, seed 0).
        features: structural features (``None``: a constant 1-d feature).
        min_positives: drop labels with fewer positives (``None``: the fewest the split can
            divide; 0: keep all, a label too rare to split is then an error).
        feature_cache: cache directory for the features.
    """
    path = Path(path)
    edges, y, names = read_blogcatalog(path)
    return _build("blogcatalog", [path], edges, y, names, split, features, min_positives,
                  feature_cache)


def load_deezer(edges_path: str | os.PathLike, genres_path: str | os.PathLike,
                split: SplitConfig | None = None, features: FeatureConfig | None = FeatureConfig(),
                *, min_positives: int | None = None, feature_cache: str | os.PathLike | None = None,
                name: str = "deezer") -> MultiTaskGraph:
    """Deezer as a multitask graph (one task per genre); arguments as :func:`load_blogcatalog`."""
    edges_path, genres_path = Path(edges_path), Path(genres_path)
    edges, y, names = read_deezer(edges_path, genres_path)
    return _build(name, [edges_path, genres_path], edges, y, names, split, features,
                  min_positives, feature_cache)


def _build(name, paths, edges, y, names, split, features, min_positives, feature_cache
           ) -> MultiTaskGraph:
    split = split or SplitConfig()
    if min_positives is None:
        min_positives = min_splittable(split)
    y, names = drop_rare_tasks(y, names, min_positives, Path(paths[-1]).name)
    N = y.shape[0]
    if features is None:
        x = torch.ones(N, 1)
    else:
        ei = np.concatenate([edges.T, edges.T[::-1]], axis=1)
        x = structural_features(ei, N, features, cache_dir=feature_cache)
    provenance = {"name": name, "kind": "multilabel",
                  "source_files": [file_record(p) for p in paths],
                  "recipe": {"min_positives": int(min_positives),
                             "version": MULTILABEL_RECIPE_VERSION},
                  "features": features.to_dict() if features else {"method": "constant"}}
    try:
        return assemble(edges=edges, num_nodes=N, y=y, task_names=names,
                        split=split, x=x, provenance=provenance)
    except GraphMTLError as e:
        if "positives, too few" not in str(e):
            raise
        raise GraphMTLError(f"{name}: {e}; set min_positives=N to drop labels with fewer "
                            "than N positives") from None
