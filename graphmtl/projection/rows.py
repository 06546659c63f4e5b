"""Which rows (node, task) a store keeps per split: :func:`select_rows`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from graphmtl.projection.store import STORE_SPLITS


@dataclass(frozen=True)
class RowSelection:
    """The rows of one split, grouped by task (see :func:`select_rows`).

    Attributes:
        task_ptr: int64 ``[n + 1]``; node: int64 ``[R]``; task: int64 ``[R]``; y: uint8 ``[R]``;
        weight: float32 ``[R]``.
    """

    task_ptr: np.ndarray
    node: np.ndarray
    task: np.ndarray
    y: np.ndarray
    weight: np.ndarray


def select_rows(y: torch.Tensor, mask: torch.Tensor, budget: int | None, seed: int,
                split: str) -> RowSelection:
    """Choose the stored rows of each task in one split, up front and deterministically.

    Rule, per task ``t`` with ``pos`` positive and ``neg`` negative labelled nodes in the split:

    * ``budget is None`` or ``pos + neg <= budget``: every row, weight 1 (exact).
    * otherwise keep ``kp = min(pos, max(budget - neg, ceil(budget / 2)))`` positives and
      ``kn = budget - kp`` negatives, each a uniform sample without replacement (seeded by
      ``(seed, split, t)``), with weights ``pos / kp`` and ``neg / kn`` (inverse inclusion
      probability, so weighted sums are unbiased for the full sums). In words: all positives
      when they fill at most half the budget (the usual case for community tasks), the rest of
      the budget for negatives; never more than ``budget`` rows.

    Rows of a task are sorted by node id.
    """
    y_np = y.numpy()
    m_np = mask.numpy()
    n = y_np.shape[1]
    split_id = STORE_SPLITS.index(split)
    nodes, tasks, ys, weights = [], [], [], []
    ptr = np.zeros(n + 1, dtype=np.int64)
    for t in range(n):  # up front, O(N) per task; not a hot loop
        lab = np.flatnonzero(m_np[:, t])
        is_pos = y_np[lab, t]
        pos, neg = lab[is_pos], lab[~is_pos]
        if budget is None or len(lab) <= budget:
            keep = lab
            wt = np.ones(len(lab), dtype=np.float32)
        else:
            kp = min(len(pos), max(budget - len(neg), math.ceil(budget / 2)))
            kn = budget - kp
            rng = np.random.default_rng([seed, split_id, t])
            sp = np.sort(rng.choice(pos, size=kp, replace=False)) if kp < len(pos) else pos
            sn = np.sort(rng.choice(neg, size=kn, replace=False)) if kn < len(neg) else neg
            keep = np.concatenate([sp, sn])
            wt = np.concatenate([np.full(kp, len(pos) / max(kp, 1), np.float32),
                                 np.full(kn, len(neg) / max(kn, 1), np.float32)])
            order = np.argsort(keep, kind="stable")
            keep, wt = keep[order], wt[order]
        nodes.append(keep.astype(np.int64))
        tasks.append(np.full(len(keep), t, dtype=np.int64))
        ys.append(y_np[keep, t].astype(np.uint8))
        weights.append(wt)
        ptr[t + 1] = ptr[t] + len(keep)
    cat = (lambda a, dt: np.concatenate(a).astype(dt) if a else np.zeros(0, dt))
    return RowSelection(ptr, cat(nodes, np.int64), cat(tasks, np.int64), cat(ys, np.uint8),
                        cat(weights, np.float32))
