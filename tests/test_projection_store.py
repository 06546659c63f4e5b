"""The bounded, resumable projection store written by GradientProjector.project."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from graphmtl.errors import GraphMTLError
from graphmtl.projection import GradientProjector, ProjectionConfig, ProjectionStore, select_rows

sys.path.insert(0, str(Path(__file__).parent))
from test_projection import small_graph, small_model  # noqa: E402

warnings.filterwarnings("ignore", message=".*pyg-lib.*")
ROOT = Path(__file__).resolve().parents[1]


def test_store_exact_when_budget_covers_all_rows(tmp_path):
    graph = small_graph(N=50, n=3)
    model = small_model(graph, "sage")
    cfg = ProjectionConfig(dim=6, seed=1, batch_size=16, train_budget=1000, val_budget=None)
    store = GradientProjector(cfg).project(model, graph, tmp_path / "s", progress=False)
    assert isinstance(store, ProjectionStore) and store.dim == 6
    assert store.task_names == graph.task_names
    all_nodes = torch.arange(graph.num_nodes)
    f0, z = GradientProjector(cfg).project_nodes(model, graph, all_nodes)
    for split in ("train", "val"):
        mask = graph.mask(split)
        assert store.manifest["rows"][split] == int(mask.sum())
        for t in range(graph.num_tasks):
            rows = store.rows(split, t)
            nodes = torch.nonzero(mask[:, t]).flatten()
            np.testing.assert_array_equal(rows.node, nodes.numpy())
            np.testing.assert_array_equal(rows.y, graph.y[nodes, t].numpy().astype(np.uint8))
            np.testing.assert_array_equal(rows.weight, np.ones(len(nodes), np.float32))
            np.testing.assert_allclose(rows.f0, f0[nodes, t].numpy(), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(rows.z, z[nodes, t].numpy(), rtol=1e-5, atol=1e-6)
    m = store.manifest
    for key in ("seed", "dim", "params", "model_sha256", "data_sha256", "budgets", "task_names"):
        assert key in m
    assert m["budgets"] == {"train": 1000, "val": None}


def test_select_rows_budget_and_weights():
    g = torch.Generator().manual_seed(0)
    N, n = 500, 4
    y = torch.zeros(N, n, dtype=torch.bool)
    y[:20, 0] = True      # few positives: all kept
    y[:490, 1] = True     # many positives, few negatives: all negatives kept
    y[:250, 2] = True     # balanced: half / half
    mask = torch.rand(N, n, generator=g) < 0.9
    mask[:, 3] = False
    mask[:5, 3] = True    # fewer rows than the budget: exact
    budget = 60
    sel = select_rows(y, mask, budget, seed=3, split="train")
    sizes = np.diff(sel.task_ptr)
    assert np.all(sizes <= budget) and sizes[3] == 5
    for t in range(n):
        sl = slice(sel.task_ptr[t], sel.task_ptr[t + 1])
        nodes, ys, wts = sel.node[sl], sel.y[sl].astype(bool), sel.weight[sl]
        assert np.all(np.diff(nodes) > 0) and np.all(mask[nodes, t].numpy())
        np.testing.assert_array_equal(ys, y[nodes, t].numpy())
        pos = int((mask[:, t] & y[:, t]).sum())
        neg = int((mask[:, t] & ~y[:, t]).sum())
        # weighted counts equal the full class counts (Horvitz-Thompson)
        assert wts[ys].sum() == pytest.approx(pos, rel=1e-6)
        assert wts[~ys].sum() == pytest.approx(neg, rel=1e-6)
    t0 = slice(sel.task_ptr[0], sel.task_ptr[1])
    assert sel.y[t0].sum() == int((mask[:, 0] & y[:, 0]).sum())       # every positive kept
    assert np.all(sel.weight[t0][sel.y[t0] == 1] == 1)
    t1 = slice(sel.task_ptr[1], sel.task_ptr[2])
    assert (sel.y[t1] == 0).sum() == int((mask[:, 1] & ~y[:, 1]).sum())  # every negative kept
    # seeded: same seed same rows, other seed other rows
    again = select_rows(y, mask, budget, seed=3, split="train")
    np.testing.assert_array_equal(again.node, sel.node)
    other = select_rows(y, mask, budget, seed=4, split="train")
    assert not np.array_equal(other.node, sel.node)


def test_store_respects_budget_and_reuses_complete_store(tmp_path):
    graph = small_graph(N=80, n=3)
    model = small_model(graph, "sign")
    cfg = ProjectionConfig(dim=4, batch_size=32, train_budget=10, val_budget=8)
    store = GradientProjector(cfg).project(model, graph, tmp_path / "s", progress=False)
    assert np.all(np.diff(store.task_ptr("train")) <= 10)
    assert np.all(np.diff(store.task_ptr("val")) <= 8)
    before = (tmp_path / "s" / "train.z.npy").stat().st_mtime_ns
    again = GradientProjector(cfg).project(model, graph, tmp_path / "s", progress=False)
    assert (tmp_path / "s" / "train.z.npy").stat().st_mtime_ns == before  # nothing recomputed
    np.testing.assert_array_equal(again.array("train", "z"), store.array("train", "z"))
    # other settings into the same directory: refused with a one-line message
    with pytest.raises(GraphMTLError, match="different inputs or settings"):
        GradientProjector(ProjectionConfig(dim=5, batch_size=32)).project(
            model, graph, tmp_path / "s", progress=False)
    # ... unless asked to start over
    (tmp_path / "s" / "notes.txt").write_text("not ours")
    fresh = GradientProjector(ProjectionConfig(dim=5, batch_size=32)).project(
        model, graph, tmp_path / "s", progress=False, resume=False)
    assert fresh.dim == 5 and fresh.array("train", "z").shape[1] == 5
    assert (tmp_path / "s" / "notes.txt").read_text() == "not ours"


def test_model_data_mismatch():
    graph = small_graph(n=3)
    model = small_model(small_graph(n=4), "sage")
    with pytest.raises(GraphMTLError, match="4 task outputs.*3 tasks"):
        GradientProjector().project(model, graph, "/nonexistent/never", progress=False)


def test_resume_in_process_is_bit_identical(tmp_path):
    graph = small_graph(N=60, n=3)
    model = small_model(graph, "gat")
    cfg = ProjectionConfig(dim=5, batch_size=8, fanouts=(3, 2), train_budget=12)
    proj = GradientProjector(cfg)
    proj.project(model, graph, tmp_path / "ref", progress=False)
    assert proj.project(model, graph, tmp_path / "cut", progress=False, stop_after=3) is None
    prog = json.loads((tmp_path / "cut" / "progress.json").read_text())
    assert prog["batches_done"] == 3 < prog["num_batches"]
    with pytest.raises(GraphMTLError, match="incomplete"):
        ProjectionStore(tmp_path / "cut")
    proj.project(model, graph, tmp_path / "cut", progress=False)
    _assert_same_store(tmp_path / "ref", tmp_path / "cut")


_WORKER = textwrap.dedent("""
    import sys, warnings
    warnings.filterwarnings("ignore")
    sys.path.insert(0, {tests!r})
    import torch
    from test_projection import small_graph, small_model
    from graphmtl.projection import GradientProjector, ProjectionConfig
    torch.set_num_threads(1)
    graph = small_graph(N=240, n=5)
    model = small_model(graph, "sage", hidden=16)
    cfg = ProjectionConfig(dim=24, batch_size=4, fanouts=(5, 5), train_budget=40, val_budget=30,
                           direction_chunk=8)
    GradientProjector(cfg).project(model, graph, sys.argv[1], progress=False)
