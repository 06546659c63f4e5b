"""Memory-bounded inference: layer-wise = full graph, streamed metrics = one block, no leaks,
checkpoint before validation, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphmtl.errors import GraphMTLError
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.training import (TrainConfig, Trainer, compute_metrics, embed, evaluate,
                               full_graph_bytes, layerwise_embeddings, load_checkpoint,
                               make_loader, node_outputs, predict_logits, streaming_metrics)
from graphmtl.training import inference as inf
from graphmtl.utils.device import resolve_device, validate_device

from test_training import FAST, planted_graph


@pytest.fixture(scope="module")
def graph():
    return planted_graph(N=300)


def _model(graph, encoder="sage", layers=2, seed=0):
    torch.manual_seed(seed)
    return MultiTaskGNN(graph.num_features, graph.num_tasks,
                        ModelConfig(encoder=encoder, hidden=16, num_layers=layers)).eval()


@pytest.mark.parametrize("encoder", ["sage", "gcn", "gat", "gin"])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_layerwise_equals_full_graph(graph, encoder, layers, monkeypatch):
    """GCN included: its layer-wise weights are normalised on the whole graph."""
    model = _model(graph, encoder, layers)
    full = predict_logits(model, graph, method="full_graph")
    lw = predict_logits(model, graph, method="layerwise", batch_size=37)
    torch.testing.assert_close(lw, full, atol=1e-5, rtol=1e-5)
    # Receptive fields restricted to what a few nodes need (any order, repeats).
    nodes = torch.tensor([5, 3, 100, 7, 5])
    monkeypatch.setattr(inf, "RESTRICT_MAX_SHARE", 1.0)
    few = predict_logits(model, graph, nodes, method="layerwise", batch_size=2)
    torch.testing.assert_close(few, full[nodes], atol=1e-5, rtol=1e-5)
    h = layerwise_embeddings(model, graph, nodes, batch_size=3)
    torch.testing.assert_close(h, model.encoder(graph.x, graph.edge_index)[nodes].detach(),
                               atol=1e-5, rtol=1e-5)


def test_receptive_field_is_exact(graph):
    from graphmtl.training.inference import _one_hop_graph, _receptive_field

    model = _model(graph)
    _, sampler = _one_hop_graph(model, graph)
    nodes = torch.tensor([4, 9])
    got = _receptive_field(sampler.colptr, sampler.row, nodes, graph.num_nodes)
    ei = graph.edge_index
    want = torch.unique(torch.cat([nodes, ei[0][torch.isin(ei[1], nodes)]]))
    assert torch.equal(got, want)
    # Covering more than half the graph: every node (None).
    assert _receptive_field(sampler.colptr, sampler.row, torch.arange(200),
                            graph.num_nodes) is None


def test_auto_method_by_size(graph, monkeypatch):
    model = _model(graph)
    assert inf.resolve_method("auto", graph, model.config) == "full_graph"
    assert full_graph_bytes(graph, model.config) > 4 * graph.edge_index.shape[1] * 16
    monkeypatch.setattr(inf, "FULL_GRAPH_MAX_BYTES", 1)
    assert inf.resolve_method("auto", graph, model.config) == "layerwise"
    with pytest.raises(GraphMTLError, match="inference method"):
        inf.resolve_method("exact", graph, model.config)


def test_sampled_predict_keeps_only_seed_rows(graph):
    """The leak: every returned row block was a view into a [N_sub, n] batch output."""
    model = _model(graph)
    nodes = torch.arange(0, 300, 3)
    a = predict_logits(model, graph, nodes, fanouts=[3, 2], batch_size=16, seed=4)
    b = predict_logits(model, graph, nodes, fanouts=[3, 2], batch_size=16, seed=4)
    assert torch.equal(a, b) and not a.requires_grad and a.device.type == "cpu"
    assert a.untyped_storage().nbytes() == a.numel() * 4     # owns exactly its rows
    # Definition: the seed rows of the same sampled subgraphs.
    with torch.random.fork_rng():
        torch.manual_seed(4)
        ref = torch.cat([model(bt.x, bt.edge_index)[:bt.batch_size].detach()
                         for bt in make_loader(graph, nodes, [3, 2], 16)])
    torch.testing.assert_close(a, ref, atol=1e-5, rtol=1e-5)
    h = embed(model, graph, nodes, fanouts=[3, 2], batch_size=16, seed=4)
    torch.testing.assert_close(model.head(h).detach(), a, atol=1e-5, rtol=1e-5)
    with pytest.raises(GraphMTLError, match="eval fanouts"):
        predict_logits(model, graph, nodes, fanouts=[3])


def test_streaming_metrics_equal_one_block(graph):
    model = _model(graph)
    split = graph.mask("val")
    nodes = split.any(1).nonzero().flatten()
    out = node_outputs(model, graph, nodes, method="layerwise", batch_size=50)
    assert out.logits is None and out.h.shape == (len(nodes), 16)
    y, m = graph.y[nodes], split[nodes]
    names = graph.task_names
    one = compute_metrics(out.block(torch.arange(6)), y, m, names, "val")
    for block in (len(nodes), 2 * len(nodes) + 1):    # one task / two tasks per block
        st = streaming_metrics(out, y, m, names, "val", max_elements=block)
        assert st.task_names == names
        for name in ("f1", "roc_auc", "ap", "loss", "num_pos", "num_neg"):
            np.testing.assert_allclose(getattr(st, name), getattr(one, name), rtol=1e-6)
    with pytest.raises(GraphMTLError, match="outputs for"):
        streaming_metrics(out, y[:5], m[:5], names)


def test_evaluate_layerwise_matches_full_graph(graph):
    model = _model(graph, "gcn")
    a = evaluate(model, graph, None, "test", method="full_graph")
    b = evaluate(model, graph, None, "test", method="layerwise", batch_size=40)
    np.testing.assert_allclose(b.roc_auc, a.roc_auc, atol=1e-6)
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-5)
    sampled = evaluate(model, graph, None, "test", fanouts=[-1, -1], seed=0)
    np.testing.assert_allclose(sampled.loss, a.loss, rtol=1e-2)  # GCN: subgraph degrees
    t = evaluate(model.__class__(graph.num_features, 2, model.config).eval(), graph,
                 ["t1", "t4"], "val", method="layerwise")
    assert t.task_names == ["t1", "t4"]


def test_trainer_layerwise_validation_equals_full_graph(graph):
    mc = ModelConfig(encoder="sage", hidden=8)
    a = Trainer(mc, TrainConfig(epochs=2, **FAST)).fit(graph, progress=False)
    b = Trainer(mc, TrainConfig(epochs=2, eval_method="layerwise", **FAST)).fit(graph,
                                                                                progress=False)
    assert [h["epoch"] for h in a.history] == [h["epoch"] for h in b.history]
    for ha, hb in zip(a.history, b.history):
        assert hb["val_ap"] == pytest.approx(ha["val_ap"], abs=1e-6)
    np.testing.assert_allclose(b.val_metrics.loss, a.val_metrics.loss, rtol=1e-5)


def test_checkpoint_written_before_validation(graph, tmp_path, monkeypatch):
    """A validation that dies loses no training: last.pt holds the epoch, and resuming
    validates it and continues exactly like the uninterrupted run."""
    from graphmtl.training import trainer as trainer_mod

    mc, tc = ModelConfig(encoder="sage", hidden=8), TrainConfig(epochs=3, patience=0, **FAST)
    full = Trainer(mc, tc).fit(graph, out_dir=tmp_path / "a", progress=False)

    def boom(*a, **k):
        raise MemoryError("validation ran out of memory")

    monkeypatch.setattr(trainer_mod, "node_outputs", boom)
    with pytest.raises(MemoryError):
        Trainer(mc, tc).fit(graph, out_dir=tmp_path / "b", progress=True)
    last = load_checkpoint(tmp_path / "b" / "last.pt")
    assert last.epoch == 1 and last.trainer_state["pending_eval"]
    monkeypatch.undo()
    resumed = Trainer(mc, tc).fit(graph, out_dir=tmp_path / "b", resume=True, progress=False)
    assert resumed.history == full.history
    assert all(torch.equal(v, full.model.state_dict()[k])
               for k, v in resumed.model.state_dict().items())


def test_sampled_validation_is_seeded(graph):
    mc = ModelConfig(encoder="sage", hidden=8)
    tc = TrainConfig(epochs=2, eval_fanouts=(3, 2), **FAST)
    a = Trainer(mc, tc).fit(graph, progress=False)
    b = Trainer(mc, tc).fit(graph, progress=False)
    assert a.history == b.history and tc.to_dict()["eval_fanouts"] == [3, 2]
    with pytest.raises(GraphMTLError, match="eval_fanouts"):
        TrainConfig(eval_fanouts=(0, 2))


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu" and resolve_device(None).type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert validate_device(" CUDA:1 ") == "cuda:1"
    for bad in ("gpu", "cuda:x", "tpu"):
        with pytest.raises(GraphMTLError, match="device"):
            validate_device(bad)
        with pytest.raises(GraphMTLError, match="device"):
            resolve_device(bad)
    with pytest.raises(GraphMTLError, match="eval_method"):
        TrainConfig(eval_method="exact")
    if not torch.cuda.is_available():
        with pytest.raises(GraphMTLError, match="CUDA is not available") as e:
            resolve_device("cuda:0")
        assert "\n" not in str(e.value)
        tc = TrainConfig(epochs=1, device="cuda", **FAST)      # checked when fit starts
        with pytest.raises(GraphMTLError, match="CUDA"):
            Trainer(ModelConfig(encoder="sage", hidden=8), tc).fit(planted_graph(N=60), progress=False)
