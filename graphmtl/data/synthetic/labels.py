"""Label models: annotation tasks, missed members, labelled node sets, and the planted groups of a
generated graph (step 6 of the generator)."""

from __future__ import annotations

import numpy as np

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.data.synthetic.config import SyntheticConfig
from graphmtl.data.synthetic.sampling import by_first_appearance, near_equal
from graphmtl.errors import check


def annotation_tasks(cfg: SyntheticConfig, rng: np.random.Generator, sizes: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Group per annotation task (int64 ``[n]``, near-equal groups in a seeded order, ids by
    first appearance) and each group's latent community (int64 ``[G]``: the G largest planted
    communities, largest first by group id)."""
    n, G = cfg.num_tasks, cfg.num_groups
    largest = np.argsort(-sizes, kind="stable")[:G]
    group_old = rng.permutation(np.repeat(np.arange(G), near_equal(n, G)))
    task_group, old_of_new = by_first_appearance(group_old)
    return task_group, largest[old_of_new].astype(np.int64)


def annotate(cfg: SyntheticConfig, rng: np.random.Generator, y: np.ndarray,
             task_group: np.ndarray) -> np.ndarray | None:
    """Apply ``member_drop`` to ``y`` (bool ``[N, n]``, in place) and draw the labelled nodes
    of each task (bool ``[N, n]``, or ``None`` when every node is labelled for every task).
    Tasks are done in chunks so the random draws stay near 64 MB at any size. With
    ``label_sets="disjoint"`` each node is first given to one task of every group (uniformly),
    and only that task may label it."""
    N, n = y.shape
    disjoint = cfg.label_sets == "disjoint"
    labelled = None if cfg.label_coverage >= 1.0 and not disjoint else np.empty((N, n), bool)
    if cfg.member_drop == 0.0 and labelled is None:
        return None
    owner = None
    if disjoint:   # owner[v, g]: the position, within group g, of the task that labels node v
        sizes = np.bincount(task_group)
        owner = (rng.random((N, len(sizes))) * sizes).astype(np.int64)
        rank = np.zeros(n, dtype=np.int64)   # each task's position within its group
        for g in range(len(sizes)):
            members = np.flatnonzero(task_group == g)
            rank[members] = np.arange(len(members))
    chunk = max(1, (1 << 24) // N)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        if cfg.member_drop > 0.0:
            y[:, lo:hi] &= rng.random((N, hi - lo), dtype=np.float32) >= cfg.member_drop
        if labelled is not None:
            keep = rng.random((N, hi - lo), dtype=np.float32) < cfg.label_coverage
            if owner is not None:
                keep &= owner[:, task_group[lo:hi]] == rank[lo:hi]
            labelled[:, lo:hi] = keep
    return labelled


def planted_groups(graph: MultiTaskGraph) -> np.ndarray:
    """Group id per task (int64 ``[n]``, in the graph's task order) of a graph made by
    :func:`make_planted_graph`, also after :meth:`MultiTaskGraph.select_tasks` (tasks are
    matched by their generated names)."""
    groups = graph.provenance.get("planted_groups")
    check(groups is not None, "planted_groups: the graph has no planted groups in its provenance "
          "(not made by make_planted_graph)")
    by_name = dict(zip(task_names(len(groups)), groups))
    missing = [t for t in graph.task_names if t not in by_name]
    check(not missing, f"task {missing[0] if missing else ''!r}: not a task of the generated "
          "graph, so its planted group is unknown")
    return np.asarray([by_name[t] for t in graph.task_names], dtype=np.int64)


def task_names(n: int) -> list[str]:
    """The generated task names ``task0 .. task{n-1}``, zero-padded to equal width."""
    return [f"task{t:0{len(str(n - 1))}d}" for t in range(n)]
