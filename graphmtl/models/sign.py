"""Precomputed propagation features for the SIGN-style model."""

from __future__ import annotations

import torch


def sign_features(x: torch.Tensor, edge_index: torch.Tensor, hops: int) -> torch.Tensor:
    """Concatenate ``[x, Âx, Â²x, ..., Â^hops x]`` with Â the GCN-normalised adjacency.

    Uses PyG's :class:`~torch_geometric.transforms.SIGN` transform.

    Args:
        x: node features ``[N, F]``.
        edge_index: ``[2, E]``.
        hops: number of propagation steps.

    Returns:
        ``[N, (hops + 1) * F]`` float32, the input of a ``sign`` :class:`MultiTaskGNN`.
    """
    from torch_geometric.data import Data
    from torch_geometric.transforms import SIGN

    data = SIGN(hops)(Data(x=x, edge_index=edge_index, num_nodes=x.shape[0]))
    return torch.cat([data.x] + [data[f"x{i}"] for i in range(1, hops + 1)], dim=-1)


def sign_inputs(x: torch.Tensor, edge_index: torch.Tensor, config) -> torch.Tensor:
    """The ``sign`` encoder's precomputed inputs: :func:`sign_features` with
    ``config.sign_hops`` hops, ``[N, (sign_hops + 1) * F]``."""
    return sign_features(x, edge_index, config.sign_hops)
