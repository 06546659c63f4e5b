"""SubspaceAffinityEstimator and ridge_coefficients: the ridge fits against scikit-learn, the
reduced-rank scores against a per-subset computation by hand, no sharing at full rank, planted
groups recovered, shapes and invariants, reproducibility, given subsets, blocked scoring, and
its errors."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import adjusted_rand_score, average_precision_score

from graphmtl.affinity import (SubspaceAffinityEstimator, SubspaceConfig, combine_affinities,
                               ridge_coefficients)
from graphmtl.affinity import subspace as subspace_module
from graphmtl.affinity.surrogate import surrogate_inputs
from graphmtl.clustering import TaskClustering
from graphmtl.data import load_dataset
from graphmtl.errors import GraphMTLError

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ("synthetic:num_nodes=400,num_tasks=6,num_groups=2,min_community_size=20,"
        "internal_degree=8,feature_dim=8")
SMALL = SubspaceConfig(input_dim=8)


@pytest.fixture(scope="module")
def graph():
    return load_dataset(TINY)


def fit(graph, **kw):
    return SubspaceAffinityEstimator(**{"num_subsets": 30, "subset_size": 3, "config": SMALL,
                                        **kw}).fit(graph)


def test_ridge_coefficients_equal_scikit_learn_per_task():
    gen = np.random.default_rng(0)
    X = gen.normal(size=(300, 5))
    y = gen.random((300, 3)) < 0.3
    mask = gen.random((300, 3)) < 0.7
    mask[:, 2] = mask[:, 1]                          # two tasks share their rows (one Gram)
    coef = ridge_coefficients(torch.tensor(X, dtype=torch.float32), torch.tensor(y),
                              torch.tensor(mask), ridge=0.5, row_chunk=64).numpy()
    for i in range(3):
        rows = mask[:, i]
        ref = Ridge(alpha=0.5 * rows.sum()).fit(X[rows], y[rows, i].astype(float)).coef_
        np.testing.assert_allclose(coef[:, i], ref, rtol=1e-4, atol=1e-6)


def test_ridge_coefficients_task_without_rows_is_zero():
    X = torch.randn(50, 4)
    mask = torch.ones(50, 2, dtype=torch.bool)
    mask[:, 1] = False
    coef = ridge_coefficients(X, torch.rand(50, 2) < 0.5, mask, ridge=1.0)
    assert coef.shape == (4, 2) and (coef[:, 1] == 0).all() and (coef[:, 0] != 0).any()


def test_scores_equal_the_reduced_rank_model_by_hand(graph):
    """One subset, computed step by step with numpy: ridge fits, the correlation of the fitted
    scores on the training rows, the top eigenvector, the projected prediction, AP."""
    cfg = SubspaceConfig(input_dim=8, rank=1)
    S = [0, 2, 5]
    est = SubspaceAffinityEstimator(config=cfg).fit(graph, [S])
    X = surrogate_inputs(graph, cfg.hops, cfg.input_dim, 0).numpy().astype(float)
    tr = graph.train_mask.any(1).numpy()
    va = graph.val_mask.any(1).numpy()
    y, tm, vm = graph.y.numpy(), graph.train_mask.numpy(), graph.val_mask.numpy()
    B = np.stack([Ridge(alpha=cfg.ridge * tm[tr, i].sum()).fit(
        X[tr][tm[tr, i]], y[tr][tm[tr, i], i].astype(float)).coef_ for i in S], 1)
    Xc = X[tr] - X[tr].mean(0)
    F = Xc @ B
    C = F.T @ F / len(Xc)
    d = np.sqrt(np.diag(C))
    w, V = np.linalg.eigh(C / np.outer(d, d))
    P = np.outer(V[:, -1], V[:, -1])
    pred = (X[va] @ B / d) @ P
    for slot, i in enumerate(S):
        rows = vm[va, i]
        ref = average_precision_score(y[va][rows, i], pred[rows, slot])
        assert est.scores_[0, i] == pytest.approx(ref, abs=1e-4)


def test_full_rank_shares_nothing(graph):
    """At rank >= subset size each task is its own ridge fit: its score is the same in every
    subset, whoever its partners are."""
    est = fit(graph, config=SubspaceConfig(input_dim=8, rank=3))
    for i in range(graph.num_tasks):
        col = est.scores_[est.subsets_[:, i], i]
        assert np.allclose(col, col[0])
    shared = fit(graph)                                   # rank 1: partners matter
    assert any(np.ptp(shared.scores_[shared.subsets_[:, i], i]) > 1e-3
               for i in range(graph.num_tasks))


@pytest.fixture(scope="module")
def planted_graph():
    return load_dataset("synthetic:preset=annotated_scarce,seed=0")


@pytest.mark.parametrize("part", ["affinity_", "affinity_subsets_", "correlation_"])
def test_recovers_planted_groups(planted_graph, part):
    """The result, and each of its two parts alone, separates the planted groups."""
    planted = np.asarray(planted_graph.provenance["planted_groups"])
    est = SubspaceAffinityEstimator(num_subsets=300, seed=0).fit(planted_graph)
    A = getattr(est, part) * (1 - np.eye(len(planted)))
    labels = TaskClustering(k=int(planted.max()) + 1).fit(A).labels_
    assert adjusted_rand_score(planted, labels) > 0.9
    same = planted[:, None] == planted[None, :]
    off = ~np.eye(len(planted), dtype=bool)
    assert A[same & off].mean() > A[~same].mean()


def test_correlation_covers_pairs_no_subset_holds(planted_graph):
    """Three subsets of 5 hold at most 30 of 435 pairs: the subsets' affinity is 0 elsewhere,
    the combined one still ranks every pair."""
    est = SubspaceAffinityEstimator(num_subsets=3, seed=0).fit(planted_graph)
    off = ~np.eye(planted_graph.num_tasks, dtype=bool)
    assert (est.affinity_subsets_[off] == 0).mean() > 0.9
    assert (est.affinity_[off] != 0).mean() > 0.99


def test_affinity_is_the_combination_of_its_parts(graph):
    est = fit(graph)
    pairwise = est.correlation_ * (1 - np.eye(graph.num_tasks))
    np.testing.assert_allclose(est.affinity_, combine_affinities(est.affinity_subsets_, pairwise))
    alone = fit(graph, correlation=False)
    np.testing.assert_array_equal(alone.affinity_, alone.affinity_subsets_)
    np.testing.assert_array_equal(alone.affinity_subsets_, est.affinity_subsets_)


def test_shapes_and_invariants(graph):
    est = fit(graph)
    n = graph.num_tasks
    assert est.subsets_.shape == est.scores_.shape == (30, n)
    assert np.isnan(est.scores_[~est.subsets_]).all()
    inside = est.scores_[est.subsets_]
    assert np.isfinite(inside).all() and ((inside >= 0) & (inside <= 1)).all()
    A = est.affinity_
    assert A.shape == (n, n) and np.allclose(A, A.T) and np.allclose(np.diag(A), 0)
    assert est.coef_.shape == (8, n) and np.allclose(np.diag(est.correlation_), 1, atol=1e-5)
    assert est.task_names_ == graph.task_names
    assert set(est.timings_) == {"features_s", "fit_s", "score_s", "total_s"}


def test_same_seed_same_estimate_other_seed_other_sample(graph):
    a, b = fit(graph, seed=3), fit(graph, seed=3)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    assert not np.array_equal(fit(graph, seed=4).subsets_, a.subsets_)


def test_given_subsets_of_unequal_sizes(graph):
    names = graph.task_names
    both = SubspaceAffinityEstimator(config=SMALL).fit(graph, [[names[0], names[1]],
                                                               [names[2], names[3], names[4]]])
    assert both.subsets_.sum(1).tolist() == [2, 3]
    assert np.isfinite(both.scores_[0, :2]).all() and np.isnan(both.scores_[0, 2:]).all()
    alone = SubspaceAffinityEstimator(config=SMALL).fit(graph, [[names[0], names[1]]])
    np.testing.assert_allclose(both.scores_[0, :2], alone.scores_[0, :2])   # padding is inert


def test_blocked_scoring_equals_the_whole_pass(graph, monkeypatch):
    whole = fit(graph)
    monkeypatch.setattr(subspace_module, "EVAL_ENTRIES", 64)
    np.testing.assert_allclose(fit(graph).scores_, whole.scores_)


def test_errors(graph):
    with pytest.raises(GraphMTLError, match="subspace num_subsets"):
        SubspaceAffinityEstimator(num_subsets=0)
    with pytest.raises(GraphMTLError, match="subspace subset_size"):
        SubspaceAffinityEstimator(subset_size=1)
    with pytest.raises(GraphMTLError, match="subspace rank"):
        SubspaceConfig(rank=0)
    with pytest.raises(GraphMTLError, match="subspace ridge"):
        SubspaceConfig(ridge=0)
    with pytest.raises(GraphMTLError, match="subspace val_rows"):
        SubspaceConfig(val_rows=0)
    with pytest.raises(GraphMTLError, match="unknown task"):
        SubspaceAffinityEstimator().fit(graph, [["no such task", graph.task_names[0]]])
