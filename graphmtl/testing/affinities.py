"""Planted-group affinity matrices (clustering tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from graphmtl.errors import check


def planted_affinity(n: int, k: int, noise: float = 1.0, seed: int = 0, *,
                     within: float = 1.0, between: float = 0.0,
                     scale: float = 1.0, shift: float = 0.0,
                     balanced: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A symmetric affinity with k planted groups plus Gaussian noise.

    ``A_ij = scale * (within if g_i == g_j else between) + scale * noise * E_ij + shift`` with
    ``E`` symmetric standard normal; the diagonal is ``scale * within + shift``. ``scale`` and
    ``shift`` mimic the arbitrary units of an estimated affinity. Groups are equal-sized (sizes
    differ by at most one) or, with ``balanced=False``, drawn from a Dirichlet(2) split with at
    least 2 tasks per group; tasks are randomly permuted.

    The signal of a group of size m is about ``m * (within - between)`` against a noise spectral
    norm of about ``2 * noise * sqrt(n)``: ``noise = 1`` with groups of >= 20 tasks is "moderate".

    Returns:
        ``(A [n, n] float64, labels [n] int64 in 0..k-1)``.
    """
    check(n >= 2, f"n: need n >= 2, got {n}")
    check(1 <= k <= n, f"k: need 1 <= k <= n = {n}, got {k}")
    check(noise >= 0, f"noise: must be >= 0, got {noise}")
    # A stream of its own, so random_partition(sizes, seed=seed) never reproduces the groups.
    rng = np.random.default_rng([seed, 0x5EED])
    if balanced or k == 1 or n < 2 * k:
        sizes = np.full(k, n // k)
        sizes[: n % k] += 1
    else:
        extra = rng.multinomial(n - 2 * k, rng.dirichlet(np.full(k, 2.0)))
        sizes = extra + 2
    labels = rng.permutation(np.repeat(np.arange(k), sizes))
    same = labels[:, None] == labels[None, :]
    E = rng.standard_normal((n, n))
    E = (E + E.T) / np.sqrt(2.0)
    A = np.where(same, within, between) + noise * E
    np.fill_diagonal(A, within)
    return scale * A + shift, labels.astype(np.int64)
