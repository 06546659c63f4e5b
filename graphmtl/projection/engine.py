"""Projected gradients of every (node, task) by forward-mode differentiation.

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

import hashlib
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jvp, vmap

from graphmtl.errors import GraphMTLError, check
from graphmtl.projection.directions import Directions
from graphmtl.projection.store import (SHARD_DIR, STORE_SPLITS, ProjectionStore, ShardWriter,
                                       StoreWriter)
from graphmtl.utils import distributed as dist
from graphmtl.utils.config import config_from_dict, parse_fanouts
from graphmtl.utils.device import resolve_device, validate_device
from graphmtl.utils.io import atomic_write_json, read_json, stable_hash
from graphmtl.utils.progress import progress as progress_iter
from graphmtl.utils.progress import progress_bar

STRATEGIES = ("split", "full")

#: ``fanouts="auto"`` samples neighbourhoods on graphs with more directed edges than this.
AUTO_SAMPLE_MIN_EDGES = 4_000_000


@dataclass(frozen=True)
class ProjectionConfig:
    """How projected gradients are computed and which rows are stored.

    Args:
        dim: number of random directions ``d``.
        seed: seed of the directions and of the row sampling.
        params: projected parameters: ``all``, ``encoder``, ``head`` or ``re:<regex>``
            (see :func:`~graphmtl.projection.directions.select_parameters`).
        batch_size: seed nodes per forward-mode pass.
        direction_chunk: directions per ``vmap`` call (memory grows linearly with it).
        fanouts: neighbours sampled per layer for message-passing encoders; ``None`` takes full
            neighbourhoods (exact, deterministic). Sampling, when used, is seeded per batch index
            (``sha256(seed, batch)``), so a resumed run samples exactly as an uninterrupted one.
            ``"auto"`` (default): full neighbourhoods on graphs with at most
            :data:`AUTO_SAMPLE_MIN_EDGES` directed edges (``edge_index`` columns), else the
            trainer's default fanouts (``10, 5`` for two layers, ``10`` per layer otherwise);
            see :meth:`resolve`. On large graphs a full 2-hop neighbourhood of a 512-node batch
            is most of the graph (every batch then costs a pass over it).
        train_budget, val_budget: most rows stored per task in that split (``None``: all rows).
            See :func:`select_rows` for the exact rule.
        strategy: ``split`` (encoder jvp + closed-form head, default) or ``full``.
        device: where the forward-mode passes run (``cpu``, ``cuda``, ``cuda:N``, ``auto``);
            the store is the same up to float rounding, so it is not part of the store's key.
    """

    dim: int = 200
    seed: int = 0
    params: str = "all"
    batch_size: int = 512
    direction_chunk: int = 20
    fanouts: tuple[int, ...] | str | None = "auto"
    train_budget: int | None = None
    val_budget: int | None = None
    strategy: str = "split"
    device: str = "cpu"

    def __post_init__(self) -> None:
        check(self.dim >= 1, f"projection dim: must be >= 1, got {self.dim}")
        check(self.batch_size >= 1, f"projection batch_size: must be >= 1, got {self.batch_size}")
        check(self.direction_chunk >= 1,
              f"projection direction_chunk: must be >= 1, got {self.direction_chunk}")
        check(self.strategy in STRATEGIES,
              f"projection strategy: expected one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if isinstance(self.fanouts, str) and self.fanouts.strip() in ("auto", "full"):
            if self.fanouts.strip() == "full":
                object.__setattr__(self, "fanouts", None)
            else:
                object.__setattr__(self, "fanouts", "auto")
        elif self.fanouts is not None:
            object.__setattr__(self, "fanouts", parse_fanouts(self.fanouts, "projection fanouts"))
        object.__setattr__(self, "device", validate_device(self.device))
        for name in ("train_budget", "val_budget"):
            b = getattr(self, name)
            check(b is None or b >= 2, f"projection {name}: must be >= 2 or None, got {b}")

    def budget(self, split: str) -> int | None:
        return self.train_budget if split == "train" else self.val_budget

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(self.fanouts, tuple):
            d["fanouts"] = list(self.fanouts)
        return d

    def resolve(self, model: nn.Module, graph) -> "ProjectionConfig":
        """This config with ``fanouts="auto"`` replaced by what it means for ``model`` on
        ``graph`` (see the ``fanouts`` argument)."""
        if self.fanouts != "auto":
            return self
        config = getattr(model, "config", None)
        fanouts = None
        if getattr(config, "uses_message_passing", True) and \
                int(graph.edge_index.shape[1]) > AUTO_SAMPLE_MIN_EDGES:
            from graphmtl.training.config import default_fanouts

            fanouts = default_fanouts(int(getattr(config, "num_layers", 2)))
        return replace(self, fanouts=fanouts)

    def key_dict(self) -> dict:
        """What determines a store's content: :meth:`to_dict` without ``device`` (call on a
        resolved config)."""
        d = self.to_dict()
        d.pop("device")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "projection config") -> "ProjectionConfig":
        """From :meth:`to_dict`'s JSON; an unknown key or a wrongly typed value is an error."""
        return config_from_dict(cls, d, name)


