"""Forward-mode projected gradients: agreement with reverse mode, directions, map back."""

import warnings

import pytest
import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.errors import GraphMTLError
from graphmtl.models import ENCODERS, ModelConfig, MultiTaskGNN
from graphmtl.projection import (Directions, GradientProjector, NodeBatches, ProjectionConfig,
                                 project_batch, select_parameters)
from graphmtl.testing.projection import linearization_error, reverse_mode_projection

warnings.filterwarnings("ignore", message=".*pyg-lib.*")


def small_graph(N=60, F=5, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, F, generator=g)
    ei = torch.randint(0, N, (2, 4 * N), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    ei = torch.unique(torch.cat([ei, ei.flip(0)], 1), dim=1).contiguous()
    y = torch.rand(N, n, generator=g) < 0.3
    r = torch.rand(N, n, generator=g)
    tr, va = r < 0.4, (r >= 0.4) & (r < 0.7)
    return MultiTaskGraph(x, ei, y, tr, va, ~(tr | va), [f"task{i}" for i in range(n)])


def small_model(graph, encoder, hidden=8, seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(encoder=encoder, hidden=hidden, sign_hops=2, dropout=0.5)
    F = graph.num_features * 3 if encoder == "sign" else graph.num_features
    model = MultiTaskGNN(F, graph.num_tasks, cfg)
    model.train()  # the engine must switch to eval mode itself (dropout is 0.5 here)
    return model


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("strategy", ["split", "full"])
def test_forward_mode_matches_reverse_mode(encoder, strategy):
    graph = small_graph()
    model = small_model(graph, encoder)
    dirs = Directions.for_model(model, dim=11, seed=3)
    batches = NodeBatches(model, graph, torch.arange(5, 40), batch_size=9, fanouts=(4, 3), seed=1)
    x, ei, B = batches[2]
    f0, z = project_batch(model, x, ei, B, dirs, direction_chunk=4, strategy=strategy)
    assert not model.training
    with torch.no_grad():
        ref_f0 = model(x, ei)[:B]
    z_ref = reverse_mode_projection(model, x, ei, B, dirs)
    assert z.shape == (B, graph.num_tasks, 11) and f0.shape == (B, graph.num_tasks)
    torch.testing.assert_close(f0, ref_f0, rtol=1e-6, atol=1e-6)
    rel = (z - z_ref).norm() / z_ref.norm()
    assert rel < 1e-5, rel
    # per-row relative error too (no row hides behind the global norm)
    row_rel = (z - z_ref).norm(dim=-1) / z_ref.norm(dim=-1).clamp_min(1e-12)
    assert row_rel.max() < 1e-4


@pytest.mark.parametrize("params", ["encoder", "head", "re:convs\\.1|head\\.bias"])
def test_parameter_subsets_are_consistent(params):
    graph = small_graph()
    model = small_model(graph, "sage")
    dirs = Directions.for_model(model, dim=7, seed=0, params=params)
    names = select_parameters(model, params)
    assert dirs.names == names and dirs.num_params == sum(
        p.numel() for n, p in model.named_parameters() if n in names)
    x, ei, B = NodeBatches(model, graph, torch.arange(20), 10)[0]
    _, z = project_batch(model, x, ei, B, dirs, direction_chunk=3)
    torch.testing.assert_close(z, reverse_mode_projection(model, x, ei, B, dirs),
                               rtol=1e-5, atol=1e-6)


def test_all_is_encoder_plus_head():
    graph = small_graph()
    model = small_model(graph, "gcn")
    x, ei, B = NodeBatches(model, graph, torch.arange(20), 20)[0]
    z = {p: project_batch(model, x, ei, B, Directions.for_model(model, 9, 5, p))[1]
         for p in ("all", "encoder", "head")}
    torch.testing.assert_close(z["all"], z["encoder"] + z["head"], rtol=1e-5, atol=1e-6)


def test_select_parameters_errors():
    model = small_model(small_graph(), "sage")
    with pytest.raises(GraphMTLError, match="selects no parameter"):
        select_parameters(model, "re:nothing_like_this")
    with pytest.raises(GraphMTLError, match="expected all, encoder, head"):
        select_parameters(model, "bogus")
    with pytest.raises(GraphMTLError, match="invalid regex"):
        select_parameters(model, "re:(")


def test_directions_deterministic_in_any_chunking():
    model = small_model(small_graph(), "gat")
    dirs = Directions.for_model(model, dim=13, seed=42)
    full = dirs.matrix(chunk=13)
    assert full.shape == (dirs.num_params, 13)
    torch.testing.assert_close(dirs.matrix(chunk=1), full, rtol=0, atol=0)
    torch.testing.assert_close(dirs.matrix(chunk=5), full, rtol=0, atol=0)
    # entries are exactly +-1/sqrt(d), balanced
    assert torch.all(full.abs() == torch.tensor(13 ** -0.5))
    assert abs(float((full > 0).float().mean()) - 0.5) < 0.05
    # another seed gives other directions; the same seed in a new object the same ones
    assert not torch.equal(Directions.for_model(model, 13, 43).matrix(), full)
    torch.testing.assert_close(Directions.for_model(model, 13, 42).matrix(), full, rtol=0, atol=0)
    # projected z does not depend on the chunking either (up to float summation order: none here)
    graph = small_graph()
    x, ei, B = NodeBatches(model, graph, torch.arange(15), 15)[0]
    z1 = project_batch(model, x, ei, B, dirs, direction_chunk=1)[1]
    z13 = project_batch(model, x, ei, B, dirs, direction_chunk=13)[1]
    torch.testing.assert_close(z1, z13, rtol=1e-6, atol=1e-7)


def test_map_back_reproduces_directional_derivative():
    graph = small_graph()
    model = small_model(graph, "sign")
    proj = GradientProjector(ProjectionConfig(dim=10, seed=2, batch_size=64))
    dirs = proj.directions(model)
    w = torch.randn(10, generator=torch.Generator().manual_seed(0))
    x, ei, B = NodeBatches(model, graph, torch.arange(30), 64)[0]
    f0, z = project_batch(model, x, ei, B, dirs)
    # P w as a vector equals the dense matrix times w
    delta = dirs.combine(w)
    flat = torch.cat([delta[n].reshape(-1) for n in dirs.names])
    torch.testing.assert_close(flat, dirs.matrix(torch.float64) @ w.double(), rtol=1e-12, atol=1e-12)
    # central finite difference along P w matches <z, w> (float64, step small enough that no
    # ReLU changes side)
    eps = 1e-6
    model64 = model.double().eval()
    plus = proj.apply_direction(model64, eps * w)
    minus = proj.apply_direction(model64, -eps * w)
    with torch.no_grad():
        fd = (plus(x.double(), ei) - minus(x.double(), ei))[:B] / (2 * eps)
    torch.testing.assert_close(fd.float(), z @ w, rtol=1e-4, atol=1e-5)
    # apply() leaves the original model untouched unless asked
    assert torch.equal(dict(model64.named_parameters())["head.bias"],
                       dict(model.named_parameters())["head.bias"])


def test_linearization_error_shrinks_with_step():
    graph = small_graph()
    model = small_model(graph, "sage")
    dirs = Directions.for_model(model, 8, 0)
    x, ei, B = NodeBatches(model, graph, torch.arange(40), 40)[0]
    w = torch.randn(8, generator=torch.Generator().manual_seed(1))
    big = linearization_error(model, x, ei, B, dirs, 0.5 * w)
    small = linearization_error(model, x, ei, B, dirs, 1e-3 * w)
    assert small["rel_to_change"] < 0.05
    assert small["rel_to_change"] < big["rel_to_change"]
    assert big["change_norm"] > small["change_norm"] > 0
    # a head-only projection is exactly linear in w
    head = Directions.for_model(model, 8, 0, params="head")
    exact = linearization_error(model, x, ei, B, head, 0.5 * w)
    assert exact["rel_to_change"] < 1e-5


def test_sampling_is_seeded_per_batch():
    graph = small_graph()
    model = small_model(graph, "sage")
    a = NodeBatches(model, graph, torch.arange(40), 8, fanouts=(2, 2), seed=7)
    b = NodeBatches(model, graph, torch.arange(40), 8, fanouts=(2, 2), seed=7)
    x3, e3, _ = a[3]
    _ = b[0], b[1]  # a different history of calls
    y3, f3, _ = b[3]
    assert torch.equal(x3, y3) and torch.equal(e3, f3)
    with pytest.raises(GraphMTLError, match="fanouts"):
        NodeBatches(model, graph, torch.arange(4), 2, fanouts=(3,))


def test_project_nodes_full_neighbourhood_matches_full_graph():
    graph = small_graph()
    model = small_model(graph, "sage").eval()
    proj = GradientProjector(ProjectionConfig(dim=6, batch_size=16))
    nodes = torch.tensor([3, 17, 41, 8, 59])
    f0, z = proj.project_nodes(model, graph, nodes)
    with torch.no_grad():
        full = model(graph.x, graph.edge_index)[nodes]
    torch.testing.assert_close(f0, full, rtol=1e-5, atol=1e-6)
    assert z.shape == (5, graph.num_tasks, 6)


def test_config_validation():
    with pytest.raises(GraphMTLError, match="dim"):
        ProjectionConfig(dim=0)
    with pytest.raises(GraphMTLError, match="strategy"):
        ProjectionConfig(strategy="magic")
    with pytest.raises(GraphMTLError, match="fanouts"):
        ProjectionConfig(fanouts=(0, 3))
    with pytest.raises(GraphMTLError, match="train_budget"):
        ProjectionConfig(train_budget=1)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_f0_is_what_the_trainer_predicts(encoder):
    from graphmtl.training import predict_logits

    graph = small_graph()
    model = small_model(graph, encoder)
    nodes = torch.tensor([1, 4, 9, 16, 25, 36, 49, 50, 51])
    proj = GradientProjector(ProjectionConfig(dim=3, batch_size=4))
    f0, _ = proj.project_nodes(model, graph, nodes)
    ref = predict_logits(model, graph, nodes, batch_size=4)
    torch.testing.assert_close(f0, ref, rtol=1e-5, atol=1e-5)


def test_linearization_error_between_models():
    from graphmtl.testing.projection import linearization_error_between

    graph = small_graph()
    model = small_model(graph, "gin").eval()
    x, ei, B = NodeBatches(model, graph, torch.arange(30), 30)[0]
    dirs = Directions.for_model(model, 6, 0)
    w = 1e-3 * torch.randn(6, generator=torch.Generator().manual_seed(2))
    moved = dirs.apply(model, w)
    # a change inside the span of P: same answer as the projected check
    a = linearization_error_between(model, moved, x, ei, B)
    b = linearization_error(model, x, ei, B, dirs, w)
    assert a["change_norm"] == pytest.approx(b["change_norm"], rel=1e-6)
    assert a["rel_to_change"] == pytest.approx(b["rel_to_change"], rel=1e-2, abs=1e-4)
    # a head-only change is exactly linear
    head_moved = Directions.for_model(model, 6, 0, "head").apply(model, 100 * w)
    assert linearization_error_between(model, head_moved, x, ei, B)["rel_to_change"] < 1e-5
    with pytest.raises(GraphMTLError, match="different parameters"):
        linearization_error_between(model, small_model(graph, "sage"), x, ei, B)


@pytest.mark.parametrize("encoder", ["sage", "gat"])
def test_layer_trimming_changes_nothing(encoder):
    from graphmtl.training.loader import hop_counts

    graph = small_graph()
    model = small_model(graph, encoder)
    dirs = Directions.for_model(model, 5, 0)
    x, ei, B = NodeBatches(model, graph, torch.arange(30), 6, fanouts=(3, 3), seed=2)[1]
    assert hop_counts(ei, x.shape[0], B, 2) is not None      # the batch can be trimmed
    f_t, z_t = project_batch(model, x, ei, B, dirs, trim=True)
    f_u, z_u = project_batch(model, x, ei, B, dirs, trim=False)
    torch.testing.assert_close(f_t, f_u, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(z_t, z_u, rtol=1e-5, atol=1e-6)
