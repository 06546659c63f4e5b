"""Judging task groupings: one model per group against random groups of the same sizes.

>>> from graphmtl.evaluation import GroupingBenchmark, summarize
>>> bench = GroupingBenchmark(model_config, train_config, random_draws=5)
>>> runs = [bench.run_seed(graph_s, {"mine": groups_s}, seed=s) for s, (graph_s, groups_s) in ...]
>>> print(summarize(runs).table())
"""

from graphmtl.evaluation.benchmark import (ALL_TASKS, METRIC_LABELS, METRICS, RANDOM,
                                           RERUN_SEED_SHIFT, BenchmarkResult, GroupingBenchmark,
                                           GroupingRun, MethodSummary, SeedComparison,
                                           canonical_groups, random_groups, size_profile,
                                           summarize)
from graphmtl.evaluation.partners import (PartnerSignal, PartnerTest, mean_partner_signal,
                                          partner_means, partner_signal, partner_test)
from graphmtl.evaluation.statistics import Interval, paired_difference

__all__ = ["ALL_TASKS", "BenchmarkResult", "GroupingBenchmark", "GroupingRun", "Interval",
           "METRICS", "METRIC_LABELS", "MethodSummary", "PartnerSignal", "PartnerTest", "RANDOM",
           "RERUN_SEED_SHIFT", "SeedComparison", "canonical_groups", "mean_partner_signal",
           "paired_difference", "partner_means", "partner_signal", "partner_test",
           "random_groups", "size_profile", "summarize"]
