"""One entry point for every data source: ``load_dataset("snap:youtube,k=100")``.

Spec strings (``KIND[:TARGET][,key=value]...``):

=====================================  ===========================================================
``snap:youtube,k=100,seed=0``          SNAP recipe on a named dataset (``amazon``, ``dblp``,
                                       ``youtube``, ``lj``, ``orkut``, ``friendster``)
``snap:/data/com-dblp,communities=all`` SNAP recipe on ``/data/com-dblp.ungraph.txt[.gz]`` +
                                       ``/data/com-dblp.all.cmty.txt[.gz]``
``blogcatalog`` / ``blogcatalog:/x.mat``  BlogCatalog ``.mat``
``deezer`` / ``deezer:ro`` / ``deezer:/d/deezer-hu``  Deezer (country code or path prefix)
``ogb:ogbn-proteins,root=DIR``         ogbn-proteins through ``ogb`` (``DIR/ogbn_proteins``)
``synthetic`` / ``synthetic:preset=mid,num_tasks=200``  the planted-group generator; every
                                       key is forwarded to ``SyntheticConfig.from_strings``
``path/to/graph.npz``                  a graph saved by ``MultiTaskGraph.save``
``path/to/data.pt[,features=128]``     a PyG ``Data`` saved with ``torch.save(data, path)`` or
                                       ``torch.save(data.to_dict(), path)`` (``.pt`` / ``.pth``;
                                       :func:`graphmtl.data.pyg.load_pyg`)
=====================================  ===========================================================

Keys: ``k`` (tasks, SNAP), ``communities`` (``top5000`` | ``all``), ``ties`` (``reference`` |
``first``, see :mod:`graphmtl.data.snap`), ``seed`` / ``train`` / ``val`` (per-task splits),
``train_pos`` / ``pos_cutoff`` (the label-scarce protocol: fixed training positives per task),
``features`` (``auto``; an integer >= 2 for that many structural dimensions; ``none`` for a
constant feature; ``edge`` for ogbn-proteins' mean edge features), ``feature_seed``,
``min_positives`` (multilabel: drop rarer labels; ``auto``, the default, drops the labels
too rare to split; ``0`` keeps all), ``root`` (data root), ``download`` (SNAP:
``true`` / ``false``).

A ``.pt`` graph takes ``features`` (``auto``, the default: the file's ``x``, required; an integer
>= 2: that many structural dimensions instead), ``feature_seed`` and ``seed`` / ``train`` /
``val``: any of the last three draws seeded stratified splits instead of the file's masks (a file
without masks is split that way in any case).

Bare names resolve against a data root: the spec's ``root=``, else the ``root`` argument, else
``$GRAPHMTL_DATA``, else ``<repo>/../shared/datasets`` when it exists. Layout under the root:
``snap/com-NAME.*``, ``multilabel/blogcatalog.mat``, ``multilabel/deezer-CC.*``,
``ogb/ogbn_proteins/``. SNAP files found nowhere are downloaded into ``<cache>/snap``
(:mod:`graphmtl.data.download`).

Prepared graphs are cached in ``<cache>/prepared`` (cache = the ``cache_dir`` argument, else
``$GRAPHMTL_CACHE``, else ``~/.cache/graphmtl``), keyed on the sha256 of the source files, the
spec's parameters, the recipe versions and the loader code itself; written atomically, so a
second load only reads one ``.npz``. An entry that fails its content digest (damaged or
truncated) is discarded and rebuilt, with a warning naming it.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.data.splits import SplitConfig
from graphmtl.errors import GraphMTLError, check
from graphmtl.utils.io import file_digest, stable_hash

KINDS = ("snap", "blogcatalog", "deezer", "ogb", "synthetic", "file")
#: Bump to invalidate every cached prepared graph.
SOURCES_VERSION = 1
_COMMON_KEYS = ("root",)
_KEYS = {
    "snap": ("k", "communities", "ties", "seed", "train", "val", "train_pos", "pos_cutoff",
             "features", "feature_seed", "download"),
    "blogcatalog": ("seed", "train", "val", "train_pos", "pos_cutoff", "features",
                    "feature_seed", "min_positives"),
    "deezer": ("seed", "train", "val", "train_pos", "pos_cutoff", "features", "feature_seed",
               "min_positives"),
    "ogb": ("features", "feature_seed"),
    "file": (),
}
#: Keys of a ``.pt`` file spec (a saved PyG ``Data``).
_PYG_FILE_KEYS = ("seed", "train", "val", "features", "feature_seed")
_TYPES: dict[str, type] = {"k": int, "communities": str, "ties": str, "seed": int, "train": float,
                           "val": float, "train_pos": int, "pos_cutoff": int, "features": str,
                           "feature_seed": int, "min_positives": int, "root": str,
                           "download": bool}
_DEFAULT_DEEZER = "hu"


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed, validated data source description (see the module docstring for the grammar).

    Attributes:
        kind: one of :data:`KINDS`.
        target: dataset name or path (``None``: the kind's default).
        k, communities, ties: SNAP recipe.
        seed, train, val: per-task split seed and fractions (test = the rest).
        train_pos, pos_cutoff: the label-scarce protocol (see
            :class:`~graphmtl.data.splits.SplitConfig`): a fixed number of training positives
            per task, except for tasks with at most ``pos_cutoff`` positives.
        features: ``"auto"``, ``"none"``, ``"edge"`` or a dimension as a string (``"128"``).
        feature_seed: seed of the structural features.
        min_positives: multilabel sources: drop labels with fewer positives (``None`` = auto:
            the labels too rare to split; 0: keep all).
        root: data root override.
        download: SNAP: allow downloading missing files.
        options: ``synthetic``: the ``key=value`` pairs forwarded to the generator's config.
    """

    kind: str
    target: str | None = None
    k: int = 100
    communities: str = "top5000"
    ties: str = "reference"
    seed: int = 0
    train: float = 0.2
    val: float = 0.2
    train_pos: int | None = None
    pos_cutoff: int = 0
    features: str = "auto"
    feature_seed: int = 0
    min_positives: int | None = None
    root: str | None = None
    download: bool = True
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check(self.kind in KINDS, f"dataset kind: unknown {self.kind!r} (known: "
              f"{', '.join(KINDS)}, or a path to a .npz or .pt graph)")
        for key, kind in _TYPES.items():
            value = getattr(self, key)
            if value is None and key in ("root", "min_positives", "train_pos"):
                continue
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            ok = ok or (kind is float and isinstance(value, int) and not isinstance(value, bool))
            check(ok, f"{key}: expected {kind.__name__}, got {value!r}")
        check(self.k >= 1, f"k: must be >= 1, got {self.k}")
        from graphmtl.data.snap import COMMUNITY_FILES, TIE_RULES

        check(self.communities in COMMUNITY_FILES,
              f"communities: must be one of {', '.join(COMMUNITY_FILES)}, got {self.communities!r}")
        check(self.ties in TIE_RULES, f"ties: must be one of {', '.join(TIE_RULES)}, got "
              f"{self.ties!r}")
        check(self.seed >= 0, f"seed: must be >= 0, got {self.seed}")
        check(self.feature_seed >= 0, f"feature_seed: must be >= 0, got {self.feature_seed}")
        check(self.min_positives is None or self.min_positives >= 0,
              f"min_positives: must be >= 0 or auto, got {self.min_positives}")
        self.split_config()  # validates the fractions and the label-scarce protocol
        f = self.features
        check(f in ("auto", "none", "edge") or (f.isdigit() and int(f) >= 2),
              f"features: expected auto, none, edge or an integer >= 2, got {f!r}")
        check(f != "edge" or self.kind == "ogb",
              "features: 'edge' exists only for ogb:ogbn-proteins")
        if self.kind == "ogb":
            check(self.target in (None, "ogbn-proteins"),
                  f"ogb: only ogbn-proteins is supported, got {self.target!r}")
        if self.kind == "file":
            check(self.target is not None, "file: a path to a .npz or .pt graph is required")
            if not _is_pyg_file(self.target):
                changed = [f.name for f in dataclasses.fields(self)
                           if f.name not in ("kind", "target") and getattr(self, f.name) != (
                               f.default if f.default is not dataclasses.MISSING else ())]
                check(not changed, f"{changed[0] if changed else ''}: a .npz graph takes no "
                      "parameters")
            else:
                check(self.features not in ("none", "edge"), f"features: {self.features!r} is "
                      "not available for a .pt graph (use auto or an integer >= 2)")
        if self.kind == "snap":
            check(bool(self.target), "snap: a dataset name or path prefix is required, e.g. "
                  "snap:youtube or snap:/data/com-dblp")

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, text: str) -> "DatasetSpec":
        """Parse ``KIND[:TARGET][,key=value]...`` or a path to a ``.npz`` graph.

        Raises:
            GraphMTLError: unknown kind or key, or a value of the wrong type (names the key).
        """
        text = str(text).strip()
        check(text != "", "dataset: empty spec")
        if text.endswith(".npz") or (os.sep in text and Path(text).is_file()):
            return cls(kind="file", target=text)
        head, _, rest = text.partition(",")
        if _is_pyg_file(head.strip()):
            pairs = _key_values(rest)
            for key, _ in pairs:
                check(key in _PYG_FILE_KEYS, f"{key}: unknown parameter for a .pt graph (known: "
                      f"{', '.join(_PYG_FILE_KEYS)})")
            return cls(kind="file", target=head.strip(),
                       **{key: _convert(key, value) for key, value in pairs})
        kind, colon, target = head.partition(":")
        kind = kind.strip().lower()
        fields = [f for f in rest.split(",") if f.strip()] if rest else []
        target = target.strip() if colon else ""
        if "=" in target:          # "synthetic:tasks=5": no target, the first field is a key
            fields.insert(0, target)
            target = ""
        check(kind in KINDS and kind != "file", f"dataset kind: unknown {kind!r} (known: "
              f"{', '.join(k for k in KINDS if k != 'file')}, or a path to a .npz or .pt graph)")
        pairs = _key_values(",".join(fields))
        if kind == "synthetic":
            root = dict(pairs).get("root")
            options = tuple((k, v) for k, v in pairs if k != "root")
            check(not target, f"synthetic: takes key=value options only, got target {target!r}")
            return cls(kind=kind, options=options, root=root)
        allowed = _KEYS[kind] + _COMMON_KEYS
        values: dict[str, Any] = {}
        for key, value in pairs:
            check(key in allowed, f"{key}: unknown parameter for {kind} (known: "
                  f"{', '.join(allowed)})")
            values[key] = _convert(key, value)
        return cls(kind=kind, target=target or None, **values)

    def __str__(self) -> str:
        """The canonical spec string (every non-default parameter)."""
        head = (str(self.target) if self.kind == "file" else
                self.kind + (f":{self.target}" if self.target else ""))
        parts = [head]
        defaults = DatasetSpec(kind=self.kind, target=self.target)
        for f in dataclasses.fields(self):
            if f.name in ("kind", "target", "options"):
                continue
            value = getattr(self, f.name)
            if value != getattr(defaults, f.name):
                parts.append(f"{f.name}={str(value).lower() if isinstance(value, bool) else value}")
        parts += [f"{k}={v}" for k, v in self.options]
        return ",".join(parts)

    def split_config(self) -> SplitConfig:
        return SplitConfig(train=self.train, val=self.val, seed=self.seed,
                           train_pos=self.train_pos, pos_cutoff=self.pos_cutoff)

    def feature_config(self):
        """``FeatureConfig``, ``None`` (constant feature) or ``"edge"`` (ogb)."""
        from graphmtl.data.features import FeatureConfig

        if self.features == "none":
            return None
        if self.features == "edge" or (self.features == "auto" and self.kind == "ogb"):
            return "edge"
        dim = 128 if self.features == "auto" else int(self.features)
        return FeatureConfig(dim=dim, seed=self.feature_seed)


