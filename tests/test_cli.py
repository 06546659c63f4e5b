"""The command line as a whole: lazy start-up, help with every default read from the config
classes, one-line errors and warnings, validation before any work, no leftovers on failure,
task names through every step."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from graphmtl.cli import SUBCOMMANDS, build_parser, main
from graphmtl.cli._common import HelpFormatter, config_values
from test_training import planted_graph

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    """A saved 6-task graph (tasks t0..t5)."""
    path = tmp_path_factory.mktemp("data") / "g.npz"
    planted_graph(N=120).save(path)
    return path


@pytest.fixture(scope="module")
def checkpoint(npz, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base")
    assert main(["train", "--data", str(npz), "--epochs", "1", "--hidden", "8", "--threads", "1",
                 "--model", "sage", "--no-progress", "--out", str(out)]) == 0
    return out / "model.pt"


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphmtl: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# ----------------------------------------------------------------------------- start-up and help

def test_top_level_help_does_not_import_torch():
    code = ("import sys; from graphmtl.cli import main; rc = main(['--help']); "
            "print(rc, 'torch' in sys.modules, 'numpy' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "0 False False"
    for name in ("train", "project", "affinity", "cluster", "run"):
        assert re.search(rf"^\s+{name}\s+\S", proc.stdout, re.M), name


def test_only_the_command_run_is_built_in_full():
    sub = _subparsers(build_parser("cluster"))
    assert any("--affinity" in a.option_strings for a in sub["cluster"]._actions)
    assert not any("--data" in a.option_strings for a in sub["train"]._actions)
    assert build_parser("*") is not None  # every command registers (a new config field whose
    # type the CLI cannot map fails here, not in a user's hands)


def test_every_default_is_shown_in_help():
    """Each option with a default shows it; for `run` (defaults from the PipelineConfig, so a
    --config file is not overridden) the help shows the config's value."""
    from graphmtl.pipeline import PipelineConfig

    def run_default(dest):  # "train.epochs" -> PipelineConfig().train.epochs
        section, field = dest.split(".")
        obj = PipelineConfig()
        return getattr(obj if section == "pipeline" else getattr(obj, section), field)

    checked = 0
    for name, p in _subparsers(build_parser("*")).items():
        parsers = [p] + list(_subparsers(p).values()) if name == "data" else [p]
        for parser in parsers:
            fmt = HelpFormatter(parser.prog)
            for a in parser._actions:
                if not a.option_strings or a.required or a.dest == "help":
                    continue
                default = a.default
                if default is argparse.SUPPRESS and "." in a.dest:
                    default = run_default(a.dest)
                elif a.nargs == 0:
                    continue  # a plain flag: off unless given
                text = fmt._get_help_string(a) % {"default": a.default}
                if default is not None:
                    assert "(default: " in text, (parser.prog, a.option_strings, text)
                    checked += 1
    assert checked > 70


def _help(command: str) -> str:
    return re.sub(r"\s+", " ", _subparsers(build_parser(command))[command].format_help())


def test_help_defaults_are_read_from_the_config_classes():
    from graphmtl.affinity import GradTAGEstimator
    from graphmtl.clustering.estimator import SOLVERS
    from graphmtl.pipeline import PipelineConfig
    from graphmtl.projection import ProjectionConfig
    from graphmtl.training import TrainConfig

    d, est = PipelineConfig(), GradTAGEstimator()
    def shown(text, option, width=250):  # the help of `option` in the options list
        return text.rsplit(option, 1)[1][:width]

    assert f"(default: {TrainConfig().epochs})" in shown(_help("train"), "--epochs EPOCHS")
    assert f"(default: {ProjectionConfig().dim})" in shown(_help("project"), "--dim DIM")
    aff = _help("affinity")
    assert f"(default: {est.num_subsets})" in shown(aff, "--subsets SUBSETS", 80)
    assert f"(default: {est.subset_size})" in shown(aff, "--size SIZE", 80)
    assert "--standardize, --no-standardize" in aff
    run = _help("run")
    # None = each estimator's own default, said in the help text
    assert d.affinity.num_subsets is None
    assert "estimator's own default" in shown(run, "--subsets SUBSETS", 80)
    assert f"(default: {d.affinity.method})" in shown(run, "--affinity {", 700)
    assert f"(default: {d.train.epochs})" in shown(run, "--epochs EPOCHS")
    assert f"(default: {d.projection.train_budget})" in shown(run, "--train-budget TRAIN_BUDGET")
    assert "{" + ",".join(SOLVERS) + "}" in run                 # admm included
    assert "{" + ",".join(SOLVERS) + "}" in _help("cluster")


# ----------------------------------------------------------------------------- run: config, flags

