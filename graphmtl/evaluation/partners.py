"""Does an affinity know which partners help? A test on the random groups the benchmark trains.

The random groups of :class:`~graphmtl.evaluation.GroupingBenchmark` are a free experiment on the
real data: every draw puts each task with other, randomly chosen partners and trains the group
models for real. If an affinity ``A`` captures transfer, a task should score higher in the draws
where its partners have a high mean affinity with it. :func:`partner_test` measures that: over
all (task, draw) pairs, the rank correlation between the mean affinity of the task's partners
and the task's score, both centred per task (so a task that is easy everywhere, or an affinity
row that is high everywhere, does not count), with a permutation null that relabels the tasks
of ``A``. It is cheap (no model is trained) and it applies to graphs without planted groups,
where the trained-affinity fidelity is too expensive.

A correlation near 0 on a dataset where random groups already differ little can also mean that
partners matter little there; the spread of a task's score over the draws (``spread``) says how
much there is to predict. :func:`partner_signal` says how much of that spread the partners
decide at all: it needs the same draws trained twice with different training seeds
(``GroupingBenchmark(rerun_draws=True)``) and correlates the two trainings' scores. If the
partners decided everything, the two would agree perfectly; if only the training's randomness
moved a task's score between draws, they would not correlate. An affinity that knew the
partners' effect exactly would reach a partner-test correlation of about the square root of that
reproducibility, which is the ceiling to read :func:`partner_test` against.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields
from itertools import combinations
from typing import Any, Sequence

import numpy as np
from scipy.stats import rankdata

from graphmtl.errors import check


_PERM_CHUNK = 16   # permutations per vectorised block: 16 x n^2 floats (32 MB at n = 500)


@dataclass(frozen=True)
class PartnerTest:
    """Result of :func:`partner_test`.

    Attributes:
        rho: Spearman correlation of the per-task-centred mean partner affinity with the
            per-task-centred score over every (task, draw) pair.
        null_sd: standard deviation of ``rho`` under the permutation null.
        p_value: one-sided permutation p-value of ``rho`` (``(1 + #null >= rho) / (1 + P)``).
        observations: (task, draw) pairs used (tasks with a score in at least two draws).
        spread: mean over tasks of the standard deviation of the task's score over the draws.
    """

    rho: float
    null_sd: float
    p_value: float
    observations: int
    spread: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PartnerSignal:
    """Result of :func:`partner_signal`: how much of a task's score across the random draws its
    partners decide.

    Attributes:
        reproducibility: Spearman correlation, over every (task, draw) pair, of the
            per-task-centred test scores of two trainings of the same draws (mean over pairs of
            trainings): the share of the between-draw differences that the partners, not the
            training's randomness, decide. NaN with one training.
        null_sd: standard deviation of ``reproducibility`` when the draws of the second
            training are shuffled per task (permutations).
        validation_agreement: the same correlation between one training's validation scores
            and the other's test scores (mean over ordered pairs): how well a task's validation
            score under some partners tells what those partners do for its test score under a
            new training, the signal every validation-scored affinity (the trained affinity
            first) is built from. With one training: within it (the training's luck included).
        selection_gain: mean over tasks of the test score in the draw where the task's
            validation score was highest, minus its mean test score over the draws, with the
            draw selected in one training and scored in another (mean over ordered pairs): what
            picking partners on validation, among these draws, carries over to a new training.
            With one training: selected and scored in the same one.
        selection_gain_same_run: the same, selected and scored in one training (mean over
            trainings); includes the training's luck, which validation and test share.
        observations: (task, draw) pairs used (tasks scored in every draw and training).
        trainings: how many trainings of the draws were given.
        spread: mean over tasks of the standard deviation of the task's test score over the
            draws (mean over trainings).
    """

    reproducibility: float
    null_sd: float
    validation_agreement: float
    selection_gain: float
    selection_gain_same_run: float
    observations: int
    trainings: int
    spread: float

    @property
    def partner_test_ceiling(self) -> float:
        """About the highest :func:`partner_test` correlation an affinity can reach on these
        draws: ``sqrt(reproducibility)`` (0 where it is not positive)."""
        r = self.reproducibility
        return float(np.sqrt(r)) if np.isfinite(r) and r > 0 else (0.0 if np.isfinite(r)
                                                                   else float("nan"))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "partner_test_ceiling": self.partner_test_ceiling}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PartnerSignal":
        """Inverse of :meth:`to_dict`, also after JSON (where NaN was written as ``None``)."""
        return cls(**{f.name: float("nan") if data[f.name] is None else data[f.name]
                      for f in fields(cls)})

    def describe(self, scale: float = 100.0, unit: str = " AP") -> str:
        """One sentence for a report (scores shown times ``scale``)."""
        same = f"{scale * self.selection_gain_same_run:+.1f}{unit}"
        if self.trainings < 2:
            return (f"Picking each task's random draw on validation gains {same} on test "
                    "within the same training (the training's luck included; train the draws "
                    "twice to separate the partners' effect from it).")
        return (f"A task's partners decide {self.reproducibility:.2f} of its test score "
                "differences between random groups (rank correlation of two trainings; 0: "
                f"training noise only), its validation score tells that for a new training at "
                f"{self.validation_agreement:.2f}, and picking each task's draw on validation "
                f"gains {scale * self.selection_gain:+.1f}{unit} there ({same} within one "
                "training, the training's luck included): the part of the partners' effect that "
                "a grouping chosen on validation scores can see.")


def mean_partner_signal(signals: Sequence[PartnerSignal]) -> PartnerSignal:
    """The mean of several seeds' :class:`PartnerSignal` (observations summed; NaN-aware)."""
    check(len(signals) >= 1, "mean_partner_signal: no signals given")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)            # all NaN: NaN
        mean = {f: float(np.nanmean([getattr(x, f) for x in signals]))
                for f in ("reproducibility", "null_sd", "validation_agreement",
                          "selection_gain", "selection_gain_same_run", "spread")}
    return PartnerSignal(**mean, observations=sum(x.observations for x in signals),
                         trainings=min(x.trainings for x in signals))


def partner_means(affinity: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mean affinity of every task with the other members of its group.

    Args:
        affinity: ``[n, n]`` (or a stack ``[P, n, n]``); the diagonal is ignored.
        groups: ``[D, n]`` group id per task in each of ``D`` groupings.

    Returns:
        ``[D, n]`` (or ``[P, D, n]``): NaN for a task alone in its group.
    """
    A = np.array(affinity, dtype=float)
    n = A.shape[-1]
    A[..., np.arange(n), np.arange(n)] = 0.0
    G = np.asarray(groups)
    k = int(G.max()) + 1
    onehot = np.eye(k)[G]                                    # [D, n, k]
    sums = np.einsum("...ij,djk->...dik", A, onehot)         # [..., D, n, k]
    own = np.take_along_axis(sums, np.broadcast_to(G[..., None], sums.shape[:-1] + (1,)),
                             axis=-1)[..., 0]                # [..., D, n]
    sizes = np.take_along_axis(onehot.sum(1), G, axis=1) - 1  # [D, n] partners per task
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, own / np.maximum(sizes, 1), np.nan)


def _centre(x: np.ndarray) -> np.ndarray:
    """``[..., D, n]`` minus its mean over draws (NaN-aware) per task."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # a task with no score: NaN
        return x - np.nanmean(x, axis=-2, keepdims=True)


def partner_test(affinity: np.ndarray, groups: Sequence[np.ndarray] | np.ndarray,
                 scores: Sequence[np.ndarray] | np.ndarray, *, permutations: int = 200,
                 seed: int = 0) -> PartnerTest:
    """Test whether ``affinity`` predicts which random partners help (see the module docstring).

    Args:
        affinity: ``[n, n]`` task affinity (higher: more alike).
        groups: ``D >= 2`` groupings, each ``[n]`` group ids (the random draws of one seed).
        scores: ``[D, n]`` each task's score under its group's model in each grouping (NaN where
            undefined).
        permutations: relabellings of the affinity's tasks for the null.
        seed: seeds the permutations.

    Returns:
        a :class:`PartnerTest`.
    """
    A = np.asarray(affinity, dtype=float)
    G = np.asarray(groups, dtype=np.int64)
    Y = np.asarray(scores, dtype=float)
    n = A.shape[0]
    check(A.shape == (n, n), f"affinity: expected a square matrix, got shape {A.shape}")
    check(G.ndim == 2 and G.shape[1] == n and G.shape[0] >= 2,
          f"groups: expected at least 2 groupings of {n} tasks, got shape {G.shape}")
    check(Y.shape == G.shape, f"scores: expected shape {G.shape}, got {Y.shape}")
    check(permutations >= 1, f"permutations: must be >= 1, got {permutations}")
    A = np.where(np.isfinite(A), A, 0.0)
    y = _centre(Y)
    x = partner_means(A, G)
    ok = np.isfinite(y) & np.isfinite(x) & (np.isfinite(Y).sum(0, keepdims=True) >= 2)
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(n) for _ in range(permutations)])
    y_rank = rankdata(y[ok])

    def rho(xc: np.ndarray) -> float:
        v = xc[ok]
        if v.size < 3 or np.ptp(v) == 0 or np.ptp(y_rank) == 0:
            return float("nan")
        return float(np.corrcoef(rankdata(v), y_rank)[0, 1])

    observed = rho(_centre(x))
    null = []
    for chunk in np.array_split(perms, -(-permutations // _PERM_CHUNK)):   # bounded memory
        relabelled = A[chunk[:, :, None], chunk[:, None, :]]              # [p, n, n]
        null += [rho(c) for c in _centre(partner_means(relabelled, G))]
    null = np.array(null)
    null = null[np.isfinite(null)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = float(np.nanmean(np.nanstd(Y, axis=0)))
    return PartnerTest(rho=observed,
                       null_sd=float(null.std()) if null.size else float("nan"),
                       p_value=float((1 + (null >= observed).sum()) / (1 + null.size))
                       if np.isfinite(observed) else float("nan"),
                       observations=int(ok.sum()), spread=spread)


def _pearson_rows(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``x [N]`` with every row of ``Y [P, N]``."""
    xc = x - x.mean()
    Yc = Y - Y.mean(axis=-1, keepdims=True)
    denom = np.sqrt((xc ** 2).sum() * (Yc ** 2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, Yc @ xc / np.where(denom > 0, denom, 1.0), np.nan)


def partner_signal(val_scores: Sequence[np.ndarray] | np.ndarray,
                   test_scores: Sequence[np.ndarray] | np.ndarray, *, permutations: int = 200,
                   seed: int = 0) -> PartnerSignal:
    """How much of a task's score across random draws its partners decide (module docstring).

    Args:
        val_scores, test_scores: ``[R, D, n]``: each task's validation and test score under its
            group's model in each of ``D >= 2`` random groupings, trained ``R >= 1`` times with
            different training seeds (``[D, n]``: one training). NaN where undefined; a task
            without a score in every draw and training is left out.
        permutations: shuffles of the second training's draws for ``null_sd``.
        seed: seeds the permutations.

    Returns:
        a :class:`PartnerSignal`.
    """
    V = np.asarray(val_scores, dtype=float)
    T = np.asarray(test_scores, dtype=float)
    if T.ndim == 2:
        V, T = V[None], T[None]
    check(T.ndim == 3 and T.shape[1] >= 2,
          f"test_scores: expected [trainings, draws >= 2, tasks], got shape {T.shape}")
    check(V.shape == T.shape, f"val_scores: expected shape {T.shape}, got {V.shape}")
    check(permutations >= 1, f"permutations: must be >= 1, got {permutations}")
    R, D, _ = T.shape
    ok = (np.isfinite(V) & np.isfinite(T)).all(axis=(0, 1))
    V, T = V[..., ok], T[..., ok]
    n = T.shape[-1]
    nan = float("nan")
    if n == 0:
        return PartnerSignal(nan, nan, nan, nan, nan, 0, R, nan)
    Tc = T - T.mean(axis=1, keepdims=True)                          # [R, D, n]
    Vc = V - V.mean(axis=1, keepdims=True)
    best = V.argmax(axis=1)                                         # [R, n] per training
    cols = np.arange(n)

    def gain(select: int, score: int) -> float:
        return float(np.mean(Tc[score][best[select], cols]))

    def spearman(x: np.ndarray, y: np.ndarray) -> float:
        return float(_pearson_rows(rankdata(x.ravel()), rankdata(y.ravel())[None])[0])

    same = float(np.mean([gain(r, r) for r in range(R)]))
    pairs = [(r, s) for r in range(R) for s in range(R) if r != s]
    agreement = [spearman(Vc[r], Tc[s]) for r, s in (pairs or [(0, 0)])]
    rng = np.random.default_rng(seed)
    rhos, nulls = [], []
    for r, s in combinations(range(R), 2):
        x, y = rankdata(Tc[r].ravel()), rankdata(Tc[s].ravel()).reshape(D, n)
        rhos.append(float(_pearson_rows(x, y.ravel()[None])[0]))
        shuffled = rng.random((permutations, D, n)).argsort(axis=1)   # draws shuffled per task
        nulls.append(_pearson_rows(x, np.take_along_axis(
            np.broadcast_to(y, shuffled.shape), shuffled, axis=1).reshape(permutations, -1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)              # a constant training: NaN
        reproducibility = float(np.nanmean(rhos)) if rhos else nan
        validation_agreement = float(np.nanmean(agreement))
        null_sd = float(np.nanstd(np.concatenate(nulls))) if nulls else nan
    return PartnerSignal(
        reproducibility=reproducibility, null_sd=null_sd,
        validation_agreement=validation_agreement,
        selection_gain=float(np.mean([gain(r, s) for r, s in pairs])) if pairs else same,
        selection_gain_same_run=same, observations=int(D * n), trainings=R,
        spread=float(np.mean(T.std(axis=1, ddof=1))))
