"""Per-task metrics on any task subset and split; undefined tasks are reported, not dropped.

F1 (at logit > 0), ROC-AUC and mean BCE are vectorised over tasks; average precision uses
scikit-learn per task. A task whose split has no positives gets F1 / ROC-AUC / AP = NaN; one with
no negatives gets ROC-AUC = NaN; each such task is listed in :attr:`TaskMetrics.undefined` with
the reason. Macro averages are means over the tasks where the metric is defined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from graphmtl.errors import check
from graphmtl.training.loss import per_task_bce

METRIC_NAMES = ("f1", "roc_auc", "ap", "loss")


@dataclass
class TaskMetrics:
    """Metrics of ``k`` tasks on one split.

    Attributes:
        task_names: ``k`` names.
        split: the split the metrics were computed on.
        f1, roc_auc, ap, loss: float64 arrays ``[k]`` (NaN where undefined; ``ap`` is NaN for
            every task when it was not requested).
        num_pos, num_neg: labelled positives / negatives per task, int64 ``[k]``.
        undefined: ``{task name: reason}`` for tasks with a NaN metric.
    """

    task_names: list[str]
    split: str
    f1: np.ndarray
    roc_auc: np.ndarray
    ap: np.ndarray
    loss: np.ndarray
    num_pos: np.ndarray
    num_neg: np.ndarray
    undefined: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ macro averages
    def macro(self, metric: str) -> float:
        """Mean of ``metric`` over the tasks where it is defined (NaN if none)."""
        check(metric in METRIC_NAMES,
              f"metric: unknown {metric!r} (choose from {', '.join(METRIC_NAMES)})")
        v = getattr(self, metric)
        ok = ~np.isnan(v)
        return float(v[ok].mean()) if ok.any() else float("nan")

    @property
    def macro_f1(self) -> float:
        return self.macro("f1")

    @property
    def macro_roc_auc(self) -> float:
        return self.macro("roc_auc")

    @property
    def macro_ap(self) -> float:
        return self.macro("ap")

    @property
    def mean_loss(self) -> float:
        return self.macro("loss")

    # ------------------------------------------------------------------ views
    def select(self, tasks: Iterable[str | int]) -> "TaskMetrics":
        """The metrics of a subset of the tasks (names or positions), in the given order."""
        pos = {n: i for i, n in enumerate(self.task_names)}
        idx = []
        for t in tasks:
            if isinstance(t, (int, np.integer)):
                check(0 <= int(t) < len(self.task_names), f"task {t}: out of range")
                idx.append(int(t))
            else:
                check(t in pos, f"task {t!r}: not among the evaluated tasks")
                idx.append(pos[t])
        names = [self.task_names[i] for i in idx]
        return TaskMetrics(names, self.split, self.f1[idx], self.roc_auc[idx], self.ap[idx],
                           self.loss[idx], self.num_pos[idx], self.num_neg[idx],
                           {n: r for n, r in self.undefined.items() if n in set(names)})

    @classmethod
    def concat(cls, parts: Sequence["TaskMetrics"]) -> "TaskMetrics":
        """Join the metrics of disjoint task sets of one split, in the given order."""
        check(len(parts) > 0, "metrics: nothing to join")
        split = parts[0].split
        check(all(p.split == split for p in parts), "metrics: cannot join different splits")
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        undefined: dict[str, str] = {}
        for p in parts:
            undefined.update(p.undefined)
        return cls(task_names=[n for p in parts for n in p.task_names], split=split,
                   f1=cat("f1"), roc_auc=cat("roc_auc"), ap=cat("ap"), loss=cat("loss"),
                   num_pos=cat("num_pos"), num_neg=cat("num_neg"), undefined=undefined)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: macro averages, per-task rows (NaN written as null), undefined tasks."""
        def num(v: float) -> float | None:
            return None if math.isnan(v) else float(v)

        return {
            "split": self.split,
            "num_tasks": len(self.task_names),
            "macro": {m: num(self.macro(m)) for m in METRIC_NAMES},
            "tasks": [{"task": n, "f1": num(self.f1[i]), "roc_auc": num(self.roc_auc[i]),
                       "ap": num(self.ap[i]), "loss": num(self.loss[i]),
                       "num_pos": int(self.num_pos[i]), "num_neg": int(self.num_neg[i])}
                      for i, n in enumerate(self.task_names)],
            "undefined": dict(self.undefined),
        }

    def table(self, max_rows: int | None = None) -> str:
        """A plain-text per-task table followed by the macro averages."""
        head = f"{'task':<24} {'pos':>6} {'neg':>7} {'F1':>7} {'ROC-AUC':>8} {'AP':>7} {'BCE':>7}"
        lines = [f"split: {self.split}", head, "-" * len(head)]
        rows = range(len(self.task_names))
        if max_rows is not None and len(self.task_names) > max_rows:
            rows = range(max_rows)
        for i in rows:
            lines.append(f"{self.task_names[i][:24]:<24} {self.num_pos[i]:>6} {self.num_neg[i]:>7} "
                         f"{self.f1[i]:>7.4f} {self.roc_auc[i]:>8.4f} {self.ap[i]:>7.4f} "
                         f"{self.loss[i]:>7.4f}")
        if len(rows) < len(self.task_names):
            lines.append(f"... ({len(self.task_names) - len(rows)} more tasks)")
        lines.append("-" * len(head))
        lines.append(f"{'macro':<24} {'':>6} {'':>7} {self.macro_f1:>7.4f} "
                     f"{self.macro_roc_auc:>8.4f} {self.macro_ap:>7.4f} {self.mean_loss:>7.4f}")
        for n, r in list(self.undefined.items())[:10]:
            lines.append(f"undefined: {n}: {r}")
        if len(self.undefined) > 10:
            lines.append(f"undefined: ... ({len(self.undefined) - 10} more tasks)")
        return "\n".join(lines)


