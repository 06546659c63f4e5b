"""Memoisation on the identity of tensors, for what depends only on a graph's tensors.

Training hundreds of task-subset models on one graph (``graph.select_tasks`` shares ``x`` and
``edge_index``) then builds the neighbour sampler, the precomputed encoder inputs and the graph
digest once.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

_CACHE: dict[tuple, Any] = {}


def cached_on(tensors: Sequence, key: tuple, build: Callable[[], Any]) -> Any:
    """``build()``, memoised on the identity (``id``, data pointer, shape) of ``tensors`` and on
    ``key``; the entry is dropped when the first tensor is freed."""
    full = tuple((id(t), t.data_ptr(), tuple(t.shape)) for t in tensors) + tuple(key)
    if full not in _CACHE:
        _CACHE[full] = build()
        weakref.finalize(tensors[0], _CACHE.pop, full, None)
    return _CACHE[full]
