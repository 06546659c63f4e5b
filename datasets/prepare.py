"""Prepare (and cache) the supported datasets; optionally save each as a ``.npz`` graph.

Usage::

    .venv/bin/python datasets/prepare.py                       # the standard recipes, cached
    .venv/bin/python datasets/prepare.py --out prepared/       # ... and saved as prepared/*.npz
    .venv/bin/python datasets/prepare.py "snap:dblp,k=500" blogcatalog --root /data

Each spec goes through :func:`graphmtl.data.load_dataset` (see datasets/README.md for the
grammar), so a second run only reads the cache. A source whose files are absent is reported and
skipped; the exit status is 1 if any spec failed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphmtl.data import load_dataset  # noqa: E402
from graphmtl.errors import GraphMTLError  # noqa: E402

#: The datasets of the method's recipe (docs/data.md) and the other real multi-label graphs.
STANDARD = ("snap:youtube,k=100", "snap:dblp,k=100", "snap:amazon,k=100", "blogcatalog",
            "deezer", "ogb:ogbn-proteins", "synthetic")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", default=list(STANDARD), metavar="SPEC")
    parser.add_argument("--root", help="data root (default: $GRAPHMTL_DATA or ../shared/datasets)")
    parser.add_argument("--cache-dir", help="cache folder (default: $GRAPHMTL_CACHE or "
                        "~/.cache/graphmtl)")
    parser.add_argument("--out", help="also save each graph as OUT/<spec>.npz")
    args = parser.parse_args(argv)
    failed = 0
    for spec in args.specs:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                graph = load_dataset(spec, root=args.root, cache_dir=args.cache_dir)
        except GraphMTLError as e:
            print(f"{spec}: skipped: {e}", file=sys.stderr)
            failed += 1
            continue
        for w in caught:
            print(f"{spec}: warning: {w.message}", file=sys.stderr)
        line = (f"{spec}: {graph.num_nodes:,} nodes, {graph.num_edges:,} edges, "
                f"{graph.num_tasks} tasks, {graph.num_features} features "
                f"({graph.provenance.get('cache', {}).get('status', '')}, "
                f"{time.perf_counter() - start:.1f} s)")
        if args.out:
            path = Path(args.out) / (re.sub(r"[^A-Za-z0-9_.=-]+", "_", spec).strip("_") + ".npz")
            graph.save(path)
            line += f" -> {path}"
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
