"""``graphmtl train``: train one multitask GNN on a task selection of a dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graphmtl.errors import GraphMTLError, check


def register(subparsers) -> None:
    from graphmtl.models import ENCODERS
    from graphmtl.training.config import METRICS, TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser(
        "train", help="train a multitask GNN on some or all tasks",
        description="Train one multitask GNN (shared encoder, one logit per task) and report "
                    "per-task test F1 / ROC-AUC / AP. Writes OUT/model.pt (best weights), "
                    "OUT/last.pt (for --resume) and OUT/results.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True,
                   help="dataset spec (e.g. snap:youtube,k=100) or a saved graph .npz")
    p.add_argument("--tasks", default="all",
                   help="'all', a comma-separated list of task names / positions, or a file "
                        "with one task per line")
    p.add_argument("--model", default="sage", choices=ENCODERS, help="encoder")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2, help="message-passing (or SIGN MLP) layers")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--heads", type=int, default=2, help="GAT attention heads")
    p.add_argument("--sign-hops", type=int, default=3, help="SIGN propagation hops")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--fanouts", default=None,
                   help="neighbours per layer, e.g. 10,5 (-1 = all); default 10,5 for 2 layers, "
                        "10 per layer otherwise")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="evaluations without improvement before stopping (0: never)")
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--metric", default=d.metric, choices=METRICS,
                   help="validation metric for model selection")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.num_threads,
                   help="torch threads during training")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt if present")
    p.add_argument("--init-from", type=Path, default=None,
                   help="checkpoint to warm start from (encoder + head rows matched by task name)")
    p.add_argument("--device", default=d.device,
                   help="cpu, cuda, cuda:N or auto; under torchrun, cuda is each rank's GPU")
    p.add_argument("--eval-fanouts", default=None,
                   help="sampled validation/test evaluation, e.g. 10,5 (default: exact full "
                        "neighbourhoods, layer-wise on large graphs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def load_data(spec: str):
    """Resolve ``--data``: a saved ``.npz`` graph, else a dataset spec."""
    from graphmtl.data.graph import MultiTaskGraph

    if spec.endswith(".npz") and Path(spec).is_file():
        return MultiTaskGraph.load(spec)
    try:
        from graphmtl.data.sources import load_dataset
    except ImportError:
        raise GraphMTLError(f"--data {spec!r}: dataset specs need graphmtl.data.sources; give "
                            "a saved .npz graph instead") from None
    return load_dataset(spec)


def parse_tasks(text: str) -> str | list[str]:
    """``all``, a comma-separated list, or ``@FILE`` / an existing file with one task a line."""
    text = text.strip()
    check(text != "", "--tasks: the task list is empty")
    if text == "all":
        return "all"
    path = Path(text[1:] if text.startswith("@") else text)
    if text.startswith("@") or (path.is_file() and "," not in text):
        check(path.is_file(), f"--tasks {text}: file not found")
        lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
        tasks = [t for ln in lines for t in ln.split(",") if t.strip()]
        check(tasks, f"--tasks {path}: no task names in the file")
        return [t.strip() for t in tasks]
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    check(tasks, "--tasks: the task list is empty")
    return tasks


def run(args: argparse.Namespace) -> int:
    from graphmtl.models import ModelConfig
    from graphmtl.training import TrainConfig, Trainer, evaluate
    from graphmtl.utils.distributed import init_from_env, rank_world
    from graphmtl.utils.io import atomic_write_json

    tasks = parse_tasks(args.tasks)
    mc = ModelConfig(encoder=args.model, hidden=args.hidden, num_layers=args.layers,
                     dropout=args.dropout, heads=args.heads, sign_hops=args.sign_hops)
    fanouts = args.fanouts or ([10, 5] if args.layers == 2 else [10] * args.layers)
    tc = TrainConfig(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                     batch_size=args.batch_size, fanouts=fanouts, patience=args.patience,
                     eval_every=args.eval_every, seed=args.seed, metric=args.metric,
                     num_threads=args.threads, device=args.device,
                     eval_fanouts=args.eval_fanouts)
    init_from_env(tc.device)   # torchrun: join the process group (DDP over seed batches)
    if args.init_from is not None:
        check(args.init_from.is_file(), f"--init-from {args.init_from}: file not found")
    trainer = Trainer(mc, tc)
    graph = load_data(args.data)
    if args.init_from is not None and tasks == "all":
        from graphmtl.training import load_checkpoint

        ck = load_checkpoint(args.init_from)
        missing = [t for t in graph.task_names if t not in set(ck.task_names)]
        check(not missing, f"--init-from {args.init_from}: has {ck.num_tasks} tasks but the data "
                           f"has {graph.num_tasks}; task {missing[0] if missing else ''!r} is "
                           "missing from the checkpoint (select tasks with --tasks)")
    result = trainer.fit(graph, tasks, init_from=args.init_from, out_dir=args.out,
                         resume=args.resume, progress=not args.no_progress)
    if rank_world()[0] != 0:   # rank 0 reports
        return 0
    test = evaluate(result.model, graph, result.task_names, "test", fanouts=tc.eval_fanouts,
                    device=tc.device)
    out = {
        "data": args.data, "tasks": result.task_names,
        "model_config": mc.to_dict(), "train_config": tc.to_dict(),
        "init_from": None if args.init_from is None else str(args.init_from),
        "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "stopped_early": result.stopped_early, "timings": result.timings,
        "history": result.history, "val": result.val_metrics.to_dict(), "test": test.to_dict(),
        "checkpoint": str(result.checkpoint_path),
    }
    atomic_write_json(args.out / "results.json", out)
    print(test.table(max_rows=50))
    print(f"best epoch {result.best_epoch} of {len(result.history)}; "
          f"train {result.timings['train_s']:.1f}s "
          f"({result.timings['seed_nodes_per_s']:.0f} seed nodes/s); "
          f"test macro F1 {test.macro_f1:.4f}, ROC-AUC {test.macro_roc_auc:.4f}, "
          f"AP {test.macro_ap:.4f}")
    print(f"wrote {result.checkpoint_path} and {args.out / 'results.json'}", file=sys.stderr)
    return 0