# ---------------------------------------------------------------------- metric functions
def f1_scores(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary F1 per task at ``logit > 0`` over the masked rows, float64 ``[k]``.

    NaN for a task with no labelled positives (F1 is then undefined).
    """
    pred, yb, m = logits > 0, y.bool(), mask.bool()
    tp = (pred & yb & m).sum(0).double()
    fp = (pred & ~yb & m).sum(0).double()
    fn = (~pred & yb & m).sum(0).double()
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(1)
    return f1.masked_fill((yb & m).sum(0) == 0, float("nan"))


def roc_auc_scores(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ROC-AUC per task over the masked rows, float64 ``[k]``, vectorised over tasks.

    Mann-Whitney form with average ranks for tied scores (equal to scikit-learn's
    ``roc_auc_score``). NaN for a task without both classes.
    """
    M, k = logits.shape
    m = mask.bool()
    yb = y.bool() & m
    # Unlabelled rows sort last (+inf) so the labelled rows of each column occupy its first ranks.
    s = logits.double().masked_fill(~m, float("inf"))
    ss, order = s.sort(dim=0, stable=True)
    ys = yb.gather(0, order)
    new_group = torch.ones_like(ss, dtype=torch.bool)
    new_group[1:] = ss[1:] != ss[:-1]
    gid = new_group.long().cumsum(0) - 1 + torch.arange(k) * M          # [M, k], unique per col
    position = torch.arange(1, M + 1, dtype=torch.float64)[:, None].expand(M, k)
    sums = torch.zeros(M * k, dtype=torch.float64).index_add_(0, gid.reshape(-1),
                                                              position.reshape(-1).contiguous())
    counts = torch.zeros(M * k, dtype=torch.float64).index_add_(
        0, gid.reshape(-1), torch.ones(M * k, dtype=torch.float64))
    avg_rank = (sums / counts.clamp_min(1))[gid]                          # tie-averaged ranks
    n_pos = ys.sum(0).double()
    n_neg = m.sum(0).double() - n_pos
    rank_sum = (avg_rank * ys).sum(0)
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg).clamp_min(1)
    return auc.masked_fill((n_pos == 0) | (n_neg == 0), float("nan"))


def average_precision_scores(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
                             ) -> torch.Tensor:
    """Average precision per task, float64 ``[k]`` (scikit-learn's definition, ties included;
    :func:`average_precision_columns`); NaN for a task without positives."""
    return average_precision_columns(logits.detach(), y, mask).cpu()


