"""Structural node features for graphs without their own (SNAP, BlogCatalog, Deezer).

The embedding is **FastRP** (Chen et al., "Fast and Accurate Network Embeddings via Very Sparse
Random Projection", CIKM 2019), plus the log-degree:

1. ``R``: a ``[N, dim - 1]`` sparse random sign matrix (Achlioptas / Li et al.): each entry is
   ``+-1/sqrt(density)`` with probability ``density / 2`` each and 0 otherwise.
2. ``L = diag(deg ** degree_power)`` down-weights the projections of hubs (FastRP's ``L^beta``).
3. ``E_1 = P L R``, ``E_i = P E_{i-1}`` with ``P = D^-1 A`` the random-walk matrix; every ``E_i``
   is L2-normalised row-wise and the embedding is ``sum_i weights[i] * E_i`` (nodes are
   described by random projections of their 1..hops-step neighbourhood distributions).
4. Output ``[log(1 + deg), embedding]`` with each column standardised to zero mean and unit
   variance (constant columns become 0).

Cost: ``O(hops * nnz(A) * dim)`` time and ``O(N * dim)`` memory, all scipy.sparse products:
nothing is ``O(N^2)``. Deterministic in ``seed`` (``R`` is drawn from ``numpy.random.
default_rng(seed)`` in fixed-size row blocks). Results can be cached on disk keyed on the graph's
bytes and the configuration.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graphmtl.errors import check
from graphmtl.utils.io import atomic_save_npy, stable_hash

#: Bump when the algorithm changes, so cached features are recomputed.
FEATURES_VERSION = 1
_BLOCK = 65536  # rows of R drawn at once (bounds the temporary uniform draws)


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of :func:`structural_features`.

    Args:
        dim: output dimension (``>= 2``: log-degree plus ``dim - 1`` projections).
        hops: propagation steps of FastRP (``>= 1``).
        weights: one weight per hop (``None``: all 1).
        density: fraction of non-zero entries of ``R``, in ``(0, 1]`` (1/3: Achlioptas).
        degree_power: FastRP's ``beta`` in ``L = diag(deg^beta)``, in ``[-1, 0]``.
        seed: seed of ``R``.
    """

    dim: int = 128
    hops: int = 3
    weights: tuple[float, ...] | None = None
    density: float = 1.0 / 3.0
    degree_power: float = -0.5
    seed: int = 0

    def __post_init__(self) -> None:
        check(isinstance(self.dim, int) and self.dim >= 2,
              f"features dim: must be an integer >= 2, got {self.dim!r}")
        check(isinstance(self.hops, int) and self.hops >= 1,
              f"features hops: must be an integer >= 1, got {self.hops!r}")
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
            check(len(self.weights) == self.hops,
                  f"features weights: expected {self.hops} (one per hop), got {len(self.weights)}")
        check(0 < self.density <= 1, f"features density: must lie in (0, 1], got {self.density}")
        check(-1 <= self.degree_power <= 0,
              f"features degree_power: must lie in [-1, 0], got {self.degree_power}")
        check(isinstance(self.seed, int) and self.seed >= 0,
              f"features seed: must be an integer >= 0, got {self.seed!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "method": "fastrp+logdegree", "version": FEATURES_VERSION}


def structural_features(edge_index: torch.Tensor | np.ndarray, num_nodes: int,
                        config: FeatureConfig | None = None, *,
                        cache_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """FastRP + log-degree structural features (see the module docstring).

    Args:
        edge_index: int64 ``[2, E]``; an undirected graph stored in both directions (a one-way
            edge list is symmetrised).
        num_nodes: ``N``.
        config: parameters (``None``: :class:`FeatureConfig` defaults, 128-d).
        cache_dir: if given, features are read from / written to
            ``cache_dir/features/<key>.npy``, ``key`` hashing the edges and the configuration.

    Returns:
        float32 ``[N, config.dim]``, columns standardised.
    """
    config = config or FeatureConfig()
    ei = np.asarray(edge_index.numpy() if isinstance(edge_index, torch.Tensor) else edge_index,
                    dtype=np.int64)
    check(ei.ndim == 2 and ei.shape[0] == 2, f"edge_index: expected [2, E], got {ei.shape}")
    cache_file = None
    if cache_dir is not None:
        digest = hashlib.sha256(np.ascontiguousarray(ei).tobytes()).hexdigest()
        key = stable_hash({"edges": digest, "num_nodes": int(num_nodes), **config.to_dict()})
        cache_file = Path(cache_dir) / "features" / f"fastrp-{key}.npy"
        if cache_file.is_file():
            try:
                x = np.load(cache_file, allow_pickle=False)
                if x.shape == (num_nodes, config.dim):
                    return torch.from_numpy(x)
            except (OSError, ValueError):
                pass  # a damaged cache entry is recomputed below
    x = _fastrp(ei, int(num_nodes), config)
    if cache_file is not None:
        atomic_save_npy(cache_file, x)
    return torch.from_numpy(x)


def _fastrp(ei: np.ndarray, N: int, cfg: FeatureConfig) -> np.ndarray:
    A = sp.csr_matrix((np.ones(ei.shape[1], dtype=np.float32), (ei[0], ei[1])), shape=(N, N))
    A = ((A + A.T) > 0).astype(np.float32)  # symmetrise, drop multiplicities
    A.setdiag(0)
    A.eliminate_zeros()
    deg = np.asarray(A.sum(axis=1), dtype=np.float64).ravel()
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    P = sp.diags(inv.astype(np.float32)) @ A                       # random walk D^-1 A
    d = cfg.dim - 1
    R = _random_signs(N, d, cfg)
    scale = np.where(deg > 0, np.maximum(deg, 1.0) ** cfg.degree_power, 0.0).astype(np.float32)
    cur = R * scale[:, None]
    weights = cfg.weights or (1.0,) * cfg.hops
    emb = np.zeros((N, d), dtype=np.float32)
    for w in weights:
        cur = np.asarray(P @ cur, dtype=np.float32)
        norm = np.linalg.norm(cur, axis=1, keepdims=True)
        emb += np.float32(w) * np.divide(cur, norm, out=np.zeros_like(cur), where=norm > 0)
    x = np.concatenate([np.log1p(deg).astype(np.float32)[:, None], emb], axis=1)
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    x = (x - mean.astype(np.float32)) / np.where(std > 1e-12, std, np.inf).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def _random_signs(N: int, d: int, cfg: FeatureConfig) -> np.ndarray:
    """Dense ``[N, d]`` float32 with entries ``0`` / ``+-1/sqrt(density)``, drawn block-wise."""
    rng = np.random.default_rng(cfg.seed)
    R = np.zeros((N, d), dtype=np.float32)
    value = np.float32(1.0 / np.sqrt(cfg.density))
    half = cfg.density / 2
    for lo in range(0, N, _BLOCK):
        u = rng.random((min(N, lo + _BLOCK) - lo, d), dtype=np.float32)
        block = R[lo:lo + u.shape[0]]
        block[u < half] = -value
        block[u >= 1 - half] = value
    return R
