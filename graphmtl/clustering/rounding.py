"""Rounding an SDP solution to exactly k non-empty groups, and partition local search."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans

from graphmtl.errors import check


def round_factor(F: np.ndarray, k: int, *, n_init: int = 10, seed: int = 0) -> np.ndarray:
    """k-means on the rows of a factor ``F [n, r]`` (``X ~= F F^T``), forced to k groups.

    A partition matrix has ``F_i = e_{g(i)} / sqrt(|C_g|)`` (up to rotation), so rows of one group
    coincide and rows of different groups are orthogonal. k-means with ``n_init`` seeded starts
    (deterministic given ``seed``) picks the groups; :func:`fill_empty` then guarantees exactly
    k non-empty groups even when rows coincide.

    Returns:
        ``[n]`` int64 labels in ``0..k-1``, every label used.
    """
    n = F.shape[0]
    check(1 <= k <= n, f"k: need 1 <= k <= n = {n}, got {k}")
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    with warnings.catch_warnings():
        # Fewer distinct rows than k is handled by fill_empty below.
        warnings.simplefilter("ignore")
        km = KMeans(k, n_init=n_init, random_state=seed).fit(F)
    return fill_empty(F, km.labels_, k)


def fill_empty(F: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Relabel to ``0..k-1`` and split off members until all k groups are non-empty.

    Each missing group takes the row farthest from its group's mean among groups of size >= 2
    (deterministic: ties go to the lowest index).
    """
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.astype(np.int64)
    used = labels.max() + 1
    while used < k:
        sizes = np.bincount(labels, minlength=used)
        means = np.stack([F[labels == g].mean(0) for g in range(used)])
        dist = ((F - means[labels]) ** 2).sum(1)
        dist[sizes[labels] < 2] = -np.inf
        labels[int(np.argmax(dist))] = used
        used += 1
    return labels


def local_search(A: np.ndarray, labels: np.ndarray, *, max_moves: int | None = None
                 ) -> np.ndarray:
    """Greedy single-task moves that raise the average density, never emptying a group.

    With one-hot Z, ``AZ = A Z [n, k]``, group sums ``s_l`` and sizes ``m_l``, moving task i
    from a to b changes the objective by
    ``(s_a - 2 AZ_ia + A_ii)/(m_a - 1) - s_a/m_a + (s_b + 2 AZ_ib + A_ii)/(m_b + 1) - s_b/m_b``,
    evaluated for all (i, b) at once; the best move is applied (O(n) update of AZ) until no move
    gains more than 1e-12 relative, or ``max_moves`` (default 2n).

    Returns:
        improved ``[n]`` labels with the same number of non-empty groups.
    """
    n = A.shape[0]
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.astype(np.int64)
    k = labels.max() + 1
    if k == 1 or k == n:
        return labels
    Z = np.zeros((n, k))
    Z[np.arange(n), labels] = 1.0
    AZ = A @ Z
    m = Z.sum(0)
    s = np.einsum("ik,ik->k", Z, AZ)
    d = np.diag(A).copy()
    rows = np.arange(n)
    max_moves = 2 * n if max_moves is None else max_moves
    tiny = 1e-12 * max(float(np.abs(s).sum()), 1e-300)
    for _ in range(max_moves):
        a = labels
        ma, sa = m[a], s[a]
        with np.errstate(divide="ignore", invalid="ignore"):
            leave = np.where(ma > 1, (sa - 2 * AZ[rows, a] + d) / (ma - 1), -np.inf) - sa / ma
        join = (s[None, :] + 2 * AZ + d[:, None]) / (m[None, :] + 1) - s / m
        gain = leave[:, None] + join
        gain[rows, a] = -np.inf
        i, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if not gain[i, b] > tiny:
            break
        ai = a[i]
        s[ai] += -2 * AZ[i, ai] + d[i]
        s[b] += 2 * AZ[i, b] + d[i]
        m[ai] -= 1
        m[b] += 1
        AZ[:, ai] -= A[:, i]
        AZ[:, b] += A[:, i]
        labels[i] = b
    return labels


