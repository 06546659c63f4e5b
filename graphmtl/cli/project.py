"""``graphmtl project``: projected gradients of a trained checkpoint into a bounded store."""

from __future__ import annotations

import argparse
from pathlib import Path

from graphmtl.errors import GraphMTLError, check


def register(subparsers) -> None:
    from graphmtl.projection import ProjectionConfig

    d = ProjectionConfig()
    p = subparsers.add_parser(
        "project", help="projected per-(node, task) gradients of a trained model (Grad-TAG)",
        description="Compute z_t(v) = P^T grad f_t(v) for every stored (node, task) row of the "
                    "train and val splits by forward-mode differentiation, and write them with "
                    "the base logits, labels and sampling weights to a resumable store "
                    "(re-run the same command to continue an interrupted run).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, help="trained model (graphmtl train)")
    p.add_argument("--data", required=True,
                   help="dataset spec (e.g. snap:youtube,k=100) or a saved graph .npz")
    p.add_argument("--out", required=True, type=Path, help="store directory")
    p.add_argument("--dim", type=int, default=d.dim, help="projection dimension d")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of directions and row sampling")
    p.add_argument("--params", default=d.params,
                   help="projected parameters: all | encoder | head | re:<regex>")
    p.add_argument("--budget", type=int, default=None,
                   help="most rows per task in each of train and val (default: all rows)")
    p.add_argument("--train-budget", type=int, default=None, help="overrides --budget for train")
    p.add_argument("--val-budget", type=int, default=None, help="overrides --budget for val")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="seed nodes per pass")
    p.add_argument("--direction-chunk", type=int, default=d.direction_chunk,
                   help="directions per vectorised jvp (memory grows with it)")
    p.add_argument("--fanouts", default="auto",
                   help="neighbours per layer, e.g. 10,5; full (exact); auto: full up to 4M "
                        "directed edges, else the training default 10,5")
    p.add_argument("--device", default=d.device,
                   help="cpu, cuda, cuda:N or auto; under torchrun, cuda is each rank's GPU")
    p.add_argument("--strategy", default=d.strategy, choices=("split", "full"))
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--restart", action="store_true",
                   help="start over instead of resuming an unfinished store")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _fanouts(text: str | None) -> tuple[int, ...] | str | None:
    if text is None or text.strip() in ("auto", "full"):
        return "auto" if text is None else text.strip()
    try:
        return tuple(int(f) for f in text.split(",") if f.strip())
    except ValueError:
        raise GraphMTLError(f"--fanouts: expected integers like 10,5, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    import torch

    from graphmtl.cli.train import load_data
    from graphmtl.projection import GradientProjector, ProjectionConfig
    from graphmtl.training import graph_digest, load_checkpoint, node_inputs
    from graphmtl.utils.distributed import init_from_env, rank_world
    from graphmtl.utils.io import file_digest

    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt = load_checkpoint(args.checkpoint)
    graph = load_data(args.data)
    missing = [t for t in ckpt.task_names if t not in set(graph.task_names)]
    check(not missing, f"{args.checkpoint}: task {missing[0]!r} of the checkpoint is not in "
                       f"--data {args.data}" if missing else "")
    if list(graph.task_names) != list(ckpt.task_names):
        graph = graph.select_tasks(ckpt.task_names)
    width = node_inputs(graph, ckpt.model_config).shape[1]
    check(width == ckpt.in_channels,
          f"{args.checkpoint}: model expects {ckpt.in_channels} input features, --data "
          f"{args.data} gives {width}")
    digest = graph_digest(graph)
    check(not ckpt.data_hash or ckpt.data_hash == digest,
          f"{args.checkpoint}: trained on other data (graph digest {ckpt.data_hash}, --data "
          f"{args.data} has {digest})")
    budget = args.budget
    config = ProjectionConfig(
        dim=args.dim, seed=args.seed, params=args.params, batch_size=args.batch_size,
        direction_chunk=args.direction_chunk, fanouts=_fanouts(args.fanouts),
        train_budget=args.train_budget if args.train_budget is not None else budget,
        val_budget=args.val_budget if args.val_budget is not None else budget,
        strategy=args.strategy, device=args.device)
    init_from_env(config.device)   # torchrun: every rank projects its share of the nodes
    store = GradientProjector(config).project(
        ckpt.model, graph, args.out, resume=not args.restart, progress=not args.no_progress,
        manifest_extra={"checkpoint": str(args.checkpoint),
                        "checkpoint_sha256": file_digest(args.checkpoint), "data": args.data})
    rows = store.manifest["rows"]
    if rank_world()[0] != 0:
        return 0
    print(f"{args.out}: d={store.dim}, {store.num_tasks} tasks, {rows['train']} train rows, "
          f"{rows['val']} val rows")
    return 0
