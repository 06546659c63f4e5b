import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphmtl.data import MultiTaskGraph
from graphmtl.data.synthetic import (PRESETS, SyntheticConfig, make_planted_graph,
                                     planted_groups)
from graphmtl.errors import GraphMTLError


@pytest.fixture(scope="module")
def graph():
    return make_planted_graph(SyntheticConfig())


@pytest.fixture(scope="module")
def wide():
    """More tasks and nodes, so distribution checks have enough samples (still ~1 s)."""
    return make_planted_graph(SyntheticConfig(num_nodes=20_000, num_tasks=200, num_groups=8,
                                              internal_degree=8.0, background_degree=2.0,
                                              features="none", seed=3))


def _hill(values, k):
    """Hill estimate of the tail exponent gamma of P(v) ~ v^-gamma from the k largest values."""
    v = np.sort(np.asarray(values, dtype=float))[::-1]
    tail = v[:k + 1]
    return 1.0 + 1.0 / np.mean(np.log(tail[:k] / tail[k]))


def _membership(g):
    y = g.y.numpy()
    return sp.csr_matrix(y.astype(np.float32))


def test_default_preset_shape_and_invariants(graph):
    cfg = SyntheticConfig()
    assert graph.num_nodes == cfg.num_nodes and graph.num_tasks == cfg.num_tasks
    assert graph.num_features == cfg.feature_dim and graph.x.dtype == torch.float32
    ei = graph.edge_index.numpy()
    # no self-loops, both directions, deduplicated, sorted by (source, target)
    assert (ei[0] != ei[1]).all()
    key = ei[0] * graph.num_nodes + ei[1]
    assert (np.diff(key) > 0).all()
    rev = np.sort(ei[1] * graph.num_nodes + ei[0])
    assert np.array_equal(rev, key)
    # every node belongs to some community (the SNAP recipe keeps only such nodes)
    assert graph.y.any(1).all()
    prov = graph.provenance
    assert len(prov["planted_groups"]) == cfg.num_tasks
    assert sorted(set(prov["planted_groups"])) == list(range(cfg.num_groups))
    assert prov["config"] == cfg.to_dict()
    assert prov["community_sizes"] == graph.y.sum(0).tolist()


def test_sizes_near_targets(graph, wide):
    for g, cfg in ((graph, SyntheticConfig()), (wide, None)):
        cfg = cfg or SyntheticConfig(**g.provenance["config"])
        memberships = g.y.sum(1).float().mean().item()
        assert abs(memberships - cfg.mean_memberships) / cfg.mean_memberships < 0.15
        expected = g.num_nodes * (cfg.mean_memberships * cfg.internal_degree
                                  + cfg.background_degree) / 2
        assert 0.7 * expected < g.num_edges < 1.1 * expected, (g.num_edges, expected)


def test_deterministic_by_seed():
    cfg = SyntheticConfig(num_nodes=1500, num_tasks=12, num_groups=3, seed=7)
    a, b = make_planted_graph(cfg), make_planted_graph(cfg)
    for name in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.provenance == b.provenance
    c = make_planted_graph(SyntheticConfig(num_nodes=1500, num_tasks=12, num_groups=3, seed=8))
    assert not torch.equal(a.y, c.y)
    # feature parameters use their own random stream: the graph does not change with them
    d = make_planted_graph(SyntheticConfig(num_nodes=1500, num_tasks=12, num_groups=3, seed=7,
                                           feature_dim=5, feature_noise=0.1))
    assert torch.equal(a.edge_index, d.edge_index) and torch.equal(a.y, d.y)
    assert d.x.shape == (1500, 5)


def test_heavy_tailed_community_sizes(wide):
    sizes = wide.y.sum(0).numpy()
    assert sizes.max() / np.median(sizes) >= 4
    assert sizes.min() >= SyntheticConfig().min_community_size
    # log-log complementary CDF is roughly a straight line with a heavy-tail slope
    s = np.sort(sizes)
    ccdf = 1.0 - np.arange(len(s)) / len(s)
    top = s >= np.median(s)
    slope = np.polyfit(np.log(s[top]), np.log(ccdf[top]), 1)[0]
    assert -2.5 < slope < -0.3, slope


