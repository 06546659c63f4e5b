"""What every benchmark shares: where results go, the machine they ran on, the command that made
them, its declared variants, markdown tables, and atomic result writing.

A benchmark is a module ``experiments/NAME.py`` with ``NAME``, ``parser()`` (its own options),
``main(argv=None)`` and, when it has recorded runs with other settings, ``VARIANTS``: result name
-> the options that produce it. Run it as ``python -m experiments.NAME [options]`` or
``python -m experiments.NAME --variant RESULT``. It writes ``results/<result>.json`` (the numbers,
with the command and the machine) and ``results/<result>.md`` (a table and its reading) through
:func:`write_results`; ``python -m experiments.assemble_readme`` joins the pages into
``experiments/README.md`` in the order it declares, and fails on results no module declares.

A benchmark's ``main`` typically reads::

    args = parse_args(parser(), argv, NAME, VARIANTS)  # adds --out, --results-dir, --variant
    record = Record(args)                     # command, machine, load and time at start
    ...                                       # the measurements
    write_results(args.out, {**record.to_dict(), ...}, markdown, args.results_dir)

and ends with ``if __name__ == "__main__": raise SystemExit(run(main, NAME))``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
#: Scratch space of long benchmarks (resumable work, trained models, smoke-run results); not
#: versioned.
WORK = ROOT / "experiments" / "work"
#: Where smoke runs (``--quick``) write their results unless ``--results-dir`` says otherwise.
SMOKE = WORK / "results"
#: The shared data sets (SNAP files, BlogCatalog, ...): ``$GRAPHMTL_DATA``, else
#: ``../shared/datasets`` next to the repository.
DATA_ROOT = Path(os.environ.get("GRAPHMTL_DATA") or ROOT.parent / "shared" / "datasets")


# ---------------------------------------------------------------------- machine and command
def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 2 decimals."""
    return [round(v, 2) for v in os.getloadavg()]


def machine() -> dict[str, Any]:
    """The machine and software a result was measured on, and its load right now."""
    import numpy
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "numpy": numpy.__version__,
        "loadavg": load_average(),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    if torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
    return info


def describe_machine(info: Mapping[str, Any] | str) -> str:
    """One line for a results page: ``x86_64, 2 CPUs, Python 3.11.7, torch 2.5.1, 1 torch
    thread(s)[, GPU]``. A string (the free-form machine line of results recorded before this
    module existed) is returned as it is."""
    if isinstance(info, str):
        return info
    parts = [str(info.get("machine") or info.get("platform", "?")), f"{info.get('cpus')} CPUs"]
    for key, label in (("python", "Python"), ("torch", "torch")):
        if info.get(key):
            parts.append(f"{label} {info[key]}")
    if info.get("threads") is not None:
        parts.append(f"{info['threads']} torch thread(s)")
    if info.get("cuda"):
        parts.append(str(info["cuda"]))
    return ", ".join(parts)


def command(module: str, argv: Sequence[str] | None = None) -> str:
    """The command line that reproduces this run
    (``[OMP_NUM_THREADS=1] [nice -n N] .venv/bin/python -m experiments.NAME ...``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    prefix = "OMP_NUM_THREADS=1 " if os.environ.get("OMP_NUM_THREADS") == "1" else ""
    niceness = os.nice(0)
    if niceness > 0:
        prefix += f"nice -n {niceness} "
    return " ".join([f"{prefix}.venv/bin/python -m experiments.{module}",
                     *(shlex.quote(a) for a in args)])


# ---------------------------------------------------------------------- options and variants
def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None, name: str,
               variants: Mapping[str, Sequence[str]] | None = None) -> argparse.Namespace:
    """Add the options every benchmark shares, parse ``argv`` (default ``sys.argv[1:]``).

    Shared options: ``--out NAME`` (the result name, default ``name``), ``--results-dir DIR``
    (default ``experiments/results``) and, when ``variants`` are declared, ``--variant RESULT``:
    parse the options declared for ``RESULT`` instead and write ``results/RESULT.{json,md}``.
    A variant is a recorded run, so only ``--results-dir`` may be given with it.

    The namespace gains ``variant`` (or ``None``), ``arguments`` (the options in effect: the
    variant's or ``argv``) and ``command`` (:func:`command` of what was typed).
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser.prog = f"python -m experiments.{name}"
    parser.add_argument("--out", default=name, metavar="NAME",
                        help=f"result name: RESULTS_DIR/NAME.json and .md (default {name})")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, metavar="DIR",
                        help="where results are written (default experiments/results)")
    if variants:
        parser.add_argument("--variant", choices=list(variants), metavar="RESULT",
                            help="run a recorded variant with its declared options and write "
                                 "results/RESULT.json and .md; one of: "
                                 + ", ".join(variants))
    args = parser.parse_args(argv)
    args.variant = getattr(args, "variant", None)
    args.arguments = list(argv)
    if args.variant is not None:
        # Only --variant and --results-dir were typed: anything else would change the run.
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--variant")
        pre.add_argument("--results-dir")
        known, rest = pre.parse_known_args(argv)
        if rest:
            parser.error(f"--variant {args.variant} runs its declared options; remove "
                         f"{' '.join(rest)}")
        declared = [str(a) for a in variants[args.variant]]
        extra = [] if known.results_dir is None else ["--results-dir", known.results_dir]
        variant = args.variant
        args = parser.parse_args(declared + extra)
        args.variant, args.out, args.arguments = variant, variant, declared
    args.command = command(name, argv)
    return args


