"""Task blocks: the layout and the runner shared by the batched subset computations.

Rows of task ``t`` are shared by every subset holding ``t``, so the work of all subsets is done
task block by task block (one matrix product over the ``m_t`` subsets holding the task):
:class:`SubsetLayout` says which subsets hold which task, :class:`BlockRunner` runs a function
over the blocks on a few threads, and :func:`exact_softplus` is the loss term they use.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch


def exact_softplus(u: torch.Tensor) -> torch.Tensor:
    """log(1 + e^u), exact for all u (torch's softplus switches to u above a threshold)."""
    return torch.relu(u) + torch.log1p(torch.exp(-u.abs()))


class SubsetLayout:
    """Which subsets hold which task, for a batch of ``a`` subsets (rows of ``M`` ``[a, n]``).

    ``flat`` int64 ``[nnz]`` lists, task by task, the (local) subsets holding the task;
    ``blocks`` holds ``(t, start, stop)``: the subsets of task ``t`` are ``flat[start:stop]``.
    Tasks without rows are left out (they add nothing to any objective). Gathering ``W[flat]``
    once and scattering all per-task results with one ``index_add_`` keeps the number of small
    kernel launches independent of ``n``.
    """

    def __init__(self, flat: torch.Tensor, blocks: list[tuple[int, int, int]], size: int):
        self.flat, self.blocks, self.size = flat, blocks, size

    @classmethod
    def build(cls, M: torch.Tensor, rows_per_task: np.ndarray) -> "SubsetLayout":
        M = M & torch.as_tensor(rows_per_task > 0, device=M.device)[None, :]
        task_of, subset_of = M.T.nonzero(as_tuple=True)  # sorted by task, then subset
        counts = torch.bincount(task_of, minlength=M.shape[1]).tolist()
        blocks, start = [], 0
        for t, c in enumerate(counts):
            if c:
                blocks.append((t, start, start + c))
                start += c
        return cls(subset_of, blocks, M.shape[0])

    def compact(self, keep: torch.Tensor, curv: list[torch.Tensor] | None):
        """Restrict to the subsets with ``keep`` (bool ``[a]``); curvature blocks follow."""
        remap = torch.cumsum(keep.long(), 0) - 1
        kf = keep[self.flat]
        blocks, new_curv, start = [], [], 0
        for i, (t, a, b) in enumerate(self.blocks):
            k = kf[a:b]
            c = int(k.sum())
            if c:
                blocks.append((t, start, start + c))
                if curv is not None:
                    new_curv.append(curv[i][:, k])
                start += c
        return SubsetLayout(remap[self.flat[kf]], blocks, int(keep.sum())), new_curv

    def scatter(self, parts: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        """Sum per-block results (``[m_t, ...]`` each, in block order) into ``[a, ...]``."""
        out = like.new_zeros((self.size,) + tuple(like.shape[1:]))
        if parts:
            out.index_add_(0, self.flat, torch.cat(parts))
        return out


class BlockRunner:
    """Runs a function over task blocks on a few Python threads, each with one intra-op thread.

    Torch releases the GIL inside its kernels, so ``workers`` threads keep that many cores busy
    with whole per-task matrix products; unlike intra-op (OpenMP) parallelism there is no
    barrier per kernel, which matters for the many mid-sized kernels here, and a lot when the
    cores are shared with other processes (measured 3–4× slower with 2 OpenMP threads under load).
    """

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = (ThreadPoolExecutor(workers, initializer=torch.set_num_threads,
                                        initargs=(1,)) if workers > 1 else None)

    def map(self, fn, items: list, cost: list[float]) -> list:
        if self.pool is None or len(items) < 2:
            return [fn(x) for x in items]
        # Contiguous chunks of about equal cost, a few per worker for load balance.
        pieces = min(len(items), 4 * self.workers)
        edges = np.searchsorted(np.cumsum(cost), np.linspace(0, sum(cost), pieces + 1)[1:-1])
        bounds = [0, *sorted(set(int(e) + 1 for e in edges if 0 <= e < len(items) - 1)),
                  len(items)]
        chunks = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        out: list = []
        for part in self.pool.map(lambda ch: [fn(x) for x in ch], chunks):
            out.extend(part)
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
