"""On-disk store of projected gradients: the hand-off from projection to affinity estimation.

Layout of a store directory (all arrays are ``.npy``, memory-mapped on read)::

    manifest.json               format, version, dim d, seed, parameter set, task names,
                                checkpoint / data digests, budgets, row counts, complete flag
    {split}.z.npy       float32 [R, d]   projected gradients z_t(v) = P^T grad_theta f_t(v)
    {split}.f0.npy      float32 [R]      base logits f0_t(v)
    {split}.y.npy       uint8   [R]      labels y_t(v)
    {split}.weight.npy  float32 [R]      row weights: inverse sampling probability (1 if kept all)
    {split}.node.npy    int64   [R]      node id v of each row
    {split}.task_ptr.npy int64  [n + 1]  rows of task t are task_ptr[t] : task_ptr[t + 1]

for ``split`` in ``train`` and ``val``. Rows are grouped by task, so every task's rows are one
contiguous slice. A weighted row stands for ``weight`` rows of the full data: sums over a task's
rows estimate the sums over all its labelled nodes (exact when nothing was subsampled).

Written by :meth:`graphmtl.projection.GradientProjector.project`, which fills the manifest with:
``seed``, ``dim``, ``params`` (the selection spec) and ``param_names`` / ``num_params`` (the
projected parameters, in order), ``directions`` (the regeneration scheme), ``model_sha256``
(digest of the model state), ``data_sha256`` (features, edges, labels, train/val masks, task
names), ``budgets`` (``{"train": int | None, "val": int | None}``), ``row_rule``, ``task_names``,
``config`` (the full ``ProjectionConfig``), ``encoder``, ``run_key`` (hash of everything that
determines the content), ``rows`` and, from the CLI, ``checkpoint``, ``checkpoint_sha256`` and
``data``. Within a task, rows are sorted by node id. Row selection (per task and split): every
row when they fit the budget; otherwise all positives up to half the budget and negatives for the
rest, each class sampled uniformly without replacement, ``weight = class count / kept count``
(see :func:`graphmtl.projection.select_rows`). While a run is unfinished the directory also holds
``progress.json`` (``batches_done``, ``num_batches``, ``run_key``), replaced atomically after
every flushed batch, and the manifest says ``"complete": false``.

Integrity: the manifest is sealed (``sha256`` = digest of its other entries) and, once complete,
lists every array file as ``files: {name: {"bytes", "sha256"}}``. Opening a store checks the seal,
each file's size and each file's sha256 (once per process per file: reading a store for the
affinity estimates reads it all anyway, so the check costs one extra pass at most), so a
truncated, damaged or edited store gives a one-line error instead of a traceback or wrong
affinities. A store written before these digests opens with a warning and a size check only.

A store written by ``W`` ranks (``torchrun``) has ``"shards": W`` in its manifest; the top level
holds the row metadata (``task_ptr``, ``node``, ``y``, ``weight``) and the projected values live
in ``shards/<r>-of-<W>/{split}.z.npy``, ``{split}.f0.npy`` and ``{split}.row.npy`` (int64: the
store row of each shard row, ascending), with that rank's ``progress.json``. Reading ``z`` or
``f0`` of a sharded store assembles the ``[R, ...]`` array in memory from the shards; the shard
files are listed with their digests like the others.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphmtl.errors import check
from graphmtl.utils.integrity import (DamagedFileError, check_file, file_record, seal,
                                      seal_matches)
from graphmtl.utils.io import atomic_path, atomic_save_npy, atomic_write_json, read_json

STORE_FORMAT = "graphmtl.ProjectionStore"
STORE_VERSION = 1
STORE_SPLITS = ("train", "val")
SHARD_DIR = "shards"
_VALUES = ("z", "f0")
_ARRAYS = {"z": np.float32, "f0": np.float32, "y": np.uint8, "weight": np.float32,
           "node": np.int64}
_FIX = "re-run `graphmtl project` with --restart (or delete the store directory) to rebuild it"


def _store_files(shards: int = 1) -> list[str]:
    """Paths (relative to the store) of its arrays, in manifest order: with ``shards > 1`` the
    projected values are the shards' files instead of top-level ones."""
    names = [f"{split}.{name}.npy" for split in STORE_SPLITS for name in ("task_ptr", *_ARRAYS)
             if shards == 1 or name not in _VALUES]
    for r in range(shards if shards > 1 else 0):
        d = f"{SHARD_DIR}/{r}-of-{shards}"
        names += [f"{d}/{split}.{name}.npy" for split in STORE_SPLITS
                  for name in ("row", *_VALUES)]
    return names


@dataclass(frozen=True)
class TaskRows:
    """The stored rows of one task in one split.

    Attributes:
        z: float32 ``[r, d]``; f0: float32 ``[r]``; y: uint8 ``[r]``; weight: float32 ``[r]``;
        node: int64 ``[r]``.
    """

    z: np.ndarray
    f0: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    node: np.ndarray

    def __len__(self) -> int:
        return int(self.f0.shape[0])


