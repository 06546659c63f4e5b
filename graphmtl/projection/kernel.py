"""The forward-mode kernel: base logits and projected gradients of one batch of seed nodes.

For a trained model ``f_theta0`` and random directions ``P = [P_1 .. P_d]`` (see
:mod:`graphmtl.projection.directions`),

    z_t(v)_k = <grad_theta f_t(v), P_k> = d/ds f_t(v; theta0 + s P_k) at s = 0,

a Jacobian-vector product. One ``torch.func.jvp`` pass along ``P_k`` gives coordinate ``k`` for
every node of a batch and every task at once; ``torch.func.vmap`` batches a chunk of directions.

The ``split`` strategy (default) uses that the head is linear, ``f(v) = W h(v) + b``:

    z_t(v) = W[t] . (J_h(v) P_enc)  +  P_W[t]^T h(v) + P_b[t]

so forward mode only runs through the encoder (a hidden-sized tangent per direction instead of an
``n``-sized one), and the head's part is a closed-form contraction. The ``full`` strategy runs the
jvp through the whole model (kept for comparison; both agree to float32 round-off).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jvp, vmap

from graphmtl.errors import check
from graphmtl.projection.config import STRATEGIES
from graphmtl.projection.directions import Directions


def project_batch(model: nn.Module, x: torch.Tensor, edge_index: torch.Tensor | None,
                  num_seeds: int, directions: Directions, direction_chunk: int = 20,
                  strategy: str = "split", trim: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Base logits and projected gradients of the first ``num_seeds`` nodes, for every task.

    Args:
        model: a :class:`~graphmtl.models.MultiTaskGNN` (put in eval mode here: no dropout).
        x, edge_index: model input (a sampled subgraph, or SIGN feature rows with ``None``).
        num_seeds: ``B``; outputs are for rows ``0:B`` of the model output.
        directions: the projection (its parameter names must be parameters of ``model``).
        direction_chunk: directions per vmapped jvp.
        strategy: ``split`` or ``full`` (see the module docstring).
        trim: for a ``NeighborLoader`` subgraph, let PyG trim every layer to the nodes later
            layers still need (as the trainer does); the seeds' outputs are unchanged, the
            tangents of the dropped rows are never computed. ``split`` only, and not GCN
            (trimming would change its degree normalisation); subgraphs without the hop-by-hop
            layout are run untrimmed.

    Returns:
        ``(f0, z)``: float32 ``[B, n]`` base logits and ``[B, n, d]`` projected gradients
        ``z[b, t] = P^T grad_theta f_t(v_b)``.
    """
    check(strategy in STRATEGIES, f"projection strategy: unknown {strategy!r}")
    model.eval()
    B = int(num_seeds)
    dev = next(model.parameters()).device
    if x.device != dev:
        x = x.to(dev)
        edge_index = None if edge_index is None else edge_index.to(dev)
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    missing = [n for n in directions.names if n not in params]
    check(not missing, f"projection: the model has no parameter {missing[0]!r}" if missing else "")
    d = directions.dim
    args = (x, edge_index)

    if strategy == "full":
        names = directions.names
        frozen = {**buffers, **{k: v for k, v in params.items() if k not in names}}
        primal = {k: params[k] for k in names}

        def logits(p):
            return functional_call(model, {**frozen, **p}, args)[:B]

        with torch.no_grad():
            f0 = logits(primal)
        z = torch.empty(B, f0.shape[1], d, device=dev)
        for lo, hi in directions.chunks(direction_chunk):
            tangents = {k: v.to(dev) for k, v in directions.chunk(lo, hi).items()}
            _, dout = vmap(lambda t: jvp(logits, (primal,), (t,)), out_dims=(None, 0))(tangents)
            z[:, :, lo:hi] = dout.permute(1, 2, 0)
        return f0.cpu(), z.cpu()

    enc_names = [n for n in directions.names if not n.startswith("head.")]
    head_names = [n for n in directions.names if n.startswith("head.")]
    W, b = params["head.weight"], params["head.bias"]
    encoder = model.encoder
    enc_frozen = {k[len("encoder."):]: v for k, v in {**params, **buffers}.items()
                  if k.startswith("encoder.") and k not in enc_names}
    enc_primal = {k[len("encoder."):]: params[k] for k in enc_names}

    enc_args = args
    # Only where trimming keeps the seeds' outputs (not GCN: see EncoderSpec.trimmable).
    if trim and edge_index is not None and model.config.spec.trimmable:
        from graphmtl.training.loader import hop_counts

        counts = hop_counts(edge_index, x.shape[0], B, model.config.num_layers)
        if counts is not None:
            enc_args = (x, edge_index, counts[0], counts[1])

    def embed(p):
        return functional_call(encoder, {**enc_frozen, **p}, enc_args)[:B]

    with torch.no_grad():
        h = embed(enc_primal)                                   # [B, H]
        f0 = torch.addmm(b, h, W.T)                              # [B, n]
    z = torch.zeros(B, W.shape[0], d, device=dev)
    for lo, hi in directions.chunks(direction_chunk):
        if enc_names:
            tangents = {k[len("encoder."):]: directions.block(k, lo, hi).to(dev)
                        for k in enc_names}
            _, dh = vmap(lambda t: jvp(embed, (enc_primal,), (t,)), out_dims=(None, 0))(tangents)
            # Contract the hidden-sized tangent with the head for all tasks at once.
            z[:, :, lo:hi] += torch.einsum("kbj,tj->btk", dh, W)
        if "head.weight" in head_names:
            PW = directions.block("head.weight", lo, hi).to(dev)       # [c, n, H]
            z[:, :, lo:hi] += torch.einsum("bj,ktj->btk", h, PW)
        if "head.bias" in head_names:
            # [n, c] broadcast over B
            z[:, :, lo:hi] += directions.block("head.bias", lo, hi).to(dev).T
    return f0.cpu(), z.cpu()
