"""The ``graphmtl`` command line: a thin layer over the Python API.

Each subcommand lives in its own module ``graphmtl.cli.<name>`` exposing ``HELP`` (one line)
and ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``. Only the
command being run is registered in full (its options are read from the config classes, which
import torch); the others are listed by their ``HELP``, so ``graphmtl --help`` stays fast.
Bad input surfaces as a one-line ``graphmtl: error: ...`` message and exit status 2; warnings
as one-line ``graphmtl: warning: ...`` messages.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from graphmtl.cli._common import Parser, one_line_warnings
from graphmtl.errors import GraphMTLError

# Order of the pipeline; a module that is not present yet is simply not offered.
SUBCOMMANDS = ("data", "train", "project", "affinity", "baseline", "cluster", "run", "compare")


def _modules() -> dict[str, ModuleType]:
    out = {}
    for name in SUBCOMMANDS:
        try:
            out[name] = importlib.import_module(f"graphmtl.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"graphmtl.cli.{name}":
                raise
    return out


def build_parser(command: str | None = None) -> Parser:
    """The ``graphmtl`` parser; subcommand ``command`` in full, the others by name and help
    (``command="*"``: all in full)."""
    from graphmtl import __version__

    parser = Parser(
        prog="graphmtl",
        description="Find which graph labelling tasks belong together and train one GNN per "
                    "group. 'graphmtl COMMAND --help' lists a command's options with defaults.")
    parser.add_argument("--version", action="version", version=f"graphmtl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _modules().items():
        if command in (name, "*"):
            module.register(sub)
        else:
            sub.add_parser(name, help=module.HELP, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    with one_line_warnings():
        try:
            parser = build_parser(command)
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version, usage errors (already printed)
            return e.code if isinstance(e.code, int) else 2
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
        except BrokenPipeError:  # e.g. `graphmtl data summary --tasks | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0


if __name__ == "__main__":
    sys.exit(main())
