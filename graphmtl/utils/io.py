"""Atomic file output, robust JSON input and content hashing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

from graphmtl.errors import GraphMTLError

#: Marker in the names of :func:`atomic_path`'s temporary files (``.NAME.RANDOM.tmp.SUFFIX``).
TEMP_MARK = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    Readers never see a half-written file: the rename is atomic on POSIX file systems. On error
    the temporary file is removed and ``path`` is left as it was. The file is created with mode
    ``0o666`` less the umask (``0644`` under the usual umask 022), like any file ``open`` creates
    (``tempfile.mkstemp`` would make it ``0600``). The temporary name keeps ``path``'s suffix, so
    ``np.save`` does not append another ``.npy``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp_path = path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMP_MARK}{path.suffix}"
        try:
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:  # pragma: no cover - a 32-bit random name collided
            continue
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def is_temp_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a temporary file of :func:`atomic_path` (left over if the writer
    was killed)."""
    name = Path(path).name
    return name.startswith(".") and TEMP_MARK in name


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_save_npy(path: str | os.PathLike, array: Any) -> None:
    """Save ``array`` as ``.npy`` at ``path`` atomically (``np.save`` bytes; readers see the old
    file or the whole new one, never a part)."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def read_json(path: str | os.PathLike, expect: type | None = None) -> Any:
    """Read a JSON file, turning any unreadable input into a one-line error naming the file.

    Args:
        path: the file.
        expect: if given (``dict`` or ``list``), the type the top-level value must have.

    Raises:
        GraphMTLError: the file is missing, unreadable, not UTF-8 text (e.g. a binary ``.npy``
            given as ``--config``), not valid JSON (with the line), or not of type ``expect``.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphMTLError(f"{path}: file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise GraphMTLError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise GraphMTLError(f"{path}: not a JSON text file (byte {e.start} is not UTF-8)") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise GraphMTLError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None
    if expect is not None and not isinstance(value, expect):
        kind = {dict: "an object", list: "a list"}.get(expect, expect.__name__)
        raise GraphMTLError(f"{path}: expected {kind} at the top level of the JSON, got "
                            f"{_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any, length: int = 16) -> str:
    """Short hash of a JSON-serialisable object (keys sorted), for cache keys."""
    text = json.dumps(obj, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
