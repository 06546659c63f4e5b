"""The CLI flags of the scale work: ``--device``, ``--eval-fanouts`` and ``--fanouts auto|full``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from graphmtl.cli import main
from graphmtl.projection import ProjectionStore
from graphmtl.training import graph_digest, save_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from test_projection import small_graph, small_model  # noqa: E402
from test_training import planted_graph  # noqa: E402


def test_train_device_and_eval_fanouts(tmp_path, capsys):
    planted_graph(N=120).save(tmp_path / "g.npz")
    base = ["train", "--data", str(tmp_path / "g.npz"), "--epochs", "1", "--hidden", "8",
            "--batch-size", "64", "--threads", "1", "--no-progress"]
    assert main(base + ["--out", str(tmp_path / "a"), "--device", "auto",
                        "--eval-fanouts", "3,2"]) == 0
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert res["train_config"]["eval_fanouts"] == [3, 2]
    assert res["train_config"]["device"] == "auto"
    capsys.readouterr()
    assert main(base + ["--out", str(tmp_path / "b"), "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphmtl: error: device 'gpu'") and err.count("\n") == 1
    if not torch.cuda.is_available():
        assert main(base + ["--out", str(tmp_path / "c"), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.parametrize("fanouts, stored", [("auto", None), ("full", None), ("3,2", [3, 2])])
def test_project_fanouts_flag(tmp_path, fanouts, stored):
    graph = small_graph(N=40, n=3)
    graph.save(tmp_path / "g.npz")
    save_checkpoint(tmp_path / "m.pt", small_model(graph, "sage"), task_names=graph.task_names,
                    data_hash=graph_digest(graph))
    assert main(["project", "--checkpoint", str(tmp_path / "m.pt"), "--data",
                 str(tmp_path / "g.npz"), "--out", str(tmp_path / "s"), "--dim", "4",
                 "--fanouts", fanouts, "--device", "cpu", "--no-progress"]) == 0
    m = ProjectionStore(tmp_path / "s").manifest
    assert m["config"]["fanouts"] == stored and m["device"] == "cpu"
