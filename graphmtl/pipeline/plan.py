"""What a run will cost, said before it starts.

:func:`plan_run` estimates, from the data's size and the settings, how many models each stage
trains and roughly how long that takes on this machine, and how much memory the largest arrays
need. :func:`run_pipeline` prints the plan's warnings before the first costly stage, each naming
the flag that changes it, so that a large graph never starts an unaffordable stage silently
(e.g. all pairs of 500 tasks, or ten thousand control models).

The time model is deliberately simple and stated: one training epoch costs ``seeds x
ms_per_seed`` where ``ms_per_seed`` is a measured throughput per CPU core of the encoder (SIGN
about 70k seed nodes per second and core, message-passing encoders about 15k), times the number
of epochs (early stopping usually halves it; the estimate keeps the bound). Models run
``compare.workers`` at a time. It is an order of magnitude, not a promise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from graphmtl.pipeline.config import PipelineConfig

#: Training throughput per CPU core, seed nodes per second (measured on this project's 2-core
#: machine on YouTube-100: SIGN 70k, SAGE 17.6k seed nodes/s, one thread).
SEEDS_PER_SECOND = {"sign": 70_000.0, "sage": 17_000.0, "gcn": 17_000.0, "gat": 8_000.0,
                    "gin": 17_000.0}
#: Batched surrogate training, floating-point operations per second and core (measured on this
#: project's 2-core machine: one chunk of 256 surrogates, 25 steps and a validation pass on
#: 20k rows, about 110 GFLOP, took 74 s at load 3, i.e. about 3e9 per unloaded core).
SURROGATE_FLOPS_PER_SECOND = 3e9
#: Shared-subspace affinity, measured on this project's 2-core machine (orkut500: 500 tasks,
#: 400k training rows, 64 inputs, 1,000 subsets of 5 scored on 100k validation rows; one thread,
#: load 2): the per-task Gram matrices at 1.3e10 multiply-adds per second (63 s), the AP scoring
#: at 3.2e6 (subset, task, row) entries per second (156 s).
SUBSPACE_GRAM_PER_SECOND = 1.3e10
SUBSPACE_ENTRIES_PER_SECOND = 3.2e6
#: A stage above this many estimated seconds gets a warning.
WARN_SECONDS = 3600.0


@dataclass(frozen=True)
class StageEstimate:
    """One stage's estimated cost.

    Attributes:
        stage: the stage name.
        models: models it trains (0 for none).
        seconds: estimated wall time.
        memory_bytes: estimated peak of its largest arrays.
        flag: the ``graphmtl run`` flag(s) that shrink it.
    """

    stage: str
    models: int
    seconds: float
    memory_bytes: float
    flag: str

    def warning(self, cores: int, memory: float) -> str | None:
        """A one-line warning when the estimate exceeds an hour or the machine's memory."""
        too_long = self.seconds > WARN_SECONDS
        too_big = memory > 0 and self.memory_bytes > 0.8 * memory
        if not (too_long or too_big):
            return None
        what = []
        if too_long:
            what.append(f"about {_human(self.seconds)} on {cores} core(s)"
                        + (f" ({self.models:,} models)" if self.models else ""))
        if too_big:
            what.append(f"about {self.memory_bytes / 2**30:.1f} GiB of "
                        f"{memory / 2**30:.0f} GiB memory")
        return f"stage {self.stage}: {' and '.join(what)}; to shrink it: {self.flag}"


