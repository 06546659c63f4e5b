"""Choosing the number of groups from a sweep of SDP objectives."""

from __future__ import annotations

import numpy as np

from graphmtl.errors import check


def elbow_k(ks, objectives) -> int:
    """The k with the sharpest bend in the SDP optimum ``f(k)``.

    ``score(k) = (f(k) - f(k-1)) - (f(k+1) - f(k))`` (minus the discrete second difference),
    maximised over the interior of a sweep of consecutive k. With a planted structure of k0
    groups, ``f`` rises steeply while merged groups are being separated (k <= k0) and only
    slowly afterwards (splitting a true group or fitting noise), so the bend is at k0. The
    score is unchanged by adding ``a + b k`` to ``f`` -- in particular by the diagonal
    convention (a constant diagonal d adds ``d k``) and by shifting the off-diagonal entries.

    Args:
        ks: consecutive integers ``[m]``, m >= 3.
        objectives: ``[m]`` SDP optimum for each k.

    Returns:
        the chosen k (never the first or last of the sweep).
    """
    ks = np.asarray(ks)
    f = np.asarray(objectives, dtype=float)
    check(len(ks) == len(f) and len(ks) >= 3, "k_range: need at least 3 values of k for auto")
    check(bool(np.all(np.diff(ks) == 1)), "k_range: the sweep must be consecutive integers")
    score = 2 * f[1:-1] - f[:-2] - f[2:]
    return int(ks[1:-1][int(np.argmax(score))])


def double_center(A: np.ndarray) -> np.ndarray:
    """``A_ij - a_i - a_j`` off the diagonal with a chosen so every row sums to 0; zero diagonal.

    With the diagonal excluded, zero off-diagonal row sums give ``(n - 2) a_i + 1^T a = R_i``
    (R = off-diagonal row sums): a closed form. Adding ``a 1^T + 1 a^T`` to A changes every
    feasible SDP objective by the constant ``2 a^T 1`` (``X 1 = 1``), so this keeps the
    clustering problem the same while removing the per-task offsets of estimated affinities (a
    task that scores well with every partner), which would otherwise show up as a spurious
    leading eigenvalue.
    """
    n = A.shape[0]
    B = np.array(A, dtype=float)
    np.fill_diagonal(B, 0.0)
    R = B.sum(1)
    if n > 2:
        S = R.sum() / (2 * n - 2)
        a = (R - S) / (n - 2)
        B = B - a[:, None] - a[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def edge_k(A: np.ndarray, k_min: int = 2, k_max: int | None = None, *, margin: float = 0.1,
           seed: int = 0) -> tuple[int, dict]:
    """Number of groups = 1 + number of eigenvalues above the noise edge.

    Model: ``B = double_center(A) = S + E`` with a planted signal ``S`` of rank k - 1 (k groups,
    minus the all-ones direction that centering removes) and symmetric noise ``E`` of entry
    variance s^2, whose spectrum ends at ``2 s sqrt(n)`` (semicircle law). s is estimated from
    the energy left after removing the eigenvalues counted as signal, iterated to a fixed
    point; an eigenvalue counts when it exceeds ``(1 + margin) 2 s sqrt(n)`` (the margin covers
    the finite-n fluctuation of the largest noise eigenvalue). Groups too small or too noisy to
    lift an eigenvalue out of the bulk cannot be recovered by the SDP either, so they are not
    counted. Invariant to shifting / scaling A and to per-task offsets.

    Returns:
        ``(k, info)`` with k clipped to ``[k_min, k_max]`` and info ``{"eigenvalues", "edge",
        "noise_std"}``.
    """
    from scipy.sparse.linalg import eigsh

    n = A.shape[0]
    k_max = min(n - 1, 20) if k_max is None else k_max
    check(1 <= k_min <= k_max <= n, f"k_range: need 1 <= k_min <= k_max <= n = {n}")
    B = double_center(A)
    m = min(n - 1, k_max + 5)
    if n <= 400:
        lam = np.linalg.eigvalsh(B)[::-1][:m]
    else:
        lam = np.sort(eigsh(B, k=m, which="LA", tol=1e-6,
                            v0=np.random.default_rng(seed).standard_normal(n))[0])[::-1]
    energy = float((B * B).sum())
    c = 0
    for _ in range(50):
        s = np.sqrt(max(energy - float((lam[:c] ** 2).sum()), 0.0) / (n * (n - 1)))
        edge = 2.0 * s * np.sqrt(n) * (1.0 + margin)
        c_new = int((lam > edge).sum())
        if c_new == c:
            break
        c = c_new
    k = int(min(max(c + 1, k_min), k_max))
    return k, {"eigenvalues": lam.tolist(), "edge": float(edge), "noise_std": float(s)}
