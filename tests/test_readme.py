"""The README's examples: every Python block compiles, the stage-by-stage example runs (on a
small graph, with small settings substituted for its sizes), and every command it lists is a
command of the CLI whose options it names exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.usefixtures("one_thread")


def blocks(lang: str) -> list[str]:
    """The fenced blocks of language ``lang`` ("" for a bare fence), fences paired in order."""
    found, current, inside = [], [], None
    for line in README.splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, current = line[3:].strip(), []
            else:
                if inside == lang:
                    found.append("\n".join(current) + "\n")
                inside = None
        elif inside is not None:
            current.append(line)
    return found


def test_python_blocks_compile():
    code = blocks("python")
    assert len(code) >= 3
    for i, block in enumerate(code):
        compile(block, f"README.md python block {i}", "exec")


def test_stage_by_stage_example_runs(tmp_path, monkeypatch):
    block = next(b for b in blocks("python") if "GroupingBenchmark" in b)
    small = {
        '"synthetic:preset=annotated_scarce"':
            '"synthetic:num_nodes=400,num_tasks=6,num_groups=2,min_community_size=20,'
            'internal_degree=8,feature_dim=8"',
        "num_subsets=1000, subset_size=5": "num_subsets=40, subset_size=3",
        "TrainConfig()": "TrainConfig(epochs=3, patience=0, batch_size=256)",
        "ModelConfig()": "ModelConfig(hidden=16)",
        "k=5": "k=2",
        "random_draws=5": "random_draws=2, workers=1",
        "range(3)": "range(2)",
    }
    for old, new in small.items():
        assert old in block, f"README example changed: {old!r} not found (update this test)"
        block = block.replace(old, new)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["affinity"].shape == (6, 6)
    assert sorted(set(scope["groups"].tolist())) == [0, 1]
    assert len(scope["runs"]) == 2


def test_listed_commands_and_options_exist():
    listing = next(b for b in blocks("") if b.lstrip().startswith("graphmtl run"))
    for line in listing.strip().splitlines():
        words = line.split("#")[0].split()
        if words[1] == "COMMAND":
            continue
        command = words[1:3] if words[1] in ("data",) else words[1:2]
        if words[1] == "baseline":
            command = ["baseline", "trained"]
        out = subprocess.run([sys.executable, "-m", "graphmtl.cli", *command, "--help"],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, (line, out.stderr)
        for flag in re.findall(r"--[a-z][a-z-]*", line):
            assert flag in out.stdout, f"{' '.join(command)}: README names {flag}"


def test_torchrun_examples_name_real_commands_and_options():
    text = "\n".join(blocks("bash")).replace("\\\n", " ")
    lines = [ln for ln in text.splitlines() if "-m graphmtl.cli" in ln]
    assert len(lines) >= 3
    for line in lines:
        tail = line.split("-m graphmtl.cli", 1)[1].split()
        out = subprocess.run([sys.executable, "-m", "graphmtl.cli", tail[0], "--help"],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, (line, out.stderr)
        for flag in re.findall(r"--[a-z][a-z-]*", " ".join(tail)):
            assert flag in out.stdout, f"{tail[0]}: README names {flag}"


def test_pyg_example_is_the_tested_one_of_the_docs():
    """The README's PyG example is docs/pyg.md's, which tests/test_find_groups.py runs."""
    docs = (ROOT / "docs" / "pyg.md").read_text()
    first = re.search(r"```python\n(.*?)```", docs, flags=re.S).group(1)
    assert first in blocks("python")