def test_power_law_memberships(wide):
    m = wide.y.sum(1).numpy()
    assert m.min() >= 1
    counts = np.bincount(m)
    # monotone decreasing head, and a long tail far beyond the mean
    assert counts[1] > counts[2] > counts[3] > counts[4]
    assert m.max() >= 6 * m.mean()
    gamma = _hill(m, k=200)
    assert 1.8 < gamma < 5.0, gamma  # the tail is cut at the communities a node can join


def test_degree_distribution_heavy_tailed(wide):
    deg = np.bincount(wide.edge_index[0].numpy(), minlength=wide.num_nodes)
    assert deg.max() >= 8 * np.median(deg)
    gamma = _hill(deg, k=200)
    assert 1.5 < gamma < 5.0, gamma
    # a Poisson (Erdos-Renyi) graph of the same mean degree has no such tail
    assert deg.std() > 2 * np.sqrt(deg.mean())


def test_community_insides_denser_than_background(graph):
    N = graph.num_nodes
    Y = _membership(graph)
    ei = graph.edge_index.numpy()
    u, v = ei[:, ei[0] < ei[1]]
    shared = np.asarray(Y[u].multiply(Y[v]).sum(1)).ravel() > 0
    # density inside communities: edges inside each community over its pairs
    y = graph.y.numpy()
    inside_edges = (y[u] & y[v]).sum(0)
    sizes = y.sum(0)
    inside_density = inside_edges / (sizes * (sizes - 1) / 2)
    # background: edges between nodes that share no community, over such pairs
    co = (Y @ Y.T).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    sharing_pairs = co.nnz / 2
    bg_pairs = N * (N - 1) / 2 - sharing_pairs
    bg_density = (~shared).sum() / bg_pairs
    assert np.median(inside_density) > 30 * bg_density, (np.median(inside_density), bg_density)
    # and the internal degree is close to what was planted
    cfg = SyntheticConfig()
    internal_degree = (2 * inside_edges).sum() / sizes.sum()
    # (overlapping communities and the background add a little on top)
    assert 0.7 * cfg.internal_degree < internal_degree < 1.4 * cfg.internal_degree


def test_planted_groups_overlap_within_more_than_between(wide):
    groups = planted_groups(wide)
    y = wide.y.numpy().astype(np.float32)
    corr = np.corrcoef(y.T)
    inter = y.T @ y
    sizes = y.sum(0)
    jaccard = inter / (sizes[:, None] + sizes[None, :] - inter)
    same = groups[:, None] == groups[None, :]
    off = ~np.eye(len(groups), dtype=bool)
    assert corr[same & off].mean() > 0.05
    assert corr[same & off].mean() > 5 * abs(corr[~same].mean())
    assert jaccard[same & off].mean() > 5 * jaccard[~same].mean()
    # task order is shuffled: groups are not contiguous blocks
    assert (np.diff(groups) != 0).sum() > wide.provenance["config"]["num_groups"]


def test_planted_features_carry_group_signal(graph):
    groups = planted_groups(graph)
    x = graph.x.numpy()
    y = graph.y.numpy()
    # a linear probe from features to "node is in some community of group k" beats chance clearly
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    half = graph.num_nodes // 2
    for k in range(int(groups.max()) + 1):
        target = y[:, groups == k].any(1)
        probe = LogisticRegression(max_iter=500).fit(x[:half], target[:half])
        auc = roc_auc_score(target[half:], probe.decision_function(x[half:]))
        assert auc > 0.8, (k, auc)
    noise_only = make_planted_graph(SyntheticConfig(feature_signal=0.0))
    target = y[:, groups == 0].any(1)
    probe = LogisticRegression(max_iter=500).fit(noise_only.x.numpy()[:half], target[:half])
    auc = roc_auc_score(target[half:], probe.decision_function(noise_only.x.numpy()[half:]))
    assert auc < 0.6


def test_feature_kinds():
    g = make_planted_graph(SyntheticConfig(num_nodes=500, num_tasks=6, num_groups=2,
                                           features="none"))
    assert g.x.shape == (500, 1) and bool((g.x == 1).all())
    cfg = SyntheticConfig(num_nodes=500, num_tasks=6, num_groups=2, features="structural",
                          feature_dim=16)
    if importlib.util.find_spec("graphmtl.data.features") is None:
        with pytest.raises(GraphMTLError, match="synthetic features"):
            make_planted_graph(cfg)
    else:
        s = make_planted_graph(cfg)
        assert s.x.shape == (500, 16) and s.x.dtype == torch.float32
        assert torch.equal(s.y, g.y)  # same graph, other features


