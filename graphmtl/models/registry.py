"""One spec per encoder: everything the library needs to know about it, in one place.

Training, inference and the projection ask an encoder's :class:`EncoderSpec` (through
``ModelConfig.spec``) instead of comparing names: whether it passes messages or runs on
precomputed node inputs (and how those are computed), which PyG model it wraps, and whether the
layer trimming of sampled subgraphs is safe for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from graphmtl.errors import check
from graphmtl.models.encoders import MessagePassingEncoder, SIGNEncoder
from graphmtl.models.sign import sign_inputs

if TYPE_CHECKING:
    import torch

    from graphmtl.models.config import ModelConfig


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder of :class:`~graphmtl.models.MultiTaskGNN`.

    Attributes:
        name: the ``ModelConfig.encoder`` value.
        module: the encoder module, built as ``module(in_channels, config)``; its output is
            ``[N, module.out_channels]``.
        message_passing: runs on ``(x, edge_index)`` of (sub)graphs; ``False``: on precomputed
            per-node rows (``preprocess``), batched as rows, no neighbour sampling.
        pyg_model: the ``torch_geometric.nn.models`` class a message-passing encoder wraps.
        trimmable: PyG may trim a sampled subgraph layer by layer to the nodes later layers
            still need without changing the seeds' outputs (mean / sum / attention
            aggregation). Not GCN: trimming drops edges its degree normalisation counts.
        degree_normalised: normalises messages by both endpoints' degrees (GCN): a
            full-neighbourhood subgraph needs one more hop of edges for the seeds' outputs to
            equal the full-graph ones, and layer-wise inference needs weights normalised on the
            whole graph.
        heads: takes ``config.heads`` attention heads (GAT; its messages are ``heads`` times
            wider).
        self_loops: adds a self loop per node (one more message per node).
        preprocess: ``(x [N, F], edge_index [2, E], config) -> [N, F']`` the precomputed node
            inputs of an encoder without message passing (``None``: the inputs are ``x``).
        preprocess_fields: the ``ModelConfig`` fields ``preprocess`` depends on (they key its
            cache).
    """

    name: str
    module: type
    message_passing: bool
    pyg_model: str | None = None
    trimmable: bool = False
    degree_normalised: bool = False
    heads: bool = False
    self_loops: bool = False
    preprocess: Callable[[torch.Tensor, torch.Tensor, ModelConfig], torch.Tensor] | None = None
    preprocess_fields: tuple[str, ...] = ()


#: Every encoder, by name (the order of the CLI's choices).
ENCODER_SPECS: dict[str, EncoderSpec] = {spec.name: spec for spec in (
    EncoderSpec("sage", MessagePassingEncoder, True, pyg_model="GraphSAGE", trimmable=True),
    EncoderSpec("gcn", MessagePassingEncoder, True, pyg_model="GCN", degree_normalised=True,
                self_loops=True),
    EncoderSpec("gat", MessagePassingEncoder, True, pyg_model="GAT", trimmable=True, heads=True,
                self_loops=True),
    EncoderSpec("gin", MessagePassingEncoder, True, pyg_model="GIN", trimmable=True),
    EncoderSpec("sign", SIGNEncoder, False, preprocess=sign_inputs,
                preprocess_fields=("sign_hops",)),
)}

ENCODERS = tuple(ENCODER_SPECS)


def encoder_spec(name: str) -> EncoderSpec:
    """The spec of encoder ``name`` (a one-line error naming the known ones otherwise)."""
    check(name in ENCODER_SPECS,
          f"model encoder: unknown {name!r} (choose from {', '.join(ENCODERS)})")
    return ENCODER_SPECS[name]
