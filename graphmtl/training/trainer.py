"""Training a multitask GNN on any subset of a graph's tasks.

One :class:`Trainer` serves every stage: the base model on all tasks, subset models for the
trained-affinity baselines, fine-tuning a subset from the base model (``init_from``), and one
model per task group.

Determinism: the initial weights come from ``seed``; before epoch ``e`` torch's global generator
is re-seeded from ``(seed, e)``, so the shuffling order, the neighbour samples and the dropout
masks of an epoch depend only on ``(seed, e)``. Resuming from the checkpoint written after epoch
``e`` therefore continues exactly like the uninterrupted run. The caller's global RNG state is
restored when ``fit`` returns.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.errors import check
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.training.checkpoint import (Checkpoint, load_checkpoint, save_checkpoint,
                                          task_digests)
from graphmtl.training.config import TrainConfig, resolve_fanouts
from graphmtl.training.loader import (graph_digest, hop_counts, inference_loader, make_loader,
                                      node_inputs)
from graphmtl.training.loss import masked_bce
from graphmtl.training.metrics import TaskMetrics, compute_metrics
from graphmtl.utils.text import preview

BEST_NAME = "model.pt"   # best weights (what later stages load)
LAST_NAME = "last.pt"    # last epoch + optimizer + bookkeeping (what --resume loads)

# Fields of TrainConfig that may change between an interrupted run and its resumption.
_RESUME_FREE = {"epochs", "num_workers", "eval_batch_size", "num_threads"}


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        model: the best model (by the validation ``metric``), in eval mode.
        task_names: names of the model's outputs, in order.
        task_index: their positions in the graph, int64 ``[k]``.
        history: one dict per epoch: ``epoch`` (1-based), ``train_loss`` and, on evaluation
            epochs, ``val_<metric>``.
        best_epoch: epoch (1-based) of the kept weights.
        val_metrics: all validation metrics of the kept weights.
        timings: seconds spent (``setup_s``, ``train_s``, ``eval_s``, ``total_s``) and
            throughput (``seed_nodes_per_s``, ``pairs_per_s``) of the training epochs.
        stopped_early: whether patience ran out before ``epochs``.
        checkpoint_path: ``out_dir/model.pt`` when ``out_dir`` was given.
    """

    model: MultiTaskGNN
    task_names: list[str]
    task_index: torch.Tensor
    history: list[dict[str, float]]
    best_epoch: int
    val_metrics: TaskMetrics
    timings: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    checkpoint_path: Path | None = None


# ---------------------------------------------------------------------- inference
@torch.no_grad()
def predict_logits(model: MultiTaskGNN, graph: MultiTaskGraph,
                   nodes: torch.Tensor | Sequence[int] | None = None, *,
                   fanouts: Sequence[int] | None = None, batch_size: int = 4096) -> torch.Tensor:
    """Eval-mode logits ``[M, n]`` of ``nodes`` (``None``: all nodes, ``M = N``).

    Definition (what the projection engine reproduces): with ``fanouts=None`` (default), full
    neighbourhoods — the logits are ``model(x, graph.edge_index)[nodes]``, one full-graph pass
    in eval mode, with ``x = node_inputs(graph, model.config)`` (``graph.x``, or the SIGN hop
    features). For SAGE / GAT / GIN, a :func:`~graphmtl.training.loader.inference_loader` batch
    with all neighbours (``fanouts=[-1] * num_layers``) gives the same logits up to float
    rounding; GCN differs there, because a sampled subgraph changes its degree normalisation.
    ``sign`` rows are computed in batches of ``batch_size`` (row-independent in eval mode).

    With ``fanouts`` given, each batch of :func:`inference_loader` (consecutive ``batch_size``
    seeds, neighbours sampled from torch's global generator) gives
    ``model(batch.x, batch.edge_index)[:batch.batch_size]``.
    """
    x = node_inputs(graph, model.config)
    check(model.in_channels == x.shape[1],
          f"model expects {model.in_channels} input features but the data gives {x.shape[1]}")
    if nodes is not None:
        nodes = torch.as_tensor(nodes, dtype=torch.long)
    was_training = model.training
    model.eval()
    try:
        if model.config.uses_message_passing and fanouts is None:
            out = model(x, graph.edge_index)
            return out if nodes is None else out[nodes]
        loader = inference_loader(graph, model.config, nodes, batch_size, fanouts)
        out = [model(b.x, b.edge_index)[:b.batch_size] for b in loader]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, model.num_tasks)


