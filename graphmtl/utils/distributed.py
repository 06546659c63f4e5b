"""torch.distributed helpers shared by every stage (no-ops in a single process).

graphmtl runs the same code in one process or in ``W`` ranks started by ``torchrun``; a stage
asks :func:`rank_world` which share of the work is its own. :func:`init_from_env` starts the
process group from torchrun's environment (``gloo`` on CPU, ``nccl`` on GPUs).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from graphmtl.errors import check


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() else None


def is_distributed() -> bool:
    """True inside an initialised process group of more than one rank."""
    dist = _dist()
    return bool(dist is not None and dist.is_initialized() and dist.get_world_size() > 1)


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` in a single process."""
    if not is_distributed():
        return 0, 1
    dist = _dist()
    return dist.get_rank(), dist.get_world_size()


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by ``torchrun`` (``WORLD_SIZE > 1``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str | torch.device = "cpu") -> bool:
    """Join the process group torchrun describes in the environment, once.

    Backend ``nccl`` when ``device`` is a GPU, else ``gloo``. Returns whether this process is
    part of a group of more than one rank. A no-op outside torchrun.
    """
    if not launched_by_torchrun():
        return False
    dist = _dist()
    check(dist is not None, "torch.distributed is not available in this torch build")
    if not dist.is_initialized():
        cuda = torch.device(str(device) if str(device) != "auto" else
                            ("cuda" if torch.cuda.is_available() else "cpu")).type == "cuda"
        if cuda:
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return is_distributed()


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def rank_device(device: torch.device) -> torch.device:
    """A bare ``cuda`` means this rank's GPU (``cuda:LOCAL_RANK``) inside a process group."""
    if device.type == "cuda" and device.index is None and is_distributed():
        return torch.device("cuda", local_rank())
    return device


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous near-equal share ``[lo, hi)`` of ``n`` items for ``rank`` of ``world``."""
    return n * rank // world, n * (rank + 1) // world


def barrier() -> None:
    if is_distributed():
        _dist().barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled)."""
    if not is_distributed():
        return obj
    box = [obj]
    _dist().broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (pickled)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * rank_world()[1]
    _dist().all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (in place; returned)."""
    if is_distributed():
        _dist().all_reduce(t)
    return t
