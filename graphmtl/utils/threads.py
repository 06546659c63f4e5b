"""Thread counts: torch's intra-op pool and the BLAS / OpenMP pools, set for a block of work.

Why the library limits threads at all: on small problems (per-task matrix products of the subset
solver, the clustering solvers' ``[n, n] x [n, r]`` products, scikit-learn's OpenMP KMeans) the
start-up and barriers of a multithreaded pool cost more than they save, and on a machine whose
cores are shared with other processes multithreaded OpenBLAS / OpenMP was measured up to 12x
slower than one thread (10 KMeans inits at n = 500: 4.5 s with the default threads under load
~9, 0.065 s with one). Callers that run several single-threaded workers side by side get the
parallelism back without the barriers.
"""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def torch_threads(num: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count to ``num`` inside the block and restore it on exit
    (``None``: leave it as it is)."""
    import torch

    before = torch.get_num_threads()
    if num is not None and num != before:
        torch.set_num_threads(int(num))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def blas_threads(num: int | None):
    """Context manager limiting the BLAS and OpenMP pools (numpy / scipy / scikit-learn) to
    ``num`` threads (``None``: as they are). threadpoolctl ships with scikit-learn."""
    if num is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn always brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(num))
