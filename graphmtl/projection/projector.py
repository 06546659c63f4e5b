"""The projector: streams node batches through the kernel into a bounded, resumable store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from graphmtl.errors import GraphMTLError, check
from graphmtl.projection.batches import NodeBatches
from graphmtl.projection.config import ProjectionConfig
from graphmtl.projection.digests import labelled_graph_digest, model_digest
from graphmtl.projection.directions import Directions
from graphmtl.projection.kernel import project_batch
from graphmtl.projection.rows import select_rows
from graphmtl.projection.store import (SHARD_DIR, STORE_SPLITS, ProjectionStore, ShardWriter,
                                       StoreWriter)
from graphmtl.utils import distributed as dist
from graphmtl.utils.device import resolve_device
from graphmtl.utils.io import atomic_write_json, read_json, stable_hash
from graphmtl.utils.progress import progress as progress_iter
from graphmtl.utils.progress import progress_bar


class GradientProjector:
    """Streams node batches through the forward-mode engine into a bounded, resumable store.

    ``project(model, graph, out_dir)`` selects the stored rows up front (:func:`select_rows`),
    then processes the nodes that own at least one row in fixed batches; after each batch the
    rows of its nodes are scattered into the store's memmaps, flushed, and ``progress.json`` is
    replaced atomically. A killed run restarted with the same inputs continues after the last
    recorded batch and produces a bit-identical store (every batch is a deterministic function of
    its index).

    Args:
        config: a :class:`ProjectionConfig`.
    """

    def __init__(self, config: ProjectionConfig | None = None):
        self.config = config or ProjectionConfig()

    def directions(self, model: nn.Module) -> Directions:
        """The projection directions of this config for ``model``."""
        return Directions.for_model(model, self.config.dim, self.config.seed, self.config.params)

    def apply_direction(self, model: nn.Module, w: torch.Tensor | Sequence[float]) -> nn.Module:
        """A copy of ``model`` at ``theta0 + P w``."""
        return self.directions(model).apply(model, w)

    def _working_model(self, model: nn.Module) -> nn.Module:
        """``model`` itself on the CPU, else a copy on the configured device (this rank's GPU
        under torchrun)."""
        dev = dist.rank_device(resolve_device(self.config.device))
        if next(model.parameters()).device == dev:
            return model
        import copy

        return copy.deepcopy(model).to(dev)

    def project_nodes(self, model: nn.Module, graph, nodes: torch.Tensor | Sequence[int],
                      progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f0 [m, n], z [m, n, d])`` for the given nodes, in memory (no store)."""
        cfg = self.config.resolve(model, graph)
        dirs = self.directions(model)
        work = self._working_model(model)
        batches = NodeBatches(model, graph, torch.as_tensor(nodes), cfg.batch_size, cfg.fanouts,
                              cfg.seed)
        f0s, zs = [], []
        for x, ei, B in progress_iter(batches, desc="projecting", enabled=progress):
            f0, z = project_batch(work, x, ei, B, dirs, cfg.direction_chunk, cfg.strategy)
            f0s.append(f0)
            zs.append(z)
        return torch.cat(f0s), torch.cat(zs)

    @staticmethod
    def _check_existing(out: Path, run_key: str, resume: bool, world: int) -> tuple[bool, int]:
        """``(finished, batches_done)`` for the store already in ``out`` (run by rank 0):
        removes it when not resuming, refuses one with other inputs."""
        progress_file = out / "progress.json"
        if (out / "manifest.json").is_file() and not resume:
            # Start over: remove this store's own files only (nothing else in the directory).
            for f in [*out.glob("*.npy"), out / "manifest.json", progress_file]:
                if f.name == "manifest.json" or f.name == "progress.json" or \
                        f.name.split(".")[0] in STORE_SPLITS:
                    f.unlink(missing_ok=True)
            _remove_shards(out)
        if not (out / "manifest.json").is_file():
            return False, 0
        old = read_json(out / "manifest.json")
        if old.get("run_key") != run_key:
            raise GraphMTLError(
                f"{out}: holds a projection with different inputs or settings "
                "(model, data, dim, seed, params, budgets); choose another output directory")
        if old.get("complete"):
            return True, 0
        if old.get("shards", 1) != world:
            raise GraphMTLError(
                f"{out}: unfinished projection sharded over {old.get('shards', 1)} process(es), "
                f"now {world}; resume with as many, or pass --restart")
        done = 0
        if resume and progress_file.is_file():
            done = int(read_json(progress_file).get("batches_done", 0))
        return False, done

    def project(self, model: nn.Module, graph, out_dir: str | os.PathLike, resume: bool = True,
                progress: bool = True, manifest_extra: dict[str, Any] | None = None,
                stop_after: int | None = None) -> ProjectionStore | None:
        """Project every stored row of ``graph`` at ``model`` into the store ``out_dir``.

        Inside a ``torchrun`` process group of ``W`` ranks (:mod:`graphmtl.utils.distributed`)
        rank ``r`` projects the ``r``-th contiguous share of the node batches into its own
        shard (``out_dir/shards/<r>-of-<W>/``, resumable per rank); rank 0 writes the row
        metadata and the manifest, and :class:`ProjectionStore` reads the shards as one store.
        Every batch is a deterministic function of its index, so the store equals the
        one-process store bit for bit (on the same hardware and thread count). ``out_dir`` must
        be visible to every rank (one machine, or a shared file system).

        Args:
            model: trained :class:`~graphmtl.models.MultiTaskGNN` (``n`` outputs = graph tasks).
            graph: :class:`~graphmtl.data.MultiTaskGraph`.
            out_dir: store directory.
            resume: continue a matching unfinished store, or return a matching finished one
                (``False``: delete the store files in ``out_dir`` and start over).
            progress: show a tqdm bar with ETA.
            manifest_extra: more manifest entries (e.g. the checkpoint file's sha256).
            stop_after: process at most this many batches and return ``None`` (for tests).

        Returns:
            The finished :class:`~graphmtl.projection.store.ProjectionStore`.
        """
        cfg = self.config.resolve(model, graph)
        out = Path(out_dir)
        rank, world = dist.rank_world()
        check(model.num_tasks == graph.num_tasks,
              f"model has {model.num_tasks} task outputs, the data has {graph.num_tasks} tasks")
        dirs = self.directions(model)
        manifest = {
            "seed": cfg.seed, "params": cfg.params, "param_names": dirs.names,
            "num_params": dirs.num_params, "directions": dirs.to_dict()["scheme"],
            "model_sha256": model_digest(model), "data_sha256": labelled_graph_digest(graph),
            "budgets": {"train": cfg.train_budget, "val": cfg.val_budget},
            "row_rule": "all rows if they fit the budget; else all positives up to half the "
                        "budget, the rest negatives, uniform per class; weight = class count / "
                        "kept count",
            "task_names": list(graph.task_names), "config": cfg.key_dict(),
            "encoder": getattr(getattr(model, "config", None), "encoder", None),
            **(manifest_extra or {}),
        }
        run_key = stable_hash({k: manifest[k] for k in ("model_sha256", "data_sha256", "config",
                                                         "param_names", "task_names")}, 32)
        manifest["run_key"] = run_key
        manifest["device"] = str(cfg.device)
        if world > 1:
            manifest["shards"] = world

        progress_file = out / "progress.json"
        done = 0
        finished, error = False, None
        if rank == 0:
            try:
                finished, done = self._check_existing(out, run_key, resume, world)
            except GraphMTLError as e:
                error = str(e)
        finished, error = dist.broadcast_object((finished, error))
        if error is not None:
            raise GraphMTLError(error)
        if finished:
            return ProjectionStore(out)

        selections = {s: select_rows(graph.y, graph.mask(s), cfg.budget(s), cfg.seed, s)
                      for s in STORE_SPLITS}
        nodes = np.unique(np.concatenate([selections[s].node for s in STORE_SPLITS]))
        pos_of = np.full(graph.num_nodes, -1, dtype=np.int64)
        pos_of[nodes] = np.arange(len(nodes))
        order, row_pos = {}, {}
        for s in STORE_SPLITS:
            rp = pos_of[selections[s].node]
            order[s] = np.argsort(rp, kind="stable")
            row_pos[s] = rp[order[s]]
        batches = NodeBatches(model, graph, torch.from_numpy(nodes), cfg.batch_size, cfg.fanouts,
                              cfg.seed)
        total = len(batches)

        writer = None
        if rank == 0:
            writer = StoreWriter(out, {s: selections[s].task_ptr for s in STORE_SPLITS}, cfg.dim,
                                 manifest, values=world == 1)
            # Row-level metadata is fixed by the selection: (re)write it, identical on resume.
            for s in STORE_SPLITS:
                sel = selections[s]
                writer.arrays[(s, "node")][:] = sel.node
                writer.arrays[(s, "y")][:] = sel.y
                writer.arrays[(s, "weight")][:] = sel.weight
            writer.flush()
        dist.barrier()

        # This process's share: every batch in one process, a contiguous range per rank.
        lo_b, hi_b = dist.shard_range(total, rank, world)
        if world > 1:
            shard_rows = {}
            lo_n, hi_n = (min(b * cfg.batch_size, len(nodes)) for b in (lo_b, hi_b))
            for s in STORE_SPLITS:
                a, b_ = np.searchsorted(row_pos[s], [lo_n, hi_n])
                shard_rows[s] = np.sort(order[s][a:b_])
            target = ShardWriter(out, rank, world, shard_rows, cfg.dim, run_key)
            progress_file = target.progress_file
            done = target.batches_done if resume else 0
        else:
            target = writer
            shard_rows = None
        done = min(done, hi_b - lo_b)
        if done == 0:
            atomic_write_json(progress_file, {"batches_done": 0, "num_batches": hi_b - lo_b,
                                              "run_key": run_key})
        work = self._working_model(model)
        bar = progress_bar(hi_b - lo_b, initial=done, enabled=progress and rank == 0,
                           desc=f"projecting d={cfg.dim}"
                           + (f" (rank 0 of {world})" if world > 1 else ""))
        for i in range(lo_b + done, hi_b):
            if stop_after is not None and i - lo_b - done >= stop_after:
                bar.close()
                return None
            x, ei, B = batches[i]
            f0, z = project_batch(work, x, ei, B, dirs, cfg.direction_chunk, cfg.strategy)
            lo, hi = batches.span(i)
            for s in STORE_SPLITS:
                a, b_ = np.searchsorted(row_pos[s], [lo, hi])
                rows = order[s][a:b_]
                if len(rows) == 0:
                    continue
                sel = selections[s]
                local = torch.from_numpy(row_pos[s][a:b_] - lo)
                task = torch.from_numpy(sel.task[rows])
                srt = np.argsort(rows, kind="stable")  # write in row order: sequential pages
                rows, local, task = rows[srt], local[srt], task[srt]
                if shard_rows is not None:
                    rows = np.searchsorted(shard_rows[s], rows)
                target.arrays[(s, "z")][rows] = z[local, task].numpy()
                target.arrays[(s, "f0")][rows] = f0[local, task].numpy()
            target.flush()
            atomic_write_json(progress_file, {"batches_done": i + 1 - lo_b,
                                              "num_batches": hi_b - lo_b, "run_key": run_key})
            bar.update(1)
        bar.close()
        if world == 1:
            return writer.finalize()
        target.flush()
        dist.barrier()
        if rank == 0:
            writer.finalize()
        dist.barrier()
        return ProjectionStore(out)


def _remove_shards(out: Path) -> None:
    shards = out / SHARD_DIR
    if shards.is_dir():
        shutil.rmtree(shards)
