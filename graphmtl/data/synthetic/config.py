"""Settings of the planted-graph generator: :class:`SyntheticConfig` and the named
:data:`PRESETS`."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from graphmtl.errors import GraphMTLError, check


FEATURE_KINDS = ("planted", "structural", "none")
LABEL_MODELS = ("community", "annotation")
LABEL_SETS = ("independent", "disjoint")


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of :func:`make_planted_graph`; every field has a simple type so it can be set
    from a ``key=value`` string (see :meth:`from_strings`).

    Args:
        num_nodes: number of nodes ``N``.
        num_tasks: number of communities, one binary task each (``n``).
        num_groups: number of planted task groups (``1 <= num_groups <= num_tasks``).
        mean_memberships: mean number of communities per node (``>= 1``).
        membership_exponent: tail exponent ``gamma`` of the node weights that draw the extra
            memberships, ``P(w) ~ w^-gamma`` (``> 2``; SNAP graphs show 2 to 3.5).
        size_exponent: exponent of the raw community-size law ``p(s) ~ s^-size_exponent``
            (``> 1``; smaller is heavier-tailed).
        size_spread: ratio of the largest to the smallest raw community size (``>= 1``).
        min_community_size: smallest community (``>= 5`` so every split gets a positive).
        internal_degree: membership-weighted mean degree of a node inside one community.
        internal_degree_growth: ``d_c ~ s_c^growth``; 0 gives the same internal degree in every
            community, so large communities are sparser inside.
        max_density: cap on the edge density inside a community, in ``(0, 1)``.
        background_degree: mean degree of the Chung-Lu background edges.
        region_overlap: share of the extra memberships drawn from the whole graph instead of the
            group's own region, in ``[0, 1]`` (0: groups never share nodes beyond chance).
        group_core: share in ``[0, 1)`` of each community's seats filled (by weight) from its
            group's core (its highest-weight nodes, ``core_size`` times its mean community size):
            the knob for how strongly communities of one group overlap.
        core_size: size of a group's core in units of its mean community size (``> 0``;
            smaller cores make communities of a group overlap more).
        features: ``planted`` (group-signal features), ``structural``
            (:mod:`graphmtl.data.features`) or ``none`` (constant).
        feature_dim: width ``F`` of the planted (or structural) features.
        feature_rank: latent dimensions per group for the planted features.
        feature_sharing: weight in ``[0, 1]`` of the group's shared direction in each task's
            latent direction (1: features only say which group region a node is in).
        feature_conflict: weight in ``[0, 1]`` of the block of latent dimensions that all groups
            share under different rotations (interference between groups).
        feature_signal: scale of the latent signal.
        feature_noise: standard deviation of the Gaussian feature noise.
        labels: the label model. ``community``: task t is membership of the planted community
            t, communities of a group sharing a region. ``annotation``: the graph plants
            ``num_communities`` communities, each in a region of its own; the ``num_groups``
            largest are *latent* communities, and every task of group g is an annotation of
            latent community g: several annotators label the same community, each on its own
            part of the graph (see ``label_coverage`` and ``member_drop``). Planted features
            then cost ``N * (num_communities + 1) * feature_rank`` floats.
        num_communities: communities planted with ``labels=annotation`` (0: ``num_tasks``);
            must be ``>= num_groups``. Unused (must be 0) with ``labels=community``.
        label_coverage: share in ``(0, 1]`` of the nodes that carry a label for each task, drawn
            independently per task; the others are unlabelled for it (outside every split).
        label_sets: ``independent`` (each task draws its labelled nodes on its own) or
            ``disjoint``: the nodes are partitioned at random among the tasks of each group, so
            tasks of one group are labelled on disjoint node sets and their positives never
            overlap (label co-occurrence then says nothing); ``label_coverage`` then thins each
            task's part, so a task covers about ``label_coverage / group size`` of the nodes.
        member_drop: share in ``[0, 1)`` of the community's members that each task misses
            (labels negative), drawn independently per task: incomplete annotation.
        train_fraction, val_fraction: per-task split fractions of positives and of negatives.
        seed: seed of everything.
        edge_chunk: edge draws generated at once (bounds peak memory).
    """

    num_nodes: int = 3000
    num_tasks: int = 30
    num_groups: int = 5
    mean_memberships: float = 1.6
    membership_exponent: float = 2.5
    size_exponent: float = 1.8
    size_spread: float = 15.0
    min_community_size: int = 20
    internal_degree: float = 12.0
    internal_degree_growth: float = 0.3
    max_density: float = 0.9
    background_degree: float = 3.0
    region_overlap: float = 0.1
    group_core: float = 0.3
    core_size: float = 3.0
    features: str = "planted"
    feature_dim: int = 32
    feature_rank: int = 4
    feature_sharing: float = 0.6
    feature_conflict: float = 0.0
    feature_signal: float = 1.0
    feature_noise: float = 1.0
    labels: str = "community"
    num_communities: int = 0
    label_coverage: float = 1.0
    label_sets: str = "independent"
    member_drop: float = 0.0
    train_fraction: float = 0.2
    val_fraction: float = 0.2
    seed: int = 0
    edge_chunk: int = 4_000_000

    def __post_init__(self) -> None:
        def need(cond: bool, field: str, what: str) -> None:
            check(cond, f"synthetic {field}: {what}, got {getattr(self, field)!r}")

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = _FIELD_TYPES[f.name]
            ok = (isinstance(value, kind) and not isinstance(value, bool)) or (
                kind is float and isinstance(value, int) and not isinstance(value, bool))
            check(ok, f"synthetic {f.name}: expected {kind.__name__}, got {value!r}")
        need(self.num_nodes >= 10, "num_nodes", "must be >= 10")
        need(self.num_tasks >= 1, "num_tasks", "must be >= 1")
        need(1 <= self.num_groups <= self.num_tasks, "num_groups",
             f"must lie in [1, num_tasks={self.num_tasks}]")
        need(self.mean_memberships >= 1.0, "mean_memberships", "must be >= 1")
        need(self.membership_exponent > 2.0, "membership_exponent", "must be > 2")
        need(self.size_exponent > 1.0, "size_exponent", "must be > 1")
        need(self.size_spread >= 1.0, "size_spread", "must be >= 1")
        need(self.min_community_size >= 5, "min_community_size", "must be >= 5")
        need(self.min_community_size * self.community_count
             <= self.num_nodes * self.mean_memberships * self.num_groups, "min_community_size",
             "too large for num_nodes * mean_memberships")
        need(self.internal_degree > 0, "internal_degree", "must be > 0")
        need(self.internal_degree_growth >= 0, "internal_degree_growth", "must be >= 0")
        need(0 < self.max_density < 1, "max_density", "must lie in (0, 1)")
        need(self.background_degree >= 0, "background_degree", "must be >= 0")
        need(0 <= self.region_overlap <= 1, "region_overlap", "must lie in [0, 1]")
        need(0 <= self.group_core < 1, "group_core", "must lie in [0, 1)")
        need(self.core_size > 0, "core_size", "must be > 0")
        need(self.features in FEATURE_KINDS, "features",
             f"must be one of {', '.join(FEATURE_KINDS)}")
        need(self.feature_dim >= 1, "feature_dim", "must be >= 1")
        need(self.feature_rank >= 1, "feature_rank", "must be >= 1")
        need(0 <= self.feature_sharing <= 1, "feature_sharing", "must lie in [0, 1]")
        need(0 <= self.feature_conflict <= 1, "feature_conflict", "must lie in [0, 1]")
        need(self.feature_signal >= 0, "feature_signal", "must be >= 0")
        need(self.feature_noise >= 0, "feature_noise", "must be >= 0")
        need(self.labels in LABEL_MODELS, "labels", f"must be one of {', '.join(LABEL_MODELS)}")
        if self.labels == "annotation":
            need(self.num_communities == 0 or self.num_communities >= self.num_groups,
                 "num_communities", f"must be 0 or >= num_groups={self.num_groups}")
        else:
            need(self.num_communities == 0, "num_communities",
                 "is only used with labels=annotation (leave it 0)")
        need(0 < self.label_coverage <= 1, "label_coverage", "must lie in (0, 1]")
        need(self.label_sets in LABEL_SETS, "label_sets",
             f"must be one of {', '.join(LABEL_SETS)}")
        need(0 <= self.member_drop < 1, "member_drop", "must lie in [0, 1)")
        need(0 < self.train_fraction < 1, "train_fraction", "must lie in (0, 1)")
        need(0 < self.val_fraction < 1, "val_fraction", "must lie in (0, 1)")
        need(self.train_fraction + self.val_fraction < 1, "val_fraction",
             f"train_fraction + val_fraction must be < 1 (train_fraction={self.train_fraction})")
        need(self.seed >= 0, "seed", "must be >= 0")
        need(self.edge_chunk >= 1000, "edge_chunk", "must be >= 1000")

    @property
    def community_count(self) -> int:
        """Number of planted communities (``num_tasks`` unless ``labels=annotation`` sets
        ``num_communities``)."""
        return self.num_communities or self.num_tasks

    # ------------------------------------------------------------------ construction
    @classmethod
    def preset(cls, name: str = "default", **overrides: Any) -> "SyntheticConfig":
        """The named preset (see :data:`PRESETS`) with ``overrides`` applied."""
        check(name in PRESETS, f"synthetic preset: unknown {name!r} (choose from "
              f"{', '.join(PRESETS)})")
        unknown = sorted(set(overrides) - set(_FIELD_TYPES))
        check(not unknown, f"synthetic {unknown[0] if unknown else ''}: unknown parameter "
              f"(known: preset, {', '.join(_FIELD_TYPES)})")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> "SyntheticConfig":
        """Build from ``key -> string value`` pairs, e.g. parsed from ``synthetic:preset=orkut500,
        seed=3``. The optional key ``preset`` picks the starting preset (default ``default``);
        every other key is a field name, its value parsed to the field's type."""
        values = dict(values)
        preset = str(values.pop("preset", "default")).strip()
        parsed = {}
        for key, raw in values.items():
            key = str(key).strip()
            check(key in _FIELD_TYPES, f"synthetic {key}: unknown parameter (known: preset, "
                  f"{', '.join(_FIELD_TYPES)})")
            parsed[key] = _parse(key, str(raw).strip(), _FIELD_TYPES[key])
        return cls.preset(preset, **parsed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse(key: str, raw: str, kind: type) -> Any:
    try:
        if kind is int:
            value = float(raw.replace("_", ""))  # accept 4e6 and 4_000_000
            if not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            return float(raw)
        return raw
    except ValueError:
        raise GraphMTLError(f"synthetic {key}: expected {kind.__name__}, got {raw!r}") from None


_FIELD_TYPES: dict[str, type] = {f.name: typing.get_type_hints(SyntheticConfig)[f.name]
                for f in dataclasses.fields(SyntheticConfig)}

#: Named parameter sets. ``default`` is the small graph of the end-to-end demo (builds in about a
#: second); ``orkut500`` has the scale of the paper's largest benchmark, com-Orkut with 500 tasks
#: (about 400k nodes and 21M undirected edges); ``annotated`` and ``annotated_scarce`` use the
#: annotation label model, the second with scarce labels, where tasks of a group help each other.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "mid": dict(num_nodes=50_000, num_tasks=100, num_groups=10, mean_memberships=2.0,
                internal_degree=20.0, background_degree=6.0, min_community_size=50,
                feature_dim=64),
    "annotated": dict(labels="annotation", num_tasks=30, num_groups=5, num_communities=20,
                      label_coverage=0.5, feature_rank=2, feature_noise=3.0,
                      train_fraction=0.1),
    # The annotated graph with few labels and noisy features: 2-3 training positives per
    # task, so a task alone is data-limited and its group's annotators add what it lacks.
    "annotated_scarce": dict(labels="annotation", num_tasks=30, num_groups=5,
                             num_communities=20, label_coverage=0.5, feature_rank=2,
                             feature_noise=6.0, train_fraction=0.03),
    # Less extreme: about 10 training positives per task.
    "annotated_moderate": dict(labels="annotation", num_tasks=30, num_groups=5,
                               num_communities=20, label_coverage=0.5, feature_rank=2,
                               feature_noise=6.0, train_fraction=0.12),
    # Tasks of a group annotate one community but on disjoint node sets: their positives never
    # overlap, so label co-occurrence cannot find the groups.
    "annotated_disjoint": dict(labels="annotation", num_tasks=30, num_groups=5,
                               num_communities=20, label_sets="disjoint", feature_rank=2,
                               feature_noise=6.0, train_fraction=0.1, val_fraction=0.3),
    "orkut500": dict(num_nodes=400_000, num_tasks=500, num_groups=20, mean_memberships=2.5,
                     size_spread=30.0, min_community_size=100, internal_degree=37.0,
                     background_degree=15.0, feature_dim=64),
}
