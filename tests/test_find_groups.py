"""graphmtl.find_groups: one call from a PyG Data (or OGB dataset, graph, spec) to groups."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

import graphmtl
from graphmtl.data import MultiTaskGraph, make_planted_graph
from graphmtl.data.synthetic import SyntheticConfig
from graphmtl.errors import GraphMTLError
from graphmtl.models import ModelConfig
from graphmtl.pipeline import PipelineConfig
from graphmtl.pipeline.discover import GroupDiscovery, find_groups

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(epochs=2, hidden=8, dim=8, num_subsets=30, subset_size=3, num_threads=1,
            batch_size=256, verbose=False)


def tiny_graph() -> MultiTaskGraph:
    return make_planted_graph(SyntheticConfig.preset(
        "default", num_nodes=300, num_tasks=5, num_groups=2, min_community_size=20,
        internal_degree=8.0, feature_dim=8))


@pytest.fixture(scope="module")
def discovery(tmp_path_factory):
    """One tiny run from a PyG Data with NaN-marked unlabelled pairs and no masks."""
    data = tiny_graph().to_pyg()
    y = data.y.float()
    y[:3, 0] = float("nan")
    data = Data(x=data.x, edge_index=data.edge_index, y=y, task_names=data.task_names)
    out = tmp_path_factory.mktemp("fg") / "run"
    return data, out, find_groups(data, k=2, out=out, **TINY)


def test_result_by_task_name(discovery):
    data, out, r = discovery
    n = len(data.task_names)
    assert isinstance(r, GroupDiscovery) and r.task_names == data.task_names and r.k == 2
    assert sorted(t for ts in r.groups.values() for t in ts) == sorted(data.task_names)
    assert all(r.group_of[t] == g for g, ts in r.groups.items() for t in ts)
    assert [r.group_of[t] for t in r.task_names] == r.labels.tolist()
    np.testing.assert_array_equal(r.labels, r.pipeline.groups)
    assert r.affinity.shape == (n, n)
    np.testing.assert_array_equal(r.affinity, np.load(out / "affinity" / "affinity.npy"))
    assert set(r.model_paths) == set(r.groups) and all(p.is_file() for p in r.model_paths.values())
    names = [m.name for m in r.methods]
    assert names[0] == "shared subspace" and "all tasks (one model)" in names
    assert any(m.startswith("random groups") for m in names)
    assert not any(m.startswith("pairwise") for m in names)      # off by default here
    assert r.report_html.is_file() and r.report_md.is_file() and r.run_dir == out
    text = str(r)
    assert text.startswith("2 groups of 5 tasks:") and "shared subspace" in text


def test_graph_is_saved_in_the_run_and_options_reach_the_config(discovery):
    data, out, r = discovery
    assert r.graph_path.parent == (out / "input").resolve() and r.graph_path.suffix == ".npz"
    g = MultiTaskGraph.load(r.graph_path)
    labelled = g.train_mask | g.val_mask | g.test_mask
    assert not labelled[:3, 0].any() and labelled[3:, 0].all()   # NaN pairs left out
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["data"] == str(r.graph_path) and config["k"] == 2
    assert config["train"]["epochs"] == 2 and config["model"]["hidden"] == 8
    assert config["projection"]["dim"] == 8 and config["affinity"]["num_subsets"] == 30
    assert config["compare"]["pairwise"] is False


def test_load_model_by_group_or_task(discovery):
    _, _, r = discovery
    task = r.task_names[0]
    model = r.load_model(task)
    assert model.num_tasks == len(r.groups[r.group_of[task]])
    with pytest.raises(GraphMTLError, match="group 99: unknown"):
        r.load_model(99)


def test_same_graph_in_another_form_reuses_the_run(discovery):
    data, out, first = discovery
    graph = MultiTaskGraph.from_pyg(data)
    again = find_groups(graph, k=2, out=out, **TINY)
    assert again.graph_path == first.graph_path and again.pipeline.executed == []
    assert again.groups == first.groups


class Stop(Exception):
    pass


def stop_before_running(monkeypatch) -> list:
    """Replace run_pipeline with a recorder of its config that stops find_groups there."""
    from graphmtl.pipeline import discover

    seen = []

    def record(cfg, run_dir, **kw):
        seen.append(cfg)
        raise Stop

    monkeypatch.setattr(discover, "run_pipeline", record)
    return seen


def test_other_inputs_convert(tmp_path, monkeypatch):
    seen = stop_before_running(monkeypatch)
    g = tiny_graph()

    class FakeOGB:
        name, task_type = "ogbn-toy", "binary classification"

        def __getitem__(self, i):
            return Data(x=g.x, edge_index=g.edge_index, y=g.y.long())

        def get_idx_split(self):
            return {"train": torch.arange(0, 150), "valid": torch.arange(150, 220),
                    "test": torch.arange(220, 300)}

    def run(data, **kw):
        with pytest.raises(Stop):
            find_groups(data, k=2, out=tmp_path / "r", verbose=False, **kw)
        return MultiTaskGraph.load(seen[-1].data)

    assert run(FakeOGB()).task_names == [f"toy-{j}" for j in range(5)]
    torch.save(g.to_pyg(), tmp_path / "g.pt")
    assert torch.equal(run(str(tmp_path / "g.pt")).y, g.y)
    assert run(g.to_pyg().to_dict(), task_names=list("abcde")).task_names == list("abcde")
    assert seen[-1].compare.pairwise is False and seen[-1].k == 2


def test_bad_options_are_one_line_errors():
    g = tiny_graph()
    with pytest.raises(GraphMTLError, match="^epoch: unknown option of find_groups"):
        find_groups(g, epoch=3)
    with pytest.raises(GraphMTLError, match="^model: expected a ModelConfig, got dict"):
        find_groups(g, model={"hidden": 3})
    with pytest.raises(GraphMTLError, match="^task_names: applies only to a PyG Data"):
        find_groups(g, task_names=["a"])
    with pytest.raises(GraphMTLError, match="^k.*expected a positive integer"):
        find_groups(g, k=0)
    with pytest.raises(GraphMTLError, match="^config: expected a PipelineConfig"):
        find_groups(g, config={"epochs": 3})
    with pytest.raises(GraphMTLError, match="^y: expected a 2-d"):
        find_groups(Data(y=torch.zeros(4), edge_index=torch.zeros(2, 0, dtype=torch.long)))


def test_config_and_parts_combine(tmp_path, monkeypatch):
    seen = stop_before_running(monkeypatch)
    base = PipelineConfig(seed=7)
    with pytest.raises(Stop):
        find_groups(tiny_graph(), out=tmp_path, config=base, model=ModelConfig(encoder="gcn"),
                    hidden=24, pairwise_pairs=3, cluster_solver="exact")
    cfg = seen[0]
    assert cfg.seed == 7 and cfg.model.encoder == "gcn" and cfg.model.hidden == 24
    assert cfg.compare.pairwise is True and cfg.compare.pairwise_pairs == 3   # config's default
    assert cfg.cluster_solver == "exact" and cfg.k == "auto"


def test_top_level_is_lazy():
    code = ("import sys, graphmtl; assert 'torch' not in sys.modules; "
            "f = graphmtl.find_groups; assert 'torch' in sys.modules; print(f.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "graphmtl.pipeline.discover"
    assert graphmtl.find_groups is find_groups and graphmtl.GroupDiscovery is GroupDiscovery
    with pytest.raises(AttributeError):
        graphmtl.no_such_thing


def test_docs_example_runs(tmp_path, monkeypatch, capsys):
    """The example in docs/pyg.md, as written (in a temporary working directory)."""
    text = (ROOT / "docs" / "pyg.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    assert "graphmtl.find_groups(data" in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/pyg.md", "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    assert out.startswith("3 groups of 12 tasks:") and "random groups of the same sizes" in out
    assert (tmp_path / "runs" / "pyg-example" / "report" / "report.html").is_file()
