"""Checkpoints that carry their configuration and load with ``torch.load(weights_only=True)``.

File layout (a plain dict; only tensors, numbers, strings, lists and dicts):
``format`` = ``"graphmtl.checkpoint"``, ``version``, ``model_config`` (dict), ``train_config``
(dict or None), ``task_names``, ``in_channels``, ``data_hash``, ``epoch`` (epochs completed),
``metrics`` (dict), ``state_dict`` (model weights), ``optimizer`` (Adam state or None),
``trainer_state`` (resume bookkeeping or None).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from graphmtl.errors import GraphMTLError, check
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.training.config import TrainConfig
from graphmtl.utils.io import atomic_path

_FORMAT = "graphmtl.checkpoint"
_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        model: the :class:`MultiTaskGNN`, weights loaded, in eval mode.
        model_config, train_config: the configurations it was trained with.
        task_names: names of the model's outputs, in order.
        in_channels: input width of the model (``sign``: the hop-feature width).
        data_hash: :func:`~graphmtl.training.loader.graph_digest` of the training graph.
        epoch: epochs completed when it was written.
        metrics: JSON-like metrics recorded with it (e.g. the validation macro averages).
        optimizer_state: Adam ``state_dict`` (for resume), or None.
        trainer_state: the trainer's resume bookkeeping, or None.
    """

    model: MultiTaskGNN
    model_config: ModelConfig
    train_config: TrainConfig | None
    task_names: list[str]
    in_channels: int
    data_hash: str
    epoch: int
    metrics: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict | None = None
    trainer_state: dict | None = None

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)


def save_checkpoint(path: str | os.PathLike, model: MultiTaskGNN, *, task_names: list[str],
                    data_hash: str = "", train_config: TrainConfig | None = None, epoch: int = 0,
                    metrics: dict[str, Any] | None = None, optimizer_state: dict | None = None,
                    trainer_state: dict | None = None) -> Path:
    """Write a checkpoint atomically (readers never see a partial file)."""
    check(len(task_names) == model.num_tasks,
          f"checkpoint: {len(task_names)} task names for a model with {model.num_tasks} outputs")
    obj = {
        "format": _FORMAT, "version": _VERSION,
        "model_config": model.config.to_dict(),
        "train_config": None if train_config is None else train_config.to_dict(),
        "task_names": list(task_names), "in_channels": int(model.in_channels),
        "data_hash": str(data_hash), "epoch": int(epoch), "metrics": dict(metrics or {}),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": _to_cpu(optimizer_state), "trainer_state": trainer_state,
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def _to_cpu(obj: Any) -> Any:
    """Tensors of a nested dict / list on the CPU (an optimizer state trained on a GPU)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def load_checkpoint(path: str | os.PathLike | Checkpoint) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    if isinstance(path, Checkpoint):
        return path
    path = Path(path)
    check(path.is_file(), f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise GraphMTLError(f"{path}: not a graphmtl checkpoint ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''})") from None
    check(isinstance(obj, dict) and obj.get("format") == _FORMAT,
          f"{path}: not a graphmtl checkpoint")
    check(obj.get("version") == _VERSION,
          f"{path}: checkpoint version {obj.get('version')} is not supported (expected {_VERSION})")
    model_config = ModelConfig(**obj["model_config"])
    model = MultiTaskGNN(obj["in_channels"], len(obj["task_names"]), model_config)
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise GraphMTLError(f"{path}: weights do not fit the stored model config "
                            f"({str(e).splitlines()[0]})") from None
    model.eval()
    tc = obj.get("train_config")
    return Checkpoint(model=model, model_config=model_config,
                      train_config=None if tc is None else TrainConfig.from_dict(tc),
                      task_names=list(obj["task_names"]), in_channels=int(obj["in_channels"]),
                      data_hash=obj.get("data_hash", ""), epoch=int(obj.get("epoch", 0)),
                      metrics=obj.get("metrics") or {}, optimizer_state=obj.get("optimizer"),
                      trainer_state=obj.get("trainer_state"))
