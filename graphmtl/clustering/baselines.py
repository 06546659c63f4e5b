"""Baseline partitions to compare the SDP clustering with."""

from __future__ import annotations

import warnings

import numpy as np

from graphmtl.errors import check


def spectral_partition(A: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """scikit-learn ``SpectralClustering`` on a (preprocessed) affinity ``A [n, n]``.

    Spectral clustering needs a nonnegative similarity, so ``A`` is mapped to ``exp(A / std)``
    of its off-diagonal entries (monotone, so the ordering of affinities is kept).

    Returns:
        ``[n]`` int64 labels in ``0..k-1``.
    """
    from sklearn.cluster import SpectralClustering

    n = A.shape[0]
    check(1 <= k <= n, f"k: need 1 <= k <= n = {n}, got {k}")
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    off = A[~np.eye(n, dtype=bool)]
    std = float(off.std()) or 1.0
    S = np.exp((A - off.max()) / std)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = SpectralClustering(k, affinity="precomputed", random_state=seed,
                                    assign_labels="kmeans", n_init=10).fit_predict(S)
    return labels.astype(np.int64)


def random_partition(sizes, *, seed: int = 0) -> np.ndarray:
    """A uniformly random partition with the given group sizes.

    Args:
        sizes: ``[k]`` positive group sizes (e.g. ``np.bincount(labels)`` of another partition).

    Returns:
        ``[sum(sizes)]`` int64 labels; group g has exactly ``sizes[g]`` members.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    check(sizes.ndim == 1 and len(sizes) >= 1 and bool(np.all(sizes >= 1)),
          f"sizes: need positive group sizes, got {sizes.tolist()}")
    rng = np.random.default_rng(seed)
    return rng.permutation(np.repeat(np.arange(len(sizes)), sizes)).astype(np.int64)
