"""SNAP-like overlapping-community graphs with planted groups of related tasks.

The generator imitates the shape of SNAP ground-truth community graphs (com-YouTube, com-Orkut,
...) as the data recipe of docs/data.md uses them — one binary task per community, every node in
at least one task community — and plants a known task grouping:

1. **Groups and regions.** The ``num_tasks`` communities are split into ``num_groups`` groups of
   near-equal size. Every node gets a *home group*; the nodes of one home group form that group's
   *region*. A group's communities draw their members from its region, and a share
   ``group_core`` of their seats from the group's *core* (its highest-weight nodes), so
   communities of one group overlap strongly and communities of different groups barely overlap
   (only through the ``region_overlap`` share of memberships drawn from the whole graph).
2. **Heavy-tailed community sizes.** Raw sizes follow a truncated power law
   ``p(s) ~ s^-size_exponent`` on ``[1, size_spread]``, then are scaled so that a group's
   communities hold ``mean_memberships`` memberships per region node (at least
   ``min_community_size`` each).
3. **Power-law memberships per node.** Every region node takes one membership (so every node is
   labelled positive for some task, as in the SNAP recipe); the remaining memberships are drawn
   with probability proportional to a Pareto node weight with tail exponent
   ``membership_exponent``. Memberships are matched to communities by a random bipartite
   configuration model; a node drawn twice for one community is merged and the seat refilled.
4. **Dense insides, sparse background.** Community ``c`` of size ``s`` gets mean internal degree
   ``d_c ~ s^internal_degree_growth`` (scaled so the membership-weighted mean is
   ``internal_degree``, capped at density ``max_density``), drawn as uniform member pairs; the
   draw count is corrected for repeats so the expected density of distinct pairs is
   ``d_c / (s - 1)``. A Chung-Lu background adds ``background_degree`` mean degree with endpoints
   proportional to the node weights, which makes the degree distribution heavy-tailed too.
5. **Planted features** (``features="planted"``, cheap at any size): a low-dimensional latent per
   node — the sum over the node's communities of its task's direction, made of the group's
   shared direction (weight ``feature_sharing``) and a task-specific one — in a block of
   ``feature_rank`` dimensions private to the group and, with weight ``feature_conflict``, in a
   block shared by all groups under a different random rotation per group (one feature direction
   then means different things in different groups). The latent is mixed into ``feature_dim``
   dimensions by a random matrix and Gaussian noise is added. ``features="structural"`` uses
   :func:`graphmtl.data.features.structural_features` (FastRP, ``feature_dim`` wide) instead;
   ``features="none"`` gives a constant 1-d feature.
6. **Label models.** ``labels="community"`` (default): task t is membership of community t, and
   the communities of a group share its region. ``labels="annotation"``: every one of
   ``num_communities`` communities gets a region of its own, the ``num_groups`` largest are
   *latent* communities, and each task of group g is one annotator's labels of latent community
   g, on a random share ``label_coverage`` of the nodes (unlabelled elsewhere), missing a random
   share ``member_drop`` of its members. Tasks of one group then agree wherever both are
   labelled, and tasks of different groups label different communities. Both knobs also apply to
   ``labels="community"``.

What the planted groups mean for learning is measured, not assumed
(``experiments/bench_generator.py --transfer``, every model trained to convergence). With
``labels="community"`` two tasks of one group hurt each other more than two tasks of different
groups (overlapping communities of one region disagree on nodes a shared encoder cannot tell
apart): a grouping of competing tasks. With ``labels="annotation"`` the planted groups are groups
of *helping* tasks: a model on a task's whole group is better for it than a model on the task
alone, and a model on as many tasks of other groups is worse. The help is large where a task
alone is data-limited (preset ``annotated_scarce``: 2-3 training positives per task; test AP
up by about 0.2 for 97 % of the tasks, and one model per group beats one model on all tasks).
Where single tasks are already near perfect (preset ``annotated``) groups still help, but one
model on all tasks does as well. A single same-group partner is better than an other-group one
but does not measurably help by itself.

Everything is vectorised numpy; edges are sampled in chunks of ``edge_chunk`` draws and encoded as
int64 pair keys, so memory stays ``O(N * n / 8 + E)`` (no ``O(N^2)``). The graph structure, the
features and the splits use independent random streams spawned from ``seed``: changing feature
parameters does not change the graph.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.data.splits import SplitConfig, stratified_task_splits
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


# ---------------------------------------------------------------------- generator
def make_planted_graph(config: SyntheticConfig | None = None) -> MultiTaskGraph:
    """Generate a SNAP-like overlapping-community graph with planted task groups.

    Args:
        config: generator parameters (``None``: the ``default`` preset).

    Returns:
        A :class:`MultiTaskGraph` with ``x`` float32 ``[N, F]``, ``edge_index`` int64 ``[2, 2E]``
        (deduplicated, no self-loops, both directions, sorted), ``y`` bool ``[N, n]`` (community
        memberships, or annotations of each group's latent community) and per-task stratified
        splits over each task's labelled nodes (all nodes unless ``label_coverage < 1``).
        ``provenance`` holds the config, ``label_model``, ``planted_groups`` (group id of each
        task, in task order), ``community_sizes`` (of the planted communities) and, with
        ``labels=annotation``, ``latent_communities`` (the community each group annotates).

    Task order is a seeded shuffle of the groups, so the grouping cannot be read off the task
    index; group ids are numbered by first appearance in task order.
    """
    cfg = config or SyntheticConfig()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(4)]
    rng_comm, rng_edge, rng_feat, rng_label = streams
    # The graph (communities, edges, features) only depends on the structural fields, so both
    # label models give the same graph for the same seed.
    # With labels=annotation every community gets a region of its own, so the latent
    # communities of different groups share nodes only through region_overlap.
    C = cfg.community_count
    structure = dataclasses.replace(
        cfg, labels="community", num_tasks=C, num_communities=0, label_coverage=1.0,
        label_sets="independent", member_drop=0.0, num_groups=C if cfg.labels == "annotation" else cfg.num_groups)

    weight, community_group, community_of, node_of = _plant_communities(structure, rng_comm)
    N = cfg.num_nodes
    ptr = np.zeros(C + 1, dtype=np.int64)
    np.cumsum(np.bincount(community_of, minlength=C), out=ptr[1:])
    sizes = np.diff(ptr)

    keys = _sample_edges(structure, rng_edge, weight, ptr, node_of)
    edge_index = _both_directions(keys, N)
    del keys

    y = np.zeros((N, C), dtype=bool)
    y[node_of, community_of] = True
    x = _features(structure, rng_feat, community_group, ptr, node_of, edge_index)

    latent = None
    task_group = community_group
    if cfg.labels == "annotation":
        task_group, latent = _annotation_tasks(cfg, rng_label, sizes)
        y = y[:, latent[task_group]]                                      # [N, n]
    labelled = _annotate(cfg, rng_label, y, task_group)
    y_t = torch.from_numpy(y)

    names = _task_names(cfg.num_tasks)
    train, val, test = stratified_task_splits(
        y_t, None if labelled is None else torch.from_numpy(labelled),
        SplitConfig(train=cfg.train_fraction, val=cfg.val_fraction, seed=cfg.seed),
        task_names=names)
    provenance = {
        "name": "synthetic", "source": "synthetic",
        "generator": "graphmtl.data.synthetic.make_planted_graph",
        "config": cfg.to_dict(),
        "label_model": cfg.labels,
        "planted_groups": task_group.tolist(),
        "community_sizes": sizes.tolist(),
    }
    if latent is not None:
        provenance["latent_communities"] = latent.tolist()
    return MultiTaskGraph(x=x, edge_index=torch.from_numpy(edge_index), y=y_t, train_mask=train,
                          val_mask=val, test_mask=test, task_names=names, provenance=provenance)


def _annotation_tasks(cfg: SyntheticConfig, rng: np.random.Generator, sizes: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Group per annotation task (int64 ``[n]``, near-equal groups in a seeded order, ids by
    first appearance) and each group's latent community (int64 ``[G]``: the G largest planted
    communities, largest first by group id)."""
    n, G = cfg.num_tasks, cfg.num_groups
    largest = np.argsort(-sizes, kind="stable")[:G]
    group_old = rng.permutation(np.repeat(np.arange(G), _near_equal(n, G)))
    task_group, old_of_new = _by_first_appearance(group_old)
    return task_group, largest[old_of_new].astype(np.int64)


def _near_equal(n: int, G: int) -> np.ndarray:
    """Sizes (int64 ``[G]``) of ``G`` near-equal parts of ``n`` items, larger parts first."""
    return np.full(G, n // G) + (np.arange(G) < n % G)


def _by_first_appearance(group_old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber group ids (``[n]``, every id in ``0..G-1`` present) by first appearance.
    Returns the new ids (int64 ``[n]``) and the old id of each new one (``[G]``)."""
    _, first = np.unique(group_old, return_index=True)
    old_of_new = group_old[np.sort(first)]
    relabel = np.empty(len(old_of_new), dtype=np.int64)
    relabel[old_of_new] = np.arange(len(old_of_new))
    return relabel[group_old], old_of_new


def _annotate(cfg: SyntheticConfig, rng: np.random.Generator, y: np.ndarray,
              task_group: np.ndarray) -> np.ndarray | None:
    """Apply ``member_drop`` to ``y`` (bool ``[N, n]``, in place) and draw the labelled nodes
    of each task (bool ``[N, n]``, or ``None`` when every node is labelled for every task).
    Tasks are done in chunks so the random draws stay near 64 MB at any size. With
    ``label_sets="disjoint"`` each node is first given to one task of every group (uniformly),
    and only that task may label it."""
    N, n = y.shape
    disjoint = cfg.label_sets == "disjoint"
    labelled = None if cfg.label_coverage >= 1.0 and not disjoint else np.empty((N, n), bool)
    if cfg.member_drop == 0.0 and labelled is None:
        return None
    owner = None
    if disjoint:   # owner[v, g]: the position, within group g, of the task that labels node v
        sizes = np.bincount(task_group)
        owner = (rng.random((N, len(sizes))) * sizes).astype(np.int64)
        rank = np.zeros(n, dtype=np.int64)   # each task's position within its group
        for g in range(len(sizes)):
            members = np.flatnonzero(task_group == g)
            rank[members] = np.arange(len(members))
    chunk = max(1, (1 << 24) // N)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        if cfg.member_drop > 0.0:
            y[:, lo:hi] &= rng.random((N, hi - lo), dtype=np.float32) >= cfg.member_drop
        if labelled is not None:
            keep = rng.random((N, hi - lo), dtype=np.float32) < cfg.label_coverage
            if owner is not None:
                keep &= owner[:, task_group[lo:hi]] == rank[lo:hi]
            labelled[:, lo:hi] = keep
    return labelled


def planted_groups(graph: MultiTaskGraph) -> np.ndarray:
    """Group id per task (int64 ``[n]``, in the graph's task order) of a graph made by
    :func:`make_planted_graph`, also after :meth:`MultiTaskGraph.select_tasks` (tasks are
    matched by their generated names)."""
    groups = graph.provenance.get("planted_groups")
    check(groups is not None, "planted_groups: the graph has no planted groups in its provenance "
          "(not made by make_planted_graph)")
    by_name = dict(zip(_task_names(len(groups)), groups))
    missing = [t for t in graph.task_names if t not in by_name]
    check(not missing, f"task {missing[0] if missing else ''!r}: not a task of the generated "
          "graph, so its planted group is unknown")
    return np.asarray([by_name[t] for t in graph.task_names], dtype=np.int64)


def _task_names(n: int) -> list[str]:
    return [f"task{t:0{len(str(n - 1))}d}" for t in range(n)]


# ---------------------------------------------------------------------- communities
def _pareto(rng: np.random.Generator, size: int, exponent: float, upper: float = np.inf
            ) -> np.ndarray:
    """Samples of density ``~ s^-exponent`` on ``[1, upper]`` by inverse transform."""
    a = exponent - 1.0
    tail = 0.0 if not np.isfinite(upper) else upper ** -a
    u = rng.random(size)
    return (1.0 - u * (1.0 - tail)) ** (-1.0 / a)


def _unique(keys: np.ndarray) -> np.ndarray:
    """Sorted unique values of an int64 array, sorting it in place.

    Faster than ``np.unique`` here: numpy 2's hash-based unique is several times slower than a
    plain sort on tens of millions of int64 keys.
    """
    keys.sort()
    if len(keys) < 2:
        return keys
    keep = np.empty(len(keys), dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _weighted_draw(rng: np.random.Generator, cumw: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probability proportional to the weights whose cumsum is ``cumw``."""
    idx = np.searchsorted(cumw, rng.random(size) * cumw[-1], side="right")
    return np.minimum(idx, len(cumw) - 1)


def _plant_communities(cfg: SyntheticConfig, rng: np.random.Generator):
    """Node weights, group per task, and the membership pairs.

    Returns:
        ``weight`` float64 ``[N]``; ``task_group`` int64 ``[n]``; ``task_of`` and ``node_of``
        int32 ``[M]``: the ``M`` (task, node) membership pairs sorted by task then node.
    """
    N, n, G = cfg.num_nodes, cfg.num_tasks, cfg.num_groups
    # Node weights drive memberships and background degrees. Capped so that one node cannot
    # want more memberships than a group has communities.
    weight = _pareto(rng, N, cfg.membership_exponent)
    tasks_per_group = _near_equal(n, G)
    home = rng.choice(G, size=N, p=tasks_per_group / n)
    cum_all = np.cumsum(weight)

    task_parts, node_parts, group_of_task = [], [], []
    first_task = 0
    for g in range(G):  # a handful of groups; everything inside is vectorised
        region = np.flatnonzero(home == g).astype(np.int32)
        if len(region) == 0:  # tiny graphs: borrow a few nodes so the group has a region
            region = rng.choice(N, size=min(N, cfg.min_community_size), replace=False)
            region = region.astype(np.int32)
        n_g = int(tasks_per_group[g])
        raw = _pareto(rng, n_g, cfg.size_exponent, cfg.size_spread)
        target = len(region) * cfg.mean_memberships
        sizes = np.maximum(np.rint(raw / raw.sum() * target), cfg.min_community_size)
        sizes = np.minimum(sizes, max(len(region), cfg.min_community_size)).astype(np.int64)
        local = np.repeat(np.arange(n_g, dtype=np.int64), sizes)
        members = _draw_members(cfg, rng, region, weight, cum_all, sizes, n_g)
        # Repeats inside one community (a heavy node drawn twice) are merged; refill the lost
        # seats with fresh draws so sizes and mean memberships stay on target.
        key = _unique(local * N + members)
        for _ in range(4):
            deficit = sizes - np.bincount(key // N, minlength=n_g)
            if deficit.sum() <= 0:
                break
            fill = _draw_extra(cfg, rng, region, weight, cum_all, int(deficit.sum()), n_g)
            key = _unique(np.concatenate(
                [key, np.repeat(np.arange(n_g, dtype=np.int64), deficit) * N + fill]))
        task_parts.append((key // N).astype(np.int32) + first_task)
        node_parts.append((key % N).astype(np.int32))
        group_of_task.append(np.full(n_g, g))
        first_task += n_g

    # Shuffle task order so the grouping is not readable from task indices; renumber groups by
    # first appearance so ids are canonical.
    perm = rng.permutation(n)                   # perm[new] = old
    new_of_old = np.empty(n, dtype=np.int32)
    new_of_old[perm] = np.arange(n, dtype=np.int32)
    task_of = new_of_old[np.concatenate(task_parts)]
    node_of = np.concatenate(node_parts)
    task_group, _ = _by_first_appearance(np.concatenate(group_of_task)[perm])

    # Merge repeated members of a community (a heavy node drawn twice for one community).
    key = _unique(task_of.astype(np.int64) * N + node_of)
    return weight, task_group, (key // N).astype(np.int32), (key % N).astype(np.int32)


def _draw_extra(cfg: SyntheticConfig, rng: np.random.Generator, region: np.ndarray,
                weight: np.ndarray, cum_all: np.ndarray, count: int, n_g: int) -> np.ndarray:
    """``count`` extra members by weight: from the region, or with probability
    ``region_overlap`` from the whole graph. int64 ``[count]``."""
    outside = rng.random(count) < cfg.region_overlap
    out = np.empty(count, dtype=np.int64)
    out[outside] = _weighted_draw(rng, cum_all, int(outside.sum()))
    # Cap weights so no node expects more than half the group's communities (a node can be in
    # each community once; heavier draws would only be merged away).
    w = weight[region]
    cap = 0.5 * n_g * w.sum() / max(count, 1)
    out[~outside] = region[_weighted_draw(rng, np.cumsum(np.minimum(w, cap)),
                                          int((~outside).sum()))]
    return out


def _draw_members(cfg: SyntheticConfig, rng: np.random.Generator, region: np.ndarray,
                  weight: np.ndarray, cum_all: np.ndarray, sizes: np.ndarray, n_g: int
                  ) -> np.ndarray:
    """Members of a group's communities, seat by seat (int64 ``[sizes.sum()]``, community-major).

    A share ``group_core`` of each community's seats goes to the group's core (its
    highest-weight region nodes), so communities of one group overlap strongly. The other seats
    are a random bipartite configuration model: every region node once (so every node is in some
    community), the rest drawn by weight.
    """
    total = int(sizes.sum())
    core_seats = np.rint(cfg.group_core * sizes).astype(np.int64)
    spare = max(total - len(region), 0)  # keep a seat for every region node
    if core_seats.sum() > spare:
        core_seats = np.floor(core_seats * spare / core_seats.sum()).astype(np.int64)
    core = region[np.argsort(-weight[region], kind="stable")[
        :max(int(np.ceil(cfg.core_size * sizes.mean())), 1)]]
    core_members = core[_weighted_draw(rng, np.cumsum(weight[core]), int(core_seats.sum()))]

    rest = total - int(core_seats.sum())
    stubs = np.concatenate([region[:rest].astype(np.int64), _draw_extra(
        cfg, rng, region, weight, cum_all, max(rest - len(region), 0), n_g)])
    rng.shuffle(stubs)
    # Interleave: community c gets its core seats, then its share of the shuffled stubs.
    members = np.empty(total, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    seat = np.arange(total) - np.repeat(start, sizes)
    is_core = seat < np.repeat(core_seats, sizes)
    members[is_core] = core_members
    members[~is_core] = stubs
    return members


# ---------------------------------------------------------------------- edges
def _internal_draws(cfg: SyntheticConfig, sizes: np.ndarray) -> np.ndarray:
    """Uniform member-pair draws per community giving the planted internal density."""
    s = sizes.astype(np.float64)
    d = s ** cfg.internal_degree_growth
    d *= cfg.internal_degree * s.sum() / max((s * d).sum(), 1e-300)
    pairs = s * (s - 1) / 2
    p = np.minimum(d / np.maximum(s - 1, 1), cfg.max_density)
    # A uniform ordered draw hits a given unordered pair with probability 1/pairs, so m draws
    # cover a fraction 1 - exp(-m/pairs) of pairs: invert that to reach density p.
    return np.rint(-np.log1p(-p) * pairs).astype(np.int64)


def _sample_edges(cfg: SyntheticConfig, rng: np.random.Generator, weight: np.ndarray,
                  ptr: np.ndarray, node_of: np.ndarray) -> np.ndarray:
    """Sorted unique int64 keys ``u * N + v`` (``u < v``) of the undirected edges."""
    N = cfg.num_nodes
    sizes = np.diff(ptr)
    draws = _internal_draws(cfg, sizes)
    parts = []

    def keep(u: np.ndarray, v: np.ndarray) -> None:
        lo, hi = np.minimum(u, v).astype(np.int64), np.maximum(u, v).astype(np.int64)
        k = lo * N + hi
        parts.append(_unique(k[lo != hi]))

    # Community edges, whole communities per chunk (a community bigger than a chunk is its own).
    bounds = np.cumsum(draws)
    start = 0
    while start < len(draws):
        base = bounds[start - 1] if start else 0
        stop = max(int(np.searchsorted(bounds, base + cfg.edge_chunk, side="right")), start + 1)
        comm = np.repeat(np.arange(start, stop, dtype=np.int32), draws[start:stop])
        s = sizes[comm].astype(np.float32)
        off = ptr[comm]
        i = np.minimum((rng.random(len(comm), dtype=np.float32) * s).astype(np.int64),
                       sizes[comm] - 1)
        j = np.minimum((rng.random(len(comm), dtype=np.float32) * s).astype(np.int64),
                       sizes[comm] - 1)
        keep(node_of[off + i], node_of[off + j])
        del comm, s, off, i, j
        start = stop

    # Chung-Lu background: endpoints proportional to node weight.
    cumw = np.cumsum(weight)
    total = int(round(N * cfg.background_degree / 2))
    for lo in range(0, total, cfg.edge_chunk):
        m = min(cfg.edge_chunk, total - lo)
        keep(_weighted_draw(rng, cumw, m), _weighted_draw(rng, cumw, m))

    if not parts:
        return np.zeros(0, dtype=np.int64)
    return _unique(np.concatenate(parts))


def _both_directions(keys: np.ndarray, N: int) -> np.ndarray:
    """int64 ``[2, 2E]`` edge index sorted by (source, target) from undirected keys."""
    lo, hi = keys // N, keys % N
    both = np.concatenate([keys, hi * N + lo])
    del lo, hi
    both.sort()
    out = np.empty((2, len(both)), dtype=np.int64)
    np.floor_divide(both, N, out=out[0])
    np.remainder(both, N, out=out[1])
    return out


# ---------------------------------------------------------------------- features
def _features(cfg: SyntheticConfig, rng: np.random.Generator, task_group: np.ndarray,
              ptr: np.ndarray, node_of: np.ndarray, edge_index: np.ndarray) -> torch.Tensor:
    N = cfg.num_nodes
    if cfg.features == "none":
        return torch.ones(N, 1)
    if cfg.features == "structural":
        return _structural_features(cfg, edge_index)
    G, r, n = cfg.num_groups, cfg.feature_rank, cfg.num_tasks

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    # Task directions: the group's shared direction plus a task-specific one.
    shared = unit(rng.standard_normal((G, r)))
    own = unit(rng.standard_normal((n, r)))
    direction = unit(np.sqrt(cfg.feature_sharing) * shared[task_group]
                     + np.sqrt(1 - cfg.feature_sharing) * own)          # [n, r]
    # Latent layout: G private blocks of r dims, then one block of r dims shared by all groups,
    # each group writing into it through its own random rotation.
    rotation = np.linalg.qr(rng.standard_normal((G, r, r)))[0]          # [G, r, r]
    task_latent = np.zeros((n, (G + 1) * r))
    cols = task_group[:, None] * r + np.arange(r)
    np.put_along_axis(task_latent, cols, np.sqrt(1 - cfg.feature_conflict) * direction, axis=1)
    task_latent[:, G * r:] = np.sqrt(cfg.feature_conflict) * np.einsum(
        "tij,tj->ti", rotation[task_group], direction)
    # Node latent = sum of its communities' task latents (a sparse [N, n] x [n, L] product).
    from scipy.sparse import csr_matrix

    task_of = np.repeat(np.arange(n), np.diff(ptr))
    member = csr_matrix((np.ones(len(node_of), dtype=np.float32), (node_of, task_of)),
                        shape=(N, n))
    latent = (member @ task_latent.astype(np.float32)).astype(np.float32)  # [N, L]
    mix = (rng.standard_normal((latent.shape[1], cfg.feature_dim))
           / np.sqrt(r)).astype(np.float32)
    x = rng.standard_normal((N, cfg.feature_dim), dtype=np.float32)
    x *= np.float32(cfg.feature_noise)
    x += np.float32(cfg.feature_signal) * (latent @ mix)
    return torch.from_numpy(x)


def _structural_features(cfg: SyntheticConfig, edge_index: np.ndarray) -> torch.Tensor:
    try:
        features = importlib.import_module("graphmtl.data.features")
    except ImportError:
        raise GraphMTLError("synthetic features: 'structural' needs graphmtl.data.features, "
                            "which is not available; use features=planted") from None
    fn = getattr(features, "structural_features", None)
    check(callable(fn), "synthetic features: graphmtl.data.features has no "
          "structural_features(edge_index, num_nodes) function; use features=planted")
    kwargs = {}
    if hasattr(features, "FeatureConfig"):
        kwargs["config"] = features.FeatureConfig(dim=max(cfg.feature_dim, 2), seed=cfg.seed)
    x = fn(torch.from_numpy(edge_index), cfg.num_nodes, **kwargs)
    x = torch.as_tensor(x, dtype=torch.float32)
    check(x.dim() == 2 and x.shape[0] == cfg.num_nodes,
          f"synthetic features: structural_features returned shape {tuple(x.shape)}")
    return x