class ProjectionStore:
    """Read access to a complete store directory (see the module docstring for the layout).

    Args:
        path: the store directory.
        verify: check every array file's sha256 at open (``False``: sizes only).

    Raises:
        GraphMTLError: one line naming the file when the manifest is missing, edited or
            incomplete, or an array is missing, truncated or damaged.
    """

    def __init__(self, path: str | os.PathLike, verify: bool = True):
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        check(manifest_path.is_file(),
              f"{self.path}: not a projection store (no manifest.json)")
        self.manifest: dict[str, Any] = read_json(manifest_path, expect=dict)
        check(self.manifest.get("format") == STORE_FORMAT,
              f"{manifest_path}: not a projection store manifest")
        sealed = seal_matches(self.manifest)
        if sealed is False:
            raise DamagedFileError(manifest_path, "does not match its recorded sha256 (damaged "
                                                  "or edited)", _FIX)
        check(self.manifest.get("complete", False),
              f"{self.path}: projection store is incomplete (re-run `graphmtl project` to resume)")
        files = self.manifest.get("files")
        if sealed is None or not isinstance(files, dict):
            warnings.warn(f"{self.path}: projection store written by an older graphmtl without "
                          "digests; only the array sizes are checked", stacklevel=2)
            for name in _store_files(self.num_shards):
                _check_npy_size(self.path / name)
        else:
            for name in _store_files(self.num_shards):
                check(name in files, f"{manifest_path}: no digest recorded for {name}; {_FIX}")
                check_file(self.path / name, files[name], _FIX, full=verify)
        self._arrays: dict[tuple[str, str], np.ndarray] = {}

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def task_names(self) -> list[str]:
        return list(self.manifest["task_names"])

    @property
    def num_tasks(self) -> int:
        return len(self.manifest["task_names"])

    @property
    def num_shards(self) -> int:
        """Ranks that wrote the store (1: the single-file layout)."""
        return int(self.manifest.get("shards", 1))

    def array(self, split: str, name: str) -> np.ndarray:
        """The whole ``{split}.{name}.npy`` array, memory-mapped read-only (``z`` and ``f0`` of
        a sharded store: assembled in memory from its shards, read-only)."""
        check(split in STORE_SPLITS, f"store split: expected train or val, got {split!r}")
        key = (split, name)
        if key not in self._arrays and name in _VALUES and self.num_shards > 1:
            self._arrays[key] = self._assemble(split, name)
        if key not in self._arrays:
            file = self.path / f"{split}.{name}.npy"
            if not file.is_file():
                raise DamagedFileError(file, "missing from the projection store", _FIX)
            try:
                self._arrays[key] = np.load(file, mmap_mode="r")
            except (OSError, ValueError) as e:
                raise DamagedFileError(file, f"unreadable ({e})", _FIX) from None
        return self._arrays[key]

    def _assemble(self, split: str, name: str) -> np.ndarray:
        rows = int(self.manifest["rows"][split])
        shape = (rows, self.dim) if name == "z" else (rows,)
        out = np.empty(shape, dtype=_ARRAYS[name])
        seen = 0
        for r in range(self.num_shards):
            d = shard_dir(self.path, r, self.num_shards)
            files = [d / f"{split}.row.npy", d / f"{split}.{name}.npy"]
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise DamagedFileError(missing[0], "missing from the projection store", _FIX)
            idx = np.load(files[0], mmap_mode="r")
            out[idx] = np.load(files[1], mmap_mode="r")
            seen += len(idx)
        check(seen == rows, f"{self.path}: shards hold {seen} {split} rows, the manifest {rows}")
        out.flags.writeable = False
        return out

    def task_ptr(self, split: str) -> np.ndarray:
        """int64 ``[n + 1]`` row offsets of each task in ``split``."""
        return np.asarray(self.array(split, "task_ptr"))

    def rows(self, split: str, task: int) -> TaskRows:
        """The rows of task ``task`` (position) in ``split``, as memory-mapped views."""
        check(0 <= task < self.num_tasks, f"task {task}: out of range for this store")
        ptr = self.task_ptr(split)
        sl = slice(int(ptr[task]), int(ptr[task + 1]))
        return TaskRows(**{name: self.array(split, name)[sl] for name in _ARRAYS})


