"""Benchmark of graphmtl's multitask trainer (issue 3).

(a) Training throughput on YouTube-100 and DBLP-100: graphmtl's ``Trainer`` against a plain,
    hand-written PyG ``NeighborLoader`` loop of the same model (GraphSAGE) and settings, in one
    process, epochs interleaved (trainer epoch, plain epoch, trainer epoch, ...). Throughput =
    seed nodes / s and labelled (node, task) pairs / s of the training epochs (loader
    construction and evaluation excluded on both sides); peak RSS sampled during each side's
    epochs.
(b) Quality: test macro-F1 / ROC-AUC / AP of one model on all 100 tasks of YouTube-100,
    Amazon-100 and DBLP-100, mean +- std over 3 seeds.

Usage::

    nice -n 5 .venv/bin/python -m experiments.bench_trainer            # full run (~20 min)
    .venv/bin/python -m experiments.bench_trainer --quick              # smoke run

Writes experiments/results/bench_trainer.json and .md (a smoke run: experiments/work/results/).
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

from experiments.harness import (Record, load_average, md_table, parse_args, quick_results, run,
                                 write_results)
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.training import TrainConfig, Trainer, evaluate

NAME = "bench_trainer"


class PeakRSS:
    """Samples the process's resident set size every few ms while active."""

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak, self._on = interval, 0, False
        self._page = os.sysconf("SC_PAGE_SIZE")
        threading.Thread(target=self._loop, daemon=True).start()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _loop(self) -> None:
        while True:
            if self._on:
                self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self):
        self._on = True
        self.peak = max(self.peak, self._rss())
        return self

    def __exit__(self, *exc):
        self.peak = max(self.peak, self._rss())
        self._on = False


def plain_loop_epoch(model, loader, optimizer) -> float:
    """The textbook PyG minibatch loop (what a user would write by hand)."""
    model.train()
    total = 0.0
    for batch in loader:
        optimizer.zero_grad()
        out = model(batch.x, batch.edge_index)[:batch.batch_size]
        y = batch.y[:batch.batch_size].float()
        m = batch.train_mask[:batch.batch_size]
        loss = F.binary_cross_entropy_with_logits(out[m], y[m])
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


def throughput(name: str, graph, mc: ModelConfig, tc: TrainConfig, rounds: int) -> dict:
    import warnings

    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader

    seeds = graph.train_mask.any(1).nonzero().flatten()
    pairs = int(graph.train_mask.sum())
    data = Data(x=graph.x, edge_index=graph.edge_index, y=graph.y, train_mask=graph.train_mask,
                num_nodes=graph.num_nodes)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain_loader = NeighborLoader(data, num_neighbors=list(tc.fanouts), input_nodes=seeds,
                                      batch_size=tc.batch_size, shuffle=True)
    plain_setup = time.perf_counter() - t0
    torch.manual_seed(0)
    plain_model = MultiTaskGNN(graph.num_features, graph.num_tasks, mc)
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    trainer = Trainer(mc, tc.replace(epochs=1, eval_every=1, patience=0))
    ours_t, plain_t, ours_setup = [], [], []
    mem_ours, mem_plain = PeakRSS(), PeakRSS()
    trainer.fit(graph, progress=False)            # warm-up (first-call allocations, caches)
    plain_loop_epoch(plain_model, plain_loader, plain_opt)
    for r in range(rounds):
        with mem_ours:
            res = Trainer(mc, tc.replace(epochs=1, seed=r, patience=0)).fit(graph, progress=False)
        ours_t.append(res.timings["train_s"])
        ours_setup.append(res.timings["setup_s"])
        with mem_plain:
            t0 = time.perf_counter()
            plain_loop_epoch(plain_model, plain_loader, plain_opt)
            plain_t.append(time.perf_counter() - t0)
        print(f"  {name} round {r + 1}/{rounds}: ours {ours_t[-1]:.2f}s, plain {plain_t[-1]:.2f}s",
              flush=True)
    ours_s, plain_s = float(np.sum(ours_t)), float(np.sum(plain_t))
    return {
        "dataset": name, "nodes": graph.num_nodes, "edges": graph.num_edges,
        "tasks": graph.num_tasks, "seed_nodes_per_epoch": len(seeds), "pairs_per_epoch": pairs,
        "rounds": rounds, "ours_epoch_s": ours_t, "plain_epoch_s": plain_t,
        "ours_seed_nodes_per_s": len(seeds) * rounds / ours_s,
        "plain_seed_nodes_per_s": len(seeds) * rounds / plain_s,
        "ours_pairs_per_s": pairs * rounds / ours_s, "plain_pairs_per_s": pairs * rounds / plain_s,
        "ratio": plain_s / ours_s,
        "ours_setup_s_median": float(np.median(ours_setup)), "plain_loader_setup_s": plain_setup,
        "ours_peak_rss_mb": mem_ours.peak / 2**20, "plain_peak_rss_mb": mem_plain.peak / 2**20,
    }


