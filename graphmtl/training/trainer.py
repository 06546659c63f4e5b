"""Training a multitask GNN on any subset of a graph's tasks.

One :class:`Trainer` serves every stage: the base model on all tasks, subset models for the
trained-affinity baselines, fine-tuning a subset from the base model (``init_from``), and one
model per task group.

Determinism: the initial weights come from ``seed``; before epoch ``e`` torch's global generator
is re-seeded from ``(seed, e)``, so the shuffling order, the neighbour samples and the dropout
masks of an epoch depend only on ``(seed, e)``. Resuming from the checkpoint written after epoch
``e`` therefore continues exactly like the uninterrupted run. The caller's global RNG state is
restored when ``fit`` returns.

Memory: validation never runs the whole graph at once on large graphs (layer-wise inference
and per-task-block metrics, :mod:`graphmtl.training.inference`), and ``last.pt`` is written
after every epoch's training, before its validation starts (a run killed during validation
resumes by validating that epoch again).

Distributed: inside a ``torchrun`` process group (:mod:`graphmtl.utils.distributed`) every
epoch's seed order is drawn as in one process, each global batch of ``batch_size`` seeds is
split over the ranks, and the model is wrapped in ``DistributedDataParallel`` with each rank's
loss scaled so that the averaged gradient is the one-process gradient of the whole batch. With
full neighbourhoods (``fanouts`` all ``-1``) and no dropout the result equals the one-process
run up to float rounding; with sampling (or dropout) the ranks draw their own samples, so the
runs agree in distribution only. Rank 0 validates and writes the checkpoints.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from graphmtl.data.graph import MultiTaskGraph
from graphmtl.errors import check
from graphmtl.models import ModelConfig, MultiTaskGNN, node_inputs
from graphmtl.training.checkpoint import (Checkpoint, load_checkpoint, save_checkpoint,
                                          task_digests)
from graphmtl.training.config import TrainConfig, resolve_fanouts
from graphmtl.training.inference import (evaluate, node_outputs, predict_logits,
                                         streaming_metrics)
from graphmtl.training.loader import (FeatureBatch, FeatureLoader, graph_digest, hop_counts,
                                      make_loader)
from graphmtl.training.loss import masked_bce
from graphmtl.training.metrics import TaskMetrics
from graphmtl.utils import distributed as dist
from graphmtl.utils.device import resolve_device
from graphmtl.utils.progress import progress_bar
from graphmtl.utils.text import preview
from graphmtl.utils.threads import torch_threads

__all__ = ["BEST_NAME", "LAST_NAME", "TrainResult", "Trainer", "evaluate", "predict_logits",
           "warm_start"]

BEST_NAME = "model.pt"   # best weights (what later stages load)
LAST_NAME = "last.pt"    # last epoch + optimizer + bookkeeping (what --resume loads)

# Fields of TrainConfig that may change between an interrupted run and its resumption.
_RESUME_FREE = {"epochs", "num_workers", "eval_batch_size", "num_threads", "device",
                "eval_method"}


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        model: the best model (by the validation ``metric``), in eval mode.
        task_names: names of the model's outputs, in order.
        task_index: their positions in the graph, int64 ``[k]``.
        history: one dict per epoch: ``epoch`` (1-based), ``train_loss`` and, on evaluation
            epochs, ``val_<metric>``; a warm start begins with epoch 0 (its copied weights,
            ``train_loss`` ``None``).
        best_epoch: epoch of the kept weights (``0``: a warm start's copied weights).
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

    @property
    def epochs_run(self) -> int:
        """Training epochs run (the warm start's epoch 0 is not one)."""
        return int(self.history[-1]["epoch"]) if self.history else 0


# ---------------------------------------------------------------------- trainer
def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + 7919 * (epoch + 1)) % (2**63 - 1)


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
                The copied weights are validated first (``history[0]``, epoch 0) and kept if no
                epoch beats them.
            out_dir: if given, ``last.pt`` is written after every epoch (before its validation)
                and ``model.pt`` (the best weights) at the end.
            resume: continue from ``out_dir/last.pt`` if it exists (same data, tasks and
                settings; ``epochs`` may grow).
            progress: show a tqdm bar over the training batches (epoch, seeds/s, loss, last
                validation metric).
        """
        t_start = time.perf_counter()
        mc, tc = self.model_config, self.train_config
        device = dist.rank_device(resolve_device(tc.device))
        rank, world = dist.rank_world()
        idx = graph.task_index(tasks)
        names = [graph.task_names[i] for i in idx]
        out_dir = None if out_dir is None else Path(out_dir)
        with torch_threads(tc.num_threads), torch.random.fork_rng(devices=[]):
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
            loader = make_loader(graph, seeds, fanouts, tc.batch_size, shuffle=world == 1, x=x,
                                 num_workers=tc.num_workers)
            batches = _RankBatches(loader, len(seeds), tc.batch_size, train_f[seeds], rank,
                                   world) if world > 1 else None
            data_hash = graph_digest(graph)
            digests = task_digests(graph, idx)  # labels + splits: checked by later consumers
            # Layer trimming skips the outer hops' nodes in later layers: same seed outputs for
            # mean / sum / attention aggregation, but GCN's degree normalisation of the trimmed
            # subgraph would change, so GCN trains untrimmed.
            trim = mc.spec.trimmable

            torch.manual_seed(tc.seed)
            model = MultiTaskGNN(x.shape[1], len(idx), mc)
            if init_from is not None:
                warm_start(model, load_checkpoint(init_from), names, data_hash)
            model.to(device)
            step_model = _SeedLogits(model)
            if world > 1:
                from torch.nn.parallel import DistributedDataParallel

                step_model = DistributedDataParallel(
                    step_model, device_ids=[device.index] if device.type == "cuda" else None)
            optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr,
                                         weight_decay=tc.weight_decay)
            state: dict[str, Any] = {"epoch": 0, "history": [], "best_metric": None,
                                     "best_epoch": 0, "best_state": None, "bad_evals": 0,
                                     "stopped_early": False, "train_s": 0.0, "eval_s": 0.0,
                                     "pending_eval": False}
            last_path = None if out_dir is None else out_dir / LAST_NAME
            if resume and last_path is not None and last_path.is_file():
                state = self._restore(last_path, model, optimizer, names, data_hash, digests)
            setup_s = time.perf_counter() - t_start
            writer = rank == 0

            def save_last() -> None:
                if last_path is not None and writer:
                    save_checkpoint(last_path, model, task_names=names, data_hash=data_hash,
                                    task_digests=digests, train_config=tc, epoch=state["epoch"],
                                    optimizer_state=optimizer.state_dict(), trainer_state=state)

            def validate(epoch: int, with_ap: bool) -> TaskMetrics | None:
                """Rank 0's validation metrics (``None`` on the other ranks)."""
                if not writer:
                    return None
                out = node_outputs(model, graph, val_nodes, fanouts=tc.eval_fanouts,
                                   batch_size=tc.eval_batch_size, method=tc.eval_method,
                                   device=device, seed=_epoch_seed(tc.seed, epoch) + 1,
                                   progress=progress)
                return streaming_metrics(out, y[val_nodes], val_mask[val_nodes], names, "val",
                                         with_ap=with_ap)

            def run_validation() -> None:
                t1 = time.perf_counter()
                m = validate(state["epoch"], tc.metric == "ap")
                value = dist.broadcast_object(None if m is None else m.macro(tc.metric))
                state["history"][-1][f"val_{tc.metric}"] = value
                if _better(value, state["best_metric"], tc.higher_is_better):
                    state.update(best_metric=value, best_epoch=state["epoch"], bad_evals=0,
                                 best_state={k: v.detach().cpu().clone()
                                             for k, v in model.state_dict().items()})
                else:
                    state["bad_evals"] += 1
                    if tc.patience and state["bad_evals"] >= tc.patience:
                        state["stopped_early"] = True
                state["pending_eval"] = False
                state["eval_s"] += time.perf_counter() - t1

            if state.get("pending_eval"):   # killed during the validation of the last epoch
                run_validation()
                save_last()
            if init_from is not None and not state["history"]:
                # The warm start's own weights are the first candidate (epoch 0): fine-tuning
                # on the selected tasks then ends no worse on their validation score than where
                # it began, however quickly it overfits their few training labels.
                state["history"].append({"epoch": 0, "train_loss": None})
                run_validation()
                save_last()
            per_epoch = len(batches) if batches is not None else len(loader)
            bar = (progress_bar(per_epoch * (tc.epochs - state["epoch"]), desc="train",
                                leave=False) if progress and writer else None)
            for epoch in range(state["epoch"], tc.epochs):
                if state["stopped_early"]:
                    break
                t0 = time.perf_counter()
                torch.manual_seed(_epoch_seed(tc.seed, epoch))
                model.train()
                loss_sum = torch.zeros((), device=device)
                done_seeds = 0
                epoch_batches = batches.epoch() if batches is not None else \
                    ((b, b.n_id[:b.batch_size], None) for b in loader)
                for batch, ids, scale in epoch_batches:
                    bs = batch.batch_size
                    kw = {}
                    if trim:
                        counts = hop_counts(batch.edge_index, batch.x.shape[0], bs,
                                            mc.num_layers)
                        if counts is not None:
                            kw = {"num_sampled_nodes_per_hop": counts[0],
                                  "num_sampled_edges_per_hop": counts[1]}
                    ei = None if batch.edge_index is None else batch.edge_index.to(device)
                    # The head only on the seeds: the other sampled nodes carry no loss.
                    logits = step_model(batch.x.to(device), ei, bs, **kw)
                    mask = train_f[ids].to(device)
                    loss = masked_bce(logits, y_f[ids].to(device), mask)
                    if scale is not None:   # rank share of the global batch's mean loss
                        loss = loss * scale
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    # no .item(): no sync per batch
                    loss_sum += (loss / scale if scale else loss).detach() * mask.sum()
                    done_seeds += int(bs) * world
                    if bar is not None:
                        bar.update(1)
                        if bar.n % 10 == 0 or bar.n == bar.total:
                            el = time.perf_counter() - t0
                            bar.set_postfix_str(f"epoch {epoch + 1}/{tc.epochs}, "
                                                f"{done_seeds / max(el, 1e-9):.0f} seeds/s"
                                                + _last_val(state, tc.metric), refresh=False)
                dist.all_reduce_sum(loss_sum)
                record = {"epoch": epoch + 1, "train_loss": float(loss_sum) / pairs_per_epoch}
                state["train_s"] += time.perf_counter() - t0
                state["history"].append(record)
                state["epoch"] = epoch + 1
                evaluate_now = (epoch + 1) % tc.eval_every == 0 or epoch + 1 == tc.epochs
                state["pending_eval"] = evaluate_now
                save_last()   # before validation: a validation that fails loses no training
                if evaluate_now:
                    if bar is not None:
                        bar.set_postfix_str(f"epoch {epoch + 1}/{tc.epochs}, validating",
                                            refresh=True)
                    run_validation()
                    save_last()
            if bar is not None:
                bar.close()

            if state["best_state"] is None:   # no evaluation was ever defined: keep the last
                state["best_epoch"] = state["epoch"]
            else:
                model.load_state_dict(state["best_state"])
            model.eval()
            t1 = time.perf_counter()
            val_metrics = dist.broadcast_object(validate(state["epoch"], True))
            state["eval_s"] += time.perf_counter() - t1
            model.cpu()
        timings = self._timings(state, setup_s, len(seeds), pairs_per_epoch, t_start)
        ckpt_path = None
        if out_dir is not None:
            ckpt_path = out_dir / BEST_NAME
            if writer:
                save_checkpoint(
                    ckpt_path, model, task_names=names, data_hash=data_hash,
                    task_digests=digests, train_config=tc, epoch=state["best_epoch"],
                    metrics={"val": val_metrics.to_dict()["macro"],
                             "best_epoch": state["best_epoch"], "epochs_run": state["epoch"]})
            dist.barrier()
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


