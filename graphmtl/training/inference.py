"""Memory-bounded inference: embeddings, logits and metrics of many nodes on many tasks.

Message-passing encoders are evaluated in one of three ways (``method``):

- ``full_graph``: one forward pass over the whole graph, ``model(x, edge_index)``. Exact and
  fastest on small graphs, but PyG materialises one message per edge, ``E x width`` floats
  (11 GB for the 42M directed edges and 64 features of ``synthetic:preset=orkut500``).
- ``layerwise``: the same full-neighbourhood outputs, one layer at a time (PyG's layer-wise
  inference): every layer runs over ``NeighborLoader`` batches of 1-hop subgraphs
  (``num_neighbors=[-1]``) and its outputs ``[N', hidden]`` are kept for the next layer. Memory
  is ``O(N' x hidden)`` plus one batch, where ``N'`` is the receptive field of the requested
  nodes (the whole graph once that field covers more than half of it). Equal to ``full_graph``
  up to float rounding (summation order); GCN runs on weights normalised on the whole graph
  (:meth:`~graphmtl.models.encoders.MessagePassingEncoder.normalised_edges`), since the
  degrees inside a 1-hop subgraph are not the graph degrees.
- ``auto`` (default): ``full_graph`` when :func:`full_graph_bytes` is at most
  :data:`FULL_GRAPH_MAX_BYTES` (small graphs: their outputs are the same as before, bit for
  bit), else ``layerwise``.

With ``fanouts`` given (sampled evaluation), every batch of requested nodes runs on a sampled
subgraph instead (cheaper on dense graphs, but the outputs are those of a random neighbourhood:
metrics move by sampling noise; the docs/scale.md table measures how much).

``sign`` models are MLPs on precomputed rows: always row batches.

Metrics never hold two dense ``[M, n]`` float matrices: :func:`streaming_metrics` computes
them per block of tasks (at most :data:`METRIC_BLOCK_ELEMENTS` logits at a time) from the
``[M, hidden]`` embeddings and the head's rows; every metric is per task, so the result equals
the one-block computation up to the float rounding of the logits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.errors import check
from graphmtl.models import ModelConfig, MultiTaskGNN, node_inputs
from graphmtl.training.loader import hop_counts, make_loader
from graphmtl.training.metrics import TaskMetrics, compute_metrics
from graphmtl.utils.cache import cached_on
from graphmtl.utils.device import resolve_device
from graphmtl.utils.progress import progress_bar

METHODS = ("auto", "full_graph", "layerwise")

#: ``auto`` runs the whole graph at once when its estimated activations stay below this.
FULL_GRAPH_MAX_BYTES = 512 * 2**20

#: Most logits materialised at once by :func:`streaming_metrics` (ROC-AUC needs about 90 bytes
#: of temporaries per logit: ~750 MB per block).
METRIC_BLOCK_ELEMENTS = 2**23

#: A layer's receptive field is computed exactly while it covers at most this share of the
#: nodes; beyond, the layer runs on every node (bounding the bookkeeping by one pass over E).
RESTRICT_MAX_SHARE = 0.5


def full_graph_bytes(graph: MultiTaskGraph, config: ModelConfig, num_outputs: int = 0) -> int:
    """Estimated peak bytes of one full-graph forward pass: the per-edge messages of the widest
    layer (``E x width``, times ``heads`` for GAT, self loops included), every layer's output
    ``[N, hidden]`` and the ``[N, num_outputs]`` logits, in float32."""
    N, E = graph.num_nodes, int(graph.edge_index.shape[1])
    width = max(graph.num_features, config.hidden)
    spec = config.spec
    if spec.heads:
        width *= config.heads
    if spec.self_loops:
        E += N
    return 4 * (E * width + N * (graph.num_features + config.num_layers * config.hidden
                                 + num_outputs))


def resolve_method(method: str, graph: MultiTaskGraph, config: ModelConfig,
                   num_outputs: int = 0) -> str:
    """``full_graph`` or ``layerwise`` (see the module docstring for ``auto``)."""
    check(method in METHODS, f"inference method: unknown {method!r} (choose from "
                             f"{', '.join(METHODS)})")
    if method != "auto":
        return method
    small = full_graph_bytes(graph, config, num_outputs) <= FULL_GRAPH_MAX_BYTES
    return "full_graph" if small else "layerwise"


def _model_device(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Neighbour sampling from a fixed seed (``None``: torch's global generator, untouched)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


# ---------------------------------------------------------------------- layer-wise inference
def _one_hop_graph(model: MultiTaskGNN, graph: MultiTaskGraph):
    """``(data, sampler)`` for 1-hop full-neighbourhood batches: a ``Data`` without features
    (layers gather their inputs themselves) and its CSC ``NeighborSampler``, cached per graph."""
    enc = model.encoder
    kind = "gcn" if enc.prenormalised else "plain"

    def build():
        import warnings

        from torch_geometric.data import Data
        from torch_geometric.sampler import NeighborSampler

        ei, w = enc.normalised_edges(graph.edge_index, graph.num_nodes)
        data = Data(edge_index=ei, num_nodes=graph.num_nodes)
        if w is not None:
            data.edge_weight = w
        with warnings.catch_warnings():  # "without pyg-lib is deprecated": nothing to act on
            warnings.simplefilter("ignore")
            return data, NeighborSampler(data, num_neighbors=[-1])

    return cached_on([graph.edge_index], ("one_hop", kind), build)


def _receptive_field(colptr: torch.Tensor, row: torch.Tensor, nodes: torch.Tensor,
                     num_nodes: int) -> torch.Tensor | None:
    """Sorted ``nodes`` plus their in-neighbours, or ``None`` (= all nodes) when that would
    cover more than :data:`RESTRICT_MAX_SHARE` of the graph."""
    start = colptr[nodes]
    count = colptr[nodes + 1] - start
    total = int(count.sum())
    if total >= RESTRICT_MAX_SHARE * row.numel():
        return None
    offset = torch.repeat_interleave(start - (torch.cumsum(count, 0) - count), count)
    mark = torch.zeros(num_nodes, dtype=torch.bool)
    mark[nodes] = True
    mark[row[offset + torch.arange(total)]] = True
    out = mark.nonzero().flatten()
    return None if len(out) > RESTRICT_MAX_SHARE * num_nodes else out


def layerwise_embeddings(model: MultiTaskGNN, graph: MultiTaskGraph, nodes: torch.Tensor, *,
                         batch_size: int = 4096, device: torch.device | None = None,
                         progress: bool = False) -> torch.Tensor:
    """Encoder outputs ``[len(nodes), hidden]`` (CPU float32) with full neighbourhoods, one layer
    at a time over 1-hop ``NeighborLoader`` batches (see the module docstring).

    Args:
        model: a message-passing :class:`MultiTaskGNN` (put in eval mode here).
        graph: the data.
        nodes: int64 ``[M]`` node ids, any order, repeats allowed.
        batch_size: target nodes per 1-hop batch.
        device: where the layers run (default: the model's device); layer outputs are kept on
            the CPU.
    """
    from torch_geometric.loader import NeighborLoader

    enc = model.encoder
    device = _model_device(model) if device is None else device
    N, L = graph.num_nodes, enc.num_layers
    targets, back = torch.unique(nodes, return_inverse=True)
    if len(targets) == 0:
        return torch.empty(0, enc.out_channels)
    data, sampler = _one_hop_graph(model, graph)
    # Receptive fields, last layer first: layer l computes the outputs of fields[l + 1] from
    # those of fields[l]; fields[0] (the inputs x) is every node.
    fields: list[torch.Tensor | None] = [None] * (L + 1)
    fields[L] = targets
    for layer in range(L - 1, 0, -1):
        nxt = fields[layer + 1]
        fields[layer] = None if nxt is None else _receptive_field(sampler.colptr, sampler.row,
                                                                    nxt, N)
    h = graph.x
    pos: torch.Tensor | None = None           # row of each node in h (None: h is indexed by id)
    sizes = [N if f is None else len(f) for f in fields[1:]]
    bar = progress_bar(sum(-(-s // batch_size) for s in sizes), desc="inference",
                       enabled=progress, leave=False)
    with _eval_mode(model):
        for layer in range(L):
            out_nodes = fields[layer + 1]
            seeds = torch.arange(N) if out_nodes is None else out_nodes
            loader = NeighborLoader(data, num_neighbors=[-1], input_nodes=seeds,
                                    batch_size=batch_size, neighbor_sampler=sampler)
            out = None
            lo = 0
            for b in loader:
                n_id, bs = b.n_id, b.batch_size
                x_in = h[n_id] if pos is None else h[pos[n_id]]
                adj = b.edge_index
                if enc.prenormalised:
                    adj = _weighted_adj_t(adj, b.edge_weight, bs, len(n_id))
                rows = enc.inference_layer(layer, x_in.to(device), adj.to(device), bs).cpu()
                if out is None:
                    out = torch.empty(len(seeds), rows.shape[1], dtype=rows.dtype)
                out[lo:lo + bs] = rows
                lo += bs
                bar.update(1)
            h = out
            if out_nodes is None:
                pos = None
            else:
                pos = torch.full((N,), -1, dtype=torch.long)
                pos[out_nodes] = torch.arange(len(out_nodes))
    bar.close()
    return h[back]


def _weighted_adj_t(edge_index: torch.Tensor, weight: torch.Tensor, num_targets: int,
                    num_nodes: int) -> torch.Tensor:
    """The weighted adjacency ``[num_targets, num_nodes]`` (row = target) of a 1-hop batch,
    whose edges all point at its first ``num_targets`` nodes, as a torch CSR tensor."""
    import warnings

    from torch_geometric.utils import to_torch_csr_tensor

    with warnings.catch_warnings():   # "sparse CSR support is in beta", invariant checks
        warnings.simplefilter("ignore", UserWarning)
        return to_torch_csr_tensor(edge_index.flip(0), weight, size=(num_targets, num_nodes))


# ---------------------------------------------------------------------- embeddings / logits
@torch.no_grad()
def embed(model: MultiTaskGNN, graph: MultiTaskGraph,
          nodes: torch.Tensor | Sequence[int] | None = None, *,
          fanouts: Sequence[int] | None = None, batch_size: int = 4096, method: str = "auto",
          device: str | torch.device | None = None, seed: int | None = None,
          progress: bool = False) -> torch.Tensor:
    """Encoder outputs (the head's input) ``[M, hidden]`` of ``nodes`` (``None``: all), on CPU.

    Args:
        fanouts: sampled evaluation: neighbours per layer (see the module docstring); ``None``:
            full neighbourhoods by ``method``.
        batch_size: nodes per batch (layer-wise, sampled, ``sign`` rows).
        method: ``auto``, ``full_graph`` or ``layerwise``.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (default: the model's device).
        seed: seeds the neighbour sampling (``None``: torch's global generator).
    """
    x = node_inputs(graph, model.config)
    check(model.in_channels == x.shape[1],
          f"model expects {model.in_channels} input features but the data gives {x.shape[1]}")
    dev = _model_device(model) if device is None else resolve_device(device)
    nodes = torch.arange(graph.num_nodes) if nodes is None else torch.as_tensor(
        nodes, dtype=torch.long)
    enc = model.encoder
    with _eval_mode(model):
        if not model.config.uses_message_passing:
            return torch.cat([enc(x[ids].to(dev)).cpu() for ids in nodes.split(batch_size)]) \
                if len(nodes) else torch.empty(0, enc.out_channels)
        if fanouts is not None:
            return _sampled(model, graph, nodes, fanouts, batch_size, dev, seed, head=False)
        if resolve_method(method, graph, model.config) == "full_graph":
            return enc(x.to(dev), graph.edge_index.to(dev))[nodes.to(dev)].cpu()
        return layerwise_embeddings(model, graph, nodes, batch_size=batch_size, device=dev,
                                    progress=progress)


def _sampled(model: MultiTaskGNN, graph: MultiTaskGraph, nodes: torch.Tensor,
             fanouts: Sequence[int], batch_size: int, device: torch.device, seed: int | None,
             head: bool) -> torch.Tensor:
    """Seed rows of sampled-subgraph batches: only those rows pass the head, each batch's rows
    are copied to the CPU, so nothing of the subgraph outlives its batch."""
    cfg = model.config
    check(len(fanouts) == cfg.num_layers,
          f"eval fanouts: {len(fanouts)} values {list(fanouts)} given but the model has "
          f"{cfg.num_layers} message-passing layers")
    trim = cfg.spec.trimmable
    out = []
    with _seeded(seed):
        for b in make_loader(graph, nodes, list(fanouts), batch_size, x=graph.x):
            bs = b.batch_size
            kw = {}
            counts = hop_counts(b.edge_index, b.x.shape[0], bs, cfg.num_layers) if trim else None
            if counts is not None:
                kw = {"num_sampled_nodes_per_hop": counts[0],
                      "num_sampled_edges_per_hop": counts[1]}
            h = model.encoder(b.x.to(device), b.edge_index.to(device), **kw)[:bs]
            out.append((model.head(h) if head else h).cpu())
    width = model.num_tasks if head else model.encoder.out_channels
    return torch.cat(out) if out else torch.empty(0, width)


@torch.no_grad()
def predict_logits(model: MultiTaskGNN, graph: MultiTaskGraph,
                   nodes: torch.Tensor | Sequence[int] | None = None, *,
                   fanouts: Sequence[int] | None = None, batch_size: int = 4096,
                   method: str = "auto", device: str | torch.device | None = None,
                   seed: int | None = None) -> torch.Tensor:
    """Eval-mode logits ``[M, n]`` of ``nodes`` (``None``: all nodes, ``M = N``), on CPU.

    Definition (what the projection engine reproduces): with ``fanouts=None`` (default), full
    neighbourhoods — the logits are ``model(x, graph.edge_index)[nodes]`` with
    ``x = node_inputs(graph, model.config)`` (``graph.x``, or the SIGN hop features), computed
    by one full-graph pass when that is small and layer-wise otherwise (equal up to float
    rounding; see the module docstring). ``sign`` rows are computed in batches of
    ``batch_size``.

    With ``fanouts`` given, each batch of consecutive ``batch_size`` nodes runs on a sampled
    subgraph (neighbours drawn from torch's global generator, or from ``seed``) and gives
    ``model(batch.x, batch.edge_index)[:batch.batch_size]``.

    The result is ``[M, n]`` dense: to score many nodes on many tasks use :func:`evaluate`,
    which never materialises it.
    """
    x = node_inputs(graph, model.config)
    check(model.in_channels == x.shape[1],
          f"model expects {model.in_channels} input features but the data gives {x.shape[1]}")
    dev = _model_device(model) if device is None else resolve_device(device)
    nodes = torch.arange(graph.num_nodes) if nodes is None else torch.as_tensor(
        nodes, dtype=torch.long)
    with _eval_mode(model):
        if not model.config.uses_message_passing:
            out = [model(x[ids].to(dev)).cpu() for ids in nodes.split(batch_size)]
            return torch.cat(out) if out else torch.empty(0, model.num_tasks)
        if fanouts is not None:
            return _sampled(model, graph, nodes, fanouts, batch_size, dev, seed, head=True)
        if resolve_method(method, graph, model.config, model.num_tasks) == "full_graph":
            out = model(x.to(dev), graph.edge_index.to(dev))
            return out[nodes.to(dev)].cpu()
        h = layerwise_embeddings(model, graph, nodes, batch_size=batch_size, device=dev)
        return torch.cat([model.head(r.to(dev)).cpu() for r in h.split(batch_size)]) \
            if len(h) else torch.empty(0, model.num_tasks)


# ---------------------------------------------------------------------- streaming metrics
@dataclass
class NodeOutputs:
    """A model's outputs on ``M`` nodes, from which logits are formed one task block at a time.

    Exactly one of ``logits`` (``[M, n]``, when computed in one pass on a small graph) and
    ``h`` (``[M, hidden]`` embeddings; the block's logits are ``h W[cols]^T + b[cols]``) is set.
    """

    logits: torch.Tensor | None = None
    h: torch.Tensor | None = None
    weight: torch.Tensor | None = None   # [n, hidden]
    bias: torch.Tensor | None = None     # [n]

    @property
    def num_nodes(self) -> int:
        return int((self.logits if self.logits is not None else self.h).shape[0])

    def block(self, cols: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[M', len(cols)]`` of tasks ``cols`` (positions) at ``rows`` (default all)."""
        if self.logits is not None:
            out = self.logits[:, cols]
            return out if rows is None else out[rows]
        h = self.h if rows is None else self.h[rows]
        return torch.nn.functional.linear(h, self.weight[cols], self.bias[cols])


@torch.no_grad()
def node_outputs(model: MultiTaskGNN, graph: MultiTaskGraph, nodes: torch.Tensor, *,
                 fanouts: Sequence[int] | None = None, batch_size: int = 4096,
                 method: str = "auto", device: str | torch.device | None = None,
                 seed: int | None = None, progress: bool = False) -> NodeOutputs:
    """The outputs :func:`streaming_metrics` needs: full logits when the graph is small (the
    exact old path, bit for bit), else embeddings plus the head (memory ``O(M x hidden)``)."""
    nodes = torch.as_tensor(nodes, dtype=torch.long)
    n = model.num_tasks
    small_logits = len(nodes) * n <= METRIC_BLOCK_ELEMENTS
    if fanouts is None and small_logits and (
            not model.config.uses_message_passing
            or resolve_method(method, graph, model.config, n) == "full_graph"):
        return NodeOutputs(logits=predict_logits(model, graph, nodes, batch_size=batch_size,
                                                 method=method, device=device))
    h = embed(model, graph, nodes, fanouts=fanouts, batch_size=batch_size, method=method,
              device=device, seed=seed, progress=progress)
    return NodeOutputs(h=h, weight=model.head.weight.detach().cpu(),
                       bias=model.head.bias.detach().cpu())


def task_blocks(mask: torch.Tensor, max_elements: int = METRIC_BLOCK_ELEMENTS
                ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive blocks of tasks with the rows labelled in them: ``[(cols, rows), ...]``.

    A block grows while its dense logits (``rows x cols``) stay within ``max_elements`` and
    within twice the labelled pairs they hold, so sparse splits (each task labels a tenth of
    the nodes) are not scored over every node.

    Args:
        mask: bool ``[M, k]`` split membership.
    """
    M, k = mask.shape
    counts = mask.sum(0).tolist()
    blocks: list[tuple[torch.Tensor, torch.Tensor]] = []
    cols: list[int] = []
    union = torch.zeros(M, dtype=torch.bool)
    pairs = 0
    for t in range(k):
        grown = union | mask[:, t]
        size = int(grown.sum()) * (len(cols) + 1)
        if cols and (size > max_elements or size > 2 * (pairs + counts[t])):
            blocks.append((torch.tensor(cols), union.nonzero().flatten()))
            cols, pairs, grown = [], 0, mask[:, t].clone()
        cols.append(t)
        pairs += counts[t]
        union = grown
    if cols:
        blocks.append((torch.tensor(cols), union.nonzero().flatten()))
    return blocks


def streaming_metrics(outputs: NodeOutputs, y: torch.Tensor, mask: torch.Tensor,
                      task_names: Sequence[str], split: str = "test", *, with_ap: bool = True,
                      max_elements: int = METRIC_BLOCK_ELEMENTS) -> TaskMetrics:
    """:func:`~graphmtl.training.metrics.compute_metrics` over blocks of tasks.

    Args:
        outputs: the model's outputs on ``M`` nodes.
        y, mask: bool ``[M, k]`` labels and split membership (``k`` = the head's outputs).
        max_elements: most logits at once. ``M x k`` within it: one ``compute_metrics`` call;
            else blocks of :func:`task_blocks`, each scored on the rows labelled in it
            (unlabelled rows change no per-task metric), so the result equals one call on all
            logits up to the rounding of a block's logits.
    """
    M, k = mask.shape
    check(outputs.num_nodes == M and y.shape == mask.shape,
          f"metrics: outputs for {outputs.num_nodes} nodes, labels {tuple(y.shape)}, mask "
          f"{tuple(mask.shape)}")
    if M * k <= max_elements:
        return compute_metrics(outputs.block(torch.arange(k)), y, mask, task_names, split,
                               with_ap=with_ap)
    parts = []
    for cols, rows in task_blocks(mask, max_elements):
        sub = (rows[:, None], cols[None, :])
        parts.append(compute_metrics(outputs.block(cols, rows), y[sub], mask[sub],
                                     [task_names[i] for i in cols.tolist()], split,
                                     with_ap=with_ap))
    return TaskMetrics.concat(parts)


@torch.no_grad()
def evaluate(model: MultiTaskGNN, graph: MultiTaskGraph,
             tasks: str | Sequence[int | str] | None = None, split: str = "test", *,
             batch_size: int = 4096, with_ap: bool = True, fanouts: Sequence[int] | None = None,
             method: str = "auto", device: str | torch.device | None = None,
             seed: int | None = None, progress: bool = False) -> TaskMetrics:
    """Metrics of ``model`` on ``split`` for ``tasks`` (the graph tasks matching its outputs).

    Memory-bounded at any size: embeddings of the labelled nodes (layer-wise on large graphs),
    then metrics per block of tasks (:func:`streaming_metrics`).

    Args:
        model: a model with one output per selected task.
        graph: the data.
        tasks: the graph tasks the model's outputs stand for, in order (``None``: all tasks).
        split: ``train``, ``val`` or ``test``.
        fanouts, method, device, seed: as in :func:`embed`.
    """
    idx = graph.task_index(tasks)
    check(model.num_tasks == len(idx),
          f"model has {model.num_tasks} outputs but {len(idx)} tasks are selected "
          "(pass tasks= the model's task names)")
    mask = graph.mask(split)[:, idx]
    nodes = mask.any(1).nonzero().flatten()
    out = node_outputs(model, graph, nodes, fanouts=fanouts, batch_size=batch_size,
                       method=method, device=device, seed=seed, progress=progress)
    return streaming_metrics(out, graph.y[nodes[:, None], idx], mask[nodes],
                             [graph.task_names[i] for i in idx], split, with_ap=with_ap)
