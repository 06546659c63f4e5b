"""A run directory whose stages are cached by the hash of their inputs.

Each stage writes into ``run_dir/<stage>/`` and is recorded in ``run_dir/manifest.json`` with the
key of its inputs (config slice plus the keys of the stages it reads), its wall time and its
outputs. Re-running a stage whose key is unchanged and whose outputs are present is a no-op;
a stage whose inputs changed is redone, and so is every stage downstream of it (their keys include
its key). A killed run resumes at the first unfinished stage; stages that are themselves
resumable (training, projection) continue from their own progress files.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from graphmtl.utils.io import atomic_write_json, read_json, stable_hash

MANIFEST = "manifest.json"


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
    key: str
    seconds: float | None
    outputs: dict[str, Any] = field(default_factory=dict)


class RunDirectory:
    """The manifest-backed run directory.

    Args:
        path: the run directory (created).
        config: the whole run configuration (JSON-serialisable), recorded in the manifest.
    """

    def __init__(self, path: str | Path, config: dict[str, Any]):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        manifest_path = self.path / MANIFEST
        previous = read_json(manifest_path) if manifest_path.is_file() else {}
        self.stages: dict[str, StageRecord] = {
            name: StageRecord(**rec) for name, rec in previous.get("stages", {}).items()}
        self.manifest: dict[str, Any] = {
            "format": "graphmtl.Run", "config": config, "versions": package_versions(),
            "command": " ".join(sys.argv), "stages": {}}
        self.executed: list[str] = []
        self._save()

    def run(self, name: str, inputs: dict[str, Any], fn: Callable[[Path], dict[str, Any]],
            ) -> StageRecord:
        """Run stage ``name`` unless its recorded key equals the key of ``inputs``.

        ``fn(stage_dir)`` does the work and returns a JSON-serialisable dict of outputs (paths
        relative to the stage directory, small numbers). Returns the stage's record.
        """
        key = stable_hash(inputs)
        done = self.stages.get(name)
        if done is not None and done.key == key and self._marker(name).is_file():
            return done
        stage_dir = self.path / name
        if done is not None and done.key != key and stage_dir.exists():
            shutil.rmtree(stage_dir)  # inputs changed: stale partial work must not be resumed
        stage_dir.mkdir(parents=True, exist_ok=True)
        self._marker(name).unlink(missing_ok=True)
        self.stages[name] = StageRecord(key=key, seconds=None)
        self._save()
        start = time.perf_counter()
        outputs = fn(stage_dir)
        record = StageRecord(key=key, seconds=time.perf_counter() - start, outputs=outputs or {})
        self.stages[name] = record
        self._marker(name).write_text(key + "\n")
        self.executed.append(name)
        self._save()
        return record

    def _marker(self, name: str) -> Path:
        return self.path / name / ".done"

    def _save(self) -> None:
        self.manifest["stages"] = {n: vars(r) for n, r in self.stages.items()}
        atomic_write_json(self.path / MANIFEST, self.manifest)
