"""The rows of one split of a projection store, in memory: :class:`SplitRows`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from graphmtl.errors import GraphMTLError, check


@dataclass
class SplitRows:
    """One split's rows of every task, concatenated task by task (as in the store).

    Attributes:
        z: ``[R, d]`` projected gradients, kept in the store's float32 (each task's block is
            cast to the compute dtype when used, which is exact and halves the memory);
        f0: ``[R]`` base logits; y: ``[R]`` labels in {0, 1}; weight: ``[R]`` row weights
            (in the compute dtype, float64 by default).
        ptr: int64 ``[n + 1]``: rows of task ``t`` are ``ptr[t]:ptr[t + 1]``.
        task_names: ``n`` names.
    """

    z: torch.Tensor
    f0: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor
    ptr: np.ndarray
    task_names: list[str]

    def __post_init__(self) -> None:
        R = self.z.shape[0]
        check(self.ptr.shape == (len(self.task_names) + 1,) and self.ptr[0] == 0
              and self.ptr[-1] == R and (np.diff(self.ptr) >= 0).all(),
              f"rows: task offsets do not match {R} rows and {len(self.task_names)} tasks")
        for name, a in (("f0", self.f0), ("y", self.y), ("weight", self.weight)):
            check(a.shape == (R,), f"rows: {name} has shape {tuple(a.shape)}, expected ({R},)")
        finite = torch.isfinite(self.z).all(1) & torch.isfinite(self.f0) & torch.isfinite(
            self.weight)
        if not bool(finite.all()):
            bad = int(np.searchsorted(self.ptr, int((~finite).nonzero()[0, 0]), side="right")) - 1
            raise GraphMTLError(f"task {self.task_names[bad]!r}: non-finite z, f0 or weight in "
                                f"the store")
        if bool((self.weight < 0).any()):
            bad = int(np.searchsorted(self.ptr, int((self.weight < 0).nonzero()[0, 0]),
                                      side="right")) - 1
            raise GraphMTLError(f"task {self.task_names[bad]!r}: negative row weight")

    @classmethod
    def from_arrays(cls, z, f0, y, weight, ptr, task_names=None,
                    dtype: torch.dtype = torch.float64) -> "SplitRows":
        ptr = np.asarray(ptr, dtype=np.int64)
        n = ptr.size - 1
        names = list(task_names) if task_names is not None else [f"task{i}" for i in range(n)]
        np_dtype = torch.empty((), dtype=dtype).numpy().dtype
        as_t = lambda a, t=np_dtype: torch.from_numpy(np.array(a, dtype=t))  # noqa: E731 (copies)
        z_dtype = np.float32 if np.asarray(z).dtype == np.float32 else np_dtype
        return cls(as_t(z, z_dtype), as_t(f0), as_t(y), as_t(weight), ptr, names)

    @classmethod
    def from_store(cls, store, split: str, dtype: torch.dtype = torch.float64) -> "SplitRows":
        """Load one split of a :class:`~graphmtl.projection.store.ProjectionStore`."""
        return cls.from_arrays(store.array(split, "z"), store.array(split, "f0"),
                               store.array(split, "y"), store.array(split, "weight"),
                               store.task_ptr(split), store.task_names, dtype=dtype)

    def to(self, device: torch.device) -> "SplitRows":
        """The same rows on ``device`` (``self`` when already there)."""
        if self.f0.device == torch.device(device):
            return self
        mv = lambda t: t.to(device)  # noqa: E731
        return SplitRows(mv(self.z), mv(self.f0), mv(self.y), mv(self.weight), self.ptr,
                         self.task_names)

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @property
    def dim(self) -> int:
        return int(self.z.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype (that of ``f0``)."""
        return self.f0.dtype

    def zblock(self, t: int) -> torch.Tensor:
        """``[r_t, d]`` rows of task ``t`` in the compute dtype."""
        return self.z[self.task(t)].to(self.dtype)

    @property
    def counts(self) -> np.ndarray:
        """int64 ``[n]`` rows per task."""
        return np.diff(self.ptr)

    def task(self, t: int) -> slice:
        return slice(int(self.ptr[t]), int(self.ptr[t + 1]))

    def per_task_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a per-row ``[R]`` tensor within each task: ``[n]``."""
        dev = values.device
        seg = torch.repeat_interleave(torch.arange(self.num_tasks, device=dev),
                                      torch.as_tensor(self.counts, device=dev))
        return torch.zeros(self.num_tasks, dtype=values.dtype, device=dev).index_add_(0, seg,
                                                                                      values)

    def weight_sums(self) -> torch.Tensor:
        """``[n]`` total row weight per task."""
        return self.per_task_sum(self.weight)

    def positives(self) -> torch.Tensor:
        """``[n]`` weighted number of positive rows per task."""
        return self.per_task_sum(self.weight * self.y)