def evaluate(model: MultiTaskGNN, graph: MultiTaskGraph,
             tasks: str | Sequence[int | str] | None = None, split: str = "test", *,
             batch_size: int = 4096, with_ap: bool = True) -> TaskMetrics:
    """Metrics of ``model`` on ``split`` for ``tasks`` (the graph tasks matching its outputs).

    Args:
        model: a model with one output per selected task.
        graph: the data.
        tasks: the graph tasks the model's outputs stand for, in order (``None``: all tasks).
        split: ``train``, ``val`` or ``test``.
    """
    idx = graph.task_index(tasks)
    check(model.num_tasks == len(idx),
          f"model has {model.num_tasks} outputs but {len(idx)} tasks are selected "
          "(pass tasks= the model's task names)")
    mask = graph.mask(split)[:, idx]
    nodes = mask.any(1).nonzero().flatten()
    logits = predict_logits(model, graph, nodes, batch_size=batch_size)
    return compute_metrics(logits, graph.y[nodes][:, idx], mask[nodes],
                           [graph.task_names[i] for i in idx], split, with_ap=with_ap)


# ---------------------------------------------------------------------- trainer
def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + 7919 * (epoch + 1)) % (2**63 - 1)


@contextlib.contextmanager
def _num_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _better(value: float, best: float | None, higher: bool) -> bool:
    if math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value > best if higher else value < best


