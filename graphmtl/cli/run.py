"""``graphmtl run``: the whole pipeline on one dataset, with a comparison report.

Every setting of :class:`~graphmtl.pipeline.PipelineConfig` and its nested configs is a flag
(read from the config classes: a new field becomes a flag ``--<section>-<field>``); flags
override a ``--config`` file, which overrides the defaults.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from functools import partial
from pathlib import Path

from graphmtl.cli._common import (MODEL_FLAGS, TRAIN_FLAGS, add_command, argtype, build_config,
                                  cleanup_on_failure, config_options, config_values,
                                  default_fanouts, load_data, parse_k, parse_projection_fanouts,
                                  read_json_file)
from graphmtl.errors import check

HELP = "affinities -> groups -> one model per group, judged against random groups"


def register(sub: argparse._SubParsersAction) -> None:
    from graphmtl.clustering.estimator import SOLVERS
    from graphmtl.evaluation.benchmark import GROUP_INITS
    from graphmtl.models import ENCODERS
    from graphmtl.pipeline import PipelineConfig
    from graphmtl.pipeline.config import AFFINITY_METHODS, GRADTAG_MODES
    from graphmtl.projection import STRATEGIES
    from graphmtl.training.config import METRICS

    d = PipelineConfig()
    p = add_command(
        sub, "run", help=HELP,
        description="Run every stage on a dataset and write an HTML + markdown report. "
                    "Re-running skips stages whose inputs did not change; a killed run resumes. "
                    "Flags override --config, which overrides the defaults shown.")
    p.add_argument("--out", default=None,
                   help="run directory (default: runs/<dataset spec>)")
    p.add_argument("--config", default=None,
                   help="JSON file with a PipelineConfig (all or some keys; default: none)")
    p.add_argument("--quiet", action="store_true", help="no stage lines or progress bars")
    top = p.add_argument_group("run (PipelineConfig)")
    config_options(top, d, "pipeline", override=True,
                   only=("data", "data_root", "k", "cluster_solver", "seed"),
                   flags={"data_root": "--root", "k": "--k", "cluster_solver": "--solver"},
                   types={"k": argtype(parse_k, "k")},
                   choices={"cluster_solver": SOLVERS},
                   helps={"data_root": "where bare dataset names are looked up (default: "
                                       "$GRAPHMTL_DATA, else the default search)",
                          "cluster_solver": "SDP solver of the clustering stage (see graphmtl "
                                            "cluster --help)"})
    config_options(p.add_argument_group("model (ModelConfig)"), d.model, "model", override=True,
                   flags=MODEL_FLAGS, choices={"encoder": ENCODERS})
    config_options(p.add_argument_group("training of every model (TrainConfig)"), d.train,
                   "train", override=True, flags={**TRAIN_FLAGS, "seed": "--train-seed"},
                   choices={"metric": METRICS})
    proj = p.add_argument_group("gradient projection (ProjectionConfig)")
    config_options(proj, d.projection, "projection", override=True, prefix="projection-",
                   flags={"dim": "--dim", "train_budget": "--train-budget",
                          "val_budget": "--val-budget"},
                   choices={"strategy": STRATEGIES},
                   types={"fanouts": argtype(lambda t: parse_projection_fanouts(
                       t, "--projection-fanouts"), "fanouts")},
                   helps={"fanouts": "neighbours per layer, e.g. 10,5; full (exact); auto: full "
                                     "up to 4M directed edges, else the training default 10,5"})
    proj.add_argument("--budget", type=int, default=None,
                      help="sets both --train-budget and --val-budget")
    config_options(p.add_argument_group("task affinity (AffinityConfig)"), d.affinity,
                   "affinity", override=True, prefix="affinity-",
                   flags={"method": "--affinity", "mode": "--gradtag-mode",
                          "num_subsets": "--subsets", "subset_size": "--subset-size",
                          "lam": "--lambda", "standardize": "--standardize"},
                   choices={"method": AFFINITY_METHODS, "mode": GRADTAG_MODES},
                   types={"num_subsets": argtype(lambda t: _int_or_none(t, "--subsets"), "int"),
                          "subset_size": argtype(lambda t: _int_or_none(t, "--subset-size"),
                                                 "int")})
    config_options(p.add_argument_group("how the groups are judged (CompareConfig)"), d.compare,
                   "compare", override=True, prefix="compare-",
                   flags={"pairwise": "--pairwise", "pairwise_pairs": "--pairwise-pairs",
                          "random_draws": "--random-draws", "seeds": "--seeds",
                          "single_task": "--single-task", "group_init": "--group-init",
                          "partner_signal": "--partner-signal",
                          "workers": "--workers"},
                   choices={"group_init": GROUP_INITS},
                   types={"pairwise_pairs": argtype(_pairs, "pairs")})
    p.set_defaults(func=_run)


def _int_or_none(text: str, flag: str) -> int | None:
    t = text.strip().lower()
    if t in ("none", "default"):
        return None
    check(t.isdigit(), f"{flag}: expected a positive integer or 'default', got {text!r}")
    return int(t)


def _pairs(text: str) -> int | str:
    t = text.strip().lower()
    check(t in ("auto", "all") or (t.isdigit() and int(t) >= 1),
          f"--pairwise-pairs: expected auto, all or a positive integer, got {text!r}")
    return t if t in ("auto", "all") else int(t)


def configure(args: argparse.Namespace):
    """The validated :class:`PipelineConfig` of ``--config`` and the flags (no data needed)."""
    from graphmtl.pipeline import PipelineConfig

    base = (PipelineConfig.from_dict(read_json_file(args.config, "--config"),
                                     name=f"--config {args.config}")
            if args.config else PipelineConfig())
    model = build_config(args, "model", partial(replace, base.model))
    train_extra = {}
    if ("fanouts" not in config_values(args, "train") and model.uses_message_passing
            and len(base.train.fanouts) != model.num_layers):
        train_extra["fanouts"] = default_fanouts(model.num_layers)
    train = build_config(args, "train", partial(replace, base.train), **train_extra)
    check(args.budget is None or args.budget >= 2, f"--budget: must be >= 2, got {args.budget}")
    given = config_values(args, "projection")
    budgets = {f"{s}_budget": args.budget for s in ("train", "val")
               if args.budget is not None and f"{s}_budget" not in given}
    projection = build_config(args, "projection", partial(replace, base.projection), **budgets)
    affinity = build_config(args, "affinity", partial(replace, base.affinity))
    compare = build_config(args, "compare", partial(replace, base.compare))
    return build_config(args, "pipeline", partial(replace, base), model=model, train=train,
                        projection=projection, affinity=affinity, compare=compare)


def _run(args: argparse.Namespace) -> int:
    from graphmtl.pipeline import run_pipeline

    config = configure(args)
    out = Path(args.out) if args.out else Path("runs") / re.sub(r"[^A-Za-z0-9_.=-]+", "_",
                                                                   config.data)
    check(not out.exists() or out.is_dir(), f"--out {out}: exists and is not a directory")
    # Everything that depends on the data is checked before the run directory is created:
    # a bad --k fails in seconds, not after the base model, projection and affinity stages.
    graph = load_data(config.data, "--data", root=config.data_root)
    config.validate_against(graph)
    del graph

    def resumable() -> bool:  # a stage past the data ran: keep it for a re-run to resume
        return out.is_dir() and any(q.is_dir() and q.name != "data" for q in out.iterdir())

    with cleanup_on_failure(out, keep=resumable):
        result = run_pipeline(config, out, quiet=args.quiet, progress=not args.quiet)
    print(result.table())
    print(f"report: {result.report_html}")
    print(f"        {result.report_md}")
    return 0
