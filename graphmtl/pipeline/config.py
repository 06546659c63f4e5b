"""Typed configuration of an end-to-end ``graphmtl run``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from graphmtl.clustering.estimator import SOLVERS
from graphmtl.errors import check
from graphmtl.evaluation.benchmark import GROUP_INITS
from graphmtl.models import ModelConfig
from graphmtl.projection import ProjectionConfig
from graphmtl.training import TrainConfig
from graphmtl.utils.config import config_from_dict, replace_checked


#: Ways of estimating the task affinity (see :mod:`graphmtl.pipeline.methods`).
AFFINITY_METHODS = ("subspace", "combined", "surrogate", "gradtag", "trained", "head_cosine",
                    "label_cooccurrence", "gradient_cosine")
#: Forms of the gradient-based Grad-TAG estimate (``method="gradtag"``).
GRADTAG_MODES = ("offset", "reference")


@dataclass(frozen=True)
class AffinityConfig:
    """How the task affinity is estimated.

    Args:
        method: ``subspace`` (closed-form reduced-rank linear models of the subsets and
            the tasks' fitted-score correlation; no training, no base model), ``combined``
            (surrogate affinity and head cosine, averaged), ``surrogate`` (batched surrogate
            training), ``gradtag`` (projected gradients of the base model, in form ``mode``),
            ``trained`` (every sampled subset trained: the reference, costly), or a
            single-model signal: ``head_cosine``, ``label_cooccurrence``, ``gradient_cosine``
            (docs/method.md §4–6).
        mode: the Grad-TAG form, ``offset`` or ``reference`` (``method="gradtag"`` only).
        num_subsets: ``m`` sampled task subsets (``None``: the estimator's own default).
        subset_size: ``s`` tasks per subset (``None``: the estimator's default; capped at
            ``n - 1`` for small ``n``).
        lam: ridge strength of the Grad-TAG subset fits (relative to the subset's row weight).
        standardize: z-score each task's scores across subsets before averaging.
        seed: seed of the subset sample (and of the estimator's own randomness).
    """

    method: str = "subspace"
    mode: str = "offset"
    num_subsets: int | None = None
    subset_size: int | None = None
    lam: float = 1.0
    standardize: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.method in AFFINITY_METHODS, f"affinity method: expected one of "
              f"{', '.join(AFFINITY_METHODS)}, got {self.method!r}")
        check(self.mode in GRADTAG_MODES, f"affinity mode: expected one of "
              f"{', '.join(GRADTAG_MODES)}, got {self.mode!r}")
        check(self.num_subsets is None or self.num_subsets >= 1,
              f"affinity num_subsets: must be >= 1, got {self.num_subsets}")
        check(self.subset_size is None or self.subset_size >= 2,
              f"affinity subset_size: must be >= 2, got {self.subset_size}")
        check(self.lam > 0, f"affinity lam: must be > 0, got {self.lam}")

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "affinity config") -> "AffinityConfig":
        return config_from_dict(cls, d, name)


@dataclass(frozen=True)
class CompareConfig:
    """How the groups are judged: the controls, all trained like the group models.

    Every grouping (the method's, the pairwise baseline's, one model per task) is compared with
    ``random_draws`` random groupings of the same group sizes and with one model on all tasks,
    over ``seeds`` training seeds; each difference is paired per task and given a confidence
    interval (:mod:`graphmtl.evaluation`).

    Args:
        pairwise: also the naive pairwise affinity: train a model on each sampled pair ``{i, j}``
            and on each single task, ``T_ij = f_i({i, j}) - f_i({i})``, cluster it into as many
            groups.
        pairwise_pairs: pairs trained for it: ``auto`` (all pairs up to ``3 n`` of them, else a
            seeded sample of ``3 n``; the cost of all pairs is then extrapolated), ``all``, or a
            number.
        random_draws: random groupings per seed and group-size profile.
        seeds: training seeds of every compared model (the interval is Welch over these runs).
        single_task: also one model per task.
        group_init: how every compared model but the all-task one starts: ``all_tasks``
            (default: fine-tuned from that seed's all-task model, whose weights stay a
            candidate) or ``scratch`` (fresh weights, the papers' protocol); see
            :class:`~graphmtl.evaluation.GroupingBenchmark`. Fine-tuned group models beat one
            all-task model where models trained from scratch on a group's few labels do not
            (docs/method.md §6).
        partner_signal: also train every random draw a second time (another training seed)
            and report how much of a task's score its partners decide and how well validation
            tells it (:func:`~graphmtl.evaluation.partner_signal`): whether any grouping can
            gain on this data. Doubles the random controls' cost.
        workers: processes training models in parallel.
    """

    pairwise: bool = True
    pairwise_pairs: int | str = "auto"
    random_draws: int = 5
    seeds: int = 3
    single_task: bool = False
    group_init: str = GROUP_INITS[0]
    partner_signal: bool = False
    workers: int = 2

    def __post_init__(self) -> None:
        p = self.pairwise_pairs
        check(p in ("auto", "all") or (isinstance(p, int) and not isinstance(p, bool) and p >= 1),
              f"compare pairwise_pairs: expected auto, all or a number >= 1, got {p!r}")
        check(self.random_draws >= 1,
              f"compare random_draws: must be >= 1, got {self.random_draws}")
        check(self.seeds >= 1, f"compare seeds: must be >= 1, got {self.seeds}")
        check(self.workers >= 1, f"compare workers: must be >= 1, got {self.workers}")
        check(self.group_init in GROUP_INITS, f"compare group_init: unknown {self.group_init!r} "
                                              f"(choose from {', '.join(GROUP_INITS)})")

    def num_pairs(self, n: int) -> int:
        """How many of the ``n (n - 1) / 2`` pairs the pairwise baseline trains."""
        total = n * (n - 1) // 2
        if self.pairwise_pairs == "all":
            return total
        if self.pairwise_pairs == "auto":
            return min(total, 3 * n)
        return min(total, int(self.pairwise_pairs))

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
        model: architecture of every model (base, group models, controls).
        train: optimisation of every model.
        projection: the gradient projection (``affinity.method`` ``gradtag`` /
            ``gradient_cosine`` only).
        affinity: how the task affinity is estimated.
        k: number of task groups, or ``"auto"``.
        cluster_solver: ``auto`` / ``exact`` / ``lowrank`` / ``admm``.
        compare: the controls the groups are judged against.
        seed: recorded in the manifest; the per-stage seeds live in the stage configs.
    """

    data: str = "synthetic:preset=annotated_scarce"
    data_root: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    projection: ProjectionConfig = field(
        default_factory=lambda: ProjectionConfig(train_budget=2000, val_budget=1000))
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
            check(not isinstance(pf, tuple) or len(pf) == layers,
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
