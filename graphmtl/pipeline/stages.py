"""A run directory whose stages are cached by the hash of their inputs.

Each stage writes into ``run_dir/<stage>/`` and is recorded in ``run_dir/manifest.json`` with the
key of its inputs (config slice plus the keys of the stages it reads), its wall time and its
outputs. Re-running a stage whose key is unchanged and whose outputs are present is a no-op;
a stage whose inputs changed is redone, and so is every stage downstream of it (their keys include
its key). A killed run resumes at the first unfinished stage; stages that are themselves
resumable (training, projection) continue from their own progress files.

Integrity:

- one process at a time: the directory is locked (:class:`~graphmtl.utils.lock.DirectoryLock`)
  from construction until :meth:`RunDirectory.close`, the end of a ``with`` block, an exception
  in a stage, or process exit; a second process is refused at once with the holder's PID, host
  and start time, and a lock left by a killed process is taken over with a warning;
- the manifest is validated on load: a malformed manifest (``"stages": []``, an unknown field in
  a stage record, a wrong type) is a one-line error naming the file and the stage;
- each finished stage record is sealed (``sha256`` over its key, time, outputs and files) and
  lists every file of the stage directory with its size and sha256 (:data:`FULL_CHECK_BYTES`);
  before a stage is reused its record and files are checked. A stage whose record or files were
  edited or damaged (e.g. ``"k": 5`` written into the manifest while ``groups.json`` has two
  groups) is **re-run** from scratch, with a warning naming the file, and so is every stage that
  read it (each record keeps the seals of the stages it read, found through their keys in its
  inputs). Nothing edited reaches the report.

Records written before seals existed are reused as before (key, marker file), with one warning.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from graphmtl.errors import GraphMTLError, check
from graphmtl.utils.integrity import check_file, file_record, seal, seal_matches
from graphmtl.utils.io import atomic_write_json, is_temp_file, read_json, stable_hash
from graphmtl.utils.lock import LOCK_NAME, DirectoryLock
from graphmtl.utils.memory import PeakMemory

MANIFEST = "manifest.json"
#: Files up to this size are re-hashed before a stage is reused; larger ones (graph ``.npz``,
#: checkpoints, projection-store arrays) are checked by size here and by their own embedded or
#: manifest digests when they are loaded, so a reused run does not re-read gigabytes.
FULL_CHECK_BYTES = 256 << 20
_MARKER = ".done"
_RECORD_FIELDS = {"key": str, "seconds": (int, float, type(None)), "outputs": dict,
                  "files": dict, "upstream": dict, "sha256": str,
                  "peak_rss_mb": (int, float, type(None))}


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a run's numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("graphmtl", "torch", "torch-geometric", "torch-sparse", "numpy", "scipy",
                 "scikit-learn", "cvxpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


@dataclass
class StageRecord:
    """One stage in the manifest.

    Attributes:
        key: hash of the stage's inputs.
        seconds: wall time of the run that finished it (``None``: started, not finished).
        outputs: what the stage function returned (JSON).
        files: ``{path relative to the stage directory: {"bytes", "sha256"}}`` at the end.
        upstream: ``{stage: seal}`` of the finished stages whose keys are among its inputs.
        sha256: seal of the finished record (empty while unfinished or in old manifests).
        peak_rss_mb: peak resident memory of the run process and its workers while the stage
            ran, in MiB (:class:`~graphmtl.utils.memory.PeakMemory`; ``None`` in manifests
            written before it was recorded).
    """

    key: str
    seconds: float | None
    outputs: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    upstream: dict[str, str] = field(default_factory=dict)
    sha256: str = ""
    peak_rss_mb: float | None = None

    def _body(self) -> dict[str, Any]:
        """The sealed fields (``peak_rss_mb`` only when recorded, so older seals still match)."""
        body = {"key": self.key, "seconds": self.seconds, "outputs": self.outputs,
                "files": self.files, "upstream": self.upstream}
        if self.peak_rss_mb is not None:
            body["peak_rss_mb"] = self.peak_rss_mb
        return body

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry (a sealed record also lists its files, upstream and seal)."""
        d = {"key": self.key, "seconds": self.seconds, "outputs": self.outputs}
        if self.sha256:
            d = {**self._body(), "sha256": self.sha256}
        return d

    def sealed(self) -> "StageRecord":
        """This record with ``sha256`` set to the seal of its other fields."""
        self.sha256 = seal(self._body())["sha256"]
        return self

    @property
    def finished(self) -> bool:
        return self.seconds is not None


