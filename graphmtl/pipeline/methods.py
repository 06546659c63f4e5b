"""The affinity methods ``graphmtl run`` can use, one entry each.

Each :class:`AffinityMethod` says what it needs (the graph only, the base model, or the projected
gradient store) and how it turns that into an ``[n, n]`` affinity; the pipeline runs the base and
projection stages only for the methods that need them. The estimators themselves live in
:mod:`graphmtl.affinity`; this table only wires :class:`~graphmtl.pipeline.AffinityConfig` into
them, so every method's defaults are its estimator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from graphmtl.data import MultiTaskGraph
from graphmtl.pipeline.config import AffinityConfig, PipelineConfig


@dataclass
class MethodInputs:
    """What an affinity method may read: the graph, and the base model's checkpoint and the
    projection store when the method needs them (``None`` otherwise)."""

    graph: MultiTaskGraph
    config: PipelineConfig
    base_checkpoint: Path | None = None
    store: Path | None = None


@dataclass
class AffinityEstimate:
    """An affinity ``[n, n]`` (symmetric, zero diagonal) with what produced it.

    Attributes:
        affinity: the clustering input.
        arrays: extra arrays saved next to it (e.g. ``subsets`` ``[m, n]``, ``scores``).
        info: JSON-ready details (subsets, timings, ...).
    """

    affinity: np.ndarray
    arrays: dict[str, np.ndarray]
    info: dict[str, Any]


@dataclass(frozen=True)
class AffinityMethod:
    """One way of estimating the affinity.

    Attributes:
        name: the ``AffinityConfig.method`` value.
        label: how reports name it.
        needs: ``"base"`` and / or ``"store"``: the stages it reads.
        estimate: ``(inputs, config, work_dir) -> AffinityEstimate``.
    """

    name: str
    label: str
    needs: tuple[str, ...]
    estimate: Callable[[MethodInputs, AffinityConfig, Path], AffinityEstimate]


def subset_args(estimator: type, cfg: AffinityConfig, n: int) -> dict[str, Any]:
    """``num_subsets`` / ``subset_size`` for ``estimator``: as given in ``cfg``, else the
    estimator's own defaults; the size capped at ``n - 1`` so that subsets differ."""
    import inspect

    defaults = inspect.signature(estimator).parameters
    m = cfg.num_subsets if cfg.num_subsets is not None else defaults["num_subsets"].default
    s = cfg.subset_size if cfg.subset_size is not None else defaults["subset_size"].default
    return {"num_subsets": int(m), "subset_size": max(2, min(int(s), n - 1)) if n > 2 else 2}


def _surrogate(inp: MethodInputs, cfg: AffinityConfig, work: Path) -> AffinityEstimate:
    from graphmtl.affinity import SurrogateAffinityEstimator

    est = SurrogateAffinityEstimator(
        **subset_args(SurrogateAffinityEstimator, cfg, inp.graph.num_tasks),
        standardize=cfg.standardize, seed=cfg.seed,
        device=inp.config.train.device).fit(inp.graph)
    return AffinityEstimate(est.affinity_, {"subsets": est.subsets_, "scores": est.scores_},
                            {"subsets": int(est.subsets_.shape[0]),
                             "subset_size": int(est.subsets_.sum(1).max()),
                             "coverage": est.coverage_, "timings": est.timings_,
                             "surrogate": est.config.to_dict()})


def _subspace(inp: MethodInputs, cfg: AffinityConfig, work: Path) -> AffinityEstimate:
    from graphmtl.affinity import SubspaceAffinityEstimator

    est = SubspaceAffinityEstimator(
        **subset_args(SubspaceAffinityEstimator, cfg, inp.graph.num_tasks),
        standardize=cfg.standardize, seed=cfg.seed).fit(inp.graph)
    return AffinityEstimate(est.affinity_, {"subsets": est.subsets_, "scores": est.scores_,
                                            "affinity_subsets": est.affinity_subsets_,
                                            "correlation": est.correlation_},
                            {"subsets": int(est.subsets_.shape[0]),
                             "subset_size": int(est.subsets_.sum(1).max()),
                             "coverage": est.coverage_, "timings": est.timings_,
                             "subspace": est.config.to_dict()})


