"""``graphmtl project``: projected gradients of a trained checkpoint into a bounded store."""

from __future__ import annotations

import argparse
from pathlib import Path

from graphmtl.cli._common import (add_command, argtype, build_config, cleanup_on_failure,
                                  config_options, flag_names, load_checkpoint, load_data,
                                  parse_projection_fanouts)
from graphmtl.errors import GraphMTLError, check

HELP = "projected per-(node, task) gradients of a trained model (Grad-TAG)"


def register(subparsers) -> None:
    from graphmtl.projection import STRATEGIES, ProjectionConfig

    p = add_command(
        subparsers, "project", help=HELP,
        description="Compute z_t(v) = P^T grad f_t(v) for every stored (node, task) row of the "
                    "train and val splits by forward-mode differentiation, and write them with "
                    "the base logits, labels and sampling weights to a resumable store "
                    "(re-run the same command to continue an interrupted run).")
    p.add_argument("--checkpoint", required=True, type=Path, help="trained model (graphmtl train)")
    p.add_argument("--data", required=True,
                   help="dataset spec (e.g. snap:youtube,k=100) or a saved graph .npz")
    p.add_argument("--out", required=True, type=Path, help="store directory")
    proj = p.add_argument_group("projection (ProjectionConfig)")
    config_options(proj, ProjectionConfig, "projection", choices={"strategy": STRATEGIES},
                   types={"fanouts": argtype(parse_projection_fanouts, "fanouts")},
                   helps={"train_budget": "most rows stored per task in the train split "
                                          "(default: --budget, else this)",
                          "val_budget": "most rows stored per task in the val split "
                                        "(default: --budget, else this)",
                          "fanouts": "neighbours per layer, e.g. 10,5; full (exact); auto: full "
                                     "up to 4M directed edges, else the training default 10,5",
                          "device": "cpu, cuda, cuda:N or auto; under torchrun, cuda is each "
                                    "rank's GPU"})
    proj.add_argument("--budget", type=int, default=None,
                      help="most rows per task in each of train and val (default: the budgets "
                           "above)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--restart", action="store_true",
                   help="start over instead of resuming an unfinished store")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from graphmtl.projection import GradientProjector, ProjectionConfig, select_parameters
    from graphmtl.training import graph_digest, node_inputs
    from graphmtl.utils.distributed import init_from_env, rank_world
    from graphmtl.utils.io import file_digest

    # Settings first (no data needed), then the checkpoint and data against them, then work.
    check(args.budget is None or args.budget >= 2, f"--budget: must be >= 2, got {args.budget}")
    budgets = {s: getattr(args, f"projection.{s}_budget") for s in ("train", "val")}
    config = build_config(args, "projection", ProjectionConfig,
                          **{f"{s}_budget": args.budget if b is None else b
                             for s, b in budgets.items()})
    check(args.threads is None or args.threads >= 1,
          f"--threads: must be >= 1, got {args.threads}")
    ckpt = load_checkpoint(args.checkpoint)
    mc = ckpt.model_config
    check(not isinstance(config.fanouts, tuple) or not mc.uses_message_passing
          or len(config.fanouts) == mc.num_layers,
          f"--fanouts: {len(config.fanouts or ())} values for the checkpoint's "
          f"{mc.num_layers} message-passing layers (give one per layer)")
    try:
        select_parameters(ckpt.model, config.params)
    except GraphMTLError as e:
        raise GraphMTLError(flag_names(str(e), {"params": "--params"})) from None
    graph = load_data(args.data)
    missing = [t for t in ckpt.task_names if t not in set(graph.task_names)]
    check(not missing, f"{args.checkpoint}: task {missing[0]!r} of the checkpoint is not in "
                       f"--data {args.data}" if missing else "")
    if list(graph.task_names) != list(ckpt.task_names):
        graph = graph.select_tasks(ckpt.task_names)
    width = node_inputs(graph, mc).shape[1]
    check(width == ckpt.in_channels,
          f"{args.checkpoint}: model expects {ckpt.in_channels} input features, --data "
          f"{args.data} gives {width}")
    digest = graph_digest(graph)
    check(not ckpt.data_hash or ckpt.data_hash == digest,
          f"{args.checkpoint}: trained on other data (graph digest {ckpt.data_hash}, --data "
          f"{args.data} has {digest})")
    # Same features and edges are not enough: other splits (e.g. seed=1) would put the model's
    # training rows among the store's validation rows.
    ckpt.check_data(graph, f"--data {args.data}")
    if args.threads:
        torch.set_num_threads(args.threads)
    init_from_env(config.device)   # torchrun: every rank projects its share of the nodes
    with cleanup_on_failure(args.out):
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
