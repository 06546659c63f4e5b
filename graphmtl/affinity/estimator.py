"""Grad-TAG: estimate ``f_i(S)`` for thousands of task subsets without training.

``GradTAGEstimator(...).fit(store)`` samples subsets, solves all their logistic regressions on
the projected gradients at once (:class:`~graphmtl.affinity.solver.BatchedSubsetSolver`), scores
every task of every subset, and builds the affinity matrix. Two forms (``mode``):

- ``offset``: the linearisation taken literally: each subset fits the residual over the base
  logits ``f0`` (``BCE(f0 + <z, w>, y)``, ridge ``lam``) and every task is scored by its
  linearised validation loss ``f0 + <z, ŵ>`` on the store's validation rows;
- ``reference``: the form of the method's reference code: each subset fits the 0/1 labels from
  the projected gradients alone (no offset, with an intercept, scikit-learn's ``C`` scale of L2),
  the solution is applied to the base model's *encoder* (``θ0 + P ŵ``; the store must project
  the encoder's parameters only, ``ProjectionConfig(params="encoder")``) and every task is scored
  by the real network at that point on all its validation nodes — for all subsets at once
  (``torch.func.functional_call`` under ``vmap`` over the stacked encoder updates).
``GradTAGEnsemble`` does the same over several stores (base seeds / projections) and reports the
spread.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from typing import Sequence

import numpy as np
import torch

from graphmtl.affinity.matrices import (higher_order_affinity, pairwise_affinity,
                                        symmetrize)
from graphmtl.affinity.rows import SplitRows
from graphmtl.affinity.scoring import score_subsets, score_subsets_network
from graphmtl.affinity.solver import BatchedSubsetSolver, SolverConfig
from graphmtl.affinity.subsets import (as_membership, coverage_report, pair_subsets,
                                       sample_subsets)
from graphmtl.errors import GraphMTLError, check
from graphmtl.projection.store import ProjectionStore

#: Forms of the estimate (see the module docstring).
MODES = ("offset", "reference")


def _names(names: Sequence[str], idx, k: int = 5) -> str:
    idx = list(idx)
    head = ", ".join(repr(names[i]) for i in idx[:k])
    return head + (f" and {len(idx) - k} more" if len(idx) > k else "")


def _open_store(store) -> ProjectionStore:
    if isinstance(store, ProjectionStore):
        return store
    check(isinstance(store, (str, os.PathLike)),
          f"store: expected a ProjectionStore or a path, got {type(store).__name__}")
    return ProjectionStore(store)


def check_store_rows(train: SplitRows, val: SplitRows) -> None:
    """Warn (naming the tasks) about tasks the estimate cannot say much about."""
    names = train.task_names
    check(val.task_names == names, "store: train and val splits name different tasks")
    check(val.dim == train.dim, "store: train and val splits have different dimensions")
    no_train = np.flatnonzero(train.counts == 0)
    if no_train.size:
        warnings.warn(f"{no_train.size} task(s) have no train rows in the store "
                      f"({_names(names, no_train)}); their subsets are fit on the other tasks",
                      RuntimeWarning, stacklevel=3)
    no_pos = np.flatnonzero((train.positives() <= 0).numpy() & (train.counts > 0))
    if no_pos.size:
        warnings.warn(f"{no_pos.size} task(s) have no positive train rows in the store "
                      f"({_names(names, no_pos)}); their fits only push logits down",
                      RuntimeWarning, stacklevel=3)
    no_val = np.flatnonzero(val.counts == 0)
    if no_val.size:
        warnings.warn(f"{no_val.size} task(s) have no validation rows in the store "
                      f"({_names(names, no_val)}); their scores are NaN", RuntimeWarning,
                      stacklevel=3)
    no_val_pos = np.flatnonzero((val.positives() <= 0).numpy() & (val.counts > 0))
    if no_val_pos.size:
        warnings.warn(f"{no_val_pos.size} task(s) have no positive validation rows "
                      f"({_names(names, no_val_pos)}); their F1 is undefined (NaN)",
                      RuntimeWarning, stacklevel=3)


class GradTAGEstimator:
    """Estimated task affinities from one projected-gradient store (scikit-learn style).

    Args:
        num_subsets: ``m`` subsets to sample (ignored in pairwise mode or when ``fit`` is given
            subsets).
        subset_size: ``s``, or an inclusive ``(min, max)`` range.
        pairwise: score all pairs ``{i, j}`` and singletons instead; the affinity is then
            ``f_i({i, j}) − f_i({i})``.
        num_pairs: pairwise mode: a seeded sample of this many pairs (``None``: all pairs).
        lam, lam_relative, tol, max_newton, workers: the solver's settings
            (:class:`~graphmtl.affinity.solver.SolverConfig`; λ's scaling is documented there).
        standardize: z-score each task's scores across its subsets before averaging
            (higher-order mode).
        balance: balance pair co-occurrence when sampling (:func:`sample_subsets`).
        seed: seed of the subset sample.
        mode: ``offset`` (each subset fits the residual over the base model's logits) or
            ``reference`` (the authors' form: no offset, an intercept, L2 set by ``C``, the
            encoder alone updated, subsets scored by the real network at θ0 + Pŵ on the
            validation rows; ``fit`` then needs the checkpoint and the graph).
        C: inverse L2 strength of the reference form (scikit-learn's ``C``).
        score: what the reference form scores a task by: validation ``ap`` or ``bce``.
        device: where the solves and the network scoring run (``cpu``, ``cuda``, ``auto``).

    Attributes (after ``fit``):
        task_names_: the store's ``n`` task names.
        subsets_: bool ``[m, n]`` membership.
        scores_: ``[m, n]`` ``f̂_i(S_k)`` = − linearised validation loss (NaN where ``i ∉ S_k``).
        f1_: ``[m, n]`` linearised validation F1 (NaN where ``i ∉ S_k``).
        weights_: float64 ``[m, d]`` the subset solutions ŵ_k.
        affinity_directed_: ``[n, n]`` directed matrix (see :mod:`graphmtl.affinity.matrices`).
        affinity_: ``[n, n]`` symmetric, zero diagonal: what clustering consumes.
        converged_: bool ``[m]``; lam_: the λ used; coverage_: co-occurrence report (dict).
        solver_: the solver's summary (iterations, FLOPs); timings_: seconds by phase.
    """

    def __init__(self, num_subsets: int = 2000, subset_size: int | tuple[int, int] = 10,
                 pairwise: bool = False, num_pairs: int | None = None, lam: float = 1.0,
                 lam_relative: bool = True, standardize: bool = True, balance: bool = False,
                 seed: int = 0, tol: float = 1e-8, max_newton: int = 30,
                 workers: int | None = None, mode: str = "offset", C: float = 1e-2,
                 score: str = "ap", device: str = "cpu"):
        check(mode in MODES, f"Grad-TAG mode: expected one of {', '.join(MODES)}, got {mode!r}")
        check(C > 0, f"Grad-TAG C: must be > 0, got {C}")
        check(score in ("ap", "bce"), f"Grad-TAG score: expected ap or bce, got {score!r}")
        self.mode = mode
        self.device = device
        self.C = C
        self.score = score
        self.num_subsets = num_subsets
        self.subset_size = subset_size
        self.pairwise = pairwise
        self.num_pairs = num_pairs
        self.lam = lam
        self.lam_relative = lam_relative
        self.standardize = standardize
        self.balance = balance
        self.seed = seed
        self.tol = tol
        self.max_newton = max_newton
        self.workers = workers

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in (
            "num_subsets", "subset_size", "pairwise", "num_pairs", "lam", "lam_relative",
            "standardize", "balance", "seed", "tol", "max_newton", "workers", "mode", "C",
            "score", "device")}

    def solver_config(self) -> SolverConfig:
        return SolverConfig(lam=self.lam, lam_relative=self.lam_relative, tol=self.tol,
                            max_newton=self.max_newton, workers=self.workers,
                            device=self.device)

    def make_subsets(self, n: int) -> np.ndarray:
        """The membership matrix ``fit`` uses for ``n`` tasks when not given subsets."""
        if self.pairwise:
            return pair_subsets(n, self.num_pairs, seed=self.seed, singletons=True)
        return sample_subsets(n, self.num_subsets, self.subset_size, seed=self.seed,
                              balance=self.balance)

    def fit(self, store, subsets=None, *, checkpoint=None, graph=None) -> "GradTAGEstimator":
        """Estimate from ``store`` (a :class:`ProjectionStore` or its path).

        ``subsets``: optional bool ``[m, n]`` matrix or list of task-name / position lists
        (unknown tasks are an error naming them); default: sampled per the parameters.
        ``checkpoint`` (the base model the store was projected from) and ``graph`` (the data):
        needed by ``mode="reference"``, which scores with the real network; ignored otherwise.
        """
        timings: dict[str, float] = {}
        config = self.solver_config()
        t0 = time.perf_counter()
        store = _open_store(store)
        train = SplitRows.from_store(store, "train")
        val = SplitRows.from_store(store, "val")
        timings["load_s"] = time.perf_counter() - t0
        if self.mode == "reference":
            check(checkpoint is not None and graph is not None,
                  "Grad-TAG mode reference: needs the base checkpoint and the graph (it scores "
                  "every subset with the real network)")
            params = store.manifest.get("config", {}).get("params", "all")
            check(params == "encoder", f"{store.path}: Grad-TAG mode reference updates the "
                  f"encoder only, but the store projects {params!r} parameters (project with "
                  "params='encoder')")
            self._fit_reference(store, train, val, subsets, checkpoint, graph, timings)
        else:
            self.fit_rows(train, val, subsets, _config=config, _timings=timings)
        self.store_path_ = str(store.path)
        return self

    def _fit_reference(self, store, train: SplitRows, val: SplitRows, subsets, checkpoint,
                       graph, timings: dict[str, float]) -> None:
        """The reference form: no offset, an intercept, L2 on scikit-learn's ``C`` scale, the
        encoder moved to ``θ0 + P ŵ`` and scored by the real network."""
        from graphmtl.training import load_checkpoint

        check_store_rows(train, val)
        names = train.task_names
        t0 = time.perf_counter()
        M = self.make_subsets(len(names)) if subsets is None else as_membership(subsets, names)
        timings["sample_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # The intercept is a constant column; its scale c makes its L2 penalty negligible
        # (penalty (λ/2)(b/c)² on the intercept b), as an unpenalised intercept would be.
        z = train.z.double()
        c = 10.0 * float(z.abs().max()) if z.numel() else 1.0
        rows = SplitRows.from_arrays(
            torch.cat([z, torch.full((z.shape[0], 1), c, dtype=z.dtype)], 1).numpy(),
            np.zeros(z.shape[0]), train.y.numpy(), train.weight.numpy(), train.ptr, names)
        # scikit-learn minimises ½‖w‖² + C Σ_r ω_r BCE_r; the solver's mean form has
        # (λ/2)‖w‖² with the data term divided by the subset's row weight W_k, i.e.
        # λ = 1 / (C W_k). One λ for all subsets: that of the mean subset weight.
        w_task = rows.weight_sums().numpy()
        mean_w = float((M.astype(np.float64) @ w_task).mean())
        lam = 1.0 / (self.C * max(mean_w, 1e-12))
        fit = BatchedSubsetSolver(SolverConfig(lam=lam, lam_relative=False, tol=self.tol,
                                               max_newton=self.max_newton, workers=self.workers,
                                               device=self.device)).fit(rows, M, names)
        timings["solve_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ckpt = load_checkpoint(checkpoint)
        check(list(ckpt.task_names) == list(names),
              f"{checkpoint}: its tasks differ from the store's (store/model mismatch)")
        from graphmtl.projection import GradientProjector, ProjectionConfig

        dirs = GradientProjector(ProjectionConfig(**{
            k: v for k, v in store.manifest["config"].items()
            if k in ProjectionConfig.__dataclass_fields__})).directions(ckpt.model)
        sub = graph if list(graph.task_names) == list(names) else graph.select_tasks(names)
        ap, bce = score_subsets_network(ckpt.model, dirs, sub, M, fit.weights[:, :-1].cpu(),
                                        device=self.device)
        timings["score_s"] = time.perf_counter() - t0
        self._finish(names, M, -bce if self.score == "bce" else ap, np.full(M.shape, np.nan),
                     fit, timings)
        self.lam_ = lam

    def fit_rows(self, train: SplitRows, val: SplitRows, subsets=None, *,
                 _config: SolverConfig | None = None, _timings: dict | None = None
                 ) -> "GradTAGEstimator":
        """Like :meth:`fit`, from rows already in memory (tests, ensembles)."""
        timings = _timings if _timings is not None else {}
        config = _config or self.solver_config()
        check_store_rows(train, val)
        names = train.task_names
        n = len(names)
        t0 = time.perf_counter()
        if subsets is None:
            M = self.make_subsets(n)
        else:
            M = as_membership(subsets, names)
        timings["sample_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        fit = BatchedSubsetSolver(config).fit(train, M, names)
        timings["solve_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        loss, f1 = score_subsets(val, M, fit.weights, config.workers)
        timings["score_s"] = time.perf_counter() - t0

        self._finish(names, M, -loss, f1, fit, timings)
        return self

    def _finish(self, names, M: np.ndarray, scores: np.ndarray, f1: np.ndarray, fit,
                timings: dict[str, float]) -> None:
        """Affinity matrices and fitted attributes from the scores ``[m, n]``."""
        n = len(names)
        t0 = time.perf_counter()
        scored = M & np.isfinite(scores)
        # Tasks without validation rows carry no score: drop them from the averages.
        F = np.where(scored, scores, np.nan)
        if self.pairwise:
            has_single = (M.sum(1) == 1)
            relative = bool(np.isfinite(np.where(M[has_single], F[has_single], np.nan)
                                        ).any(0).all())
            directed = pairwise_affinity(scored, np.where(scored, F, np.nan), relative=relative)
        else:
            directed = higher_order_affinity(scored, np.where(scored, F, np.nan),
                                             standardize=self.standardize)
        timings["affinity_s"] = time.perf_counter() - t0
        unobserved = int(np.isnan(directed[~np.eye(n, dtype=bool)]).sum()) // 2
        if unobserved and not self.pairwise:
            warnings.warn(f"{unobserved} task pair(s) never share a scored subset; their affinity "
                          f"is the neutral value (sample more subsets, or balance=True)",
                          RuntimeWarning, stacklevel=3)

        self.task_names_ = list(names)
        self.subsets_ = M
        self.scores_ = scores
        self.f1_ = f1
        self.weights_ = fit.weights.numpy()
        self.affinity_directed_ = directed
        self.affinity_ = symmetrize(directed)
        self.converged_ = fit.converged.numpy()
        self.lam_ = fit.lam
        self.coverage_ = coverage_report(M).to_dict()
        self.solver_ = fit.summary()
        self.timings_ = timings
        self.timings_["total_s"] = float(sum(v for k, v in timings.items() if k != "total_s"))

    def summary(self) -> dict:
        """JSON-ready description of the fit (parameters, coverage, solver, timings)."""
        check(hasattr(self, "affinity_"), "GradTAGEstimator: call fit() first")
        return {"params": self.get_params(), "num_tasks": len(self.task_names_),
                "num_subsets": int(self.subsets_.shape[0]), "lam_used": self.lam_,
                "coverage": self.coverage_, "solver": self.solver_, "timings": self.timings_,
                "mean_score": float(np.nanmean(self.scores_)),
                "mean_f1": float(np.nanmean(self.f1_)) if np.isfinite(self.f1_).any() else None}


class GradTAGEnsemble:
    """Grad-TAG over several stores (base seeds / projections) of the same tasks, averaged.

    Every member uses the same subsets (sampled once). Attributes after ``fit``: ``members_``,
    ``subsets_``, ``scores_`` / ``scores_std_`` ``[m, n]``, ``affinity_`` / ``affinity_std_``
    ``[n, n]`` (mean and standard deviation over members), and ``spread_``: the mean
    off-diagonal standard deviation divided by the mean off-diagonal ``|affinity_|``.
    """

    def __init__(self, estimator: GradTAGEstimator | None = None):
        self.estimator = estimator or GradTAGEstimator()

    def fit(self, stores: Sequence, subsets=None) -> "GradTAGEnsemble":
        check(len(stores) >= 1, "ensemble: no stores given")
        opened = [_open_store(s) for s in stores]
        names = opened[0].task_names
        for st in opened[1:]:
            if st.task_names != names:
                diff = sorted(set(st.task_names) ^ set(names))
                raise GraphMTLError(f"{st.path}: its tasks differ from {opened[0].path}'s"
                                    + (f" (e.g. {diff[0]!r})" if diff else " (order)"))
        M = (self.estimator.make_subsets(len(names)) if subsets is None
             else as_membership(subsets, names))
        self.members_ = [copy.deepcopy(self.estimator).fit(st, subsets=M) for st in opened]
        self.subsets_ = M
        S = np.stack([e.scores_ for e in self.members_])
        A = np.stack([e.affinity_ for e in self.members_])
        self.scores_ = S.mean(0)
        self.affinity_ = A.mean(0)
        ddof = 1 if len(self.members_) > 1 else 0
        self.scores_std_ = S.std(0, ddof=ddof)
        self.affinity_std_ = A.std(0, ddof=ddof)
        off = ~np.eye(len(names), dtype=bool)
        scale = float(np.abs(self.affinity_[off]).mean()) if off.any() else 0.0
        self.spread_ = float(self.affinity_std_[off].mean() / scale) if scale > 0 else 0.0
        self.task_names_ = list(names)
        return self
