"""The run report: a self-contained HTML page and a markdown twin.

The page shows the method comparison with costs, the task groups, the affinity heatmap ordered by
group, a per-task metrics table and the stage timings. Figures are drawn with matplotlib and
embedded as base64 PNG, so the HTML file stands alone.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphmtl.utils.io import atomic_path


@dataclass
class MethodResult:
    """One row of the comparison: a way of grouping tasks and how its groups scored.

    Attributes:
        name: e.g. ``"Grad-TAG groups"``.
        groups: group id per task, int ``[n]``.
        task_f1, task_auc: per-task test metrics ``[n]`` (NaN where undefined).
        cost_seconds: wall time to obtain the groups (affinity + clustering), excluding the
            training of the final group models, which is in ``train_seconds``.
        train_seconds: wall time to train the group models.
        note: how the cost was obtained (measured, extrapolated from a sample, ...).
    """

    name: str
    groups: np.ndarray
    task_f1: np.ndarray
    task_auc: np.ndarray
    cost_seconds: float = 0.0
    train_seconds: float = 0.0
    note: str = ""

    @property
    def macro_f1(self) -> float:
        return float(np.nanmean(self.task_f1))

    @property
    def macro_auc(self) -> float:
        return float(np.nanmean(self.task_auc))


@dataclass
class Report:
    """Everything the report shows."""

    title: str
    dataset: dict[str, Any]
    task_names: list[str]
    affinity: np.ndarray
    methods: list[MethodResult]
    stage_seconds: dict[str, float] = field(default_factory=dict)
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
        bounds = np.flatnonzero(np.diff(groups[order])) + 0.5
        for b in bounds:
            ax.axhline(b, color="k", lw=0.8)
            ax.axvline(b, color="k", lw=0.8)
        ax.set_title("Task affinity, ordered by group")
        ax.set_xlabel("task")
        ax.set_ylabel("task")
        fig.colorbar(im, ax=ax, shrink=0.8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()

    def comparison_png(self) -> bytes:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [m.name for m in self.methods]
        f1 = [100 * m.macro_f1 for m in self.methods]
        fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(names)), dpi=110)
        ax.barh(names[::-1], f1[::-1], color="#4C72B0")
        for y, v in enumerate(f1[::-1]):
            ax.text(v, y, f" {v:.1f}", va="center")
        ax.set_xlabel("test macro-F1 (%)")
        ax.set_xlim(0, max(f1 + [1]) * 1.15)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()

    # ------------------------------------------------------------------ tables
    def comparison_rows(self) -> list[list[str]]:
        rows = []
        for m in self.methods:
            rows.append([m.name, str(len(np.unique(m.groups))), f"{100 * m.macro_f1:.2f}",
                         f"{100 * m.macro_auc:.2f}", _fmt_seconds(m.cost_seconds),
                         _fmt_seconds(m.train_seconds), m.note])
        return rows

    def group_rows(self, groups: np.ndarray) -> list[list[str]]:
        rows = []
        for g in np.unique(groups):
            members = [self.task_names[i] for i in np.flatnonzero(groups == g)]
            rows.append([str(int(g)), str(len(members)), ", ".join(members)])
        return rows

    def task_rows(self) -> list[list[str]]:
        rows = []
        for i, name in enumerate(self.task_names):
            row = [name]
            for m in self.methods:
                row += [_pct(m.task_f1[i])]
            row.append(str(int(self.methods[0].groups[i])) if self.methods else "")
            rows.append(row)
        return rows

    # ------------------------------------------------------------------ writers
    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``report.html`` and ``report.md`` (+ PNGs) into ``out_dir``; return both paths."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        main = next((m for m in self.methods if m.name.startswith("Grad-TAG")), self.methods[0])
        heat = self.heatmap_png(main.groups)
        comp = self.comparison_png()
        for name, data in (("affinity_heatmap.png", heat), ("comparison.png", comp)):
            with atomic_path(out_dir / name) as tmp:
                tmp.write_bytes(data)
        comparison_header = ["method", "groups", "macro-F1 %", "macro ROC-AUC %",
                             "grouping cost", "group training", "how the cost was measured"]
        task_header = ["task"] + [f"F1 % ({m.name})" for m in self.methods] + [f"group ({main.name})"]
        stage_rows = [[k, _fmt_seconds(v)] for k, v in self.stage_seconds.items()]
        ds_rows = [[k, str(v)] for k, v in self.dataset.items()]

        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in self.notes]
        parts += ["<h2>Method comparison</h2>", _html_table(comparison_header, self.comparison_rows()),
                  _img(comp, "macro-F1 per method"),
                  f"<h2>Task groups ({html.escape(main.name)})</h2>",
                  _html_table(["group", "size", "tasks"], self.group_rows(main.groups)),
                  "<h2>Task affinity</h2>", _img(heat, "affinity heatmap ordered by group"),
                  "<h2>Dataset</h2>", _html_table(["", ""], ds_rows),
                  "<h2>Stage timings</h2>", _html_table(["stage", "wall time"], stage_rows),
                  "<h2>Per-task test F1</h2>", _html_table(task_header, self.task_rows())]
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}"
                f"</title><style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n")
        html_path = out_dir / "report.html"
        with atomic_path(html_path) as tmp:
            tmp.write_text(page)

        md = [f"# {self.title}", ""] + [f"> {n}" for n in self.notes] + [""]
        md += ["## Method comparison", "", _md_table(comparison_header, self.comparison_rows()), "",
               "![comparison](comparison.png)", "", f"## Task groups ({main.name})", "",
               _md_table(["group", "size", "tasks"], self.group_rows(main.groups)), "",
               "## Task affinity", "", "![affinity](affinity_heatmap.png)", "", "## Dataset", "",
               _md_table(["", ""], ds_rows), "", "## Stage timings", "",
               _md_table(["stage", "wall time"], stage_rows), "", "## Per-task test F1", "",
               _md_table(task_header, self.task_rows()), ""]
        md_path = out_dir / "report.md"
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


def _fmt_seconds(s: float | None) -> str:
    if s is None or not np.isfinite(s):
        return "–"
    if s < 90:
        return f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _pct(v: float) -> str:
    return "–" if not np.isfinite(v) else f"{100 * v:.1f}"


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header))] + [line(r) for r in rows])