class Trainer:
    """Trains :class:`~graphmtl.models.MultiTaskGNN` models on task subsets of a graph.

    Args:
        model_config: architecture (default :class:`ModelConfig`).
        train_config: optimisation (default :class:`TrainConfig`).
    """

    def __init__(self, model_config: ModelConfig | None = None,
                 train_config: TrainConfig | None = None):
        self.model_config = model_config or ModelConfig()
        self.train_config = train_config or TrainConfig()
        if self.model_config.uses_message_passing:
            resolve_fanouts(self.train_config.fanouts, self.model_config.num_layers)

    # ------------------------------------------------------------------ public
    def fit(self, graph: MultiTaskGraph, tasks: str | Sequence[int | str] | None = None, *,
            init_from: str | Path | Checkpoint | None = None, out_dir: str | Path | None = None,
            resume: bool = False, progress: bool = True) -> TrainResult:
        """Train a model with one output per selected task.

        Args:
            graph: the data.
            tasks: ``None`` / ``"all"``, or task names / positions (the model's output order).
            init_from: a checkpoint (path or loaded) to warm start from: the encoder and, for
                every selected task, its head row (matched by task name) are copied. It must have
                the same architecture, the same graph (``data_hash``) and every selected task.
            out_dir: if given, ``last.pt`` is written after every epoch and ``model.pt`` (the best
                weights) at the end.
            resume: continue from ``out_dir/last.pt`` if it exists (same data, tasks and
                settings; ``epochs`` may grow).
            progress: show a tqdm bar over epochs.
        """
        t_start = time.perf_counter()
        mc, tc = self.model_config, self.train_config
        idx = graph.task_index(tasks)
        names = [graph.task_names[i] for i in idx]
        out_dir = None if out_dir is None else Path(out_dir)
        with _num_threads(tc.num_threads), torch.random.fork_rng(devices=[]):
            x = node_inputs(graph, mc)
            y = graph.y[:, idx]
            train_mask, val_mask = graph.train_mask[:, idx], graph.val_mask[:, idx]
            # Gathered per batch by seed id: float so the loss is one fused masked reduction.
            y_f, train_f = y.float(), train_mask.float()
            seeds = train_mask.any(1).nonzero().flatten()
            check(len(seeds) > 0, f"tasks {preview(names, k=3)}: no training labels")
            val_nodes = val_mask.any(1).nonzero().flatten()
            pairs_per_epoch = int(train_mask.sum())
            fanouts = list(tc.fanouts) if mc.uses_message_passing else None
            loader = make_loader(graph, seeds, fanouts, tc.batch_size, shuffle=True, x=x,
                                 num_workers=tc.num_workers)
            data_hash = graph_digest(graph)
            digests = task_digests(graph, idx)  # labels + splits: checked by later consumers
            # Layer trimming skips the outer hops' nodes in later layers: same seed outputs for
            # mean / sum / attention aggregation, but GCN's degree normalisation of the trimmed
            # subgraph would change, so GCN trains untrimmed.
            trim = mc.uses_message_passing and mc.encoder != "gcn"

            torch.manual_seed(tc.seed)
            model = MultiTaskGNN(x.shape[1], len(idx), mc)
            if init_from is not None:
                warm_start(model, load_checkpoint(init_from), names, data_hash)
            optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr,
                                         weight_decay=tc.weight_decay)
            state: dict[str, Any] = {"epoch": 0, "history": [], "best_metric": None,
                                     "best_epoch": 0, "best_state": None, "bad_evals": 0,
                                     "stopped_early": False, "train_s": 0.0, "eval_s": 0.0}
            last_path = None if out_dir is None else out_dir / LAST_NAME
            if resume and last_path is not None and last_path.is_file():
                state = self._restore(last_path, model, optimizer, names, data_hash, digests)
            setup_s = time.perf_counter() - t_start

            def validate() -> tuple[TaskMetrics, float]:
                logits = predict_logits(model, graph, val_nodes, batch_size=tc.eval_batch_size)
                m = compute_metrics(logits, y[val_nodes], val_mask[val_nodes], names, "val",
                                    with_ap=tc.metric == "ap")
                return m, m.macro(tc.metric)

            bar = _progress(range(state["epoch"], tc.epochs), progress, initial=state["epoch"],
                            total=tc.epochs)
            for epoch in bar:
                if state["stopped_early"]:
                    break
                t0 = time.perf_counter()
                torch.manual_seed(_epoch_seed(tc.seed, epoch))
                model.train()
                loss_sum = torch.zeros(())
                for batch in loader:
                    bs = batch.batch_size
                    ids = batch.n_id[:bs]
                    kw = {}
                    if trim:
                        counts = hop_counts(batch.edge_index, batch.x.shape[0], bs,
                                            mc.num_layers)
                        if counts is not None:
                            kw = {"num_sampled_nodes_per_hop": counts[0],
                                  "num_sampled_edges_per_hop": counts[1]}
                    # The head only on the seeds: the other sampled nodes carry no loss.
                    logits = model.head(model.encoder(batch.x, batch.edge_index, **kw)[:bs])
                    mask = train_f[ids]
                    loss = masked_bce(logits, y_f[ids], mask)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_sum += loss.detach() * mask.sum()   # no .item(): no sync per batch
                record = {"epoch": epoch + 1, "train_loss": float(loss_sum) / pairs_per_epoch}
                state["train_s"] += time.perf_counter() - t0
                if (epoch + 1) % tc.eval_every == 0 or epoch + 1 == tc.epochs:
                    t1 = time.perf_counter()
                    _, value = validate()
                    record[f"val_{tc.metric}"] = value
                    if _better(value, state["best_metric"], tc.higher_is_better):
                        state.update(best_metric=value, best_epoch=epoch + 1, bad_evals=0,
                                     best_state={k: v.detach().clone()
                                                 for k, v in model.state_dict().items()})
                    else:
                        state["bad_evals"] += 1
                        if tc.patience and state["bad_evals"] >= tc.patience:
                            state["stopped_early"] = True
                    state["eval_s"] += time.perf_counter() - t1
                state["history"].append(record)
                state["epoch"] = epoch + 1
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "epoch"})
                if last_path is not None:
                    save_checkpoint(last_path, model, task_names=names, data_hash=data_hash,
                                    task_digests=digests, train_config=tc, epoch=epoch + 1,
                                    optimizer_state=optimizer.state_dict(), trainer_state=state)
            if hasattr(bar, "close"):
                bar.close()

            if state["best_state"] is None:   # no evaluation was ever defined: keep the last
                state["best_epoch"] = state["epoch"]
            else:
                model.load_state_dict(state["best_state"])
            model.eval()
            t1 = time.perf_counter()
            val_metrics = compute_metrics(
                predict_logits(model, graph, val_nodes, batch_size=tc.eval_batch_size),
                y[val_nodes], val_mask[val_nodes], names, "val")
            state["eval_s"] += time.perf_counter() - t1
        timings = self._timings(state, setup_s, len(seeds), pairs_per_epoch, t_start)
        ckpt_path = None
        if out_dir is not None:
            ckpt_path = save_checkpoint(
                out_dir / BEST_NAME, model, task_names=names, data_hash=data_hash,
                task_digests=digests, train_config=tc, epoch=state["best_epoch"],
                metrics={"val": val_metrics.to_dict()["macro"], "best_epoch": state["best_epoch"],
                         "epochs_run": state["epoch"]})
        return TrainResult(model=model, task_names=names, task_index=idx,
                           history=state["history"], best_epoch=state["best_epoch"],
                           val_metrics=val_metrics, timings=timings,
                           stopped_early=state["stopped_early"], checkpoint_path=ckpt_path)

    # ------------------------------------------------------------------ helpers
    def _restore(self, path: Path, model: MultiTaskGNN, optimizer: torch.optim.Optimizer,
                 names: list[str], data_hash: str, digests: dict[str, str]) -> dict[str, Any]:
        ckpt = load_checkpoint(path)
        check(ckpt.trainer_state is not None and ckpt.optimizer_state is not None,
              f"{path}: not a resumable checkpoint (no optimizer / trainer state)")
        check(ckpt.data_hash == data_hash,
              f"{path}: was trained on different data (hash {ckpt.data_hash} != {data_hash})")
        check(not ckpt.task_digests or ckpt.task_digests == digests,
              f"{path}: was trained on other labels or splits of these tasks (e.g. another seed)")
        check(ckpt.task_names == names,
              f"{path}: was trained on other tasks ({preview(ckpt.task_names, k=3)}) than selected "
              f"({preview(names, k=3)})")
        check(ckpt.model_config == self.model_config,
              f"{path}: model config differs ({ckpt.model_config} vs {self.model_config})")
        old = {k: v for k, v in (ckpt.train_config.to_dict() if ckpt.train_config else {}).items()
               if k not in _RESUME_FREE}
        new = {k: v for k, v in self.train_config.to_dict().items() if k not in _RESUME_FREE}
        diff = sorted(k for k in new if old.get(k) != new[k])
        check(not diff, f"{path}: train setting {diff[0] if diff else ''} differs from the "
                        f"interrupted run ({old.get(diff[0]) if diff else ''} vs "
                        f"{new[diff[0]] if diff else ''})")
        model.load_state_dict(ckpt.model.state_dict())
        optimizer.load_state_dict(ckpt.optimizer_state)
        state = dict(ckpt.trainer_state)
        state["history"] = [dict(h) for h in state["history"]]
        return state

    @staticmethod
    def _timings(state: dict, setup_s: float, seeds: int, pairs: int, t_start: float
                 ) -> dict[str, float]:
        epochs = len(state["history"])
        train_s = state["train_s"]
        return {"setup_s": setup_s, "train_s": train_s, "eval_s": state["eval_s"],
                "total_s": time.perf_counter() - t_start, "epochs": epochs,
                "seed_nodes_per_epoch": seeds, "pairs_per_epoch": pairs,
                "seed_nodes_per_s": seeds * epochs / train_s if train_s > 0 else float("nan"),
                "pairs_per_s": pairs * epochs / train_s if train_s > 0 else float("nan")}