def test_every_task_has_positives_in_every_split(wide):
    for split in ("train", "val", "test"):
        m = wide.mask(split)
        assert (m & wide.y).sum(0).min() >= 1
        assert (m & ~wide.y).sum(0).min() >= 1
    labelled = wide.train_mask | wide.val_mask | wide.test_mask
    assert labelled.all()  # every node is labelled for every task
    frac = wide.train_mask.float().mean(0)
    assert torch.allclose(frac, torch.full_like(frac, 0.2), atol=0.01)


def test_save_load_and_select_keep_groups(graph, tmp_path):
    graph.save(tmp_path / "g.npz")
    back = MultiTaskGraph.load(tmp_path / "g.npz")
    assert np.array_equal(planted_groups(back), planted_groups(graph))
    sub = graph.select_tasks([3, 0, 5])
    assert planted_groups(sub).tolist() == planted_groups(graph)[[3, 0, 5]].tolist()
    # all tasks reordered, and a selection of a selection
    order = list(range(graph.num_tasks))[::-1]
    assert planted_groups(graph.select_tasks(order)).tolist() == planted_groups(graph)[
        order].tolist()
    assert planted_groups(sub.select_tasks([2, 1])).tolist() == planted_groups(graph)[
        [5, 0]].tolist()


def test_planted_groups_requires_provenance(graph):
    bare = MultiTaskGraph(x=graph.x, edge_index=graph.edge_index, y=graph.y,
                          train_mask=graph.train_mask, val_mask=graph.val_mask,
                          test_mask=graph.test_mask, task_names=graph.task_names)
    with pytest.raises(GraphMTLError, match="planted_groups"):
        planted_groups(bare)
    renamed = MultiTaskGraph(x=graph.x, edge_index=graph.edge_index, y=graph.y,
                             train_mask=graph.train_mask, val_mask=graph.val_mask,
                             test_mask=graph.test_mask,
                             task_names=[f"c{t}" for t in range(graph.num_tasks)],
                             provenance=graph.provenance)
    with pytest.raises(GraphMTLError, match="task 'c0'"):
        planted_groups(renamed)


def test_edge_chunking_does_not_change_distribution_shape():
    small = make_planted_graph(SyntheticConfig(num_nodes=1000, num_tasks=8, num_groups=2,
                                               edge_chunk=1000, features="none"))
    big = make_planted_graph(SyntheticConfig(num_nodes=1000, num_tasks=8, num_groups=2,
                                             features="none"))
    assert torch.equal(small.y, big.y)  # memberships do not depend on the chunking
    assert abs(small.num_edges - big.num_edges) < 0.05 * big.num_edges


def test_presets_and_from_strings():
    assert set(PRESETS) >= {"default", "orkut500"}
    assert SyntheticConfig.preset("default") == SyntheticConfig()
    big = SyntheticConfig.preset("orkut500")
    assert big.num_tasks == 500
    # the preset is sized for about 21M undirected edges (checked for real by the benchmark)
    expected = big.num_nodes * (big.mean_memberships * big.internal_degree
                                + big.background_degree) / 2
    assert 18e6 < expected < 26e6
    cfg = SyntheticConfig.from_strings({"preset": "orkut500", "seed": "3", "num_tasks": "100",
                                        "region_overlap": "0.25", "features": "none",
                                        "edge_chunk": "1e6"})
    assert (cfg.seed, cfg.num_tasks, cfg.region_overlap, cfg.features, cfg.edge_chunk) == (
        3, 100, 0.25, "none", 1_000_000)
    assert cfg.num_nodes == big.num_nodes
    assert SyntheticConfig.from_strings({}) == SyntheticConfig()


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_nodes=5), "num_nodes"),
    (dict(num_groups=0), "num_groups"),
    (dict(num_groups=31), "num_groups"),
    (dict(mean_memberships=0.5), "mean_memberships"),
    (dict(membership_exponent=1.5), "membership_exponent"),
    (dict(size_exponent=1.0), "size_exponent"),
    (dict(min_community_size=2), "min_community_size"),
    (dict(min_community_size=10_000), "min_community_size"),
    (dict(max_density=1.0), "max_density"),
    (dict(region_overlap=1.5), "region_overlap"),
    (dict(group_core=1.0), "group_core"),
    (dict(core_size=0.0), "core_size"),
    (dict(features="pca"), "features"),
    (dict(feature_sharing=-0.1), "feature_sharing"),
    (dict(train_fraction=0.6, val_fraction=0.5), "val_fraction"),
    (dict(num_nodes=100.5), "num_nodes"),
    (dict(labels="votes"), "labels"),
    (dict(num_communities=10), "num_communities"),
    (dict(labels="annotation", num_groups=5, num_communities=3), "num_communities"),
    (dict(label_coverage=0.0), "label_coverage"),
    (dict(member_drop=1.0), "member_drop"),
    (dict(seed=True), "seed"),
])
def test_config_validation_names_parameter(kwargs, name):
    with pytest.raises(GraphMTLError) as e:
        SyntheticConfig(**kwargs)
    msg = str(e.value)
    assert f"synthetic {name}:" in msg and "\n" not in msg


