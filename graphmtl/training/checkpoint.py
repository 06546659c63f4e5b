"""Checkpoints that carry their configuration and load with ``torch.load(weights_only=True)``.

File layout (a plain dict; only tensors, numbers, strings, lists and dicts):
``format`` = ``"graphmtl.checkpoint"``, ``version``, ``model_config`` (dict), ``train_config``
(dict or None), ``task_names``, ``in_channels``, ``data_hash``, ``epoch`` (epochs completed),
``metrics`` (dict), ``state_dict`` (model weights), ``optimizer`` (Adam state or None),
``trainer_state`` (resume bookkeeping or None), ``task_digests`` (per task: digest of its labels
and train/val/test split, see :func:`task_digests`) and ``sha256`` (the
:func:`~graphmtl.utils.integrity.content_digest` of everything else, checked on load).

Files written before ``task_digests`` / ``sha256`` existed still load, with a warning: their
content and splits cannot be checked.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.errors import GraphMTLError, check
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.training.config import TrainConfig
from graphmtl.utils.integrity import DamagedFileError, content_digest
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
        task_digests: per task name, :func:`task_digests` of the training graph (empty for a
            checkpoint written before they existed).
        path: the file it was loaded from (``None`` if not loaded from a file).
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
    task_digests: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def check_data(self, graph: MultiTaskGraph, data: str = "the data") -> None:
        """Refuse ``graph`` unless each of the checkpoint's tasks has, in it, the labels and
        train/val/test split the model was trained on.

        Other tasks of the graph are not looked at, so a checkpoint trained on some tasks of a
        graph still serves the same tasks of a graph with more. ``data`` names the graph in the
        error (e.g. ``"--data snap:youtube,k=100,seed=1"``).

        Raises:
            GraphMTLError: a task is missing from ``graph`` or its labels / splits differ (the
                checkpoint's validation and test rows would overlap its training rows).
        """
        where = self.path or "checkpoint"
        known = set(graph.task_names)
        missing = [t for t in self.task_names if t not in known]
        check(not missing, f"{where}: task {missing[0] if missing else ''!r} of the checkpoint "
                           f"is not in {data}")
        if not self.task_digests:
            warnings.warn(f"{where}: records no task digests (an older graphmtl wrote it); "
                          f"cannot check that {data} has the splits it was trained on",
                          stacklevel=2)
            return
        current = task_digests(graph, self.task_names)
        diff = [t for t in self.task_names if self.task_digests.get(t) != current[t]]
        check(not diff, f"{where}: task {diff[0] if diff else ''!r} has other labels or "
                        f"train/val/test splits in {data} than the checkpoint was trained on "
                        f"(e.g. another split seed; {len(diff)} of {self.num_tasks} tasks "
                        "differ); use a checkpoint trained on this data")


def task_digests(graph: MultiTaskGraph, tasks: Sequence[int | str] | str | None = None
                 ) -> dict[str, str]:
    """Per task, a digest (16 hex digits) of its name, labels and train/val/test split.

    Together with :func:`~graphmtl.training.loader.graph_digest` (features and edges) it pins
    down the data a model was trained on, task by task, so that a checkpoint is refused on other
    splits (``seed=1``) yet still warm starts other task subsets of the same graph.

    Args:
        graph: the graph.
        tasks: task names / positions (``None``: all tasks).

    Returns:
        ``{task name: digest}`` in the order of ``tasks``.
    """
    idx = graph.task_index(tasks.tolist() if isinstance(tasks, torch.Tensor) else tasks)
    # One uint8 code per (node, task): label bit + one bit per split; [k, N] so each task's
    # column is one contiguous buffer.
    code = (graph.y[:, idx].to(torch.uint8) | graph.train_mask[:, idx].to(torch.uint8) << 1
            | graph.val_mask[:, idx].to(torch.uint8) << 2
            | graph.test_mask[:, idx].to(torch.uint8) << 3).T.contiguous().numpy()
    out = {}
    for row, i in zip(code, idx.tolist()):
        name = graph.task_names[i]
        h = hashlib.sha256(f"{name}|{graph.num_nodes}|".encode())
        h.update(row.data)
        out[name] = h.hexdigest()[:16]
    return out


def save_checkpoint(path: str | os.PathLike, model: MultiTaskGNN, *, task_names: list[str],
                    data_hash: str = "", train_config: TrainConfig | None = None, epoch: int = 0,
                    metrics: dict[str, Any] | None = None, optimizer_state: dict | None = None,
                    trainer_state: dict | None = None,
                    task_digests: dict[str, str] | None = None) -> Path:
    """Write a checkpoint atomically (readers never see a partial file).

    ``task_digests`` (from :func:`task_digests` of the training graph, for ``task_names``) lets
    later stages refuse data with other splits; the file's ``sha256`` is added here.
    """
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
        "task_digests": dict(task_digests or {}),
    }
    obj["sha256"] = content_digest(obj)
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
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        GraphMTLError: one line naming the file when it is missing, not a graphmtl checkpoint,
            or damaged (its content does not match its ``sha256``: flipped or truncated bytes).
    """
    if isinstance(path, Checkpoint):
        return path
    path = Path(path)
    check(path.is_file(), f"{path}: checkpoint file not found")
    fix = "delete it and train again (graphmtl train), or restore a copy"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise DamagedFileError(path, f"not a graphmtl checkpoint, or a damaged or truncated "
                                     f"one ({_reason(e)})", fix) from None
    check(isinstance(obj, dict) and obj.get("format") == _FORMAT,
          f"{path}: not a graphmtl checkpoint")
    check(obj.get("version") == _VERSION,
          f"{path}: checkpoint version {obj.get('version')} is not supported (expected {_VERSION})")
    recorded = obj.pop("sha256", None)
    if recorded is None:
        warnings.warn(f"{path}: written by an older graphmtl without a content digest, so it "
                      "cannot be checked for damage", stacklevel=2)
    elif content_digest(obj) != recorded:
        raise DamagedFileError(path, "content does not match its recorded sha256 (damaged or "
                                     "edited)", fix)
    try:
        model_config = ModelConfig(**obj["model_config"])
        model = MultiTaskGNN(obj["in_channels"], len(obj["task_names"]), model_config)
        model.load_state_dict(obj["state_dict"])
    except (RuntimeError, KeyError, TypeError) as e:
        raise GraphMTLError(f"{path}: weights do not fit the stored model config "
                            f"({_reason(e)})") from None
    model.eval()
    tc = obj.get("train_config")
    return Checkpoint(model=model, model_config=model_config,
                      train_config=None if tc is None else TrainConfig.from_dict(tc),
                      task_names=list(obj["task_names"]), in_channels=int(obj["in_channels"]),
                      data_hash=obj.get("data_hash", ""), epoch=int(obj.get("epoch", 0)),
                      metrics=obj.get("metrics") or {}, optimizer_state=obj.get("optimizer"),
                      trainer_state=obj.get("trainer_state"),
                      task_digests=dict(obj.get("task_digests") or {}), path=path)


def _reason(e: BaseException) -> str:
    """The exception's type and first line, without torch's advice to unpickle unsafely."""
    text = str(e).splitlines()[0].strip() if str(e).strip() else ""
    if "weights_only" in text or "Weights only load failed" in text:
        text = "holds objects other than tensors and plain data"
    return f"{type(e).__name__}: {text[:120]}" if text else type(e).__name__
