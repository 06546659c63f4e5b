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
