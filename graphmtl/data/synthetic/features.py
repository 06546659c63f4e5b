"""Node features: planted group signal, structural (FastRP) or constant (step 5 of the
generator)."""

from __future__ import annotations

import importlib

import numpy as np
import torch

from graphmtl.data.synthetic.config import SyntheticConfig
from graphmtl.errors import GraphMTLError, check


def node_features(cfg: SyntheticConfig, rng: np.random.Generator, task_group: np.ndarray,
                  ptr: np.ndarray, node_of: np.ndarray, edge_index: np.ndarray) -> torch.Tensor:
    """float32 ``[N, F]`` features of the kind ``cfg.features`` (``[N, 1]`` ones for ``none``),
    from the communities (``ptr``, ``node_of``: members of community ``c`` are
    ``node_of[ptr[c]:ptr[c + 1]]``, ``task_group`` their groups) or the edges."""
    N = cfg.num_nodes
    if cfg.features == "none":
        return torch.ones(N, 1)
    if cfg.features == "structural":
        return _structural_features(cfg, edge_index)
    G, r, n = cfg.num_groups, cfg.feature_rank, cfg.num_tasks

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    # Task directions: the group's shared direction plus a task-specific one.
    shared = unit(rng.standard_normal((G, r)))
    own = unit(rng.standard_normal((n, r)))
    direction = unit(np.sqrt(cfg.feature_sharing) * shared[task_group]
                     + np.sqrt(1 - cfg.feature_sharing) * own)          # [n, r]
    # Latent layout: G private blocks of r dims, then one block of r dims shared by all groups,
    # each group writing into it through its own random rotation.
    rotation = np.linalg.qr(rng.standard_normal((G, r, r)))[0]          # [G, r, r]
    task_latent = np.zeros((n, (G + 1) * r))
    cols = task_group[:, None] * r + np.arange(r)
    np.put_along_axis(task_latent, cols, np.sqrt(1 - cfg.feature_conflict) * direction, axis=1)
    task_latent[:, G * r:] = np.sqrt(cfg.feature_conflict) * np.einsum(
        "tij,tj->ti", rotation[task_group], direction)
    # Node latent = sum of its communities' task latents (a sparse [N, n] x [n, L] product).
    from scipy.sparse import csr_matrix

    task_of = np.repeat(np.arange(n), np.diff(ptr))
    member = csr_matrix((np.ones(len(node_of), dtype=np.float32), (node_of, task_of)),
                        shape=(N, n))
    latent = (member @ task_latent.astype(np.float32)).astype(np.float32)  # [N, L]
    mix = (rng.standard_normal((latent.shape[1], cfg.feature_dim))
           / np.sqrt(r)).astype(np.float32)
    x = rng.standard_normal((N, cfg.feature_dim), dtype=np.float32)
    x *= np.float32(cfg.feature_noise)
    x += np.float32(cfg.feature_signal) * (latent @ mix)
    return torch.from_numpy(x)


def _structural_features(cfg: SyntheticConfig, edge_index: np.ndarray) -> torch.Tensor:
    try:
        features = importlib.import_module("graphmtl.data.features")
    except ImportError:
        raise GraphMTLError("synthetic features: 'structural' needs graphmtl.data.features, "
                            "which is not available; use features=planted") from None
    fn = getattr(features, "structural_features", None)
    check(callable(fn), "synthetic features: graphmtl.data.features has no "
          "structural_features(edge_index, num_nodes) function; use features=planted")
    kwargs = {}
    if hasattr(features, "FeatureConfig"):
        kwargs["config"] = features.FeatureConfig(dim=max(cfg.feature_dim, 2), seed=cfg.seed)
    x = fn(torch.from_numpy(edge_index), cfg.num_nodes, **kwargs)
    x = torch.as_tensor(x, dtype=torch.float32)
    check(x.dim() == 2 and x.shape[0] == cfg.num_nodes,
          f"synthetic features: structural_features returned shape {tuple(x.shape)}")
    return x
