"""Digests that key a projection store: the model's state and the labelled graph."""

from __future__ import annotations

import hashlib

import torch
from torch import nn


def model_digest(model: nn.Module) -> str:
    """sha256 of a model's state (names, dtypes, shapes and bytes of every tensor)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def labelled_graph_digest(graph) -> str:
    """sha256 of a graph's features, edges, labels, train/val masks and task names."""
    h = hashlib.sha256()
    for t in (graph.x, graph.edge_index, graph.y, graph.train_mask, graph.val_mask):
        h.update(t.contiguous().numpy().tobytes())
    h.update("\n".join(graph.task_names).encode())
    return h.hexdigest()
