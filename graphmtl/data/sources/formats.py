"""One source class per data format, and the registry :func:`load_dataset` looks them up in.

A source declares the spec keys it takes (:attr:`DataSource.keys`), checks a spec of its kind
(:meth:`DataSource.check`), finds its files (:meth:`DataSource.resolve`) and builds the graph
from them (:meth:`DataSource.build`). :func:`~graphmtl.data.sources.load_dataset` does the
rest the same way for all of them (data root, prepared-graph cache).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.errors import GraphMTLError, check

if TYPE_CHECKING:
    from graphmtl.data.sources.spec import DatasetSpec


@dataclass(frozen=True)
class SourceFiles:
    """What :meth:`DataSource.resolve` found: the source files (their digests key the cache)
    and anything else the build needs (``extra``)."""

    files: tuple[Path, ...]
    extra: dict[str, Any] = field(default_factory=dict)


class DataSource:
    """A data format (subclass per format; the class itself is the registry entry).

    Attributes:
        kind: the spec's kind (``KIND[:TARGET]``).
        keys: the ``key=value`` parameters a spec of this kind takes.
        label: how errors name the kind (``"for {label}"``).
        modules: the :mod:`graphmtl.data` modules (or packages) that build it: their code is part
            of the cache key, so a change of the loader rebuilds cached graphs.
        cached: whether :func:`load_dataset` caches the prepared graph.
        edge_features: whether ``features=edge`` exists for it.
    """

    kind: ClassVar[str]
    keys: ClassVar[tuple[str, ...]] = ()
    label: ClassVar[str] = ""
    modules: ClassVar[tuple[str, ...]] = ()
    cached: ClassVar[bool] = True
    edge_features: ClassVar[bool] = False

    @classmethod
    def spec_fields(cls, target: str, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """The :class:`DatasetSpec` fields of ``KIND:target,key=value,...`` (unknown keys and
        wrongly typed values are one-line errors naming the key)."""
        from graphmtl.data.sources.spec import convert

        values: dict[str, Any] = {}
        for key, value in pairs:
            check(key in cls.keys, f"{key}: unknown parameter for {cls.label or cls.kind} "
                  f"(known: {', '.join(cls.keys)})")
            values[key] = convert(key, value)
        return {"target": target or None, **values}

    @classmethod
    def check(cls, spec: DatasetSpec) -> None:
        """Checks of a spec of this kind beyond the common ones (one-line errors)."""

    @classmethod
    def resolve(cls, spec: DatasetSpec, root: Path | None, cache: Path) -> SourceFiles:
        """The source files of ``spec`` under the data ``root`` (``None``: none configured),
        downloading into the ``cache`` folder where the format allows it."""
        return SourceFiles(())

    @classmethod
    def build(cls, spec: DatasetSpec, sources: SourceFiles, cache: Path | None
              ) -> MultiTaskGraph:
        """The graph of ``spec`` from its resolved ``sources`` (``cache``: where derived
        features may be cached, ``None``: nowhere)."""
        raise NotImplementedError


def under_root(root: Path | None, rel: str, what: str) -> Path:
    """``root / rel``, or a one-line error saying how to give a data root."""
    check(root is not None, f"{what}: no data root; pass root=DIR (or --root DIR), set "
          "GRAPHMTL_DATA, or give the file path in the spec")
    return root / rel


def is_path(target: str) -> bool:
    """Whether a spec target is a path (rather than a dataset name)."""
    return "/" in target or os.sep in target or target.startswith(".")


_SPLIT_KEYS = ("seed", "train", "val", "train_pos", "pos_cutoff")


class SnapSource(DataSource):
    """``snap:NAME`` or ``snap:/path/com-NAME``: a SNAP ground-truth community graph, one task
    per community (:func:`~graphmtl.data.snap.load_snap`); named files missing locally are
    downloaded."""

    kind = "snap"
    keys = ("k", "communities", "ties", *_SPLIT_KEYS, "features", "feature_seed", "download",
            "root")
    modules = ("snap",)

    @classmethod
    def check(cls, spec: DatasetSpec) -> None:
        check(bool(spec.target), "snap: a dataset name or path prefix is required, e.g. "
              "snap:youtube or snap:/data/com-dblp")

    @classmethod
    def resolve(cls, spec: DatasetSpec, root: Path | None, cache: Path) -> SourceFiles:
        from graphmtl.data.download import SNAP_NAMES, fetch_snap
        from graphmtl.data.snap import snap_files

        target = str(spec.target)
        if is_path(target):
            return SourceFiles(snap_files(target, spec.communities))
        check(target.replace("-", "").replace("_", "").isalnum(),
              f"snap: {target!r} is neither a dataset name nor a path")
        for folder in ([root / "snap"] if root else []) + [cache / "snap"]:
            try:
                return SourceFiles(snap_files(folder / f"com-{target}", spec.communities))
            except GraphMTLError:
                continue
        where = root / "snap" if root else cache / "snap"
        files = f"com-{target}.ungraph.txt.gz and com-{target}.{spec.communities}.cmty.txt.gz"
        check(spec.download, f"snap:{target}: {files} not found in {where} or {cache / 'snap'} "
              "and download=false")
        check(target in SNAP_NAMES, f"snap: unknown dataset {target!r} (SNAP has "
              f"{', '.join(SNAP_NAMES)}); or give a path prefix such as snap:/data/com-{target}")
        return SourceFiles(tuple(fetch_snap(target, cache / "snap", spec.communities,
                                            put_hint=where)))

    @classmethod
    def build(cls, spec: DatasetSpec, sources: SourceFiles, cache: Path | None
              ) -> MultiTaskGraph:
        from graphmtl.data.snap import SnapRecipe, load_snap

        graph_path, cmty_path = sources.files
        name = f"snap:{Path(str(spec.target)).name.removeprefix('com-')}"
        return load_snap(graph_path, cmty_path,
                         SnapRecipe(k=spec.k, ties=spec.ties, split=spec.split_config()),
                         spec.feature_config(), name=name, feature_cache=cache)


class BlogCatalogSource(DataSource):
    """``blogcatalog`` or ``blogcatalog:/path/x.mat``: the BlogCatalog ``.mat``
    (:func:`~graphmtl.data.multilabel.load_blogcatalog`)."""

    kind = "blogcatalog"
    keys = (*_SPLIT_KEYS, "features", "feature_seed", "min_positives", "root")
    modules = ("multilabel",)

    @classmethod
    def resolve(cls, spec: DatasetSpec, root: Path | None, cache: Path) -> SourceFiles:
        path = Path(spec.target) if spec.target else under_root(
            root, "multilabel/blogcatalog.mat", "blogcatalog")
        check(path.is_file(), f"blogcatalog: {path}: file not found")
        return SourceFiles((path,))

    @classmethod
    def build(cls, spec: DatasetSpec, sources: SourceFiles, cache: Path | None
              ) -> MultiTaskGraph:
        from graphmtl.data.multilabel import load_blogcatalog

        return load_blogcatalog(sources.files[0], spec.split_config(), spec.feature_config(),
                                min_positives=spec.min_positives, feature_cache=cache)


class DeezerSource(DataSource):
    """``deezer``, ``deezer:CC`` (a country code) or ``deezer:/path/deezer-CC``: a Deezer
    genre graph (:func:`~graphmtl.data.multilabel.load_deezer`)."""

    kind = "deezer"
    keys = (*_SPLIT_KEYS, "features", "feature_seed", "min_positives", "root")
    modules = ("multilabel",)
    default_target = "hu"

    @classmethod
    def resolve(cls, spec: DatasetSpec, root: Path | None, cache: Path) -> SourceFiles:
        from graphmtl.data.multilabel import deezer_files

        target = spec.target or cls.default_target
        prefix = Path(target) if is_path(target) else under_root(
            root, f"multilabel/deezer-{target.lower()}", "deezer")
        return SourceFiles(deezer_files(prefix),
                           {"name": f"deezer-{prefix.name.split('-')[-1]}"})

    @classmethod
    def build(cls, spec: DatasetSpec, sources: SourceFiles, cache: Path | None
              ) -> MultiTaskGraph:
        from graphmtl.data.multilabel import load_deezer

        return load_deezer(*sources.files, spec.split_config(), spec.feature_config(),
                           min_positives=spec.min_positives, feature_cache=cache,
                           name=sources.extra["name"])


class OgbProteinsSource(DataSource):
    """``ogb:ogbn-proteins``: ogbn-proteins through ``ogb``
    (:func:`~graphmtl.data.ogb_proteins.load_ogbn_proteins`)."""

    kind = "ogb"
    keys = ("features", "feature_seed", "root")
    modules = ("ogb_proteins",)
    edge_features = True

    @classmethod
    def check(cls, spec: DatasetSpec) -> None:
        check(spec.target in (None, "ogbn-proteins"),
              f"ogb: only ogbn-proteins is supported, got {spec.target!r}")

    @classmethod
    def resolve(cls, spec: DatasetSpec, root: Path | None, cache: Path) -> SourceFiles:
        from graphmtl.data.ogb_proteins import proteins_dir

        ogb_root = Path(spec.root) if spec.root else under_root(root, "ogb", "ogb:ogbn-proteins")
        folder = proteins_dir(ogb_root)
        raw = [folder / "raw" / f for f in ("edge.csv.gz", "node-label.csv.gz")]
        files = [p for p in raw if p.is_file()] or [folder / "processed" / "data_processed"]
        return SourceFiles(tuple(files), {"root": ogb_root})

    @classmethod
    def build(cls, spec: DatasetSpec, sources: SourceFiles, cache: Path | None
              ) -> MultiTaskGraph:
        from graphmtl.data.ogb_proteins import load_ogbn_proteins

        return load_ogbn_proteins(sources.extra["root"], spec.feature_config(),
                                  feature_cache=cache)


class SyntheticSource(DataSource):
    """``synthetic[:key=value,...]``: the planted-group generator; every key but ``root`` is
    forwarded to :meth:`~graphmtl.data.synthetic.SyntheticConfig.from_strings`."""

    kind = "synthetic"
    modules = ("synthetic",)

    @classmethod
    def spec_fields(cls, target: str, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
        check(not target, f"synthetic: takes key=value options only, got target {target!r}")
        return {"options": tuple((k, v) for k, v in pairs if k != "root"),
                "root": dict(pairs).get("root")}

    @classmethod
    def build(cls, spec: DatasetSpec, sources: SourceFiles, cache: Path | None
              ) -> MultiTaskGraph:
        from graphmtl.data.synthetic import SyntheticConfig, make_planted_graph

        graph = make_planted_graph(SyntheticConfig.from_strings(dict(spec.options)))
        graph.provenance = {**graph.provenance, "kind": "synthetic"}
        return graph


class NpzFileSource(DataSource):
    """``path/to/graph.npz``: a graph saved by :meth:`MultiTaskGraph.save` (not cached: it is
    already prepared)."""

    kind = "file"
    cached = False

    @classmethod
    def check(cls, spec: DatasetSpec) -> None:
        check(spec.target is not None, "file: a path to a .npz or .pt graph is required")
        changed = [f.name for f in dataclasses.fields(spec)
                   if f.name not in ("kind", "target") and getattr(spec, f.name) != (
                       f.default if f.default is not dataclasses.MISSING else ())]
        check(not changed, f"{changed[0] if changed else ''}: a .npz graph takes no parameters")

    @classmethod
    def resolve(cls, spec: DatasetSpec, root: Path | None, cache: Path) -> SourceFiles:
        return SourceFiles((Path(spec.target),))

    @classmethod
    def build(cls, spec: DatasetSpec, sources: SourceFiles, cache: Path | None
              ) -> MultiTaskGraph:
        return MultiTaskGraph.load(spec.target)


class PygFileSource(DataSource):
    """``path/to/data.pt[,key=value...]``: a PyG ``Data`` saved with ``torch.save``
    (:func:`~graphmtl.data.pyg.load_pyg`; not cached: reading it is one ``torch.load``)."""

    kind = "file"
    keys = ("seed", "train", "val", "features", "feature_seed")
    label = "a .pt graph"
    cached = False

    @classmethod
    def spec_fields(cls, target: str, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
        from graphmtl.data.sources.spec import convert

        for key, _ in pairs:
            check(key in cls.keys, f"{key}: unknown parameter for {cls.label} (known: "
                  f"{', '.join(cls.keys)})")
        return {"target": target, **{key: convert(key, value) for key, value in pairs}}

    @classmethod
    def check(cls, spec: DatasetSpec) -> None:
        check(spec.features not in ("none", "edge"), f"features: {spec.features!r} is "
              "not available for a .pt graph (use auto or an integer >= 2)")

    @classmethod
    def resolve(cls, spec: DatasetSpec, root: Path | None, cache: Path) -> SourceFiles:
        return SourceFiles((Path(spec.target),))

    @classmethod
    def build(cls, spec: DatasetSpec, sources: SourceFiles, cache: Path | None
              ) -> MultiTaskGraph:
        from graphmtl.data.pyg import load_pyg
        from graphmtl.data.sources.spec import DatasetSpec

        defaults = DatasetSpec(kind="file", target=spec.target)
        # Any split key draws seeded stratified splits instead of the file's masks.
        stratified = any(getattr(spec, k) != getattr(defaults, k) for k in ("seed", "train",
                                                                             "val"))
        features = "x" if spec.features == "auto" else spec.feature_config()
        graph = load_pyg(spec.target, splits=spec.split_config() if stratified else None,
                         features=features, feature_cache=cache)
        graph.provenance = {**graph.provenance, "spec": str(spec)}
        return graph


#: Every source, by :attr:`DatasetSpec.format` (a file spec's format is its suffix).
SOURCES: dict[str, type[DataSource]] = {
    "snap": SnapSource, "blogcatalog": BlogCatalogSource, "deezer": DeezerSource,
    "ogb": OgbProteinsSource, "synthetic": SyntheticSource, "npz": NpzFileSource,
    "pt": PygFileSource,
}

#: The spec kinds (``file`` for both file formats).
KINDS = tuple(dict.fromkeys(s.kind for s in SOURCES.values()))


def source_for(spec: DatasetSpec) -> type[DataSource]:
    """The source class of ``spec``."""
    return SOURCES[spec.format]