class StoreWriter:
    """Pre-allocates a store's arrays so rows can be written in any order, then finalised.

    Args:
        path: store directory (created).
        task_ptr: ``{split: int64 [n + 1]}`` row offsets per split, fixed before writing.
        dim: projection dimension ``d``.
        manifest: extra manifest entries (seed, parameter set, digests, budgets, task names...).

    The arrays are created as ``.npy`` memmaps (so a resumed run reopens them in place);
    :meth:`finalize` flushes them and marks the manifest complete, atomically. With
    ``values=False`` (a sharded store) only the row metadata is created here; the ranks write
    ``z`` and ``f0`` through :class:`ShardWriter`.
    """

    def __init__(self, path: str | os.PathLike, task_ptr: dict[str, np.ndarray], dim: int,
                 manifest: dict[str, Any], values: bool = True):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.manifest = {"format": STORE_FORMAT, "version": STORE_VERSION, "dim": int(dim),
                         **manifest, "complete": False,
                         "rows": {s: int(task_ptr[s][-1]) for s in STORE_SPLITS}}
        self.manifest.pop("files", None)
        self.arrays: dict[tuple[str, str], np.ndarray] = {}
        for split in STORE_SPLITS:
            rows = int(task_ptr[split][-1])
            atomic_save_npy(self.path / f"{split}.task_ptr.npy",
                            np.asarray(task_ptr[split], np.int64))
            for name, dtype in _ARRAYS.items():
                if name in _VALUES and not values:
                    continue
                shape = (rows, dim) if name == "z" else (rows,)
                self.arrays[(split, name)] = _open_array(self.path / f"{split}.{name}.npy",
                                                         dtype, shape)
        self._write_manifest()

    def flush(self) -> None:
        for arr in self.arrays.values():
            arr.flush()

    def finalize(self) -> ProjectionStore:
        """Flush, record every array's size and sha256, and mark the manifest complete."""
        self.flush()
        shards = int(self.manifest.get("shards", 1))
        self.manifest["files"] = {name: file_record(self.path / name)
                                  for name in _store_files(shards)}
        self.manifest["complete"] = True
        self._write_manifest()
        return ProjectionStore(self.path, verify=False)  # the digests were just taken

    def _write_manifest(self) -> None:
        self.manifest = seal(self.manifest)
        atomic_write_json(self.path / "manifest.json", self.manifest)


def _check_npy_size(file: Path) -> None:
    """Check that an ``.npy`` file holds as many bytes as its header promises."""
    if not file.is_file():
        raise DamagedFileError(file, "missing from the projection store", _FIX)
    try:
        with open(file, "rb") as f:
            fmt = np.lib.format
            version = fmt.read_magic(f)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else \
                fmt.read_array_header_2_0
            shape, _, dtype = read_header(f)
            offset = f.tell()
    except (OSError, ValueError) as e:
        raise DamagedFileError(file, f"unreadable array header ({e})", _FIX) from None
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = file.stat().st_size
    if size != expected:
        raise DamagedFileError(file, f"truncated or overwritten ({size} bytes, expected "
                                     f"{expected})", _FIX)


def shard_dir(path: str | os.PathLike, rank: int, world: int) -> Path:
    """Directory of rank ``rank``'s shard of a store written by ``world`` ranks."""
    return Path(path) / SHARD_DIR / f"{rank}-of-{world}"


def _open_array(file: Path, dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A ``.npy`` memmap, reopened in place when it exists with this shape (resume), else
    created under a temporary name and renamed, so a killed run never leaves a half-created
    array behind (the memmap follows the rename)."""
    if file.is_file():
        try:
            arr = np.load(file, mmap_mode="r+")
        except (OSError, ValueError) as e:
            raise DamagedFileError(file, f"unreadable array of an unfinished store ({e})",
                                   _FIX) from None
        check(arr.shape == shape and arr.dtype == dtype,
              f"{file}: existing array has the wrong shape for this store; {_FIX}")
        return arr
    with atomic_path(file) as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        arr.flush()
    return arr


class ShardWriter:
    """One rank's share of a sharded store's ``z`` and ``f0`` (see the module docstring).

    Args:
        path: store directory.
        rank, world: this rank and the number of ranks.
        rows: ``{split: int64 [R_r]}`` the store rows this rank writes, ascending; its arrays
            hold them in that order (``arrays[(split, name)][i]`` is store row ``rows[split][i]``).
        dim: projection dimension ``d``.
        run_key: the store's key, recorded in this shard's ``progress.json``.
    """

    def __init__(self, path: str | os.PathLike, rank: int, world: int,
                 rows: dict[str, np.ndarray], dim: int, run_key: str):
        self.path = shard_dir(path, rank, world)
        self.path.mkdir(parents=True, exist_ok=True)
        self.run_key = run_key
        self.progress_file = self.path / "progress.json"
        self.arrays: dict[tuple[str, str], np.ndarray] = {}
        for split in STORE_SPLITS:
            r = np.asarray(rows[split], dtype=np.int64)
            atomic_save_npy(self.path / f"{split}.row.npy", r)
            self.arrays[(split, "z")] = _open_array(self.path / f"{split}.z.npy", np.float32,
                                                    (len(r), dim))
            self.arrays[(split, "f0")] = _open_array(self.path / f"{split}.f0.npy", np.float32,
                                                     (len(r),))

    @property
    def batches_done(self) -> int:
        """Batches this rank recorded as written (0 without a matching progress file)."""
        if not self.progress_file.is_file():
            return 0
        p = read_json(self.progress_file)
        return int(p.get("batches_done", 0)) if p.get("run_key") == self.run_key else 0

    def flush(self) -> None:
        for arr in self.arrays.values():
            arr.flush()
