"""SurrogateAffinityEstimator: shapes and invariants, reproducibility, given subsets, bounded
validation passes that equal the whole-matrix one, the validation-row budget, and its errors."""

import numpy as np
import pytest

from graphmtl.affinity import SurrogateAffinityEstimator, SurrogateConfig, combine_affinities
from graphmtl.affinity import surrogate as surrogate_module
from graphmtl.data import load_dataset
from graphmtl.errors import GraphMTLError

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ("synthetic:num_nodes=400,num_tasks=6,num_groups=2,min_community_size=20,"
        "internal_degree=8,feature_dim=8")
FAST = SurrogateConfig(steps=20, eval_every=10, hidden=8, input_dim=8, batch_size=128)


@pytest.fixture(scope="module")
def graph():
    return load_dataset(TINY)


def fit(graph, **kw):
    return SurrogateAffinityEstimator(**{"num_subsets": 30, "subset_size": 3, "config": FAST,
                                         **kw}).fit(graph)


def test_shapes_and_invariants(graph):
    est = fit(graph)
    n = graph.num_tasks
    assert est.subsets_.shape == est.scores_.shape == (30, n)
    assert (est.subsets_.sum(1) == 3).all()
    assert np.isnan(est.scores_[~est.subsets_]).all()          # scored only inside the subset
    inside = est.scores_[est.subsets_]
    assert np.isfinite(inside).all() and ((inside >= 0) & (inside <= 1)).all()   # AP
    A = est.affinity_
    assert A.shape == (n, n) and np.allclose(A, A.T) and np.allclose(np.diag(A), 0)
    assert est.task_names_ == graph.task_names and set(est.timings_) >= {"features_s", "train_s"}
    assert combine_affinities(A, A).shape == (n, n)


def test_same_seed_same_estimate_other_seed_other_sample(graph):
    a, b = fit(graph, seed=3), fit(graph, seed=3)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    assert not np.array_equal(fit(graph, seed=4).subsets_, a.subsets_)


def test_given_subsets_by_name(graph):
    names = graph.task_names
    est = SurrogateAffinityEstimator(config=FAST).fit(graph, [[names[0], names[1]],
                                                              [names[2], names[3], names[4]]])
    assert est.subsets_.sum(1).tolist() == [2, 3]             # unequal sizes are padded
    assert np.isfinite(est.scores_[0, :2]).all() and np.isnan(est.scores_[0, 2:]).all()


def test_blocked_validation_equals_the_whole_pass(graph, monkeypatch):
    whole = fit(graph)
    monkeypatch.setattr(surrogate_module, "EVAL_ENTRIES", 64)   # a few rows / subsets a block
    blocked = fit(graph)
    np.testing.assert_allclose(blocked.scores_, whole.scores_, atol=1e-6, equal_nan=True)


def test_validation_row_budget_keeps_positives_first(graph):
    from dataclasses import replace

    every = surrogate_module.validation_rows(graph, None)
    assert every.tolist() == graph.val_mask.any(1).nonzero().flatten().tolist()
    assert surrogate_module.validation_rows(graph, len(every)).tolist() == every.tolist()
    positive = (graph.val_mask & graph.y)[every].any(1)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    assert 10 < n_pos < n_neg
    positive = (graph.val_mask & graph.y).any(1)

    def drawn(budget, seed=0):
        rows = surrogate_module.validation_rows(graph, budget, seed=seed)
        assert len(rows) == budget and (rows[1:] > rows[:-1]).all()   # sorted, no repeats
        assert set(every.tolist()) >= set(rows.tolist())
        return rows, int(positive[rows].sum())

    rows, k = drawn(2 * n_pos + 4, seed=1)
    assert k == n_pos                                      # all positives fit in half: all kept
    assert rows.tolist() == drawn(2 * n_pos + 4, seed=1)[0].tolist()
    assert rows.tolist() != drawn(2 * n_pos + 4, seed=2)[0].tolist()
    assert drawn(n_pos)[1] == n_pos // 2                   # else they fill half of it
    assert drawn(len(every) - 1)[1] == n_pos               # one negative left out
    budget = 2 * n_pos + 4
    # the estimator scores the budgeted rows: other scores, same shapes and support
    small = fit(graph, config=replace(FAST, val_rows=budget))
    whole = fit(graph)
    assert np.array_equal(np.isfinite(small.scores_), np.isfinite(whole.scores_))
    assert not np.allclose(small.scores_[small.subsets_], whole.scores_[whole.subsets_])



def test_validation_row_budget_when_negatives_run_out():
    from types import SimpleNamespace

    import torch

    y = torch.zeros(100, 2, dtype=torch.bool)
    y[:80, 0] = True                                        # 80 positive rows, 20 negative
    g = SimpleNamespace(y=y, val_mask=torch.ones(100, 2, dtype=torch.bool))
    rows = surrogate_module.validation_rows(g, 90)
    assert len(rows) == 90 and int(y[rows, 0].sum()) == 70  # all 20 negatives, 70 positives
    assert int(y[surrogate_module.validation_rows(g, 30), 0].sum()) == 15   # half of 30

def test_errors():
    with pytest.raises(GraphMTLError, match="num_subsets"):
        SurrogateAffinityEstimator(num_subsets=0)
    with pytest.raises(GraphMTLError, match="subset_size"):
        SurrogateAffinityEstimator(subset_size=1)
    with pytest.raises(GraphMTLError, match="surrogate steps"):
        SurrogateConfig(steps=0)
    with pytest.raises(GraphMTLError, match="surrogate val_rows"):
        SurrogateConfig(val_rows=0)
