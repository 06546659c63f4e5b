"""Planted communities: node weights, one group per task, and the (task, node) memberships
(steps 1 to 3 of the generator, see :mod:`graphmtl.data.synthetic`)."""

from __future__ import annotations

import numpy as np

from graphmtl.data.synthetic.config import SyntheticConfig
from graphmtl.data.synthetic.sampling import (by_first_appearance, near_equal, pareto,
                                              unique_sorted, weighted_draw)


def plant_communities(cfg: SyntheticConfig, rng: np.random.Generator):
    """Node weights, group per task, and the membership pairs.

    Returns:
        ``weight`` float64 ``[N]``; ``task_group`` int64 ``[n]``; ``task_of`` and ``node_of``
        int32 ``[M]``: the ``M`` (task, node) membership pairs sorted by task then node.
    """
    N, n, G = cfg.num_nodes, cfg.num_tasks, cfg.num_groups
    # Node weights drive memberships and background degrees. Capped so that one node cannot
    # want more memberships than a group has communities.
    weight = pareto(rng, N, cfg.membership_exponent)
    tasks_per_group = near_equal(n, G)
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
        raw = pareto(rng, n_g, cfg.size_exponent, cfg.size_spread)
        target = len(region) * cfg.mean_memberships
        sizes = np.maximum(np.rint(raw / raw.sum() * target), cfg.min_community_size)
        sizes = np.minimum(sizes, max(len(region), cfg.min_community_size)).astype(np.int64)
        local = np.repeat(np.arange(n_g, dtype=np.int64), sizes)
        members = _draw_members(cfg, rng, region, weight, cum_all, sizes, n_g)
        # Repeats inside one community (a heavy node drawn twice) are merged; refill the lost
        # seats with fresh draws so sizes and mean memberships stay on target.
        key = unique_sorted(local * N + members)
        for _ in range(4):
            deficit = sizes - np.bincount(key // N, minlength=n_g)
            if deficit.sum() <= 0:
                break
            fill = _draw_extra(cfg, rng, region, weight, cum_all, int(deficit.sum()), n_g)
            key = unique_sorted(np.concatenate(
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
    task_group, _ = by_first_appearance(np.concatenate(group_of_task)[perm])

    # Merge repeated members of a community (a heavy node drawn twice for one community).
    key = unique_sorted(task_of.astype(np.int64) * N + node_of)
    return weight, task_group, (key // N).astype(np.int32), (key % N).astype(np.int32)


def _draw_extra(cfg: SyntheticConfig, rng: np.random.Generator, region: np.ndarray,
                weight: np.ndarray, cum_all: np.ndarray, count: int, n_g: int) -> np.ndarray:
    """``count`` extra members by weight: from the region, or with probability
    ``region_overlap`` from the whole graph. int64 ``[count]``."""
    outside = rng.random(count) < cfg.region_overlap
    out = np.empty(count, dtype=np.int64)
    out[outside] = weighted_draw(rng, cum_all, int(outside.sum()))
    # Cap weights so no node expects more than half the group's communities (a node can be in
    # each community once; heavier draws would only be merged away).
    w = weight[region]
    cap = 0.5 * n_g * w.sum() / max(count, 1)
    out[~outside] = region[weighted_draw(rng, np.cumsum(np.minimum(w, cap)),
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
    core_members = core[weighted_draw(rng, np.cumsum(weight[core]), int(core_seats.sum()))]

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
