"""Minibatch construction shared by training, inference and the projection engine.

Two kinds of batches, used the same way: ``model(batch.x, batch.edge_index)[:batch.batch_size]``
are the logits of the seed nodes ``batch.n_id[:batch.batch_size]``.

- message-passing encoders: PyG :class:`~torch_geometric.loader.NeighborLoader` subgraphs around
  the seeds (``fanouts`` neighbours per layer, ``-1`` = all);
- encoders without message passing (``sign``): rows of their precomputed inputs
  (:func:`graphmtl.models.node_inputs`; ``edge_index`` is ``None``).

Everything that depends only on the graph (the CSC sampler structure, the precomputed inputs,
the graph digest) is cached per graph tensors (:func:`graphmtl.utils.cache.cached_on`), so that
training hundreds of task-subset models on one graph (``graph.select_tasks`` shares ``x`` and
``edge_index``) pays for it once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.models import ModelConfig, node_inputs
from graphmtl.utils.cache import cached_on

def graph_digest(graph: MultiTaskGraph) -> str:
    """SHA-256 (first 16 hex digits) of the features and edges, cached per graph tensors.

    Labels and splits are not part of it: a checkpoint trained on some tasks of a graph can warm
    start a model for other tasks of the same graph.
    """
    def build() -> str:
        h = hashlib.sha256()
        for t in (graph.x, graph.edge_index):
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    return cached_on([graph.x, graph.edge_index], ("digest",), build)


@dataclass
class FeatureBatch:
    """A minibatch of precomputed node rows (the ``sign`` counterpart of a PyG batch)."""

    x: torch.Tensor          # [B, F']
    n_id: torch.Tensor       # [B] global node ids
    batch_size: int
    edge_index: None = None


class FeatureLoader:
    """Batches of rows ``x[nodes]``, optionally shuffled; an iterable like a DataLoader."""

    def __init__(self, x: torch.Tensor, nodes: torch.Tensor, batch_size: int, shuffle: bool,
                 generator: torch.Generator | None = None):
        self.x, self.nodes, self.batch_size = x, nodes, batch_size
        self.shuffle, self.generator = shuffle, generator

    def __len__(self) -> int:
        return (len(self.nodes) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[FeatureBatch]:
        nodes = self.nodes
        if self.shuffle:
            nodes = nodes[torch.randperm(len(nodes), generator=self.generator)]
        for ids in nodes.split(self.batch_size):
            yield FeatureBatch(x=self.x[ids], n_id=ids, batch_size=len(ids))


def _sampler(x: torch.Tensor, edge_index: torch.Tensor, num_nodes: int, fanouts: tuple):
    from torch_geometric.data import Data
    from torch_geometric.sampler import NeighborSampler

    def build():
        import warnings

        data = Data(x=x, edge_index=edge_index, num_nodes=num_nodes)
        with warnings.catch_warnings():  # "without pyg-lib is deprecated": nothing to act on
            warnings.simplefilter("ignore")
            return data, NeighborSampler(data, num_neighbors=list(fanouts))

    return cached_on([x, edge_index], ("sampler", fanouts), build)


def make_loader(graph: MultiTaskGraph, nodes: torch.Tensor | None,
                fanouts: Sequence[int] | None, batch_size: int, shuffle: bool = False,
                seed: int | None = None, *, x: torch.Tensor | None = None,
                num_workers: int = 0):
    """Minibatches over ``nodes``.

    Args:
        graph: the graph (edges; features unless ``x`` is given).
        nodes: int64 seed node ids ``[M]`` (``None``: all nodes).
        fanouts: neighbours per layer (``-1`` = all) for a PyG ``NeighborLoader``; ``None`` for
            row batches of ``x`` (``sign``).
        batch_size: seeds per batch.
        shuffle: shuffle the seeds each pass. With ``seed=None`` the order (and the neighbour
            sampling, always) uses torch's global generator, which the trainer re-seeds per epoch.
        seed: seeds a private generator for the shuffling order.
        x: per-node inputs ``[N, F']`` (default ``graph.x``; see :func:`node_inputs`).
        num_workers: DataLoader workers (``NeighborLoader`` only).

    Returns:
        An iterable of batches with ``x``, ``edge_index`` (``None`` for row batches), ``n_id``
        and ``batch_size``; the first ``batch_size`` rows are the seeds, in order.
    """
    x = graph.x if x is None else x
    nodes = torch.arange(graph.num_nodes) if nodes is None else torch.as_tensor(nodes).long()
    generator = None if seed is None else torch.Generator().manual_seed(int(seed))
    if fanouts is None:
        return FeatureLoader(x, nodes, batch_size, shuffle, generator)
    from torch_geometric.loader import NeighborLoader

    data, sampler = _sampler(x, graph.edge_index, graph.num_nodes, tuple(int(f) for f in fanouts))
    return NeighborLoader(data, num_neighbors=list(fanouts), input_nodes=nodes,
                          batch_size=batch_size, shuffle=shuffle, neighbor_sampler=sampler,
                          num_workers=num_workers, generator=generator)


def hop_counts(edge_index: torch.Tensor, num_nodes: int, batch_size: int, num_layers: int
               ) -> tuple[list[int], list[int]] | None:
    """Per-hop node and edge counts of a ``NeighborLoader`` subgraph (for layer trimming).

    PyG returns them only with ``pyg-lib``; the ``torch-sparse`` sampler lays a batch out the
    same way — nodes in discovery order (seeds, then hop 1, hop 2, ...), edges hop by hop with
    their targets in ascending order — so the counts follow from ``edge_index``: the edges of
    hop ``h`` are those whose target lies in hop ``h - 1``; the nodes of hop ``h`` are the new
    sources among them. Returns ``None`` when the layout is not that one (no trimming then).
    """
    col = edge_index[1]
    if col.numel() > 1 and not bool((col[1:] >= col[:-1]).all()):
        return None
    nodes, edges = [batch_size], []
    e_lo, hi = 0, batch_size
    for _ in range(num_layers):
        e_hi = int(torch.searchsorted(col, hi))
        new_hi = hi
        if e_hi > e_lo:
            new_hi = max(hi, int(edge_index[0, e_lo:e_hi].max()) + 1)
        edges.append(e_hi - e_lo)
        nodes.append(new_hi - hi)
        e_lo, hi = e_hi, new_hi
    if hi != num_nodes or e_lo != col.numel():
        return None
    return nodes, edges


def inference_loader(graph: MultiTaskGraph, config: ModelConfig, nodes: torch.Tensor | None,
                     batch_size: int, fanouts: Sequence[int] | None = None):
    """The loader :func:`~graphmtl.training.predict_logits` uses: full neighbourhoods
    (``[-1] * num_layers``) unless ``fanouts`` is given; row batches for ``sign``."""
    if not config.uses_message_passing:
        return make_loader(graph, nodes, None, batch_size, x=node_inputs(graph, config))
    fan = [-1] * config.num_layers if fanouts is None else list(fanouts)
    return make_loader(graph, nodes, fan, batch_size, x=graph.x)
