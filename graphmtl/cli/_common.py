"""Helpers shared by the command modules: options read from the config classes, value parsers,
early checks against the data, one-line errors and warnings, and output clean-up on failure.

Options come from one source of truth: :func:`config_options` adds one option per field of a
config dataclass (or per parameter of an estimator's ``__init__``) with the default, type and
choices READ from that class and the help text from its docstring's ``Args:`` section, so a
command's help shows every default and follows the class when a default changes.

Nothing here imports torch at module level: ``graphmtl --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import os
import re
import shutil
import sys
import types as pytypes
import typing
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from graphmtl.errors import GraphMTLError, check

# ----------------------------------------------------------------------------- parser classes


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after every option's help, unless the help already states its
    default, the option is a flag, or it has no default (its help then says what happens)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default in (None, argparse.SUPPRESS)
                or action.nargs == 0 or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line: ``graphmtl: error: ...``."""

    def error(self, message: str) -> typing.NoReturn:  # noqa: D102 - argparse hook
        # argparse says "argument --k: <message>"; our type parsers already name the flag.
        message = re.sub(r"^argument ([^:]+): (\1: )?", r"\1: ", message)
        if re.search(r"required|unrecognized|invalid choice|expected one argument", message):
            message += f" (see '{self.prog} --help')"
        print(f"graphmtl: error: {message}", file=sys.stderr)
        sys.exit(2)


def add_command(subparsers, name: str, *, help: str, description: str | None = None
                ) -> argparse.ArgumentParser:
    """A subcommand parser with :class:`HelpFormatter` (every default shown)."""
    return subparsers.add_parser(name, help=help, description=description or help,
                                 formatter_class=HelpFormatter)


class _Bool(argparse.BooleanOptionalAction):
    """``--x`` / ``--no-x``; the help text is ours (Python 3.10 would append the default)."""

    def __init__(self, option_strings, dest, default=None, help=None, **kwargs):
        super().__init__(option_strings, dest, default=default, **kwargs)
        self.help = help


# ----------------------------------------------------------------------------- value parsers