class _SeedLogits(torch.nn.Module):
    """``head(encoder(x, edge_index)[:batch_size])``: the training step's forward, one module so
    that ``DistributedDataParallel`` can wrap it."""

    def __init__(self, model: MultiTaskGNN):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor | None, batch_size: int,
                **kw) -> torch.Tensor:
        return self.model.head(self.model.encoder(x, edge_index, **kw)[:batch_size])


class _RankBatches:
    """This rank's share of every global batch of an epoch (distributed training).

    The seed order is drawn exactly as the one-process loader's shuffling draws it (a
    ``torch.Generator`` seeded from torch's global generator, then ``randperm``), so global
    batch ``j`` holds the same seeds as in one process; rank ``r`` takes the contiguous part
    ``r`` of ``world`` of it and its loss is scaled by ``world * own pairs / batch pairs``
    (``DistributedDataParallel`` averages gradients over ranks). A rank whose part is empty
    runs the batch's first seed with scale 0, so every rank takes part in every step.

    Args:
        loader: an unshuffled loader over the seeds (its ``collate_fn`` builds subgraphs).
        num_seeds, batch_size: as in one process.
        pairs: float ``[num_seeds]`` labelled training pairs per seed.
    """

    def __init__(self, loader, num_seeds: int, batch_size: int, pairs: torch.Tensor, rank: int,
                 world: int):
        self.loader, self.n, self.bs = loader, num_seeds, batch_size
        self.pairs = pairs.sum(1) if pairs.dim() == 2 else pairs
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return -(-self.n // self.bs)

    def order(self) -> torch.Tensor:
        """The one-process shuffling order, drawn from torch's global generator: ``randperm``
        for row batches (:class:`~graphmtl.training.loader.FeatureLoader`), else as a shuffling
        ``DataLoader`` draws it (tested against the loader: ``tests/test_distributed.py``)."""
        if isinstance(self.loader, FeatureLoader):
            return torch.randperm(self.n)
        # A DataLoader iterator draws its workers' base seed first, then the sampler its own.
        torch.empty((), dtype=torch.int64).random_()
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))

    def _collate(self, part: torch.Tensor):
        if isinstance(self.loader, FeatureLoader):
            ids = self.loader.nodes[part]
            return FeatureBatch(x=self.loader.x[ids], n_id=ids, batch_size=len(ids))
        from torch_geometric.data import Data

        out = self.loader.collate_fn(part)
        return out if isinstance(out, Data) else self.loader.filter_fn(out)

    def epoch(self):
        perm = self.order()
        for j in range(len(self)):
            glob = perm[j * self.bs:(j + 1) * self.bs]
            lo, hi = dist.shard_range(len(glob), self.rank, self.world)
            part = glob[lo:hi]
            total = float(self.pairs[glob].sum())
            own = float(self.pairs[part].sum())
            if len(part) == 0:
                part, own = glob[:1], 0.0
            out = self._collate(part)
            ids = out.n_id[:out.batch_size]
            yield out, ids, self.world * own / max(total, 1.0)


def _last_val(state: dict, metric: str) -> str:
    for rec in reversed(state["history"]):
        if f"val_{metric}" in rec:
            return f", val {metric} {rec[f'val_{metric}']:.4f}"
    return ""
