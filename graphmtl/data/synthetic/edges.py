"""Edges: dense community insides and a sparse Chung-Lu background (step 4 of the generator)."""

from __future__ import annotations

import numpy as np

from graphmtl.data.synthetic.config import SyntheticConfig
from graphmtl.data.synthetic.sampling import unique_sorted, weighted_draw


def _internal_draws(cfg: SyntheticConfig, sizes: np.ndarray) -> np.ndarray:
    """Uniform member-pair draws per community giving the planted internal density."""
    s = sizes.astype(np.float64)
    d = s ** cfg.internal_degree_growth
    d *= cfg.internal_degree * s.sum() / max((s * d).sum(), 1e-300)
    pairs = s * (s - 1) / 2
    p = np.minimum(d / np.maximum(s - 1, 1), cfg.max_density)
    # A uniform ordered draw hits a given unordered pair with probability 1/pairs, so m draws
    # cover a fraction 1 - exp(-m/pairs) of pairs: invert that to reach density p.
    return np.rint(-np.log1p(-p) * pairs).astype(np.int64)


def sample_edges(cfg: SyntheticConfig, rng: np.random.Generator, weight: np.ndarray,
                 ptr: np.ndarray, node_of: np.ndarray) -> np.ndarray:
    """Sorted unique int64 keys ``u * N + v`` (``u < v``) of the undirected edges."""
    N = cfg.num_nodes
    sizes = np.diff(ptr)
    draws = _internal_draws(cfg, sizes)
    parts = []

    def keep(u: np.ndarray, v: np.ndarray) -> None:
        lo, hi = np.minimum(u, v).astype(np.int64), np.maximum(u, v).astype(np.int64)
        k = lo * N + hi
        parts.append(unique_sorted(k[lo != hi]))

    # Community edges, whole communities per chunk (a community bigger than a chunk is its own).
    bounds = np.cumsum(draws)
    start = 0
    while start < len(draws):
        base = bounds[start - 1] if start else 0
        stop = max(int(np.searchsorted(bounds, base + cfg.edge_chunk, side="right")), start + 1)
        comm = np.repeat(np.arange(start, stop, dtype=np.int32), draws[start:stop])
        s = sizes[comm].astype(np.float32)
        off = ptr[comm]
        i = np.minimum((rng.random(len(comm), dtype=np.float32) * s).astype(np.int64),
                       sizes[comm] - 1)
        j = np.minimum((rng.random(len(comm), dtype=np.float32) * s).astype(np.int64),
                       sizes[comm] - 1)
        keep(node_of[off + i], node_of[off + j])
        del comm, s, off, i, j
        start = stop

    # Chung-Lu background: endpoints proportional to node weight.
    cumw = np.cumsum(weight)
    total = int(round(N * cfg.background_degree / 2))
    for lo in range(0, total, cfg.edge_chunk):
        m = min(cfg.edge_chunk, total - lo)
        keep(weighted_draw(rng, cumw, m), weighted_draw(rng, cumw, m))

    if not parts:
        return np.zeros(0, dtype=np.int64)
    return unique_sorted(np.concatenate(parts))


def both_directions(keys: np.ndarray, N: int) -> np.ndarray:
    """int64 ``[2, 2E]`` edge index sorted by (source, target) from undirected keys."""
    lo, hi = keys // N, keys % N
    both = np.concatenate([keys, hi * N + lo])
    del lo, hi
    both.sort()
    out = np.empty((2, len(both)), dtype=np.int64)
    np.floor_divide(both, N, out=out[0])
    np.remainder(both, N, out=out[1])
    return out
