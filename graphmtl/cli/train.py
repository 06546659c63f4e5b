"""``graphmtl train``: train one multitask GNN on a task selection of a dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graphmtl.cli._common import (MODEL_FLAGS, TRAIN_FLAGS, add_command, argtype, build_config,
                                  cleanup_on_failure, config_options, default_fanouts,
                                  load_checkpoint, load_data, parse_fanouts, parse_tasks,
                                  resolve_tasks)
from graphmtl.errors import check

HELP = "train a multitask GNN on some or all tasks"


def register(subparsers) -> None:
    from graphmtl.models import ENCODERS, ModelConfig
    from graphmtl.training.config import METRICS, TrainConfig

    p = add_command(
        subparsers, "train", help=HELP,
        description="Train one multitask GNN (shared encoder, one logit per task) and report "
                    "per-task test F1 / ROC-AUC / AP. Writes OUT/model.pt (best weights), "
                    "OUT/last.pt (for --resume) and OUT/results.json.")
    p.add_argument("--data", required=True,
                   help="dataset spec (e.g. snap:youtube,k=100) or a saved graph .npz")
    p.add_argument("--tasks", default="all",
                   help="'all', a comma-separated list of task names / positions, or a file "
                        "with one task per line")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    model = p.add_argument_group("model (ModelConfig)")
    config_options(model, ModelConfig, "model", flags=MODEL_FLAGS, choices={"encoder": ENCODERS})
    train = p.add_argument_group("training (TrainConfig)")
    config_options(train, TrainConfig, "train", flags=TRAIN_FLAGS, skip=("fanouts",),
                   choices={"metric": METRICS})
    d = TrainConfig().fanouts
    train.add_argument("--fanouts", dest="train.fanouts", default=None,
                       type=argtype(lambda s: parse_fanouts(s, "--fanouts"), "fanouts"),
                       help=f"neighbours sampled per layer, e.g. 10,5 (-1 = all) (default: "
                            f"{','.join(map(str, d))} for {len(d)} layers, {d[0]} per layer "
                            "otherwise)")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt if present")
    p.add_argument("--init-from", type=Path, default=None,
                   help="checkpoint to warm start from (encoder + head rows matched by task "
                        "name; default: random initial weights)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def configs(args: argparse.Namespace):
    """The validated ``(ModelConfig, TrainConfig)`` of the command line (errors name flags)."""
    from graphmtl.models import ModelConfig
    from graphmtl.training import TrainConfig

    mc = build_config(args, "model", ModelConfig)
    fanouts = getattr(args, "train.fanouts") or default_fanouts(mc.num_layers)
    tc = build_config(args, "train", TrainConfig, fanouts=fanouts)
    check(not mc.uses_message_passing or len(tc.fanouts) == mc.num_layers,
          f"--fanouts: {len(tc.fanouts)} values {list(tc.fanouts)} for --layers "
          f"{mc.num_layers} (give one per message-passing layer)")
    return mc, tc


def run(args: argparse.Namespace) -> int:
    from graphmtl.training import Trainer, evaluate
    from graphmtl.utils.distributed import init_from_env, rank_world
    from graphmtl.utils.io import atomic_write_json

    # Everything that needs no data first, then everything against the data, then the work.
    tasks = parse_tasks(args.tasks)
    mc, tc = configs(args)
    init_from_env(tc.device)   # torchrun: join the process group (DDP over seed batches)
    trainer = Trainer(mc, tc)
    ck = load_checkpoint(args.init_from, "--init-from") if args.init_from is not None else None
    graph = load_data(args.data)
    tasks = resolve_tasks(tasks, graph.task_names)
    if ck is not None:
        selected = graph.task_names if tasks == "all" else tasks
        missing = [t for t in selected if t not in set(ck.task_names)]
        check(not missing, f"--init-from {args.init_from}: has {ck.num_tasks} tasks but the data "
                           f"has {graph.num_tasks}; task {missing[0] if missing else ''!r} is "
                           "missing from the checkpoint (select tasks with --tasks)")
    with cleanup_on_failure(args.out):
        result = trainer.fit(graph, tasks, init_from=ck, out_dir=args.out,
                             resume=args.resume, progress=not args.no_progress)
        if rank_world()[0] != 0:   # rank 0 reports
            return 0
        test = evaluate(result.model, graph, result.task_names, "test",
                        fanouts=tc.eval_fanouts, device=tc.device)
        out = {
            "data": args.data, "tasks": result.task_names,
            "model_config": mc.to_dict(), "train_config": tc.to_dict(),
            "init_from": None if args.init_from is None else str(args.init_from),
            "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early, "timings": result.timings,
            "history": result.history, "val": result.val_metrics.to_dict(),
            "test": test.to_dict(), "checkpoint": str(result.checkpoint_path),
        }
        atomic_write_json(args.out / "results.json", out)
    print(test.table(max_rows=50))
    print(f"best epoch {result.best_epoch} of {result.epochs_run}; "
          f"train {result.timings['train_s']:.1f}s "
          f"({result.timings['seed_nodes_per_s']:.0f} seed nodes/s); "
          f"test macro F1 {test.macro_f1:.4f}, ROC-AUC {test.macro_roc_auc:.4f}, "
          f"AP {test.macro_ap:.4f}")
    print(f"wrote {result.checkpoint_path} and {args.out / 'results.json'}", file=sys.stderr)
    return 0
