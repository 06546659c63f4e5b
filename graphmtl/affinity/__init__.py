"""Task affinity: Grad-TAG estimates from projected gradients, the surrogate, shared-subspace
and trained estimates, and the cheap baselines.

>>> from graphmtl.affinity import GradTAGEstimator
>>> est = GradTAGEstimator(num_subsets=2000, subset_size=10).fit("runs/store")
>>> est.affinity_          # [n, n] symmetric, zero diagonal

Lower-level pieces (the subset layout, store checks, membership helpers) are in their modules.
"""

from graphmtl.affinity.baselines import (TrainedAffinityEstimator, TrainedScores,
                                         TrainedSubsetScores, gradient_cosine)
from graphmtl.affinity.estimator import MODES, GradTAGEnsemble, GradTAGEstimator
from graphmtl.affinity.matrices import (combine_affinities, higher_order_affinity,
                                        pairwise_affinity, split_half_reliability,
                                        standardize_scores, symmetrize)
from graphmtl.affinity.rows import SplitRows
from graphmtl.affinity.scoring import score_subsets
from graphmtl.affinity.signals import head_cosine_affinity, label_cooccurrence_affinity
from graphmtl.affinity.solver import BatchedSubsetSolver, SolverConfig, SubsetFit
from graphmtl.affinity.subsets import coverage_report, pair_subsets, sample_subsets
from graphmtl.affinity.subspace import (SubspaceAffinityEstimator, SubspaceConfig,
                                        ridge_coefficients)
from graphmtl.affinity.surrogate import SurrogateAffinityEstimator, SurrogateConfig

__all__ = [
    "MODES", "BatchedSubsetSolver", "GradTAGEnsemble", "GradTAGEstimator", "SolverConfig",
    "SplitRows", "SubsetFit", "SubspaceAffinityEstimator", "SubspaceConfig",
    "SurrogateAffinityEstimator", "SurrogateConfig",
    "TrainedAffinityEstimator", "TrainedScores", "TrainedSubsetScores", "coverage_report",
    "combine_affinities", "gradient_cosine", "head_cosine_affinity", "higher_order_affinity",
    "label_cooccurrence_affinity", "pair_subsets", "pairwise_affinity", "ridge_coefficients",
    "sample_subsets",
    "score_subsets", "split_half_reliability", "standardize_scores", "symmetrize",
]
