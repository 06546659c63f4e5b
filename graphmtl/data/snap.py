"""SNAP ground-truth community graphs as multitask graphs (the recipe of docs/data.md).

Files (SNAP's own formats, plain or gzip'd):

- ``com-NAME.ungraph.txt[.gz]``: ``#`` comment header, then one ``u<TAB>v`` edge per line.
- ``com-NAME.top5000.cmty.txt[.gz]`` / ``com-NAME.all.cmty.txt[.gz]``: one community per line,
  its member ids separated by tabs.

Recipe (:func:`load_snap`):

1. Take the ``k`` largest communities, one line = one community, duplicate lines kept as the file
   has them (``1 <= k <=`` the file's number of non-blank lines).
2. Keep the subgraph induced on the union of their members, undirected (self-loops dropped,
   duplicate edges merged, each with a :class:`~graphmtl.data.build.DataWarning`), nodes relabelled
   ``0..N-1`` in increasing order of their SNAP id.
3. One binary task per community: every node of the union is labelled for every task, the
   community's members are its positives. Tasks are ordered largest first (equal sizes in file
   order) and named ``c<line>`` after the community's line in the file.
4. Per task, positives and negatives are split separately into train / val / test
   (:func:`~graphmtl.data.splits.stratified_task_splits`, default 20 / 20 / 60, seeded).
5. Node features: structural (:mod:`graphmtl.data.features`, FastRP + log-degree, 128-d).

Every member of every line of the community file must be a node of the graph (an error names the
first line that breaks this: the two files do not belong together otherwise).

**Tie rule** for communities of equal size at the cut-off (``ties``):

- ``"reference"`` (default): the ``k`` communities are the last ``k`` of
  ``numpy.argsort(sizes, kind="heapsort")`` (ascending by size). Among equal sizes this picks in
  numpy's heapsort order, which is deterministic and platform independent. It is the rule that
  reproduces the reference sizes of docs/data.md on the shared files (YouTube-100 16,751 nodes /
  104,513 edges; DBLP-100 57,367 / 209,833): on those files it selects the same communities as
  ``numpy.argsort(sizes)[-k:]``, the common idiom, whose default quicksort may depend on the CPU's
  SIMD support.
- ``"first"``: a stable sort by decreasing size; among equal sizes the earlier line wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphmtl.data.build import assemble, clean_edges, file_record, sorted_unique
from graphmtl.data.features import FeatureConfig, structural_features
from graphmtl.data.graph import MultiTaskGraph
from graphmtl.data.splits import SplitConfig
from graphmtl.data.textio import parse_int_rows, read_bytes
from graphmtl.errors import GraphMTLError, check

TIE_RULES = ("reference", "first")
COMMUNITY_FILES = ("top5000", "all")
#: Bump when the recipe's output changes, so cached prepared graphs are rebuilt.
SNAP_RECIPE_VERSION = 1


@dataclass(frozen=True)
class SnapRecipe:
    """Parameters of :func:`load_snap`.

    Args:
        k: number of largest communities (tasks), ``>= 1``.
        ties: tie rule at the cut-off, ``"reference"`` or ``"first"`` (module docstring).
        split: per-task split fractions and seed.
    """

    k: int = 100
    ties: str = "reference"
    split: SplitConfig = field(default_factory=SplitConfig)

    def __post_init__(self) -> None:
        is_int = isinstance(self.k, (int, np.integer)) and not isinstance(self.k, bool)
        check(is_int and self.k >= 1, f"k: must be an integer >= 1, got {self.k!r}")
        check(self.ties in TIE_RULES,
              f"ties: must be one of {', '.join(TIE_RULES)}, got {self.ties!r}")


@dataclass(frozen=True)
class Communities:
    """Communities of a ``.cmty.txt`` file in CSR form.

    Attributes:
        members: int64 ``[M]`` member ids, community after community.
        ptr: int64 ``[C + 1]``; community ``c`` is ``members[ptr[c]:ptr[c + 1]]``.
        line: int64 ``[C]`` 1-based line of community ``c`` in the file.
        path: the file.
    """

    members: np.ndarray
    ptr: np.ndarray
    line: np.ndarray
    path: Path

    @property
    def num_communities(self) -> int:
        return int(self.line.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """int64 ``[C]``: members per line (a member repeated on one line counts once)."""
        return np.diff(self.ptr)


def snap_files(prefix: str | os.PathLike, communities: str = "top5000") -> tuple[Path, Path]:
    """The graph and community files of a SNAP dataset ``prefix`` (e.g. ``/data/com-dblp``).

    Accepts ``.txt`` and ``.txt.gz``; a directory prefix is not guessed.

    Raises:
        GraphMTLError: a file is missing (the message lists the names looked for).
    """
    check(communities in COMMUNITY_FILES,
          f"communities: must be one of {', '.join(COMMUNITY_FILES)}, got {communities!r}")
    prefix = Path(prefix)
    found = []
    for suffix in ("ungraph.txt", f"{communities}.cmty.txt"):
        names = [prefix.parent / f"{prefix.name}.{suffix}{ext}" for ext in (".gz", "")]
        hit = next((p for p in names if p.is_file()), None)
        check(hit is not None, f"{names[0]}: file not found (nor {names[1].name})")
        found.append(hit)
    return found[0], found[1]


def read_snap_graph(path: str | os.PathLike) -> np.ndarray:
    """Read a SNAP edge list as canonical undirected edges.

    Returns:
        int64 ``[E, 2]``, ``u < v``, unique, sorted (self-loops and duplicates dropped with a
        :class:`~graphmtl.data.build.DataWarning`).

    Raises:
        GraphMTLError: empty file, malformed line or non-integer id (names the line).
    """
    path = Path(path)
    rows = parse_int_rows(read_bytes(path), path, columns=2)
    check(rows.num_rows > 0, f"{path.name}: no edges in the file")
    return clean_edges(rows.values.reshape(-1, 2), path)


def read_communities(path: str | os.PathLike) -> Communities:
    """Read a SNAP ``.cmty.txt`` file: one community per non-blank line.

    A member repeated within one line is kept once (members are sorted within a line).

    Raises:
        GraphMTLError: empty file, or a malformed line / non-integer id (names the line).
    """
    path = Path(path)
    rows = parse_int_rows(read_bytes(path), path)
    check(rows.num_rows > 0, f"{path.name}: no communities in the file")
    # Sort members within each line (line index as the major key), then drop in-line repeats.
    line_of = np.repeat(np.arange(rows.num_rows), rows.counts)
    order = np.lexsort((rows.values, line_of))
    members, line_of = rows.values[order], line_of[order]
    keep = np.ones(members.size, dtype=bool)
    keep[1:] = (members[1:] != members[:-1]) | (line_of[1:] != line_of[:-1])
    members, line_of = members[keep], line_of[keep]
    ptr = np.concatenate([[0], np.cumsum(np.bincount(line_of, minlength=rows.num_rows))])
    return Communities(members=members, ptr=ptr.astype(np.int64), line=rows.line, path=path)


def largest_communities(sizes: np.ndarray, k: int, ties: str = "reference") -> np.ndarray:
    """Indices of the ``k`` largest communities (which ones: the tie rule of the module
    docstring), ordered largest first and, among equal sizes, by line.

    Raises:
        GraphMTLError: ``k`` outside ``[1, len(sizes)]``.
    """
    C = int(len(sizes))
    check(1 <= k <= C, f"k={k}: must lie in [1, {C}] (the file has {C} communities)")
    check(ties in TIE_RULES, f"ties: must be one of {', '.join(TIE_RULES)}, got {ties!r}")
    sizes = np.asarray(sizes, dtype=np.int64)
    if ties == "reference":
        chosen = np.argsort(sizes, kind="heapsort")[-k:]
        return chosen[np.lexsort((chosen, -sizes[chosen]))]   # largest first, then file order
    return np.argsort(-sizes, kind="stable")[:k]


def load_snap(graph_path: str | os.PathLike, cmty_path: str | os.PathLike,
              recipe: SnapRecipe | None = None, features: FeatureConfig | None = FeatureConfig(),
              *, name: str | None = None, feature_cache: str | os.PathLike | None = None
              ) -> MultiTaskGraph:
    """Build the multitask graph of the SNAP recipe (module docstring).

    Args:
        graph_path: ``com-NAME.ungraph.txt[.gz]``.
        cmty_path: ``com-NAME.{top5000,all}.cmty.txt[.gz]``.
        recipe: ``k``, tie rule, splits (``None``: defaults, k = 100).
        features: structural feature parameters; ``None`` gives a constant 1-d feature.
        name: recorded in the provenance (default: derived from the file name).
        feature_cache: directory for :func:`structural_features`' cache.

    Returns:
        A :class:`MultiTaskGraph` with ``N`` = size of the union, ``n = k`` tasks.

    Raises:
        GraphMTLError: bad files (line named), members missing from the graph, ``k`` out of
            range, or a task too small to give every split a positive (task named).
    """
    recipe = recipe or SnapRecipe()
    graph_path, cmty_path = Path(graph_path), Path(cmty_path)
    edges = read_snap_graph(graph_path)
    comms = read_communities(cmty_path)
    _check_members_in_graph(comms, edges, graph_path)
    chosen = largest_communities(comms.sizes, recipe.k, recipe.ties)

    lo, hi = comms.ptr[chosen], comms.ptr[chosen + 1]
    counts = hi - lo
    flat = np.concatenate([comms.members[a:b] for a, b in zip(lo, hi)])
    nodes = sorted_unique(flat)                                       # SNAP ids, sorted
    N, n = int(nodes.size), int(recipe.k)
    # Induced subgraph: keep edges with both ends in the union, relabel by rank of the SNAP id.
    iu, ou = _lookup(nodes, edges[:, 0])
    iv, ov = _lookup(nodes, edges[:, 1])
    keep = ou & ov
    sub = np.stack([iu[keep], iv[keep]], axis=1)                  # still u < v, unique, sorted
    y = np.zeros((N, n), dtype=bool)
    y[np.searchsorted(nodes, flat), np.repeat(np.arange(n), counts)] = True

    task_names = [f"c{int(comms.line[c])}" for c in chosen]
    x = _features(sub, N, features, feature_cache)
    provenance: dict[str, Any] = {
        "name": name or _dataset_name(graph_path),
        "kind": "snap",
        "source_files": [file_record(graph_path), file_record(cmty_path)],
        "recipe": {"k": n, "ties": recipe.ties, "community_file": cmty_path.name,
                   "version": SNAP_RECIPE_VERSION},
        "community_lines": [int(comms.line[c]) for c in chosen],
        "community_sizes": [int(s) for s in counts],
        "features": features.to_dict() if features else {"method": "constant"},
        "source_node_ids": "relabelled 0..N-1 in increasing SNAP id order",
    }
    return assemble(edges=sub, num_nodes=N, y=y, task_names=task_names, split=recipe.split,
                    x=x, provenance=provenance)


def _features(edges: np.ndarray, N: int, features: FeatureConfig | None,
              cache: str | os.PathLike | None) -> torch.Tensor:
    if features is None:
        return torch.ones(N, 1)
    ei = np.concatenate([edges.T, edges.T[::-1]], axis=1)
    return structural_features(ei, N, features, cache_dir=cache)


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each id in ``sorted_ids`` and whether it is there."""
    pos = np.searchsorted(sorted_ids, ids)
    found = pos < sorted_ids.size
    found[found] = sorted_ids[pos[found]] == ids[found]
    return pos, found


def _check_members_in_graph(comms: Communities, edges: np.ndarray, graph_path: Path) -> None:
    graph_nodes = sorted_unique(edges)
    _, found = _lookup(graph_nodes, comms.members)
    if not bool(found.all()):
        first = int(np.flatnonzero(~found)[0])
        c = int(np.searchsorted(comms.ptr, first, side="right") - 1)
        missing = int((~found).sum())
        raise GraphMTLError(
            f"{comms.path.name}: line {int(comms.line[c])}: node {int(comms.members[first])} is "
            f"not in the graph {graph_path.name} ({missing} membership(s) in all refer to absent "
            "nodes; do the two files belong together?)")


def _dataset_name(graph_path: Path) -> str:
    stem = graph_path.name.split(".ungraph")[0]
    return f"snap:{stem.removeprefix('com-')}"


__all__ = ["SnapRecipe", "Communities", "snap_files", "read_snap_graph", "read_communities",
           "largest_communities", "load_snap", "TIE_RULES", "COMMUNITY_FILES",
           "SNAP_RECIPE_VERSION"]
