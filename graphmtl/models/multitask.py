"""Multitask node classifiers: a shared encoder and one logit per task."""

from __future__ import annotations

import torch
from torch import nn

from graphmtl.models.config import ModelConfig


class MultiTaskGNN(nn.Module):
    """Shared encoder + linear head with one logit per task.

    ``forward(x, edge_index)`` returns logits ``[N, n_tasks]`` for every node of the (sub)graph;
    for ``sign`` the ``x`` are precomputed hop features and ``edge_index`` is ignored.
    """

    def __init__(self, in_channels: int, num_tasks: int, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        self.in_channels = in_channels
        self.num_tasks = num_tasks
        self.encoder = self.config.spec.module(in_channels, self.config)
        self.head = nn.Linear(self.encoder.out_channels, num_tasks)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encoder(x, edge_index))

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder output ``[N, hidden]`` (the head's input)."""
        return self.encoder(x, edge_index)
