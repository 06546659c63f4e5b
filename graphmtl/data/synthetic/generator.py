"""The generator entry point: :func:`make_planted_graph`."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.data.splits import SplitConfig, stratified_task_splits
from graphmtl.data.synthetic.communities import plant_communities
from graphmtl.data.synthetic.config import SyntheticConfig
from graphmtl.data.synthetic.edges import both_directions, sample_edges
from graphmtl.data.synthetic.features import node_features
from graphmtl.data.synthetic.labels import annotate, annotation_tasks, task_names


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
        label_sets="independent", member_drop=0.0,
        num_groups=C if cfg.labels == "annotation" else cfg.num_groups)

    weight, community_group, community_of, node_of = plant_communities(structure, rng_comm)
    N = cfg.num_nodes
    ptr = np.zeros(C + 1, dtype=np.int64)
    np.cumsum(np.bincount(community_of, minlength=C), out=ptr[1:])
    sizes = np.diff(ptr)

    keys = sample_edges(structure, rng_edge, weight, ptr, node_of)
    edge_index = both_directions(keys, N)
    del keys

    y = np.zeros((N, C), dtype=bool)
    y[node_of, community_of] = True
    x = node_features(structure, rng_feat, community_group, ptr, node_of, edge_index)

    latent = None
    task_group = community_group
    if cfg.labels == "annotation":
        task_group, latent = annotation_tasks(cfg, rng_label, sizes)
        y = y[:, latent[task_group]]                                      # [N, n]
    labelled = annotate(cfg, rng_label, y, task_group)
    y_t = torch.from_numpy(y)

    names = task_names(cfg.num_tasks)
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