def quality(name: str, graph, mc: ModelConfig, tc: TrainConfig, seeds: list[int]) -> dict:
    runs = []
    for s in seeds:
        t0 = time.perf_counter()
        res = Trainer(mc, tc.replace(seed=s)).fit(graph, progress=False)
        m = evaluate(res.model, graph, res.task_names, "test")
        runs.append({"seed": s, "macro_f1": m.macro_f1, "macro_roc_auc": m.macro_roc_auc,
                     "macro_ap": m.macro_ap, "best_epoch": res.best_epoch,
                     "epochs_run": len(res.history), "undefined_tasks": len(m.undefined),
                     "wall_s": time.perf_counter() - t0, "train_s": res.timings["train_s"]})
        print(f"  {name} seed {s}: F1 {m.macro_f1:.4f} AUC {m.macro_roc_auc:.4f} "
              f"AP {m.macro_ap:.4f} ({runs[-1]['wall_s']:.0f}s)", flush=True)
    out = {"dataset": name, "runs": runs}
    for k in ("macro_f1", "macro_roc_auc", "macro_ap"):
        v = np.array([r[k] for r in runs])
        out[k] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
    return out


def parser() -> argparse.ArgumentParser:
    """Its own options (:func:`experiments.harness.parse_args` adds the shared ones)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny settings (smoke test; results to experiments/work/results)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, default=3)
    return ap


def main(argv: list[str] | None = None) -> int:
    from graphmtl.data.sources import load_dataset

    args = parse_args(parser(), argv, NAME)
    if args.quick:
        quick_results(args)
    torch.set_num_threads(args.threads)
    record = Record(args)
    rounds, epochs, n_seeds = (1, 2, 2) if args.quick else (args.rounds, args.epochs, args.seeds)
    mc = ModelConfig(encoder="sage", hidden=128, num_layers=2, dropout=0.2)
    tc = TrainConfig(epochs=epochs, lr=0.01, weight_decay=1e-5, batch_size=1024,
                     fanouts=(10, 5), patience=5, eval_every=1, metric="roc_auc",
                     num_threads=args.threads)
    specs = {"YouTube-100": "snap:youtube,k=100", "Amazon-100": "snap:amazon,k=100",
             "DBLP-100": "snap:dblp,k=100"}
    graphs = {}
    for name, spec in specs.items():
        t0 = time.perf_counter()
        graphs[name] = load_dataset(spec)
        print(f"loaded {name} ({spec}) in {time.perf_counter() - t0:.1f}s: "
              f"{graphs[name].num_nodes} nodes, {graphs[name].num_edges} edges", flush=True)
    print("(a) throughput", flush=True)
    thr = [throughput(n, graphs[n], mc, tc, rounds) for n in ("YouTube-100", "DBLP-100")]
    load_a = load_average()
    print("(b) quality", flush=True)
    qual = [quality(n, graphs[n], mc, tc, list(range(n_seeds))) for n in specs]
    result = {**record.to_dict(), "loadavg_after_a": load_a, "model_config": mc.to_dict(),
              "train_config": tc.to_dict(), "datasets": specs, "throughput": thr,
              "quality": qual}
    page = markdown(result, record)
    write_results(args.out, result, page, args.results_dir)
    print(page)
    return 0


def markdown(r: dict, record: Record) -> str:
    tc, mc = r["train_config"], r["model_config"]
    lines = [
        "# bench_trainer: multitask trainer throughput and all-task quality", "",
        record.markdown() + f" Load average after (a): {r['loadavg_after_a'][0]:.1f}.", "",
        f"Model: {mc['encoder']} hidden {mc['hidden']}, {mc['num_layers']} layers, dropout "
        f"{mc['dropout']}. Training: batch {tc['batch_size']}, fanouts {tc['fanouts']}, Adam lr "
        f"{tc['lr']}, weight decay {tc['weight_decay']}, up to {tc['epochs']} epochs, early "
        f"stopping on validation macro {tc['metric']} (patience {tc['patience']}).", "",
        "## (a) Training throughput vs a plain PyG NeighborLoader loop (same process, "
        "interleaved epochs)", "",
        md_table(["dataset", "nodes", "tasks", "seeds/epoch", "ours seeds/s", "plain seeds/s",
                  "ours pairs/s", "plain pairs/s", "ratio (plain time / ours)",
                  "ours peak RSS MB", "plain peak RSS MB"],
                 [[t["dataset"], t["nodes"], t["tasks"], t["seed_nodes_per_epoch"],
                   f"{t['ours_seed_nodes_per_s']:.0f}", f"{t['plain_seed_nodes_per_s']:.0f}",
                   f"{t['ours_pairs_per_s']:.0f}", f"{t['plain_pairs_per_s']:.0f}",
                   f"**{t['ratio']:.2f}**", f"{t['ours_peak_rss_mb']:.0f}",
                   f"{t['plain_peak_rss_mb']:.0f}"] for t in r["throughput"]]),
    ]

    def f(q: dict, k: str) -> str:
        return f"{q[k]['mean']:.4f} ± {q[k]['std']:.4f}"

    lines += ["", f"{r['throughput'][0]['rounds']} interleaved epochs per side after one warm-up "
              "epoch each; loader construction and evaluation excluded on both sides. Peak RSS is "
              "the whole process (both sides share it), sampled during each side's epochs.", "",
              "## (b) Test metrics of one model on all tasks (mean ± std over seeds)", "",
              md_table(["dataset", "seeds", "macro F1", "macro ROC-AUC", "macro AP",
                        "epochs run (best)"],
                       [[q["dataset"], len(q["runs"]), f(q, "macro_f1"), f(q, "macro_roc_auc"),
                         f(q, "macro_ap"),
                         ", ".join(f"{x['epochs_run']} ({x['best_epoch']})" for x in q["runs"])]
                        for q in r["quality"]]),
              "", "F1 at logit > 0 (no threshold tuning); tasks are imbalanced (positives ≈ 1% "
              "of nodes), so F1 is far below ROC-AUC."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
