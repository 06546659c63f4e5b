"""Subset solves sharded over the ranks of a ``torchrun`` process group.

Every subset's fit depends only on its own tasks' rows (the relative λ is computed from all
rows, identically on every rank), so rank ``r`` solves the ``r``-th contiguous block of the
subsets with :class:`~graphmtl.affinity.solver.BatchedSubsetSolver` and the blocks are
gathered on every rank. The solutions equal the one-process ones to the solver's tolerance
(the per-task products have other shapes, so float rounding differs; measured in
``tests/test_distributed.py``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from graphmtl.affinity.rows import SplitRows
from graphmtl.affinity.solver import BatchedSubsetSolver, SolverConfig, SubsetFit
from graphmtl.utils import distributed as dist


def merge_fits(parts: Sequence[SubsetFit]) -> SubsetFit:
    """One :class:`SubsetFit` from the fits of consecutive blocks of subsets (in order):
    per-subset tensors concatenated, counts and FLOPs summed, iterations and seconds the
    slowest block's."""
    parts = [p for p in parts if p is not None]
    cat = lambda name: torch.cat([getattr(p, name) for p in parts])  # noqa: E731
    keys = {k for p in parts for k in p.flops}
    secs = {k for p in parts for k in p.seconds}
    return SubsetFit(
        weights=cat("weights"), objective=cat("objective"), grad_norm=cat("grad_norm"),
        converged=cat("converged"), lam=parts[0].lam,
        newton_iters=max(p.newton_iters for p in parts),
        grad_evals=sum(p.grad_evals for p in parts), hvp_evals=sum(p.hvp_evals for p in parts),
        flops={k: sum(p.flops.get(k, 0) for p in parts) for k in sorted(keys)},
        seconds={k: max(p.seconds.get(k, 0.0) for p in parts) for k in sorted(secs)},
        shortened_steps=sum(p.shortened_steps for p in parts))


class ShardedSubsetSolver:
    """:class:`BatchedSubsetSolver` with the subsets split over the ranks (one process: the
    plain solver). Same ``fit`` signature and result, on every rank."""

    def __init__(self, config: SolverConfig | None = None):
        self.config = config or SolverConfig()

    def fit(self, rows: SplitRows, M: np.ndarray | torch.Tensor,
            task_names: Sequence[str] | None = None) -> SubsetFit:
        solver = BatchedSubsetSolver(self.config)
        rank, world = dist.rank_world()
        M = np.asarray(M, dtype=bool)
        if world == 1:
            return solver.fit(rows, M, task_names)
        lo, hi = dist.shard_range(M.shape[0], rank, world)
        part = solver.fit(rows, M[lo:hi], task_names) if hi > lo else None
        return merge_fits(dist.all_gather_objects(part))