def warm_start(model: MultiTaskGNN, ckpt: Checkpoint, task_names: Sequence[str],
               data_hash: str | None = None) -> None:
    """Copy ``ckpt``'s encoder and, per task name, its head row into ``model`` (in place)."""
    src = ckpt.model_config
    dst = model.config
    arch = ("encoder", "hidden", "num_layers", "heads", "sign_hops")
    diff = [a for a in arch if getattr(src, a) != getattr(dst, a)]
    check(not diff, f"init_from: checkpoint model {diff[0] if diff else ''}="
                    f"{getattr(src, diff[0]) if diff else ''} differs from the model's "
                    f"{getattr(dst, diff[0]) if diff else ''}")
    check(ckpt.in_channels == model.in_channels,
          f"init_from: checkpoint has {ckpt.in_channels} input features, the data "
          f"{model.in_channels}")
    check(data_hash is None or not ckpt.data_hash or ckpt.data_hash == data_hash,
          f"init_from: checkpoint was trained on a different graph (data hash "
          f"{ckpt.data_hash} != {data_hash})")
    pos = {n: i for i, n in enumerate(ckpt.task_names)}
    missing = [n for n in task_names if n not in pos]
    check(not missing, f"init_from: task {missing[0] if missing else ''!r} is not among the "
                       f"checkpoint's {len(pos)} tasks ({preview(ckpt.task_names, k=3)})")
    rows = torch.tensor([pos[n] for n in task_names], dtype=torch.long)
    with torch.no_grad():
        model.encoder.load_state_dict(ckpt.model.encoder.state_dict())
        model.head.weight.copy_(ckpt.model.head.weight[rows])
        model.head.bias.copy_(ckpt.model.head.bias[rows])


def _progress(it, enabled: bool, **kw):
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc="train", unit="epoch", dynamic_ncols=True, leave=False, **kw)
