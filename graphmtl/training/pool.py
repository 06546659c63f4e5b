"""Many task-subset models, trained in a process pool, scored per task, resumable.

Every place that trains one model per task subset goes through :class:`SubsetTrainingPool`:
the trained higher-order and pairwise affinities (one model per sampled subset, scored on the
validation split), the group models of a grouping (one model per group, scored on validation and
test) and the random-group controls of the grouping benchmark. Each job is one
:class:`~graphmtl.training.Trainer` run on its tasks, with its own training seed; the models are
independent, so jobs run in worker processes (``fork``, one torch thread each: the models are
small, and intra-op threads on a busy machine slow training down). Each finished job appends one
JSON line to a result file, keyed by the job's content (tasks, seed, where its model is saved), so
an interrupted pool resumes where it stopped, a job repeated in the list is trained once, and
later calls with more jobs reuse the finished ones; a result file made under other settings
(model, training, data, splits) is refused.

A job's record holds, per split and per task, the scores of :func:`score_tasks`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.errors import GraphMTLError, check
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.training.config import TrainConfig
from graphmtl.training.metrics import tuned_threshold_f1
from graphmtl.utils.io import stable_hash
from graphmtl.utils.progress import progress_bar
from graphmtl.utils.threads import torch_threads

#: Scores of every task on every split a job is scored on. ``bce`` is the mean BCE (lower is
#: better); ``f1`` thresholds the logit at 0; ``f1_tuned`` (test only) thresholds it where F1 is
#: highest on the validation split (``threshold``).
SCORES = ("bce", "ap", "roc_auc", "f1", "f1_tuned", "threshold")
_FORMAT = "graphmtl.pool/2"


@dataclass(frozen=True)
class SubsetJob:
    """One model to train.

    Attributes:
        tasks: task names, in the model's output order.
        seed: training seed (``None``: the pool's ``TrainConfig.seed``).
        save_to: directory for the model's checkpoint (``model.pt``); ``None``: not kept.
    """

    tasks: tuple[str, ...]
    seed: int | None = None
    save_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks), "seed": self.seed, "save_to": self.save_to}

    @property
    def key(self) -> str:
        """Content key: equal jobs train the same model."""
        return stable_hash(self.to_dict(), 24)


def _split_rows(graph: MultiTaskGraph, split: str, task: int, val_rows=None, name: str = ""
                ) -> tuple[np.ndarray, np.ndarray]:
    """Node ids and weights of one task's rows in ``split`` (``val_rows`` overrides val)."""
    if split == "val" and val_rows is not None:
        nodes, weight = val_rows[name]
        return np.asarray(nodes, dtype=np.int64), np.asarray(weight, dtype=np.float64)
    nodes = graph.mask(split)[:, task].nonzero().flatten().numpy()
    return nodes, np.ones(len(nodes))


def score_tasks(model: MultiTaskGNN, graph: MultiTaskGraph, tasks: Sequence[str],
                splits: Sequence[str] = ("val",), val_rows: Mapping | None = None
                ) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per-task scores of ``model`` (outputs = ``tasks``) on ``splits``.

    Args:
        model: a model with one output per task of ``tasks``.
        graph: the data.
        tasks: the graph tasks of the model's outputs.
        splits: any of ``val`` and ``test``; ``f1_tuned`` needs both (the threshold comes from
            validation).
        val_rows: optional ``{task: (node ids, weights)}`` replacing the validation rows (e.g. a
            projection store's budgeted rows), used for the validation ``bce`` and ``f1``.

    Returns:
        ``{split: {score: {task: value or None}}}`` with the scores of :data:`SCORES` (``None``
        where undefined, e.g. AP without positives).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    from graphmtl.training.trainer import predict_logits

    idx = graph.task_index(list(tasks)).tolist()
    rows = {s: [_split_rows(graph, s, i, val_rows, name) for name, i in zip(tasks, idx)]
            for s in splits}
    nodes = np.unique(np.concatenate([r[0] for s in splits for r in rows[s]] + [np.zeros(0, int)]))
    logits = predict_logits(model, graph, torch.as_tensor(nodes)).double().numpy()
    where = np.full(graph.num_nodes, -1, dtype=np.int64)
    where[nodes] = np.arange(len(nodes))
    y_all = graph.y.numpy()
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    per_split: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for s in splits:
        scores: dict[str, dict[str, float | None]] = {k: {} for k in SCORES}
        per_split[s] = []
        for j, (name, i) in enumerate(zip(tasks, idx)):
            nd, wt = rows[s][j]
            u = logits[where[nd], j]
            y = y_all[nd, i].astype(np.float64)
            per_split[s].append((u, y, wt))
            if nd.size == 0:
                for k in ("bce", "ap", "roc_auc", "f1"):
                    scores[k][name] = None
                continue
            bce = np.logaddexp(0.0, u) - y * u
            scores["bce"][name] = float(wt @ bce / wt.sum())
            pred = (u > 0).astype(np.float64)
            tp, fp, fn = wt @ (pred * y), wt @ (pred * (1 - y)), wt @ ((1 - pred) * y)
            scores["f1"][name] = float(2 * tp / (2 * tp + fp + fn)) if tp + fn > 0 else None
            has_both = 0 < y.sum() < len(y)
            scores["ap"][name] = (float(average_precision_score(y, u, sample_weight=wt))
                                  if y.any() else None)
            scores["roc_auc"][name] = (float(roc_auc_score(y, u, sample_weight=wt))
                                       if has_both else None)
        out[s] = scores
    if "val" in splits and "test" in splits:
        for j, name in enumerate(tasks):
            (uv, yv, _), (ut, yt, _) = per_split["val"][j], per_split["test"][j]
            f1, thr = tuned_threshold_f1(uv, yv, ut, yt)
            out["test"]["f1_tuned"][name] = None if np.isnan(f1) else float(f1)
            out["test"]["threshold"][name] = float(thr)
    for s in splits:   # keep only the scores that were computed
        out[s] = {k: v for k, v in out[s].items() if v}
    return out


# ---------------------------------------------------------------------- worker process
_WORKER: dict[str, Any] = {}


def _init_worker(graph, model_config, train_config, init_from, val_rows, splits, threads):
    """Initialiser of a worker process: its thread count, then the shared inputs."""
    torch.set_num_threads(threads)
    _load_worker(graph, model_config, train_config, init_from, val_rows, splits)


def _load_worker(graph, model_config, train_config, init_from, val_rows, splits):
    _WORKER.update(graph=graph, model_config=model_config, train_config=train_config,
                   init_from=init_from, val_rows=val_rows, splits=splits)


def _run_job(job: SubsetJob) -> dict[str, Any]:
    from graphmtl.training.trainer import Trainer

    w = _WORKER
    tc = w["train_config"] if job.seed is None else w["train_config"].replace(seed=job.seed)
    t0 = time.perf_counter()
    result = Trainer(w["model_config"], tc).fit(
        w["graph"], list(job.tasks), init_from=w["init_from"], out_dir=job.save_to,
        resume=job.save_to is not None, progress=False)
    scores = score_tasks(result.model, w["graph"], job.tasks, w["splits"], w["val_rows"])
    return {"job": job.key, **job.to_dict(), "scores": scores,
            "seconds": time.perf_counter() - t0, "epochs": result.epochs_run,
            "best_epoch": result.best_epoch}


# ---------------------------------------------------------------------- the pool
class SubsetTrainingPool:
    """Train one model per :class:`SubsetJob` with the shared trainer, in parallel.

    Args:
        model_config, train_config: settings of every model (each job may override the seed).
        workers: processes; each trains whole models with ``threads`` torch threads. ``1`` runs
            in this process.
        init_from: a checkpoint every model warm starts from (the trainer's ``init_from``).
        splits: the splits every model is scored on (``("val",)`` or ``("val", "test")``).
        progress: a tqdm bar over jobs.
        desc: the bar's label.
    """

    def __init__(self, model_config: ModelConfig | None = None,
                 train_config: TrainConfig | None = None, *, workers: int = 2, threads: int = 1,
                 init_from=None, splits: Sequence[str] = ("val",), progress: bool = True,
                 desc: str = "training models"):
        check(workers >= 1, f"workers: must be >= 1, got {workers}")
        check(threads >= 1, f"threads: must be >= 1, got {threads}")
        check(len(splits) >= 1 and all(s in ("val", "test") for s in splits),
              f"splits: expected val and/or test, got {list(splits)}")
        self.model_config = model_config or ModelConfig()
        self.train_config = train_config or TrainConfig()
        self.workers, self.threads = workers, threads
        self.init_from = init_from
        self.splits = tuple(splits)
        self.progress, self.desc = progress, desc

    def key(self, graph: MultiTaskGraph, extra: Any = None) -> str:
        """What a result file must have been made with to be reused."""
        from graphmtl.training.loader import graph_digest

        return stable_hash({"format": _FORMAT, "model": self.model_config.to_dict(),
                            "train": self.train_config.to_dict(), "splits": self.splits,
                            "init_from": None if self.init_from is None else
                            str(getattr(self.init_from, "path", self.init_from)),
                            "data": graph_digest(graph), "labels": _label_digest(graph),
                            "extra": extra}, 32)

    def run(self, graph: MultiTaskGraph, jobs: Sequence[SubsetJob],
            results: str | os.PathLike | None = None, val_rows: Mapping | None = None,
            extra_key: Any = None) -> list[dict[str, Any]]:
        """Train every job not yet in ``results``; return one record per job, in job order
        (a repeated job shares its record). ``extra_key``: anything else the result file must
        agree on (e.g. where ``val_rows`` came from)."""
        jobs = list(jobs)
        known = set(graph.task_names)
        for k, job in enumerate(jobs):
            check(len(job.tasks) > 0, f"job {k}: no tasks")
            bad = [t for t in job.tasks if t not in known]
            check(not bad, f"job {k}: unknown task {bad[0] if bad else ''!r}")
        done: dict[str, dict] = {}
        if results is not None:
            done = self._read(Path(results), self.key(graph, extra_key))
        todo = list({job.key: job for job in jobs if job.key not in done}.values())
        if todo:
            self._run(graph, todo, done, results, val_rows)
        return [done[job.key] for job in jobs]

    def _run(self, graph, todo, done, results, val_rows) -> None:
        handle = open(results, "a") if results is not None else None
        bar = progress_bar(len(todo), desc=self.desc, enabled=self.progress, unit="model")
        init_args = (graph, self.model_config, self.train_config, self.init_from, val_rows,
                     self.splits, self.threads)

        def record(rec: dict) -> None:
            done[rec["job"]] = rec
            if handle is not None:
                handle.write(json.dumps(rec) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            bar.update(1)

        # One GPU serialises the models anyway, and CUDA cannot be used in forked children of
        # a process that has touched it: on a GPU the models train in this process.
        in_process = (self.workers == 1 or len(todo) == 1
                      or str(self.train_config.device) != "cpu")
        try:
            if in_process:
                with torch_threads(self.threads):
                    _load_worker(*init_args[:-1])
                    try:
                        for job in todo:
                            record(_run_job(job))
                    finally:
                        _WORKER.clear()
            else:
                # fork: workers inherit the imported modules and the graph (no re-import, no
                # pickling of the data); each sets its thread count before any work.
                ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
                with ProcessPoolExecutor(min(self.workers, len(todo)), mp_context=ctx,
                                         initializer=_init_worker, initargs=init_args) as pool:
                    futures = [pool.submit(_run_job, job) for job in todo]
                    for fut in as_completed(futures):
                        record(fut.result())
        finally:
            bar.close()
            if handle is not None:
                handle.close()

    @staticmethod
    def _read(path: Path, key: str) -> dict[str, dict]:
        """Finished jobs of an existing result file, after checking it is this pool's."""
        header = {"header": {"format": _FORMAT, "key": key}}
        if not path.is_file() or path.stat().st_size == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w") as f:
                f.write(json.dumps(header) + "\n")
            return {}
        raw = path.read_bytes()
        if not raw.endswith(b"\n"):  # a line cut by a kill: drop it
            raw = raw[: raw.rfind(b"\n") + 1]
            with open(path, "wb") as f:
                f.write(raw)
        lines = raw.decode(errors="replace").splitlines()
        try:
            first = json.loads(lines[0])
        except (json.JSONDecodeError, IndexError):
            raise GraphMTLError(f"{path}: line 1: not a training-pool result file") from None
        check(isinstance(first, dict) and first.get("header", {}).get("key") == key,
              f"{path}: results of other settings or data; use another file")
        done = {}
        for i, line in enumerate(lines[1:], start=2):
            try:
                rec = json.loads(line)
                done[str(rec["job"])] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                raise GraphMTLError(f"{path}: line {i}: not a job record") from None
        return done


def _label_digest(graph: MultiTaskGraph) -> str:
    """Digest of the labels and splits (what the data digest leaves out)."""
    import hashlib

    h = hashlib.sha256()
    for t in (graph.y, graph.train_mask, graph.val_mask, graph.test_mask):
        h.update(t.numpy().tobytes())
    h.update("\n".join(graph.task_names).encode())
    return h.hexdigest()[:16]


def score_matrix(records: Sequence[Mapping], task_names: Sequence[str], split: str,
                 score: str) -> np.ndarray:
    """``[m, n]`` matrix of one score from job records (NaN where the task is not in the job's
    subset or the score is undefined)."""
    pos = {name: i for i, name in enumerate(task_names)}
    out = np.full((len(records), len(task_names)), np.nan)
    for k, rec in enumerate(records):
        for name, v in rec["scores"].get(split, {}).get(score, {}).items():
            out[k, pos[name]] = np.nan if v is None else v
    return out
