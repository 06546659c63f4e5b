""":func:`load_dataset`: the data root, the source, and the prepared-graph cache."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.data.sources.formats import DataSource, SourceFiles, source_for
from graphmtl.data.sources.spec import DatasetSpec
from graphmtl.errors import GraphMTLError
from graphmtl.utils.io import file_digest, stable_hash

#: Bump to invalidate every cached prepared graph.
SOURCES_VERSION = 1
#: Modules every source's graph goes through (their code keys the cache, with the source's own).
COMMON_MODULES = ("build", "features", "textio", "splits", "graph", "sources")


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$GRAPHMTL_CACHE``, else ``~/.cache/graphmtl``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("GRAPHMTL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "graphmtl"


def data_root(root: str | os.PathLike | None = None) -> Path | None:
    """The data root: ``root``, else ``$GRAPHMTL_DATA``, else ``None`` (no place is assumed:
    an installed package has no data next to it)."""
    if root is not None:
        return Path(root)
    env = os.environ.get("GRAPHMTL_DATA")
    return Path(env) if env else None


def load_dataset(spec: str | DatasetSpec, *, root: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None, use_cache: bool = True
                 ) -> MultiTaskGraph:
    """Load (or build and cache) the multitask graph described by ``spec``.

    Args:
        spec: a spec string or :class:`DatasetSpec`.
        root: data root for bare names (the spec's ``root=`` wins).
        cache_dir: cache folder (default :func:`default_cache_dir`).
        use_cache: read / write the prepared-graph cache.

    Returns:
        The graph; ``provenance`` holds the spec, source files with digests, parameters, and
        ``cache`` (``hit`` / ``miss`` / ``off``) with the key.

    Raises:
        GraphMTLError: one line, naming the bad parameter, file or line.
    """
    spec = spec if isinstance(spec, DatasetSpec) else DatasetSpec.parse(spec)
    source = source_for(spec)
    cache = default_cache_dir(cache_dir)
    if not source.cached:
        return source.build(spec, source.resolve(spec, None, cache), cache if use_cache else None)
    sources = source.resolve(spec, data_root(spec.root or root), cache)
    key = cache_key(spec, source, sources)
    label = (spec.kind + ("-" + Path(spec.target).name if spec.target else "")).replace(":", "-")
    cached = cache / "prepared" / f"{label}-{key}.npz"
    if use_cache and cached.is_file():
        try:
            graph = MultiTaskGraph.load(cached)
            graph.provenance = {**graph.provenance, "cache": {"status": "hit", "key": key,
                                                              "path": str(cached)}}
            return graph
        except GraphMTLError as e:  # damaged or truncated: discard it and rebuild below
            problem = getattr(e, "problem", None) or str(e).removeprefix(f"{cached}: ")
            warnings.warn(f"{cached}: prepared-data cache entry discarded and rebuilt ({problem})",
                          stacklevel=2)
            cached.unlink(missing_ok=True)
    start = time.perf_counter()
    graph = source.build(spec, sources, cache if use_cache else None)
    graph.provenance = {**graph.provenance, "spec": str(spec), "params": spec.params(),
                        "build_seconds": round(time.perf_counter() - start, 3)}
    if use_cache:
        graph.save(cached)
    graph.provenance = {**graph.provenance, "cache": {"status": "miss" if use_cache else "off",
                                                      "key": key, "path": str(cached)}}
    return graph


def cache_key(spec: DatasetSpec, source: type[DataSource], sources: SourceFiles) -> str:
    """Hash of what a prepared graph depends on: the spec's parameters (not where the files
    are), the source files' contents and the code of the modules that build it."""
    params = spec.params()
    params.pop("root")
    params.pop("download")
    return stable_hash({"version": SOURCES_VERSION, "params": params,
                        "code": code_digests((*COMMON_MODULES, *source.modules)),
                        "sources": [file_digest(p) for p in sources.files]})


def code_digests(modules: tuple[str, ...]) -> dict[str, str]:
    """sha256 of each :mod:`graphmtl.data` module ``m.py``, or of every file of a package
    ``m/`` (as ``m/file.py``)."""
    code_dir = Path(__file__).resolve().parents[1]
    out = {}
    for m in modules:
        if (code_dir / f"{m}.py").is_file():
            out[m] = file_digest(code_dir / f"{m}.py")
        for p in sorted((code_dir / m).glob("*.py")):
            out[f"{m}/{p.name}"] = file_digest(p)
    return out
