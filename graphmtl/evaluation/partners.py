"""Does an affinity know which partners help? A test on the random groups the benchmark trains.

The random groups of :class:`~graphmtl.evaluation.GroupingBenchmark` are a free experiment on the
real data: every draw puts each task with other, randomly chosen partners and trains the group
models for real. If an affinity ``A`` captures transfer, a task should score higher in the draws
where its partners have a high mean affinity with it. :func:`partner_test` measures that: over
all (task, draw) pairs, the rank correlation between the mean affinity of the task's partners
and the task's score, both centred per task (so a task that is easy everywhere, or an affinity
row that is high everywhere, does not count), with a permutation null that relabels the tasks
of ``A``. It is cheap (no model is trained) and it applies to graphs without planted groups,
where the trained-affinity fidelity is too expensive.

A correlation near 0 on a dataset where random groups already differ little can also mean that
partners matter little there; the spread of a task's score over the draws (``spread``) says how
much there is to predict.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy.stats import rankdata

from graphmtl.errors import check


_PERM_CHUNK = 16   # permutations per vectorised block: 16 x n^2 floats (32 MB at n = 500)


@dataclass(frozen=True)
class PartnerTest:
    """Result of :func:`partner_test`.

    Attributes:
        rho: Spearman correlation of the per-task-centred mean partner affinity with the
            per-task-centred score over every (task, draw) pair.
        null_sd: standard deviation of ``rho`` under the permutation null.
        p_value: one-sided permutation p-value of ``rho`` (``(1 + #null >= rho) / (1 + P)``).
        observations: (task, draw) pairs used (tasks with a score in at least two draws).
        spread: mean over tasks of the standard deviation of the task's score over the draws.
    """

    rho: float
    null_sd: float
    p_value: float
    observations: int
    spread: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def partner_means(affinity: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mean affinity of every task with the other members of its group.

    Args:
        affinity: ``[n, n]`` (or a stack ``[P, n, n]``); the diagonal is ignored.
        groups: ``[D, n]`` group id per task in each of ``D`` groupings.

    Returns:
        ``[D, n]`` (or ``[P, D, n]``): NaN for a task alone in its group.
    """
    A = np.array(affinity, dtype=float)
    n = A.shape[-1]
    A[..., np.arange(n), np.arange(n)] = 0.0
    G = np.asarray(groups)
    k = int(G.max()) + 1
    onehot = np.eye(k)[G]                                    # [D, n, k]
    sums = np.einsum("...ij,djk->...dik", A, onehot)         # [..., D, n, k]
    own = np.take_along_axis(sums, np.broadcast_to(G[..., None], sums.shape[:-1] + (1,)),
                             axis=-1)[..., 0]                # [..., D, n]
    sizes = np.take_along_axis(onehot.sum(1), G, axis=1) - 1  # [D, n] partners per task
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, own / np.maximum(sizes, 1), np.nan)


def _centre(x: np.ndarray) -> np.ndarray:
    """``[..., D, n]`` minus its mean over draws (NaN-aware) per task."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # a task with no score: NaN
        return x - np.nanmean(x, axis=-2, keepdims=True)


def partner_test(affinity: np.ndarray, groups: Sequence[np.ndarray] | np.ndarray,
                 scores: Sequence[np.ndarray] | np.ndarray, *, permutations: int = 200,
                 seed: int = 0) -> PartnerTest:
    """Test whether ``affinity`` predicts which random partners help (see the module docstring).

    Args:
        affinity: ``[n, n]`` task affinity (higher: more alike).
        groups: ``D >= 2`` groupings, each ``[n]`` group ids (the random draws of one seed).
        scores: ``[D, n]`` each task's score under its group's model in each grouping (NaN where
            undefined).
        permutations: relabellings of the affinity's tasks for the null.
        seed: seeds the permutations.

    Returns:
        a :class:`PartnerTest`.
    """
    A = np.asarray(affinity, dtype=float)
    G = np.asarray(groups, dtype=np.int64)
    Y = np.asarray(scores, dtype=float)
    n = A.shape[0]
    check(A.shape == (n, n), f"affinity: expected a square matrix, got shape {A.shape}")
    check(G.ndim == 2 and G.shape[1] == n and G.shape[0] >= 2,
          f"groups: expected at least 2 groupings of {n} tasks, got shape {G.shape}")
    check(Y.shape == G.shape, f"scores: expected shape {G.shape}, got {Y.shape}")
    check(permutations >= 1, f"permutations: must be >= 1, got {permutations}")
    A = np.where(np.isfinite(A), A, 0.0)
    y = _centre(Y)
    x = partner_means(A, G)
    ok = np.isfinite(y) & np.isfinite(x) & (np.isfinite(Y).sum(0, keepdims=True) >= 2)
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(n) for _ in range(permutations)])
    y_rank = rankdata(y[ok])

    def rho(xc: np.ndarray) -> float:
        v = xc[ok]
        if v.size < 3 or np.ptp(v) == 0 or np.ptp(y_rank) == 0:
            return float("nan")
        return float(np.corrcoef(rankdata(v), y_rank)[0, 1])

    observed = rho(_centre(x))
    null = []
    for chunk in np.array_split(perms, -(-permutations // _PERM_CHUNK)):   # bounded memory
        relabelled = A[chunk[:, :, None], chunk[:, None, :]]              # [p, n, n]
        null += [rho(c) for c in _centre(partner_means(relabelled, G))]
    null = np.array(null)
    null = null[np.isfinite(null)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = float(np.nanmean(np.nanstd(Y, axis=0)))
    return PartnerTest(rho=observed,
                       null_sd=float(null.std()) if null.size else float("nan"),
                       p_value=float((1 + (null >= observed).sum()) / (1 + null.size))
                       if np.isfinite(observed) else float("nan"),
                       observations=int(ok.sum()), spread=spread)