def argtype(func: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """An argparse ``type`` from a parser raising :class:`GraphMTLError` (argparse would
    otherwise swallow our message into "invalid value")."""
    def convert(text: str) -> Any:
        try:
            return func(text)
        except GraphMTLError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = name
    return convert


def parse_int(text: str, flag: str = "value") -> int:
    try:
        return int(text)
    except ValueError:
        raise GraphMTLError(f"{flag}: expected an integer, got {text!r}") from None


def parse_float(text: str, flag: str = "value") -> float:
    try:
        return float(text)
    except ValueError:
        raise GraphMTLError(f"{flag}: expected a number, got {text!r}") from None


def parse_k(text: str | int, flag: str = "--k") -> int | str:
    """The number of groups: a positive integer or ``auto``."""
    if isinstance(text, int) and not isinstance(text, bool):
        value: int | str = text
    else:
        t = str(text).strip()
        value = "auto" if t == "auto" else int(t) if t.isdigit() else -1
    check(value == "auto" or int(value) >= 1,
          f"{flag}: expected a positive integer or 'auto', got {text!r}")
    return value


def parse_size(text: str, flag: str = "--size") -> int | tuple[int, int]:
    """A subset size ``s`` or an inclusive range ``MIN-MAX``."""
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return int(lo), int(hi)
        return int(text)
    except ValueError:
        raise GraphMTLError(f"{flag}: expected an integer or MIN-MAX, got {text!r}") from None


def parse_projection_fanouts(text: str, flag: str = "--fanouts") -> tuple[int, ...] | str:
    """Projection fanouts: ``auto``, ``full`` (exact neighbourhoods) or integers like ``10,5``."""
    t = text.strip()
    return t if t in ("auto", "full") else parse_fanouts(t, flag)


def parse_fanouts(text: str, flag: str = "--fanouts") -> tuple[int, ...]:
    """``10,5`` -> ``(10, 5)`` (the one fanout parser every config uses)."""
    from graphmtl.utils.config import parse_fanouts as parse

    return parse(text, flag)


def parse_tasks(text: str, flag: str = "--tasks") -> str | list[str]:
    """``all``, a comma-separated list, or ``@FILE`` / an existing file with one task a line."""
    text = text.strip()
    check(text != "", f"{flag}: the task list is empty")
    if text == "all":
        return "all"
    path = Path(text[1:] if text.startswith("@") else text)
    if text.startswith("@") or (path.is_file() and "," not in text):
        check(path.is_file(), f"{flag} {text}: file not found")
        lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
        tasks = [t for ln in lines for t in ln.split(",") if t.strip()]
        check(tasks, f"{flag} {path}: no task names in the file")
        return [t.strip() for t in tasks]
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    check(tasks, f"{flag}: the task list is empty")
    return tasks


def resolve_tasks(tasks: str | Sequence[str], task_names: Sequence[str],
                  flag: str = "--tasks") -> str | list[str]:
    """Check a task selection against the data's task names; return ``"all"`` or the names.

    Each entry is a task name or a 0-based position; a position past the last task is "out of
    range", a name that is not there is "unknown"; duplicates are an error.
    """
    if isinstance(tasks, str) and tasks == "all":
        return "all"
    names = list(task_names)
    index = {name: i for i, name in enumerate(names)}
    out: list[str] = []
    for t in tasks:
        t = str(t).strip()
        if t in index:
            out.append(t)
        elif re.fullmatch(r"-?\d+", t):
            i = int(t)
            check(0 <= i < len(names), f"{flag}: task {i}: out of range (the data has "
                                       f"{len(names)} tasks, positions 0-{len(names) - 1})")
            out.append(names[i])
        else:
            from graphmtl.utils.text import preview

            raise GraphMTLError(f"{flag}: task {t!r}: unknown (known: {preview(names)})")
    dup = sorted({t for t in out if out.count(t) > 1})
    check(not dup, f"{flag}: task {dup[0] if dup else ''!r} listed more than once")
    return out


def check_subset_params(n: int, where: str, *, pairwise: bool = False,
                        num_pairs: int | None = None, num_subsets: int = 1,
                        size: int | tuple[int, int] = 2) -> None:
    """Check the subset sample's settings against ``n`` tasks (``where``: the data / store
    they come from), naming the flags ``--pairs``, ``--size``, ``--subsets``."""
    if pairwise:
        total = n * (n - 1) // 2
        check(n >= 2, f"pairwise: needs at least 2 tasks, {where} has {n}")
        check(num_pairs is None or 1 <= num_pairs <= total,
              f"--pairs: need 1 <= pairs <= {total} (all pairs of the n = {n} tasks in "
              f"{where}), got {num_pairs}")
        return
    lo, hi = size if isinstance(size, tuple) else (size, size)
    check(1 <= lo <= hi, f"--size: need 1 <= MIN <= MAX, got {lo}-{hi}")
    check(hi <= n, f"--size {hi}: exceeds the number of tasks n = {n} in {where}")
    check(num_subsets >= 1, f"--subsets: must be >= 1, got {num_subsets}")


def read_subsets_file(path: str | os.PathLike, task_names: Sequence[str],
                      flag: str = "--subsets-file"):
    """The bool ``[m, n]`` membership of a JSON list of subsets (lists of task names)."""
    from graphmtl.affinity.subsets import as_membership

    subsets = read_json_file(path, flag)
    check(isinstance(subsets, list) and all(isinstance(s, list) for s in subsets),
          f"{flag} {path}: expected a JSON list of lists of task names")
    try:
        return as_membership(subsets, list(task_names))
    except GraphMTLError as e:
        raise GraphMTLError(f"{flag} {path}: {e}") from None


# ----------------------------------------------------------------------------- options from configs


def docstring_args(obj: Any) -> dict[str, str]:
    """``{name: text}`` from the ``Args:`` section of ``obj``'s docstring (a class or function).

    ``a, b: text`` gives both names the text; continuation lines are joined; reST markup
    (````x````, ``:class:`~a.B```) is reduced to plain words.
    """
    doc = inspect.getdoc(obj) or ""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Args:")
    except StopIteration:
        return out
    indent = None
    names: list[str] = []
    for ln in lines[start + 1:]:
        if not ln.strip():
            continue
        width = len(ln) - len(ln.lstrip())
        if indent is None:
            indent = width
        if width < indent:
            break
        m = re.match(r"([A-Za-z_][\w, ]*):\s*(.*)", ln.strip()) if width == indent else None
        if m:
            names = [n.strip() for n in m.group(1).split(",")]
            for n in names:
                out[n] = m.group(2)
        else:
            for n in names:
                out[n] += " " + ln.strip()
    return {k: _plain(v) for k, v in out.items()}


def _plain(text: str) -> str:
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?([^`]+)`", r"\1", text)
    text = text.replace("``", "")
    return text.replace("%", "%%")  # argparse formats help with %-style


def format_default(value: Any) -> str:
    """A default as a user would type it: ``10,5`` for a tuple, ``auto``, ``1000``."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


@dataclasses.dataclass(frozen=True)
class Source:
    """The fields of a config dataclass or the ``__init__`` parameters of an estimator, with the
    default, annotation and docstring help of each."""

    defaults: dict[str, Any]
    types: dict[str, Any]
    helps: dict[str, str]
    choices: dict[str, Sequence]

    @classmethod
    def of(cls, obj: Any) -> "Source":
        if dataclasses.is_dataclass(obj):
            klass = obj if isinstance(obj, type) else type(obj)
            inst = obj() if isinstance(obj, type) else obj
            fields = [f for f in dataclasses.fields(klass) if f.init]
            hints = typing.get_type_hints(klass)
            return cls(defaults={f.name: getattr(inst, f.name) for f in fields},
                       types={f.name: hints[f.name] for f in fields},
                       helps=docstring_args(klass),
                       choices={f.name: f.metadata["choices"] for f in fields
                                if "choices" in f.metadata})
        klass = obj if isinstance(obj, type) else type(obj)
        sig = inspect.signature(klass.__init__)
        hints = typing.get_type_hints(klass.__init__)
        params = [p for p in sig.parameters.values() if p.name != "self"
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        defaults = {p.name: (getattr(obj, p.name) if not isinstance(obj, type) else p.default)
                    for p in params}
        return cls(defaults=defaults, types={p.name: hints.get(p.name, Any) for p in params},
                   helps=docstring_args(klass), choices={})


def _converter(tp: Any, flag: str) -> Callable[[str], Any] | None:
    """argparse ``type`` for an annotation (``None`` for bool, handled as ``--x/--no-x``)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, pytypes.UnionType):
        tp = args[0] if len(args) == 1 else tp
    if tp is bool:
        return None
    if typing.get_origin(tp) is typing.Literal:
        return type(typing.get_args(tp)[0])
    if tp is int:
        return argtype(lambda s: parse_int(s, flag), "int")
    if tp is float:
        return argtype(lambda s: parse_float(s, flag), "float")
    if tp is str:
        return str
    if typing.get_origin(tp) is tuple and typing.get_args(tp)[:1] == (int,):
        return argtype(lambda s: parse_fanouts(s, flag), "fanouts")
    raise TypeError(f"{flag}: no command-line type for {tp!r}; pass types={{...}}")


def config_options(parser, source: Any, dest: str, *, only: Sequence[str] | None = None,
                   skip: Sequence[str] = (), flags: Mapping[str, str] | None = None,
                   prefix: str = "", types: Mapping[str, Callable[[str], Any]] | None = None,
                   choices: Mapping[str, Sequence] | None = None,
                   helps: Mapping[str, str] | None = None,
                   metavars: Mapping[str, str] | None = None, override: bool = False,
                   required: Sequence[str] = ()) -> dict[str, str]:
    """Add one option per field of ``source`` to ``parser`` (a parser or an argument group).

    Args:
        source: a config dataclass (class: its defaults; instance: its values as defaults) or
            an estimator class / instance (its ``__init__`` parameters).
        dest: namespace prefix: the value of field ``f`` lands in ``args.<dest>.<f>`` (read it
            back with :func:`config_values`).
        only, skip: which fields (default: all, in declaration order).
        flags: option string per field (default: ``--<prefix><field-with-dashes>``).
        types, choices, helps, metavars: per-field overrides of what the class gives (the type
            from the annotation, choices from ``field(metadata={"choices": ...})``, help from
            the docstring's ``Args:`` section).
        override: the options only override a base config (``graphmtl run --config``): fields
            not given stay out of the namespace; the help still shows the class default.
        required: fields the command requires (no default shown).

    Returns:
        ``{field: flag}`` of the options added (also kept in ``args._flags_<dest>`` for
        :func:`build_config`).
    """
    src = Source.of(source)
    names = [n for n in (only if only is not None else src.defaults) if n not in skip]
    flags, types, helps = dict(flags or {}), dict(types or {}), dict(helps or {})
    choices = {**src.choices, **(choices or {})}
    metavars = dict(metavars or {})
    added: dict[str, str] = {}
    for name in names:
        check(name in src.defaults, f"internal: {name!r} is not a field of {source!r}")
        flag = flags.get(name, f"--{prefix}{name.replace('_', '-')}")
        default = src.defaults[name]
        conv = types.get(name) or _converter(src.types[name], flag)
        text = helps.get(name, src.helps.get(name, "")).rstrip()
        if name in required:
            kwargs: dict[str, Any] = {"required": True}
        else:
            if default is not None and default is not inspect.Parameter.empty:
                text = f"{text} (default: {format_default(default).replace('%', '%%')})"
            kwargs = {"default": argparse.SUPPRESS if override else default}
        kwargs["dest"] = f"{dest}.{name}"
        kwargs["help"] = text.strip()
        if conv is None:
            kwargs["action"] = _Bool
        else:
            kwargs["type"] = conv
            tp = src.types[name]
            if name in choices:
                kwargs["choices"] = tuple(choices[name])
            elif typing.get_origin(tp) is typing.Literal:
                kwargs["choices"] = typing.get_args(tp)
            kwargs["metavar"] = metavars.get(name, flag.lstrip("-").upper().replace("-", "_"))
            if "choices" in kwargs and name not in metavars:
                del kwargs["metavar"]
        parser.add_argument(flag, **kwargs)
        added[name] = flag
    parser.set_defaults(**{f"_flags_{dest}": added})
    return added


def build_config(args: argparse.Namespace, dest: str, factory: Callable[..., Any],
                 **extra: Any) -> Any:
    """``factory(**values)`` from the options :func:`config_options` stored under ``dest``
    (plus ``extra``); the config's one-line errors name the flag instead of the field
    (``train epochs: must be >= 1`` -> ``--epochs: must be >= 1``)."""
    flags = getattr(args, f"_flags_{dest}", {})
    try:
        return factory(**{**config_values(args, dest), **extra})
    except GraphMTLError as e:
        raise GraphMTLError(flag_names(str(e), flags)) from None


def flag_names(message: str, flags: Mapping[str, str]) -> str:
    """Replace a leading ``<section> <field>`` of a config error by the field's flag
    (``train epochs: must be >= 1`` -> ``--epochs: must be >= 1``)."""
    for name, flag in flags.items():
        new = re.sub(rf"^\w+ {re.escape(name)}\b", flag, message)
        if new != message:
            return new
    return message


def config_values(args: argparse.Namespace, dest: str) -> dict[str, Any]:
    """The values :func:`config_options` stored under ``dest`` (with ``override``: only the
    options given on the command line)."""
    head = dest + "."
    return {k[len(head):]: v for k, v in vars(args).items() if k.startswith(head)}


def default_fanouts(num_layers: int) -> tuple[int, ...]:
    """``TrainConfig``'s fanouts when they fit ``num_layers``, else its first value per layer."""
    from graphmtl.training.config import TrainConfig

    d = TrainConfig().fanouts
    return d if len(d) == num_layers else (d[0],) * num_layers


# Flags shared by every command that trains (train, run): the config field -> option string.
MODEL_FLAGS = {"encoder": "--model", "num_layers": "--layers"}
TRAIN_FLAGS = {"num_threads": "--threads"}


# ----------------------------------------------------------------------------- data and files


def load_data(spec: str, flag: str = "--data", root: str | None = None):
    """Resolve ``--data``: a saved ``.npz`` graph, else a dataset spec."""
    from graphmtl.data.graph import MultiTaskGraph

    if spec.endswith(".npz") and Path(spec).is_file():
        return MultiTaskGraph.load(spec)
    check(not spec.endswith(".npz"), f"{flag} {spec}: file not found")
    from graphmtl.data.sources import load_dataset

    return load_dataset(spec, root=root)


def load_checkpoint(path: str | os.PathLike, flag: str = "--checkpoint"):
    """:func:`graphmtl.training.load_checkpoint`, with an unreadable file named in our words."""
    import pickle

    from graphmtl.training import load_checkpoint as load

    check(Path(path).is_file(), f"{flag} {path}: file not found")
    try:
        return load(path)
    except GraphMTLError as e:
        cause = e.__cause__ or e.__context__
        if cause is not None and isinstance(cause, (pickle.UnpicklingError, EOFError,
                                                    RuntimeError, OSError, ValueError)):
            raise GraphMTLError(f"{flag} {path}: not a readable graphmtl checkpoint (corrupt, "
                                "truncated or not written by graphmtl train); train it again"
                                ) from None
        raise


def read_json_file(path: str | os.PathLike, flag: str) -> Any:
    """A JSON file given on the command line; any read failure is one line naming the flag."""
    from graphmtl.utils.io import read_json

    p = Path(path)
    check(p.is_file(), f"{flag} {path}: file not found")
    try:
        return read_json(p)
    except UnicodeDecodeError:
        raise GraphMTLError(f"{flag} {path}: not a JSON text file") from None
    except GraphMTLError as e:
        raise GraphMTLError(f"{flag} {e}") from None


def task_names_near(affinity: str | os.PathLike, n: int) -> list[str] | None:
    """The task names in ``summary.json`` next to an affinity matrix (written by ``graphmtl
    affinity`` and ``graphmtl baseline``), if there is one naming ``n`` tasks."""
    import json

    path = Path(affinity).parent / "summary.json"
    if not path.is_file():
        return None
    try:
        names = json.loads(path.read_text()).get("task_names")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    if isinstance(names, list) and len(names) == n and all(isinstance(t, str) for t in names):
        return names
    return None


@contextlib.contextmanager
def cleanup_on_failure(*paths: str | os.PathLike,
                       keep: Callable[[], bool] | None = None) -> Iterator[None]:
    """Remove, if the block fails, each of ``paths`` (and the parent folders) that did not
    exist when it began, so a failed command leaves nothing new behind. An interrupt
    (Ctrl-C) keeps them: commands resume from their partial outputs; so does a failure after
    which ``keep()`` says the partial outputs are worth resuming."""
    created: list[Path] = []
    for p in map(Path, paths):
        if os.path.lexists(p):
            continue
        top = p
        while not os.path.lexists(top.parent) and top.parent != top:
            top = top.parent
        created.append(top)
    try:
        yield
    except Exception:
        if keep is not None and keep():
            raise
        for top in created:
            if top.is_dir() and not top.is_symlink():
                shutil.rmtree(top, ignore_errors=True)
            elif os.path.lexists(top):
                top.unlink()
        raise


# ----------------------------------------------------------------------------- warnings

# Third-party notices on import or first use that say nothing about the user's input.
QUIET_WARNINGS = (
    r"`torch\.jit\.script` is deprecated",
    r"Sparse CSC tensor support is in beta",
    r"Sparse invariant checks are implicitly disabled",
    r".*pyg-lib.*",
    r"An issue occurred while importing 'torch-sparse'",
)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"graphmtl: warning: {' '.join(str(message).split())}", file=file or sys.stderr)


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Print each warning as one ``graphmtl: warning: ...`` line (no source path, no class)."""
    with warnings.catch_warnings():
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        warnings.showwarning = _show_warning
        yield
