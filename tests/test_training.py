"""Tests of the multitask trainer: loss, metrics, checkpoints, resume, warm start, errors."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphmtl.data import MultiTaskGraph, SplitConfig, stratified_task_splits
from graphmtl.errors import GraphMTLError
from graphmtl.models import ENCODERS, ModelConfig, MultiTaskGNN
from graphmtl.training import (TrainConfig, Trainer, compute_metrics, evaluate, graph_digest,
                               inference_loader, load_checkpoint, make_loader, masked_bce,
                               node_inputs, per_task_bce, predict_logits, roc_auc_scores,
                               save_checkpoint)

FAST = dict(batch_size=64, num_threads=1, eval_batch_size=128)


def planted_graph(N: int = 240, n: int = 6, F_: int = 8, seed: int = 0) -> MultiTaskGraph:
    """Three planted communities; task t = community t % 3 with 5% label noise."""
    g = torch.Generator().manual_seed(seed)
    comm = torch.randint(0, 3, (N,), generator=g)
    src = torch.randint(0, N, (N * 3,), generator=g)
    dst = torch.where(torch.rand(N * 3, generator=g) < 0.8,
                      # mostly edges inside a community: pick a random member of src's community
                      torch.stack([torch.nonzero(comm == comm[s]).flatten()[
                          torch.randint(0, int((comm == comm[s]).sum()), (1,), generator=g)]
                          for s in src]).flatten(),
                      torch.randint(0, N, (N * 3,), generator=g))
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    ei = torch.unique(ei[:, ei[0] != ei[1]], dim=1).contiguous()
    x = torch.randn(N, F_, generator=g) * 0.5
    x[:, :3] += F.one_hot(comm, 3).float() * 0.5     # a weak feature signal besides the edges
    y = torch.zeros(N, n, dtype=torch.bool)
    for t in range(n):
        y[:, t] = (comm == t % 3) ^ (torch.rand(N, generator=g) < 0.05)
    tr, va, te = stratified_task_splits(y, None, SplitConfig(seed=seed))
    return MultiTaskGraph(x=x, edge_index=ei, y=y, train_mask=tr, val_mask=va, test_mask=te,
                          task_names=[f"t{i}" for i in range(n)])


@pytest.fixture(scope="module")
def graph() -> MultiTaskGraph:
    return planted_graph()


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------- loss
def test_masked_bce_equals_reference_double_loop():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(13, 7, generator=g, dtype=torch.float64)
    y = torch.rand(13, 7, generator=g) < 0.3
    mask = torch.rand(13, 7, generator=g) < 0.6
    total, count = 0.0, 0
    per_task = []
    for t in range(7):
        s, c = 0.0, 0
        for b in range(13):
            if mask[b, t]:
                z, yy = float(logits[b, t]), float(y[b, t])
                term = max(z, 0) - z * yy + np.log1p(np.exp(-abs(z)))
                s, c = s + term, c + 1
        total, count = total + s, count + c
        per_task.append(s / c if c else float("nan"))
    assert float(masked_bce(logits, y, mask)) == pytest.approx(total / count, rel=1e-12)
    np.testing.assert_allclose(per_task_bce(logits, y, mask).numpy(), per_task, rtol=1e-12)
    # No labelled pair: zero loss, not NaN.
    assert float(masked_bce(logits, y, torch.zeros_like(mask))) == 0.0


def test_unlabelled_pairs_receive_no_gradient():
    logits = torch.randn(5, 4, requires_grad=True)
    mask = torch.zeros(5, 4, dtype=torch.bool)
    mask[:, 1] = True
    mask[2, 3] = True
    masked_bce(logits, torch.ones(5, 4), mask).backward()
    assert torch.all(logits.grad[~mask] == 0) and torch.all(logits.grad[mask] != 0)


def test_only_selected_tasks_matter(graph):
    """Training on tasks [1, 4] never looks at the other tasks' labels."""
    cfg = TrainConfig(epochs=2, seed=3, **FAST)
    r1 = Trainer(ModelConfig(encoder="sage", hidden=8), cfg).fit(graph, ["t1", "t4"], progress=False)
    scrambled = MultiTaskGraph(
        x=graph.x, edge_index=graph.edge_index, y=graph.y.clone(), train_mask=graph.train_mask,
        val_mask=graph.val_mask, test_mask=graph.test_mask, task_names=graph.task_names)
    scrambled.y[:, [0, 2, 3, 5]] = ~scrambled.y[:, [0, 2, 3, 5]]
    r2 = Trainer(ModelConfig(encoder="sage", hidden=8), cfg).fit(scrambled, [1, 4], progress=False)
    assert r1.model.head.out_features == 2 and r1.task_names == ["t1", "t4"]
    assert _same_state(r1.model, r2.model)


