"""Fast, strict parsing of whitespace- or comma-separated integer text files (plain or gzip).

The loaders read files with millions of lines (com-DBLP has 1M edges), so the happy path is
vectorised: the whole file is decompressed into memory, checked byte-wise with numpy, and parsed by
numpy's C text parser. Only when a check fails does a slow line-by-line scan run, to report the
first bad line by number in a one-line :class:`~graphmtl.errors.GraphMTLError`.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphmtl.errors import GraphMTLError, check

# Bytes allowed in the data lines of an integer table: digits, space, tab, CR, LF.
_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[ord("0"):ord("9") + 1] = True
_ALLOWED[[ord(" "), ord("\t"), ord("\r"), ord("\n")]] = True
_DIGIT0 = np.uint8(ord("0"))


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, gunzipped when the name ends in ``.gz``.

    Raises:
        GraphMTLError: the file is missing or is a corrupt / truncated gzip stream.
    """
    path = Path(path)
    check(path.is_file(), f"{path}: file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise GraphMTLError(f"{path}: cannot read ({type(e).__name__}: {e})") from None


@dataclass(frozen=True)
class IntRows:
    """Integer rows of a text file, in CSR form.

    Attributes:
        values: int64 ``[T]``, all integers of all data rows in file order.
        ptr: int64 ``[R + 1]``; row ``r`` holds ``values[ptr[r]:ptr[r + 1]]``.
        line: int64 ``[R]``, the 1-based line number of row ``r`` in the (decompressed) file.
    """

    values: np.ndarray
    ptr: np.ndarray
    line: np.ndarray

    @property
    def num_rows(self) -> int:
        return int(self.line.shape[0])

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.ptr)


def parse_int_rows(data: bytes, path: str | os.PathLike, *, what: str = "node id",
                   comment: bytes = b"#", delimiter: bytes | None = None,
                   header: bool = False, columns: int | None = None) -> IntRows:
    """Parse lines of non-negative integers; blank and comment lines are skipped.

    Args:
        data: the decompressed file contents.
        path: used in error messages.
        what: what one integer is, for error messages (``"node id"``).
        comment: lines starting with this prefix are skipped (``b""``: none).
        delimiter: a field separator besides whitespace (``b","`` for CSV).
        header: skip the first line (a CSV header).
        columns: if given, every data row must have exactly this many fields.

    Returns:
        :class:`IntRows` with one row per non-blank data line.

    Raises:
        GraphMTLError: naming the file and line of the first malformed line (a field that is
            not a non-negative integer, or the wrong number of fields).
    """
    # Skip the header / leading comment lines by hand: they are few and may hold any bytes.
    start, first_line = 0, 1
    if header and data:
        nl = data.find(b"\n")
        start, first_line = (len(data), 2) if nl < 0 else (nl + 1, 2)
    while comment and data.startswith(comment, start):
        nl = data.find(b"\n", start)
        start = len(data) if nl < 0 else nl + 1
        first_line += 1
    body = data[start:]
    if delimiter:
        body = body.replace(delimiter, b" ")
    b = np.frombuffer(body, dtype=np.uint8)
    if not bool(_ALLOWED[b].all()):
        # Something other than digits and whitespace: a comment in the middle of the file is
        # legal; anything else is reported by the slow scan.
        return _slow_parse(data, path, what=what, comment=comment, delimiter=delimiter,
                           header=header, columns=columns)
    digit = (b - _DIGIT0) < 10
    starts = np.flatnonzero(digit[1:] & ~digit[:-1]) + 1          # first byte of each token
    if digit.size and digit[0]:
        starts = np.concatenate([[0], starts])
    newlines = np.flatnonzero(b == ord("\n"))
    bounds = np.concatenate([[-1], newlines, [b.size]])
    per_line = np.diff(np.searchsorted(starts, bounds))           # tokens on each line
    if columns is not None and bool(((per_line != 0) & (per_line != columns)).any()):
        return _slow_parse(data, path, what=what, comment=comment, delimiter=delimiter,
                           header=header, columns=columns)
    values = np.fromstring(body, dtype=np.int64, sep=" ") if starts.size else np.zeros(0, np.int64)
    if values.size != starts.size:  # e.g. an integer too large for int64
        return _slow_parse(data, path, what=what, comment=comment, delimiter=delimiter,
                           header=header, columns=columns)
    rows = np.flatnonzero(per_line)
    ptr = np.concatenate([[0], np.cumsum(per_line[rows])]).astype(np.int64)
    return IntRows(values=values, ptr=ptr, line=(rows + first_line).astype(np.int64))


def _slow_parse(data: bytes, path, *, what: str, comment: bytes, delimiter: bytes | None,
                header: bool, columns: int | None) -> IntRows:
    """Line-by-line parse; raises on the first bad line, else returns the same as the fast path."""
    values: list[int] = []
    ptr = [0]
    lines: list[int] = []
    name = Path(path).name
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if header and number == 1:
            continue
        if comment and raw.startswith(comment):
            continue
        text = raw.replace(delimiter, b" ") if delimiter else raw
        fields = text.split()
        if not fields:
            continue
        shown = raw.decode("utf-8", "replace").strip()
        if len(shown) > 60:
            shown = shown[:57] + "..."
        for field in fields:
            if not field.isdigit():
                bad = field.decode("utf-8", "replace")
                raise GraphMTLError(f"{name}: line {number}: {what} {bad!r} is not a "
                                    f"non-negative integer (line: {shown!r})")
            if len(field) > 18:
                raise GraphMTLError(f"{name}: line {number}: {what} {field.decode()} is too large")
        if columns is not None and len(fields) != columns:
            raise GraphMTLError(f"{name}: line {number}: expected {columns} fields, got "
                                f"{len(fields)} (line: {shown!r})")
        values.extend(int(f) for f in fields)
        ptr.append(len(values))
        lines.append(number)
    return IntRows(values=np.asarray(values, dtype=np.int64), ptr=np.asarray(ptr, dtype=np.int64),
                   line=np.asarray(lines, dtype=np.int64))
