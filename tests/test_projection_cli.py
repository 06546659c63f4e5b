"""``graphmtl project`` on a saved graph and checkpoint."""

import dataclasses
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from graphmtl.cli import main
from graphmtl.projection import ProjectionStore
from graphmtl.training import graph_digest, save_checkpoint
from graphmtl.training.checkpoint import task_digests

sys.path.insert(0, str(Path(__file__).parent))
from test_projection import small_graph, small_model  # noqa: E402

warnings.filterwarnings("ignore", message=".*pyg-lib.*")


def _setup(tmp_path, encoder="sage"):
    graph = small_graph(N=50, n=3)
    graph.save(tmp_path / "g.npz")
    model = small_model(graph, encoder)
    save_checkpoint(tmp_path / "m.pt", model, task_names=graph.task_names,
                    data_hash=graph_digest(graph),
                    task_digests=task_digests(graph, graph.task_names))
    return graph, model


def test_cli_project_writes_store(tmp_path, capsys):
    graph, model = _setup(tmp_path)
    rc = main(["project", "--checkpoint", str(tmp_path / "m.pt"), "--data", str(tmp_path / "g.npz"),
               "--dim", "7", "--out", str(tmp_path / "store"), "--budget", "12", "--seed", "3",
               "--params", "encoder", "--fanouts", "4,3", "--no-progress"])
    assert rc == 0
    assert "train rows" in capsys.readouterr().out
    store = ProjectionStore(tmp_path / "store")
    m = store.manifest
    assert store.dim == 7 and m["seed"] == 3 and m["params"] == "encoder"
    assert m["budgets"] == {"train": 12, "val": 12} and len(m["checkpoint_sha256"]) == 64
    assert all(not n.startswith("head.") for n in m["param_names"])
    assert np.all(np.diff(store.task_ptr("train")) <= 12)
    assert np.isfinite(store.array("train", "z")).all()
    assert np.abs(store.array("val", "z")).sum() > 0


def test_cli_mismatches_are_one_line_errors(tmp_path, capsys):
    graph, model = _setup(tmp_path)
    four = small_graph(N=50, n=4)           # task3 not in the checkpoint: selected away, fine
    cat = lambda a, b: torch.cat([a, b[:, 3:]], dim=1)  # noqa: E731
    more = dataclasses.replace(graph, y=cat(graph.y, four.y),
                               train_mask=cat(graph.train_mask, four.train_mask),
                               val_mask=cat(graph.val_mask, four.val_mask),
                               test_mask=cat(graph.test_mask, four.test_mask),
                               task_names=graph.task_names + ["task3"])
    more.save(tmp_path / "more_tasks.npz")
    fewer = small_graph(N=50, n=2)          # the checkpoint's task2 is missing
    fewer.save(tmp_path / "fewer.npz")
    wide = small_graph(N=50, F=7, n=3)
    wide.save(tmp_path / "wide.npz")
    base = ["project", "--checkpoint", str(tmp_path / "m.pt"), "--dim", "4", "--no-progress"]
    assert main(base + ["--data", str(tmp_path / "fewer.npz"), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "task 'task2'" in err and len(err.strip().splitlines()) == 1
    assert main(base + ["--data", str(tmp_path / "wide.npz"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "input features" in err and len(err.strip().splitlines()) == 1
    # a superset of the checkpoint's tasks on the same graph: its tasks are selected by name
    assert main(base + ["--data", str(tmp_path / "more_tasks.npz"), "--out", str(tmp_path / "c")]
                ) == 0
    assert ProjectionStore(tmp_path / "c").task_names == graph.task_names
    # same shapes, other features and edges: the checkpoint's data digest does not match
    small_graph(N=50, n=3, seed=1).save(tmp_path / "other.npz")
    assert main(base + ["--data", str(tmp_path / "other.npz"), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "trained on other data" in err and len(err.strip().splitlines()) == 1
    assert main(base + ["--data", str(tmp_path / "g.npz"), "--out", str(tmp_path / "d"),
                        "--fanouts", "x"]) == 2
    assert "--fanouts" in capsys.readouterr().err
