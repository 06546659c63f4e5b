"""The expensive ways of getting ``f_i(S)``, through the same trainer, for benchmarking Grad-TAG.

- :class:`TrainedSubsetScores`: train one model per subset, from scratch (``mode="scratch"``) or
  fine-tuned from the base checkpoint (``mode="finetune"``, the trainer's ``init_from``), and
  score each task of the subset by its validation loss (and F1). Feeding the pairs of
  :func:`~graphmtl.affinity.subsets.pair_subsets` gives the naive pairwise affinity.
- :func:`gradient_cosine` : the cheap baseline, cosine similarity of per-task gradients at θ0,
  read from a projection store.

Subset trainings run in the shared :class:`~graphmtl.training.pool.SubsetTrainingPool` (default
2 workers with one torch thread each), show a tqdm bar, and append one JSON line per finished
subset to a result file, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from graphmtl.affinity.matrices import gradient_cosine_affinity
from graphmtl.affinity.subsets import as_membership
from graphmtl.errors import check
from graphmtl.projection.digests import labelled_graph_digest, model_digest
from graphmtl.utils.io import stable_hash

MODES = ("scratch", "finetune")


@dataclass
class TrainedScores:
    """Scores of trained subset models.

    Attributes:
        subsets: bool ``[m, n]``; scores: ``[m, n]`` = − validation BCE of each task under its
        subset's model (NaN where the task is not in the subset); f1: ``[m, n]`` validation F1;
        seconds: ``[m]`` wall time of each subset's training + scoring (in its worker);
        epochs: ``[m]`` epochs run; task_names: ``n`` names; ap, roc_auc: ``[m, n]``
        validation average precision and ROC-AUC (NaN where undefined).
    """

    subsets: np.ndarray
    scores: np.ndarray
    f1: np.ndarray
    seconds: np.ndarray
    epochs: np.ndarray
    task_names: list[str]
    ap: np.ndarray | None = None
    roc_auc: np.ndarray | None = None


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


def check_store_matches(store, graph=None, checkpoint=None) -> None:
    """One-line errors when a store was computed from other data or another model."""
    man = store.manifest
    if graph is not None:
        missing = [t for t in store.task_names if t not in set(graph.task_names)]
        check(not missing, f"{store.path}: task {missing[0] if missing else ''!r} of the store is "
                           f"not in the data (store/data mismatch)")
        if man.get("data_sha256"):
            sub = graph if list(graph.task_names) == store.task_names else \
                graph.select_tasks(store.task_names)
            check(labelled_graph_digest(sub) == man["data_sha256"],
                  f"{store.path}: computed on other data (graph digest differs; store/data "
                  f"mismatch)")
    if checkpoint is not None:
        from graphmtl.training import load_checkpoint

        ckpt = load_checkpoint(checkpoint)
        check(list(ckpt.task_names) == store.task_names,
              f"{store.path}: its tasks differ from the checkpoint's (store/model mismatch)")
        if man.get("model_sha256"):
            check(model_digest(ckpt.model) == man["model_sha256"],
                  f"{store.path}: computed from another model than {checkpoint} (store/model "
                  f"mismatch)")


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
    (:class:`TrainedScores`). The subsets are trained by a
    :class:`~graphmtl.training.pool.SubsetTrainingPool`; ``results`` is its JSON-lines file (one
    line per finished subset, so a re-run with the same file skips finished subsets; a file from
    other settings is an error).
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

    def fit(self, graph, subsets, results: str | os.PathLike | None = None,
            val_rows: dict | None = None) -> "TrainedSubsetScores":
        from graphmtl.training import load_checkpoint
        from graphmtl.training.pool import SubsetJob, SubsetTrainingPool, score_matrix

        names = list(graph.task_names)
        M = as_membership(subsets, names)
        init = None
        if self.mode == "finetune":
            init = load_checkpoint(self.init_from)
            missing = [t for t in names if t not in set(init.task_names)]
            check(not missing, f"{self.init_from}: task {missing[0] if missing else ''!r} is not "
                               f"in the base checkpoint (model/data mismatch)")
        pool = SubsetTrainingPool(self.model_config, self.train_config, workers=self.workers,
                                  threads=self.threads, init_from=init, splits=("val",),
                                  progress=self.progress, desc=f"training subsets ({self.mode})")
        jobs = [SubsetJob(tuple(names[i] for i in np.flatnonzero(row))) for row in M]
        extra = {"mode": self.mode, "init_from": None if self.init_from is None else
                 str(self.init_from), "val_rows": None if val_rows is None else
                 stable_hash({k: [np.asarray(a).tolist() for a in v]
                              for k, v in sorted(val_rows.items())})}
        records = pool.run(graph, jobs, results=results, val_rows=val_rows, extra_key=extra)
        self.records_ = records
        self.result_ = TrainedScores(
            subsets=M, scores=-score_matrix(records, names, "val", "bce"),
            f1=score_matrix(records, names, "val", "f1"),
            seconds=np.array([r["seconds"] for r in records], dtype=float),
            epochs=np.array([r["epochs"] for r in records], dtype=np.int64), task_names=names,
            ap=score_matrix(records, names, "val", "ap"),
            roc_auc=score_matrix(records, names, "val", "roc_auc"))
        return self


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


class TrainedAffinityEstimator:
    """The trained higher-order affinity: every sampled subset's model actually trained.

    This is what every estimate is measured against: ``m`` subsets of ``s`` tasks are sampled,
    one model is trained per subset with the shared trainer (a process pool, resumable through
    ``results``), and every task of every subset is scored on the validation split. ``F`` holds
    validation AP (``score="ap"``) or minus validation BCE (``score="bce"``); both are kept.
    ``F`` is z-scored per task across its subsets and ``T_ij`` is the mean over the subsets
    holding both (:func:`~graphmtl.affinity.matrices.higher_order_affinity`); the clustering
    affinity is ``T`` symmetrised with a zero diagonal.

    Args:
        num_subsets, subset_size, seed: the subset sample (:func:`sample_subsets`).
        score: ``ap`` or ``bce``, which score the affinity is built from.
        standardize: z-score each task's scores across its subsets.
        model_config, train_config: the subset models' settings.
        init_from: a checkpoint every subset model is fine-tuned from (``None``: from
            scratch). Where the group models are fine-tuned from one all-task model, the
            subsets measured the same way are the affinity those groups are chosen by.
        workers, progress: the pool's.

    Attributes (after ``fit``): ``subsets_`` bool ``[m, n]``; ``scores_`` ``{"ap", "bce"}`` ->
    ``[m, n]`` (``bce`` negated: higher is better; NaN outside the subset); ``affinity_``
    ``[n, n]``; ``affinities_`` ``{"ap", "bce"}`` -> ``[n, n]``; ``seconds_`` ``[m]`` per-model
    wall time in its worker; ``task_names_``.
    """

    def __init__(self, num_subsets: int = 150, subset_size: int = 5, *, score: str = "ap",
                 standardize: bool = True, seed: int = 0, model_config=None, train_config=None,
                 init_from: str | os.PathLike | None = None, workers: int = 2,
                 progress: bool = True):
        check(score in ("ap", "bce"), f"trained affinity score: expected ap or bce, got {score!r}")
        check(num_subsets >= 1, f"trained affinity num_subsets: must be >= 1, got {num_subsets}")
        self.num_subsets = num_subsets
        self.subset_size = subset_size
        self.score = score
        self.standardize = standardize
        self.seed = seed
        self.model_config = model_config
        self.train_config = train_config
        self.init_from = init_from
        self.workers = workers
        self.progress = progress

    def fit(self, graph, results: str | os.PathLike | None = None, subsets=None
            ) -> "TrainedAffinityEstimator":
        from graphmtl.affinity.matrices import higher_order_affinity, symmetrize
        from graphmtl.affinity.subsets import sample_subsets

        n = graph.num_tasks
        M = (sample_subsets(n, self.num_subsets, min(self.subset_size, n), seed=self.seed)
             if subsets is None else as_membership(subsets, graph.task_names))
        res = TrainedSubsetScores(self.model_config, self.train_config,
                                  mode="scratch" if self.init_from is None else "finetune",
                                  init_from=self.init_from, workers=self.workers,
                                  progress=self.progress).fit(graph, M, results=results).result_
        self.subsets_ = M
        self.scores_ = {"ap": res.ap, "bce": res.scores}
        self.affinities_ = {}
        for name, F in self.scores_.items():
            scored = M & np.isfinite(F)
            self.affinities_[name] = symmetrize(higher_order_affinity(
                scored, np.where(scored, F, np.nan), standardize=self.standardize))
        self.affinity_ = self.affinities_[self.score]
        self.seconds_ = res.seconds
        self.task_names_ = list(graph.task_names)
        return self
