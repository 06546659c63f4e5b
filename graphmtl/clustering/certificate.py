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
from scipy.optimize import minimize_scalar
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


def partition_multipliers(A: np.ndarray, labels: np.ndarray, z: float | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
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
    gives a smaller N. The default z is the largest value that keeps every ``r_ib >= 0``; when
    moreover ``z >= lambda_max(P (A + N) P)`` (P: projection orthogonal to the group indicators),
    :func:`dual_bound` with these multipliers equals the partition's objective: a certificate
    that the partition solves the SDP.

    A larger ``z`` may be passed: the negative ``r_ib`` are then clipped at 0, so N stays
    nonnegative and the bound stays valid, while the row sums hold only approximately (the
    eigenvalue in :func:`dual_bound` absorbs the error). :func:`partition_bound` searches z.

    Args:
        A: ``[n, n]`` symmetric; labels: ``[n]`` group ids (any integers, >= 2 groups used);
        z: trace multiplier (``None``: the largest one with every ``r_ib >= 0``).

    Returns:
        ``y [n]`` and ``N [n, n]`` (symmetric, >= 0, zero inside groups). O(n^2) time and
        memory, vectorised over tasks and groups.
    """
    parts = _PartitionDual(A, labels)
    return parts.multipliers(parts.z_feasible if z is None else float(z))


def partition_bound(A: np.ndarray, k: int, labels: np.ndarray, *, search: bool = True,
                    max_evals: int = 10) -> float:
    """Weak-duality upper bound from :func:`partition_multipliers`, with z searched.

    The bound at the largest feasible z is tight only when every cross-group row sum ``r_ib``
    has slack; with many tasks the smallest of them limits z and the bound loosens (2 % at
    n = 1000 on planted groups at moderate noise). Raising z past that point clips the few
    negative ``r_ib``: the bound first falls, then rises as the clipped row sums drift. A bounded
    scalar search over z, between the feasible value and the 5 % quantile of the per-entry
    limits, finds the minimum; every evaluated point is a valid bound, so the result is too. The
    search is skipped when the first bound already equals the partition's objective (to 1e-9).

    Args:
        A: ``[n, n]`` symmetric; k: number of groups; labels: ``[n]`` group ids;
        search: ``False`` evaluates only the feasible z; max_evals: cap on bound evaluations
            (each is one O(n^2) build plus one :func:`lambda_max`).

    Returns:
        The smallest bound found (a float >= the SDP optimum).
    """
    parts = _PartitionDual(A, labels)
    best = dual_bound(A, k, *parts.multipliers(parts.z_feasible))
    objective = float((parts.s / parts.m).sum())          # the partition's <A, X>
    if not search or parts.limits.size == 0 or best <= objective + 1e-9 * abs(objective):
        return best
    hi = float(np.quantile(parts.limits, 0.05))
    if hi <= parts.z_feasible:
        return best
    res = minimize_scalar(lambda z: dual_bound(A, k, *parts.multipliers(z)),
                          bounds=(parts.z_feasible, hi), method="bounded",
                          options={"xatol": 1e-2 * (hi - parts.z_feasible),
                                   "maxiter": max_evals})
    return float(min(best, res.fun))


class _PartitionDual:
    """The z-independent pieces of :func:`partition_multipliers` for one (A, partition)."""

    def __init__(self, A: np.ndarray, labels: np.ndarray) -> None:
        self.A = A
        self.inv, self.Z = membership(labels)
        n = len(labels)
        self.m = self.Z.sum(0)                                 # [k] group sizes
        self.C = A @ self.Z                                    # [n, k]
        self.s = np.einsum("ia,ia->a", self.Z, self.C)         # [k] within-group sums
        self.own = np.arange(n), self.inv
        cross = np.ones_like(self.C, dtype=bool)
        cross[self.own] = False
        _, R0 = self.rows(0.0)
        slope = 0.5 * self.m[None, :] / self.m[self.inv][:, None] + 0.5  # -d r_ib / dz
        self.limits = np.sort(R0[cross] / slope[cross])        # z at which each r_ib hits 0
        self.z_feasible = float(self.limits[0]) if self.limits.size else lambda_max(A)

    def rows(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        m, inv = self.m, self.inv
        Y = self.s / m - z
        y = (2.0 / m[inv]) * (self.C[self.own] - z - 0.5 * Y[inv])
        R = 0.5 * (y[:, None] * m[None, :] + Y[None, :]) - self.C
        R[self.own] = 0.0
        return y, R

    def multipliers(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        inv = self.inv
        y, R = self.rows(z)
        R = np.maximum(R, 0.0)            # rounding noise at the feasible z; clipping above it
        T = (self.Z.T @ R)[inv][:, inv]                        # [n, n] block totals T_ab
        Rj = R[:, inv]                                         # r_{i, group of j}
        N = np.divide(Rj * Rj.T, T, out=np.zeros_like(self.A, dtype=float), where=T > 0)
        N[inv[:, None] == inv[None, :]] = 0.0
        return y, N
