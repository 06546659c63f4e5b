"""``graphmtl data``: inspect and prepare data sources (a thin layer over
:func:`graphmtl.data.load_dataset`).

    graphmtl data summary SPEC [--root DIR] [--cache-dir DIR] [--no-cache] [--json]
    graphmtl data prepare SPEC --out FILE.npz [--root DIR] [--cache-dir DIR] [--no-cache]

SPEC is a data source such as ``snap:youtube,k=100``, ``blogcatalog``, ``deezer,min_positives=5``,
``ogb:ogbn-proteins,root=DIR``, ``synthetic`` or a saved ``.npz`` (see
:mod:`graphmtl.data.sources`).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from graphmtl.errors import check

_SPEC_HELP = ("data source: snap:NAME|PREFIX[,k=100,seed=0,train=0.2,val=0.2,features=128], "
              "blogcatalog[:FILE.mat], deezer[:CC|PREFIX][,min_positives=N], "
              "ogb:ogbn-proteins[,root=DIR], synthetic[:key=value,...], or FILE.npz")


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="summarise or prepare a data source",
                                   description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("spec", metavar="SPEC", help=_SPEC_HELP)
        p.add_argument("--root", metavar="DIR", help="data root for bare dataset names "
                       "(default: $GRAPHMTL_DATA, else ../shared/datasets)")
        p.add_argument("--cache-dir", metavar="DIR", help="cache folder (default: "
                       "$GRAPHMTL_CACHE, else ~/.cache/graphmtl)")
        p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")

    summary = sub.add_parser("summary", help="print nodes, edges, tasks, positives, splits")
    common(summary)
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.set_defaults(func=run_summary)

    prepare = sub.add_parser("prepare", help="build a source and save it as a .npz graph")
    common(prepare)
    prepare.add_argument("--out", required=True, metavar="FILE.npz", help="output file")
    prepare.set_defaults(func=run_prepare)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _load(args):
    from graphmtl.data import load_dataset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = load_dataset(args.spec, root=args.root, cache_dir=args.cache_dir,
                             use_cache=not args.no_cache)
    for w in caught:  # documented data warnings, one line each, on stderr
        print(f"graphmtl: warning: {w.message}", file=sys.stderr)
    return graph


def summary_dict(graph) -> dict[str, Any]:
    """:meth:`MultiTaskGraph.summary` plus the source, spec and cache status."""
    out = graph.summary()
    prov = graph.provenance
    out["spec"] = prov.get("spec", "")
    out["kind"] = prov.get("kind", "")
    out["sources"] = [f.get("path") for f in prov.get("source_files", [])]
    out["cache"] = prov.get("cache", {}).get("status", "")
    return out


def run_summary(args) -> int:
    graph = _load(args)
    info = summary_dict(graph)
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
    return 0


def run_prepare(args) -> int:
    check(args.out.endswith(".npz"), f"--out: expected a .npz file name, got {args.out!r}")
    graph = _load(args)
    graph.save(args.out)
    print(f"wrote {args.out}: {graph.num_nodes:,} nodes, {graph.num_edges:,} edges, "
          f"{graph.num_tasks} tasks, {graph.num_features} features")
    return 0
