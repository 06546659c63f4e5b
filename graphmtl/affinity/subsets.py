"""Sampling the task subsets whose scores make up an affinity matrix.

A family of ``m`` subsets of ``n`` tasks is a bool membership matrix ``M`` ``[m, n]``
(``M[k, i]`` is true when task ``i`` is in subset ``S_k``). Everything downstream (the batched
solver, the scores, the affinity matrices) works on ``M`` directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from graphmtl.errors import GraphMTLError, check


def _size_range(size: int | Sequence[int], n: int) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        lo = hi = int(size)
    else:
        check(len(size) == 2, f"subset size: expected an int or a (min, max) pair, got {size!r}")
        lo, hi = int(size[0]), int(size[1])
    check(1 <= lo <= hi, f"subset size: need 1 <= min <= max, got {lo}..{hi}")
    check(hi <= n, f"subset size {hi} exceeds the number of tasks n = {n}")
    return lo, hi


def sample_subsets(n: int, m: int, size: int | Sequence[int] = 10, seed: int = 0,
                   balance: bool = False) -> np.ndarray:
    """Sample ``m`` task subsets of ``n`` tasks, seeded.

    Args:
        n: number of tasks.
        m: number of subsets.
        size: subset size ``s``, or an inclusive ``(min, max)`` range drawn uniformly per subset.
        seed: seed of the generator; the same arguments give the same subsets.
        balance: build subsets greedily so that every pair of tasks co-occurs about equally often
            (each new subset starts at a least-used task and adds, one at a time, the task with the
            fewest co-occurrences with the tasks chosen so far; ties broken at random). Raises the
            minimum pair co-occurrence well above uniform sampling's, at O(m s n) cost.

    Returns:
        bool ``[m, n]`` membership matrix; no two rows need be distinct (sampling is with
        replacement over subsets, as in the method).
    """
    check(n >= 1, f"number of tasks: must be >= 1, got {n}")
    check(m >= 1, f"number of subsets: must be >= 1, got {m}")
    lo, hi = _size_range(size, n)
    rng = np.random.default_rng(seed)
    sizes = rng.integers(lo, hi + 1, size=m)
    if not balance:
        # Uniform random subset of each size: rank i.i.d. keys, keep the `size` smallest.
        ranks = np.argsort(np.argsort(rng.random((m, n)), axis=1), axis=1)
        return ranks < sizes[:, None]
    M = np.zeros((m, n), dtype=bool)
    co = np.zeros((n, n), dtype=np.int64)
    used = np.zeros(n, dtype=np.int64)
    for k in range(m):
        noise = rng.random(n)
        first = int(np.argmin(used + noise))  # least used task, random tie-break
        chosen = [first]
        cost = co[first].astype(np.float64)
        taken = np.zeros(n, dtype=bool)
        taken[first] = True
        for _ in range(int(sizes[k]) - 1):
            # Fewest co-occurrences with the current members; then least used overall.
            key = cost * (n + 1) + used + rng.random(n)
            key[taken] = np.inf
            j = int(np.argmin(key))
            chosen.append(j)
            taken[j] = True
            cost += co[j]
        idx = np.asarray(chosen)
        M[k, idx] = True
        co[np.ix_(idx, idx)] += 1
        used[idx] += 1
    return M


def pair_subsets(n: int, num_pairs: int | None = None, seed: int = 0,
                 singletons: bool = True) -> np.ndarray:
    """Membership matrix of the pairwise mode: the pairs ``{i, j}``, plus the singletons.

    Args:
        n: number of tasks (>= 2).
        num_pairs: ``None`` for all ``n (n - 1) / 2`` pairs, else a seeded sample of that many
            distinct pairs (for large ``n``).
        seed: seed of the pair sample.
        singletons: also include the ``n`` subsets ``{i}`` (first ``n`` rows), so that pairwise
            affinity can be taken relative to ``f_i({i})``.

    Returns:
        bool ``[n + p, n]`` (or ``[p, n]`` without singletons).
    """
    check(n >= 2, f"pairwise mode needs at least 2 tasks, got {n}")
    iu, ju = np.triu_indices(n, k=1)
    total = iu.size
    if num_pairs is not None:
        check(1 <= num_pairs <= total,
              f"number of pairs: must lie in 1..{total} for n = {n}, got {num_pairs}")
        keep = np.sort(np.random.default_rng(seed).choice(total, size=num_pairs, replace=False))
        iu, ju = iu[keep], ju[keep]
    P = np.zeros((iu.size, n), dtype=bool)
    P[np.arange(iu.size), iu] = True
    P[np.arange(iu.size), ju] = True
    if singletons:
        P = np.concatenate([np.eye(n, dtype=bool), P], axis=0)
    return P


def cooccurrence(M: np.ndarray) -> np.ndarray:
    """Pair co-occurrence counts ``Mᵀ M``: int64 ``[n, n]``, diagonal = subsets per task."""
    Mi = np.asarray(M, dtype=np.int64)
    return Mi.T @ Mi


@dataclass(frozen=True)
class CoverageReport:
    """How evenly a subset family covers tasks and pairs.

    Attributes:
        num_subsets, num_tasks: ``m`` and ``n``.
        min_pair, mean_pair, max_pair: co-occurrence counts over pairs ``i < j``.
        zero_pairs: pairs that never co-occur (their higher-order affinity is unobserved).
        min_task, mean_task: subsets containing each task.
        mean_size: mean subset size.
    """

    num_subsets: int
    num_tasks: int
    min_pair: int
    mean_pair: float
    max_pair: int
    zero_pairs: int
    min_task: int
    mean_task: float
    mean_size: float

    def to_dict(self) -> dict:
        return asdict(self)


def coverage_report(M: np.ndarray) -> CoverageReport:
    """Summarise :func:`cooccurrence` of a membership matrix ``M`` ``[m, n]``."""
    M = np.asarray(M, dtype=bool)
    m, n = M.shape
    co = cooccurrence(M)
    if n >= 2:
        pairs = co[np.triu_indices(n, k=1)]
        mn, mean, mx, zero = int(pairs.min()), float(pairs.mean()), int(pairs.max()), \
            int((pairs == 0).sum())
    else:
        mn, mean, mx, zero = 0, 0.0, 0, 0
    per_task = np.diag(co)
    return CoverageReport(num_subsets=m, num_tasks=n, min_pair=mn, mean_pair=mean, max_pair=mx,
                          zero_pairs=zero, min_task=int(per_task.min()),
                          mean_task=float(per_task.mean()), mean_size=float(M.sum(1).mean()))


def as_membership(subsets, task_names: Sequence[str]) -> np.ndarray:
    """Turn user-given subsets into a bool membership matrix ``[m, n]`` over ``task_names``.

    ``subsets`` is either a bool / 0-1 array ``[m, n]`` or a sequence of subsets, each a sequence
    of task positions or names. Unknown tasks, empty subsets and a wrong width are one-line errors
    naming the subset and the task.
    """
    n = len(task_names)
    if isinstance(subsets, np.ndarray) and subsets.ndim == 2:
        check(subsets.shape[1] == n,
              f"subsets: membership matrix has {subsets.shape[1]} columns, the store has {n} tasks")
        check(np.isin(subsets, (0, 1)).all(), "subsets: membership matrix must be 0/1 or bool")
        M = subsets.astype(bool)
    else:
        lookup = {name: i for i, name in enumerate(task_names)}
        M = np.zeros((len(subsets), n), dtype=bool)
        for k, subset in enumerate(subsets):
            for task in subset:
                if isinstance(task, (int, np.integer)) and not isinstance(task, bool):
                    if not 0 <= int(task) < n:
                        raise GraphMTLError(
                            f"subset {k}: task position {task} is out of range (n = {n})")
                    M[k, int(task)] = True
                elif isinstance(task, str) and task in lookup:
                    M[k, lookup[task]] = True
                else:
                    raise GraphMTLError(f"subset {k}: unknown task {task!r}")
    check(M.shape[0] >= 1, "subsets: no subsets given")
    empty = np.flatnonzero(~M.any(1))
    check(empty.size == 0, f"subset {empty[0] if empty.size else -1}: empty subset")
    return M


def padded_members(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each subset's tasks as one padded index row, for computations batched over subsets.

    Args:
        M: bool membership ``[m, n]``.

    Returns:
        ``idx`` int64 ``[m, s]`` (``s`` the largest subset's size): subset ``k``'s task positions
        in increasing order, then padding slots pointing at task 0; ``valid`` bool ``[m, s]``:
        which slots hold a task.
    """
    M = np.asarray(M, dtype=bool)
    sizes = M.sum(1)
    s = int(sizes.max())
    members = np.argsort(~M, axis=1, kind="stable")[:, :s]     # members first, in order
    valid = np.arange(s)[None, :] < sizes[:, None]
    return np.where(valid, members, 0).astype(np.int64), valid


def scatter_members(values: np.ndarray, idx: np.ndarray, valid: np.ndarray,
                    n: int) -> np.ndarray:
    """``[m, n]`` from per-slot ``values`` ``[m, s]`` laid out as :func:`padded_members`: each
    valid slot's value at its task's column, NaN outside the subsets."""
    out = np.full((idx.shape[0], n), np.nan)
    rows = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)
    out[rows[valid], idx[valid]] = values[valid]
    return out