def compute_metrics(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                    task_names: Sequence[str], split: str = "test", *,
                    with_ap: bool = True) -> TaskMetrics:
    """All metrics of ``k`` tasks from logits.

    Args:
        logits: ``[M, k]`` logits of ``M`` nodes.
        y: ``[M, k]`` labels (bool or {0, 1}).
        mask: ``[M, k]`` bool, which (node, task) pairs belong to the split.
        task_names: ``k`` names.
        split: recorded in the result and in reasons.
        with_ap: compute average precision (a scikit-learn call per task); ``False`` leaves NaN.
    """
    check(logits.shape == y.shape == mask.shape,
          f"metrics: logits {tuple(logits.shape)}, labels {tuple(y.shape)} and mask "
          f"{tuple(mask.shape)} must have the same shape")
    check(logits.shape[1] == len(task_names),
          f"metrics: {logits.shape[1]} logit columns but {len(task_names)} task names")
    logits = logits.detach().float()
    m, yb = mask.bool(), y.bool()
    n_pos = (yb & m).sum(0)
    n_neg = (~yb & m).sum(0)
    undefined = {}
    for t in torch.nonzero((n_pos == 0) | (n_neg == 0)).flatten().tolist():
        name = task_names[t]
        if n_pos[t] == 0 and n_neg[t] == 0:
            undefined[name] = f"no labelled nodes in the {split} split"
        elif n_pos[t] == 0:
            undefined[name] = f"no positives in the {split} split (F1, ROC-AUC, AP undefined)"
        else:
            undefined[name] = f"no negatives in the {split} split (ROC-AUC undefined)"
    nan = torch.full((logits.shape[1],), float("nan"), dtype=torch.float64)
    return TaskMetrics(
        task_names=list(task_names), split=split,
        f1=f1_scores(logits, yb, m).numpy(),
        roc_auc=roc_auc_scores(logits, yb, m).numpy(),
        ap=(average_precision_scores(logits, yb, m) if with_ap else nan).numpy(),
        loss=per_task_bce(logits.double(), yb, m).numpy(),
        num_pos=n_pos.numpy().astype(np.int64), num_neg=n_neg.numpy().astype(np.int64),
        undefined=undefined)


def tuned_threshold_f1(val_scores: np.ndarray, val_labels: np.ndarray, test_scores: np.ndarray,
                       test_labels: np.ndarray) -> tuple[float, float]:
    """F1 on test at the threshold where F1 is highest on validation (one task).

    F1 at logit 0 depends on the calibration of a model trained on few positives (it moves by
    points between runs of one setting); a per-task threshold chosen on the validation split
    compares models by ranking quality at a usable operating point.

    Args:
        val_scores, val_labels: ``[M_val]`` logits and {0, 1} labels of the validation rows.
        test_scores, test_labels: ``[M_test]`` of the test rows.

    Returns:
        ``(f1, threshold)``: predictions are ``test_scores >= threshold``. Without validation
        positives the threshold is 0 (logit 0). ``f1`` is NaN without test positives.
    """
    from sklearn.metrics import precision_recall_curve

    yv = np.asarray(val_labels).astype(bool)
    threshold = 0.0
    if yv.any():
        precision, recall, thresholds = precision_recall_curve(yv, np.asarray(val_scores))
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        threshold = float(thresholds[int(np.argmax(f1[:-1]))])
    yt = np.asarray(test_labels).astype(bool)
    if not yt.any():
        return float("nan"), threshold
    pred = np.asarray(test_scores) >= threshold
    tp = float((pred & yt).sum())
    return 2 * tp / (float(pred.sum()) + float(yt.sum())), threshold


def average_precision_columns(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
                              ) -> torch.Tensor:
    """Average precision of many score columns at once, float64 ``[C]``.

    Column ``c`` ranks its masked rows by ``scores[:, c]``, highest first, and
    ``AP = sum over distinct thresholds of (recall gained) x (precision there)`` -- scikit-learn's
    ``average_precision_score``, ties included (tied rows form one threshold), vectorised over
    columns: one sort of the whole matrix instead of a Python loop over columns. NaN for a column
    without masked positives.

    Args:
        scores: ``[M, C]`` (finite).
        labels: ``[M, C]`` {0, 1} / bool.
        mask: ``[M, C]`` bool, which rows belong to each column.
    """
    # Work on [C, M]: sorting contiguous rows is about twice as fast as sorting strided columns;
    # scores are ranked in their own floating dtype (a float64 copy would order them alike).
    m = mask.bool().T.contiguous()
    y = labels.bool().T & m
    dtype = scores.dtype if scores.is_floating_point() else torch.float64
    s = scores.T.to(dtype).masked_fill(~m, float("-inf")).contiguous()
    s_sorted, order = s.sort(dim=1, descending=True, stable=True)
    ys = y.gather(1, order)
    valid = m.gather(1, order)
    tp = ys.cumsum(1, dtype=torch.float64)
    count = valid.cumsum(1, dtype=torch.float64)
    # A threshold ends where the next row has another score (or no next valid row).
    nxt = torch.full_like(s_sorted[:, :1], float("nan"))
    is_end = valid & (s_sorted != torch.cat([s_sorted[:, 1:], nxt], 1))
    tp_end = torch.where(is_end, tp, torch.zeros_like(tp))
    before = torch.cat([torch.zeros_like(tp[:, :1]), tp_end.cummax(1).values[:, :-1]], 1)
    gained = torch.where(is_end, tp - before, torch.zeros_like(tp))
    precision = tp / count.clamp_min(1)
    n_pos = tp[:, -1]
    ap = (gained * precision).sum(1) / n_pos.clamp_min(1)
    return ap.masked_fill(n_pos == 0, float("nan"))
