"""Shared-subspace affinity: every sampled subset's linear multitask model, in closed form.

A model trained on a group of tasks helps a task when the group's pooled labels teach it a
representation that fits that task too. The smallest model with that property is linear: each
subset ``S`` gets a *reduced-rank ridge regression* of its tasks' labels on the graph's
propagated features ``[X, ÂX, Â²X, ...]`` (the inputs of the ``sign`` encoder, the same ones the
batched surrogate reads), in which the ``|S|`` tasks share an ``r``-dimensional representation.
A task whose signal lies in the subspace its partners span is predicted through it as well as
alone, or better (its partners' labels denoise its own few); a task unlike its partners is
projected onto a subspace that is not its own and loses. Scoring each task's prediction on its
validation rows (average precision) gives the subset scores ``F[k, i]`` of the trained affinity,
with no training at all:

1. one ridge fit per task (coefficients ``b_i`` ``[D]``, tasks with identical training rows
   share one solve);
2. the fitted scores' covariance ``C = Bᵀ Σ B`` ``[n, n]`` (``Σ`` the feature covariance of the
   training rows), scaled to a correlation so that every task weighs the same;
3. per subset, the top-``r`` eigenvectors ``V`` ``[s, r]`` of ``C[S, S]`` (one batched
   ``eigh`` over all subsets) — the classical reduced-rank solution ``B_S V Vᵀ``;
4. validation predictions ``X_val B_S V Vᵀ`` and their AP, batched over subsets.

Everything is batched over tasks and subsets; the cost is one pass over the features, ``n``
small solves, and one AP per (subset, task) — seconds where the surrogate trains for minutes.
``F`` feeds the same higher-order affinity as the trained scores (z-scored per task, averaged
over the subsets holding both tasks, symmetrised). By default it is averaged with the fitted
scores' correlation ``C`` (each z-scored, :func:`~graphmtl.affinity.combine_affinities`): ``C``
covers every pair, which the subsets cannot on large label sets (1,000 subsets of 5 hold 10,000
of the 124,750 pairs of 500 tasks), and the two agree where a grouping is real.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from graphmtl.affinity.matrices import combine_affinities, higher_order_affinity, symmetrize
from graphmtl.affinity.subsets import (as_membership, coverage_report, padded_members,
                                      sample_subsets, scatter_members)
from graphmtl.affinity.surrogate import EVAL_ENTRIES, surrogate_inputs, validation_rows
from graphmtl.errors import check
from graphmtl.training.metrics import average_precision_columns


@dataclass(frozen=True)
class SubspaceConfig:
    """The subsets' linear models.

    Args:
        hops: propagation hops of the input features (``sign`` features ``[X, ÂX, ...]``).
        input_dim: PCA dimension the standardised propagated features are compressed to
            (``None``: keep them all); each ridge solve is ``input_dim × input_dim``.
        rank: ``r``, the dimension of the representation a subset's tasks share (``r`` at
            least the subset size: no sharing, every task its own ridge fit).
        ridge: L2 strength relative to a task's number of training rows (``λ · n_i · I`` is
            added to the ``input_dim × input_dim`` Gram matrix of standardised features).
        val_rows: at most this many validation rows are scored (``None``: all; the stratified,
            seeded sample of :func:`~graphmtl.affinity.surrogate.validation_rows`).
        row_chunk: training rows per block when the per-task Gram matrices are accumulated
            (bounds memory: ``row_chunk × input_dim²`` floats).
    """

    hops: int = 2
    input_dim: int | None = 64
    rank: int = 1
    ridge: float = 1.0
    val_rows: int | None = 100_000
    row_chunk: int = 4096

    def __post_init__(self) -> None:
        for name in ("hops", "rank", "row_chunk"):
            check(getattr(self, name) >= 1,
                  f"subspace {name}: must be >= 1, got {getattr(self, name)}")
        check(self.input_dim is None or self.input_dim >= 1,
              f"subspace input_dim: must be >= 1 or None, got {self.input_dim}")
        check(self.ridge > 0, f"subspace ridge: must be > 0, got {self.ridge}")
        check(self.val_rows is None or self.val_rows >= 1,
              f"subspace val_rows: must be >= 1 or None, got {self.val_rows}")

    def to_dict(self) -> dict:
        return asdict(self)


def ridge_coefficients(X: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, ridge: float,
                       row_chunk: int = 4096) -> torch.Tensor:
    """Per-task ridge regression of the 0/1 labels on ``X``, each task on its own rows.

    Args:
        X: features ``[N, D]``.
        y: labels ``[N, n]`` (bool or 0/1).
        mask: bool ``[N, n]``, the rows each task is fitted on.
        ridge: L2 strength relative to the task's row count.
        row_chunk: rows per block of the Gram accumulation.

    Returns:
        Coefficients ``[D, n]`` (float32) of the centred fits (intercepts are not returned: the
        scores they feed are rank-based). A task without rows, or whose labels are all equal on
        its rows, gets zero coefficients.
    """
    N, D = X.shape
    # Tasks with identical training rows share one Gram matrix (often all of them do).
    masks, task_mask = torch.unique(mask.T, dim=0, return_inverse=True)        # [u, N], [n]
    Xd = X.double()
    gram = torch.zeros(len(masks), D, D, dtype=torch.float64)
    for lo in range(0, N, row_chunk):
        xb = Xd[lo:lo + row_chunk]
        outer = (xb[:, :, None] * xb[:, None, :]).reshape(len(xb), D * D)
        gram += (masks[:, lo:lo + row_chunk].double() @ outer).reshape(-1, D, D)
    m = mask.double()
    count = m.sum(0)                                                             # [n]
    safe = count.clamp_min(1.0)
    x_mean = (m.T @ Xd) / safe[:, None]                                          # [n, D]
    y_mean = (m * y.double()).sum(0) / safe
    target = (y.double() - y_mean) * m                                           # centred, masked
    rhs = target.T @ Xd                                                          # [n, D]
    # Centred Gram of each task's rows: G - n_i x̄ x̄ᵀ, plus the ridge.
    A = (gram[task_mask] - count[:, None, None] * x_mean[:, :, None] * x_mean[:, None, :]
         + ridge * safe[:, None, None] * torch.eye(D, dtype=torch.float64))
    coef = torch.linalg.solve(A, rhs[:, :, None])[:, :, 0]                       # [n, D]
    coef[count == 0] = 0.0
    return coef.T.float().contiguous()


class SubspaceAffinityEstimator:
    """Higher-order task affinity from closed-form reduced-rank models (scikit-learn style).

    Args:
        num_subsets: ``m`` subsets to sample.
        subset_size: ``s`` tasks per subset (capped at ``n``).
        standardize: z-score each task's scores across its subsets before averaging.
        correlation: average the subsets' affinity with the fitted scores' correlation (each
            z-scored); ``False``: the subsets' affinity alone.
        seed: seed of the subsets, the PCA and the validation-row sample.
        config: the linear models (:class:`SubspaceConfig`).

    Attributes (after ``fit``): ``subsets_`` bool ``[m, n]``; ``scores_`` ``[m, n]`` validation
    AP of each task under its subset's shared-subspace model (NaN outside the subset or without
    validation positives); ``coef_`` ``[D, n]`` the per-task ridge coefficients;
    ``correlation_`` ``[n, n]`` the correlation of the tasks' fitted scores;
    ``affinity_directed_`` ``[n, n]`` the subsets' higher-order affinity and
    ``affinity_subsets_`` its symmetric part; ``affinity_`` ``[n, n]`` the result (symmetric,
    zero diagonal); ``coverage_`` (dict); ``timings_`` (seconds by phase); ``task_names_``.
    """

    def __init__(self, num_subsets: int = 1000, subset_size: int = 5, *,
                 standardize: bool = True, correlation: bool = True, seed: int = 0,
                 config: SubspaceConfig | None = None):
        check(num_subsets >= 1, f"subspace num_subsets: must be >= 1, got {num_subsets}")
        check(subset_size >= 2, f"subspace subset_size: must be >= 2, got {subset_size}")
        self.num_subsets = num_subsets
        self.subset_size = subset_size
        self.standardize = standardize
        self.correlation = correlation
        self.seed = seed
        self.config = config or SubspaceConfig()

    def fit(self, graph, subsets=None) -> "SubspaceAffinityEstimator":
        """Estimate from ``graph`` (a :class:`~graphmtl.data.MultiTaskGraph`); ``subsets``:
        optional bool ``[m, n]`` or lists of task names / positions (equal sizes not needed)."""
        cfg = self.config
        timings: dict[str, float] = {}
        n = graph.num_tasks
        check(n >= 2, f"subspace affinity: needs at least 2 tasks, got {n}")
        t0 = time.perf_counter()
        M = (sample_subsets(n, self.num_subsets, min(self.subset_size, n), seed=self.seed)
             if subsets is None else as_membership(subsets, graph.task_names))
        X = surrogate_inputs(graph, cfg.hops, cfg.input_dim, self.seed)
        timings["features_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        train_rows = graph.train_mask.any(1).nonzero().flatten()
        val_rows = validation_rows(graph, cfg.val_rows, self.seed)
        check(len(train_rows) > 0 and len(val_rows) > 0,
              "subspace affinity: the graph has no training or no validation labels")
        Xt = X[train_rows]
        coef = ridge_coefficients(Xt, graph.y[train_rows], graph.train_mask[train_rows],
                                  cfg.ridge, cfg.row_chunk)                       # [D, n]
        Xt = Xt - Xt.mean(0)
        fitted = Xt @ coef                                                         # [Nt, n]
        cov = fitted.T @ fitted / len(Xt)                                          # Bᵀ Σ B
        scale = cov.diagonal().sqrt()
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        corr = cov / scale[:, None] / scale[None, :]
        timings["fit_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        pred = (X[val_rows] @ coef) / scale                                        # [Rv, n]
        scores = self._score(M, corr, pred, graph.y[val_rows], graph.val_mask[val_rows])
        timings["score_s"] = time.perf_counter() - t0

        scored = M & np.isfinite(scores)
        self.subsets_ = M
        self.scores_ = scores
        self.coef_ = coef.numpy()
        self.correlation_ = corr.numpy()
        self.affinity_directed_ = higher_order_affinity(
            scored, np.where(scored, scores, np.nan), standardize=self.standardize)
        self.affinity_subsets_ = symmetrize(self.affinity_directed_)
        pairwise = self.correlation_ * (1 - np.eye(n))
        self.affinity_ = (combine_affinities(self.affinity_subsets_, pairwise)
                          if self.correlation else self.affinity_subsets_)
        self.coverage_ = coverage_report(M).to_dict()
        self.timings_ = {**timings, "total_s": sum(timings.values())}
        self.task_names_ = list(graph.task_names)
        return self

    def _score(self, M: np.ndarray, corr: torch.Tensor, pred: torch.Tensor, y: torch.Tensor,
               val_mask: torch.Tensor) -> np.ndarray:
        """``[m, n]`` validation AP of every subset task's reduced-rank prediction.

        ``corr`` ``[n, n]``: the tasks' fitted-score correlation; ``pred`` ``[Rv, n]``: each
        task's own (scaled) ridge prediction on the validation rows; ``y`` / ``val_mask``
        ``[Rv, n]``."""
        m, n = M.shape
        # Task index per slot; smaller subsets pad with slots that carry no correlation.
        idx, valid = padded_members(M)
        s = idx.shape[1]
        idx_t, valid_t = torch.from_numpy(idx), torch.from_numpy(valid)
        pair = (valid_t[:, :, None] & valid_t[:, None, :]).to(corr.dtype)
        C = corr[idx_t[:, :, None], idx_t[:, None, :]] * pair                      # [m, s, s]
        _, vecs = torch.linalg.eigh(C.double())                                    # ascending
        V = vecs[:, :, -min(self.config.rank, s):].float()                         # [m, s, r]
        P = V @ V.transpose(1, 2)                                                  # [m, s, s]
        # A column (subset k, slot j) is scored on its task's own validation rows only: each
        # task's rows are gathered into a padded [n, R] table (R the most rows of one task) and
        # the columns are scored in a few large batches on those, not on the union of every
        # task's rows, which is several times larger where tasks are labelled on different
        # nodes (sorting it dominated the estimate: 12x slower on the planted presets).
        counts = val_mask.sum(0)                                                   # [n]
        R = max(int(counts.max()), 1)
        task_rows = torch.argsort((~val_mask).T.to(torch.int8), dim=1, stable=True)[:, :R]
        row_ok = torch.arange(R)[None, :] < counts[:, None]                        # [n, R]
        sub, slot = np.nonzero(valid)
        task = torch.from_numpy(idx[sub, slot])
        sub_t, slot_t = torch.from_numpy(sub), torch.from_numpy(slot)
        scores = np.full(len(sub), np.nan)
        block = max(1, EVAL_ENTRIES // (R * s))
        for lo in range(0, len(sub), block):
            k, j, t = sub_t[lo:lo + block], slot_t[lo:lo + block], task[lo:lo + block]
            rows = task_rows[t]                                                    # [b, R]
            # u[c, r] = sum over slots t' of pred[rows[c, r], idx[k_c, t']] P[k_c, t', j_c]
            u = torch.einsum("crt,ct->cr", pred[rows[:, :, None], idx_t[k][:, None, :]],
                             P[k, :, j])
            scores[lo:lo + block] = average_precision_columns(
                u.T, y[rows, t[:, None]].T, row_ok[t].T).numpy()
        ap = np.full((m, s), np.nan)
        ap[sub, slot] = scores
        return scatter_members(ap, idx, valid, n)