@pytest.mark.parametrize("values, name", [
    ({"num_nodes": "many"}, "num_nodes"),
    ({"num_tasks": "2.5"}, "num_tasks"),
    ({"colour": "red"}, "colour"),
    ({"preset": "huge"}, "preset"),
    ({"region_overlap": "x"}, "region_overlap"),
])
def test_from_strings_errors_name_parameter(values, name):
    with pytest.raises(GraphMTLError) as e:
        SyntheticConfig.from_strings(values)
    assert f"synthetic {name}:" in str(e.value) and "\n" not in str(e.value)


def test_config_is_frozen():
    cfg = SyntheticConfig()
    with pytest.raises(Exception):
        cfg.seed = 3  # type: ignore[misc]


# ---------------------------------------------------------------------- annotation label model
def test_annotation_tasks_label_their_groups_latent_community(graph):
    cfg = SyntheticConfig(labels="annotation", num_tasks=24, num_groups=4, num_communities=16,
                          label_coverage=0.5, member_drop=0.1, seed=5)
    g = make_planted_graph(cfg)
    groups = planted_groups(g)
    latent = np.asarray(g.provenance["latent_communities"])
    assert g.provenance["label_model"] == "annotation"
    assert g.num_tasks == 24 and np.bincount(groups).tolist() == [6, 6, 6, 6]
    # group ids numbered by first appearance in task order
    assert groups[np.sort(np.unique(groups, return_index=True)[1])].tolist() == [0, 1, 2, 3]
    # The graph is the labels=community graph of the same seed with 16 communities, each in a
    # region of its own; the groups annotate its 4 largest communities, one each.
    comm = make_planted_graph(SyntheticConfig(num_tasks=16, num_groups=16, seed=5))
    assert torch.equal(g.edge_index, comm.edge_index) and torch.equal(g.x, comm.x)
    members = comm.y.numpy()
    sizes = members.sum(0)
    assert len(set(latent.tolist())) == 4
    assert sizes[latent].min() >= np.sort(sizes)[-4]
    y = g.y.numpy()
    labelled = (g.train_mask | g.val_mask | g.test_mask).numpy()
    truth = members[:, latent[groups]]                            # [N, 24]
    assert not (y & ~truth).any()                                 # only members are positive
    assert 0.87 < y[truth].mean() < 0.93                          # member_drop = 0.1
    assert 0.48 < labelled.mean() < 0.52                          # label_coverage = 0.5
    # Annotators of one group disagree only by their independent drops and coverage.
    a, b = np.flatnonzero(groups == 0)[:2]
    assert not np.array_equal(y[:, a], y[:, b])
    assert not np.array_equal(labelled[:, a], labelled[:, b])


def test_annotation_defaults_reuse_the_community_graph():
    a = make_planted_graph(SyntheticConfig(labels="annotation", num_tasks=12, num_groups=3,
                                           seed=2))
    b = make_planted_graph(SyntheticConfig(num_tasks=12, num_groups=12, seed=2))
    assert torch.equal(a.edge_index, b.edge_index)
    # Full coverage, no drop: the annotators of one group are exact copies of its latent.
    groups, y = planted_groups(a), a.y.numpy()
    for grp in range(3):
        cols = y[:, groups == grp]
        assert (cols == cols[:, :1]).all()
    assert (a.train_mask | a.val_mask | a.test_mask).all()


