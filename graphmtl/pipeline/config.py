"""Typed configuration of an end-to-end ``graphmtl run``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from graphmtl.clustering.estimator import SOLVERS
from graphmtl.errors import check
from graphmtl.models import ModelConfig
from graphmtl.projection import ProjectionConfig
from graphmtl.training import TrainConfig
from graphmtl.utils.config import config_from_dict, replace_checked


@dataclass(frozen=True)
class AffinityConfig:
    """Settings of the Grad-TAG estimate (see :class:`~graphmtl.affinity.GradTAGEstimator`).

    Args:
        num_subsets: ``m`` sampled task subsets.
        subset_size: ``s`` tasks per subset (capped at ``n - 1`` for small ``n``).
        lam: ridge strength, relative to the subset's row weight (the estimator's
            ``lam_relative`` convention).
        standardize: z-score each task's scores across subsets before averaging.
        seed: seed of the subset sample.
    """

    num_subsets: int = 1000
    subset_size: int = 5
    lam: float = 1.0
    standardize: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.num_subsets >= 1, f"affinity num_subsets: must be >= 1, got {self.num_subsets}")
        check(self.subset_size >= 2, f"affinity subset_size: must be >= 2, got {self.subset_size}")
        check(self.lam > 0, f"affinity lam: must be > 0, got {self.lam}")

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "affinity config") -> "AffinityConfig":
        return config_from_dict(cls, d, name)


@dataclass(frozen=True)
class CompareConfig:
    """Which baselines the run compares Grad-TAG groups with (all through the same trainer).

    Args:
        pairwise: naive pairwise affinity: train a model on each pair ``{i, j}`` and on each
            single task, ``T_ij = f_i({i, j}) - f_i({i})``, then cluster like Grad-TAG.
        pairwise_pairs: train a seeded sample of this many pairs (``None``: all
            ``n (n - 1) / 2``); the cost of all pairs is then extrapolated and reported.
        random_groups: random groups with the Grad-TAG group sizes.
        single_task: one model per task.
        workers: processes for the pair trainings.
    """

    pairwise: bool = True
    pairwise_pairs: int | None = None
    random_groups: bool = True
    single_task: bool = False
    workers: int = 2

    def __post_init__(self) -> None:
        check(self.pairwise_pairs is None or self.pairwise_pairs >= 1,
              f"compare pairwise_pairs: must be >= 1, got {self.pairwise_pairs}")
        check(self.workers >= 1, f"compare workers: must be >= 1, got {self.workers}")

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "compare config") -> "CompareConfig":
        return config_from_dict(cls, d, name)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything ``graphmtl run`` does, in one typed object.

    Args:
        data: a dataset spec (see :func:`graphmtl.data.load_dataset`), e.g. ``synthetic`` or
            ``snap:youtube,k=100``.
        data_root: where bare dataset names are looked up (``None``: the default search).
        model: architecture of every model (base, group models, baselines).
        train: optimisation of every model.
        projection: the gradient projection (dimension, budgets, ...).
        affinity: the Grad-TAG estimate.
        k: number of task groups ``k``, or ``"auto"``.
        cluster_solver: ``auto`` / ``exact`` / ``lowrank``.
        compare: the baselines.
        seed: recorded in the manifest; the per-stage seeds live in the stage configs.
    """

    data: str = "synthetic"
    data_root: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    # One torch thread per model: the models are small, the pair trainings already run in two
    # processes, and intra-op threads on a busy 2-core machine slow training down many-fold.
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=40, patience=10, num_threads=1))
    projection: ProjectionConfig = field(
        default_factory=lambda: ProjectionConfig(dim=100, train_budget=2000, val_budget=1000))
    affinity: AffinityConfig = field(default_factory=AffinityConfig)
    k: int | str = "auto"
    cluster_solver: str = "auto"
    compare: CompareConfig = field(default_factory=CompareConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        k = self.k
        check(k == "auto" or (isinstance(k, int) and not isinstance(k, bool) and k >= 1),
              f"k (--k): expected a positive integer or 'auto', got {k!r}")
        check(self.cluster_solver in SOLVERS,
              f"cluster_solver (--solver): expected one of {', '.join(SOLVERS)}, "
              f"got {self.cluster_solver!r}")
        # Checks that need no data, so that a run fails before its first stage.
        layers = self.model.num_layers
        if self.model.uses_message_passing:
            check(len(self.train.fanouts) == layers,
                  f"train.fanouts (--fanouts): {len(self.train.fanouts)} values "
                  f"{list(self.train.fanouts)} for model.num_layers (--layers) = {layers} "
                  "message-passing layers (give one per layer)")
            pf = self.projection.fanouts
            check(pf is None or len(pf) == layers,
                  f"projection.fanouts (--projection-fanouts): {len(pf or ())} values for "
                  f"model.num_layers (--layers) = {layers} (give one per layer)")

    def validate_against(self, graph: Any) -> None:
        """Check the settings that depend on the data (a :class:`~graphmtl.data.MultiTaskGraph`,
        or anything with ``num_tasks``) before any stage runs; one-line errors naming the
        setting and its ``graphmtl run`` flag."""
        n = int(graph.num_tasks)
        check(n >= 2, f"data {self.data!r}: has {n} task(s); grouping needs at least 2")
        k = self.k
        if k == "auto":
            check(n >= 4, f"k (--k) 'auto': needs at least 4 tasks, the data "
                          f"{self.data!r} has {n}; give --k between 1 and {n}")
        else:
            check(k <= n, f"k (--k): {k} groups for {n} tasks in {self.data!r} "
                          f"(need 1 <= k <= {n})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> "PipelineConfig":
        return replace_checked(self, "pipeline config", **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "pipeline config") -> "PipelineConfig":
        """From :meth:`to_dict`'s JSON (a ``--config`` file): nested configs from nested
        objects; an unknown key (at any level) or a wrongly typed value is a one-line error."""
        return config_from_dict(cls, d, name)
