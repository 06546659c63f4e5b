"""Task affinity: Grad-TAG estimates from projected gradients, and the trained baselines.

>>> from graphmtl.affinity import GradTAGEstimator
>>> est = GradTAGEstimator(num_subsets=2000, subset_size=10).fit("runs/store")
>>> est.affinity_          # [n, n] symmetric, zero diagonal
"""

from graphmtl.affinity.baselines import (TrainedAffinityEstimator, TrainedScores,
                                         TrainedSubsetScores, check_store_matches,
                                         gradient_cosine, val_rows_from_store)
from graphmtl.affinity.estimator import (MODES, GradTAGEnsemble, GradTAGEstimator,
                                         check_store_rows)
from graphmtl.affinity.signals import head_cosine_affinity, label_cooccurrence_affinity
from graphmtl.affinity.surrogate import SurrogateAffinityEstimator, SurrogateConfig
from graphmtl.affinity.matrices import (gradient_cosine_affinity, higher_order_affinity,
                                        pairwise_affinity, standardize_scores, symmetrize)
from graphmtl.affinity.rows import SplitRows
from graphmtl.affinity.scoring import score_subsets, score_subsets_network
from graphmtl.affinity.solver import BatchedSubsetSolver, SolverConfig, SubsetFit
from graphmtl.affinity.subsets import (CoverageReport, as_membership, cooccurrence,
                                       coverage_report, pair_subsets, sample_subsets)
from graphmtl.affinity.synthetic import planted_groups, write_synthetic_store

__all__ = [
    "MODES", "SurrogateAffinityEstimator", "SurrogateConfig", "TrainedAffinityEstimator",
    "head_cosine_affinity", "label_cooccurrence_affinity", "score_subsets_network",
    "BatchedSubsetSolver", "CoverageReport", "GradTAGEnsemble", "GradTAGEstimator",
    "SolverConfig", "SplitRows", "SubsetFit", "TrainedScores", "TrainedSubsetScores",
    "as_membership", "check_store_matches", "check_store_rows", "gradient_cosine",
    "val_rows_from_store",
    "cooccurrence", "coverage_report", "gradient_cosine_affinity", "higher_order_affinity",
    "pair_subsets", "pairwise_affinity", "planted_groups", "sample_subsets", "score_subsets",
    "standardize_scores", "symmetrize", "write_synthetic_store",
]
