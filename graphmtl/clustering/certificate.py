"""Certified upper bounds on the clustering SDP from (approximate) dual variables.

The SDP ``max <A, X>  s.t.  X psd, X >= 0, X 1 = 1, tr X = k`` has the Lagrange dual

    min  1^T y + k z   s.t.  sym(y 1^T) + z I - A - N  psd,   N >= 0 (entrywise),

with ``sym(B) = (B + B^T) / 2``. For ANY y in R^n and any symmetric N >= 0 the choice
``z = lambda_max(A + N - sym(y 1^T))`` is dual feasible, so ``1^T y + k z`` bounds every feasible
objective from above (weak duality). The solvers only have to supply a good y and N; feasibility
of the bound does not depend on them being exact.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

from graphmtl.clustering.objective import membership


def lambda_max(B: np.ndarray, seed: int = 0) -> float:
    """Largest eigenvalue of a symmetric ``B [n, n]``, rounded up by the Ritz residual.

    Dense ``eigvalsh`` for n <= 600; Lanczos (ARPACK) otherwise, plus the residual norm of the
    Ritz pair so that the value is an upper bound on the eigenvalue ARPACK converged to.
    """
    n = B.shape[0]
    if n <= 600:
        return float(np.linalg.eigvalsh(B)[-1])
    v0 = np.random.default_rng(seed).standard_normal(n)
    try:
        vals, vecs = eigsh(B, k=1, which="LA", tol=1e-10, v0=v0, maxiter=20 * n)
    except ArpackNoConvergence:
        return float(np.linalg.eigvalsh(B)[-1])
    u = vecs[:, 0]
    return float(vals[0] + np.linalg.norm(B @ u - vals[0] * u))


def dual_bound(A: np.ndarray, k: int, y: np.ndarray, N: np.ndarray | None = None) -> float:
    """Weak-duality upper bound ``1^T y + k lambda_max(A + N - sym(y 1^T))``.

    Args:
        A: ``[n, n]`` symmetric affinity (the preprocessed one the SDP was solved on).
        k: number of groups.
        y: ``[n]`` multipliers of the row-sum constraints ``X 1 = 1``.
        N: ``[n, n]`` multipliers of ``X >= 0``; symmetrised and clipped to ``>= 0`` here so
            the bound is valid whatever is passed. ``None`` means 0.
    """
    B = A - 0.5 * (y[:, None] + y[None, :])
    if N is not None:
        B = B + np.maximum(0.5 * (N + N.T), 0.0)
    return float(y.sum() + k * lambda_max(B))


def block_multipliers(A: np.ndarray, y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A nonnegative N that makes the planted partition's indicators eigenvectors.

    With ``M = A - sym(y 1^T)``, complementary slackness wants ``N_ij = 0`` inside a group and,
    across groups a != b, ``M_ab + N_ab`` with zero row and column sums (then every ``1_{C_a}``
    is an eigenvector of ``M + N``). The symmetric choice is minus the additive part of the
    block: ``N_ab = -(row means + column means - block mean)``, clipped at 0.

    Args:
        A: ``[n, n]``; y: ``[n]``; labels: ``[n]`` group ids in 0..k-1 (e.g. the rounding).

    Returns:
        ``[n, n]`` symmetric, >= 0, zero on within-group pairs. Vectorised over blocks through
        the one-hot membership Z ``[n, k]``.
    """
    M = A - 0.5 * (y[:, None] + y[None, :])
    inv, Z = membership(labels)
    sizes = Z.sum(0)
    R = (M @ Z) / sizes                                    # [n, k] mean of row i over group b
    block = (Z.T @ M @ Z) / np.outer(sizes, sizes)        # [k, k] block means
    row = R[:, inv]                                        # [n, n] mean of row i over j's group
    N = -(row + row.T - block[inv][:, inv])
    N[inv[:, None] == inv[None, :]] = 0.0
    return np.maximum(N, 0.0)


def partition_multipliers(A: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dual multipliers ``(y, N)`` built from a partition by complementary slackness.

    If the partition's matrix ``X* = sum_a 1_a 1_a^T / m_a`` is optimal, a dual optimum has
    ``N = 0`` inside groups and ``S 1_a = 0`` for ``S = sym(y 1^T) + z I - A - N``. Inside group a
    those equations fix ``y`` as a function of the trace multiplier z,

        y_i = (2 / m_a) (C_ia - z - Y_a / 2),   Y_a = s_a / m_a - z,

    with ``C = A Z`` (``C_ib`` = affinity of task i to group b) and ``s_a = 1_a^T A 1_a``; across
    groups they fix the row sums of each block ``N_ab``: ``r_ib = (m_b y_i + Y_b) / 2 - C_ib``
    for i in a. The block is the rank-one "transport" ``N_ab = r_a r_b^T / T_ab`` (nonnegative
    with exactly those row and column sums; Iguchi, Mixon, Peterson & Villar, "Probably certifiably
    correct k-means clustering", 2017). Every ``r_ib`` decreases linearly in z, and a larger z
    gives a smaller N, so z is the largest value that keeps every ``r_ib >= 0``. When moreover
    ``z >= lambda_max(P (A + N) P)`` (P: projection orthogonal to the group indicators),
    :func:`dual_bound` with these multipliers equals the partition's objective: a certificate
    that the partition solves the SDP. Otherwise the bound is still valid, only looser.

    Args:
        A: ``[n, n]`` symmetric; labels: ``[n]`` group ids (any integers, >= 2 groups used).

    Returns:
        ``y [n]`` and ``N [n, n]`` (symmetric, >= 0, zero inside groups). O(n^2) time and
        memory, vectorised over tasks and groups.
    """
    n = len(labels)
    inv, Z = membership(labels)
    m = Z.sum(0)                                           # [k] group sizes
    C = A @ Z                                              # [n, k]
    s = np.einsum("ia,ia->a", Z, C)                        # [k] within-group sums
    own = np.arange(n), inv
    cross = np.ones_like(C, dtype=bool)
    cross[own] = False

    def rows(z: float) -> tuple[np.ndarray, np.ndarray]:
        Y = s / m - z
        y = (2.0 / m[inv]) * (C[own] - z - 0.5 * Y[inv])
        R = 0.5 * (y[:, None] * m[None, :] + Y[None, :]) - C
        R[own] = 0.0
        return y, R

    _, R0 = rows(0.0)
    slope = 0.5 * m[None, :] / m[inv][:, None] + 0.5     # -d r_ib / dz
    z = float(np.min(R0[cross] / slope[cross])) if cross.any() else lambda_max(A)
    y, R = rows(z)
    R = np.maximum(R, 0.0)                                 # rounding noise only
    T = (Z.T @ R)[inv][:, inv]                             # [n, n] block totals T_ab
    Rj = R[:, inv]                                         # r_{i, group of j}
    N = np.divide(Rj * Rj.T, T, out=np.zeros((n, n)), where=T > 0)
    N[inv[:, None] == inv[None, :]] = 0.0
    return y, N
