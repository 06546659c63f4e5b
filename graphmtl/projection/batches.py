"""Model inputs for deterministic batches of seed nodes (what the kernel runs on)."""

from __future__ import annotations

import hashlib
import math
from typing import Iterator, Sequence

import torch
from torch import nn

from graphmtl.errors import check


class NodeBatches:
    """Model inputs for deterministic batches of seed nodes.

    ``batches[i]`` is ``(x, edge_index, num_seeds)`` where the first ``num_seeds`` rows of the
    model output belong to ``nodes[i * batch_size : (i + 1) * batch_size]`` in order. SIGN models
    get rows of the precomputed hop features (``edge_index`` is ``None``); message-passing models
    get a ``NeighborLoader`` subgraph, sampled with a per-batch seed (or full neighbourhoods).

    Args:
        model: the :class:`~graphmtl.models.MultiTaskGNN`.
        graph: the :class:`~graphmtl.data.MultiTaskGraph`.
        nodes: int64 ``[m]`` seed nodes, in the order to process.
        batch_size: seeds per batch.
        fanouts: neighbours per layer (``None``: all, i.e. the full ``num_layers``-hop
            neighbourhood — ``num_layers + 1`` hops for GCN, whose degree normalisation needs
            them — so the seeds' logits equal the full-graph ``predict_logits`` up to float
            rounding, whatever the batching).
        seed: base of the per-batch sampling seeds.
        features: precomputed SIGN features ``[N, F']`` (computed if ``None``).
    """

    def __init__(self, model: nn.Module, graph, nodes: torch.Tensor, batch_size: int,
                 fanouts: Sequence[int] | None = None, seed: int = 0,
                 features: torch.Tensor | None = None):
        self.nodes = torch.as_tensor(nodes, dtype=torch.long)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        config = getattr(model, "config", None)
        self.message_passing = bool(getattr(config, "uses_message_passing", True))
        # The trainer's loaders (cached per graph): the same SIGN features and sampler, so f0 is
        # what ``graphmtl.training.predict_logits`` returns (up to float rounding).
        from graphmtl.models import node_inputs
        from graphmtl.training.loader import make_loader

        if not self.message_passing:
            self.features = node_inputs(graph, config) if features is None else features
            check(self.features.shape[1] == model.in_channels,
                  f"model expects {model.in_channels} input features, the SIGN features of the "
                  f"data have {self.features.shape[1]}")
            self.loader = None
        else:
            check(graph.num_features == model.in_channels,
                  f"model expects {model.in_channels} node features, the data has "
                  f"{graph.num_features}")
            import warnings

            layers = int(config.num_layers) if config is not None else 2
            num_neighbors = list(fanouts) if fanouts is not None else [-1] * layers
            if fanouts is None and config is not None and config.spec.degree_normalised:
                # GCN normalises by the degrees of both endpoints: with one more hop of edges
                # every node within ``layers`` hops has its full degree, so the seeds' outputs
                # equal the full-graph ones (the extra hop's own outputs are never used).
                num_neighbors.append(-1)
            check(fanouts is None or len(num_neighbors) == layers,
                  f"projection fanouts: expected {layers} values (one per layer), "
                  f"got {len(num_neighbors)}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pyg-lib absent: the torch-sparse sampler is fine
                self.loader = make_loader(graph, self.nodes, num_neighbors, self.batch_size,
                                          x=graph.x)

    def __len__(self) -> int:
        return math.ceil(len(self.nodes) / self.batch_size)

    def span(self, i: int) -> tuple[int, int]:
        lo = i * self.batch_size
        return lo, min(len(self.nodes), lo + self.batch_size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        check(0 <= i < len(self), f"batch {i}: out of range")
        lo, hi = self.span(i)
        if self.loader is None:
            return self.features[self.nodes[lo:hi]], None, hi - lo
        from torch_geometric.data import Data

        with torch.random.fork_rng():
            torch.manual_seed(_mix_seed("graphmtl.batches", self.seed, i))
            out = self.loader.collate_fn(torch.arange(lo, hi))
            if not isinstance(out, Data):
                out = self.loader.filter_fn(out)
        return out.x, out.edge_index, int(out.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int]]:
        for i in range(len(self)):
            yield self[i]


def _mix_seed(tag: str, seed: int, i: int) -> int:
    digest = hashlib.sha256(f"{tag}/{seed}/{i}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
