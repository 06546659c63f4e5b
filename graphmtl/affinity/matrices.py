"""Task-affinity matrices from subset scores (docs/method.md §2), vectorised.

Inputs everywhere: the membership matrix ``M`` bool ``[m, n]`` and the score matrix ``F``
``[m, n]`` with ``F[k, i] = f_i(S_k)`` where ``i ∈ S_k`` (NaN elsewhere; higher is better, e.g.
the negative validation loss).

Conventions:
- *Directed* matrices keep ``T[i, j]`` = "how task ``i`` does with ``j``" and NaN where ``i`` and
  ``j`` never co-occur; the diagonal ``T[i, i]`` is task ``i``'s mean score over all its subsets.
- :func:`symmetrize` turns a directed matrix into the affinity used for clustering: unobserved
  pairs are filled with the neutral value ``T[i, i]`` ("no evidence either way"), then
  ``A = (T + Tᵀ) / 2`` and the diagonal is set aside (set to 0).
"""

from __future__ import annotations

import numpy as np

from graphmtl.errors import check


def _check(M: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    M = np.asarray(M, dtype=bool)
    F = np.asarray(F, dtype=np.float64)
    check(M.ndim == 2 and F.shape == M.shape,
          f"scores: shape {F.shape} does not match the membership matrix {M.shape}")
    check(bool(np.isfinite(F[M]).all()), "scores: non-finite score for a task in its subset")
    return M, F


def standardize_scores(M: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Per-task z-score of ``F`` across the subsets containing the task (NaN elsewhere).

    A task whose score never varies (or that is in one subset only) gets 0 throughout.
    """
    M, F = _check(M, F)
    count = M.sum(0)
    F0 = np.where(M, F, 0.0)
    mean = F0.sum(0) / np.maximum(count, 1)
    var = np.where(M, (F - mean) ** 2, 0.0).sum(0) / np.maximum(count, 1)
    std = np.sqrt(var)
    Z = np.where(M, (F - mean) / np.where(std > 0, std, 1.0), np.nan)
    return np.where(M & (std > 0), Z, np.where(M, 0.0, np.nan))


def higher_order_affinity(M: np.ndarray, F: np.ndarray, standardize: bool = False) -> np.ndarray:
    """Directed higher-order affinity ``T = (Fᵀ M) ⊘ (Mᵀ M)`` ``[n, n]`` (NaN: never together).

    ``T[i, j]`` is the mean of ``f_i(S_k)`` over the subsets containing both ``i`` and ``j``; with
    ``standardize``, ``F`` is first z-scored per task (:func:`standardize_scores`), which makes
    ``T[i, i] = 0`` and puts all tasks on one scale.
    """
    M, F = _check(M, F)
    if standardize:
        F = standardize_scores(M, F)
    Mf = M.astype(np.float64)
    num = np.where(M, F, 0.0).T @ Mf
    den = Mf.T @ Mf
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def pairwise_affinity(M: np.ndarray, F: np.ndarray, relative: bool = True) -> np.ndarray:
    """Directed pairwise affinity ``T[i, j] = f_i({i, j})`` ``[n, n]`` (NaN: pair not scored).

    Only the rows of ``M`` of size 2 count (repeated pairs are averaged). With ``relative``,
    ``f_i({i})`` from the singleton rows is subtracted (every task then needs a singleton row) and
    the diagonal is 0; without it the diagonal is ``f_i({i})`` where available.
    """
    M, F = _check(M, F)
    size = M.sum(1)
    pairs, single = size == 2, size == 1
    T = higher_order_affinity(M[pairs], F[pairs]) if pairs.any() else np.full(
        (M.shape[1],) * 2, np.nan)
    base = np.full(M.shape[1], np.nan)
    if single.any():
        Ms = M[single]
        cnt = Ms.sum(0)
        base = np.where(cnt > 0, np.where(Ms, F[single], 0.0).sum(0) / np.maximum(cnt, 1),
                        np.nan)
    np.fill_diagonal(T, base)
    if relative:
        missing = np.flatnonzero(np.isnan(base))
        check(missing.size == 0,
              f"pairwise affinity: task {int(missing[0]) if missing.size else -1} has no singleton "
              f"subset to be relative to (include singletons, or relative=False)")
        T = T - base[:, None]
    return T


def symmetrize(T: np.ndarray) -> np.ndarray:
    """Clustering affinity from a directed ``T``: fill unobserved ``T[i, j]`` with ``T[i, i]``,
    average with the transpose, zero the diagonal. Returns float64 ``[n, n]``, symmetric."""
    T = np.asarray(T, dtype=np.float64)
    check(T.ndim == 2 and T.shape[0] == T.shape[1], f"affinity: not square, shape {T.shape}")
    diag = np.diag(T).copy()
    diag = np.where(np.isnan(diag), 0.0, diag)
    A = np.where(np.isnan(T), diag[:, None], T)
    A = 0.5 * (A + A.T)
    np.fill_diagonal(A, 0.0)
    return A


def gradient_cosine_affinity(mean_grads: np.ndarray) -> np.ndarray:
    """Cosine similarity ``[n, n]`` of per-task mean gradients ``[n, d]`` (zero rows give 0);
    the diagonal is set aside (0), like the other affinities."""
    G = np.asarray(mean_grads, dtype=np.float64)
    norm = np.linalg.norm(G, axis=1)
    U = G / np.where(norm > 0, norm, 1.0)[:, None]
    A = U @ U.T
    np.fill_diagonal(A, 0.0)
    return A


def combine_affinities(*affinities: np.ndarray) -> np.ndarray:
    """The mean of several affinities ``[n, n]`` after z-scoring each one's off-diagonal
    entries (so each counts alike whatever its units); symmetric, zero diagonal.

    Two estimates of one grouping that err differently -- e.g. subset scores (a noisy measure of
    how a task fares with partners) and the head-weight cosine of one all-task model (how alike
    tasks read the shared representation) -- agree where the grouping is real.
    """
    check(len(affinities) >= 1, "combine affinities: none given")
    n = np.asarray(affinities[0]).shape[0]
    off = ~np.eye(n, dtype=bool)
    out = np.zeros((n, n))
    for A in affinities:
        A = np.asarray(A, dtype=np.float64)
        check(A.shape == (n, n), f"combine affinities: shapes {A.shape} and {(n, n)} differ")
        vals = A[off]
        std = float(vals.std())
        out[off] += (vals - vals.mean()) / std if std > 0 else 0.0
    out /= len(affinities)
    return 0.5 * (out + out.T)


def split_half_reliability(M: np.ndarray, F: np.ndarray, *, standardize: bool = True,
                           repeats: int = 5, seed: int = 0) -> dict[str, float]:
    """How reproducible the higher-order affinity of ``(M, F)`` is at this number of subsets.

    The subsets are split at random into two halves, each half gives its own symmetric affinity
    (:func:`higher_order_affinity`, :func:`symmetrize`), and the two are correlated (Pearson)
    over the task pairs both halves observe; repeated ``repeats`` times with seeded splits.
    Near 0: what decides the affinity is mostly the subsets' noise (e.g. the training's
    randomness of a trained affinity), not the pairs. The Spearman-Brown formula projects the
    half-size correlation ``r`` to the whole set, ``2r / (1 + r)``, and says how many times more
    subsets a reliability of 0.5 needs, ``(1 - r₁) / r₁`` with ``r₁`` the whole set's.

    Args:
        M: bool ``[m, n]`` membership (``m >= 4``); F: ``[m, n]`` scores (see the module; a
            NaN score of a member leaves that task out of that subset).
        standardize: z-score each task's scores within each half first.
        repeats: random splits averaged.
        seed: seeds the splits.

    Returns:
        ``{"half": r, "full": 2r / (1 + r), "pairs": mean pairs compared,
        "subsets_for_half": multiple of m for a reliability of 0.5 (inf if r <= 0)}``.
    """
    F = np.asarray(F, dtype=np.float64)
    check(np.shape(M) == F.shape,
          f"scores: shape {F.shape} does not match the membership matrix {np.shape(M)}")
    M = np.asarray(M, dtype=bool) & np.isfinite(F)        # an unscored task is left out
    m, n = M.shape
    check(m >= 4, f"split-half reliability: needs at least 4 subsets, got {m}")
    check(repeats >= 1, f"split-half reliability: repeats must be >= 1, got {repeats}")
    rng = np.random.default_rng(seed)
    off = ~np.eye(n, dtype=bool)
    rs, pairs = [], []
    for _ in range(repeats):
        order = rng.permutation(m)
        halves = []
        for rows in (order[:m // 2], order[m // 2:]):
            T = higher_order_affinity(M[rows], np.where(M[rows], F[rows], np.nan),
                                      standardize=standardize)
            halves.append((symmetrize(T), np.isfinite(T) & np.isfinite(T.T)))
        (a, seen_a), (b, seen_b) = halves
        both = off & seen_a & seen_b
        ok = both.sum() >= 3 and a[both].std() > 0 and b[both].std() > 0
        rs.append(float(np.corrcoef(a[both], b[both])[0, 1]) if ok else 0.0)
        pairs.append(int(both.sum()) // 2)
    r = float(np.mean(rs))
    full = 2 * r / (1 + r) if r > -1 else float("nan")
    return {"half": r, "full": full, "pairs": float(np.mean(pairs)),
            "subsets_for_half": (1 - full) / full if full > 0 else float("inf")}
