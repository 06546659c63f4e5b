"""The experiments harness and the benchmark modules' shape: every module imports without side
effects, declares ``main``, answers ``--help`` as ``python -m experiments.NAME``, its declared
variants parse, and the README's declared list covers every results file. Nothing is measured."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import runpy
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

from experiments import assemble_readme, harness
from graphmtl.errors import GraphMTLError

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
#: Every runnable module of experiments/ (harness is the shared library, not a command).
MODULES = sorted(p.stem for p in EXPERIMENTS.glob("*.py") if p.stem not in ("__init__", "harness"))


def test_modules_listed():
    assert {"bench_data", "bench_grouping", "assemble_readme", "bench_gpu"} <= set(MODULES)


# ---------------------------------------------------------------------- module shape
def test_modules_import_without_side_effects(tmp_path):
    """In a fresh interpreter: importing every module prints nothing, writes no file, and leaves
    sys.path, the warning filters, torch's thread count and the environment as they were. The
    libraries they use are imported first (scipy, for one, sets warning filters on import)."""
    script = f"""
import os, sys, warnings, json, importlib
from pathlib import Path
import torch, torch_geometric, scipy.optimize, scipy.stats, sklearn.linear_model, sklearn.metrics
import graphmtl.affinity, graphmtl.clustering, graphmtl.data, graphmtl.evaluation
import graphmtl.models, graphmtl.pipeline, graphmtl.projection, graphmtl.training
root = Path({str(ROOT)!r})
def files():
    return sorted(str(p.relative_to(root)) + str(p.stat().st_mtime_ns)
                  for p in (root / "experiments").rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts)
before = (list(sys.path), list(warnings.filters), torch.get_num_threads(), dict(os.environ),
          files())
for m in {MODULES!r}:
    importlib.import_module("experiments." + m)
after = (list(sys.path), list(warnings.filters), torch.get_num_threads(), dict(os.environ),
         files())
names = ("sys.path", "warning filters", "torch threads", "environment", "files")
print(json.dumps([n for n, a, b in zip(names, before, after) if a != b]))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The only output is the (empty) list of what changed.
    assert proc.stdout.strip() == "[]", proc.stdout


def test_no_sys_path_hacks():
    for name in MODULES + ["harness"]:
        assert "sys.path" not in (EXPERIMENTS / f"{name}.py").read_text(), name


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_main_and_help_works(name, monkeypatch, capsys):
    mod = importlib.import_module(f"experiments.{name}")
    assert callable(getattr(mod, "main", None))
    # What `python -m experiments.NAME --help` runs, the __main__ guard included.
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the module is already imported
        with pytest.raises(SystemExit) as exc:
            runpy.run_module(f"experiments.{name}", run_name="__main__")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ")
    if hasattr(mod, "parser"):                  # the harness's options: named as it is run
        assert out.startswith(f"usage: python -m experiments.{name}")


def test_help_as_a_command():
    """One real ``python -m`` from the repository root: no path set up by hand."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "experiments.assemble_readme", "--help"],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: python -m experiments.assemble_readme" in proc.stdout


def _variants():
    for name in MODULES:
        mod = importlib.import_module(f"experiments.{name}")
        for variant in getattr(mod, "VARIANTS", {}):
            yield name, variant


@pytest.mark.parametrize("name,variant", list(_variants()))
def test_declared_variants_parse(name, variant):
    mod = importlib.import_module(f"experiments.{name}")
    args = harness.parse_args(mod.parser(), ["--variant", variant], mod.NAME, mod.VARIANTS)
    assert args.variant == variant and args.out == variant
    assert args.arguments == list(mod.VARIANTS[variant])
    assert "--out" not in mod.VARIANTS[variant]        # the variant's name is its result


def test_every_module_with_variants_has_a_parser():
    for name in MODULES:
        mod = importlib.import_module(f"experiments.{name}")
        if hasattr(mod, "VARIANTS"):
            assert isinstance(mod.parser(), argparse.ArgumentParser), name


# ---------------------------------------------------------------------- the README
def test_declared_results_cover_every_results_file():
    page, missing = assemble_readme.assemble(harness.RESULTS, assemble_readme.sections())
    declared = [n for _, ns in assemble_readme.sections() for n in ns]
    assert len(declared) == len(set(declared))
    present = {p.stem for p in harness.RESULTS.iterdir() if not p.name.startswith(".")}
    assert present <= set(declared)
    assert set(missing) == set(declared) - {p.stem for p in harness.RESULTS.glob("*.md")}
    assert page.startswith("# Experiments") and "## Goals at a glance" in page


def test_every_module_is_on_the_page():
    """A new benchmark module must be placed in the README's order (or it is invisible)."""
    commands = set(MODULES) - {"assemble_readme"}
    assert commands == set(assemble_readme.ORDER)


