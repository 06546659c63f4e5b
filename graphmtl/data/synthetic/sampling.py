"""Vectorised sampling helpers of the generator (power laws, weighted draws, int64 pair keys)."""

from __future__ import annotations

import numpy as np


def pareto(rng: np.random.Generator, size: int, exponent: float, upper: float = np.inf
           ) -> np.ndarray:
    """Samples of density ``~ s^-exponent`` on ``[1, upper]`` by inverse transform."""
    a = exponent - 1.0
    tail = 0.0 if not np.isfinite(upper) else upper ** -a
    u = rng.random(size)
    return (1.0 - u * (1.0 - tail)) ** (-1.0 / a)


def unique_sorted(keys: np.ndarray) -> np.ndarray:
    """Sorted unique values of an int64 array, sorting it in place.

    Faster than ``np.unique`` here: numpy 2's hash-based unique is several times slower than a
    plain sort on tens of millions of int64 keys.
    """
    keys.sort()
    if len(keys) < 2:
        return keys
    keep = np.empty(len(keys), dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def weighted_draw(rng: np.random.Generator, cumw: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probability proportional to the weights whose cumsum is ``cumw``."""
    idx = np.searchsorted(cumw, rng.random(size) * cumw[-1], side="right")
    return np.minimum(idx, len(cumw) - 1)


def near_equal(n: int, G: int) -> np.ndarray:
    """Sizes (int64 ``[G]``) of ``G`` near-equal parts of ``n`` items, larger parts first."""
    return np.full(G, n // G) + (np.arange(G) < n % G)


def by_first_appearance(group_old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber group ids (``[n]``, every id in ``0..G-1`` present) by first appearance.
    Returns the new ids (int64 ``[n]``) and the old id of each new one (``[G]``)."""
    _, first = np.unique(group_old, return_index=True)
    old_of_new = group_old[np.sort(first)]
    relabel = np.empty(len(old_of_new), dtype=np.int64)
    relabel[old_of_new] = np.arange(len(old_of_new))
    return relabel[group_old], old_of_new
