"""Settings of a projection run: :class:`ProjectionConfig`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from torch import nn

from graphmtl.errors import check
from graphmtl.utils.config import config_from_dict, parse_fanouts
from graphmtl.utils.device import validate_device

#: How the kernel computes ``z`` (see :mod:`graphmtl.projection.kernel`).
STRATEGIES = ("split", "full")

#: ``fanouts="auto"`` samples neighbourhoods on graphs with more directed edges than this.
AUTO_SAMPLE_MIN_EDGES = 4_000_000


@dataclass(frozen=True)
class ProjectionConfig:
    """How projected gradients are computed and which rows are stored.

    Args:
        dim: number of random directions ``d``.
        seed: seed of the directions and of the row sampling.
        params: projected parameters: ``all``, ``encoder``, ``head`` or ``re:<regex>``
            (see :func:`~graphmtl.projection.directions.select_parameters`).
        batch_size: seed nodes per forward-mode pass.
        direction_chunk: directions per ``vmap`` call (memory grows linearly with it).
        fanouts: neighbours sampled per layer for message-passing encoders; ``None`` takes full
            neighbourhoods (exact, deterministic). Sampling, when used, is seeded per batch index
            (``sha256(seed, batch)``), so a resumed run samples exactly as an uninterrupted one.
            ``"auto"`` (default): full neighbourhoods on graphs with at most
            :data:`AUTO_SAMPLE_MIN_EDGES` directed edges (``edge_index`` columns), else the
            trainer's default fanouts (``10, 5`` for two layers, ``10`` per layer otherwise);
            see :meth:`resolve`. On large graphs a full 2-hop neighbourhood of a 512-node batch
            is most of the graph (every batch then costs a pass over it).
        train_budget, val_budget: most rows stored per task in that split (``None``: all rows).
            See :func:`select_rows` for the exact rule.
        strategy: ``split`` (encoder jvp + closed-form head, default) or ``full``.
        device: where the forward-mode passes run (``cpu``, ``cuda``, ``cuda:N``, ``auto``);
            the store is the same up to float rounding, so it is not part of the store's key.
    """

    dim: int = 200
    seed: int = 0
    params: str = "all"
    batch_size: int = 512
    direction_chunk: int = 20
    fanouts: tuple[int, ...] | str | None = "auto"
    train_budget: int | None = None
    val_budget: int | None = None
    strategy: str = "split"
    device: str = "cpu"

    def __post_init__(self) -> None:
        check(self.dim >= 1, f"projection dim: must be >= 1, got {self.dim}")
        check(self.batch_size >= 1, f"projection batch_size: must be >= 1, got {self.batch_size}")
        check(self.direction_chunk >= 1,
              f"projection direction_chunk: must be >= 1, got {self.direction_chunk}")
        check(self.strategy in STRATEGIES,
              f"projection strategy: expected one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if isinstance(self.fanouts, str) and self.fanouts.strip() in ("auto", "full"):
            if self.fanouts.strip() == "full":
                object.__setattr__(self, "fanouts", None)
            else:
                object.__setattr__(self, "fanouts", "auto")
        elif self.fanouts is not None:
            object.__setattr__(self, "fanouts", parse_fanouts(self.fanouts, "projection fanouts"))
        object.__setattr__(self, "device", validate_device(self.device))
        for name in ("train_budget", "val_budget"):
            b = getattr(self, name)
            check(b is None or b >= 2, f"projection {name}: must be >= 2 or None, got {b}")

    def budget(self, split: str) -> int | None:
        return self.train_budget if split == "train" else self.val_budget

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(self.fanouts, tuple):
            d["fanouts"] = list(self.fanouts)
        return d

    def resolve(self, model: nn.Module, graph) -> "ProjectionConfig":
        """This config with ``fanouts="auto"`` replaced by what it means for ``model`` on
        ``graph`` (see the ``fanouts`` argument)."""
        if self.fanouts != "auto":
            return self
        config = getattr(model, "config", None)
        fanouts = None
        if getattr(config, "uses_message_passing", True) and \
                int(graph.edge_index.shape[1]) > AUTO_SAMPLE_MIN_EDGES:
            from graphmtl.training.config import default_fanouts

            fanouts = default_fanouts(int(getattr(config, "num_layers", 2)))
        return replace(self, fanouts=fanouts)

    def key_dict(self) -> dict:
        """What determines a store's content: :meth:`to_dict` without ``device`` (call on a
        resolved config)."""
        d = self.to_dict()
        d.pop("device")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "projection config") -> "ProjectionConfig":
        """From :meth:`to_dict`'s JSON; an unknown key or a wrongly typed value is an error."""
        return config_from_dict(cls, d, name)
