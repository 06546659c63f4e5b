"""The ``device`` setting of every stage (CPU here; the GPU path runs in experiments/bench_gpu.py)
and the projection's automatic neighbourhood rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphmtl.errors import GraphMTLError
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.projection import GradientProjector, ProjectionConfig
from graphmtl.projection import config as projection_config

from test_training import planted_graph

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def graph():
    return planted_graph(N=120)


def _model(graph, layers=2):
    torch.manual_seed(0)
    return MultiTaskGNN(graph.num_features, graph.num_tasks,
                        ModelConfig(encoder="sage", hidden=8, num_layers=layers)).eval()


def test_projection_fanouts_auto_rule(graph, monkeypatch, tmp_path):
    model = _model(graph)
    cfg = ProjectionConfig(dim=4, batch_size=32)
    assert cfg.fanouts == "auto" and cfg.to_dict()["fanouts"] == "auto"
    assert cfg.resolve(model, graph).fanouts is None                  # small: exact
    assert ProjectionConfig(fanouts="full").fanouts is None
    assert ProjectionConfig(fanouts=[3, 2]).resolve(model, graph).fanouts == (3, 2)
    monkeypatch.setattr(projection_config, "AUTO_SAMPLE_MIN_EDGES", 10)
    assert cfg.resolve(model, graph).fanouts == (10, 5)
    assert cfg.resolve(_model(graph, 3), graph).fanouts == (10, 10, 10)
    sign = MultiTaskGNN(3 * graph.num_features, graph.num_tasks,
                        ModelConfig(encoder="sign", sign_hops=2))
    assert cfg.resolve(sign, graph).fanouts is None
    monkeypatch.undo()
    # The store records the resolved config; without device, so an auto run on a small graph
    # has the key of an explicit full-neighbourhood run (existing stores stay valid).
    a = GradientProjector(cfg).project(model, graph, tmp_path / "a", progress=False)
    b = GradientProjector(ProjectionConfig(dim=4, batch_size=32, fanouts=None)).project(
        model, graph, tmp_path / "b", progress=False)
    assert a.manifest["run_key"] == b.manifest["run_key"]
    assert a.manifest["config"]["fanouts"] is None and "device" not in a.manifest["config"]
    assert np.array_equal(a.array("train", "z"), b.array("train", "z"))
    with pytest.raises(GraphMTLError, match="projection fanouts"):
        ProjectionConfig(fanouts="some")


def test_projection_device_setting(graph):
    model = _model(graph)
    nodes = torch.arange(10)
    ref = GradientProjector(ProjectionConfig(dim=4, batch_size=4)).project_nodes(model, graph,
                                                                                 nodes)
    got = GradientProjector(ProjectionConfig(dim=4, batch_size=4, device="auto")).project_nodes(
        model, graph, nodes)
    for a, b in zip(ref, got):
        assert b.device.type == "cpu"
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
    with pytest.raises(GraphMTLError, match="device"):
        ProjectionConfig(device="gpu0")
    if NO_CUDA:
        with pytest.raises(GraphMTLError, match="CUDA is not available"):
            GradientProjector(ProjectionConfig(dim=4, device="cuda")).project_nodes(
                model, graph, nodes)


def test_subset_solver_device_setting():
    from graphmtl.affinity.rows import SplitRows
    from graphmtl.affinity.solver import BatchedSubsetSolver, SolverConfig
    from graphmtl.affinity.subsets import sample_subsets

    g = torch.Generator().manual_seed(1)
    n, d, r = 4, 3, 25
    rows = SplitRows(torch.randn(n * r, d, generator=g),
                     torch.randn(n * r, generator=g, dtype=torch.float64),
                     (torch.rand(n * r, generator=g) < 0.5).double(),
                     torch.ones(n * r, dtype=torch.float64), np.arange(0, n * r + 1, r),
                     [f"t{i}" for i in range(n)])
    M = sample_subsets(n, 6, 2, seed=0)
    a = BatchedSubsetSolver(SolverConfig()).fit(rows, M)
    b = BatchedSubsetSolver(SolverConfig(device="auto")).fit(rows, M)
    assert b.weights.device.type == "cpu"
    torch.testing.assert_close(b.weights, a.weights, atol=1e-9, rtol=1e-7)
    assert rows.to(torch.device("cpu")) is rows
    with pytest.raises(GraphMTLError, match="device"):
        SolverConfig(device="cuda:x")
    if NO_CUDA:
        with pytest.raises(GraphMTLError, match="CUDA is not available"):
            BatchedSubsetSolver(SolverConfig(device="cuda")).fit(rows, M)


def test_lowrank_sdp_torch_path_agrees_with_numpy():
    from graphmtl.clustering import TaskClustering
    from graphmtl.clustering.sdp_lowrank import solve_sdp_lowrank
    from graphmtl.testing.affinities import planted_affinity

    A, labels = planted_affinity(n=60, k=3, noise=0.3, seed=0)
    ref = solve_sdp_lowrank(A, 3)
    got = solve_sdp_lowrank(A, 3, device="cpu")          # the GPU code path, on the CPU
    assert isinstance(got.factor, np.ndarray) and isinstance(got.y, np.ndarray)
    assert got.objective == pytest.approx(ref.objective, rel=1e-4)
    assert got.status == "converged"
    c = TaskClustering(3, solver="lowrank", device="cpu").fit(A)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(labels, c.labels_) == 1.0
    with pytest.raises(GraphMTLError, match="device"):
        TaskClustering(3, device="gpu").fit(A)
    if NO_CUDA:
        with pytest.raises(GraphMTLError, match="CUDA is not available"):
            solve_sdp_lowrank(A, 3, device="cuda")
