"""experiments/bench_scale.py's sections on a small graph: ``graphmtl run`` with the settings
documented for the large graph finishes, and every stage's time and peak memory are read back
from the run's manifest into the results; the default affinity's section times it and scores
its groups against the planted ones."""

from __future__ import annotations

import json

import pytest

from experiments import bench_scale

SMALL = ("synthetic:num_nodes=300,num_tasks=20,num_groups=4,min_community_size=10,"
         "feature_dim=8")

pytestmark = pytest.mark.usefixtures("one_thread")


def test_run_cli_section_records_every_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHMTL_CACHE", str(tmp_path / "cache"))
    argv = ["--sections", "run_cli", "--orkut", SMALL, "--run-dir", str(tmp_path / "run"),
            "--out", "check", "--results-dir", str(tmp_path)]
    assert bench_scale.main(argv) == 0
    rec = json.loads((tmp_path / "check.json").read_text())["run_cli"]
    assert rec["exit_status"] == 0 and rec["finished"], rec["stderr_tail"]
    assert {"data", "affinity", "clustering", "groups", "report"} <= set(rec["stages"])
    assert all(v["seconds"] > 0 and v["peak_rss_mb"] > 0 for v in rec["stages"].values())
    assert rec["this_call_peak_rss_gb"] > 0 and "random groups" in rec["verdict"]
    assert [m["groups"] for m in rec["methods"]][0] <= 20
    md = (tmp_path / "check.md").read_text()
    assert "## `graphmtl run` on orkut500, every stage" in md and "Finished" in md
    # called again, the finished run is reused: nothing re-runs, the record stays
    assert bench_scale.main(argv) == 0
    again = json.loads((tmp_path / "check.json").read_text())["run_cli"]
    assert again["stages"] == rec["stages"] and again["this_call_wall_s"] < rec["this_call_wall_s"]


def test_subspace_section_times_the_default_affinity_and_scores_its_groups(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("GRAPHMTL_CACHE", str(tmp_path / "cache"))
    argv = ["--sections", "subspace", "--orkut", SMALL, "--out", "check",
            "--results-dir", str(tmp_path)]
    assert bench_scale.main(argv) == 0
    rec = json.loads((tmp_path / "check.json").read_text())["subspace"]
    assert rec["graph"]["tasks"] == 20 and set(rec["ari"]) == {"affinity", "affinity_subsets",
                                                                "correlation"}
    assert all(-1 <= v <= 1 for v in rec["ari"].values())
    assert all(v["seconds"] > 0 and v["peak_rss_mb"] > 0 for v in rec["stages"].values())
    assert rec["timings"]["total_s"] > 0
    md = (tmp_path / "check.md").read_text()
    assert "## The default affinity (shared subspace)" in md and "ARI of its groups" in md