def test_run_flags_override_config_file_which_overrides_defaults(tmp_path):
    from graphmtl.cli.run import configure
    from graphmtl.pipeline import PipelineConfig

    (tmp_path / "c.json").write_text(json.dumps({"train": {"epochs": 3, "lr": 0.5},
                                                 "k": 4}))
    parser = build_parser("run")
    args = parser.parse_args(["run", "--config", str(tmp_path / "c.json"), "--epochs", "7",
                              "--budget", "50", "--val-budget", "20", "--solver", "admm",
                              "--no-pairwise", "--layers", "3", "--model", "sage"])
    cfg = configure(args)
    d = PipelineConfig()
    assert (cfg.train.epochs, cfg.train.lr, cfg.k) == (7, 0.5, 4)
    assert (cfg.projection.train_budget, cfg.projection.val_budget) == (50, 20)
    assert cfg.cluster_solver == "admm" and cfg.compare.pairwise is False
    assert cfg.model.num_layers == 3 and cfg.train.fanouts == (10, 10, 10)
    assert cfg.affinity == d.affinity and cfg.projection.dim == d.projection.dim
    # nothing given: exactly the defaults
    assert configure(parser.parse_args(["run"])) == d


@pytest.mark.parametrize("argv, message", [
    (["--k", "0"], "--k: expected a positive integer or 'auto', got '0'"),
    (["--hidden", "0"], "--hidden: must be >= 1, got 0"),
    (["--budget", "1"], "--budget: must be >= 2"),
    (["--model", "sage", "--layers", "3", "--fanouts", "5,5"], "(--fanouts): 2 values"),
    (["--solver", "nope"], "--solver: invalid choice"),
    (["--epochs", "x"], "--epochs: expected an integer, got 'x'"),
])
def test_run_bad_flags_fail_before_anything(argv, message, tmp_path, capsys, monkeypatch):
    import graphmtl.pipeline

    monkeypatch.setattr(graphmtl.pipeline, "run_pipeline", _must_not_run)
    assert main(["run", *argv, "--out", str(tmp_path / "r")]) == 2
    assert message in _one_error(capsys)
    assert not (tmp_path / "r").exists()


def _must_not_run(*args, **kwargs):
    raise AssertionError("run_pipeline was called")


def test_run_bad_config_file_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "c.npy", np.zeros(3))
    assert main(["run", "--config", str(tmp_path / "c.npy")]) == 2
    assert "--config" in _one_error(capsys)
    (tmp_path / "c.json").write_text(json.dumps({"train": {"epoch": 3}}))
    assert main(["run", "--config", str(tmp_path / "c.json")]) == 2
    assert "unknown key 'train.epoch'" in _one_error(capsys)


def test_run_late_k_fails_before_any_stage(npz, tmp_path, capsys, monkeypatch):
    """--k larger than the number of tasks: an error naming --k and the task count, before the
    run directory exists and before run_pipeline is called."""
    import graphmtl.pipeline

    monkeypatch.setattr(graphmtl.pipeline, "run_pipeline", _must_not_run)
    out = tmp_path / "new" / "run"
    assert main(["run", "--data", str(npz), "--k", "99", "--out", str(out)]) == 2
    err = _one_error(capsys)
    assert "--k" in err and "99 groups for 6 tasks" in err
    assert not (tmp_path / "new").exists()


def test_validate_against():
    from graphmtl.errors import GraphMTLError
    from graphmtl.pipeline import PipelineConfig

    class Data:
        num_tasks = 3

    PipelineConfig(k=3).validate_against(Data())
    with pytest.raises(GraphMTLError, match=r"k \(--k\): 4 groups for 3 tasks"):
        PipelineConfig(k=4).validate_against(Data())
    with pytest.raises(GraphMTLError, match="'auto': needs at least 4 tasks"):
        PipelineConfig().validate_against(Data())


# ----------------------------------------------------------------------------- stage commands

@pytest.mark.parametrize("tasks, message", [
    ("7", "--tasks: task 7: out of range (the data has 6 tasks, positions 0-5)"),
    ("t0,zz", "--tasks: task 'zz': unknown"),
    ("t1,1", "--tasks: task 't1' listed more than once"),
])
def test_train_task_selection_errors(npz, tmp_path, capsys, tasks, message):
    assert main(["train", "--data", str(npz), "--tasks", tasks, "--out",
                 str(tmp_path / "o")]) == 2
    assert message in _one_error(capsys)
    assert not (tmp_path / "o").exists()


