"""SurrogateAffinityEstimator: shapes and invariants, reproducibility, given subsets, bounded
validation passes that equal the whole-matrix one, and its errors."""

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


def test_errors():
    with pytest.raises(GraphMTLError, match="num_subsets"):
        SurrogateAffinityEstimator(num_subsets=0)
    with pytest.raises(GraphMTLError, match="subset_size"):
        SurrogateAffinityEstimator(subset_size=1)
    with pytest.raises(GraphMTLError, match="surrogate steps"):
        SurrogateConfig(steps=0)
