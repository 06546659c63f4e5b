"""Content digests for the files graphmtl writes and later trusts.

Every such file carries a sha256 that is checked when it is read back, so a damaged, truncated
or hand-edited file gives a one-line :class:`DamagedFileError` (naming the file and what to do)
instead of a traceback or a silently wrong result. Where the digest lives depends on the file:

- graph ``.npz`` files and checkpoints embed a digest of their own content (``meta["sha256"]``,
  ``obj["sha256"]``): they stay self-checking when copied or renamed;
- JSON records (projection-store and run manifests, stage records) are *sealed*: the digest of
  the record without its ``sha256`` key is stored under that key (:func:`seal`);
- files a manifest lists (store arrays, a run stage's outputs) are recorded as
  ``{"bytes": size, "sha256": digest}`` (:func:`file_record`) and checked with
  :func:`check_file`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from graphmtl.errors import GraphMTLError
from graphmtl.utils.io import file_digest

SEAL_KEY = "sha256"


class DamagedFileError(GraphMTLError):
    """A file graphmtl wrote does not match its recorded digest, size or format.

    The message is ``"<path>: <problem>; <fix>"``; ``path`` and ``problem`` are kept as
    attributes for callers that repair the file themselves.
    """

    def __init__(self, path: str | os.PathLike, problem: str, fix: str):
        super().__init__(f"{path}: {problem}; {fix}")
        self.path, self.problem = Path(path), problem


# ---------------------------------------------------------------------- content digests
def content_digest(obj: Any) -> str:
    """sha256 (hex) of a nested structure of dicts, lists, tensors, arrays and scalars.

    The encoding is canonical: dict entries are hashed in sorted key order (keys with their
    type), lists and tuples alike, arrays and tensors by dtype, shape and bytes, floats by their
    exact ``repr`` (NaN included). Equal content gives equal digests whatever the container
    order in memory, so an object saved and loaded back (``torch.load``, ``json.loads``) hashes
    the same.

    Raises:
        TypeError: for a value of another type (a programming error, not bad input).
    """
    h = hashlib.sha256()
    _update(h, obj)
    return h.hexdigest()


def _update(h, obj: Any) -> None:
    import torch

    if obj is None:
        h.update(b"N")
    elif isinstance(obj, bool):
        h.update(b"T" if obj else b"F")
    elif isinstance(obj, (int, np.integer)):
        h.update(b"i%d;" % int(obj))
    elif isinstance(obj, (float, np.floating)):
        value = float(obj)
        h.update(b"f" + (b"nan" if math.isnan(value) else repr(value).encode()) + b";")
    elif isinstance(obj, str):
        data = obj.encode()
        h.update(b"s%d:" % len(data) + data)
    elif isinstance(obj, bytes):
        h.update(b"b%d:" % len(obj) + obj)
    elif isinstance(obj, Mapping):
        items = sorted(((type(k).__name__, str(k)), v) for k, v in obj.items())
        h.update(b"{%d" % len(items))
        for (kind, key), value in items:
            _update(h, f"{kind}:{key}")
            _update(h, value)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[%d" % len(obj))
        for value in obj:
            _update(h, value)
        h.update(b"]")
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        _update_array(h, t.numpy(), str(obj.dtype))
    elif isinstance(obj, np.ndarray):
        _update_array(h, obj, str(obj.dtype))
    else:
        raise TypeError(f"content_digest: cannot hash a {type(obj).__name__}")


def _update_array(h, a: np.ndarray, dtype: str) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"a{dtype}{tuple(a.shape)}:".encode())
    h.update(a.reshape(-1).view(np.uint8).data)


def seal(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with ``"sha256"`` set to the :func:`content_digest` of everything else."""
    body = {k: v for k, v in record.items() if k != SEAL_KEY}
    return {**body, SEAL_KEY: content_digest(json.loads(json.dumps(body, default=_plain)))}


def seal_matches(record: Mapping[str, Any]) -> bool | None:
    """``True`` if ``record``'s seal matches its content, ``False`` if not, ``None`` if it has
    no seal (written by a graphmtl without digests)."""
    recorded = record.get(SEAL_KEY)
    if recorded is None:
        return None
    return seal(record)[SEAL_KEY] == recorded


def _plain(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, (np.ndarray, tuple)):
        return list(o.tolist() if isinstance(o, np.ndarray) else o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------------- files
# Digests of files already hashed in this process, by (path, inode, size, mtime): a store
# opened by several stages of one command is hashed once. Only files whose mtime was at least
# _SETTLED_NS old when hashed are remembered: file times advance in coarse ticks, so a file
# rewritten within the tick of its hashing could keep its size and mtime.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_SETTLED_NS = 1_000_000_000


def _digest(path: Path) -> str:
    st = path.stat()
    stamp = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if stamp in _DIGESTS:
        return _DIGESTS[stamp]
    digest = file_digest(path)
    if time.time_ns() - st.st_mtime_ns > _SETTLED_NS:
        _DIGESTS[stamp] = digest
    return digest


def file_record(path: str | os.PathLike) -> dict[str, Any]:
    """``{"bytes": size, "sha256": digest}`` of a file, for a manifest."""
    path = Path(path)
    return {"bytes": path.stat().st_size, "sha256": _digest(path)}


def check_file(path: str | os.PathLike, record: Mapping[str, Any], fix: str, *,
               full: bool = True) -> None:
    """Check a file against its :func:`file_record`.

    Args:
        path: the file.
        record: ``{"bytes": ..., "sha256": ...}``.
        fix: what the user should do, appended to the error.
        full: also compare the sha256 (else the size only).

    Raises:
        DamagedFileError: missing, truncated / grown, or different content.
    """
    path = Path(path)
    if not path.is_file():
        raise DamagedFileError(path, "missing", fix)
    st = path.stat()
    if st.st_size != int(record["bytes"]):
        raise DamagedFileError(path, f"truncated or overwritten ({st.st_size} bytes, expected "
                                     f"{int(record['bytes'])})", fix)
    if not full:
        return
    if _digest(path) != record["sha256"]:
        raise DamagedFileError(path, "content does not match its recorded sha256 (damaged or "
                                     "edited)", fix)