def _linear_ap(g, x, task, label_tasks):
    """Test AP of ``task`` for a logistic regression on ``x`` fitted to the training labels of
    ``label_tasks`` pooled as one label (a cheap stand-in for sharing one model)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    y, train, test = g.y.numpy(), g.train_mask.numpy(), g.test_mask.numpy()
    rows, cols = np.nonzero(train[:, label_tasks])
    clf = LogisticRegression(C=0.1, max_iter=500).fit(x[rows], y[:, label_tasks][rows, cols])
    return average_precision_score(y[test[:, task], task], clf.decision_function(x[test[:, task]]))


def test_annotated_scarce_tasks_of_a_group_help_each_other():
    from torch_geometric.utils import scatter

    g = make_planted_graph(SyntheticConfig.preset("annotated_scarce"))
    groups = planted_groups(g)
    train_pos = (g.y & g.train_mask).sum(0).numpy()
    assert train_pos.min() >= 1 and np.median(train_pos) <= 4       # a task alone is data-limited
    # Node features plus their neighbourhood mean, as one message-passing layer sees them.
    src, dst = g.edge_index
    x = torch.cat([g.x, scatter(g.x[src], dst, dim=0, dim_size=g.num_nodes, reduce="mean")], 1)
    x = x.numpy()
    alone, group, mixed = [], [], []
    for t in range(g.num_tasks):
        others = [int(np.flatnonzero(groups == h)[0]) for h in np.unique(groups) if h != groups[t]]
        alone.append(_linear_ap(g, x, t, [t]))
        group.append(_linear_ap(g, x, t, list(np.flatnonzero(groups == groups[t]))))
        mixed.append(_linear_ap(g, x, t, [t] + others))
    alone, group, mixed = map(np.asarray, (alone, group, mixed))
    # The group's other annotators' labels make every task better; other groups' labels do not.
    assert (group > alone).mean() >= 0.9 and group.mean() > alone.mean() + 0.1
    assert mixed.mean() < alone.mean() + 0.02


def test_coverage_and_drop_also_apply_to_community_labels(graph):
    g = make_planted_graph(SyntheticConfig(label_coverage=0.6, member_drop=0.2))
    full = graph.y.numpy()
    y = g.y.numpy()
    assert not (y & ~full).any()
    assert 0.75 < y.sum() / full.sum() < 0.85
    labelled = (g.train_mask | g.val_mask | g.test_mask).numpy()
    assert 0.55 < labelled.mean() < 0.65
    assert torch.equal(g.edge_index, graph.edge_index) and torch.equal(g.x, graph.x)


def test_disjoint_label_sets_within_a_group():
    g = make_planted_graph(SyntheticConfig.preset("annotated_disjoint"))
    groups = planted_groups(g)
    labelled = (g.train_mask | g.val_mask | g.test_mask).numpy()
    pos_train = (g.y & g.train_mask).numpy()
    for h in np.unique(groups):
        members = np.flatnonzero(groups == h)
        # every node is labelled by exactly one task of every group
        assert np.array_equal(labelled[:, members].sum(1), np.ones(g.num_nodes))
        co = pos_train[:, members].T.astype(int) @ pos_train[:, members].astype(int)
        assert (co[~np.eye(len(members), dtype=bool)] == 0).all()   # positives never overlap
    a, b = np.flatnonzero(groups == 0)[0], np.flatnonzero(groups == 1)[0]
    assert (labelled[:, a] & labelled[:, b]).any()                 # across groups they do
    assert 0.1 < labelled.mean() < 0.25


def test_label_sets_must_be_known():
    with pytest.raises(GraphMTLError, match="synthetic label_sets: must be one of independent, "
                                            "disjoint"):
        SyntheticConfig(label_sets="overlapping")


@pytest.mark.parametrize("preset, lo, hi", [("annotated_scarce", 1, 4),
                                            ("annotated_moderate", 7, 12),
                                            ("annotated_disjoint", 1, 4)])
def test_planted_preset_training_positives(preset, lo, hi):
    g = make_planted_graph(SyntheticConfig.preset(preset))
    median = float(np.median((g.y & g.train_mask).sum(0).numpy()))
    assert lo <= median <= hi
