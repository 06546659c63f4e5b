"""Masked multi-label BCE, vectorised over tasks."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_bce(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits averaged over the labelled (node, task) pairs.

    Args:
        logits: ``[B, k]``.
        y: ``[B, k]`` targets in {0, 1} (any dtype; cast to ``logits.dtype``).
        mask: ``[B, k]`` 1 where node ``b`` is labelled for task ``t`` in this split, else 0.

    Returns:
        Scalar ``sum(mask * bce) / max(sum(mask), 1)``: every labelled pair weighs the same,
        whatever task it belongs to; unlabelled pairs contribute neither loss nor gradient. No
        boolean indexing (which would synchronise and copy), no loop over tasks.
    """
    mask = mask.to(logits.dtype)
    total = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), weight=mask,
                                               reduction="sum")
    return total / mask.sum().clamp_min(1.0)


def per_task_bce(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean BCE per task over its labelled nodes, ``[k]`` (NaN for a task with none)."""
    mask = mask.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
    count = mask.sum(0)
    return (bce * mask).sum(0) / count.where(count > 0, torch.full_like(count, float("nan")))