def quick_results(args: argparse.Namespace) -> None:
    """Send a smoke run's results to :data:`SMOKE` (not versioned) unless ``--results-dir`` was
    given: a smoke run must not overwrite a recorded result."""
    if args.results_dir == RESULTS:
        args.results_dir = SMOKE


def declared_results(module: Any) -> list[str]:
    """The result names a benchmark module records, in its order.

    ``RESULT_NAMES`` when the module lists them; else its default result ``NAME`` followed by its
    ``VARIANTS``; a benchmark run once per data set (``DATASETS`` and no ``VARIANTS``, like
    ``bench_grouping``) records ``NAME_<dataset>``.
    """
    if hasattr(module, "RESULT_NAMES"):
        return list(module.RESULT_NAMES)
    variants = getattr(module, "VARIANTS", None)
    if variants is None and hasattr(module, "DATASETS"):
        return [f"{module.NAME}_{d}" for d in module.DATASETS]
    return [module.NAME] + [v for v in (variants or {}) if v != module.NAME]


# ---------------------------------------------------------------------- what a result records
class Record:
    """What every result records besides its numbers: the command, the variant and options in
    effect, the machine, the load at the start and the end, and the wall time.

    Create it when the run starts, from what :func:`parse_args` returned (``command``; also
    ``variant`` and ``arguments`` when present), and call :meth:`to_dict` when it ends.
    """

    def __init__(self, args: argparse.Namespace):
        self.command = args.command
        self.variant = getattr(args, "variant", None)
        self.arguments = list(getattr(args, "arguments", None) or [])
        self.machine = machine()
        self.started = time.strftime("%Y-%m-%d %H:%M:%S")
        self._t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Wall seconds since the record was created."""
        return time.perf_counter() - self._t0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"command": self.command}
        if self.variant is not None:
            out["variant"] = self.variant
        out.update({"arguments": self.arguments, "machine": self.machine,
                    "started": self.started, "loadavg_start": self.machine["loadavg"],
                    "loadavg_end": load_average(), "seconds": round(self.seconds, 1)})
        return out

    def markdown(self) -> str:
        """The two provenance lines under a page's title: command, then machine and load."""
        return (f"Command: `{self.command}`  \n"
                f"Machine: {describe_machine(self.machine)}; load average "
                f"{self.machine['loadavg'][0]} at the start, {load_average()[0]} at the end "
                f"(other jobs may share the cores: times are upper bounds); "
                f"{self.seconds / 60:.1f} min.")


# ---------------------------------------------------------------------- tables and files
def md_table(header: Sequence[Any], rows: Sequence[Sequence[Any]],
             align: str | None = None) -> str:
    """A markdown table; ``|`` in cells is escaped. ``align``: one letter per column, ``l``
    (default), ``r`` or ``c``."""
    if align is not None and len(align) != len(header):
        raise ValueError(f"align {align!r} has {len(align)} letters for {len(header)} columns")
    rule = {"l": "---", "r": "---:", "c": ":---:"}

    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    marks = [rule[a] for a in (align or "l" * len(header))]
    return "\n".join([line(header), "|" + "|".join(marks) + "|"] + [line(r) for r in rows])


def write_results(name: str, data: dict[str, Any], markdown: str,
                  directory: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write ``<directory>/<name>.json`` and ``<directory>/<name>.md`` atomically (directory:
    ``experiments/results`` by default)."""
    from graphmtl.utils.io import atomic_path, atomic_write_json

    directory = RESULTS if directory is None else Path(directory)
    json_path, md_path = directory / f"{name}.json", directory / f"{name}.md"
    atomic_write_json(json_path, data)
    with atomic_path(md_path) as tmp:
        tmp.write_text(markdown.rstrip() + "\n")
    return json_path, md_path


def run(main: Callable[[], Any], name: str) -> int:
    """Run a benchmark's ``main`` as a command: bad input (a ``GraphMTLError``) prints one line
    ``NAME: error: ...`` and exits with status 2; otherwise ``main``'s int status (0 if it
    returns something else)."""
    from graphmtl.errors import GraphMTLError

    # Bare dataset names (snap:youtube, blogcatalog, ...) resolve under $GRAPHMTL_DATA; a
    # benchmark run from the repository reads the shared data beside it unless told otherwise.
    if "GRAPHMTL_DATA" not in os.environ and DATA_ROOT.is_dir():
        os.environ["GRAPHMTL_DATA"] = str(DATA_ROOT)
    try:
        status = main()
    except GraphMTLError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0
