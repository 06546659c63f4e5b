"""experiments/gpu_check.py without CUDA: GPU parts skipped with a message, stages timed on the
CPU (tiny graph), JSON and markdown written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path (a GPU runs the real check)")
def test_gpu_check_cpu_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHMTL_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tiny = "synthetic:num_nodes=300,num_tasks=6,num_groups=2,min_community_size=10"
    res = mod.main(["--large", tiny, "--proj-batches", "1", "--epochs-goal", "2", "--dim", "4",
                    "--subsets", "40", "--out", str(tmp_path)])
    assert "CUDA is not available" in capsys.readouterr().out
    assert res["device"] == "cpu" and "agreement" not in res
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    st = saved["timings"]["stages"]
    assert {"load / generate graph", "projection setup (row selection)",
            "clustering: k auto, low-rank SDP on the device"} <= set(st)
    assert all(v["seconds"] >= 0 for v in st.values())
    assert saved["timings"]["graph"]["tasks"] == 6
    assert saved["timings"]["grouping_extrapolated"]["hours"] >= 0
    md = (tmp_path / "gpu_check.md").read_text()
    assert "CUDA is not available" in md and "(b) Grad-TAG stages" in md
    # The agreement code, run CPU against CPU: every check passes.
    rows = mod.agreement(tiny, "cpu")
    assert len(rows) == 15 and all(r["ok"] for r in rows), rows