def _combined(inp: MethodInputs, cfg: AffinityConfig, work: Path) -> AffinityEstimate:
    """The surrogate affinity and the base model's head cosine, each z-scored, averaged."""
    from graphmtl.affinity import combine_affinities

    sur = _surrogate(inp, cfg, work)
    head = _head_cosine(inp, cfg, work)
    return AffinityEstimate(combine_affinities(sur.affinity, head.affinity),
                            {**sur.arrays, "surrogate": sur.affinity, "head_cosine": head.affinity},
                            sur.info)


def _gradtag(inp: MethodInputs, cfg: AffinityConfig, work: Path) -> AffinityEstimate:
    from graphmtl.affinity import GradTAGEstimator
    from graphmtl.projection import ProjectionStore

    est = GradTAGEstimator(**subset_args(GradTAGEstimator, cfg, inp.graph.num_tasks),
                           mode=cfg.mode, lam=cfg.lam, standardize=cfg.standardize,
                           seed=cfg.seed, device=inp.config.train.device)
    est.fit(ProjectionStore(inp.store), checkpoint=inp.base_checkpoint, graph=inp.graph)
    return AffinityEstimate(est.affinity_, {"subsets": est.subsets_, "scores": est.scores_},
                            {"subsets": int(est.subsets_.shape[0]),
                             "subset_size": int(est.subsets_.sum(1).max()), "mode": cfg.mode,
                             "coverage": est.coverage_, "timings": est.timings_,
                             "converged": int(np.sum(est.converged_))})


def _trained(inp: MethodInputs, cfg: AffinityConfig, work: Path) -> AffinityEstimate:
    from graphmtl.affinity import TrainedAffinityEstimator

    pc = inp.config
    est = TrainedAffinityEstimator(
        **subset_args(TrainedAffinityEstimator, cfg, inp.graph.num_tasks),
        standardize=cfg.standardize, seed=cfg.seed, model_config=pc.model,
        train_config=pc.train, workers=pc.compare.workers).fit(
            inp.graph, results=work / "subset_models.jsonl")
    return AffinityEstimate(est.affinity_, {"subsets": est.subsets_, "scores": est.scores_["ap"]},
                            {"subsets": int(est.subsets_.shape[0]),
                             "subset_size": int(est.subsets_.sum(1).max()),
                             "model_seconds": float(est.seconds_.sum())})


def _head_cosine(inp: MethodInputs, cfg: AffinityConfig, work: Path) -> AffinityEstimate:
    from graphmtl.affinity import head_cosine_affinity
    from graphmtl.training import load_checkpoint

    return AffinityEstimate(head_cosine_affinity(load_checkpoint(inp.base_checkpoint).model),
                            {}, {})


def _label_cooccurrence(inp: MethodInputs, cfg: AffinityConfig, work: Path
                        ) -> AffinityEstimate:
    from graphmtl.affinity import label_cooccurrence_affinity

    return AffinityEstimate(label_cooccurrence_affinity(inp.graph), {}, {})


def _gradient_cosine(inp: MethodInputs, cfg: AffinityConfig, work: Path) -> AffinityEstimate:
    from graphmtl.affinity import gradient_cosine
    from graphmtl.projection import ProjectionStore

    return AffinityEstimate(gradient_cosine(ProjectionStore(inp.store)), {}, {})


METHODS: dict[str, AffinityMethod] = {m.name: m for m in (
    AffinityMethod("surrogate", "Grad-TAG surrogate", (), _surrogate),
    AffinityMethod("combined", "surrogate + head cosine", ("base",), _combined),
    AffinityMethod("subspace", "shared subspace", (), _subspace),
    AffinityMethod("gradtag", "Grad-TAG gradient", ("base", "store"), _gradtag),
    AffinityMethod("trained", "trained affinity", (), _trained),
    AffinityMethod("head_cosine", "head cosine", ("base",), _head_cosine),
    AffinityMethod("label_cooccurrence", "label co-occurrence", (), _label_cooccurrence),
    AffinityMethod("gradient_cosine", "gradient cosine", ("base", "store"), _gradient_cosine),
)}


def method_label(cfg: AffinityConfig) -> str:
    """The report name of ``cfg``'s method, e.g. ``Grad-TAG gradient (offset)``."""
    label = METHODS[cfg.method].label
    return f"{label} ({cfg.mode})" if cfg.method == "gradtag" else label
