import json

import numpy as np
import pytest
import torch

from graphmtl.affinity import GradTAGEstimator, pair_subsets, pairwise_affinity, symmetrize
from graphmtl.affinity.baselines import (TrainedSubsetScores, check_store_matches,
                                         gradient_cosine, val_rows_from_store)
from graphmtl.data import MultiTaskGraph, SplitConfig, stratified_task_splits
from graphmtl.errors import GraphMTLError
from graphmtl.models import ModelConfig
from graphmtl.projection.store import StoreWriter
from graphmtl.training import TrainConfig, Trainer


pytestmark = pytest.mark.usefixtures("one_thread")


def _graph(N=120, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 6, generator=g)
    y = (x[:, :n] + 0.5 * torch.randn(N, n, generator=g)) > 0.3
    tr, va, te = stratified_task_splits(y, None, SplitConfig(seed=seed))
    ei = torch.randint(0, N, (2, 400), generator=g)
    return MultiTaskGraph(x=x, edge_index=ei, y=y, train_mask=tr, val_mask=va, test_mask=te,
                          task_names=[f"t{i}" for i in range(n)])


MC = ModelConfig(encoder="sage", hidden=8, num_layers=1, dropout=0.0)
TC = TrainConfig(epochs=3, batch_size=64, fanouts=(5,), patience=0, seed=0)


def test_trained_scores_scratch_resume_and_pairwise(tmp_path):
    graph = _graph()
    P = pair_subsets(4, num_pairs=2, seed=0)  # 4 singletons + 2 pairs
    out = tmp_path / "res.jsonl"
    runner = TrainedSubsetScores(MC, TC, mode="scratch", workers=1, progress=False)
    res = runner.fit(graph, P, results=out).result_
    assert res.scores.shape == (6, 4)
    assert np.isfinite(res.scores[P]).all() and np.isnan(res.scores[~P]).all()
    assert (res.scores[P] < 0).all() and (res.seconds > 0).all()
    # the score is the trainer's model's validation BCE of that task
    single = Trainer(MC, TC).fit(graph, ["t2"], progress=False)
    from graphmtl.training import evaluate

    loss = evaluate(single.model, graph, ["t2"], split="val").loss[0]
    assert res.scores[2, 2] == pytest.approx(-loss, rel=1e-5)
    lines = out.read_text().splitlines()
    assert "header" in json.loads(lines[0]) and len(lines) == 7
    # resume: a cut-off last line is dropped and only that subset is retrained
    out.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])
    again = TrainedSubsetScores(MC, TC, workers=1, progress=False).fit(graph, P, results=out)
    np.testing.assert_allclose(again.result_.scores, res.scores, rtol=1e-6)
    assert len(out.read_text().splitlines()) == 7
    T = pairwise_affinity(P, res.scores)
    assert np.isfinite(T[P[4:].nonzero()[1][0], P[4:].nonzero()[1][1]])
    with pytest.raises(GraphMTLError, match="other settings"):
        TrainedSubsetScores(MC, TC.replace(epochs=4), workers=1, progress=False).fit(
            graph, P, results=out)


def test_finetune_process_pool_and_store_checks(tmp_path):
    from graphmtl.projection import GradientProjector, ProjectionConfig

    graph = _graph(seed=1)
    base = Trainer(MC, TC).fit(graph, "all", out_dir=tmp_path / "base", progress=False)
    ckpt = base.checkpoint_path
    store = GradientProjector(ProjectionConfig(dim=6, seed=0)).project(
        base.model, graph, tmp_path / "store", progress=False)
    check_store_matches(store, graph, ckpt)
    other = _graph(seed=2)
    with pytest.raises(GraphMTLError, match="store/data mismatch"):
        check_store_matches(store, other)
    from graphmtl.training import graph_digest, save_checkpoint

    with torch.no_grad():
        base.model.head.bias.add_(0.1)  # another model, same tasks
    moved = save_checkpoint(tmp_path / "moved.pt", base.model, task_names=base.task_names,
                            data_hash=graph_digest(graph))
    with pytest.raises(GraphMTLError, match="store/model mismatch"):
        check_store_matches(store, graph, moved)

    subsets = [["t0", "t1"], ["t1", "t2", "t3"], ["t3"]]
    rows = val_rows_from_store(store, graph)
    ft = TrainedSubsetScores(MC, TC.replace(epochs=2), mode="finetune", init_from=ckpt,
                             workers=2, progress=False).fit(graph, subsets, val_rows=rows)
    res = ft.result_
    M = res.subsets
    assert np.isfinite(res.scores[M]).all() and np.isnan(res.scores[~M]).all()
    # the estimate is on the same footing: same rows, same (i, S)
    est = GradTAGEstimator().fit(store, subsets=subsets)
    assert est.scores_.shape == res.scores.shape
    assert np.isfinite(est.scores_[M]).all()
    with pytest.raises(GraphMTLError, match="needs the base checkpoint"):
        TrainedSubsetScores(mode="finetune")


def test_gradient_cosine_from_store(tmp_path):
    d, counts = 3, [4, 4, 4]
    ptr = {s: np.r_[0, np.cumsum(counts)] for s in ("train", "val")}
    w = StoreWriter(tmp_path / "s", ptr, d, {"task_names": ["a", "b", "c"]})
    z = np.zeros((12, d), np.float32)
    z[0:4, 0] = 1
    z[4:8, 0] = 2
    z[8:12, 1] = 1
    for s in ("train", "val"):
        w.arrays[(s, "z")][:] = z
        w.arrays[(s, "f0")][:] = 0
        w.arrays[(s, "y")][:] = 1
        w.arrays[(s, "weight")][:] = 1
    store = w.finalize()
    A = gradient_cosine(store)
    assert A[0, 1] == pytest.approx(1) and A[0, 2] == pytest.approx(0)
    assert (np.diag(A) == 0).all()
    B = gradient_cosine(store, kind="logit")
    np.testing.assert_allclose(A, B)  # same directions here (y = 1, f0 = 0: coefficient -1/2)
    np.testing.assert_allclose(symmetrize(A), A)


def test_trained_affinity_fine_tunes_every_subset_from_init_from(tmp_path):
    from graphmtl.affinity import TrainedAffinityEstimator
    from graphmtl.training import evaluate, load_checkpoint

    graph = _graph(n=5, seed=3)
    base = Trainer(MC, TC).fit(graph, "all", out_dir=tmp_path / "base", progress=False)
    # A learning rate too small to move: every fine-tuned subset model keeps the base weights,
    # so each task scores what the base model scores, in every subset.
    est = TrainedAffinityEstimator(6, 3, seed=0, model_config=MC,
                                   train_config=TC.replace(lr=1e-12),
                                   init_from=base.checkpoint_path, workers=1,
                                   progress=False).fit(graph, results=tmp_path / "ft.jsonl")
    base_ap = evaluate(load_checkpoint(base.checkpoint_path).model, graph, graph.task_names,
                       split="val").ap
    M = est.subsets_
    for i in range(graph.num_tasks):
        np.testing.assert_allclose(est.scores_["ap"][M[:, i], i], base_ap[i], atol=1e-6)
    # Scores that never vary carry no affinity.
    np.testing.assert_allclose(est.affinity_, 0.0, atol=1e-12)
    # From scratch the same subsets score differently (another model per subset).
    scratch = TrainedAffinityEstimator(6, 3, seed=0, model_config=MC, train_config=TC,
                                       workers=1, progress=False).fit(graph)
    np.testing.assert_array_equal(scratch.subsets_, M)
    assert not np.allclose(scratch.scores_["ap"][M], est.scores_["ap"][M])
