"""Per-task seeded train / val / test splits, positives and negatives split separately."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from graphmtl.errors import GraphMTLError, check


@dataclass(frozen=True)
class SplitConfig:
    """How each task's positives and, separately, its negatives are split.

    By default ``train`` and ``val`` are fractions of each class and the test split takes what is
    left (``test = 1 - train - val``). The papers' label-scarce protocol fixes the number of
    training *positives* instead: ``train_pos`` positives per task go to train (the negatives
    keep the fractions), and a task with at most ``pos_cutoff`` positives keeps the ``train``
    fraction of its positives (the papers: ``train_pos=10, pos_cutoff=100`` for DBLP,
    LiveJournal and Orkut, ``train_pos=2`` for Amazon). Validation always takes the ``val``
    fraction of each class.

    Args:
        train, val: fractions in ``(0, 1)``, ``train + val < 1``.
        seed: seed of the per-task random orders.
        train_pos: fixed number of training positives per task (``None``: the ``train``
            fraction).
        pos_cutoff: tasks with at most this many positives use the ``train`` fraction even when
            ``train_pos`` is set (``0``: never).
    """

    train: float = 0.2
    val: float = 0.2
    seed: int = 0
    train_pos: int | None = None
    pos_cutoff: int = 0

    def __post_init__(self) -> None:
        check(0 < self.train < 1, f"split train fraction: must lie in (0, 1), got {self.train}")
        check(0 < self.val < 1, f"split val fraction: must lie in (0, 1), got {self.val}")
        check(self.train + self.val < 1,
              f"split fractions: train + val must be < 1, got {self.train} + {self.val}")
        check(self.train_pos is None or self.train_pos >= 1,
              f"split train_pos: must be >= 1, got {self.train_pos}")
        check(self.pos_cutoff >= 0, f"split pos_cutoff: must be >= 0, got {self.pos_cutoff}")
        check(self.pos_cutoff == 0 or self.train_pos is not None,
              "split pos_cutoff: only applies with train_pos (set train_pos too)")

    def counts(self, count: np.ndarray, positive: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(n_train, n_val)`` int64 for tasks with ``count`` members of one class."""
        count = np.asarray(count, dtype=np.int64)
        n_train = np.rint(self.train * count).astype(np.int64)
        if positive and self.train_pos is not None:
            n_train = np.where(count > self.pos_cutoff, self.train_pos, n_train)
        return n_train, np.rint(self.val * count).astype(np.int64)

    def describe(self) -> str:
        """E.g. ``0.2/0.2/0.6`` or ``10 positives (0.2 up to 100)/0.2/rest``."""
        if self.train_pos is None:
            return f"{self.train:g}/{self.val:g}/{1 - self.train - self.val:g}"
        cut = f", {self.train:g} up to {self.pos_cutoff}" if self.pos_cutoff else ""
        return (f"{self.train_pos} train positives{cut}, negatives {self.train:g}; "
                f"val {self.val:g}; test the rest")


def stratified_task_splits(y: torch.Tensor, labelled: torch.Tensor | None, config: SplitConfig,
                           task_names: list[str] | None = None, chunk: int = 64
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split every task's labelled nodes into train / val / test, per class.

    Args:
        y: bool ``[N, n]`` labels.
        labelled: bool ``[N, n]`` nodes that carry a label for each task (``None``: all nodes).
        config: fractions and seed.
        task_names: used in error messages.
        chunk: tasks processed at once (bounds memory at ``N * chunk`` floats).

    Returns:
        ``(train_mask, val_mask, test_mask)``, each bool ``[N, n]``, disjoint, covering
        ``labelled``. Within a task, ``round(frac * count)`` of its positives and of its negatives
        go to each of train and val (with ``train_pos``: that many positives to train, see
        :class:`SplitConfig`). Deterministic in ``config.seed``.

    Raises:
        GraphMTLError: naming the first task whose positives or negatives cannot give every split
            at least one node.
    """
    N, n = y.shape
    names = task_names or [str(t) for t in range(n)]
    y_np = y.numpy()
    lab_np = np.ones_like(y_np) if labelled is None else labelled.numpy()
    code = np.zeros((N, n), dtype=np.uint8)  # 0 unlabelled, 1 train, 2 val, 3 test
    rng = np.random.default_rng(config.seed)
    rows = np.arange(N)[:, None]
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        # One independent random order of the nodes per task (O(N) per task, no sort); a member's
        # rank is its position among its task's members of the same class in that order.
        perm = rng.permuted(np.broadcast_to(rows, (N, hi - lo)), axis=0)
        yc = np.take_along_axis(y_np[:, lo:hi], perm, axis=0)
        lc = np.take_along_axis(lab_np[:, lo:hi], perm, axis=0)
        part = np.zeros((N, hi - lo), dtype=np.uint8)
        for cls in (True, False):
            member = lc & (yc == cls)
            count = member.sum(0)                                     # [c]
            n_train, n_val = config.counts(count, positive=cls)
            bad = (n_train < 1) | (n_val < 1) | (count - n_train - n_val < 1)
            if bad.any():
                t = lo + int(np.flatnonzero(bad)[0])
                what = "positives" if cls else "negatives"
                raise GraphMTLError(
                    f"task {names[t]!r}: only {int(count[t - lo])} {what}, too few for a "
                    f"{config.describe()} split with at least one per split")
            rank = np.cumsum(member, axis=0) - 1
            split = np.where(rank < n_train, 1, np.where(rank < n_train + n_val, 2, 3))
            part = np.where(member, split, part).astype(np.uint8)
        np.put_along_axis(code[:, lo:hi], perm, part, axis=0)
    code_t = torch.from_numpy(code)
    return code_t == 1, code_t == 2, code_t == 3