def _key_values(text: str) -> list[tuple[str, str]]:
    """``"a=1, b=2"`` -> ``[("a", "1"), ("b", "2")]``; malformed or repeated keys are errors."""
    pairs: list[tuple[str, str]] = []
    for field in (f for f in text.split(",") if f.strip()):
        key, eq, value = field.partition("=")
        key, value = key.strip(), value.strip()
        check(eq == "=" and key, f"dataset spec: expected key=value, got {field.strip()!r}")
        check(key not in dict(pairs), f"{key}: given more than once")
        pairs.append((key, value))
    return pairs


def _is_pyg_file(target: str) -> bool:
    from graphmtl.data.pyg import PYG_SUFFIXES

    return str(target).lower().endswith(PYG_SUFFIXES)


def _convert(key: str, raw: str) -> Any:
    kind = _TYPES[key]
    if key == "min_positives" and raw.lower() == "auto":
        return None
    try:
        if kind is bool:
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            value = float(raw.replace("_", ""))
            if not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            return float(raw)
        check(raw != "", f"{key}: empty value")
        return raw
    except ValueError:
        raise GraphMTLError(f"{key}: expected {'true/false' if kind is bool else kind.__name__}, "
                            f"got {raw!r}") from None


# ---------------------------------------------------------------------- locations
def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$GRAPHMTL_CACHE``, else ``~/.cache/graphmtl``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("GRAPHMTL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "graphmtl"


def data_root(root: str | os.PathLike | None = None) -> Path | None:
    """The data root: ``root``, else ``$GRAPHMTL_DATA``, else ``<repo>/../shared/datasets`` if it
    exists, else ``None``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("GRAPHMTL_DATA")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    return shared if shared.is_dir() else None


# ---------------------------------------------------------------------- loading
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
    if spec.kind == "file" and _is_pyg_file(spec.target):
        return _load_pyg_file(spec, default_cache_dir(cache_dir) if use_cache else None)
    if spec.kind == "file":
        return MultiTaskGraph.load(spec.target)
    cache = default_cache_dir(cache_dir)
    droot = data_root(spec.root or root)
    sources = _resolve_sources(spec, droot, cache)
    key = _cache_key(spec, sources)
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
    graph = _build(spec, sources, cache if use_cache else None)
    graph.provenance = {**graph.provenance, "spec": str(spec),
                        "params": _params(spec),
                        "build_seconds": round(time.perf_counter() - start, 3)}
    if use_cache:
        graph.save(cached)
    graph.provenance = {**graph.provenance, "cache": {"status": "miss" if use_cache else "off",
                                                      "key": key, "path": str(cached)}}
    return graph


def _load_pyg_file(spec: DatasetSpec, cache: Path | None) -> MultiTaskGraph:
    """A saved PyG graph (not cached: reading it is one ``torch.load``)."""
    from graphmtl.data.pyg import load_pyg

    defaults = DatasetSpec(kind="file", target=spec.target)
    stratified = any(getattr(spec, k) != getattr(defaults, k) for k in ("seed", "train", "val"))
    features = "x" if spec.features == "auto" else spec.feature_config()
    graph = load_pyg(spec.target, splits=spec.split_config() if stratified else None,
                     features=features, feature_cache=cache)
    graph.provenance = {**graph.provenance, "spec": str(spec)}
    return graph


def _params(spec: DatasetSpec) -> dict[str, Any]:
    d = dataclasses.asdict(spec)
    d["options"] = dict(spec.options)
    return d


def _resolve_sources(spec: DatasetSpec, droot: Path | None, cache: Path) -> dict[str, Any]:
    """The source files of ``spec`` (downloading SNAP files if allowed and needed)."""
    if spec.kind == "snap":
        from graphmtl.data.download import SNAP_NAMES, fetch_snap
        from graphmtl.data.snap import snap_files

        target = str(spec.target)
        if _is_path(target):
            return {"files": list(snap_files(target, spec.communities))}
        check(target.replace("-", "").replace("_", "").isalnum(),
              f"snap: {target!r} is neither a dataset name nor a path")
        for folder in ([droot / "snap"] if droot else []) + [cache / "snap"]:
            try:
                return {"files": list(snap_files(folder / f"com-{target}", spec.communities))}
            except GraphMTLError:
                continue
        where = droot / "snap" if droot else cache / "snap"
        files = f"com-{target}.ungraph.txt.gz and com-{target}.{spec.communities}.cmty.txt.gz"
        check(spec.download, f"snap:{target}: {files} not found in {where} or {cache / 'snap'} "
              "and download=false")
        check(target in SNAP_NAMES, f"snap: unknown dataset {target!r} (SNAP has "
              f"{', '.join(SNAP_NAMES)}); or give a path prefix such as snap:/data/com-{target}")
        return {"files": list(fetch_snap(target, cache / "snap", spec.communities, put_hint=where))}
    if spec.kind == "blogcatalog":
        path = Path(spec.target) if spec.target else _under(droot, "multilabel/blogcatalog.mat",
                                                            "blogcatalog")
        check(path.is_file(), f"blogcatalog: {path}: file not found")
        return {"files": [path]}
    if spec.kind == "deezer":
        from graphmtl.data.multilabel import deezer_files

        target = spec.target or _DEFAULT_DEEZER
        prefix = Path(target) if _is_path(target) else _under(
            droot, f"multilabel/deezer-{target.lower()}", "deezer")
        return {"files": list(deezer_files(prefix)), "name": f"deezer-{prefix.name.split('-')[-1]}"}
    if spec.kind == "ogb":
        from graphmtl.data.ogb_proteins import proteins_dir

        ogb_root = Path(spec.root) if spec.root else _under(droot, "ogb", "ogb:ogbn-proteins")
        folder = proteins_dir(ogb_root)
        raw = [folder / "raw" / f for f in ("edge.csv.gz", "node-label.csv.gz")]
        files = [p for p in raw if p.is_file()] or [folder / "processed" / "data_processed"]
        return {"files": files, "root": ogb_root}
    if spec.kind == "synthetic":
        return {"files": []}
    raise GraphMTLError(f"dataset kind: unknown {spec.kind!r}")  # pragma: no cover


def _under(droot: Path | None, rel: str, what: str) -> Path:
    check(droot is not None, f"{what}: no data root; pass root=DIR (or --root DIR), set "
          "GRAPHMTL_DATA, or give the file path in the spec")
    return droot / rel


def _is_path(target: str) -> bool:
    return "/" in target or os.sep in target or target.startswith(".")


def _cache_key(spec: DatasetSpec, sources: Mapping[str, Any]) -> str:
    import graphmtl.data as data_pkg

    code_dir = Path(data_pkg.__file__).parent
    modules = ["build", "features", "textio", "splits", "graph", "sources",
               {"snap": "snap", "blogcatalog": "multilabel", "deezer": "multilabel",
                "ogb": "ogb_proteins", "synthetic": "synthetic"}[spec.kind]]
    code = {m: file_digest(code_dir / f"{m}.py") for m in modules
            if (code_dir / f"{m}.py").is_file()}
    for m in modules:   # a package: every module of it
        code.update({f"{m}/{p.name}": file_digest(p)
                     for p in sorted((code_dir / m).glob("*.py"))})
    params = _params(spec)
    params.pop("root")
    params.pop("download")
    return stable_hash({"version": SOURCES_VERSION, "params": params, "code": code,
                        "sources": [file_digest(p) for p in sources["files"]]})


def _build(spec: DatasetSpec, sources: Mapping[str, Any], cache: Path | None) -> MultiTaskGraph:
    features = spec.feature_config()
    feature_cache = cache
    if spec.kind == "snap":
        from graphmtl.data.snap import SnapRecipe, load_snap

        graph_path, cmty_path = sources["files"]
        name = f"snap:{Path(str(spec.target)).name.removeprefix('com-')}"
        return load_snap(graph_path, cmty_path,
                         SnapRecipe(k=spec.k, ties=spec.ties, split=spec.split_config()),
                         features, name=name, feature_cache=feature_cache)
    if spec.kind == "blogcatalog":
        from graphmtl.data.multilabel import load_blogcatalog

        return load_blogcatalog(sources["files"][0], spec.split_config(), features,
                                min_positives=spec.min_positives, feature_cache=feature_cache)
    if spec.kind == "deezer":
        from graphmtl.data.multilabel import load_deezer

        return load_deezer(*sources["files"], spec.split_config(), features,
                           min_positives=spec.min_positives, feature_cache=feature_cache,
                           name=sources["name"])
    if spec.kind == "ogb":
        from graphmtl.data.ogb_proteins import load_ogbn_proteins

        return load_ogbn_proteins(sources["root"], features, feature_cache=feature_cache)
    if spec.kind == "synthetic":
        from graphmtl.data.synthetic import SyntheticConfig, make_planted_graph

        graph = make_planted_graph(SyntheticConfig.from_strings(dict(spec.options)))
        graph.provenance = {**graph.provenance, "kind": "synthetic"}
        return graph
    raise GraphMTLError(f"dataset kind: unknown {spec.kind!r}")  # pragma: no cover
