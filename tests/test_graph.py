import numpy as np
import pytest
import torch

from graphmtl.data import MultiTaskGraph, SplitConfig, stratified_task_splits
from graphmtl.errors import GraphMTLError


def _toy(N=200, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(N, n, generator=g) < 0.3
    train, val, test = stratified_task_splits(y, None, SplitConfig(seed=seed))
    ei = torch.randint(0, N, (2, 600), generator=g)
    return MultiTaskGraph(x=torch.randn(N, 8, generator=g), edge_index=ei, y=y, train_mask=train,
                          val_mask=val, test_mask=test, task_names=[f"t{i}" for i in range(n)])


def test_splits_disjoint_cover_and_fractions():
    N, n = 500, 6
    y = torch.rand(N, n, generator=torch.Generator().manual_seed(1)) < 0.2
    tr, va, te = stratified_task_splits(y, None, SplitConfig(train=0.2, val=0.2, seed=3))
    assert not (tr & va).any() and not (tr & te).any() and not (va & te).any()
    assert (tr | va | te).all()
    for t in range(n):
        for cls in (True, False):
            members = y[:, t] == cls
            count = int(members.sum())
            assert int((tr[:, t] & members).sum()) == round(0.2 * count)
            assert int((va[:, t] & members).sum()) == round(0.2 * count)


def test_splits_deterministic_and_seed_dependent():
    y = torch.rand(300, 3, generator=torch.Generator().manual_seed(0)) < 0.3
    a = stratified_task_splits(y, None, SplitConfig(seed=5))
    b = stratified_task_splits(y, None, SplitConfig(seed=5))
    c = stratified_task_splits(y, None, SplitConfig(seed=6))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_splits_respect_labelled_mask():
    y = torch.rand(300, 2, generator=torch.Generator().manual_seed(0)) < 0.3
    labelled = torch.ones_like(y)
    labelled[:100, 0] = False
    tr, va, te = stratified_task_splits(y, labelled, SplitConfig())
    assert not (tr | va | te)[:100, 0].any()
    assert (tr | va | te)[:, 1].all()


def test_split_too_few_positives_names_task():
    y = torch.zeros(100, 2, dtype=torch.bool)
    y[:50, 0] = True
    y[0, 1] = True
    with pytest.raises(GraphMTLError, match="task 'b'.*1 positives"):
        stratified_task_splits(y, None, SplitConfig(), task_names=["a", "b"])


def test_label_scarce_protocol_fixes_training_positives():
    N = 600
    y = torch.zeros(N, 3, dtype=torch.bool)
    y[:200, 0] = True          # large community: exactly train_pos training positives
    y[200:260, 1] = True       # at most pos_cutoff positives: the train fraction instead
    y[300:500, 2] = True
    config = SplitConfig(train=0.2, val=0.2, seed=0, train_pos=10, pos_cutoff=100)
    tr, va, te = stratified_task_splits(y, None, config)
    assert int((tr[:, 0] & y[:, 0]).sum()) == 10 and int((tr[:, 2] & y[:, 2]).sum()) == 10
    assert int((tr[:, 1] & y[:, 1]).sum()) == round(0.2 * 60)
    for t in range(3):
        pos, neg = y[:, t], ~y[:, t]
        assert int((va[:, t] & pos).sum()) == round(0.2 * int(pos.sum()))
        assert int((tr[:, t] & neg).sum()) == round(0.2 * int(neg.sum()))  # negatives 20/20/60
    assert (tr | va | te).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(train_pos=0), "train_pos: must be >= 1"),
    (dict(train_pos=2, pos_cutoff=-1), "pos_cutoff: must be >= 0"),
    (dict(pos_cutoff=10), "pos_cutoff: only applies with train_pos"),
])
def test_label_scarce_protocol_rejects_bad_values(kwargs, match):
    with pytest.raises(GraphMTLError, match=match):
        SplitConfig(**kwargs)


def test_label_scarce_protocol_needs_enough_positives():
    y = torch.zeros(100, 1, dtype=torch.bool)
    y[:12, 0] = True           # 10 train + 2 val leave no test positive
    with pytest.raises(GraphMTLError, match="task 't'.*12 positives.*10 train positives"):
        stratified_task_splits(y, None, SplitConfig(train_pos=10), task_names=["t"])


def test_save_load_round_trip(tmp_path):
    g = _toy()
    g.provenance = {"name": "toy", "seed": 0}
    g.save(tmp_path / "g.npz")
    h = MultiTaskGraph.load(tmp_path / "g.npz")
    for name in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(g, name), getattr(h, name)), name
    assert h.task_names == g.task_names and h.provenance == g.provenance


def test_load_rejects_non_dataset(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(GraphMTLError, match="not a graphmtl dataset"):
        MultiTaskGraph.load(tmp_path / "other.npz")
    with pytest.raises(GraphMTLError, match="file not found"):
        MultiTaskGraph.load(tmp_path / "missing.npz")


def test_task_index_and_select():
    g = _toy()
    assert g.task_index("all").tolist() == [0, 1, 2, 3]
    assert g.task_index(["t2", 0]).tolist() == [2, 0]
    assert g.task_index("t1,t3").tolist() == [1, 3]
    sub = g.select_tasks([3, 1])
    assert sub.task_names == ["t3", "t1"] and torch.equal(sub.y[:, 0], g.y[:, 3])
    with pytest.raises(GraphMTLError, match="task 'nope': unknown"):
        g.task_index(["nope"])
    with pytest.raises(GraphMTLError, match="empty"):
        g.task_index([])
    with pytest.raises(GraphMTLError, match="out of range"):
        g.task_index([7])
    with pytest.raises(GraphMTLError, match="more than once"):
        g.task_index([1, 1])


def test_validate_rejects_overlapping_masks():
    g = _toy()
    with pytest.raises(GraphMTLError, match="overlap"):
        MultiTaskGraph(x=g.x, edge_index=g.edge_index, y=g.y, train_mask=g.train_mask,
                       val_mask=g.train_mask, test_mask=g.test_mask, task_names=g.task_names)


def test_summary_counts():
    g = _toy()
    s = g.summary()
    assert s["nodes"] == 200 and s["tasks"] == 4 and s["edges"] == 300 and s["features"] == 8
    assert s["train_rows"]["total"] == int(g.train_mask.sum())


def test_preview_shortens_long_lists():
    from graphmtl.utils.text import preview

    assert preview(["a", "b"]) == "a, b"
    assert preview(list("abcdefg"), k=3) == "a, b, c, ... (7 in all)"
