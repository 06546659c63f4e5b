"""Typed configuration of an end-to-end ``graphmtl run``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from graphmtl.errors import check
from graphmtl.models import ModelConfig
from graphmtl.projection import ProjectionConfig
from graphmtl.training import TrainConfig


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
        n_groups: number of task groups ``k``, or ``"auto"``.
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
    n_groups: int | str = "auto"
    cluster_solver: str = "auto"
    compare: CompareConfig = field(default_factory=CompareConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        k = self.n_groups
        check(k == "auto" or (isinstance(k, int) and k >= 1),
              f"n_groups: expected a positive integer or 'auto', got {k!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> "PipelineConfig":
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PipelineConfig":
        nested = {"model": ModelConfig, "train": TrainConfig, "projection": ProjectionConfig,
                  "affinity": AffinityConfig, "compare": CompareConfig}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        check(not unknown, f"pipeline config: unknown key {unknown[0] if unknown else ''!r}")
        kwargs = {k: (nested[k](**v) if k in nested and isinstance(v, dict) else v)
                  for k, v in d.items()}
        return cls(**kwargs)