def test_readme_is_assembled():
    """experiments/README.md is what the assembler builds (run it after adding a result)."""
    assert assemble_readme.main(["--check"]) == 0


def _results(tmp_path, names):
    d = tmp_path / "results"
    d.mkdir()
    for n in names:
        (d / f"{n}.json").write_text("{}")
        (d / f"{n}.md").write_text(f"# Title of {n}\n\nCommand: x\n\n## Part\n\ntext\n")
    return d


def test_assemble_orders_skips_missing_and_demotes_headings(tmp_path):
    d = _results(tmp_path, ["b", "a"])
    page, missing = assemble_readme.assemble(d, [("m1", ["a", "gone"]), ("m2", ["b"])],
                                             preamble="# Top\n\nintro\n")
    assert missing == ["gone"]
    assert page.index("Title of a") < page.index("Title of b")
    assert "## Title of a (`results/a.md`)" in page and "### Part" in page
    assert page.startswith("# Top\n\nintro\n\n\n## Title of a") and page.endswith("text\n")


def test_assemble_fails_on_undeclared_files(tmp_path):
    d = _results(tmp_path, ["a", "stray"])
    (d / ".hidden.tmp.md").write_text("half-written")          # atomic writers' temp files
    with pytest.raises(GraphMTLError, match=r"stray\.json, stray\.md"):
        assemble_readme.assemble(d, [("m", ["a"])])
    with pytest.raises(GraphMTLError, match="declared twice: a"):
        assemble_readme.assemble(d, [("m", ["a"]), ("n", ["a", "stray"])])