# ---------------------------------------------------------------------- metrics
def test_metrics_agree_with_sklearn():
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    g = torch.Generator().manual_seed(2)
    M, k = 200, 6
    logits = torch.randn(M, k, generator=g)
    logits[:50, 0] = 0.5                               # ties
    logits[:, 1] = torch.round(logits[:, 1])           # many ties
    y = torch.rand(M, k, generator=g) < 0.3
    mask = torch.rand(M, k, generator=g) < 0.7
    mask[:, 4] &= ~y[:, 4]                             # task 4: no positives
    mask[:, 5] &= y[:, 5]                              # task 5: no negatives
    m = compute_metrics(logits, y, mask, [f"t{i}" for i in range(k)], "val")
    for t in range(4):
        rows = mask[:, t]
        yt, st = y[rows, t].numpy(), logits[rows, t].numpy()
        assert m.f1[t] == pytest.approx(f1_score(yt, st > 0))
        assert m.roc_auc[t] == pytest.approx(roc_auc_score(yt, st), abs=1e-12)
        assert m.ap[t] == pytest.approx(average_precision_score(yt, st))
        assert m.loss[t] == pytest.approx(
            F.binary_cross_entropy_with_logits(torch.tensor(st).double(),
                                               torch.tensor(yt).double()).item())
    assert np.isnan(m.f1[4]) and np.isnan(m.roc_auc[4]) and np.isnan(m.ap[4])
    assert np.isnan(m.roc_auc[5]) and not np.isnan(m.f1[5])
    assert set(m.undefined) == {"t4", "t5"} and "positives" in m.undefined["t4"]
    assert m.macro_roc_auc == pytest.approx(np.mean(m.roc_auc[:4]))
    assert m.macro_f1 == pytest.approx(np.mean(m.f1[[0, 1, 2, 3, 5]]))
    sub = m.select(["t2", "t4"])
    assert sub.task_names == ["t2", "t4"] and list(sub.undefined) == ["t4"]
    d = m.to_dict()
    assert d["tasks"][4]["roc_auc"] is None and d["macro"]["roc_auc"] == pytest.approx(
        m.macro_roc_auc)
    assert "macro" in m.table()


def test_roc_auc_vectorised_matches_sklearn_random():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(5)
    logits = torch.randint(0, 5, (300, 20), generator=g).float()   # heavy ties
    y = torch.rand(300, 20, generator=g) < 0.4
    mask = torch.rand(300, 20, generator=g) < 0.5
    auc = roc_auc_scores(logits, y, mask)
    ref = [roc_auc_score(y[mask[:, t], t], logits[mask[:, t], t]) for t in range(20)]
    np.testing.assert_allclose(auc.numpy(), ref, atol=1e-12)


# ---------------------------------------------------------------------- training
@pytest.mark.parametrize("encoder", ENCODERS)
def test_every_encoder_trains_and_evaluates(graph, encoder):
    mc = ModelConfig(encoder=encoder, hidden=16, sign_hops=2)
    r = Trainer(mc, TrainConfig(epochs=1, **FAST)).fit(graph, progress=False)
    assert len(r.history) == 1 and np.isfinite(r.history[0]["train_loss"])
    assert not r.model.training
    m = evaluate(r.model, graph, r.task_names, "test")
    assert m.f1.shape == (6,) and 0 <= m.macro_roc_auc <= 1
    assert r.timings["seed_nodes_per_s"] > 0 and r.timings["pairs_per_epoch"] == int(
        graph.train_mask.sum())