# ---------------------------------------------------------------------------------- batch inputs
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
        from graphmtl.training.loader import make_loader, node_inputs

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
            if fanouts is None and getattr(config, "encoder", None) == "gcn":
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


# ---------------------------------------------------------------------------------- the kernel
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
    # Not GCN: trimming drops edges its degree normalisation counts, which changes the output.
    if trim and edge_index is not None and model.config.uses_message_passing and \
            model.config.encoder != "gcn":
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


# ---------------------------------------------------------------------------------- row selection
@dataclass(frozen=True)
class RowSelection:
    """The rows of one split, grouped by task (see :func:`select_rows`).

    Attributes:
        task_ptr: int64 ``[n + 1]``; node: int64 ``[R]``; task: int64 ``[R]``; y: uint8 ``[R]``;
        weight: float32 ``[R]``.
    """

    task_ptr: np.ndarray
    node: np.ndarray
    task: np.ndarray
    y: np.ndarray
    weight: np.ndarray


def select_rows(y: torch.Tensor, mask: torch.Tensor, budget: int | None, seed: int,
                split: str) -> RowSelection:
    """Choose the stored rows of each task in one split, up front and deterministically.

    Rule, per task ``t`` with ``pos`` positive and ``neg`` negative labelled nodes in the split:

    * ``budget is None`` or ``pos + neg <= budget``: every row, weight 1 (exact).
    * otherwise keep ``kp = min(pos, max(budget - neg, ceil(budget / 2)))`` positives and
      ``kn = budget - kp`` negatives, each a uniform sample without replacement (seeded by
      ``(seed, split, t)``), with weights ``pos / kp`` and ``neg / kn`` (inverse inclusion
      probability, so weighted sums are unbiased for the full sums). In words: all positives
      when they fill at most half the budget (the usual case for community tasks), the rest of
      the budget for negatives; never more than ``budget`` rows.

    Rows of a task are sorted by node id.
    """
    y_np = y.numpy()
    m_np = mask.numpy()
    n = y_np.shape[1]
    split_id = STORE_SPLITS.index(split)
    nodes, tasks, ys, weights = [], [], [], []
    ptr = np.zeros(n + 1, dtype=np.int64)
    for t in range(n):  # up front, O(N) per task; not a hot loop
        lab = np.flatnonzero(m_np[:, t])
        is_pos = y_np[lab, t]
        pos, neg = lab[is_pos], lab[~is_pos]
        if budget is None or len(lab) <= budget:
            keep = lab
            wt = np.ones(len(lab), dtype=np.float32)
        else:
            kp = min(len(pos), max(budget - len(neg), math.ceil(budget / 2)))
            kn = budget - kp
            rng = np.random.default_rng([seed, split_id, t])
            sp = np.sort(rng.choice(pos, size=kp, replace=False)) if kp < len(pos) else pos
            sn = np.sort(rng.choice(neg, size=kn, replace=False)) if kn < len(neg) else neg
            keep = np.concatenate([sp, sn])
            wt = np.concatenate([np.full(kp, len(pos) / max(kp, 1), np.float32),
                                 np.full(kn, len(neg) / max(kn, 1), np.float32)])
            order = np.argsort(keep, kind="stable")
            keep, wt = keep[order], wt[order]
        nodes.append(keep.astype(np.int64))
        tasks.append(np.full(len(keep), t, dtype=np.int64))
        ys.append(y_np[keep, t].astype(np.uint8))
        weights.append(wt)
        ptr[t + 1] = ptr[t] + len(keep)
    cat = (lambda a, dt: np.concatenate(a).astype(dt) if a else np.zeros(0, dt))
    return RowSelection(ptr, cat(nodes, np.int64), cat(tasks, np.int64), cat(ys, np.uint8),
                        cat(weights, np.float32))