def test_assemble_main_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "README.md"
    assert assemble_readme.main(["--output", str(out)]) == 0
    assert out.read_text() == assemble_readme.README.read_text()
    assert assemble_readme.main(["--check", "--output", str(out)]) == 0
    out.write_text("stale\n")
    assert assemble_readme.main(["--check", "--output", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err


def test_declared_results_forms():
    plain = types.SimpleNamespace(NAME="b", VARIANTS={"b_x": [], "b_y": ["--k", "1"]})
    assert harness.declared_results(plain) == ["b", "b_x", "b_y"]
    assert harness.declared_results(types.SimpleNamespace(NAME="c")) == ["c"]
    per_dataset = types.SimpleNamespace(NAME="g", DATASETS={"d1": 0, "d2": 0})
    assert harness.declared_results(per_dataset) == ["g_d1", "g_d2"]
    listed = types.SimpleNamespace(NAME="r", RESULT_NAMES=("r1",), VARIANTS={"r2": []})
    assert harness.declared_results(listed) == ["r1"]


# ---------------------------------------------------------------------- harness
def _parser():
    p = argparse.ArgumentParser()
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--flag", action="store_true")
    return p


VARIANTS = {"bench_x_big": ["--k", "9", "--flag"]}


def test_parse_args_defaults():
    args = harness.parse_args(_parser(), ["--k", "4"], "bench_x", VARIANTS)
    assert (args.k, args.out, args.results_dir, args.variant) == (4, "bench_x", harness.RESULTS,
                                                                  None)
    assert args.arguments == ["--k", "4"]
    assert args.command.endswith(".venv/bin/python -m experiments.bench_x --k 4")


def test_parse_args_variant(tmp_path):
    args = harness.parse_args(_parser(), ["--variant", "bench_x_big"], "bench_x", VARIANTS)
    assert (args.k, args.flag, args.out, args.variant) == (9, True, "bench_x_big", "bench_x_big")
    assert args.arguments == ["--k", "9", "--flag"]
    assert args.command.endswith("-m experiments.bench_x --variant bench_x_big")
    # --results-dir may go with a variant (it does not change the run) ...
    args = harness.parse_args(_parser(), ["--variant=bench_x_big", "--results-dir", str(tmp_path)],
                              "bench_x", VARIANTS)
    assert args.results_dir == tmp_path and args.k == 9


@pytest.mark.parametrize("argv", [["--variant", "bench_x_big", "--k", "2"],
                                  ["--variant", "nope"], ["--k", "two"]])
def test_parse_args_errors(argv, capsys):
    # ... nothing else may: a variant is a recorded run.
    with pytest.raises(SystemExit) as exc:
        harness.parse_args(_parser(), argv, "bench_x", VARIANTS)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m experiments.bench_x")
    if "--k" in argv and "bench_x_big" in argv:
        assert "remove --k 2" in err


def test_parse_args_without_variants():
    p = _parser()
    harness.parse_args(p, [], "bench_y")
    assert "--variant" not in p.format_help()


def test_command_prefixes(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(os, "nice", lambda inc: 10)
    assert harness.command("bench_x", ["--trial", "", "a b"]) == (
        "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m experiments.bench_x --trial '' 'a b'")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.setattr(os, "nice", lambda inc: 0)
    assert harness.command("bench_x", []) == ".venv/bin/python -m experiments.bench_x"


def test_machine_and_description():
    info = harness.machine()
    assert {"platform", "cpus", "python", "torch", "loadavg", "threads"} <= set(info)
    assert len(info["loadavg"]) == 3 and info["loadavg"] == [round(v, 2) for v in info["loadavg"]]
    text = harness.describe_machine(info)
    assert f"{info['cpus']} CPUs" in text and f"torch {info['torch']}" in text
    assert harness.describe_machine("x86_64, 2 cores") == "x86_64, 2 cores"
    assert len(harness.load_average()) == 3


def test_record():
    args = harness.parse_args(_parser(), ["--variant", "bench_x_big"], "bench_x", VARIANTS)
    rec = harness.Record(args)
    d = rec.to_dict()
    assert d["command"] == args.command and d["variant"] == "bench_x_big"
    assert d["arguments"] == ["--k", "9", "--flag"] and d["machine"]["cpus"] == os.cpu_count()
    assert d["loadavg_start"] == d["machine"]["loadavg"] and len(d["loadavg_end"]) == 3
    assert d["seconds"] >= 0 and json.loads(json.dumps(d)) == d
    md = rec.markdown()
    assert md.startswith(f"Command: `{args.command}`  \nMachine: ")
    assert "variant" not in harness.Record(harness.parse_args(_parser(), [], "bench_x")).to_dict()


def test_quick_results(tmp_path):
    args = argparse.Namespace(results_dir=harness.RESULTS)
    harness.quick_results(args)
    assert args.results_dir == harness.SMOKE
    args = argparse.Namespace(results_dir=tmp_path)
    harness.quick_results(args)
    assert args.results_dir == tmp_path


def test_md_table():
    assert harness.md_table(["a", "b|c"], [[1, "x|y"], ["", 2.5]], align="lr") == (
        "| a | b\\|c |\n|---|---:|\n| 1 | x\\|y |\n|  | 2.5 |")
    assert harness.md_table(["a"], [], align="c") == "| a |\n|:---:|"
    with pytest.raises(ValueError, match="2 letters for 1 columns"):
        harness.md_table(["a"], [], align="lr")


def test_write_results(tmp_path):
    j, m = harness.write_results("r", {"x": [1, 2]}, "# T\n\ntext\n\n\n", tmp_path / "new")
    assert (j, m) == (tmp_path / "new" / "r.json", tmp_path / "new" / "r.md")
    assert json.loads(j.read_text()) == {"x": [1, 2]}
    assert m.read_text() == "# T\n\ntext\n"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["r.json", "r.md"]
    # A failed write leaves the earlier result as it was.
    with pytest.raises(TypeError):
        harness.write_results("r", {"x": object()}, "# other", tmp_path / "new")
    assert json.loads(j.read_text()) == {"x": [1, 2]} and m.read_text() == "# T\n\ntext\n"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["r.json", "r.md"]


def test_run(capsys):
    def bad():
        raise GraphMTLError("--k: must be positive")

    assert harness.run(bad, "bench_x") == 2
    assert capsys.readouterr().err == "bench_x: error: --k: must be positive\n"
    assert harness.run(lambda: 3, "bench_x") == 3
    assert harness.run(lambda: {"a": 1}, "bench_x") == 0
