"""Download SNAP community files, verified, into a cache folder (standard library only).

Files come from ``https://snap.stanford.edu/data/bigdata/communities/<file>``; the base URL can be
overridden with the ``base_url`` argument or the ``GRAPHMTL_SNAP_URL`` environment variable (a
mirror, or a local ``http.server`` in tests).

Verification. SNAP publishes no checksums for these files, and no registry we could find lists
them (cdlib's dataset registry, for one, holds sha256 digests only of its own converted
``.csv.gz`` / ``.json.gz`` files, not of SNAP's originals). So :data:`SNAP_SHA256` is empty and
every download is checked by (1) the byte count against the server's ``Content-Length`` and
(2) gzip integrity: the whole file is decompressed, which checks gzip's CRC-32 and length trailer.
When a sha256 is known — in :data:`SNAP_SHA256`, or passed as ``checksums`` — it is checked too,
and a mismatch discards the file with a one-line error. Files are written atomically, so an
interrupted download leaves nothing behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Mapping

from graphmtl.errors import GraphMTLError, check
from graphmtl.utils.io import atomic_path
from graphmtl.utils.progress import progress_bar

SNAP_BASE_URL = "https://snap.stanford.edu/data/bigdata/communities/"
ENV_BASE_URL = "GRAPHMTL_SNAP_URL"
#: SNAP datasets with ground-truth communities (``com-NAME.*``).
SNAP_NAMES = ("amazon", "dblp", "youtube", "lj", "orkut", "friendster")
#: Known sha256 digests of SNAP's files, by file name. Empty: none is published (module docstring).
SNAP_SHA256: dict[str, str] = {}
_CHUNK = 1 << 20


def snap_file_names(name: str, communities: str = "top5000") -> tuple[str, str]:
    """``("com-NAME.ungraph.txt.gz", "com-NAME.<communities>.cmty.txt.gz")``."""
    return f"com-{name}.ungraph.txt.gz", f"com-{name}.{communities}.cmty.txt.gz"


def base_url(override: str | None = None) -> str:
    """The SNAP base URL: ``override``, else ``$GRAPHMTL_SNAP_URL``, else SNAP's site."""
    url = override or os.environ.get(ENV_BASE_URL) or SNAP_BASE_URL
    return url if url.endswith("/") else url + "/"


def download_file(url: str, dest: str | os.PathLike, *, sha256: str | None = None,
                  timeout: float = 60.0, progress: bool | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically and verify it.

    Args:
        url: the source.
        dest: the target path; a ``.gz`` name is checked for gzip integrity.
        sha256: expected hex digest, if known.
        timeout: seconds to wait for the server (connect and each read).
        progress: show a tqdm bar on stderr (``None``: only when stderr is a terminal).

    Raises:
        GraphMTLError: network failure, HTTP error, truncated body, checksum mismatch, or a
            corrupt gzip file; the message names the URL.
    """
    dest = Path(dest)
    if progress is None:
        progress = sys.stderr.isatty()
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest) as tmp:
            length = response.headers.get("Content-Length") or ""
            expected_size = int(length) if length.isdigit() else None
            received = 0
            bar = None
            if progress:
                bar = progress_bar(expected_size, desc=dest.name, unit="B", unit_scale=True,
                                   file=sys.stderr)
            with open(tmp, "wb") as out:
                while block := response.read(_CHUNK):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
            if bar is not None:
                bar.close()
            check(expected_size is None or received == expected_size,
                  f"{url}: download truncated ({received} of {expected_size} bytes); try again")
            got = digest.hexdigest()
            check(sha256 is None or got == sha256.lower(),
                  f"{url}: checksum mismatch (sha256 {got[:16]}..., expected "
                  f"{(sha256 or '')[:16]}...); the download was discarded")
            if dest.name.endswith(".gz"):
                _check_gzip(tmp, url)
    except urllib.error.HTTPError as e:
        raise GraphMTLError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise GraphMTLError(f"{url}: cannot connect ({e.reason})") from None
    except (TimeoutError, ConnectionError) as e:
        raise GraphMTLError(f"{url}: download failed ({type(e).__name__}: {e})") from None
    return dest


def _check_gzip(path: Path, url: str) -> None:
    """Decompress the whole file (verifies gzip's CRC-32 and length)."""
    try:
        with gzip.open(path, "rb") as f:
            while f.read(_CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as e:
        raise GraphMTLError(f"{url}: not a valid gzip file ({e}); the download was discarded"
                            ) from None


def fetch_snap(name: str, dest_dir: str | os.PathLike, communities: str = "top5000", *,
               url: str | None = None, checksums: Mapping[str, str] | None = None,
               timeout: float = 60.0, put_hint: str | os.PathLike | None = None
               ) -> tuple[Path, Path]:
    """Make sure ``com-NAME.ungraph.txt.gz`` and its community file are in ``dest_dir``.

    Files already there are used as they are; missing ones are downloaded from :func:`base_url`.

    Args:
        name: SNAP dataset name (``youtube``, ``dblp``, ...).
        dest_dir: cache folder.
        communities: ``top5000`` or ``all``.
        url: base URL override (see :func:`base_url`).
        checksums: ``{file name: sha256}``, overriding :data:`SNAP_SHA256`.
        timeout: per-request timeout in seconds.
        put_hint: folder named in the offline error as where to put the files by hand.

    Returns:
        ``(graph_path, community_path)``.

    Raises:
        GraphMTLError: one line; offline, it says which files to put where.
    """
    dest_dir = Path(dest_dir)
    sums = {**SNAP_SHA256, **(checksums or {})}
    paths = []
    for fname in snap_file_names(name, communities):
        path = dest_dir / fname
        if not path.is_file():
            src = base_url(url) + fname
            try:
                download_file(src, path, sha256=sums.get(fname), timeout=timeout)
            except GraphMTLError as e:
                if "cannot connect" not in str(e):
                    raise
                files = " and ".join(snap_file_names(name, communities))
                where = Path(put_hint) if put_hint else dest_dir
                raise GraphMTLError(
                    f"snap:{name}: files not found and the download failed ({e}); offline? put "
                    f"{files} into {where} (or point root= / GRAPHMTL_DATA at a folder with a "
                    "snap/ subfolder holding them)") from None
        paths.append(path)
    return paths[0], paths[1]