# ---------------------------------------------------------------------------------- digests
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


# ---------------------------------------------------------------------------------- the projector
class GradientProjector:
    """Streams node batches through the forward-mode engine into a bounded, resumable store.

    ``project(model, graph, out_dir)`` selects the stored rows up front (:func:`select_rows`),
    then processes the nodes that own at least one row in fixed batches; after each batch the
    rows of its nodes are scattered into the store's memmaps, flushed, and ``progress.json`` is
    replaced atomically. A killed run restarted with the same inputs continues after the last
    recorded batch and produces a bit-identical store (every batch is a deterministic function of
    its index).

    Args:
        config: a :class:`ProjectionConfig`.
    """

    def __init__(self, config: ProjectionConfig | None = None):
        self.config = config or ProjectionConfig()

    def directions(self, model: nn.Module) -> Directions:
        """The projection directions of this config for ``model``."""
        return Directions.for_model(model, self.config.dim, self.config.seed, self.config.params)

    def apply_direction(self, model: nn.Module, w: torch.Tensor | Sequence[float]) -> nn.Module:
        """A copy of ``model`` at ``theta0 + P w``."""
        return self.directions(model).apply(model, w)

    def _working_model(self, model: nn.Module) -> nn.Module:
        """``model`` itself on the CPU, else a copy on the configured device (this rank's GPU
        under torchrun)."""
        dev = dist.rank_device(resolve_device(self.config.device))
        if next(model.parameters()).device == dev:
            return model
        import copy

        return copy.deepcopy(model).to(dev)

    def project_nodes(self, model: nn.Module, graph, nodes: torch.Tensor | Sequence[int],
                      progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f0 [m, n], z [m, n, d])`` for the given nodes, in memory (no store)."""
        cfg = self.config.resolve(model, graph)
        dirs = self.directions(model)
        work = self._working_model(model)
        batches = NodeBatches(model, graph, torch.as_tensor(nodes), cfg.batch_size, cfg.fanouts,
                              cfg.seed)
        f0s, zs = [], []
        for x, ei, B in progress_iter(batches, desc="projecting", enabled=progress):
            f0, z = project_batch(work, x, ei, B, dirs, cfg.direction_chunk, cfg.strategy)
            f0s.append(f0)
            zs.append(z)
        return torch.cat(f0s), torch.cat(zs)

    @staticmethod
    def _check_existing(out: Path, run_key: str, resume: bool, world: int) -> tuple[bool, int]:
        """``(finished, batches_done)`` for the store already in ``out`` (run by rank 0):
        removes it when not resuming, refuses one with other inputs."""
        progress_file = out / "progress.json"
        if (out / "manifest.json").is_file() and not resume:
            # Start over: remove this store's own files only (nothing else in the directory).
            for f in [*out.glob("*.npy"), out / "manifest.json", progress_file]:
                if f.name == "manifest.json" or f.name == "progress.json" or \
                        f.name.split(".")[0] in STORE_SPLITS:
                    f.unlink(missing_ok=True)
            _remove_shards(out)
        if not (out / "manifest.json").is_file():
            return False, 0
        old = read_json(out / "manifest.json")
        if old.get("run_key") != run_key:
            raise GraphMTLError(
                f"{out}: holds a projection with different inputs or settings "
                "(model, data, dim, seed, params, budgets); choose another output directory")
        if old.get("complete"):
            return True, 0
        if old.get("shards", 1) != world:
            raise GraphMTLError(
                f"{out}: unfinished projection sharded over {old.get('shards', 1)} process(es), "
                f"now {world}; resume with as many, or pass --restart")
        done = 0
        if resume and progress_file.is_file():
            done = int(read_json(progress_file).get("batches_done", 0))
        return False, done

    def project(self, model: nn.Module, graph, out_dir: str | os.PathLike, resume: bool = True,
                progress: bool = True, manifest_extra: dict[str, Any] | None = None,
                stop_after: int | None = None) -> ProjectionStore | None:
        """Project every stored row of ``graph`` at ``model`` into the store ``out_dir``.

        Inside a ``torchrun`` process group of ``W`` ranks (:mod:`graphmtl.utils.distributed`)
        rank ``r`` projects the ``r``-th contiguous share of the node batches into its own
        shard (``out_dir/shards/<r>-of-<W>/``, resumable per rank); rank 0 writes the row
        metadata and the manifest, and :class:`ProjectionStore` reads the shards as one store.
        Every batch is a deterministic function of its index, so the store equals the
        one-process store bit for bit (on the same hardware and thread count). ``out_dir`` must
        be visible to every rank (one machine, or a shared file system).

        Args:
            model: trained :class:`~graphmtl.models.MultiTaskGNN` (``n`` outputs = graph tasks).
            graph: :class:`~graphmtl.data.MultiTaskGraph`.
            out_dir: store directory.
            resume: continue a matching unfinished store, or return a matching finished one
                (``False``: delete the store files in ``out_dir`` and start over).
            progress: show a tqdm bar with ETA.
            manifest_extra: more manifest entries (e.g. the checkpoint file's sha256).
            stop_after: process at most this many batches and return ``None`` (for tests).

        Returns:
            The finished :class:`~graphmtl.projection.store.ProjectionStore`.
        """
        cfg = self.config.resolve(model, graph)
        out = Path(out_dir)
        rank, world = dist.rank_world()
        check(model.num_tasks == graph.num_tasks,
              f"model has {model.num_tasks} task outputs, the data has {graph.num_tasks} tasks")
        dirs = self.directions(model)
        manifest = {
            "seed": cfg.seed, "params": cfg.params, "param_names": dirs.names,
            "num_params": dirs.num_params, "directions": dirs.to_dict()["scheme"],
            "model_sha256": model_digest(model), "data_sha256": labelled_graph_digest(graph),
            "budgets": {"train": cfg.train_budget, "val": cfg.val_budget},
            "row_rule": "all rows if they fit the budget; else all positives up to half the "
                        "budget, the rest negatives, uniform per class; weight = class count / "
                        "kept count",
            "task_names": list(graph.task_names), "config": cfg.key_dict(),
            "encoder": getattr(getattr(model, "config", None), "encoder", None),
            **(manifest_extra or {}),
        }
        run_key = stable_hash({k: manifest[k] for k in ("model_sha256", "data_sha256", "config",
                                                         "param_names", "task_names")}, 32)
        manifest["run_key"] = run_key
        manifest["device"] = str(cfg.device)
        if world > 1:
            manifest["shards"] = world

        progress_file = out / "progress.json"
        done = 0
        finished, error = False, None
        if rank == 0:
            try:
                finished, done = self._check_existing(out, run_key, resume, world)
            except GraphMTLError as e:
                error = str(e)
        finished, error = dist.broadcast_object((finished, error))
        if error is not None:
            raise GraphMTLError(error)
        if finished:
            return ProjectionStore(out)

        selections = {s: select_rows(graph.y, graph.mask(s), cfg.budget(s), cfg.seed, s)
                      for s in STORE_SPLITS}
        nodes = np.unique(np.concatenate([selections[s].node for s in STORE_SPLITS]))
        pos_of = np.full(graph.num_nodes, -1, dtype=np.int64)
        pos_of[nodes] = np.arange(len(nodes))
        order, row_pos = {}, {}
        for s in STORE_SPLITS:
            rp = pos_of[selections[s].node]
            order[s] = np.argsort(rp, kind="stable")
            row_pos[s] = rp[order[s]]
        batches = NodeBatches(model, graph, torch.from_numpy(nodes), cfg.batch_size, cfg.fanouts,
                              cfg.seed)
        total = len(batches)

        writer = None
        if rank == 0:
            writer = StoreWriter(out, {s: selections[s].task_ptr for s in STORE_SPLITS}, cfg.dim,
                                 manifest, values=world == 1)
            # Row-level metadata is fixed by the selection: (re)write it, identical on resume.
            for s in STORE_SPLITS:
                sel = selections[s]
                writer.arrays[(s, "node")][:] = sel.node
                writer.arrays[(s, "y")][:] = sel.y
                writer.arrays[(s, "weight")][:] = sel.weight
            writer.flush()
        dist.barrier()

        # This process's share: every batch in one process, a contiguous range per rank.
        lo_b, hi_b = dist.shard_range(total, rank, world)
        if world > 1:
            shard_rows = {}
            lo_n, hi_n = (min(b * cfg.batch_size, len(nodes)) for b in (lo_b, hi_b))
            for s in STORE_SPLITS:
                a, b_ = np.searchsorted(row_pos[s], [lo_n, hi_n])
                shard_rows[s] = np.sort(order[s][a:b_])
            target = ShardWriter(out, rank, world, shard_rows, cfg.dim, run_key)
            progress_file = target.progress_file
            done = target.batches_done if resume else 0
        else:
            target = writer
            shard_rows = None
        done = min(done, hi_b - lo_b)
        if done == 0:
            atomic_write_json(progress_file, {"batches_done": 0, "num_batches": hi_b - lo_b,
                                              "run_key": run_key})
        work = self._working_model(model)
        bar = progress_bar(hi_b - lo_b, initial=done, enabled=progress and rank == 0,
                           desc=f"projecting d={cfg.dim}"
                           + (f" (rank 0 of {world})" if world > 1 else ""))
        for i in range(lo_b + done, hi_b):
            if stop_after is not None and i - lo_b - done >= stop_after:
                bar.close()
                return None
            x, ei, B = batches[i]
            f0, z = project_batch(work, x, ei, B, dirs, cfg.direction_chunk, cfg.strategy)
            lo, hi = batches.span(i)
            for s in STORE_SPLITS:
                a, b_ = np.searchsorted(row_pos[s], [lo, hi])
                rows = order[s][a:b_]
                if len(rows) == 0:
                    continue
                sel = selections[s]
                local = torch.from_numpy(row_pos[s][a:b_] - lo)
                task = torch.from_numpy(sel.task[rows])
                srt = np.argsort(rows, kind="stable")  # write in row order: sequential pages
                rows, local, task = rows[srt], local[srt], task[srt]
                if shard_rows is not None:
                    rows = np.searchsorted(shard_rows[s], rows)
                target.arrays[(s, "z")][rows] = z[local, task].numpy()
                target.arrays[(s, "f0")][rows] = f0[local, task].numpy()
            target.flush()
            atomic_write_json(progress_file, {"batches_done": i + 1 - lo_b,
                                              "num_batches": hi_b - lo_b, "run_key": run_key})
            bar.update(1)
        bar.close()
        if world == 1:
            return writer.finalize()
        target.flush()
        dist.barrier()
        if rank == 0:
            writer.finalize()
        dist.barrier()
        return ProjectionStore(out)


def _remove_shards(out: Path) -> None:
    import shutil

    shards = out / SHARD_DIR
    if shards.is_dir():
        shutil.rmtree(shards)

