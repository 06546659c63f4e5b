"""The expensive ways of getting ``f_i(S)``, through the same trainer, for benchmarking Grad-TAG.

- :class:`TrainedSubsetScores`: train one model per subset, from scratch (``mode="scratch"``) or
  fine-tuned from the base checkpoint (``mode="finetune"``, the trainer's ``init_from``), and
  score each task of the subset by its validation loss (and F1). Feeding the pairs of
  :func:`~graphmtl.affinity.subsets.pair_subsets` gives the naive pairwise affinity.
- :func:`gradient_cosine` : the cheap baseline, cosine similarity of per-task gradients at θ0,
  read from a projection store.

Subset trainings run in a process pool (default 2 workers with one torch thread each), show a
tqdm bar, and append one JSON line per finished subset to a result file, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import multiprocessing as mp
import numpy as np
import torch

from graphmtl.affinity.matrices import gradient_cosine_affinity
from graphmtl.affinity.subsets import as_membership
from graphmtl.errors import GraphMTLError, check
from graphmtl.utils.io import stable_hash

MODES = ("scratch", "finetune")


@dataclass
class TrainedScores:
    """Scores of trained subset models.

    Attributes:
        subsets: bool ``[m, n]``; scores: ``[m, n]`` = − validation BCE of each task under its
        subset's model (NaN where the task is not in the subset); f1: ``[m, n]`` validation F1;
        seconds: ``[m]`` wall time of each subset's training + scoring (in its worker);
        epochs: ``[m]`` epochs run; task_names: ``n`` names.
    """

    subsets: np.ndarray
    scores: np.ndarray
    f1: np.ndarray
    seconds: np.ndarray
    epochs: np.ndarray
    task_names: list[str]


def val_rows_from_store(store, graph) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{task name: (node ids, weights)}`` of a store's validation rows, checked against
    ``graph`` (every node must be labelled for the task in the graph's validation split)."""
    ptr = store.task_ptr("val")
    node = np.asarray(store.array("val", "node"))
    weight = np.asarray(store.array("val", "weight"), dtype=np.float64)
    pos = {n: i for i, n in enumerate(graph.task_names)}
    out = {}
    for t, name in enumerate(store.task_names):
        check(name in pos, f"{store.path}: task {name!r} is not in the data")
        nodes = node[ptr[t]:ptr[t + 1]]
        if nodes.size:
            check(nodes.max() < graph.num_nodes and
                  bool(graph.val_mask[torch.from_numpy(np.array(nodes)), pos[name]].all()),
                  f"{store.path}: validation rows of task {name!r} are not validation nodes of "
                  f"the data (store/data mismatch)")
        out[name] = (nodes, weight[ptr[t]:ptr[t + 1]])
    return out


def _projection_fn(*names: str):
    """The projection engine's digest function under the first of ``names`` it defines."""
    import graphmtl.projection as projection

    for name in names:
        fn = getattr(projection, name, None) or getattr(projection.engine, name, None)
        if fn is not None:
            return fn
    return None


def check_store_matches(store, graph=None, checkpoint=None) -> None:
    """One-line errors when a store was computed from other data or another model."""
    man = store.manifest
    if graph is not None:
        missing = [t for t in store.task_names if t not in set(graph.task_names)]
        check(not missing, f"{store.path}: task {missing[0] if missing else ''!r} of the store is "
                           f"not in the data (store/data mismatch)")
        graph_digest = _projection_fn("labelled_graph_digest", "graph_digest")
        if man.get("data_sha256") and graph_digest is not None:
            sub = graph if list(graph.task_names) == store.task_names else \
                graph.select_tasks(store.task_names)
            check(graph_digest(sub) == man["data_sha256"],
                  f"{store.path}: computed on other data (graph digest differs; store/data "
                  f"mismatch)")
    if checkpoint is not None:
        from graphmtl.training import load_checkpoint

        ckpt = load_checkpoint(checkpoint)
        check(list(ckpt.task_names) == store.task_names,
              f"{store.path}: its tasks differ from the checkpoint's (store/model mismatch)")
        model_digest = _projection_fn("model_digest")
        if man.get("model_sha256") and model_digest is not None:
            check(model_digest(ckpt.model) == man["model_sha256"],
                  f"{store.path}: computed from another model than {checkpoint} (store/model "
                  f"mismatch)")


# ------------------------------------------------------------------- worker process
_WORKER: dict[str, Any] = {}


def _init_worker(graph, model_config, train_config, init_from, val_rows, threads):
    torch.set_num_threads(threads)
    _WORKER.update(graph=graph, model_config=model_config, train_config=train_config,
                   init_from=init_from, val_rows=val_rows)