def test_training_learns_planted_tasks(graph):
    r = Trainer(ModelConfig(encoder="sage", hidden=32), TrainConfig(epochs=15, lr=0.02, **FAST)).fit(
        graph, progress=False)
    m = evaluate(r.model, graph, r.task_names, "test")
    assert m.macro_roc_auc > 0.8, m.table()
    assert r.history[0]["train_loss"] > r.history[-1]["train_loss"]


def test_fit_is_deterministic_and_leaves_global_rng_alone(graph):
    cfg = TrainConfig(epochs=2, **FAST)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = Trainer(ModelConfig(encoder="sage", hidden=8), cfg).fit(graph, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    b = Trainer(ModelConfig(encoder="sage", hidden=8), cfg).fit(graph, progress=False)
    c = Trainer(ModelConfig(encoder="sage", hidden=8), cfg.replace(seed=1)).fit(graph, progress=False)
    assert _same_state(a.model, b.model) and not _same_state(a.model, c.model)


def test_early_stopping_keeps_best_epoch(graph):
    r = Trainer(ModelConfig(encoder="sage", hidden=8), TrainConfig(epochs=30, patience=2, lr=0.05, metric="loss",
                                                   **FAST)).fit(graph, progress=False)
    vals = [h["val_loss"] for h in r.history]
    assert r.best_epoch == int(np.argmin(vals)) + 1
    if r.stopped_early:
        assert len(vals) == r.best_epoch + 2
    assert r.val_metrics.mean_loss == pytest.approx(min(vals), rel=1e-5)


def test_resume_reproduces_uninterrupted_run(graph, tmp_path):
    mc = ModelConfig(encoder="sage", hidden=8)
    full = Trainer(mc, TrainConfig(epochs=4, patience=0, **FAST)).fit(
        graph, out_dir=tmp_path / "a", progress=False)
    # "Interrupted" after 2 epochs, then resumed with the full epoch budget.
    Trainer(mc, TrainConfig(epochs=2, patience=0, **FAST)).fit(
        graph, out_dir=tmp_path / "b", progress=False)
    resumed = Trainer(mc, TrainConfig(epochs=4, patience=0, **FAST)).fit(
        graph, out_dir=tmp_path / "b", resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.history == full.history
    assert _same_state(full.model, resumed.model)
    last_a = load_checkpoint(tmp_path / "a" / "last.pt")
    last_b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert _same_state(last_a.model, last_b.model)
    # A changed setting is refused, with the setting named.
    with pytest.raises(GraphMTLError, match="lr"):
        Trainer(mc, TrainConfig(epochs=5, lr=0.5, **FAST)).fit(
            graph, out_dir=tmp_path / "b", resume=True, progress=False)


def test_checkpoint_round_trip_weights_only(graph, tmp_path):
    r = Trainer(ModelConfig(encoder="gat", hidden=8), TrainConfig(epochs=1, **FAST)).fit(
        graph, ["t0", "t2"], out_dir=tmp_path, progress=False)
    raw = torch.load(tmp_path / "model.pt", weights_only=True)
    assert raw["task_names"] == ["t0", "t2"]
    ck = load_checkpoint(tmp_path / "model.pt")
    assert ck.task_names == ["t0", "t2"] and ck.model_config == r.model.config
    assert ck.train_config.fanouts == (10, 5) and ck.data_hash == graph_digest(graph)
    assert ck.epoch == r.best_epoch and not ck.model.training
    assert _same_state(ck.model, r.model)
    torch.testing.assert_close(predict_logits(ck.model, graph), predict_logits(r.model, graph),
                               rtol=0, atol=0)
    # Direct save / load too.
    save_checkpoint(tmp_path / "x.pt", r.model, task_names=["a", "b"], epoch=3)
    assert load_checkpoint(tmp_path / "x.pt").epoch == 3
    (tmp_path / "bad.pt").write_text("nope")
    with pytest.raises(GraphMTLError, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt")


def test_warm_start_copies_head_rows_by_name(graph, tmp_path):
    base = Trainer(ModelConfig(encoder="sage", hidden=8), TrainConfig(epochs=1, **FAST)).fit(
        graph, out_dir=tmp_path, progress=False)
    # epochs=1 with lr tiny: the copy must be exact before training, so check via warm_start.
    from graphmtl.training import warm_start

    model = MultiTaskGNN(graph.num_features, 2, ModelConfig(encoder="sage", hidden=8))
    warm_start(model, load_checkpoint(tmp_path / "model.pt"), ["t4", "t1"], graph_digest(graph))
    assert torch.equal(model.head.weight, base.model.head.weight[[4, 1]])
    assert torch.equal(model.head.bias, base.model.head.bias[[4, 1]])
    enc_a, enc_b = model.encoder.state_dict(), base.model.encoder.state_dict()
    assert all(torch.equal(enc_a[k], enc_b[k]) for k in enc_a)
    # Through fit: fine-tuning starts from the base model (first-epoch loss is already low).
    tuned = Trainer(ModelConfig(encoder="sage", hidden=8), TrainConfig(epochs=1, lr=1e-9, **FAST)).fit(
        graph, ["t4", "t1"], init_from=tmp_path / "model.pt", progress=False)
    torch.testing.assert_close(tuned.model.head.weight, base.model.head.weight[[4, 1]])


def test_warm_start_weights_are_the_first_candidate(graph, tmp_path):
    mc = ModelConfig(encoder="sage", hidden=8)
    Trainer(mc, TrainConfig(epochs=3, **FAST)).fit(graph, out_dir=tmp_path, progress=False)
    base = load_checkpoint(tmp_path / "model.pt").model
    base_val = evaluate(base, graph, graph.task_names, "val").ap[[4, 1]].mean()
    # Epoch 0 is the copied weights, validated like any epoch; the best epoch is kept.
    tc = TrainConfig(epochs=2, patience=0, **FAST)
    tuned = Trainer(mc, tc).fit(graph, ["t4", "t1"], init_from=tmp_path / "model.pt",
                                progress=False)
    assert [h["epoch"] for h in tuned.history] == [0, 1, 2] and tuned.epochs_run == 2
    assert tuned.history[0]["train_loss"] is None
    assert tuned.history[0]["val_ap"] == pytest.approx(base_val)
    assert tuned.best_epoch == int(np.argmax([h["val_ap"] for h in tuned.history]))
    # Steps too small to change a ranking: no epoch beats the copy, which is kept (ties keep
    # the earliest), weights and all.
    tc = tc.replace(lr=1e-12)
    tuned = Trainer(mc, tc).fit(graph, ["t4", "t1"], init_from=tmp_path / "model.pt",
                                out_dir=tmp_path / "ft", progress=False)
    assert tuned.best_epoch == 0
    assert torch.equal(tuned.model.head.weight, base.head.weight[[4, 1]])
    assert load_checkpoint(tmp_path / "ft" / "model.pt").epoch == 0
    # Resuming the finished run validates nothing again and keeps epoch 0.
    again = Trainer(mc, tc).fit(
        graph, ["t4", "t1"], init_from=tmp_path / "model.pt", out_dir=tmp_path / "ft",
        resume=True, progress=False)
    assert [h["epoch"] for h in again.history] == [0, 1, 2] and again.best_epoch == 0
    # Without a warm start there is no epoch 0.
    fresh = Trainer(mc, TrainConfig(epochs=1, **FAST)).fit(graph, ["t4"], progress=False)
    assert [h["epoch"] for h in fresh.history] == [1] and fresh.epochs_run == 1


# ---------------------------------------------------------------------- inference
def test_predict_logits_definition(graph):
    torch.manual_seed(0)
    model = MultiTaskGNN(graph.num_features, graph.num_tasks, ModelConfig(encoder="sage", hidden=8)).eval()
    nodes = torch.tensor([5, 3, 100, 7])
    got = predict_logits(model, graph, nodes, batch_size=2)
    with torch.no_grad():
        full = model(graph.x, graph.edge_index)[nodes]
        loader = inference_loader(graph, model.config, nodes, batch_size=2, fanouts=[-1, -1])
        batched = torch.cat([model(b.x, b.edge_index)[:b.batch_size] for b in loader])
    assert torch.equal(got, full)
    torch.testing.assert_close(batched, full, atol=1e-5, rtol=1e-5)   # SAGE: all neighbours
    b = next(iter(make_loader(graph, nodes, [2, 2], batch_size=4)))
    assert torch.equal(b.n_id[:b.batch_size], nodes)
    assert torch.equal(predict_logits(model, graph)[nodes], got)


@pytest.mark.parametrize("encoder", ["sage", "gat", "gin"])
def test_layer_trimming_keeps_seed_outputs(graph, encoder):
    from graphmtl.training.loader import hop_counts

    torch.manual_seed(0)
    model = MultiTaskGNN(graph.num_features, graph.num_tasks,
                         ModelConfig(encoder=encoder, hidden=8)).eval()
    for fanouts in ([3, 2], [-1, -1]):
        for b in make_loader(graph, None, fanouts, batch_size=50):
            counts = hop_counts(b.edge_index, b.x.shape[0], b.batch_size, 2)
            assert counts is not None and sum(counts[0]) == b.x.shape[0]
            with torch.no_grad():
                ref = model.encoder(b.x, b.edge_index)[:b.batch_size]
                got = model.encoder(b.x, b.edge_index, *counts)[:b.batch_size]
            torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_sign_inputs_cached_and_shared_by_subsets(graph):
    mc = ModelConfig(encoder="sign", sign_hops=2)
    a = node_inputs(graph, mc)
    assert a.shape == (graph.num_nodes, 3 * graph.num_features)
    assert node_inputs(graph.select_tasks([0, 1]), mc) is a


# ---------------------------------------------------------------------- bad input
def test_bad_input_errors(graph, tmp_path):
    tr = Trainer(ModelConfig(encoder="sage", hidden=8), TrainConfig(epochs=1, **FAST))
    with pytest.raises(GraphMTLError, match="unknown"):
        tr.fit(graph, ["t1", "nope"], progress=False)
    with pytest.raises(GraphMTLError, match="empty"):
        tr.fit(graph, [], progress=False)
    with pytest.raises(GraphMTLError, match="fanouts"):
        Trainer(ModelConfig(encoder="sage", num_layers=3), TrainConfig(fanouts=[10, 5]))
    with pytest.raises(GraphMTLError, match="metric"):
        TrainConfig(metric="accuracy")
    with pytest.raises(GraphMTLError, match="outputs"):
        model = MultiTaskGNN(graph.num_features, 2, ModelConfig(encoder="sage", hidden=8))
        evaluate(model, graph, None)
    tr.fit(graph, ["t0", "t1"], out_dir=tmp_path, progress=False)
    other = graph.select_tasks([2, 3])
    other.task_names[:] = ["u2", "u3"]
    with pytest.raises(GraphMTLError, match="not among the checkpoint"):
        tr.fit(other, init_from=tmp_path / "model.pt", progress=False)
    with pytest.raises(GraphMTLError, match="hidden"):
        Trainer(ModelConfig(encoder="sage", hidden=4), TrainConfig(epochs=1, **FAST)).fit(
            graph, ["t0"], init_from=tmp_path / "model.pt", progress=False)
    with pytest.raises(GraphMTLError, match="not found"):
        tr.fit(graph, init_from=tmp_path / "missing.pt", progress=False)