class RunDirectory:
    """The manifest-backed, locked run directory.

    Args:
        path: the run directory (created).
        config: the whole run configuration (JSON-serialisable), recorded in the manifest.

    Raises:
        GraphMTLError: another process holds the directory, or its manifest is malformed (one
            line naming the file; nothing is written then).
    """

    def __init__(self, path: str | Path, config: dict[str, Any]):
        self.path = Path(path)
        self._lock = DirectoryLock(self.path, "run directory").acquire()
        try:
            self.stages: dict[str, StageRecord] = self._read_manifest()
        except BaseException:
            self._lock.release()
            raise
        self.manifest: dict[str, Any] = {
            "format": "graphmtl.Run", "config": config, "versions": package_versions(),
            "command": " ".join(sys.argv), "stages": {}}
        self.executed: list[str] = []
        self._legacy_warned = False
        self._save()

    # ------------------------------------------------------------------ lock
    def close(self) -> None:
        """Release the directory lock (a later :meth:`run` takes it again)."""
        self._lock.release()

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ stages
    def run(self, name: str, inputs: dict[str, Any], fn: Callable[[Path], dict[str, Any]],
            ) -> StageRecord:
        """Run stage ``name`` unless its recorded key equals the key of ``inputs`` and its
        recorded outputs check out.

        ``fn(stage_dir)`` does the work and returns a JSON-serialisable dict of outputs (paths
        relative to the stage directory, small numbers). Returns the stage's record. If ``fn``
        raises, the directory lock is released and the exception propagates; the stage stays
        unfinished, to be resumed by the next run.
        """
        self._lock.acquire()
        key = stable_hash(inputs)
        # The finished stages this one reads: their keys are among its inputs.
        read = set(_strings(inputs))
        upstream = {n: r.sha256 for n, r in self.stages.items()
                    if n != name and r.finished and r.sha256 and r.key in read}
        done = self.stages.get(name)
        stage_dir = self.path / name
        if done is not None and done.key == key and done.finished:
            problem = self._problem(name, done, upstream)
            if problem is None:
                return done
            if problem:  # (empty: a stage it read was re-run, like a change of its inputs)
                warnings.warn(f"{problem}; re-running the {name} stage", stacklevel=2)
            shutil.rmtree(stage_dir, ignore_errors=True)
        elif done is not None and done.key != key and stage_dir.exists():
            shutil.rmtree(stage_dir)  # inputs changed: stale partial work must not be resumed
        elif stage_dir.is_dir():  # an unfinished stage resumes: drop a killed writer's temp files
            for f in stage_dir.rglob(".*"):
                if f.is_file() and is_temp_file(f):
                    f.unlink()
        stage_dir.mkdir(parents=True, exist_ok=True)
        (stage_dir / _MARKER).unlink(missing_ok=True)
        self.stages[name] = StageRecord(key=key, seconds=None)
        self._save()
        start = time.perf_counter()
        try:
            with PeakMemory() as memory:
                outputs = fn(stage_dir)
        except BaseException:
            self._lock.release()
            raise
        record = StageRecord(key=key, seconds=time.perf_counter() - start, outputs=outputs or {},
                             files=_file_records(stage_dir), upstream=upstream,
                             peak_rss_mb=round(memory.peak_mb, 1)).sealed()
        self.stages[name] = record
        (stage_dir / _MARKER).write_text(key + "\n")
        self.executed.append(name)
        self._save()
        return record

    def _problem(self, name: str, rec: StageRecord, upstream: dict[str, str]) -> str | None:
        """Why a finished record with the right key cannot be reused: ``None`` if it can, ``""``
        if a stage it read was re-run since, else a one-line description of the damage."""
        stage_dir = self.path / name
        if not rec.sha256:  # written before seals: the old rule (marker file present)
            if not self._legacy_warned:
                warnings.warn(f"{self.path / MANIFEST}: written by an older graphmtl without "
                              "stage digests; its finished stages are reused unchecked",
                              stacklevel=3)
                self._legacy_warned = True
            return None if (stage_dir / _MARKER).is_file() else f"{stage_dir}: missing"
        if seal_matches(rec.to_dict()) is not True:
            return (f"{self.path / MANIFEST}: the record of stage {name!r} was edited or damaged "
                    "(it does not match its sha256)")
        if any(upstream.get(up) != digest for up, digest in rec.upstream.items()):
            return ""
        for rel, frec in rec.files.items():
            try:
                check_file(stage_dir / rel, frec, "", full=frec["bytes"] <= FULL_CHECK_BYTES)
            except GraphMTLError as e:
                return str(e).rstrip("; ")
        return None

    # ------------------------------------------------------------------ manifest
    def _read_manifest(self) -> dict[str, StageRecord]:
        """The stage records of an existing manifest, validated (one-line errors)."""
        path = self.path / MANIFEST
        if not path.is_file():
            return {}
        fix = f"undo the edit, or delete {self.path} to start the run over"
        data = read_json(path, expect=dict)
        check(data.get("format", "graphmtl.Run") == "graphmtl.Run",
              f"{path}: not a graphmtl run manifest (format {data.get('format')!r}); {fix}")
        stages = data.get("stages", {})
        check(isinstance(stages, dict), f"{path}: 'stages' must be an object of stage records, "
                                        f"got {type(stages).__name__}; {fix}")
        out = {}
        for name, rec in stages.items():
            where = f"{path}: stage {name!r}"
            check(isinstance(rec, dict), f"{where}: expected an object, got "
                                         f"{type(rec).__name__}; {fix}")
            extra = sorted(set(rec) - set(_RECORD_FIELDS))
            check(not extra, f"{where}: unknown field {extra[0] if extra else ''!r} (known: "
                             f"{', '.join(_RECORD_FIELDS)}); {fix}")
            check("key" in rec, f"{where}: no 'key'; {fix}")
            for f, kind in _RECORD_FIELDS.items():
                ok = f not in rec or (isinstance(rec[f], kind) and not isinstance(rec[f], bool))
                check(ok, f"{where}: field {f!r} has the wrong type "
                          f"({type(rec.get(f)).__name__}); {fix}")
            out[name] = StageRecord(key=rec["key"], seconds=rec.get("seconds"),
                                    outputs=rec.get("outputs", {}), files=rec.get("files", {}),
                                    upstream=rec.get("upstream", {}), sha256=rec.get("sha256", ""),
                                    peak_rss_mb=rec.get("peak_rss_mb"))
        return out

    def _save(self) -> None:
        self.manifest["stages"] = {n: r.to_dict() for n, r in self.stages.items()}
        atomic_write_json(self.path / MANIFEST, self.manifest)


def _strings(obj: Any) -> Iterator[str]:
    """Every string value in a nested dict / list."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def _file_records(stage_dir: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: file_record}`` of every file of a stage (not the marker, not temps)."""
    out = {}
    for f in sorted(stage_dir.rglob("*")):
        if f.is_file() and f.name not in (_MARKER, LOCK_NAME) and not is_temp_file(f):
            out[f.relative_to(stage_dir).as_posix()] = file_record(f)
    return out
