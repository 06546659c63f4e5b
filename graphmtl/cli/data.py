"""``graphmtl data``: inspect and prepare data sources (a thin layer over
:func:`graphmtl.data.load_dataset`).

    graphmtl data summary SPEC [--root DIR] [--cache-dir DIR] [--no-cache] [--json] [--tasks]
    graphmtl data prepare SPEC --out FILE.npz [--root DIR] [--cache-dir DIR] [--no-cache]

SPEC is a data source such as ``snap:youtube,k=100``, ``blogcatalog``, ``deezer,min_positives=5``,
``ogb:ogbn-proteins,root=DIR``, ``synthetic`` or a saved ``.npz`` (see
:mod:`graphmtl.data.sources`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from graphmtl.cli._common import HelpFormatter, cleanup_on_failure
from graphmtl.errors import check

HELP = "summarise or prepare a data source"

_SPEC_HELP = ("data source: snap:NAME|PREFIX[,k=100,seed=0,train=0.2,val=0.2,features=128], "
              "blogcatalog[:FILE.mat], deezer[:CC|PREFIX][,min_positives=N], "
              "ogb:ogbn-proteins[,root=DIR], synthetic[:key=value,...], or FILE.npz")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help=HELP, formatter_class=HelpFormatter,
        description="Inspect (summary) or prepare (save as a .npz graph) a data source; every "
                    "command's --data accepts the same SPEC.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("spec", metavar="SPEC", help=_SPEC_HELP)
        p.add_argument("--root", metavar="DIR", help="data root for bare dataset names "
                       "(default: $GRAPHMTL_DATA, else ../shared/datasets)")
        p.add_argument("--cache-dir", metavar="DIR", help="cache folder (default: "
                       "$GRAPHMTL_CACHE, else ~/.cache/graphmtl)")
        p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")

    summary = sub.add_parser("summary", help="print nodes, edges, tasks, positives, splits",
                             formatter_class=HelpFormatter)
    common(summary)
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.add_argument("--tasks", action="store_true",
                         help="also list the task names with their positives per split")
    summary.set_defaults(func=run_summary)

    prepare = sub.add_parser("prepare", help="build a source and save it as a .npz graph",
                             formatter_class=HelpFormatter)
    common(prepare)
    prepare.add_argument("--out", required=True, metavar="FILE.npz", help="output file")
    prepare.set_defaults(func=run_prepare)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _load(args):
    from graphmtl.data import load_dataset

    # Data warnings (dropped self-loops, ...) print as one "graphmtl: warning:" line each.
    return load_dataset(args.spec, root=args.root, cache_dir=args.cache_dir,
                        use_cache=not args.no_cache)


def summary_dict(graph) -> dict[str, Any]:
    """:meth:`MultiTaskGraph.summary` plus the source, spec and cache status."""
    out = graph.summary()
    prov = graph.provenance
    out["spec"] = prov.get("spec", "")
    out["kind"] = prov.get("kind", "")
    out["sources"] = [f.get("path") for f in prov.get("source_files", [])]
    out["cache"] = prov.get("cache", {}).get("status", "")
    return out


def task_table(graph) -> list[dict[str, Any]]:
    """One row per task: position, name, and labelled rows / positives per split."""
    rows = []
    y = graph.y
    counts = {s: (getattr(graph, f"{s}_mask").sum(0), (getattr(graph, f"{s}_mask") & y).sum(0))
              for s in ("train", "val", "test")}
    for i, name in enumerate(graph.task_names):
        row: dict[str, Any] = {"position": i, "name": name}
        for s, (labelled, positive) in counts.items():
            row[s] = {"rows": int(labelled[i]), "positives": int(positive[i])}
        rows.append(row)
    return rows


def run_summary(args) -> int:
    graph = _load(args)
    info = summary_dict(graph)
    # The spec as the user typed it (a cache hit records the spec that built the entry).
    info["source_spec"], info["spec"] = info["spec"], args.spec
    if args.tasks:
        info["task_list"] = task_table(graph)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    pos = info["positives_per_task"]
    lines = [("dataset", info["spec"] or info["name"]),
             ("nodes", f"{info['nodes']:,}"),
             ("edges", f"{info['edges']:,} (undirected)"),
             ("tasks", f"{info['tasks']:,}"),
             ("positives per task", f"min {pos['min']:,} / median {pos['median']:g} / "
                                    f"max {pos['max']:,}")]
    for split in ("train", "val", "test"):
        r = info[f"{split}_rows"]
        lines.append((f"{split} labels", f"{r['total']:,} (per task {r['per_task_min']:,}"
                      f"-{r['per_task_max']:,}, min positives {r['positives_min']:,})"))
    lines.append(("feature dim", str(info["features"])))
    if info["sources"]:
        lines.append(("source files", ", ".join(Path(p).name for p in info["sources"])))
    lines.append(("cache", info["cache"]))
    width = max(len(k) for k, _ in lines)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in lines))
    if args.tasks:
        rows = info["task_list"]
        w = max(len("task"), *(len(r["name"]) for r in rows))
        print(f"\n{'#':>5}  {'task':<{w}}  {'train pos/rows':>16}  {'val pos/rows':>16}  "
              f"{'test pos/rows':>16}")
        for r in rows:
            cells = "  ".join(f"{r[s]['positives']:,}/{r[s]['rows']:,}".rjust(16)
                              for s in ("train", "val", "test"))
            print(f"{r['position']:>5}  {r['name']:<{w}}  {cells}")
    return 0


def run_prepare(args) -> int:
    check(args.out.endswith(".npz"), f"--out: expected a .npz file name, got {args.out!r}")
    graph = _load(args)
    with cleanup_on_failure(args.out):
        graph.save(args.out)
    print(f"wrote {args.out}: {graph.num_nodes:,} nodes, {graph.num_edges:,} edges, "
          f"{graph.num_tasks} tasks, {graph.num_features} features")
    return 0
