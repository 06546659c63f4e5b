"""The dataset spec grammar: :class:`DatasetSpec` (see :mod:`graphmtl.data.sources`)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphmtl.data.splits import SplitConfig
from graphmtl.errors import GraphMTLError, check

#: The type of every ``key=value`` parameter (one grammar for every source).
KEY_TYPES: dict[str, type] = {"k": int, "communities": str, "ties": str, "seed": int,
                              "train": float, "val": float, "train_pos": int, "pos_cutoff": int,
                              "features": str, "feature_seed": int, "min_positives": int,
                              "root": str, "download": bool}


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed, validated data source description (see :mod:`graphmtl.data.sources` for the
    grammar). Which keys a kind takes, and its own checks, are its source's
    (:data:`~graphmtl.data.sources.formats.SOURCES`).

    Attributes:
        kind: one of :data:`~graphmtl.data.sources.formats.KINDS`.
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
        from graphmtl.data.sources.formats import KINDS, source_for

        check(self.kind in KINDS, f"dataset kind: unknown {self.kind!r} (known: "
              f"{', '.join(KINDS)}, or a path to a .npz or .pt graph)")
        for key, kind in KEY_TYPES.items():
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
        source = source_for(self)
        check(f != "edge" or source.edge_features,
              "features: 'edge' exists only for ogb:ogbn-proteins")
        source.check(self)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, text: str) -> "DatasetSpec":
        """Parse ``KIND[:TARGET][,key=value]...`` or a path to a ``.npz`` / ``.pt`` graph.

        Raises:
            GraphMTLError: unknown kind or key, or a value of the wrong type (names the key).
        """
        from graphmtl.data.sources.formats import KINDS, SOURCES, PygFileSource

        text = str(text).strip()
        check(text != "", "dataset: empty spec")
        if text.endswith(".npz") or (os.sep in text and Path(text).is_file()):
            return cls(kind="file", target=text)
        head, _, rest = text.partition(",")
        if is_pyg_file(head.strip()):
            return cls(kind="file", **PygFileSource.spec_fields(head.strip(), key_values(rest)))
        kind, colon, target = head.partition(":")
        kind = kind.strip().lower()
        fields = [f for f in rest.split(",") if f.strip()] if rest else []
        target = target.strip() if colon else ""
        if "=" in target:          # "synthetic:tasks=5": no target, the first field is a key
            fields.insert(0, target)
            target = ""
        check(kind in KINDS and kind != "file", f"dataset kind: unknown {kind!r} (known: "
              f"{', '.join(k for k in KINDS if k != 'file')}, or a path to a .npz or .pt graph)")
        return cls(kind=kind, **SOURCES[kind].spec_fields(target, key_values(",".join(fields))))

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

    @property
    def format(self) -> str:
        """The key of this spec's source in :data:`~graphmtl.data.sources.formats.SOURCES`:
        the kind, or ``npz`` / ``pt`` for a file (by its suffix)."""
        if self.kind != "file":
            return self.kind
        return "pt" if self.target is not None and is_pyg_file(self.target) else "npz"

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

    def params(self) -> dict[str, Any]:
        """Every field as JSON (``options`` as a dict)."""
        d = dataclasses.asdict(self)
        d["options"] = dict(self.options)
        return d


def key_values(text: str) -> list[tuple[str, str]]:
    """``"a=1, b=2"`` -> ``[("a", "1"), ("b", "2")]``; malformed or repeated keys are errors."""
    pairs: list[tuple[str, str]] = []
    for field in (f for f in text.split(",") if f.strip()):
        key, eq, value = field.partition("=")
        key, value = key.strip(), value.strip()
        check(eq == "=" and key, f"dataset spec: expected key=value, got {field.strip()!r}")
        check(key not in dict(pairs), f"{key}: given more than once")
        pairs.append((key, value))
    return pairs


def is_pyg_file(target: str) -> bool:
    """Whether ``target`` names a saved PyG graph (``.pt`` / ``.pth``)."""
    from graphmtl.data.pyg import PYG_SUFFIXES

    return str(target).lower().endswith(PYG_SUFFIXES)


def convert(key: str, raw: str) -> Any:
    """The value of ``key=raw`` in the key's type (:data:`KEY_TYPES`); a one-line error naming
    the key otherwise."""
    kind = KEY_TYPES[key]
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
