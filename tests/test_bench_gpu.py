"""experiments/bench_gpu.py without CUDA: the agreement checks run CPU against CPU (every one
within its tolerance), and the results are written as JSON and markdown."""

from __future__ import annotations

import json

import pytest
import torch

from experiments import bench_gpu

TINY = ("synthetic:num_nodes=300,num_tasks=6,num_groups=2,min_community_size=10,"
        "feature_dim=8")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path (a GPU runs the real check)")
def test_bench_gpu_cpu_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHMTL_CACHE", str(tmp_path / "cache"))
    assert bench_gpu.main(["--small", TINY, "--skip", "grouping", "speedup",
                           "--out", "check", "--results-dir", str(tmp_path)]) == 0
    assert "no CUDA device" in capsys.readouterr().out
    saved = json.loads((tmp_path / "check.json").read_text())
    assert saved["device"] == "cpu" and "grouping" not in saved
    rows = saved["agreement"]
    stages = [r["stage"] for r in rows]
    assert {f"inference {e} {m} (logits)" for e in ("sage", "gcn", "gat", "gin")
            for m in ("full_graph", "layerwise")} <= set(stages)
    assert {"SIGN training, 3 epochs (logits)", "surrogate scores (60 subsets)",
            "projection z (d = 32)", "subset solver (200 subsets)"} <= set(stages)
    # CPU against CPU: every check passes, each with its tolerance
    assert all(r["ok"] and r["max_abs_diff"] <= r["tolerance"] for r in rows), rows
    md = (tmp_path / "check.md").read_text()
    assert "## (a) GPU against CPU" in md and "tolerance" in md
