"""Task clustering: k groups maximising the average within-group affinity (docs/method.md §7).

``TaskClustering(k=k | "auto", solver="auto" | "exact" | "lowrank").fit(A)`` solves the
SDP relaxation ``max <A, X> s.t. X psd, X >= 0, X 1 = 1, tr X = k`` either exactly with
cvxpy + SCS, with a nonnegative low-rank factorisation ``X = V V^T`` (augmented Lagrangian,
spectral projected gradient) optionally polished by ADMM on X, or by ADMM alone; rounds to exactly
k non-empty groups and certifies an upper bound by weak duality.

Lower-level pieces (the solvers, rounding, certificates, choice of ``k``) are in their modules.
"""

from graphmtl.clustering.baselines import random_partition, spectral_partition
from graphmtl.clustering.estimator import TaskClustering
from graphmtl.clustering.objective import partition_objective
from graphmtl.clustering.result import SDPResult

__all__ = ["SDPResult", "TaskClustering", "partition_objective", "random_partition",
           "spectral_partition"]
