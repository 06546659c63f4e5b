"""``graphmtl compare``: judge groupings against random groups of the same sizes.

A thin layer over :class:`graphmtl.evaluation.GroupingBenchmark`: every grouping given with
``--groups NAME=FILE`` (a ``groups.json`` of ``graphmtl cluster`` or ``graphmtl run``, read by task
name) gets one model per group, trained over ``--seeds`` training seeds, next to ``--draws``
random groupings of the same group sizes per seed and one model on all tasks; the table gives each
grouping's test scores and its paired differences with 95 % intervals.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from graphmtl.cli._common import (MODEL_FLAGS, TRAIN_FLAGS, add_command, build_config,
                                  cleanup_on_failure, config_options, default_fanouts,
                                  load_data, read_json_file)
from graphmtl.errors import check

HELP = "judge groupings against random groups of the same sizes and one all-task model"


def register(subparsers) -> None:
    from graphmtl.evaluation.benchmark import GROUP_INITS
    from graphmtl.models import ENCODERS, ModelConfig
    from graphmtl.pipeline import CompareConfig
    from graphmtl.training.config import METRICS, TrainConfig

    d = CompareConfig()   # the same defaults as graphmtl run's comparison

    p = add_command(
        subparsers, "compare", help=HELP,
        description="Train one model per group for every --groups file, for random groupings "
                    "of the same sizes and for one model on all tasks, over several training "
                    "seeds; print test AP / ROC-AUC / F1 with paired differences and 95 %% "
                    "intervals, and write OUT/comparison.json and OUT/comparison.md.")
    p.add_argument("--data", required=True,
                   help="dataset spec (e.g. snap:youtube,k=100) or a saved graph .npz / .pt")
    p.add_argument("--groups", required=True, nargs="+", metavar="NAME=FILE",
                   help="groupings to judge: a name and a groups.json (with task_names and "
                        "labels, or groups: {id: [task names]})")
    p.add_argument("--planted", action="store_true",
                   help="also judge the planted groups of a synthetic graph, and report ARIs")
    p.add_argument("--seeds", type=int, default=d.seeds,
                   help="training seeds (the interval is Welch over the training runs)")
    p.add_argument("--draws", type=int, default=d.random_draws,
                   help="random groupings per seed and group-size profile")
    p.add_argument("--group-init", choices=GROUP_INITS, default=d.group_init,
                   help="how every model but the all-task one starts: scratch (fresh weights) "
                        "or all_tasks (fine-tuned from the seed's all-task model)")
    p.add_argument("--partner-signal", action="store_true", default=d.partner_signal,
                   help="also train every random draw a second time and report how much of a "
                        "task's score its partners decide (doubles the random controls' cost)")
    p.add_argument("--workers", type=int, default=d.workers, help="processes training models")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    config_options(p.add_argument_group("model (ModelConfig)"), ModelConfig, "model",
                   flags=MODEL_FLAGS, choices={"encoder": ENCODERS})
    config_options(p.add_argument_group("training (TrainConfig)"), TrainConfig, "train",
                   flags=TRAIN_FLAGS, skip=("fanouts",), choices={"metric": METRICS})
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def read_groups(text: str, task_names: list[str]):
    """``NAME=FILE`` -> ``(name, group id per task [n])``, matched by task name."""
    import numpy as np

    name, eq, path = text.partition("=")
    check(eq == "=" and name.strip() and path.strip(),
          f"--groups: expected NAME=FILE, got {text!r}")
    data = read_json_file(path.strip(), f"--groups {name}")
    check(isinstance(data, dict), f"--groups {path}: expected a JSON object")
    if "groups" in data and isinstance(data["groups"], dict):
        of = {t: g for g, ts in data["groups"].items() for t in ts}
    else:
        labels, names = data.get("labels"), data.get("task_names")
        check(isinstance(labels, list) and isinstance(names, list) and len(labels) == len(names),
              f"--groups {path}: needs 'task_names' and 'labels' of equal length, or 'groups'")
        of = dict(zip(names, labels))
    missing = [t for t in task_names if t not in of]
    check(not missing, f"--groups {path}: task {missing[0] if missing else ''!r} of --data has "
                       "no group")
    extra = sorted(set(of) - set(task_names))
    check(not extra, f"--groups {path}: task {extra[0] if extra else ''!r} is not in --data")
    ids = {g: i for i, g in enumerate(dict.fromkeys(str(of[t]) for t in task_names))}
    return name.strip(), np.array([ids[str(of[t])] for t in task_names])


def run(args: argparse.Namespace) -> int:
    from graphmtl.evaluation import (GroupingBenchmark, mean_partner_signal, size_profile,
                                     summarize)
    from graphmtl.models import ModelConfig
    from graphmtl.training import TrainConfig
    from graphmtl.utils.io import atomic_path, atomic_write_json

    check(args.seeds >= 1, f"--seeds: must be >= 1, got {args.seeds}")
    check(args.draws >= 1, f"--draws: must be >= 1, got {args.draws}")
    check(args.workers >= 1, f"--workers: must be >= 1, got {args.workers}")
    mc = build_config(args, "model", ModelConfig)
    tc = build_config(args, "train", TrainConfig, fanouts=default_fanouts(mc.num_layers))
    graph = load_data(args.data)
    groupings = dict(read_groups(g, graph.task_names) for g in args.groups)
    planted = None
    if args.planted:
        planted = graph.provenance.get("planted_groups")
        check(planted is not None and len(planted) == graph.num_tasks,
              f"--planted: --data {args.data} has no planted groups")
    bench = GroupingBenchmark(mc, tc, metric=tc.metric if tc.metric in ("ap", "roc_auc")
                              else "ap", random_draws=args.draws, workers=args.workers,
                              group_init=args.group_init, rerun_draws=args.partner_signal,
                              progress=not args.no_progress)
    def trained_some() -> bool:   # a failure after some models finished: keep them to resume
        f = args.out / "models.jsonl"
        return f.is_file() and len(f.read_text().splitlines()) > 1

    with cleanup_on_failure(args.out, keep=trained_some):
        runs = [bench.run_seed(graph, groupings, seed=tc.seed + s, planted=planted,
                               results=args.out / "models.jsonl") for s in range(args.seeds)]
        # One split, fixed groupings; the seeds vary only the training: Welch over the runs.
        result = summarize(runs, metric=bench.metric, design="runs")
        verdicts = [f"{m.name}: {m.verdict()}." for m in result.methods]
        signals, profiles = {}, set()
        for name in (runs[0].methods if args.partner_signal else ()):
            profile = size_profile(runs[0].methods[name].groups)
            if profile not in profiles:        # groupings of equal sizes share their draws
                profiles.add(profile)
                signals[name] = mean_partner_signal(
                    [r.partner_signal(name, metric=bench.metric) for r in runs])
        verdicts += [f"Partner signal on the random draws of {name}'s group sizes: "
                     f"{sig.describe()}" for name, sig in signals.items()]
        table = result.table()
        atomic_write_json(args.out / "comparison.json",
                          {"data": args.data, "groupings": {k: v.tolist()
                                                            for k, v in groupings.items()},
                           "result": result.to_dict(), "verdicts": verdicts,
                           "partner_signal": {k: v.to_dict() for k, v in signals.items()}})
        with atomic_path(args.out / "comparison.md") as tmp:
            tmp.write_text(f"# graphmtl compare: {args.data}\n\n{table}\n\n"
                           + "\n".join(f"- {v}" for v in verdicts) + "\n")
    print(table)
    print()
    print("\n".join(verdicts))
    print(f"written: {args.out / 'comparison.json'}, {args.out / 'comparison.md'}")
    return 0
