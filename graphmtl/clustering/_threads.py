"""Single-threaded BLAS / OpenMP for the clustering solvers.

The low-rank solver's hot loop is one ``A @ V`` ([n, n] x [n, r], r ~ 2k) per iteration: too
small for two BLAS threads to pay off, and on a shared machine (load above the core count)
multithreaded OpenBLAS made it up to 12x slower than one thread. scikit-learn's OpenMP KMeans
(spectral start, rounding) was worse: 10 inits at n = 500 took 4.5 s with the default threads
under load ~9 and 0.065 s with one. threadpoolctl ships with scikit-learn (a dependency).
"""

from __future__ import annotations

from contextlib import nullcontext


def limit_threads(n: int | None):
    """Context manager limiting BLAS and OpenMP pools to ``n`` threads (``None``: as is)."""
    if n is None:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn always brings it
        return nullcontext()
    return threadpool_limits(limits=int(n))
