"""Integrity of the files graphmtl writes and later trusts: each bad-file probe gives a one-line
error naming the file (no traceback) and leaves the file as it was, or repairs itself with a
warning where that is the documented behaviour."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from graphmtl.cli import main
from graphmtl.data import MultiTaskGraph, load_dataset
from graphmtl.errors import GraphMTLError
from graphmtl.models import ModelConfig
from graphmtl.pipeline import RunDirectory
from graphmtl.projection import ProjectionStore
from graphmtl.training import TrainConfig, Trainer, load_checkpoint, save_checkpoint
from graphmtl.training.checkpoint import task_digests
from graphmtl.utils.integrity import (DamagedFileError, check_file, content_digest, file_record,
                                      seal, seal_matches)
from graphmtl.utils.io import atomic_path, atomic_write_json, is_temp_file, read_json

sys.path.insert(0, str(Path(__file__).parent))
from test_projection import small_graph, small_model  # noqa: E402

warnings.filterwarnings("ignore", message=".*pyg-lib.*")
TINY = "synthetic:num_nodes=120,num_tasks=3,num_groups=1,min_community_size=10,feature_dim=4"


def one_line_error(capsys, *names: str) -> str:
    """The CLI's stderr: exactly one ``graphmtl: error:`` line, naming each of ``names``."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("graphmtl: error: "), err
    assert "Traceback" not in err[0]
    for name in names:
        assert name in err[0], (name, err[0])
    return err[0]


def truncate(path: Path, fraction: float = 0.5) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path.read_bytes()


def flip(path: Path, count: int, lo: float = 0.3, hi: float = 0.7, seed: int = 0) -> bytes:
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for i in rng.choice(np.arange(int(len(data) * lo), int(len(data) * hi)), count, replace=False):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def trained_checkpoint(graph, out: Path, tasks="all") -> Path:
    Trainer(ModelConfig(hidden=8), TrainConfig(epochs=1, batch_size=64, num_threads=1)).fit(
        graph, tasks, out_dir=out, progress=False)
    return out / "model.pt"


def other_splits(graph: MultiTaskGraph, seed: int = 1) -> MultiTaskGraph:
    """The same features, edges and labels with each node's split drawn again."""
    r = torch.rand(graph.y.shape, generator=torch.Generator().manual_seed(seed))
    tr, va = r < 0.4, (r >= 0.4) & (r < 0.7)
    return MultiTaskGraph(graph.x, graph.edge_index, graph.y, tr, va, ~(tr | va),
                          list(graph.task_names))


# ---------------------------------------------------------------------- digests
def test_content_digest_is_canonical():
    a = {"b": [1, 2.5, None, True], "a": torch.arange(3), "c": (np.zeros(2, np.float32), "x")}
    b = {"c": [np.zeros(2, np.float32), "x"], "a": torch.arange(3), "b": [1, 2.5, None, True]}
    assert content_digest(a) == content_digest(b)
    assert content_digest({"x": float("nan")}) == content_digest({"x": float("nan")})
    assert content_digest(torch.zeros(2)) != content_digest(torch.zeros(2, dtype=torch.float64))
    assert content_digest(torch.zeros(2)) != content_digest(torch.zeros(1, 2))
    assert content_digest({1: "a"}) != content_digest({"1": "a"})
    assert content_digest([1, 0]) != content_digest([0, 1])
    with pytest.raises(TypeError, match="cannot hash"):
        content_digest(object())


def test_seal_round_trips_json_and_detects_edits(tmp_path):
    rec = seal({"k": 2, "t": (1, 2), "v": np.float32(0.5), "p": Path("a")})
    atomic_write_json(tmp_path / "r.json", rec)
    back = read_json(tmp_path / "r.json")
    assert seal_matches(back) is True
    back["k"] = 5
    assert seal_matches(back) is False
    assert seal_matches({"k": 2}) is None


def test_check_file_size_and_content(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"0123456789")
    rec = file_record(f)
    check_file(f, rec, "fix it")
    f.write_bytes(b"01234")
    with pytest.raises(DamagedFileError, match=r"a.bin: truncated .*5 bytes, expected 10.*fix it"):
        check_file(f, rec, "fix it")
    f.write_bytes(b"0123456780")
    check_file(f, rec, "fix it", full=False)  # same size: only a full check sees it
    with pytest.raises(DamagedFileError, match="does not match its recorded sha256"):
        check_file(f, rec, "fix it")
    f.unlink()
    with pytest.raises(DamagedFileError, match="missing"):
        check_file(f, rec, "fix it")


