import json

import numpy as np
import pytest
import torch

from graphmtl.testing.stores import write_synthetic_store
from graphmtl.cli import main


pytestmark = pytest.mark.usefixtures("one_thread")


def test_affinity_cli_writes_matrix_and_summary(tmp_path, capsys):
    write_synthetic_store(tmp_path / "s", n=8, d=10, train_rows=60, val_rows=40, seed=0)
    rc = main(["affinity", "--store", str(tmp_path / "s"), "--subsets", "40", "--size", "2-4",
               "--standardize", "--out", str(tmp_path / "out"), "--threads", "1"])
    assert rc == 0
    A = np.load(tmp_path / "out" / "affinity.npy")
    assert A.shape == (8, 8) and np.allclose(A, A.T) and (np.diag(A) == 0).all()
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["num_subsets"] == 40 and s["task_names"][0] == "task0"
    assert s["params"]["standardize"] is True and s["solver"]["converged"] == 40
    assert np.load(tmp_path / "out" / "subsets.npy").shape == (40, 8)
    assert "affinity.npy: 8 tasks, 40 subsets" in capsys.readouterr().out
    # pairwise and ensemble
    write_synthetic_store(tmp_path / "s2", n=8, d=10, train_rows=60, val_rows=40, seed=1)
    assert main(["affinity", "--store", str(tmp_path / "s"), "--store", str(tmp_path / "s2"),
                 "--pairwise", "--out", str(tmp_path / "pw")]) == 0
    s = json.loads((tmp_path / "pw" / "summary.json").read_text())
    assert s["ensemble"] == 2 and s["spread"] > 0
    assert np.load(tmp_path / "pw" / "affinity_std.npy").shape == (8, 8)


def test_affinity_cli_errors_are_one_line(tmp_path, capsys):
    write_synthetic_store(tmp_path / "s", n=4, d=5, train_rows=20, val_rows=20)
    assert main(["affinity", "--store", str(tmp_path / "s"), "--size", "5",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("graphmtl: error:") and "exceeds the number of tasks n = 4" in err
    assert "\n" not in err
    (tmp_path / "subsets.json").write_text(json.dumps([["task0", "task9"]]))
    assert main(["affinity", "--store", str(tmp_path / "s"), "--subsets-file",
                 str(tmp_path / "subsets.json"), "--out", str(tmp_path / "o")]) == 2
    assert "unknown task 'task9'" in capsys.readouterr().err
    assert main(["affinity", "--store", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "not a projection store" in capsys.readouterr().err
    assert main(["affinity", "--store", str(tmp_path / "s"), "--size", "x",
                 "--out", str(tmp_path / "o")]) == 2
    assert "--size" in capsys.readouterr().err


def test_baseline_cli_cosine_and_trained(tmp_path, capsys):
    from graphmtl.data import MultiTaskGraph, SplitConfig, stratified_task_splits
    from graphmtl.models import ModelConfig
    from graphmtl.projection import GradientProjector, ProjectionConfig
    from graphmtl.training import TrainConfig, Trainer

    g = torch.Generator().manual_seed(0)
    N, n = 100, 3
    x = torch.randn(N, 5, generator=g)
    y = x[:, :n] > 0.2
    tr, va, te = stratified_task_splits(y, None, SplitConfig(seed=0))
    graph = MultiTaskGraph(x=x, edge_index=torch.randint(0, N, (2, 300), generator=g), y=y,
                           train_mask=tr, val_mask=va, test_mask=te,
                           task_names=["a", "b", "c"])
    graph.save(tmp_path / "g.npz")
    mc = ModelConfig(encoder="sage", hidden=8, num_layers=1, dropout=0.0)
    tc = TrainConfig(epochs=2, batch_size=64, fanouts=(5,), patience=0)
    base = Trainer(mc, tc).fit(graph, "all", out_dir=tmp_path / "base", progress=False)
    GradientProjector(ProjectionConfig(dim=4)).project(base.model, graph, tmp_path / "store",
                                                       progress=False)
    ck, st, data = str(base.checkpoint_path), str(tmp_path / "store"), str(tmp_path / "g.npz")
    assert main(["baseline", "cosine", "--store", st, "--checkpoint", ck,
                 "--out", str(tmp_path / "cos")]) == 0
    assert np.load(tmp_path / "cos" / "affinity.npy").shape == (3, 3)
    assert main(["baseline", "pairwise", "--data", data, "--checkpoint", ck, "--store", st,
                 "--workers", "1", "--no-progress", "--out", str(tmp_path / "pw")]) == 0
    lines = (tmp_path / "pw" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3 + 3  # header, singletons, pairs
    A = np.load(tmp_path / "pw" / "affinity.npy")
    assert A.shape == (3, 3) and np.allclose(A, A.T)
    assert main(["baseline", "finetune", "--data", data, "--checkpoint", ck, "--subsets", "2",
                 "--size", "2", "--workers", "1", "--no-progress",
                 "--out", str(tmp_path / "ft")]) == 0
    s = json.loads((tmp_path / "ft" / "summary.json").read_text())
    assert s["subsets"] == 2 and s["train_seconds_total"] > 0
    capsys.readouterr()
    assert main(["baseline", "trained", "--checkpoint", ck, "--out", str(tmp_path / "x")]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_affinity_cli_reference_mode_scores_with_the_network(tmp_path, capsys):
    data = ("synthetic:num_nodes=300,num_tasks=5,num_groups=2,min_community_size=20,"
            "internal_degree=8,feature_dim=8")
    assert main(["train", "--data", data, "--out", str(tmp_path / "base"), "--epochs", "2",
                 "--hidden", "8", "--threads", "1", "--no-progress"]) == 0
    assert main(["project", "--checkpoint", str(tmp_path / "base" / "model.pt"), "--data", data,
                 "--dim", "8", "--params", "encoder", "--out", str(tmp_path / "store"),
                 "--no-progress"]) == 0
    base = ["affinity", "--store", str(tmp_path / "store"), "--subsets", "12", "--size", "3",
            "--mode", "reference"]
    assert main(base + ["--out", str(tmp_path / "bad")]) == 2           # needs the model
    assert "needs --checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main(base + ["--checkpoint", str(tmp_path / "base" / "model.pt"), "--data", data,
                        "--out", str(tmp_path / "ref")]) == 0
    A = np.load(tmp_path / "ref" / "affinity.npy")
    assert A.shape == (5, 5) and np.isfinite(A).all() and np.allclose(A, A.T)
