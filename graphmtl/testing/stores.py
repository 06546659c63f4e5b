"""Synthetic projected-gradient stores with planted task groups (tests and benchmarks).

Rows of task ``t`` in group ``g``: ``z ~ N(0, I_d)``; the base model's logit ``f0`` sits at the
logit of the task's base rate; labels follow ``y ~ Bernoulli(σ(f0 + ⟨z, w*_t⟩))`` with
``w*_t = signal · (u_g + noise · e_t) / √d`` for a group direction ``u_g`` and a task direction
``e_t``. Tasks of one group therefore share the step that improves them, and fitting them together
helps: the planted grouping is what an affinity matrix should show.
"""

from __future__ import annotations

import os

import numpy as np

from graphmtl.projection.store import ProjectionStore, StoreWriter


def block_groups(n: int, groups: int) -> np.ndarray:
    """int64 ``[n]`` group of each of ``n`` tasks: ``groups`` contiguous blocks of (nearly)
    equal size (the groups :func:`write_synthetic_store` plants)."""
    return (np.arange(n) * groups) // n


def write_synthetic_store(path: str | os.PathLike, n: int = 20, d: int = 32,
                          train_rows: int | tuple[int, int] = (200, 400),
                          val_rows: int | tuple[int, int] = (100, 200), groups: int = 4,
                          signal: float = 2.0, task_noise: float = 0.5,
                          base_rate: tuple[float, float] = (0.1, 0.3), seed: int = 0,
                          subsample: float = 1.0) -> ProjectionStore:
    """Write a complete synthetic :class:`ProjectionStore` at ``path`` and open it.

    Args:
        n, d: tasks and projection dimension.
        train_rows, val_rows: rows per task, fixed or an inclusive ``(min, max)`` range.
        groups: planted groups (see :func:`block_groups`).
        signal, task_noise: size of the planted step, and how much of it is task-specific.
        base_rate: range of the tasks' positive rates.
        seed: everything is drawn from this seed.
        subsample: keep each row with this probability and give kept rows weight ``1/p``
            (exercises the weighted objective).
    """
    rng = np.random.default_rng(seed)
    group = block_groups(n, groups)
    U = rng.normal(size=(groups, d))
    W = signal * (U[group] + task_noise * rng.normal(size=(n, d))) / np.sqrt(d)
    rate = rng.uniform(*base_rate, size=n)

    def counts(spec):
        lo, hi = (spec, spec) if isinstance(spec, int) else spec
        return rng.integers(lo, hi + 1, size=n)

    splits = {s: counts(c) for s, c in (("train", train_rows), ("val", val_rows))}
    ptr = {s: np.concatenate([[0], np.cumsum(c)]).astype(np.int64) for s, c in splits.items()}
    writer = StoreWriter(path, ptr, d, {"task_names": [f"task{t}" for t in range(n)],
                                        "seed": seed, "synthetic": True})
    for split, c in splits.items():
        R = int(ptr[split][-1])
        task = np.repeat(np.arange(n), c)
        z = rng.normal(size=(R, d))
        f0 = np.log(rate / (1 - rate))[task] + 0.3 * rng.normal(size=R)
        logit = f0 + np.einsum("rd,rd->r", z, W[task])
        y = rng.random(R) < 1 / (1 + np.exp(-logit))
        weight = np.ones(R)
        if subsample < 1.0:
            weight = np.where(rng.random(R) < subsample, 1.0 / subsample, 0.0)
        a = writer.arrays
        a[(split, "z")][:] = z
        a[(split, "f0")][:] = f0
        a[(split, "y")][:] = y
        a[(split, "weight")][:] = weight
        a[(split, "node")][:] = np.arange(R) % max(1, int(c.max()))
    return writer.finalize()
