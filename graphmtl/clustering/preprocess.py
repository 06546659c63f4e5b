"""Validation and preprocessing of a task-affinity matrix before clustering.

The affinity estimator produces a matrix T with arbitrary scale and sign (mean negative losses,
z-scored scores, ...) and a diagonal on a different footing (a task's affinity with itself). The
clustering objective ``<A, X>`` over the feasible set ``{X >= 0, X psd, X 1 = 1, tr X = k}`` has
two invariances that make the default transform safe:

* adding a constant ``c`` to every off-diagonal entry adds ``c (n - k)`` to every feasible
  objective (``1^T X 1 = n`` and ``tr X = k``), and setting the diagonal to a constant ``d``
  adds ``d k``: neither changes which partition is best for a fixed k;
* multiplying A by ``s > 0`` multiplies every objective by ``s``.

So ``transform="standardize"`` zeroes the diagonal and z-scores the off-diagonal entries -- the
argmax for a fixed k is that of the raw (zero-diagonal) matrix, while the numbers become
comparable across inputs and solver tolerances mean the same thing.

``transform="center"`` (the default) first removes per-task offsets: ``A_ij - a_i - a_j`` with
``a`` such that every off-diagonal row sums to 0 (:func:`~graphmtl.clustering.select_k.double_center`),
then z-scores. Why: with the diagonal set aside, a task's offset ``a_i`` (a task that every
estimate scores low, whatever its partners) enters the objective as ``-2 a_i X_ii`` with
``X_ii = 1 / |group of i|``, so the raw objective rewards putting low-offset tasks alone: on a
noisy affinity that gives ``k - 1`` singletons and one group holding the rest. Removing the
offsets leaves the block structure (and so planted groups) as it was, and a group of one only
wins when a task really has no partner. ``"exp"`` applies
``exp(z / temperature)`` to the z-scores (a nonlinear, positive similarity that emphasises the
strongest affinities), ``"none"`` only symmetrises and handles the diagonal.
"""

from __future__ import annotations

import numpy as np

from graphmtl.errors import GraphMTLError, check

TRANSFORMS = ("center", "standardize", "exp", "none")
DIAGONALS = ("zero", "keep")


def validate_affinity(A, *, name: str = "affinity", sym_tol: float = 1e-6) -> np.ndarray:
    """Check that ``A`` is a finite, square, (nearly) symmetric matrix with n >= 2.

    Args:
        A: array-like ``[n, n]``.
        name: what to call the matrix in error messages (a file name, a parameter).
        sym_tol: largest allowed ``max|A - A^T| / max(max|A|, tiny)``.

    Returns:
        ``A`` as a float64 array ``[n, n]`` (not yet symmetrised).

    Raises:
        GraphMTLError: one line naming ``name`` and what is wrong.
    """
    try:
        A = np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise GraphMTLError(f"{name}: not a numeric matrix ({e})") from None
    check(A.ndim == 2, f"{name}: expected a 2-D matrix, got shape {A.shape}")
    check(A.shape[0] == A.shape[1], f"{name}: not square, shape {A.shape}")
    n = A.shape[0]
    check(n >= 2, f"{name}: need at least 2 tasks, got n = {n}")
    bad = ~np.isfinite(A)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise GraphMTLError(f"{name}: {int(bad.sum())} non-finite entries (NaN/inf), "
                            f"first at [{i}, {j}]")
    scale = max(float(np.abs(A).max()), np.finfo(float).tiny)
    asym = float(np.abs(A - A.T).max()) / scale
    check(asym <= sym_tol, f"{name}: not symmetric, max|A - A^T|/max|A| = {asym:.3g} "
                           f"> sym_tol = {sym_tol:g}")
    return A


def preprocess_affinity(A, *, transform: str = "center", diagonal: str = "zero",
                        temperature: float = 1.0, sym_tol: float = 1e-6,
                        name: str = "affinity") -> np.ndarray:
    """Validate, symmetrise and transform an affinity matrix for clustering.

    Steps: :func:`validate_affinity`; ``A <- (A + A^T) / 2``; then the diagonal is set to 0
    (``diagonal="zero"``, default: self-affinities are on another scale than pairwise ones) or
    kept; then ``transform`` is applied to the off-diagonal entries (see the module docstring).

    Args:
        A: ``[n, n]`` affinity (larger = tasks help each other more).
        transform: ``"center"`` | ``"standardize"`` | ``"exp"`` | ``"none"``.
        diagonal: ``"zero"`` | ``"keep"`` (with "keep" the diagonal is transformed like the rest).
        temperature: for ``"exp"``: ``exp(z / temperature)``.
        sym_tol: tolerance of the symmetry check, relative to ``max|A|``.

    Returns:
        float64 ``[n, n]`` symmetric matrix.
    """
    check(transform in TRANSFORMS, f"transform: expected one of {TRANSFORMS}, got {transform!r}")
    check(diagonal in DIAGONALS, f"diagonal: expected one of {DIAGONALS}, got {diagonal!r}")
    check(np.isfinite(temperature) and temperature > 0,
          f"temperature: must be > 0, got {temperature}")
    A = validate_affinity(A, name=name, sym_tol=sym_tol)
    A = 0.5 * (A + A.T)
    n = A.shape[0]
    off = ~np.eye(n, dtype=bool)
    if transform == "center":
        from graphmtl.clustering.select_k import double_center

        if diagonal == "zero":
            A = double_center(A)
            A = 0.5 * (A + A.T)   # exactly symmetric again after the float arithmetic
    if transform != "none":
        vals = A[off] if diagonal == "zero" else A.ravel()
        std = float(vals.std())
        # A constant matrix carries no grouping information; keep it at zero instead of 0/0.
        Z = (A - vals.mean()) / std if std > 0 else np.zeros_like(A)
        A = np.exp(Z / temperature) if transform == "exp" else Z
    if diagonal == "zero":
        np.fill_diagonal(A, 0.0)
    return A
