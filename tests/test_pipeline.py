import json

import numpy as np
import pytest

from graphmtl.cli import main as cli_main
from graphmtl.errors import GraphMTLError
from graphmtl.models import ModelConfig
from graphmtl.pipeline import (AffinityConfig, CompareConfig, PipelineConfig, RunDirectory,
                               concat_metrics, run_pipeline)
from graphmtl.projection import ProjectionConfig
from graphmtl.training import TrainConfig

TINY_DATA = ("synthetic:num_nodes=400,num_tasks=6,num_groups=2,min_community_size=20,"
             "internal_degree=8,feature_dim=8")


def tiny_config(**changes) -> PipelineConfig:
    base = PipelineConfig(
        data=TINY_DATA, model=ModelConfig(hidden=16),
        train=TrainConfig(epochs=3, patience=0, batch_size=256, num_threads=1),
        projection=ProjectionConfig(dim=16, batch_size=256),
        affinity=AffinityConfig(num_subsets=60, subset_size=3),
        k=2, compare=CompareConfig(pairwise=True, pairwise_pairs=4, workers=1))
    return base.replace(**changes)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, run_pipeline(tiny_config(), out, quiet=True, progress=False)


def test_run_produces_groups_report_and_manifest(finished_run):
    out, result = finished_run
    assert result.groups.shape == (6,) and len(np.unique(result.groups)) == 2
    names = [m.name for m in result.methods]
    assert names[0] == "Grad-TAG groups" and "All tasks, one model" in names
    assert any(n.startswith("Pairwise") for n in names) and any(n.startswith("Random") for n in names)
    for m in result.methods:
        assert m.task_f1.shape == (6,) and np.isfinite(m.macro_auc)
    html = result.report_html.read_text()
    assert "Method comparison" in html and "data:image/png;base64," in html
    assert result.report_md.is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["data"] == TINY_DATA and "torch" in manifest["versions"]
    for stage in ("data", "base", "projection", "affinity", "clustering", "groups", "pairwise",
                  "random_groups"):
        assert manifest["stages"][stage]["seconds"] is not None, stage
    summary = json.loads((out / "summary.json").read_text())
    assert summary["k"] == 2 and len(summary["methods"]) == len(result.methods)


def test_rerun_skips_every_stage(finished_run):
    out, first = finished_run
    again = run_pipeline(tiny_config(), out, quiet=True, progress=False)
    assert again.executed == []
    np.testing.assert_array_equal(again.groups, first.groups)


def test_changed_input_reruns_only_downstream(finished_run, tmp_path):
    out, _ = finished_run
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    changed = tiny_config(affinity=AffinityConfig(num_subsets=50, subset_size=3))
    result = run_pipeline(changed, copy, quiet=True, progress=False)
    assert "data" not in result.executed and "base" not in result.executed
    assert "projection" not in result.executed and "pairwise" not in result.executed
    assert "affinity" in result.executed and "clustering" in result.executed


def test_run_directory_resumes_unfinished_stage(tmp_path):
    run = RunDirectory(tmp_path, {"a": 1})
    calls = []

    def failing(d):
        calls.append("fail")
        (d / "partial.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run.run("stage", {"x": 1}, failing)
    # A new process sees the stage unfinished, with its partial work still there to resume.
    run = RunDirectory(tmp_path, {"a": 1})

    def finishing(d):
        calls.append((d / "partial.txt").read_text())
        return {"ok": True}

    rec = run.run("stage", {"x": 1}, finishing)
    assert calls == ["fail", "half"] and rec.outputs == {"ok": True}
    assert run.run("stage", {"x": 1}, failing).outputs == {"ok": True}  # cached: not called


def test_concat_metrics_rejects_mixed_splits(finished_run):
    from graphmtl.training import TaskMetrics

    a = TaskMetrics(["a"], "test", *(np.zeros(1),) * 4, np.ones(1, int), np.ones(1, int))
    b = TaskMetrics(["b"], "val", *(np.zeros(1),) * 4, np.ones(1, int), np.ones(1, int))
    assert concat_metrics([a]).task_names == ["a"]
    with pytest.raises(GraphMTLError, match="different splits"):
        concat_metrics([a, b])


def test_config_round_trip_and_errors():
    cfg = tiny_config()
    assert PipelineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(GraphMTLError, match="unknown key 'bogus'"):
        PipelineConfig.from_dict({"bogus": 1})
    with pytest.raises(GraphMTLError, match="k"):
        PipelineConfig(k=0)


def test_cli_run_bad_k_is_one_line_error(capsys, tmp_path):
    assert cli_main(["run", "--k", "three", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["graphmtl: error: --k: expected a positive integer or 'auto', got 'three'"]
