"""What every benchmark shares: where results go, the machine they ran on, the command that made
them, markdown tables, and the list of result pages that make up ``experiments/README.md``.

A benchmark is a module ``experiments/NAME.py`` with a ``main()``; run it as
``python -m experiments.NAME [args]``. It writes ``results/<result>.json`` (the numbers, with the
command and the machine) and ``results/<result>.md`` (a table and its reading) through
:func:`write_results`.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
#: Scratch space of long benchmarks (resumable work, trained models); not versioned.
WORK = ROOT / "experiments" / "work"


def machine() -> dict[str, Any]:
    """The machine and software a result was measured on, and its load right now."""
    import numpy
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "numpy": numpy.__version__,
        "loadavg": [round(v, 2) for v in os.getloadavg()],
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    if torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
    return info


def command(module: str, argv: Sequence[str] | None = None) -> str:
    """The command line that reproduces this run (``python -m experiments.NAME ...``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    env = "OMP_NUM_THREADS=1 " if os.environ.get("OMP_NUM_THREADS") == "1" else ""
    return f"{env}.venv/bin/python -m experiments.{module} " + " ".join(shlex.quote(a)
                                                                       for a in args)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header))] + [line(r) for r in rows])


def write_results(name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md`` atomically."""
    from graphmtl.utils.io import atomic_path, atomic_write_json

    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    atomic_write_json(json_path, data)
    with atomic_path(md_path) as tmp:
        tmp.write_text(markdown.rstrip() + "\n")
    return json_path, md_path
