"""``graphmtl data summary|prepare``."""

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphmtl.cli import main
from graphmtl.data import MultiTaskGraph

SNAP = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "snap"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHMTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHMTL_DATA", raising=False)
    monkeypatch.setenv("GRAPHMTL_SNAP_URL", "http://127.0.0.1:9/")   # never the real network


def _toy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(i, (i + 1) % 40) for i in range(40)] + [(i, (i + 7) % 40) for i in range(0, 40, 3)]
    with gzip.open(folder / "com-toy.ungraph.txt.gz", "wt") as f:
        f.write("".join(f"{u}\t{v}\n" for u, v in pairs))
    with gzip.open(folder / "com-toy.top5000.cmty.txt.gz", "wt") as f:
        for c in (range(0, 12), range(10, 20), range(20, 30), range(30, 36)):
            f.write("\t".join(map(str, c)) + "\n")
    return folder / "com-toy"


def test_summary_json(tmp_path, capsys):
    prefix = _toy(tmp_path)
    assert main(["data", "summary", f"snap:{prefix},k=3,features=8", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["nodes"], info["tasks"], info["features"]) == (30, 3, 8)
    assert info["positives_per_task"] == {"min": 10, "median": 10.0, "max": 12}
    assert info["train_rows"]["per_task_min"] == 6 and info["kind"] == "snap"
    assert info["cache"] == "miss"


def test_summary_table(tmp_path, capsys):
    prefix = _toy(tmp_path)
    assert main(["data", "summary", f"snap:{prefix},k=2", "--no-cache"]) == 0
    out = capsys.readouterr().out
    for needle in ("nodes               22", "tasks               2",
                   "positives per task  min 10 / median 11 / max 12", "feature dim         128",
                   "train labels", "val labels", "test labels", "com-toy.ungraph.txt.gz"):
        assert needle in out, needle


def test_summary_with_root_flag(tmp_path, capsys):
    _toy(tmp_path / "data" / "snap")
    assert main(["data", "summary", "snap:toy,k=2,features=none", "--root",
                 str(tmp_path / "data"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == 22


def test_prepare_writes_loadable_npz(tmp_path, capsys):
    prefix = _toy(tmp_path)
    out = tmp_path / "out" / "toy.npz"
    assert main(["data", "prepare", f"snap:{prefix},k=3,features=8", "--out", str(out)]) == 0
    assert "30 nodes" in capsys.readouterr().out
    g = MultiTaskGraph.load(out)
    assert g.num_tasks == 3 and g.x.shape == (30, 8)
    assert main(["data", "summary", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == 30


def test_errors_are_one_line_with_status_2(tmp_path, capsys):
    prefix = _toy(tmp_path)
    assert main(["data", "summary", f"snap:{prefix},k=9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "graphmtl: error: k=9: must lie in [1, 4] (the file has 4 communities)"
    assert main(["data", "summary", "snap:youtube,wat=1"]) == 2
    assert capsys.readouterr().err.startswith("graphmtl: error: wat: unknown parameter for snap")
    assert main(["data", "prepare", f"snap:{prefix}", "--out", "x.txt"]) == 2
    assert "--out: expected a .npz" in capsys.readouterr().err


def test_data_warnings_are_printed_as_lines(tmp_path, capsys):
    prefix = _toy(tmp_path)
    with gzip.open(f"{prefix}.ungraph.txt.gz", "at") as f:
        f.write("3\t3\n0\t1\n")
    assert main(["data", "summary", f"snap:{prefix},k=2,features=none", "--json"]) == 0
    captured = capsys.readouterr()
    assert "graphmtl: warning: com-toy.ungraph.txt.gz: dropped 1 self-loop(s) and 1 duplicate" \
        in captured.err
    json.loads(captured.out)                                       # stdout stays clean JSON


def test_summary_synthetic_default():
    if importlib.util.find_spec("graphmtl.data.synthetic") is None:
        pytest.skip("graphmtl.data.synthetic (the generator) is not available")
    proc = subprocess.run([sys.executable, "-m", "graphmtl.cli", "data", "summary", "synthetic",
                           "--json"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["tasks"] >= 2 and info["nodes"] > 0 and info["kind"] == "synthetic"


def test_summary_real_youtube(capsys):
    if not (SNAP / "com-youtube.ungraph.txt.gz").is_file():
        pytest.skip(f"real SNAP data not found at {SNAP} (../shared/datasets/snap)")
    assert main(["data", "summary", "snap:youtube,k=100,features=none", "--root",
                 str(SNAP.parent), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["nodes"], info["edges"], info["tasks"]) == (16_751, 104_513, 100)
    assert info["train_rows"]["total"] + info["val_rows"]["total"] + \
        info["test_rows"]["total"] == 16_751 * 100


def test_datasets_prepare_script(tmp_path, capsys):
    import importlib.util as iu

    spec = iu.spec_from_file_location("prepare", REPO / "datasets" / "prepare.py")
    prepare = iu.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    prefix = _toy(tmp_path)
    rc = prepare.main([f"snap:{prefix},k=2,features=none", "snap:absent-name,download=false",
                       "--out", str(tmp_path / "out"), "--root", str(tmp_path / "nowhere")])
    captured = capsys.readouterr()
    assert rc == 1                                                   # one spec was skipped
    assert "snap:absent-name,download=false: skipped:" in captured.err
    saved = list((tmp_path / "out").glob("*.npz"))
    assert len(saved) == 1 and MultiTaskGraph.load(saved[0]).num_tasks == 2
