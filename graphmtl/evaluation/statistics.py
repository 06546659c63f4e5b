"""Paired differences between groupings, with confidence intervals over seeds.

A grouping method is judged by the per-task difference between the test score a task gets from
its group's model and the score it gets from a control: random groups of the same sizes (``R``
draws per seed), or one model on all tasks. Within a seed ``s`` and draw ``r`` the differences
are averaged over the tasks where both scores are defined::

    d[s, r] = mean_i ( score_method[s, i] - score_control[s, r, i] )

The seed is the replicate: it changes the data split, the base model, the estimate and the
training of every group model, and all draws of a seed share that seed's method models, so the
draws are not independent replicates. The interval is therefore Student's t over the per-seed
means ``d[s] = mean_r d[s, r]`` with ``S - 1`` degrees of freedom — for a balanced nested design
this is exactly the interval of the grand mean under the one-way random-effects model (seed
effect + draw noise), and it covers both the training noise of the method and the spread of the
random control. With a single seed, only the draws vary: the interval is then t over the ``R``
draw differences and says so (``kind="draws"``): it ignores the method's training noise.

When the seeds vary only the training (one fixed split and one fixed grouping, as in
``graphmtl run`` and ``graphmtl compare``), every model is an independent run, and
``design="runs"`` uses that: the method's ``S`` runs and the control's ``S * R`` runs, each
averaged over the tasks defined in all of them, give Welch's interval for the difference of
their means with Satterthwaite's degrees of freedom (``kind="runs"``). It counts the control's
draws as replicates instead of resting on ``S - 1`` degrees of freedom; a seed shared by the
method and its draws only makes it conservative. It does not cover a change of split, so
benchmarks that resample the split keep ``design="seeds"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from graphmtl.errors import check


@dataclass(frozen=True)
class Interval:
    """A mean difference with its confidence interval.

    Attributes:
        mean: the mean paired difference.
        lo, hi: the interval bounds (NaN when it cannot be formed: one replicate).
        level: the confidence level, e.g. 0.95.
        seeds, draws: replicates behind it.
        kind: ``"seeds"`` (t over per-seed means), ``"runs"`` (Welch over independent runs)
            or ``"draws"`` (one seed: t over draws).
        per_seed: the per-seed mean differences.
    """

    mean: float
    lo: float
    hi: float
    level: float
    seeds: int
    draws: int
    kind: str
    per_seed: tuple[float, ...] = ()

    @property
    def defined(self) -> bool:
        return bool(np.isfinite(self.lo) and np.isfinite(self.hi))

    def verdict(self, control: str, metric: str, scale: float = 1.0, unit: str = "") -> str:
        """One sentence: better than / worse than / no better than the control."""
        fmt = lambda v: f"{scale * v:+.3f}{unit}"  # noqa: E731
        span = f"[{fmt(self.lo)}, {fmt(self.hi)}]" if self.defined else "(no interval)"
        if self.defined and self.lo > 0:
            return f"better than {control} by {fmt(self.mean)} {metric} {span}"
        if self.defined and self.hi < 0:
            return f"worse than {control} by {fmt(self.mean)} {metric} {span}"
        return f"no better than {control} ({fmt(self.mean)} {metric} {span})"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_seed"] = list(self.per_seed)
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in d.items()}


def _t_interval(values: np.ndarray, level: float) -> tuple[float, float, float]:
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)
                 * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def _welch_interval(x: np.ndarray, y: np.ndarray, level: float) -> tuple[float, float, float]:
    """Difference of means ``x - y`` with Welch's interval (Satterthwaite's degrees of
    freedom); a side with one value contributes no variance (a deterministic control)."""
    from scipy import stats

    mean = float(x.mean() - y.mean())
    vx = x.var(ddof=1) / len(x) if len(x) > 1 else 0.0
    vy = y.var(ddof=1) / len(y) if len(y) > 1 else 0.0
    if vx + vy == 0:
        return mean, mean, mean
    df = (vx + vy) ** 2 / sum(v * v / (len(a) - 1) for v, a in ((vx, x), (vy, y)) if v > 0)
    half = float(stats.t.ppf(0.5 + level / 2, df) * np.sqrt(vx + vy))
    return mean, mean - half, mean + half


def paired_difference(method: np.ndarray, control: np.ndarray, level: float = 0.95,
                      design: str = "seeds") -> Interval:
    """Mean per-task difference of ``method`` over ``control`` with its interval.

    Args:
        method: ``[S, n]`` per-seed, per-task scores of the method's groups (NaN: undefined).
        control: ``[S, R, n]`` the control's scores, ``R`` draws per seed (``R = 1`` for a
            deterministic control such as one model on all tasks), or ``[S, n]``.
        level: confidence level.
        design: ``"seeds"`` when the seeds resample the split (t over per-seed means),
            ``"runs"`` when they vary only the training (Welch over the runs).

    Returns:
        :class:`Interval` (see the module docstring for which interval and why).
    """
    check(0 < level < 1, f"confidence level: must lie in (0, 1), got {level}")
    check(design in ("seeds", "runs"),
          f"interval design: expected 'seeds' or 'runs', got {design!r}")
    method = np.asarray(method, dtype=float)
    control = np.asarray(control, dtype=float)
    if control.ndim == 2:
        control = control[:, None, :]
    check(method.ndim == 2 and control.ndim == 3 and control.shape[0] == method.shape[0]
          and control.shape[2] == method.shape[1],
          f"paired difference: method {method.shape} and control {control.shape} do not pair")
    diff = method[:, None, :] - control                          # [S, R, n]
    ok = np.isfinite(diff)
    with np.errstate(invalid="ignore"):
        d = np.where(ok.any(2), np.where(ok, diff, 0.0).sum(2) / np.maximum(ok.sum(2), 1),
                     np.nan)                                      # [S, R]
    S, R = d.shape
    per_seed = np.nanmean(d, axis=1)
    common = np.isfinite(method).all(0) & np.isfinite(control).all((0, 1))     # [n]
    if design == "runs" and S >= 2 and common.any():
        x = method[:, common].mean(1)                                # [S]
        y = control[:, :, common].mean(2).ravel()                    # [S * R]
        mean, lo, hi = _welch_interval(x, y, level)
        kind = "runs"
    elif S >= 2:
        mean, lo, hi = _t_interval(per_seed, level)
        kind = "seeds"
    else:
        mean, lo, hi = _t_interval(d[0][np.isfinite(d[0])], level)
        kind = "draws"
    return Interval(mean=mean, lo=lo, hi=hi, level=level, seeds=S, draws=R, kind=kind,
                    per_seed=tuple(float(v) for v in per_seed))
