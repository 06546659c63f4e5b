"""Batched surrogate training: every sampled subset's model trained at once, cheaply.

The trained higher-order affinity (one model trained per sampled subset, each task scored on
validation) finds task groups that help each other, because a model trained on a group *learns
its representation* from the group's pooled labels. A linearisation around one all-task model
cannot see that. This estimator reproduces the trained affinity directly at a fraction of its
cost: each subset gets a small surrogate of the group model — a one-hidden-layer MLP on the
graph's precomputed propagated features ``[X, ÂX, Â²X, ...]`` (the inputs of the ``sign``
encoder), compressed once by PCA — and all ``m`` surrogates are trained *together* as one stacked
computation: the weights of a chunk of subsets are stacked into ``[B, ...]`` tensors, every
optimiser step draws one minibatch of training rows shared by all of them, and the forward and
backward passes are batched matrix products (``torch.einsum``) with each subset's loss masked to
its own tasks. Adam acts element-wise, so stacking changes nothing about each model's
optimisation; there is no Python loop over subsets.

Every ``eval_every`` steps each surrogate scores its tasks on their validation rows (average
precision for all columns at once, :func:`~graphmtl.training.metrics.average_precision_columns`);
like the trainer's checkpoint selection, each subset keeps the evaluation with its best mean
score. ``F[k, i]`` then feeds the same higher-order affinity as the trained one (z-scored per
task, averaged over the subsets holding both tasks, symmetrised).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from graphmtl.affinity.matrices import higher_order_affinity, symmetrize
from graphmtl.affinity.subsets import (as_membership, coverage_report, padded_members,
                                      sample_subsets, scatter_members)
from graphmtl.errors import check
from graphmtl.training.metrics import average_precision_columns


@dataclass(frozen=True)
class SurrogateConfig:
    """The surrogate models and their training.

    Args:
        hops: propagation hops of the input features (``sign`` features ``[X, ÂX, ...]``).
        input_dim: PCA dimension the standardised propagated features are compressed to
            (``None``: keep them all); the first layer's cost is proportional to it.
        hidden: hidden width of every surrogate.
        steps: optimiser steps.
        batch_size: training rows per step, shared by all surrogates.
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2 on every weight).
        eval_every: steps between validation scorings (and after the last step).
        chunk: subsets trained in one stacked computation (bounds memory: about
            ``chunk * batch_size * hidden`` floats of activations).
        val_rows: at most this many validation rows are scored (``None``: all). A validation
            pass costs a sort of every subset's scores over these rows, so on a large graph it,
            not training, is the cost (orkut500: 400k rows, 90 % of the time). The sample is
            stratified (:func:`validation_rows`: positives of some task up to half of it, the
            rest other labelled rows) and seeded; every subset is scored on the same rows, so
            the scores stay comparable across subsets. Graphs with fewer validation rows are
            scored on all of them.
    """

    hops: int = 2
    input_dim: int | None = 64
    hidden: int = 32
    steps: int = 200
    batch_size: int = 1024
    lr: float = 0.01
    weight_decay: float = 1e-3
    eval_every: int = 25
    chunk: int = 256
    val_rows: int | None = 100_000

    def __post_init__(self) -> None:
        for name in ("hops", "hidden", "steps", "batch_size", "eval_every", "chunk"):
            check(getattr(self, name) >= 1,
                  f"surrogate {name}: must be >= 1, got {getattr(self, name)}")
        check(self.val_rows is None or self.val_rows >= 1,
              f"surrogate val_rows: must be >= 1 or None, got {self.val_rows}")
        check(self.input_dim is None or self.input_dim >= 1,
              f"surrogate input_dim: must be >= 1 or None, got {self.input_dim}")
        check(self.lr > 0, f"surrogate lr: must be > 0, got {self.lr}")
        check(self.weight_decay >= 0,
              f"surrogate weight_decay: must be >= 0, got {self.weight_decay}")

    def to_dict(self) -> dict:
        return asdict(self)


def surrogate_inputs(graph, hops: int, input_dim: int | None, seed: int = 0) -> torch.Tensor:
    """Propagated features ``[N, D]``: ``[X, ÂX, ..., Â^hops X]`` standardised per column, then
    projected on their top ``input_dim`` principal directions (randomised PCA, seeded)."""
    from graphmtl.models import sign_features

    X = sign_features(graph.x.float(), graph.edge_index, hops)
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-6)
    if input_dim is not None and input_dim < X.shape[1]:
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            _, _, V = torch.pca_lowrank(X, q=input_dim, center=False, niter=4)
        finally:
            torch.random.set_rng_state(gen_state)
        X = X @ V
        X = X / X.std(0).clamp_min(1e-6)
    return X.contiguous()


def validation_rows(graph, max_rows: int | None, seed: int = 0) -> torch.Tensor:
    """Sorted node indices ``[R]`` the surrogates are scored on: every node with a validation
    label when there are at most ``max_rows`` of them (or ``max_rows`` is ``None``); else a
    stratified sample of ``max_rows``: the nodes that are a validation positive of some task
    (all of them while they fit in half the budget, else a uniform sample of that half), the
    rest a uniform sample of the other labelled nodes. Seeded."""
    rows = graph.val_mask.any(1).nonzero().flatten()
    if max_rows is None or len(rows) <= max_rows:
        return rows
    gen = torch.Generator().manual_seed(seed)
    positive = (graph.val_mask & graph.y)[rows].any(1)
    pos, neg = rows[positive], rows[~positive]

    def sample(r: torch.Tensor, k: int) -> torch.Tensor:
        return r[torch.randperm(len(r), generator=gen)[:k]] if k < len(r) else r

    # Positives are rare and AP hinges on them: over-represented, but never crowding out the
    # negatives a task is ranked against.
    k_pos = min(len(pos), max(max_rows // 2, max_rows - len(neg)))
    pos = sample(pos, k_pos)
    return torch.sort(torch.cat([pos, sample(neg, max_rows - k_pos)])).values


#: Entries of the largest temporary of one validation pass (hidden activations of a block of
#: rows, or the scores of a block of subsets being ranked for AP): 2^25 floats, 128 MB.
EVAL_ENTRIES = 1 << 25


class _Stack:
    """The stacked weights of ``B`` surrogates with ``s`` outputs each (one per subset task)."""

    def __init__(self, B: int, D: int, h: int, s: int, gen: torch.Generator,
                 device: torch.device | str = "cpu"):
        def uniform(*shape, fan_in):                 # nn.Linear's default initialisation
            bound = 1 / np.sqrt(fan_in)
            w = (torch.rand(*shape, generator=gen) * 2 - 1) * bound
            return w.to(device).requires_grad_()

        self.W1, self.b1 = uniform(B, D, h, fan_in=D), uniform(B, 1, h, fan_in=D)
        self.W2, self.b2 = uniform(B, h, s, fan_in=h), uniform(B, 1, s, fan_in=h)

    def params(self) -> list[torch.Tensor]:
        return [self.W1, self.b1, self.W2, self.b2]

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        """``[B, R, s]`` logits of rows ``X`` ``[R, D]``."""
        H = torch.relu(torch.einsum("rd,bdh->brh", X, self.W1) + self.b1)
        return torch.einsum("brh,bhs->brs", H, self.W2) + self.b2


class SurrogateAffinityEstimator:
    """Higher-order task affinity from batched surrogate training (scikit-learn style).

    Args:
        num_subsets: ``m`` subsets to sample.
        subset_size: ``s`` tasks per subset (capped at ``n``).
        standardize: z-score each task's scores across its subsets before averaging.
        seed: seed of the subsets, the PCA, the initial weights and the row batches.
        config: the surrogate models (:class:`SurrogateConfig`).
        device: where the surrogates train (``cpu``, ``cuda``, ``cuda:N``, ``auto``); the random
            draws stay on the CPU, so the result does not depend on the device beyond float
            rounding.

    Attributes (after ``fit``): ``subsets_`` bool ``[m, n]``; ``scores_`` ``[m, n]`` validation
    AP of each task under its subset's surrogate (NaN outside the subset or without validation
    positives); ``affinity_directed_`` and ``affinity_`` ``[n, n]``; ``coverage_`` (dict);
    ``timings_`` (seconds by phase); ``task_names_``.
    """

    def __init__(self, num_subsets: int = 1000, subset_size: int = 5, *,
                 standardize: bool = True, seed: int = 0,
                 config: SurrogateConfig | None = None, device: str = "cpu"):
        check(num_subsets >= 1, f"surrogate num_subsets: must be >= 1, got {num_subsets}")
        check(subset_size >= 2, f"surrogate subset_size: must be >= 2, got {subset_size}")
        self.num_subsets = num_subsets
        self.subset_size = subset_size
        self.standardize = standardize
        self.seed = seed
        self.config = config or SurrogateConfig()
        self.device = device

    def fit(self, graph, subsets=None) -> "SurrogateAffinityEstimator":
        """Estimate from ``graph`` (a :class:`~graphmtl.data.MultiTaskGraph`); ``subsets``:
        optional bool ``[m, n]`` or lists of task names / positions (equal sizes not needed)."""
        from graphmtl.utils.device import resolve_device

        cfg = self.config
        device = resolve_device(self.device)
        timings: dict[str, float] = {}
        n = graph.num_tasks
        check(n >= 2, f"surrogate affinity: needs at least 2 tasks, got {n}")
        t0 = time.perf_counter()
        M = (sample_subsets(n, self.num_subsets, min(self.subset_size, n), seed=self.seed)
             if subsets is None else as_membership(subsets, graph.task_names))
        X = surrogate_inputs(graph, cfg.hops, cfg.input_dim, self.seed).to(device)
        timings["features_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        train_rows = graph.train_mask.any(1).nonzero().flatten()
        val_rows = validation_rows(graph, cfg.val_rows, self.seed)
        check(len(train_rows) > 0 and len(val_rows) > 0,
              "surrogate affinity: the graph has no training or no validation labels")
        scores = np.full(M.shape, np.nan)
        gen = torch.Generator().manual_seed(self.seed)
        for lo in range(0, M.shape[0], cfg.chunk):
            block = M[lo:lo + cfg.chunk]
            scores[lo:lo + cfg.chunk] = self._fit_chunk(graph, X, block, train_rows, val_rows,
                                                        gen, device)
        timings["train_s"] = time.perf_counter() - t0

        scored = M & np.isfinite(scores)
        self.subsets_ = M
        self.scores_ = scores
        self.affinity_directed_ = higher_order_affinity(
            scored, np.where(scored, scores, np.nan), standardize=self.standardize)
        self.affinity_ = symmetrize(self.affinity_directed_)
        self.coverage_ = coverage_report(M).to_dict()
        self.timings_ = {**timings, "total_s": sum(timings.values())}
        self.task_names_ = list(graph.task_names)
        return self

    def _fit_chunk(self, graph, X, block: np.ndarray, train_rows, val_rows, gen,
                   device: torch.device) -> np.ndarray:
        """Train the surrogates of ``block`` (bool ``[B, n]``); return their ``[B, n]`` scores."""
        cfg = self.config
        B, n = block.shape
        # Task index per output; subsets smaller than s pad with a task masked out of the loss.
        idx, valid = padded_members(block)
        s = idx.shape[1]
        idx_t, valid_t = torch.from_numpy(idx).to(device), torch.from_numpy(valid).to(device)
        stack = _Stack(B, X.shape[1], cfg.hidden, s, gen, device)
        opt = torch.optim.Adam(stack.params(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        y, train_mask, val_mask = (t.to(device) for t in (graph.y, graph.train_mask,
                                                          graph.val_mask))

        def columns(rows: torch.Tensor, mask: torch.Tensor):
            """Labels and masks ``[B, R, s]`` of ``rows`` for every subset's tasks."""
            lab = y[rows][:, idx_t].permute(1, 0, 2)
            m = mask[rows][:, idx_t].permute(1, 0, 2) & valid_t[:, None, :]
            return lab, m

        val_rows = val_rows.to(device)
        Xv = X[val_rows]
        yv, mv = columns(val_rows, val_mask)
        best = np.full((B, s), np.nan)
        best_mean = np.full(B, -np.inf)

        Rv = len(val_rows)
        # Memory stays bounded on large graphs (400k validation rows x 256 subsets): the hidden
        # activations exist for one block of rows at a time, and AP is computed for a block of
        # subsets at a time; only the logits [B, Rv, s] are held whole.
        row_block = max(1, EVAL_ENTRIES // (B * cfg.hidden))
        subset_block = max(1, EVAL_ENTRIES // (Rv * s))

        def evaluate() -> None:
            with torch.no_grad():
                u = torch.cat([stack.logits(Xv[lo:lo + row_block])
                               for lo in range(0, Rv, row_block)], dim=1)    # [B, Rv, s]
                ap = torch.cat([average_precision_columns(
                    u[lo:lo + subset_block].permute(1, 0, 2).reshape(Rv, -1),
                    yv[lo:lo + subset_block].permute(1, 0, 2).reshape(Rv, -1),
                    mv[lo:lo + subset_block].permute(1, 0, 2).reshape(Rv, -1))
                    for lo in range(0, B, subset_block)])
            ap = ap.reshape(B, s).cpu().numpy()
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(np.where(valid, ap, np.nan), axis=1)
            better = np.isfinite(mean) & (mean > best_mean)
            best[better] = ap[better]
            best_mean[better] = mean[better]

        for step in range(cfg.steps):
            pick = torch.randint(len(train_rows), (min(cfg.batch_size, len(train_rows)),),
                                 generator=gen)
            rows = train_rows[pick].to(device)
            lab, m = columns(rows, train_mask)
            u = stack.logits(X[rows])
            mf = m.to(u.dtype)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(
                u, lab.to(u.dtype), weight=mf, reduction="none").sum((1, 2))
            loss = (bce / mf.sum((1, 2)).clamp_min(1.0)).sum()   # each surrogate its own mean
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
                evaluate()
        return scatter_members(best, idx, valid, n)
