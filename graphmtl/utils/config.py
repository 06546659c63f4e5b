"""Parsing shared by every typed config: one fanout parser, one ``from_dict`` policy.

Every config dataclass (``ModelConfig``, ``TrainConfig``, ``ProjectionConfig``,
``PipelineConfig`` and its nested configs) is built from JSON through :func:`config_from_dict`:
an unknown key is a one-line error naming it (never silently dropped), a value of the wrong
JSON type is a one-line error naming the key and the expected type, and nested config fields
are built from nested dicts the same way. The dataclass's own ``__post_init__`` then checks
the values' ranges.

This module imports nothing heavy (no torch), so the command line can use it to build options.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Sequence

from graphmtl.errors import GraphMTLError, check


def parse_fanouts(value: str | Sequence[int], name: str = "fanouts") -> tuple[int, ...]:
    """Neighbours sampled per layer: ``"10,5"``, ``[10, 5]`` or ``(10, 5)`` -> ``(10, 5)``.

    Each value is ``-1`` (all neighbours) or ``>= 1``; at least one value. ``name`` is what the
    error message calls the setting (``--fanouts``, ``train fanouts``, ...).
    """
    items = value.split(",") if isinstance(value, str) else value
    try:
        out = tuple(_as_int(f) for f in items if not (isinstance(f, str) and not f.strip()))
    except (TypeError, ValueError):
        raise GraphMTLError(f"{name}: expected integers like 10,5, got {value!r}") from None
    check(len(out) >= 1, f"{name}: give at least one value, like 10,5")
    check(all(f == -1 or f >= 1 for f in out),
          f"{name}: each value must be >= 1 or -1 (all neighbours), got {list(out)}")
    return out


def _as_int(v: Any) -> int:
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise TypeError(v)
    return int(v)


@functools.lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass's fields (``from __future__`` strings evaluated)."""
    return typing.get_type_hints(cls)


def type_name(tp: Any) -> str:
    """A short human name of an annotation: ``int``, ``int or None``, ``list of int``."""
    if tp is type(None):
        return "null"
    args = typing.get_args(tp)
    if _is_union(tp):
        return " or ".join(type_name(a) for a in args)
    if typing.get_origin(tp) in (tuple, list):
        return f"list of {type_name(args[0])}" if args else "list"
    if dataclasses.is_dataclass(tp):
        return "object"
    return {int: "integer", float: "number", str: "string", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _matches(value: Any, tp: Any) -> bool:
    """Whether a JSON value fits an annotation (int for float is fine; bool is not an int)."""
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if _is_union(tp):
        return any(_matches(value, a) for a in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(
            _matches(v, args[0]) for v in value) if args else isinstance(value, (list, tuple))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def config_from_dict(cls: type, data: Any, name: str, _path: str = "") -> Any:
    """Build the dataclass ``cls`` from a JSON object ``data``; ``name`` starts every error.

    Unknown keys are rejected (naming the key and the known ones); missing keys take the
    dataclass defaults; a field annotated with a dataclass type is built from a nested object
    (recursively; errors name the dotted key, ``train.epochs``); every other value must match
    its annotation.
    """
    where = f"{name}: {_path.rstrip('.')}" if _path else name
    check(isinstance(data, dict), f"{where}: expected a JSON object, got {type(data).__name__}")
    hints = field_types(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in data if k not in known]
    check(not unknown, f"{name}: unknown key {_path + str(unknown[0]) if unknown else ''!r} "
                       f"(known: {', '.join(known)})")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            kwargs[key] = (value if isinstance(value, tp)
                           else config_from_dict(tp, value, name, f"{_path}{key}."))
            continue
        # Fanouts may also be written as "10,5" (as on the command line).
        if isinstance(value, str) and typing.get_origin(_strip_none(tp)) is tuple:
            value = parse_fanouts(value, f"{name}: {_path}{key}")
        check(_matches(value, tp),
              f"{name}: {_path}{key}: expected {type_name(tp)}, got {_json_repr(value)}")
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def replace_checked(config: Any, name: str, **changes: Any) -> Any:
    """``dataclasses.replace`` that names an unknown field in a one-line error."""
    known = [f.name for f in dataclasses.fields(config) if f.init]
    unknown = [k for k in changes if k not in known]
    check(not unknown, f"{name}: unknown key {unknown[0] if unknown else ''!r} "
                       f"(known: {', '.join(known)})")
    return dataclasses.replace(config, **changes)


def _strip_none(tp: Any) -> Any:
    if _is_union(tp):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        return rest[0] if len(rest) == 1 else tp
    return tp


def _json_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