def near_equal_sizes(n: int, k: int) -> np.ndarray:
    """Sizes ``[k]`` of ``k`` groups of ``n`` items that differ by at most one, largest first."""
    return np.full(k, n // k, dtype=np.int64) + (np.arange(k) < n % k)


def balance_labels(A: np.ndarray, labels: np.ndarray, k: int, *,
                   max_swaps: int | None = None) -> np.ndarray:
    """The partition closest to ``labels`` with near-equal group sizes, then improved by swaps.

    Each task is first assigned to a slot of a group (``near_equal_sizes(n, k)`` slots; the
    groups with more members get the larger sizes) maximising its mean affinity to the group's
    current members, as one linear assignment (scipy's ``linear_sum_assignment``). Then pairs
    of tasks in different groups swap while that raises the average density (sizes stay put):
    with ``R = A Z`` (sum of a task's affinities to each group), swapping i in a with j in b
    changes the objective by ``2 (R_ja - R_ia - A_ij) / m_a + 2 (R_ib - R_jb - A_ij) / m_b``,
    evaluated for all pairs at once; the best swap is applied until none gains, or
    ``max_swaps`` (default 2n).

    Args:
        A: ``[n, n]`` symmetric affinity with a zero diagonal (preprocessed).
        labels: ``[n]`` a partition into ``k`` groups (sizes free).
        k: the number of groups.

    Returns:
        ``[n]`` int64 labels in ``0..k-1`` whose group sizes differ by at most one.
    """
    from scipy.optimize import linear_sum_assignment

    n = A.shape[0]
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.astype(np.int64)
    check(labels.max() + 1 == k, f"balance: labels hold {labels.max() + 1} groups, not k = {k}")
    if k == 1 or k == n:
        return labels
    counts = np.bincount(labels, minlength=k)
    Z = np.zeros((n, k))
    Z[np.arange(n), labels] = 1.0
    score = (A @ Z) / np.maximum(counts, 1)[None, :]                   # mean affinity [n, k]
    order = np.argsort(-counts, kind="stable")                          # big groups: big sizes
    sizes = np.empty(k, dtype=np.int64)
    sizes[order] = near_equal_sizes(n, k)
    slot_group = np.repeat(np.arange(k), sizes)                          # [n] slots
    # Prefer the current group on ties (keeps an already balanced partition unchanged).
    cost = -(score[:, slot_group] + 1e-9 * (labels[:, None] == slot_group[None, :]))
    rows, cols = linear_sum_assignment(cost)
    labels = slot_group[cols[np.argsort(rows)]].astype(np.int64)

    Z[:] = 0.0
    Z[np.arange(n), labels] = 1.0
    R = A @ Z
    m = Z.sum(0)
    rows_n = np.arange(n)
    max_swaps = 2 * n if max_swaps is None else max_swaps
    tiny = 1e-12 * max(float(np.abs(A).sum()), 1e-300)
    for _ in range(max_swaps):
        a = labels
        own = R[rows_n, a]                                               # R_ia
        # gain[i, j] for i in a, j in b (b = labels[j]):
        Rjb_for_i = R[:, a].T          # [n(i), n(j)]: R_j,a_i  (j's affinity to i's group)
        Rib = R[:, labels]             # [n(i), n(j)]: R_i,b_j  (i's affinity to j's group)
        gain = (2 * (Rjb_for_i - own[:, None] - A) / m[a][:, None]
                + 2 * (Rib - own[None, :] - A) / m[labels][None, :])
        gain[a[:, None] == a[None, :]] = -np.inf
        i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if not gain[i, j] > tiny:
            break
        ai, bj = a[i], a[j]
        R[:, ai] += A[:, j] - A[:, i]
        R[:, bj] += A[:, i] - A[:, j]
        labels[i], labels[j] = bj, ai
    return labels