def _train_subset(k: int, tasks: list[str]) -> dict:
    from graphmtl.training import Trainer, predict_logits

    w = _WORKER
    graph = w["graph"]
    t0 = time.perf_counter()
    result = Trainer(w["model_config"], w["train_config"]).fit(
        graph, tasks, init_from=w["init_from"], progress=False)
    idx = graph.task_index(tasks)
    scores, f1 = {}, {}
    val_rows = w["val_rows"]
    if val_rows is None:  # every validation node of each task, weight 1
        sel = {name: (graph.val_mask[:, i].nonzero().flatten().numpy(),
                      np.ones(int(graph.val_mask[:, i].sum())))
               for name, i in zip(tasks, idx.tolist())}
    else:
        sel = {name: val_rows[name] for name in tasks}
    nodes = np.unique(np.concatenate([s[0] for s in sel.values()])) if sel else np.zeros(0, int)
    logits = predict_logits(result.model, graph, torch.as_tensor(nodes)).double()
    where = {int(v): p for p, v in enumerate(nodes)}
    for j, (name, i) in enumerate(zip(tasks, idx.tolist())):
        nd, wt = sel[name]
        if nd.size == 0:
            scores[name] = f1[name] = None
            continue
        u = logits[[where[int(v)] for v in nd], j]
        y = graph.y[torch.from_numpy(np.array(nd)), i].double()
        wt = torch.as_tensor(wt, dtype=torch.float64)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(u, y, reduction="none")
        scores[name] = -float(wt @ bce / wt.sum())
        pred = (u > 0).double()
        tp, fp, fn = float(wt @ (pred * y)), float(wt @ (pred * (1 - y))), \
            float(wt @ ((1 - pred) * y))
        f1[name] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else None
    return {"k": k, "tasks": tasks, "scores": scores, "f1": f1,
            "seconds": time.perf_counter() - t0, "epochs": len(result.history)}


