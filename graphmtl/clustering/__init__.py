"""Task clustering: k groups maximising the average within-group affinity (docs/method.md §6).

``TaskClustering(k=k | "auto", solver="auto" | "exact" | "lowrank").fit(A)`` solves the
SDP relaxation ``max <A, X> s.t. X psd, X >= 0, X 1 = 1, tr X = k`` either exactly with
cvxpy + SCS, with a nonnegative low-rank factorisation ``X = V V^T`` (augmented Lagrangian,
spectral projected gradient) optionally polished by ADMM on X, or by ADMM alone; rounds to exactly
k non-empty groups and certifies an upper bound by weak duality.
"""

from graphmtl.clustering.baselines import random_partition, spectral_partition
from graphmtl.clustering.certificate import (block_multipliers, dual_bound, lambda_max,
                                             partition_bound, partition_multipliers)
from graphmtl.clustering.estimator import TaskClustering
from graphmtl.clustering.objective import partition_matrix, partition_objective
from graphmtl.clustering.preprocess import preprocess_affinity, validate_affinity
from graphmtl.clustering.result import SDPResult
from graphmtl.clustering.rounding import fill_empty, local_search, round_factor
from graphmtl.clustering.sdp_admm import project_affine, solve_sdp_admm
from graphmtl.clustering.sdp_exact import solve_sdp_exact
from graphmtl.clustering.sdp_lowrank import default_rank, solve_sdp_lowrank, spectral_start
from graphmtl.clustering.select_k import double_center, edge_k, elbow_k
from graphmtl.clustering.synthetic import planted_affinity

__all__ = [
    "TaskClustering", "SDPResult", "preprocess_affinity", "validate_affinity",
    "solve_sdp_exact", "solve_sdp_lowrank", "solve_sdp_admm", "project_affine", "default_rank",
    "spectral_start",
    "round_factor", "fill_empty", "local_search", "elbow_k", "edge_k", "double_center",
    "dual_bound", "block_multipliers", "partition_multipliers", "partition_bound",
    "lambda_max", "partition_objective", "partition_matrix", "spectral_partition",
    "random_partition", "planted_affinity",
]