def _human(seconds: float) -> str:
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def machine_memory() -> float:
    """Physical memory in bytes (0 when unknown)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0.0


def plan_run(config: PipelineConfig, graph) -> list[StageEstimate]:
    """Estimates of the stages of ``config`` on ``graph`` (a
    :class:`~graphmtl.data.MultiTaskGraph`)."""
    from graphmtl.pipeline.methods import METHODS

    cfg = config
    n, N = graph.num_tasks, graph.num_nodes
    workers = max(1, cfg.compare.workers)
    rate = SEEDS_PER_SECOND.get(cfg.model.encoder, 15_000.0)
    p = float(graph.train_mask.float().mean().item())    # one task's share of training nodes
    k = n ** 0.5 if cfg.k == "auto" else int(cfg.k)       # a typical k for "auto"

    def per_model(tasks: float) -> float:
        """Seconds to train one model on ``tasks`` tasks (its seeds: the nodes any of them
        labels for training, assuming independent label sets)."""
        share = 1 - (1 - p) ** max(tasks, 1.0)
        return N * share * cfg.train.epochs / rate

    out = []
    feats = N * graph.num_features * (cfg.model.sign_hops + 1) * 4
    if "base" in METHODS[cfg.affinity.method].needs:
        out.append(StageEstimate("base", 1, per_model(n), feats + 2 * N * n * 4,
                                 "--epochs, or another --affinity"))
    if cfg.affinity.method in ("surrogate", "combined"):
        out.append(_surrogate_estimate(cfg, graph, feats))
    if cfg.affinity.method == "subspace":
        out.append(_subspace_estimate(cfg, graph, feats))
    if cfg.affinity.method == "trained":
        m = cfg.affinity.num_subsets or 150
        s = cfg.affinity.subset_size or 5
        out.append(StageEstimate("affinity", m, m * per_model(s) / workers, feats,
                                 "--subsets, or --affinity surrogate"))
    if cfg.compare.pairwise:
        pairs = cfg.compare.num_pairs(n)
        out.append(StageEstimate("pairwise", pairs + n, (pairs * per_model(2) + n * per_model(1))
                                 / workers, feats, "--pairwise-pairs N, or --no-pairwise"))
    groupings = 1 + int(cfg.compare.pairwise) + int(cfg.compare.single_task)
    # each grouping's own size profile gets its random draws; one model on all tasks per seed
    per_seed = groupings * (1 + cfg.compare.random_draws) * k + 1
    models = int(cfg.compare.seeds * per_seed)
    out.append(StageEstimate("groups", models, models * per_model(n / k) / workers, feats,
                             "--seeds, --random-draws, --k, or --no-pairwise"))
    return out


def _surrogate_estimate(cfg: PipelineConfig, graph, feats: float) -> StageEstimate:
    """Batched surrogate training: per chunk of ``B`` subsets, ``steps`` training steps on
    ``batch_size`` rows and ``steps / eval_every`` passes over the validation rows, each a
    two-layer MLP of ``input_dim x hidden x s`` multiply-adds per row and subset (a training
    step counts three times: forward and backward), plus the sort of every validation pass."""
    import torch

    from graphmtl.affinity import SurrogateAffinityEstimator, SurrogateConfig
    from graphmtl.pipeline.methods import subset_args

    sc = SurrogateConfig()
    sizes = subset_args(SurrogateAffinityEstimator, cfg.affinity, graph.num_tasks)
    m, s = sizes["num_subsets"], sizes["subset_size"]
    val_rows = float(graph.val_mask.any(1).sum())
    if sc.val_rows is not None:                    # the scored rows are budgeted
        val_rows = min(val_rows, float(sc.val_rows))
    D = sc.input_dim or graph.num_features * (sc.hops + 1)
    per_row = 2.0 * (D * sc.hidden + sc.hidden * s)
    passes = sc.steps // sc.eval_every
    # ranking every task's validation scores for AP: a sort, counted as 20 operations per
    # element and comparison level
    sort = passes * m * s * val_rows * 20 * np.log2(max(val_rows, 2))
    flops = m * per_row * (3 * sc.steps * sc.batch_size + passes * val_rows) + sort
    B = min(m, sc.chunk)
    memory = feats + B * val_rows * s * 6 + (1 << 25) * 24     # logits, labels, AP blocks
    cores = os.cpu_count() or 1
    device = str(cfg.train.device or "cpu")
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        cores *= 100                                            # a GPU: not the bottleneck
    return StageEstimate("affinity", m, flops / (SURROGATE_FLOPS_PER_SECOND * cores), memory,
                         "--subsets, --device cuda, or --affinity head_cosine")


def _subspace_estimate(cfg: PipelineConfig, graph, feats: float) -> StageEstimate:
    """Shared-subspace models: one Gram matrix per task over the training rows (``input_dim²``
    multiply-adds per row; tasks that share their rows share it, so this is an upper bound),
    then one AP per (subset, task) over that task's scored validation rows."""
    from graphmtl.affinity import SubspaceAffinityEstimator, SubspaceConfig
    from graphmtl.pipeline.methods import subset_args

    sc = SubspaceConfig()
    sizes = subset_args(SubspaceAffinityEstimator, cfg.affinity, graph.num_tasks)
    m, s = sizes["num_subsets"], sizes["subset_size"]
    rows = float(graph.train_mask.any(1).sum())
    union = float(graph.val_mask.any(1).sum())
    kept = 1.0 if sc.val_rows is None or union <= sc.val_rows else sc.val_rows / union
    task_val_rows = float(graph.val_mask.sum(0).double().mean()) * kept     # rows a column sorts
    D = sc.input_dim or graph.num_features * (sc.hops + 1)
    seconds = (graph.num_tasks * rows * D * D / SUBSPACE_GRAM_PER_SECOND
               + m * s * task_val_rows / SUBSPACE_ENTRIES_PER_SECOND)
    memory = feats + sc.row_chunk * D * D * 8 + (1 << 25) * 80      # Gram block, AP temporaries
    return StageEstimate("affinity", m, seconds, memory, "--subsets, or --affinity head_cosine")


def plan_warnings(config: PipelineConfig, graph) -> list[str]:
    """The one-line warnings of :func:`plan_run` for this machine."""
    cores = os.cpu_count() or 1
    memory = machine_memory()
    return [w for e in plan_run(config, graph) if (w := e.warning(cores, memory))]
