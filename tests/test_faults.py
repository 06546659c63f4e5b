"""Fault injection: ``graphmtl run`` killed with SIGKILL at random points resumes to the same
groups, affinities and metrics as an uninterrupted run; a hand-edited manifest output never
reaches the report.

The killed runs are ``python -m graphmtl.cli run`` subprocesses; the reference and the resumed
runs call :func:`run_pipeline` (what the CLI calls) in this process with one torch thread, like
the subprocesses (``OMP_NUM_THREADS=1``): starting a process costs seconds of imports.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from graphmtl.pipeline import CompareConfig, PipelineConfig, run_pipeline

sys.path.insert(0, str(Path(__file__).parent))
from test_pipeline import tiny_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Seed s kills the run a random time (0-1 s) after STAGES[s] starts: inside the resumable
# stages (training with its last.pt, projection with its progress.json, the group models) or,
# when the stage is quicker, in one of the stages after it.
STAGES = ("base", "projection", "groups")
METRICS = ("base/test_metrics.json",)


def _cli(cfg: Path, out: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "GRAPHMTL_CACHE": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "graphmtl.cli", "run", "--config", str(cfg),
                             "--out", str(out), "--quiet"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _resume(config: PipelineConfig, out: Path, cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("GRAPHMTL_CACHE", str(cache))
    run_pipeline(config, out, quiet=True, progress=False)
    gc.collect()  # run_pipeline's stage closures keep its RunDirectory (and lock) in a cycle


def _results(run: Path) -> dict:
    """What must not depend on interruptions: groups, affinities, per-task metrics."""
    comparison = json.loads((run / "groups" / "comparison.json").read_text())
    out = {"groups": json.loads((run / "clustering" / "groups.json").read_text())["labels"],
           "groupings": comparison["groupings"], "per_task": comparison["per_task"],
           # everything but the times
           "methods": [{k: v for k, v in m.items() if k not in ("wall_s", "cpu_s", "train_s")}
                       for m in comparison["result"]["methods"]],
           "affinity": np.load(run / "affinity" / "affinity.npy"),
           "scores": np.load(run / "affinity" / "scores.npy")}
    for rel in METRICS:
        m = json.loads((run / rel).read_text())
        out[rel] = {k: m[k] for k in ("macro", "tasks")}
    summary = json.loads((run / "report" / "summary.json").read_text())
    out["summary"] = [(m["name"], m["macro"], m["groups"]) for m in summary["methods"]]
    out["k"] = summary["k"]
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    config = tiny_config(compare=CompareConfig(pairwise=False, random_draws=2, seeds=2,
                                               workers=1))
    (base / "config.json").write_text(json.dumps(config.to_dict()))
    with pytest.MonkeyPatch.context() as mp:
        _resume(config, base / "reference", base / "cache", mp)
    return base, config, _results(base / "reference")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_9_at_a_random_point_then_resume_gives_identical_results(reference, seed,
                                                                      one_thread, monkeypatch):
    base, config, expected = reference
    stage, delay = STAGES[seed], float(np.random.default_rng(seed).uniform(0.0, 1.0))
    out = base / f"killed{seed}"
    proc = _cli(base / "config.json", out, base / "cache")
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:  # the manifest is replaced atomically: always whole
            started = stage in json.loads((out / "manifest.json").read_text())["stages"]
        except (OSError, ValueError):
            started = False
        if started:
            time.sleep(delay)
            break
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert killed or proc.returncode == 0, err
    if killed:  # its lock is stale: taken over with a warning, not an obstacle
        with pytest.warns(UserWarning, match="took over the stale lock"):
            _resume(config, out, base / "cache", monkeypatch)
    else:
        _resume(config, out, base / "cache", monkeypatch)
    assert not (out / ".graphmtl.lock").exists()
    _assert_same(_results(out), expected)


def test_hand_edited_manifest_output_does_not_reach_the_report(reference, one_thread):
    base, config, expected = reference
    run = base / "edited"
    shutil.copytree(base / "reference", run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["clustering"]["outputs"]["k"] = 5
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="record of stage 'clustering' was edited"):
        result = run_pipeline(config, run, quiet=True, progress=False)
    assert result.executed[0] == "clustering" and "base" not in result.executed
    _assert_same(_results(run), expected)
    assert "5 (given)" not in result.report_md.read_text()
