"""The per-node inputs of a model: ``graph.x``, or its encoder's precomputed features."""

from __future__ import annotations

import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.models.config import ModelConfig
from graphmtl.utils.cache import cached_on


def node_inputs(graph: MultiTaskGraph, config: ModelConfig) -> torch.Tensor:
    """The model's per-node input ``[N, F']``: ``graph.x`` for message-passing encoders, else
    the encoder's precomputed features (``sign``: the hop features ``[N, (sign_hops + 1) F]``),
    computed once per graph tensors (:func:`~graphmtl.utils.cache.cached_on`)."""
    spec = config.spec
    if spec.preprocess is None:
        return graph.x
    key = (spec.name, *(getattr(config, f) for f in spec.preprocess_fields))
    return cached_on([graph.x, graph.edge_index], key,
                     lambda: spec.preprocess(graph.x, graph.edge_index.contiguous(), config))
