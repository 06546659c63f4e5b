"""The ``graphmtl`` command line: a thin layer over the Python API.

Each subcommand lives in its own module ``graphmtl.cli.<name>`` exposing
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
Bad input surfaces as a one-line ``graphmtl: error: ...`` message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from graphmtl.errors import GraphMTLError

# Order of the pipeline; a module that is not present yet is simply not offered.
SUBCOMMANDS = ("data", "train", "project", "affinity", "baseline", "cluster", "run")


def build_parser() -> argparse.ArgumentParser:
    from graphmtl import __version__

    parser = argparse.ArgumentParser(
        prog="graphmtl",
        description="Find which graph labelling tasks belong together and train one GNN per group.")
    parser.add_argument("--version", action="version", version=f"graphmtl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"graphmtl.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"graphmtl.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GraphMTLError as e:
        print(f"graphmtl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graphmtl: interrupted (re-run the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
