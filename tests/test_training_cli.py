"""``graphmtl train`` end to end on a small saved graph, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphmtl.cli import main
from test_training import planted_graph

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "g.npz"
    planted_graph().save(path)
    return path


def _train(npz, out, *extra):
    return main(["train", "--data", str(npz), "--epochs", "2", "--hidden", "8",
                 "--batch-size", "64", "--threads", "1", "--no-progress", "--out", str(out),
                 *extra])


def test_cli_trains_and_writes_results(npz, tmp_path, capsys):
    assert _train(npz, tmp_path / "a", "--tasks", "t0,t3", "--fanouts", "4,2") == 0
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert res["tasks"] == ["t0", "t3"] and len(res["test"]["tasks"]) == 2
    assert res["train_config"]["fanouts"] == [4, 2]
    assert (tmp_path / "a" / "model.pt").is_file() and (tmp_path / "a" / "last.pt").is_file()
    out = capsys.readouterr().out
    assert "macro" in out and "t3" in out
    # Warm start from that checkpoint on one of its tasks, with the task list from a file.
    (tmp_path / "tasks.txt").write_text("t3\n")
    assert _train(npz, tmp_path / "b", "--tasks", str(tmp_path / "tasks.txt"),
                  "--init-from", str(tmp_path / "a" / "model.pt")) == 0
    # Resume a finished run: nothing left to train, same results.
    assert _train(npz, tmp_path / "a", "--tasks", "t0,t3", "--fanouts", "4,2", "--resume") == 0


@pytest.mark.parametrize("args, message", [
    (["--tasks", "t0,zz"], "task 'zz': unknown"),
    (["--tasks", ","], "empty"),
    (["--tasks", "all", "--model", "sage", "--fanouts", "10"], "fanouts"),
    (["--tasks", "all", "--epochs", "0"], "epochs"),
])
def test_cli_bad_input_is_one_line(npz, tmp_path, capsys, args, message):
    assert _train(npz, tmp_path / "x", *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("graphmtl: error:") and message in err and "\n" not in err


def test_cli_init_from_checkpoint_without_the_data_tasks(npz, tmp_path, capsys):
    assert _train(npz, tmp_path / "a", "--tasks", "t0") == 0
    capsys.readouterr()
    assert _train(npz, tmp_path / "b", "--init-from", str(tmp_path / "a" / "model.pt")) == 2
    err = capsys.readouterr().err
    assert "missing from the checkpoint" in err and "1 tasks" in err


def test_cli_on_real_snap_data(tmp_path):
    try:
        import graphmtl.data.sources  # noqa: F401
    except ImportError:
        pytest.skip("graphmtl.data.sources is not available")
    if not (DATASETS / "snap" / "com-amazon.ungraph.txt.gz").is_file():
        pytest.skip(f"SNAP files not found under {DATASETS}")
    for model in ("sign", "gin"):
        assert main(["train", "--data", f"snap:amazon,k=10,root={DATASETS}", "--model", model,
                     "--epochs", "1", "--hidden", "16", "--threads", "1", "--no-progress",
                     "--out", str(tmp_path / model)]) == 0
        res = json.loads((tmp_path / model / "results.json").read_text())
        assert len(res["tasks"]) == 10 and res["test"]["macro"]["roc_auc"] is not None