""")


def test_kill9_midway_then_resume_is_bit_identical(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, str(script)]
    subprocess.run(run + [str(tmp_path / "ref")], check=True, env=env, timeout=300)

    cut = tmp_path / "cut"
    proc = subprocess.Popen(run + [str(cut)], env=env)
    killed_at = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        prog = cut / "progress.json"
        if prog.is_file():
            done = json.loads(prog.read_text())
            if done["batches_done"] >= 3:
                proc.send_signal(signal.SIGKILL)
                killed_at = done
                break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, "worker was not killed"
    assert killed_at["batches_done"] < killed_at["num_batches"]
    assert not json.loads((cut / "manifest.json").read_text())["complete"]

    subprocess.run(run + [str(cut)], check=True, env=env, timeout=300)
    _assert_same_store(tmp_path / "ref", cut)


def _assert_same_store(a: Path, b: Path) -> None:
    files = sorted(p.name for p in a.glob("*.npy"))
    assert files == sorted(p.name for p in b.glob("*.npy")) and len(files) == 12
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert ma == mb and ma["complete"]


def test_digests_track_content():
    from graphmtl.projection import labelled_graph_digest, model_digest

    graph = small_graph(n=3)
    model = small_model(graph, "sage")
    assert model_digest(model) == model_digest(small_model(graph, "sage"))
    with torch.no_grad():
        model.head.bias[0] += 1e-3
    assert model_digest(model) != model_digest(small_model(graph, "sage"))
    assert labelled_graph_digest(graph) == labelled_graph_digest(small_graph(n=3))
    other = small_graph(n=3)
    other.val_mask[0, 0] = ~other.val_mask[0, 0]
    other.train_mask[0, 0] = False
    other.test_mask[0, 0] = False
    assert labelled_graph_digest(other) != labelled_graph_digest(graph)
