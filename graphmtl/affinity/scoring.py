"""Scores of every task of every subset at the subset solutions ŵ_k of Grad-TAG.

Two ways, one per form of the estimate (:data:`~graphmtl.affinity.estimator.MODES`):
:func:`score_subsets` evaluates the linearised model ``f0 + <z, ŵ_k>`` on the store's validation
rows (``offset``); :func:`score_subsets_network` evaluates the real network at ``θ0 + P ŵ_k`` on
every validation node (``reference``). Both are one batched computation over all subsets.
"""

from __future__ import annotations

import numpy as np
import torch

from graphmtl.affinity.blocks import BlockRunner, SubsetLayout, exact_softplus
from graphmtl.affinity.rows import SplitRows
from graphmtl.utils.threads import torch_threads


def score_subsets(val: SplitRows, M: np.ndarray, W: torch.Tensor, workers: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Linearised validation loss and F1 of every task of every subset.

    Args:
        val: validation rows of all ``n`` tasks.
        M: bool ``[m, n]`` membership.
        W: ``[m, d]`` subset solutions ŵ_k.

    Returns:
        ``(loss, f1)``, float64 ``[m, n]`` each, NaN where the task is not in the subset:
        ``loss[k, i]`` is the weighted mean BCE of task ``i``'s validation rows at logits
        ``f0 + ⟨z, ŵ_k⟩``; ``f1[k, i]`` thresholds those logits at 0 (weighted counts; NaN when
        the task has neither positive rows nor positive predictions). Tasks without validation
        rows score NaN.
    """
    Mt = torch.as_tensor(np.asarray(M, dtype=bool))
    m, n = Mt.shape
    lay = SubsetLayout.build(Mt, val.counts)
    W = W.to(val.dtype)
    Wg = W[lay.flat]
    runner = BlockRunner(workers or torch.get_num_threads())

    def block(blk):
        t, a, b = blk
        sl = val.task(t)
        u = torch.addmm(val.f0[sl, None], val.zblock(t), Wg[a:b].T)  # [r_t, m_t]
        y, om = val.y[sl, None], val.weight[sl]
        total = om.sum()
        loss = om @ (exact_softplus(u) - y * u) / total
        pred = (u > 0).to(u.dtype)
        tp = om @ (pred * y)
        fp = om @ (pred * (1 - y))
        fn = om @ ((1 - pred) * y)
        den = 2 * tp + fp + fn
        f1 = torch.where(den > 0, 2 * tp / torch.where(den > 0, den, 1), torch.nan)
        return loss, f1

    try:
        with torch_threads(1):
            out = runner.map(block, lay.blocks, [float(val.counts[t] * (b - a))
                                                 for t, a, b in lay.blocks])
    finally:
        runner.close()
    loss = np.full((m, n), np.nan)
    f1 = np.full((m, n), np.nan)
    flat = lay.flat.numpy()
    for (t, a, b), (lo, fo) in zip(lay.blocks, out):
        loss[flat[a:b], t] = lo.numpy()
        f1[flat[a:b], t] = fo.numpy()
    return loss, f1


def score_subsets_network(model, directions, graph, M: np.ndarray, W: torch.Tensor,
                          chunk: int = 32, device: str = "cpu"
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Validation AP and BCE of every task of every subset under the real network at
    ``θ0 + P ŵ_k``, all subsets as one batched computation.

    Args:
        model: the base model ``θ0`` (a :class:`~graphmtl.models.MultiTaskGNN` with one output
            per task of ``graph``).
        directions: the :class:`~graphmtl.projection.Directions` ``P`` of the store (over the
            parameters it projected).
        graph: the data; every task is scored on all its validation nodes.
        M: bool ``[m, n]`` membership.
        W: ``[m, d]`` the subset solutions.
        chunk: subsets evaluated at once (memory: ``chunk`` copies of the projected
            parameters and ``chunk × N_val × n`` logits).
        device: where the network runs.

    Returns:
        ``(ap, bce)``, float64 ``[m, n]`` each, NaN where the task is not in the subset (AP also
        NaN for a task without validation positives).

    The updates ``Δ_k = P ŵ_k`` of a chunk are stacked ``[B, *shape]`` per parameter and the
    model is evaluated by ``torch.func.functional_call`` under ``vmap`` over them — no loop over
    subsets in Python beyond the chunks.
    """
    import copy

    from torch.func import functional_call, vmap

    from graphmtl.models import node_inputs
    from graphmtl.training.metrics import average_precision_columns
    from graphmtl.utils.device import resolve_device

    dev = resolve_device(device)
    M = np.asarray(M, dtype=bool)
    m, n = M.shape
    model = copy.deepcopy(model).eval().to(dev)
    x = node_inputs(graph, model.config).to(dev)
    val_mask = graph.val_mask.to(dev)
    nodes = val_mask.any(1).nonzero().flatten()
    P = directions.matrix(torch.float32).to(dev)                          # [p, d]
    names = directions.names
    sizes = [int(np.prod(directions.shapes[k])) for k in names]
    base = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    if model.config.uses_message_passing:
        args = (x, graph.edge_index.to(dev))
    else:   # row-independent: only the validation nodes' rows are needed
        args = (x[nodes],)

    def logits(params):
        out = functional_call(model, ({**base, **params}, buffers), args)
        return out[nodes] if model.config.uses_message_passing else out

    y = graph.y.to(dev)[nodes].double()
    vm = val_mask[nodes]
    ap = np.full((m, n), np.nan)
    bce = np.full((m, n), np.nan)
    with torch.no_grad():
        for lo in range(0, m, chunk):
            hi = min(m, lo + chunk)
            delta = W[lo:hi].to(dev, torch.float32) @ P.T                  # [B, p]
            stacked = {}
            for name, part in zip(names, delta.split(sizes, dim=1)):
                stacked[name] = base[name] + part.view(hi - lo, *directions.shapes[name])
            u = vmap(logits)(stacked).double()                             # [B, N_val, n]
            B = hi - lo
            cols = u.permute(1, 0, 2).reshape(len(nodes), B * n)
            lab = y.repeat(1, B)
            msk = vm.repeat(1, B) & torch.from_numpy(M[lo:hi].reshape(-1)).to(dev)[None, :]
            ap[lo:hi] = average_precision_columns(cols, lab, msk).reshape(B, n).cpu().numpy()
            per = (torch.nn.functional.softplus(cols) - lab * cols) * msk
            count = msk.sum(0)
            bce[lo:hi] = torch.where(count > 0, per.sum(0) / count.clamp_min(1),
                                     torch.nan).reshape(B, n).cpu().numpy()
    ap[~M] = np.nan
    bce[~M] = np.nan
    return ap, bce

