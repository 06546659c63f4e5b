"""The run report: a self-contained HTML page and a markdown twin.

The page leads with the verdict: how the groups of each method compare with random groups of the
same sizes and with one model on all tasks (paired per-task differences with their confidence
intervals, from :mod:`graphmtl.evaluation`). Then where the groups and models are saved, what to
run next, the groups by task name, the affinity heatmap ordered by group, the dataset, the stage
costs and a per-task table. Figures are drawn with matplotlib and embedded as base64 PNG, so the
HTML file stands alone.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphmtl.evaluation import METRIC_LABELS, METRICS, Interval
from graphmtl.utils.io import atomic_path


@dataclass
class MethodResult:
    """One row of the comparison: a way of grouping tasks and how its groups scored.

    Attributes:
        name: e.g. ``"Grad-TAG surrogate"``.
        groups: group id per task, int ``[n]``.
        scores: ``{metric: [n]}`` per-task test scores, mean over the training seeds.
        macro: ``{metric: macro score}`` mean over seeds.
        vs_random, vs_all_tasks: ``{metric: Interval}`` paired differences (``None`` for the
            controls themselves).
        ari: adjusted Rand index against planted groups (``None`` when unknown).
        cost_seconds: wall time to obtain the groups (affinity and clustering, with the base
            model and projection where the method needs them); ``cpu_seconds`` likewise.
        train_seconds: summed training time of its group models (one seed).
        note: how the cost was obtained.
    """

    name: str
    groups: np.ndarray
    scores: dict[str, np.ndarray]
    macro: dict[str, float]
    vs_random: dict[str, Interval] | None = None
    vs_all_tasks: dict[str, Interval] | None = None
    ari: float | None = None
    cost_seconds: float = 0.0
    cpu_seconds: float = 0.0
    train_seconds: float = 0.0
    note: str = ""

    @property
    def macro_ap(self) -> float:
        return self.macro["ap"]

    @property
    def macro_f1(self) -> float:
        """Macro F1 at the per-task threshold chosen on validation."""
        return self.macro["f1_tuned"]

    @property
    def macro_auc(self) -> float:
        return self.macro["roc_auc"]

    def verdict(self, metric: str = "ap") -> str:
        """One sentence against random groups of the same sizes (empty for the controls)."""
        if self.vs_random is None:
            return ""
        return self.vs_random[metric].verdict("random groups of the same sizes",
                                              METRIC_LABELS[metric])


@dataclass
class Report:
    """Everything the report shows.

    Attributes:
        title: page title.
        dataset: ``{label: value}`` rows describing the data and the settings.
        task_names: the ``n`` tasks.
        affinity: ``[n, n]`` the method's affinity.
        methods: the comparison rows; the first is the run's own method, the controls last.
        stage_seconds: ``{stage: seconds}``.
        stage_peak_mb: ``{stage: peak resident MiB}`` of the run process and its workers
            (stages recorded before peaks were kept are missing).
        saved: ``{what: path}`` where the groups, models and files are.
        next_steps: suggestions, one sentence each.
        notes: remarks shown under the title (intervals, planted groups, warnings).
    """

    title: str
    dataset: dict[str, Any]
    task_names: list[str]
    affinity: np.ndarray
    methods: list[MethodResult]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_peak_mb: dict[str, float] = field(default_factory=dict)
    saved: dict[str, str] = field(default_factory=dict)
    next_steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ figures
    def heatmap_png(self, groups: np.ndarray) -> bytes:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        order = np.lexsort((np.arange(len(groups)), groups))
        a = self.affinity[np.ix_(order, order)].astype(float)
        off = a[~np.eye(len(a), dtype=bool)]
        lim = float(np.nanpercentile(np.abs(off), 98)) if off.size else 1.0
        fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
        im = ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        for b in np.flatnonzero(np.diff(groups[order])) + 0.5:
            ax.axhline(b, color="k", lw=0.8)
            ax.axvline(b, color="k", lw=0.8)
        ax.set_title("Task affinity, ordered by group")
        ax.set_xlabel("task")
        ax.set_ylabel("task")
        fig.colorbar(im, ax=ax, shrink=0.8)
        fig.tight_layout()
        return _png(fig)

    def comparison_png(self) -> bytes:
        """Each method's test AP difference to random groups, with its interval."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [m for m in self.methods if m.vs_random is not None]
        fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.5 * max(1, len(rows))), dpi=110)
        for y, m in enumerate(rows[::-1]):
            iv = m.vs_random["ap"]
            ax.plot([100 * iv.mean], [y], "o", color="#4C72B0")
            if iv.defined:
                ax.plot([100 * iv.lo, 100 * iv.hi], [y, y], "-", color="#4C72B0")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(rows)), [m.name for m in rows[::-1]])
        ax.set_xlabel("test AP minus random groups of the same sizes (points, 95 % interval)")
        fig.tight_layout()
        return _png(fig)

    # ------------------------------------------------------------------ tables
    def comparison_rows(self) -> list[list[str]]:
        def iv(x: Interval | None) -> str:
            if x is None or not np.isfinite(x.mean):
                return "–"
            if not x.defined:
                return f"{100 * x.mean:+.1f}"
            return f"{100 * x.mean:+.1f} [{100 * x.lo:+.1f}, {100 * x.hi:+.1f}]"

        rows = []
        for m in self.methods:
            rows.append([m.name, str(len(np.unique(m.groups))) if m.groups.size else "",
                         *[_pct(m.macro[x]) for x in METRICS],
                         iv(None if m.vs_random is None else m.vs_random["ap"]),
                         iv(None if m.vs_random is None else m.vs_random["f1_tuned"]),
                         iv(None if m.vs_all_tasks is None else m.vs_all_tasks["ap"]),
                         "–" if m.ari is None else f"{m.ari:.2f}",
                         _fmt_seconds(m.cost_seconds) if m.vs_random is not None else "",
                         m.note])
        return rows

    COMPARISON_HEADER = ["method", "groups", *[f"{METRIC_LABELS[x]} %" for x in METRICS],
                         "AP − random", "F1 (tuned) − random", "AP − all tasks", "ARI",
                         "grouping cost", "note"]

    def group_rows(self, groups: np.ndarray) -> list[list[str]]:
        rows = []
        for g in np.unique(groups):
            members = [self.task_names[i] for i in np.flatnonzero(groups == g)]
            rows.append([str(int(g)), str(len(members)), ", ".join(members)])
        return rows

    def task_rows(self) -> list[list[str]]:
        main = self.methods[0]
        rows = []
        for i, name in enumerate(self.task_names):
            rows.append([name, str(int(main.groups[i]))]
                        + [_pct(m.scores["ap"][i]) for m in self.methods])
        return rows

    def verdicts(self) -> list[str]:
        return [f"{m.name}: {m.verdict()}." for m in self.methods if m.vs_random is not None]

    # ------------------------------------------------------------------ writers
    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``report.html`` and ``report.md`` (+ PNGs) into ``out_dir``; return both paths."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        main = self.methods[0]
        heat, comp = self.heatmap_png(main.groups), self.comparison_png()
        for name, data in (("affinity_heatmap.png", heat), ("comparison.png", comp)):
            with atomic_path(out_dir / name) as tmp:
                tmp.write_bytes(data)
        task_header = ["task", f"group ({main.name})"] + [f"AP % ({m.name})" for m in self.methods]
        stage_rows = [[k, _fmt_seconds(v), _fmt_mb(self.stage_peak_mb.get(k))]
                      for k, v in self.stage_seconds.items()]
        ds_rows = [[k, str(v)] for k, v in self.dataset.items()]
        saved_rows = [[k, v] for k, v in self.saved.items()]
        sections = [
            ("Verdict", self.verdicts(), None),
            ("Method comparison", None, (self.COMPARISON_HEADER, self.comparison_rows())),
            ("", None, None),
            ("Where things are", None, (["what", "path"], saved_rows)),
            ("What to run next", self.next_steps, None),
            (f"Task groups ({main.name})", None,
             (["group", "size", "tasks"], self.group_rows(main.groups))),
            ("Task affinity", None, None),
            ("Dataset and settings", None, (["", ""], ds_rows)),
            ("Stage times", None, (["stage", "wall time", "peak memory"], stage_rows)),
            ("Per-task test AP", None, (task_header, self.task_rows())),
        ]
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in self.notes]
        md = [f"# {self.title}", ""] + [f"> {n}" for n in self.notes] + [""]
        for title, items, table in sections:
            if title == "":
                parts.append(_img(comp, "difference to random groups"))
                md += ["![difference to random groups](comparison.png)", ""]
                continue
            parts.append(f"<h2>{html.escape(title)}</h2>")
            md += [f"## {title}", ""]
            if title == "Task affinity":
                parts.append(_img(heat, "affinity heatmap ordered by group"))
                md += ["![affinity](affinity_heatmap.png)", ""]
            if items is not None:
                parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items)
                             + "</ul>")
                md += [f"- {i}" for i in items] + [""]
            if table is not None:
                parts.append(_html_table(*table))
                md += [_md_table(*table), ""]
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}"
                f"</title><style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n")
        html_path, md_path = out_dir / "report.html", out_dir / "report.md"
        with atomic_path(html_path) as tmp:
            tmp.write_text(page)
        with atomic_path(md_path) as tmp:
            tmp.write_text("\n".join(md))
        return html_path, md_path


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%}.note{color:#555;font-style:italic}
"""


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _fmt_mb(mb: float | None) -> str:
    if mb is None or not np.isfinite(mb):
        return "–"
    return f"{mb:.0f} MB" if mb < 1024 else f"{mb / 1024:.1f} GB"


def _fmt_seconds(s: float | None) -> str:
    if s is None or not np.isfinite(s):
        return "–"
    if s < 90:
        return f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _pct(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{100 * v:.1f}"


def _img(png: bytes, alt: str) -> str:
    return (f"<img alt='{html.escape(alt)}' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header))] + [line(r) for r in rows])