def test_train_positions_select_tasks(npz, tmp_path, capsys):
    assert main(["train", "--data", str(npz), "--tasks", "2,t4", "--epochs", "1", "--hidden", "4",
                 "--threads", "1", "--no-progress", "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "results.json").read_text())["tasks"] == ["t2", "t4"]


def test_checkpoint_error_is_short_and_ours(npz, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage" * 100)
    assert main(["project", "--checkpoint", str(bad), "--data", str(npz),
                 "--out", str(tmp_path / "s")]) == 2
    err = _one_error(capsys)
    assert "not a readable graphmtl checkpoint" in err and "weights_only" not in err
    assert len(err.replace(str(bad), "")) < 150 and not (tmp_path / "s").exists()


@pytest.mark.parametrize("case", ["train", "project", "affinity", "cluster", "baseline",
                                  "prepare"])
def test_failed_commands_leave_nothing_behind(case, npz, checkpoint, tmp_path, capsys):
    """Each command fails on a setting only the data can refute; the output (in a new nested
    folder) is not created, or is removed again."""
    from graphmtl.testing.stores import write_synthetic_store

    out = tmp_path / "new" / "out"
    if case == "train":
        argv = ["train", "--data", str(npz), "--tasks", "9", "--out", str(out)]
    elif case == "project":
        argv = ["project", "--checkpoint", str(checkpoint), "--data", str(npz), "--fanouts", "3",
                "--out", str(out)]
    elif case == "affinity":
        write_synthetic_store(tmp_path / "s", n=4, d=5, train_rows=20, val_rows=20)
        argv = ["affinity", "--store", str(tmp_path / "s"), "--size", "5", "--out", str(out)]
    elif case == "cluster":
        np.save(tmp_path / "A.npy", np.eye(5))
        argv = ["cluster", "--affinity", str(tmp_path / "A.npy"), "--k", "6",
                "--out", str(out / "g.json")]
    elif case == "baseline":
        argv = ["baseline", "trained", "--data", str(npz), "--checkpoint", str(checkpoint),
                "--size", "7", "--out", str(out)]
    else:
        argv = ["data", "prepare", str(tmp_path / "absent.npz"), "--out", str(out / "g.npz")]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    _one_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_cleanup_on_failure_keeps_what_existed_and_interrupted_work(tmp_path):
    from graphmtl.cli._common import cleanup_on_failure

    (tmp_path / "old").mkdir()
    with pytest.raises(RuntimeError):
        with cleanup_on_failure(tmp_path / "old", tmp_path / "a" / "b" / "c"):
            (tmp_path / "a" / "b" / "c").mkdir(parents=True)
            (tmp_path / "old" / "f").write_text("x")
            raise RuntimeError
    assert (tmp_path / "old" / "f").exists() and not (tmp_path / "a").exists()
    with pytest.raises(KeyboardInterrupt):
        with cleanup_on_failure(tmp_path / "k"):
            (tmp_path / "k").mkdir()
            raise KeyboardInterrupt
    assert (tmp_path / "k").is_dir()                # a re-run resumes from it
    with pytest.raises(RuntimeError):
        with cleanup_on_failure(tmp_path / "r", keep=lambda: True):
            (tmp_path / "r").mkdir()
            raise RuntimeError
    assert (tmp_path / "r").is_dir()


def test_usage_errors_are_one_line(capsys):
    assert main(["train", "--data", "x"]) == 2
    err = _one_error(capsys)
    assert "--out" in err and "graphmtl train --help" in err
    assert main(["cluster", "--affinity", "a.npy", "--out", "g.json", "--k", "many"]) == 2
    assert _one_error(capsys) == ("graphmtl: error: --k: expected a positive integer or 'auto', "
                                  "got 'many'")


# ----------------------------------------------------------------------------- warnings, names

def test_warnings_are_one_line(capsys):
    from graphmtl.cli._common import one_line_warnings

    with one_line_warnings():
        warnings.warn("3 task pair(s)\n   never share a subset", RuntimeWarning)
    err = capsys.readouterr().err
    assert err == "graphmtl: warning: 3 task pair(s) never share a subset\n"


def test_command_warnings_are_one_line(tmp_path, capsys):
    from graphmtl.testing.stores import write_synthetic_store

    write_synthetic_store(tmp_path / "s", n=8, d=5, train_rows=30, val_rows=30, seed=0)
    assert main(["affinity", "--store", str(tmp_path / "s"), "--subsets", "2", "--size", "2",
                 "--threads", "1", "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("graphmtl: warning: ") for line in err)
    assert not any("Warning:" in line or ".py:" in line for line in err)


def test_cluster_names_groups_from_the_affinity_summary(tmp_path, capsys):
    from graphmtl.testing.stores import write_synthetic_store

    write_synthetic_store(tmp_path / "s", n=6, d=6, train_rows=40, val_rows=40, seed=0)
    assert main(["affinity", "--store", str(tmp_path / "s"), "--subsets", "60", "--size", "3",
                 "--threads", "1", "--out", str(tmp_path / "a")]) == 0
    names = json.loads((tmp_path / "a" / "summary.json").read_text())["task_names"]
    assert main(["cluster", "--affinity", str(tmp_path / "a" / "affinity.npy"), "--k", "2",
                 "--out", str(tmp_path / "g.json")]) == 0
    res = json.loads((tmp_path / "g.json").read_text())
    assert sorted(sum(res["groups"], [])) == sorted(names) and res["task_names"] == names
    # No summary next to the matrix: positions, as before.
    np.save(tmp_path / "A.npy", np.load(tmp_path / "a" / "affinity.npy"))
    assert main(["cluster", "--affinity", str(tmp_path / "A.npy"), "--k", "2",
                 "--out", str(tmp_path / "p.json")]) == 0
    assert sorted(sum(json.loads((tmp_path / "p.json").read_text())["groups"], [])) == \
        list(range(6))


def test_data_summary_lists_task_names(npz, capsys):
    assert main(["data", "summary", str(npz), "--tasks", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in info["task_list"]] == [f"t{i}" for i in range(6)]
    assert info["spec"] == str(npz)
    row = info["task_list"][0]
    assert row["train"]["rows"] >= row["train"]["positives"] > 0
    assert main(["data", "summary", str(npz), "--tasks"]) == 0
    out = capsys.readouterr().out
    assert all(re.search(rf"^\s+{i}\s+t{i}\s", out, re.M) for i in range(6))


# ----------------------------------------------------------------------------- parsers

def test_config_values_and_flag_names():
    from graphmtl.cli._common import flag_names

    ns = argparse.Namespace(**{"train.epochs": 3, "train.lr": 0.1, "model.hidden": 4})
    assert config_values(ns, "train") == {"epochs": 3, "lr": 0.1}
    assert flag_names("train epochs: must be >= 1", {"epochs": "--epochs"}) == \
        "--epochs: must be >= 1"
    assert flag_names("projection params 're:x': no match", {"params": "--params"}) == \
        "--params 're:x': no match"
    assert flag_names("other: x", {"epochs": "--epochs"}) == "other: x"


def test_parse_helpers():
    from graphmtl.cli._common import parse_k, parse_size, resolve_tasks
    from graphmtl.errors import GraphMTLError

    assert parse_k("auto") == "auto" and parse_k("4") == 4
    for bad in ("0", "-2", "x", "2.5"):
        with pytest.raises(GraphMTLError, match="--k"):
            parse_k(bad)
    assert parse_size("3") == 3 and parse_size("2-5") == (2, 5)
    assert resolve_tasks("all", ["a"]) == "all"
    assert resolve_tasks(["b", "0"], ["a", "b"]) == ["b", "a"]
    with pytest.raises(GraphMTLError, match="out of range"):
        resolve_tasks(["-1"], ["a", "b"])


def test_docstring_args():
    from graphmtl.cli._common import docstring_args

    class C:
        """Title.

        Args:
            a: first line
                continued ``x`` (see :class:`~pkg.mod.Thing`).
            b, c: shared 50%.

        Returns:
            nothing
        """

    assert docstring_args(C) == {"a": "first line continued x (see Thing).",
                                 "b": "shared 50%%.", "c": "shared 50%%."}


@dataclass(frozen=True)
class Toy:
    """Args:
        size: how many.
        mode: which one.
        on: a switch.
        fanouts: per layer.
        limit: optional cap.
    """

    size: int = 3
    mode: Literal["a", "b"] = "a"
    on: bool = True
    fanouts: tuple[int, ...] = (4, 2)
    limit: int | None = None
    kind: str = field(default="x", metadata={"choices": ("x", "y")})


def test_config_options_from_a_dataclass():
    from graphmtl.cli._common import Parser, build_config, config_options

    p = Parser(prog="t")
    flags = config_options(p, Toy, "toy", flags={"size": "--n"})
    assert flags["size"] == "--n" and flags["on"] == "--on"
    args = p.parse_args(["--n", "5", "--mode", "b", "--no-on", "--fanouts", "3,1", "--kind", "y"])
    assert build_config(args, "toy", Toy) == Toy(5, "b", False, (3, 1), None, "y")
    with pytest.raises(SystemExit):
        p.parse_args(["--mode", "c"])
    q = Parser(prog="t")
    config_options(q, Toy(size=9), "toy", override=True)
    assert config_values(q.parse_args([]), "toy") == {}
    assert "(default: 9)" in q.format_help() and "(default: 4,2)" in q.format_help()
    assert build_config(q.parse_args(["--limit", "2"]), "toy", lambda **kw: replace(Toy(), **kw)
                        ) == Toy(limit=2)


def test_subcommand_list_is_complete():
    assert set(SUBCOMMANDS) >= {"data", "train", "project", "affinity", "baseline", "cluster",
                                "run"}