def test_task_digests_follow_labels_and_splits_not_task_subsets():
    graph = small_graph(N=40, n=4)
    full = task_digests(graph)
    assert list(full) == graph.task_names and len(set(full.values())) == 4
    assert task_digests(graph, ["task2", "task0"]) == {"task2": full["task2"],
                                                       "task0": full["task0"]}
    assert task_digests(graph.select_tasks(["task1"])) == {"task1": full["task1"]}
    moved = other_splits(graph)
    assert all(task_digests(moved)[t] != full[t] for t in graph.task_names)


# ---------------------------------------------------------------------- JSON input
def test_read_json_one_line_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(5))
    with pytest.raises(GraphMTLError, match=r"a.npy: not a JSON text file \(byte \d+ is not UTF-8"):
        read_json(tmp_path / "a.npy")
    (tmp_path / "b.json").write_text('{"a": 1,\n}')
    with pytest.raises(GraphMTLError, match="b.json: line 2: invalid JSON"):
        read_json(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("[1, 2]")
    assert read_json(tmp_path / "c.json", expect=list) == [1, 2]
    with pytest.raises(GraphMTLError, match="c.json: expected an object at the top level of "
                                            "the JSON, got a list"):
        read_json(tmp_path / "c.json", expect=dict)
    with pytest.raises(GraphMTLError, match="d.json: file not found"):
        read_json(tmp_path / "d.json")


def test_run_config_that_is_not_json_is_one_line_error(tmp_path, capsys):
    np.save(tmp_path / "file.npy", np.arange(5))
    assert main(["run", "--config", str(tmp_path / "file.npy"), "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, "file.npy", "not a JSON text file")


# ---------------------------------------------------------------------- graph .npz
@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize("command", ["summary", "train"])
def test_damaged_npz_is_one_line_error(tmp_path, capsys, damage, command):
    path = tmp_path / "g.npz"
    small_graph(N=40, n=3).save(path)
    before = truncate(path) if damage == "truncate" else flip(path, 200)
    argv = (["data", "summary", str(path)] if command == "summary" else
            ["train", "--data", str(path), "--epochs", "1", "--out", str(tmp_path / "o"),
             "--no-progress"])
    assert main(argv) == 2
    one_line_error(capsys, str(path), "re-create it")
    assert path.read_bytes() == before and not (tmp_path / "o").exists()


def test_edited_npz_fails_its_digest(tmp_path):
    path = tmp_path / "g.npz"
    small_graph(N=40, n=3).save(path)
    with np.load(path) as z:
        arrays = dict(z)
    arrays["split"] = np.roll(arrays["split"], 1, axis=0)  # other splits, same meta and digest
    np.savez(path, **arrays)  # valid zip, valid CRCs
    with pytest.raises(DamagedFileError, match="g.npz: content does not match its recorded"):
        MultiTaskGraph.load(path)


def test_npz_without_digest_loads_with_warning(tmp_path):
    path = tmp_path / "g.npz"
    graph = small_graph(N=40, n=3)
    graph.save(path)
    with np.load(path) as z:
        arrays = dict(z)
    meta = json.loads(bytes(arrays["meta"]).decode())
    del meta["sha256"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match="without a content digest"):
        old = MultiTaskGraph.load(path)
    assert torch.equal(old.x, graph.x) and torch.equal(old.train_mask, graph.train_mask)


def test_truncated_cache_entry_is_discarded_and_rebuilt(tmp_path):
    first = load_dataset(TINY, cache_dir=tmp_path)
    entry = Path(first.provenance["cache"]["path"])
    assert entry.is_file() and first.provenance["cache"]["status"] == "miss"
    truncate(entry)
    with pytest.warns(UserWarning, match=f"{entry}: prepared-data cache entry discarded and "
                                         r"rebuilt \(not a graphmtl dataset file, or a damaged"):
        again = load_dataset(TINY, cache_dir=tmp_path)
    assert again.provenance["cache"]["status"] == "miss"
    assert torch.equal(again.x, first.x) and torch.equal(again.val_mask, first.val_mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: a clean hit
        assert load_dataset(TINY, cache_dir=tmp_path).provenance["cache"]["status"] == "hit"


# ---------------------------------------------------------------------- checkpoints
def test_flipped_bytes_in_checkpoint_are_refused(tmp_path, capsys):
    graph = small_graph(N=50, n=3)
    graph.save(tmp_path / "g.npz")
    path = tmp_path / "m.pt"
    save_checkpoint(path, small_model(graph, "sage", hidden=64), task_names=graph.task_names,
                    task_digests=task_digests(graph))
    before = flip(path, 500)
    with pytest.raises(GraphMTLError, match="m.pt") as e:
        load_checkpoint(path)
    assert "weights_only" not in str(e.value) and len(str(e.value)) < 300
    assert main(["project", "--checkpoint", str(path), "--data", str(tmp_path / "g.npz"),
                 "--out", str(tmp_path / "s"), "--dim", "4", "--no-progress"]) == 2
    one_line_error(capsys, str(path))
    assert path.read_bytes() == before and not (tmp_path / "s").exists()


def test_checkpoint_with_flipped_weights_inside_a_valid_zip_fails_its_digest(tmp_path):
    graph = small_graph(N=50, n=3)
    path = tmp_path / "m.pt"
    save_checkpoint(path, small_model(graph, "sage"), task_names=graph.task_names)
    obj = torch.load(path, weights_only=True)
    obj["state_dict"] = {k: v + 1 for k, v in obj["state_dict"].items()}
    torch.save(obj, path)  # a well-formed file whose weights changed
    with pytest.raises(DamagedFileError, match="m.pt: content does not match its recorded sha256"):
        load_checkpoint(path)
    del obj["sha256"]
    torch.save(obj, path)
    with pytest.warns(UserWarning, match="without a content digest"):
        assert load_checkpoint(path).task_names == graph.task_names


def test_checkpoint_from_other_splits_is_refused_but_task_subsets_warm_start(tmp_path, capsys):
    graph = small_graph(N=60, n=3)
    graph.save(tmp_path / "g.npz")
    moved = other_splits(graph)
    moved.save(tmp_path / "seed1.npz")
    ckpt = trained_checkpoint(graph, tmp_path / "base")
    assert load_checkpoint(ckpt).task_digests == task_digests(graph)
    argv = ["project", "--checkpoint", str(ckpt), "--dim", "4", "--no-progress", "--data"]
    assert main(argv + [str(tmp_path / "seed1.npz"), "--out", str(tmp_path / "s1")]) == 2
    one_line_error(capsys, str(ckpt), "train/val/test splits", "seed1.npz")
    assert not (tmp_path / "s1").exists()
    # Warm starts across task subsets of the same graph still work ...
    sub = Trainer(ModelConfig(hidden=8), TrainConfig(epochs=1, batch_size=64, num_threads=1)).fit(
        graph, ["task2", "task0"], init_from=ckpt, progress=False)
    assert sub.task_names == ["task2", "task0"]
    # ... and a checkpoint of some tasks serves those tasks of a graph with more.
    part = trained_checkpoint(graph, tmp_path / "part", ["task1"])
    load_checkpoint(part).check_data(graph)
    with pytest.raises(GraphMTLError, match="task 'task1' has other labels or train/val/test"):
        load_checkpoint(part).check_data(moved, "--data seed1")


def test_resume_on_other_splits_is_refused(tmp_path):
    graph = small_graph(N=60, n=3)
    trained_checkpoint(graph, tmp_path / "t")
    with pytest.raises(GraphMTLError, match="last.pt: was trained on other labels or splits"):
        Trainer(ModelConfig(hidden=8), TrainConfig(epochs=2, batch_size=64, num_threads=1)).fit(
            other_splits(graph), out_dir=tmp_path / "t", resume=True, progress=False)


# ---------------------------------------------------------------------- projection stores
@pytest.fixture
def store_dir(tmp_path):
    graph = small_graph(N=50, n=3)
    graph.save(tmp_path / "g.npz")
    save_checkpoint(tmp_path / "m.pt", small_model(graph, "sage"), task_names=graph.task_names,
                    task_digests=task_digests(graph))
    assert main(["project", "--checkpoint", str(tmp_path / "m.pt"), "--data",
                 str(tmp_path / "g.npz"), "--out", str(tmp_path / "store"), "--dim", "6",
                 "--no-progress"]) == 0
    return tmp_path / "store"


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_store_array_is_one_line_error(store_dir, tmp_path, capsys, damage):
    capsys.readouterr()
    z = store_dir / "train.z.npy"
    before = truncate(z, 0.9) if damage == "truncate" else flip(z, 3, 0.5, 0.9)
    assert main(["affinity", "--store", str(store_dir), "--out", str(tmp_path / "aff"),
                 "--subsets", "5", "--size", "2"]) == 2
    msg = one_line_error(capsys, str(z), "--restart")
    assert ("truncated" in msg) == (damage == "truncate")
    assert z.read_bytes() == before


def test_edited_store_manifest_is_refused(store_dir):
    m = read_json(store_dir / "manifest.json")
    m["task_names"] = ["a", "b", "c"]
    (store_dir / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DamagedFileError, match="manifest.json: does not match its recorded"):
        ProjectionStore(store_dir)


def test_store_without_digests_opens_with_warning_and_size_check(store_dir):
    m = read_json(store_dir / "manifest.json")
    del m["sha256"], m["files"]
    (store_dir / "manifest.json").write_text(json.dumps(m))
    with pytest.warns(UserWarning, match="without digests"):
        assert ProjectionStore(store_dir).num_tasks == 3
    truncate(store_dir / "val.f0.npy", 0.8)
    with pytest.warns(UserWarning), pytest.raises(DamagedFileError, match="val.f0.npy: truncated"):
        ProjectionStore(store_dir)


# ---------------------------------------------------------------------- run manifests
def _stage_a(d: Path) -> dict:
    atomic_write_json(d / "groups.json", {"labels": [0, 1, 1]})
    return {"k": 2}


def _stage_b(calls: list):
    def fn(d: Path) -> dict:
        calls.append("b")
        return {"n": 3}
    return fn


@pytest.mark.parametrize("bad, problem", [
    ({"stages": []}, "'stages' must be an object of stage records, got list"),
    ({"stages": {"a": {"key": "x", "seconds": 1.0, "outputs": {}, "extra": 1}}},
     "stage 'a': unknown field 'extra'"),
    ({"stages": {"a": {"seconds": 1.0}}}, "stage 'a': no 'key'"),
    ({"stages": {"a": {"key": "x", "seconds": "1"}}}, "stage 'a': field 'seconds' has the wrong"),
    ({"stages": {"a": []}}, "stage 'a': expected an object"),
    ([], "expected an object at the top level"),
])
def test_malformed_run_manifest_is_one_line_error(tmp_path, capsys, bad, problem):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(GraphMTLError, match="manifest.json: " + problem.replace("(", r"\(")):
        RunDirectory(run_dir, {})
    # The CLI refuses before any work and leaves the directory as it was.
    assert main(["run", "--data", TINY, "--out", str(run_dir), "--k", "2", "--quiet"]) == 2
    one_line_error(capsys, "manifest.json")
    assert sorted(p.name for p in run_dir.iterdir()) == ["manifest.json"]
    assert json.loads((run_dir / "manifest.json").read_text()) == bad


def test_hand_edited_stage_output_reruns_the_stage_and_its_readers(tmp_path):
    calls: list = []
    run = RunDirectory(tmp_path, {})
    a = run.run("a", {"x": 1}, _stage_a)
    run.run("b", {"a": a.key}, _stage_b(calls))
    run.close()
    m = read_json(tmp_path / "manifest.json")
    assert set(m["stages"]["a"]["files"]) == {"groups.json"}
    assert m["stages"]["b"]["upstream"] == {"a": m["stages"]["a"]["sha256"]}
    m["stages"]["a"]["outputs"]["k"] = 5
    (tmp_path / "manifest.json").write_text(json.dumps(m))

    run = RunDirectory(tmp_path, {})
    with pytest.warns(UserWarning, match="record of stage 'a' was edited or damaged.*re-running"):
        a = run.run("a", {"x": 1}, _stage_a)
    assert a.outputs == {"k": 2}
    run.run("b", {"a": a.key}, _stage_b(calls))  # it read 'a': redone (silently)
    assert run.executed == ["a", "b"] and calls == ["b", "b"]
    run.close()

    groups = tmp_path / "a" / "groups.json"
    groups.write_text(groups.read_text().replace("1", "0"))  # same size, other groups
    run = RunDirectory(tmp_path, {})
    with pytest.warns(UserWarning, match="groups.json: content does not match.*re-running"):
        run.run("a", {"x": 1}, _stage_a)
    assert read_json(tmp_path / "a" / "groups.json") == {"labels": [0, 1, 1]}
    run.close()
    shutil.rmtree(tmp_path / "a")  # a deleted stage directory is recomputed too
    run = RunDirectory(tmp_path, {})
    with pytest.warns(UserWarning, match="groups.json: missing"):
        run.run("a", {"x": 1}, _stage_a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert RunDirectory(tmp_path, {}).run("a", {"x": 1}, _stage_a).outputs == {"k": 2}


def test_unfinished_stage_drops_temp_files_of_a_killed_writer(tmp_path):
    run = RunDirectory(tmp_path, {})

    def killed(d: Path) -> dict:
        (d / ".affinity.npy.abcd1234.tmp.npy").write_bytes(b"half")
        (d / "partial.txt").write_text("kept")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.run("s", {}, killed)
    seen = []
    rec = RunDirectory(tmp_path, {}).run("s", {}, lambda d: seen.extend(
        sorted(p.name for p in d.iterdir())) or {})
    assert seen == ["partial.txt"] and set(rec.files) == {"partial.txt"}


def test_old_manifest_without_seals_is_reused_with_warning(tmp_path):
    run = RunDirectory(tmp_path, {})
    run.run("a", {"x": 1}, _stage_a)
    run.close()
    m = read_json(tmp_path / "manifest.json")
    m["stages"]["a"] = {k: m["stages"]["a"][k] for k in ("key", "seconds", "outputs")}
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    run = RunDirectory(tmp_path, {})
    with pytest.warns(UserWarning, match="older graphmtl without stage digests"):
        run.run("a", {"x": 1}, _stage_a)
    assert run.executed == []


# ---------------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        graph = small_graph(N=40, n=2)
        graph.save(tmp_path / "g.npz")
        save_checkpoint(tmp_path / "m.pt", small_model(graph, "sage"),
                        task_names=graph.task_names, task_digests=task_digests(graph))
        atomic_write_json(tmp_path / "x.json", {"a": 1})
        with atomic_path(tmp_path / "a.npy") as tmp:
            np.save(tmp, np.zeros(2))
        load_dataset(TINY, cache_dir=tmp_path / "cache")
        assert main(["project", "--checkpoint", str(tmp_path / "m.pt"), "--data",
                     str(tmp_path / "g.npz"), "--out", str(tmp_path / "store"), "--dim", "3",
                     "--no-progress"]) == 0
        run = RunDirectory(tmp_path / "run", {})
        run.run("a", {}, _stage_a)
        run.close()
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"manifest.json", "progress.json", "g.npz", "m.pt", "groups.json"} <= names
    assert any(p.parent.name == "prepared" for p in files)
    assert not any(is_temp_file(p) for p in files)
    wrong = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) != mode}
    assert wrong == {}


def test_is_temp_file_names():
    assert is_temp_file(".groups.json.1a2b3c4d.tmp.json")
    assert not is_temp_file("groups.json") and not is_temp_file(".done")


def test_stage_peak_memory_is_recorded_sealed_and_optional(tmp_path):
    def allocating(d: Path) -> dict:
        block = np.ones(64 << 17)          # 64 MiB, resident while the stage runs
        return {"sum": float(block[::4096].sum())}

    run = RunDirectory(tmp_path, {})
    rec = run.run("a", {"x": 1}, allocating)
    run.close()
    assert rec.peak_rss_mb is not None and rec.peak_rss_mb >= 64
    m = read_json(tmp_path / "manifest.json")
    assert m["stages"]["a"]["peak_rss_mb"] == rec.peak_rss_mb
    # the peak is part of the seal: an edited peak is damage like any other edited field
    m["stages"]["a"]["peak_rss_mb"] = 1.0
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    run = RunDirectory(tmp_path, {})
    with pytest.warns(UserWarning, match="record of stage 'a' was edited or damaged"):
        run.run("a", {"x": 1}, allocating)
    assert run.executed == ["a"]
    run.close()
    # a record sealed before peaks were kept (no field) is still reused as it is
    run = RunDirectory(tmp_path, {})
    run.run("a", {"x": 1}, _stage_a)
    run.close()
    m = read_json(tmp_path / "manifest.json")
    old = {k: v for k, v in m["stages"]["a"].items() if k not in ("peak_rss_mb", "sha256")}
    m["stages"]["a"] = {**old, "sha256": seal(old)["sha256"]}
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    run = RunDirectory(tmp_path, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run.run("a", {"x": 1}, _stage_a).peak_rss_mb is None
    assert run.executed == []
