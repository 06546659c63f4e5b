"""Typed configuration of one training run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from graphmtl.errors import check
from graphmtl.utils.config import config_from_dict, parse_fanouts, replace_checked
from graphmtl.utils.device import validate_device

METRICS = ("roc_auc", "f1", "ap", "loss")
"""Model-selection metrics: mean over the selected tasks on the validation split. ``loss`` (mean
per-task BCE) is minimised, the others are maximised."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of :class:`~graphmtl.training.Trainer`.

    Args:
        epochs: maximum number of passes over the training seed nodes.
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2 on every parameter).
        batch_size: seed nodes per minibatch.
        fanouts: neighbours sampled per layer (outermost last; ``-1`` = all), one value per
            message-passing layer. Ignored by ``sign`` (its inputs are precomputed).
        patience: stop after this many evaluations without a better validation ``metric``
            (``0`` = never stop early; the best evaluation is kept either way).
        eval_every: evaluate on the validation split every this many epochs (and after the last).
        seed: seeds the initial weights and, per epoch, shuffling, neighbour sampling and dropout.
        metric: model-selection metric, one of :data:`METRICS`, averaged over the selected tasks
            whose validation split has both classes. Average precision by default: it is the
            headline score of the grouping benchmark (tasks with few positives, where ROC-AUC
            saturates and F1 at logit 0 depends on calibration), and a model is selected on the
            score it is judged by.
        num_workers: DataLoader workers for neighbour sampling (``0``: in the main process, which
            is fastest on 2 cores and keeps runs deterministic).
        eval_batch_size: seed nodes per inference minibatch.
        num_threads: ``torch.set_num_threads`` during ``fit`` (``None``: leave as is).
        device: where training and evaluation run: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``
            (checked when ``fit`` starts). The returned model is on the CPU either way.
        eval_fanouts: sampled evaluation (neighbours per layer) for the validation during
            ``fit``; ``None`` (default): exact full neighbourhoods (see
            :mod:`graphmtl.training.inference`).
        eval_method: how full neighbourhoods are evaluated: ``auto`` (one full-graph pass on
            small graphs, layer-wise otherwise), ``full_graph`` or ``layerwise``.
    """

    epochs: int = 100
    lr: float = 0.01
    weight_decay: float = 1e-5
    batch_size: int = 1024
    fanouts: tuple[int, ...] = (10, 5)
    patience: int = 20
    eval_every: int = 1
    seed: int = 0
    metric: str = "ap"
    num_workers: int = 0
    eval_batch_size: int = 4096
    num_threads: int | None = None
    device: str = "cpu"
    eval_fanouts: tuple[int, ...] | None = None
    eval_method: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fanouts", parse_fanouts(self.fanouts, "train fanouts"))
        if self.eval_fanouts is not None:
            object.__setattr__(self, "eval_fanouts",
                               parse_fanouts(self.eval_fanouts, "train eval_fanouts"))
        object.__setattr__(self, "device", validate_device(self.device))
        check(self.eval_method in ("auto", "full_graph", "layerwise"),
              f"train eval_method: unknown {self.eval_method!r} (choose from auto, full_graph, "
              "layerwise)")
        check(self.epochs >= 1, f"train epochs: must be >= 1, got {self.epochs}")
        check(self.lr > 0, f"train lr: must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, f"train weight_decay: must be >= 0, got {self.weight_decay}")
        check(self.batch_size >= 1, f"train batch_size: must be >= 1, got {self.batch_size}")
        check(self.eval_batch_size >= 1,
              f"train eval_batch_size: must be >= 1, got {self.eval_batch_size}")
        check(self.patience >= 0, f"train patience: must be >= 0, got {self.patience}")
        check(self.eval_every >= 1, f"train eval_every: must be >= 1, got {self.eval_every}")
        check(self.metric in METRICS,
              f"train metric: unknown {self.metric!r} (choose from {', '.join(METRICS)})")
        check(self.num_workers >= 0, f"train num_workers: must be >= 0, got {self.num_workers}")
        check(self.num_threads is None or self.num_threads >= 1,
              f"train num_threads: must be >= 1, got {self.num_threads}")

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "loss"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (``fanouts`` as a list), for checkpoints and results."""
        d = asdict(self)
        d["fanouts"] = list(self.fanouts)
        d["eval_fanouts"] = None if self.eval_fanouts is None else list(self.eval_fanouts)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "train config") -> "TrainConfig":
        """From :meth:`to_dict`'s JSON; an unknown key or a wrongly typed value is an error."""
        return config_from_dict(cls, d, name)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (validated again; an unknown field is an error)."""
        return replace_checked(self, "train config", **changes)


def default_fanouts(num_layers: int) -> tuple[int, ...]:
    """The trainer's default neighbour sampling: ``10, 5`` for two layers, else 10 per layer."""
    return (10, 5) if num_layers == 2 else (10,) * num_layers


def resolve_fanouts(fanouts: Sequence[int], num_layers: int) -> list[int]:
    """Check that there is one fanout per message-passing layer."""
    check(len(fanouts) == num_layers,
          f"train fanouts: {len(fanouts)} values {list(fanouts)} given but the model has "
          f"{num_layers} message-passing layers (give one per layer)")
    return list(fanouts)
