"""The average-density objective of a partition and its SDP matrix."""

from __future__ import annotations

import numpy as np


def membership(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group index per task ``inv [n]`` (ids renumbered 0..k-1 in sorted order, empty ids
    dropped) and the one-hot membership matrix ``Z [n, k]`` (float64)."""
    _, inv = np.unique(labels, return_inverse=True)
    Z = np.zeros((len(inv), inv.max() + 1))
    Z[np.arange(len(inv)), inv] = 1.0
    return inv, Z


def partition_objective(A: np.ndarray, labels: np.ndarray) -> float:
    """``sum_l (1/|C_l|) sum_{i,j in C_l} A_ij`` = ``<A, X(labels)>``.

    Args:
        A: ``[n, n]`` symmetric affinity.
        labels: ``[n]`` integer group ids (any values; empty ids are ignored).

    Cost O(n^2) via one ``A @ Z`` with the one-hot membership Z ``[n, k]``.
    """
    _, Z = membership(labels)
    sizes = Z.sum(0)
    return float((np.einsum("ik,ik->k", Z, A @ Z) / sizes).sum())


def partition_matrix(labels: np.ndarray) -> np.ndarray:
    """The feasible SDP point ``X = sum_l 1_{C_l} 1_{C_l}^T / |C_l|`` ``[n, n]``."""
    _, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    same = inv[:, None] == inv[None, :]
    return same / counts[inv][:, None]
