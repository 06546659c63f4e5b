import dataclasses
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
        affinity=AffinityConfig(method="gradtag", num_subsets=60, subset_size=3),
        k=2, compare=CompareConfig(pairwise=True, pairwise_pairs=4, random_draws=2, seeds=2,
                                   workers=1))
    return base.replace(**changes)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, run_pipeline(tiny_config(), out, quiet=True, progress=False)


def test_run_produces_groups_report_and_manifest(finished_run):
    out, result = finished_run
    assert result.groups.shape == (6,) and len(np.unique(result.groups)) == 2
    names = [m.name for m in result.methods]
    assert names[0] == "Grad-TAG gradient (offset)"
    assert names[1] == "pairwise affinity (naive)" and "planted groups" in names
    assert names[-2:] == ["all tasks (one model)", "random groups (mean of draws)"]
    for m in result.methods[:-2]:
        assert m.scores["ap"].shape == (6,) and np.isfinite(m.macro_ap)
        iv = m.vs_random["ap"]
        assert iv.seeds == 2 and iv.draws == 2 and iv.kind == "runs"
        assert m.verdict().split()[0] in ("better", "worse", "no")
    assert result.methods[0].ari is not None          # planted synthetic graph
    html = result.report_html.read_text()
    for section in ("Verdict", "Method comparison", "Where things are", "What to run next",
                    "random groups of the same sizes"):
        assert section in html, section
    assert "data:image/png;base64," in html and result.report_md.is_file()
    # the group models of the method's groups are kept, one checkpoint per group
    assert sorted(p.name for p in (out / "groups" / "models").iterdir()) == ["group_0",
                                                                            "group_1"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["data"] == TINY_DATA and "torch" in manifest["versions"]
    for stage in ("data", "base", "projection", "affinity", "clustering", "pairwise", "groups",
                  "report"):
        assert manifest["stages"][stage]["seconds"] is not None, stage
        assert manifest["stages"][stage]["peak_rss_mb"] > 0, stage
    md = result.report_md.read_text()
    assert "| stage | wall time | peak memory |" in md and "| base |" in md
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["k"] == 2 and len(summary["methods"]) == len(result.methods)
    groups = json.loads((out / "clustering" / "groups.json").read_text())
    assert sorted(t for g in groups["groups"].values() for t in g) == sorted(
        json.loads((out / "affinity" / "summary.json").read_text())["task_names"])


@pytest.mark.parametrize("method, label", [("surrogate", "Grad-TAG surrogate"),
                                           ("subspace", "shared subspace")])
def test_graph_only_run_needs_no_base_model_or_projection(tmp_path, method, label):
    cfg = tiny_config(affinity=AffinityConfig(method=method, num_subsets=20, subset_size=3),
                      compare=CompareConfig(pairwise=False, random_draws=1, seeds=1, workers=1))
    result = run_pipeline(cfg, tmp_path, quiet=True, progress=False)
    assert "base" not in result.executed and "projection" not in result.executed
    assert result.methods[0].name == label
    assert result.methods[0].vs_random["ap"].kind == "draws"   # one seed: over the draws
    for name in ("affinity", "subsets", "scores"):
        assert (tmp_path / "affinity" / f"{name}.npy").is_file()


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
    assert "projection" not in result.executed
    assert "affinity" in result.executed and "clustering" in result.executed
    assert "groups" in result.executed and "report" in result.executed


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


def test_stage_lines_say_ran_or_reused(finished_run, capsys):
    out, _ = finished_run
    run_pipeline(tiny_config(), out, quiet=False, progress=False)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 8 and all(line.endswith(": reused") for line in lines)


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


def test_plan_warns_up_front_with_the_flag_that_shrinks_a_stage():
    import torch

    from graphmtl.pipeline.plan import plan_run, plan_warnings

    class Big:   # 500 tasks on 400k nodes, 2 % of nodes labelled for training per task
        num_tasks, num_nodes, num_features = 500, 400_000, 64
        train_mask = torch.zeros(100, 500, dtype=torch.bool)
        train_mask[:2] = True
        val_mask = torch.ones(400_000, 1, dtype=torch.bool)     # every node a validation row

    cfg = PipelineConfig(compare=CompareConfig(pairwise_pairs="all"),
                         affinity=AffinityConfig(method="combined"))
    est = {e.stage: e for e in plan_run(cfg, Big)}
    assert est["pairwise"].models == 500 * 499 // 2 + 500
    warnings = plan_warnings(cfg, Big)
    assert any(w.startswith("stage pairwise: about") and "--pairwise-pairs N" in w
               for w in warnings)
    assert any(w.startswith("stage groups:") and "--seeds" in w for w in warnings)
    # the default surrogate scores a 100k-row sample of the 400k validation rows: under the
    # hour on a CPU; five times its subsets are not
    assert not any(w.startswith("stage affinity") for w in warnings)
    many = cfg.replace(affinity=AffinityConfig(method="combined", num_subsets=5000))
    assert any(w.startswith("stage affinity: about") and "--device cuda" in w
               for w in plan_warnings(many, Big))
    gpu = many.replace(train=many.train.replace(device="cuda"))
    assert not any(w.startswith("stage affinity") for w in plan_warnings(gpu, Big))
    tiny = type("Tiny", (Big,), {"num_tasks": 6, "num_nodes": 400,
                                 "val_mask": torch.ones(400, 1, dtype=torch.bool)})
    assert plan_warnings(tiny_config(), tiny) == []
    assert plan_warnings(tiny_config(affinity=AffinityConfig(method="surrogate")), tiny) == []


def test_plan_of_the_shared_subspace():
    import torch

    from graphmtl.pipeline.plan import plan_run, plan_warnings

    class Big:   # 500 tasks on 400k nodes, every node labelled for training and validation
        num_tasks, num_nodes, num_features = 500, 400_000, 64
        train_mask = torch.ones(400_000, 1, dtype=torch.bool)
        val_mask = torch.ones(400_000, 1, dtype=torch.bool)

    cfg = PipelineConfig(affinity=AffinityConfig(method="subspace"),
                         compare=CompareConfig(pairwise=False))
    est = {e.stage: e for e in plan_run(cfg, Big)}
    assert "base" not in est and 60 < est["affinity"].seconds < 3600     # measured: 240 s
    assert not any(w.startswith("stage affinity") for w in plan_warnings(cfg, Big))
    huge = cfg.replace(affinity=AffinityConfig(method="subspace", num_subsets=100_000))
    assert any(w.startswith("stage affinity: about") and "--subsets" in w
               for w in plan_warnings(huge, Big))


def test_default_affinity_is_the_shared_subspace():
    assert PipelineConfig().affinity.method == "subspace"


def test_group_models_are_fine_tuned_from_the_all_task_model_by_default():
    from graphmtl.evaluation import GroupingBenchmark

    assert PipelineConfig().compare.group_init == "all_tasks"
    from graphmtl.cli import build_parser

    args = build_parser("compare").parse_args(
        ["compare", "--data", "x", "--groups", "a=b", "--out", "o"])
    assert args.group_init == "all_tasks"
    assert GroupingBenchmark().group_init == "all_tasks"


def test_combined_run_trains_the_base_model_but_no_projection(tmp_path):
    cfg = tiny_config(affinity=AffinityConfig(method="combined", num_subsets=20, subset_size=3),
                      compare=CompareConfig(pairwise=False, random_draws=1, seeds=1, workers=1))
    result = run_pipeline(cfg, tmp_path, quiet=True, progress=False)
    assert "base" in result.executed and "projection" not in result.executed
    assert result.methods[0].name == "surrogate + head cosine"
    for name in ("affinity", "surrogate", "head_cosine"):
        assert (tmp_path / "affinity" / f"{name}.npy").is_file()


def test_group_init_fine_tunes_the_compared_models_and_reruns_only_the_comparison(tmp_path):
    cfg = tiny_config(affinity=AffinityConfig(method="subspace", num_subsets=20, subset_size=3),
                      compare=CompareConfig(pairwise=False, random_draws=1, seeds=1, workers=1,
                                            group_init="scratch"))
    first = run_pipeline(cfg, tmp_path, quiet=True, progress=False)
    assert not list(tmp_path.rglob("models.all_tasks"))
    tuned = cfg.replace(compare=dataclasses.replace(cfg.compare, group_init="all_tasks"))
    again = run_pipeline(tuned, tmp_path, quiet=True, progress=False)
    assert again.executed == ["groups", "report"]
    assert len(list(tmp_path.rglob("models.all_tasks/seed*/model.pt"))) == 1
    assert "fine-tuned from it" in (tmp_path / "report" / "report.md").read_text()
    np.testing.assert_array_equal(again.groups, first.groups)
    with pytest.raises(GraphMTLError, match="group_init: unknown 'warm'"):
        CompareConfig(group_init="warm")


def test_partner_signal_trains_the_draws_twice_and_reports_it(tmp_path):
    cfg = tiny_config(affinity=AffinityConfig(method="subspace", num_subsets=20, subset_size=3),
                      compare=CompareConfig(pairwise=False, random_draws=2, seeds=2, workers=1))
    assert not cfg.compare.partner_signal                       # opt-in: it doubles the cost
    run_pipeline(cfg, tmp_path, quiet=True, progress=False)
    assert json.loads((tmp_path / "groups" / "comparison.json").read_text())[
        "partner_signal"] == {}
    on = cfg.replace(compare=dataclasses.replace(cfg.compare, partner_signal=True))
    again = run_pipeline(on, tmp_path, quiet=True, progress=False)
    assert again.executed == ["groups", "report"]
    signal = json.loads((tmp_path / "groups" / "comparison.json").read_text())["partner_signal"]
    assert len(signal["per_seed"]) == 2 and signal["mean"]["trainings"] == 2
    assert signal["mean"]["observations"] == sum(s["observations"] for s in signal["per_seed"])
    assert "Partner signal (the random draws trained twice): A task's partners decide" in (
        tmp_path / "report" / "report.md").read_text()
    from graphmtl.cli import build_parser
    from graphmtl.cli.run import configure

    args = build_parser("run").parse_args(["run", "--data", "x", "--partner-signal"])
    assert configure(args).compare.partner_signal