# ------------------------------------------------------------------------ runner
class TrainedSubsetScores:
    """``f_i(S)`` for every subset by actually training (scikit-learn-style ``fit``).

    Args:
        model_config, train_config: the trainer's settings (same as the base model's, normally).
        mode: ``scratch`` (fresh model on S) or ``finetune`` (warm start from ``init_from``).
        init_from: the base checkpoint (required for ``finetune``).
        workers: processes (each trains whole subsets with ``threads`` torch threads).
        progress: tqdm bar over subsets.

    ``fit(graph, subsets, results=PATH, val_rows=None)`` returns ``self`` with ``result_``
    (:class:`TrainedScores`). ``results``: JSON-lines file; the first line records the settings,
    then one line per finished subset (appended and flushed as each finishes). Re-running with the
    same file skips finished subsets; a file from other settings is an error.
    """

    def __init__(self, model_config=None, train_config=None, mode: str = "scratch",
                 init_from: str | os.PathLike | None = None, workers: int = 2, threads: int = 1,
                 progress: bool = True):
        check(mode in MODES, f"baseline mode: unknown {mode!r} (choose from {', '.join(MODES)})")
        check(mode == "scratch" or init_from is not None,
              "baseline finetune: needs the base checkpoint (init_from)")
        check(workers >= 1, f"baseline workers: must be >= 1, got {workers}")
        self.model_config = model_config
        self.train_config = train_config
        self.mode = mode
        self.init_from = init_from
        self.workers = workers
        self.threads = threads
        self.progress = progress

    def _key(self, graph, M) -> str:
        from graphmtl.training import graph_digest

        return stable_hash({
            "mode": self.mode, "model": None if self.model_config is None else
            self.model_config.to_dict(), "train": None if self.train_config is None else
            self.train_config.to_dict(), "init_from": None if self.init_from is None else
            str(self.init_from), "data": graph_digest(graph), "subsets": np.packbits(M).tolist()},
            32)

    def fit(self, graph, subsets, results: str | os.PathLike | None = None,
            val_rows: dict | None = None) -> "TrainedSubsetScores":
        from graphmtl.models import ModelConfig
        from graphmtl.training import TrainConfig
        from graphmtl.training import load_checkpoint

        names = list(graph.task_names)
        M = as_membership(subsets, names)
        m, n = M.shape
        mc = self.model_config or ModelConfig()
        tc = self.train_config or TrainConfig()
        init = None
        if self.mode == "finetune":
            init = load_checkpoint(self.init_from)
            missing = [t for t in names if t not in set(init.task_names)]
            check(not missing, f"{self.init_from}: task {missing[0] if missing else ''!r} is not "
                               f"in the base checkpoint (model/data mismatch)")
        done = self._read(results, graph, M) if results is not None else {}
        todo = [k for k in range(m) if k not in done]
        if todo:
            self._run(graph, M, names, mc, tc, init, val_rows, todo, done, results)
        scores = np.full((m, n), np.nan)
        f1 = np.full((m, n), np.nan)
        seconds, epochs = np.zeros(m), np.zeros(m, dtype=np.int64)
        pos = {name: i for i, name in enumerate(names)}
        for k, rec in done.items():
            for name, v in rec["scores"].items():
                scores[k, pos[name]] = np.nan if v is None else v
            for name, v in rec["f1"].items():
                f1[k, pos[name]] = np.nan if v is None else v
            seconds[k], epochs[k] = rec["seconds"], rec["epochs"]
        self.result_ = TrainedScores(M, scores, f1, seconds, epochs, names)
        return self

    def _run(self, graph, M, names, mc, tc, init, val_rows, todo, done, results):
        from tqdm.auto import tqdm

        handle = open(results, "a") if results is not None else None
        bar = tqdm(total=len(todo), desc=f"training subsets ({self.mode})",
                   disable=not self.progress, unit="subset")
        init_args = (graph, mc, tc, init, val_rows, self.threads)

        def record(rec):
            done[rec["k"]] = rec
            if handle is not None:
                handle.write(json.dumps(rec) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            bar.update(1)

        try:
            jobs = [(k, [names[i] for i in np.flatnonzero(M[k])]) for k in todo]
            if self.workers == 1:
                before = torch.get_num_threads()
                _init_worker(*init_args)
                try:
                    for k, tasks in jobs:
                        record(_train_subset(k, tasks))
                finally:
                    torch.set_num_threads(before)
                    _WORKER.clear()
            else:
                # fork: workers inherit the imported modules and the graph (no re-import, no
                # pickling); each sets one torch thread before any work, like DataLoader workers.
                ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
                with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=init_args) as pool:
                    futures = [pool.submit(_train_subset, k, tasks) for k, tasks in jobs]
                    for fut in as_completed(futures):
                        record(fut.result())
        finally:
            bar.close()
            if handle is not None:
                handle.close()

    def _read(self, path, graph, M) -> dict[int, dict]:
        """Finished subsets of an existing result file (after checking it is this run's)."""
        path = Path(path)
        key = self._key(graph, M)
        header = {"header": {"key": key, "mode": self.mode, "subsets": int(M.shape[0]),
                             "tasks": int(M.shape[1])}}
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
        lines = raw.decode().splitlines()
        try:
            first = json.loads(lines[0])
        except (json.JSONDecodeError, IndexError):
            raise GraphMTLError(f"{path}: line 1: not a baseline result file") from None
        check(first.get("header", {}).get("key") == key,
              f"{path}: results of other settings, data or subsets; use another file")
        done = {}
        for i, line in enumerate(lines[1:], start=2):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise GraphMTLError(f"{path}: line {i}: invalid JSON") from None
            done[int(rec["k"])] = rec
        return done


def gradient_cosine(store, kind: str = "loss") -> np.ndarray:
    """Cosine similarity ``[n, n]`` of per-task mean gradients at θ0, from a projection store.

    ``kind="loss"`` (default): the projected gradient of each task's training loss at θ0,
    ``Σ_r ω_r (σ(f0_r) − y_r) z_r / Σ_r ω_r`` (the usual gradient-similarity baseline);
    ``kind="logit"``: the weighted mean of ``z`` (the mean logit gradient).
    """
    check(kind in ("loss", "logit"), f"cosine kind: expected loss or logit, got {kind!r}")
    z = np.asarray(store.array("train", "z"), dtype=np.float64)
    f0 = np.asarray(store.array("train", "f0"), dtype=np.float64)
    y = np.asarray(store.array("train", "y"), dtype=np.float64)
    w = np.asarray(store.array("train", "weight"), dtype=np.float64)
    ptr = store.task_ptr("train")
    coef = w * (1 / (1 + np.exp(-f0)) - y) if kind == "loss" else w
    task = np.repeat(np.arange(store.num_tasks), np.diff(ptr))
    G = torch.zeros(store.num_tasks, store.dim, dtype=torch.float64).index_add_(
        0, torch.as_tensor(task), torch.as_tensor(coef[:, None] * z)).numpy()
    total = np.bincount(task, weights=w, minlength=store.num_tasks)
    G /= np.where(total > 0, total, 1.0)[:, None]
    return gradient_cosine_affinity(G)


def subset_names(M: np.ndarray, names: Sequence[str]) -> list[list[str]]:
    """The task names of each subset (rows of ``M``)."""
    return [[names[i] for i in np.flatnonzero(row)] for row in np.asarray(M, dtype=bool)]
