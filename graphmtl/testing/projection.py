"""Reference and diagnostic computations for the projection (tests and benchmarks).

:func:`reverse_mode_projection` is the textbook ``z = J P`` with the dense ``P`` (what the
forward-mode kernel avoids); :func:`linearization_error` and :func:`linearization_error_between`
measure how well the linearised model ``f0 + <z, w>`` predicts the real one at a moved point.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jvp

from graphmtl.errors import check
from graphmtl.projection.directions import Directions
from graphmtl.projection.kernel import project_batch


def reverse_mode_projection(model: nn.Module, x: torch.Tensor, edge_index: torch.Tensor | None,
                            num_seeds: int, directions: Directions) -> torch.Tensor:
    """``z`` by reverse mode: the full Jacobian ``[B, n, p]`` of the seeds' logits, times the
    dense ``P``. Memory ``B * n * p``: for tests and small models only."""
    from torch.func import jacrev

    model.eval()
    B = int(num_seeds)
    params = {k: v.detach() for k, v in model.named_parameters()}
    names = directions.names
    frozen = {**{k: v for k, v in params.items() if k not in names},
              **{k: v.detach() for k, v in model.named_buffers()}}

    def logits(p):
        return functional_call(model, {**frozen, **p}, (x, edge_index))[:B]

    jac = jacrev(logits)({k: params[k] for k in names})        # {name: [B, n, *shape]}
    flat = torch.cat([jac[k].reshape(jac[k].shape[0], jac[k].shape[1], -1) for k in names], dim=2)
    return flat @ directions.matrix()


def linearization_error(model: nn.Module, x: torch.Tensor, edge_index: torch.Tensor | None,
                        num_seeds: int, directions: Directions, w: torch.Tensor,
                        f0: torch.Tensor | None = None, z: torch.Tensor | None = None
                        ) -> dict[str, float]:
    """How well ``f0 + <z, w>`` predicts the real model at ``theta0 + P w`` on a batch.

    Args:
        w: ``[d]`` step in projection coordinates.
        f0, z: from :func:`project_batch` (computed if not given).

    Returns:
        ``rel_to_change``: ``||f_lin - f_w|| / ||f_w - f0||`` (0 for an exact linear model; small
        for small ``w``); ``rel_to_logit``: ``||f_lin - f_w|| / ||f_w||``; ``max_abs``;
        ``change_norm``: ``||f_w - f0||``.
    """
    if f0 is None or z is None:
        f0, z = project_batch(model, x, edge_index, num_seeds, directions)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1)
    f_lin = f0 + z @ w
    moved = directions.apply(model, w).eval()
    with torch.no_grad():
        f_w = moved(x, edge_index)[:num_seeds]
    err = (f_lin - f_w).double()
    change = (f_w - f0).double()
    return {"rel_to_change": float(err.norm() / change.norm().clamp_min(1e-30)),
            "rel_to_logit": float(err.norm() / f_w.double().norm().clamp_min(1e-30)),
            "max_abs": float(err.abs().max()), "change_norm": float(change.norm())}


def linearization_error_between(model0: nn.Module, model1: nn.Module, x: torch.Tensor,
                                edge_index: torch.Tensor | None, num_seeds: int
                                ) -> dict[str, float]:
    """The linearisation check for a real parameter change (e.g. a fine-tuned model).

    With ``Delta = theta1 - theta0`` (every parameter), compares ``f0 + J Delta`` (one exact
    jvp along ``Delta``, no projection) with ``f_theta1`` on the first ``num_seeds`` nodes.
    Returns the same keys as :func:`linearization_error`.
    """
    model0.eval()
    model1.eval()
    p0 = {k: v.detach() for k, v in model0.named_parameters()}
    p1 = dict(model1.named_parameters())
    check(p0.keys() == p1.keys() and all(p0[k].shape == p1[k].shape for k in p0),
          "linearization check: the two models have different parameters")
    delta = {k: (p1[k].detach() - p0[k]) for k in p0}
    buffers = {k: v.detach() for k, v in model0.named_buffers()}

    def logits(p):
        return functional_call(model0, {**buffers, **p}, (x, edge_index))[:num_seeds]

    f0, jd = jvp(logits, (p0,), (delta,))
    with torch.no_grad():
        f1 = model1(x, edge_index)[:num_seeds]
    err = (f0 + jd - f1).double()
    change = (f1 - f0).double()
    return {"rel_to_change": float(err.norm() / change.norm().clamp_min(1e-30)),
            "rel_to_logit": float(err.norm() / f1.double().norm().clamp_min(1e-30)),
            "max_abs": float(err.abs().max()), "change_norm": float(change.norm())}

