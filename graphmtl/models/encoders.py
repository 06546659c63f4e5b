"""The encoder modules of a :class:`~graphmtl.models.MultiTaskGNN` (which one an encoder name
builds is declared in :mod:`graphmtl.models.registry`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from graphmtl.models.config import ModelConfig


class SIGNEncoder(nn.Module):
    """MLP over precomputed hop features ``[x, Ax, A^2x, ...]`` (Frasca et al., 2020).

    Each hop gets its own linear projection; the projections are concatenated and passed through
    an MLP. Input ``[B, (hops + 1) * F]``, output ``[B, hidden]``.
    """

    def __init__(self, in_channels: int, config: ModelConfig):
        super().__init__()
        hops = config.sign_hops + 1
        self.hops = hops
        self.in_per_hop = in_channels // hops
        self.hop_lins = nn.ModuleList(nn.Linear(self.in_per_hop, config.hidden) for _ in range(hops))
        layers: list[nn.Module] = []
        width = hops * config.hidden
        for _ in range(config.num_layers - 1):
            layers += [nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(width, config.hidden)]
            width = config.hidden
        layers += [nn.ReLU(), nn.Dropout(config.dropout)]
        self.mlp = nn.Sequential(*layers)
        self.out_channels = width

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor | None = None) -> torch.Tensor:
        parts = x.split(self.in_per_hop, dim=-1)
        return self.mlp(torch.cat([lin(p) for lin, p in zip(self.hop_lins, parts)], dim=-1))


class MessagePassingEncoder(nn.Module):
    """A PyG basic GNN (the encoder spec's ``pyg_model``: GraphSAGE, GCN, GAT, GIN) followed by
    ReLU and dropout.

    Input ``x [N, F]`` and ``edge_index [2, E]``; output ``[N, hidden]``.
    """

    def __init__(self, in_channels: int, config: ModelConfig):
        super().__init__()
        from torch_geometric.nn import models as pyg_models

        spec = config.spec
        cls = getattr(pyg_models, spec.pyg_model)
        kwargs = {"heads": config.heads} if spec.heads else {}
        self.gnn = cls(in_channels=in_channels, hidden_channels=config.hidden,
                       num_layers=config.num_layers, dropout=config.dropout, **kwargs)
        self._degree_normalised = spec.degree_normalised
        self.dropout = nn.Dropout(config.dropout)
        self.out_channels = config.hidden

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                num_sampled_nodes_per_hop: list[int] | None = None,
                num_sampled_edges_per_hop: list[int] | None = None) -> torch.Tensor:
        """With the per-hop counts of a NeighborLoader batch, PyG trims each layer to the nodes
        and edges later layers still need; the rows that remain (seeds first) are unchanged."""
        if num_sampled_nodes_per_hop is not None:
            h = self.gnn(x, edge_index, num_sampled_nodes_per_hop=num_sampled_nodes_per_hop,
                         num_sampled_edges_per_hop=num_sampled_edges_per_hop)
        else:
            h = self.gnn(x, edge_index)
        return self.dropout(torch.relu(h))

    @property
    def num_layers(self) -> int:
        return int(self.gnn.num_layers)

    @property
    def prenormalised(self) -> bool:
        """Whether layer-wise inference must feed edge weights normalised on the whole graph
        (GCN: the degrees of a 1-hop subgraph's outer nodes are not their graph degrees)."""
        return self._degree_normalised

    def normalised_edges(self, edge_index: torch.Tensor, num_nodes: int
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The edges and weights layer-wise inference samples from: ``(edge_index, None)``,
        except for GCN: the self-loop-augmented edges ``[2, E']`` and their symmetric
        normalisation ``[E']`` computed on the whole graph, as ``GCNConv`` does per forward."""
        if not self.prenormalised:
            return edge_index, None
        from torch_geometric.nn.conv.gcn_conv import gcn_norm

        conv = self.gnn.convs[0]
        ei, w = gcn_norm(edge_index, None, num_nodes, conv.improved, conv.add_self_loops,
                         conv.flow, torch.float32)
        return ei, w

    def inference_layer(self, layer: int, x: torch.Tensor, adj, batch_size: int) -> torch.Tensor:
        """Layer ``layer`` (0-based) on a 1-hop subgraph whose first ``batch_size`` nodes are the
        targets (all edges point at them); returns their rows ``[batch_size, hidden]``.

        PyG's ``BasicGNN.inference_per_layer`` in eval mode (the convolution, then activation /
        norm between layers; after the last layer the encoder's output ReLU), except that only
        the targets are computed: the convolution runs bipartite, sources -> targets
        (``conv((x, x[:batch_size]), edge_index, size)``), instead of over every node of the
        subgraph (each batch's 1-hop neighbourhood is ~100x its targets on a dense graph).
        GCN (see :attr:`prenormalised`) has no bipartite form: ``adj`` is then the weighted
        ``[batch_size, n]`` sparse adjacency (whole-graph normalisation) and the layer is
        ``lin(adj @ x) + bias``, the same linear map in the other order.
        """
        gnn = self.gnn
        conv = gnn.convs[layer]
        n = x.shape[0]
        if self.prenormalised:
            h = conv.lin(torch.sparse.mm(adj, x))
            if conv.bias is not None:
                h = h + conv.bias
        else:
            h = conv((x, x[:batch_size]), adj, size=(n, batch_size))
        if layer < self.num_layers - 1:
            if gnn.act is not None and gnn.act_first:
                h = gnn.act(h)
            if gnn.norms is not None:
                h = gnn.norms[layer](h)
            if gnn.act is not None and not gnn.act_first:
                h = gnn.act(h)
        else:
            h = self.dropout(torch.relu(h))
        return h
