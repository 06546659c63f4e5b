"""``TaskClustering``: k groups of tasks maximising the average within-group affinity."""

from __future__ import annotations

import time

import numpy as np

from graphmtl.utils.threads import blas_threads
from graphmtl.clustering.certificate import block_multipliers, dual_bound, partition_bound
from graphmtl.clustering.objective import partition_objective
from graphmtl.clustering.preprocess import preprocess_affinity
from graphmtl.clustering.result import SDPResult
from graphmtl.clustering.rounding import balance_labels, local_search, round_factor
from graphmtl.clustering.sdp_admm import solve_sdp_admm
from graphmtl.clustering.sdp_exact import solve_sdp_exact
from graphmtl.clustering.sdp_lowrank import solve_sdp_lowrank
from graphmtl.clustering.select_k import edge_k, elbow_k
from graphmtl.errors import check

SOLVERS = ("auto", "exact", "lowrank", "admm")
BALANCE = ("equal", "none")
POLISH = ("auto", "always", "never")
K_SELECT = ("edge", "elbow")


class TaskClustering:
    """Cluster n tasks into k groups via the SDP relaxation of average-density clustering.

    ``fit(A)`` preprocesses the affinity (:func:`preprocess_affinity`), solves
    ``max <A, X> s.t. X psd, X >= 0, X 1 = 1, tr X = k`` with cvxpy + SCS (``"exact"``), the
    nonnegative low-rank augmented Lagrangian (``"lowrank"``, :func:`solve_sdp_lowrank`) or ADMM
    on the full matrix (``"admm"``, :func:`solve_sdp_admm`); ``"auto"`` picks exact for
    ``n <= exact_max_n`` and lowrank otherwise. It rounds to exactly k non-empty groups (k-means on
    the factor rows, then greedy single-task moves that raise the average density), and certifies
    an upper bound by weak duality (:func:`dual_bound`) from the solver's multipliers and from
    the rounded partition's complementary-slackness multipliers with their trace multiplier
    searched (:func:`~graphmtl.clustering.certificate.partition_bound`; tight when that partition
    solves the SDP, at any n, in O(n^2) per evaluation).

    Group sizes (``balance``): with ``"equal"`` (the default) the rounded partition is made one
    of near-equal group sizes (sizes differ by at most one) -- each task assigned to the group it
    is most similar to within the sizes, then improved by swaps
    (:func:`~graphmtl.clustering.rounding.balance_labels`). A grouping is used to train one model
    per group: a group of one task, or one group holding most tasks, is rarely what a user wants,
    and on a noisy affinity the average-density objective prefers exactly such partitions.
    Equal sizes also make every grouping comparable with one random control (random groups of
    the same sizes). ``"none"`` leaves the sizes to the objective.

    Polishing (lowrank only, ``polish="auto"``): the factorisation ``X = V V^T, V >= 0`` reaches
    the SDP optimum when that is a partition matrix (planted groups up to moderate noise) but falls
    3-15% short on noisy affinities where the optimum has high rank. Its certificate is loose, so
    it cannot tell these apart by the bound alone; instead, when its X is *not* a partition
    (rounded objective below ``(1 - 1e-3)`` times the SDP objective) and the certified gap exceeds
    ``gap_tol``, ADMM (one n x n eigendecomposition per iteration) is run from ``V V^T`` for
    ``n <= polish_max_n``, which reaches the SDP optimum with a tight certified bound.
    ``"always"`` polishes whenever the gap exceeds ``gap_tol``, ``"never"`` never.

    ``device`` (``None``: numpy; ``cpu``, ``cuda``, ``cuda:N``, ``auto``: torch there): where
    the low-rank solver iterates (:func:`solve_sdp_lowrank`); the other steps run on the CPU.

    With ``k="auto"`` k in ``k_range`` (default ``2..min(n - 1, 20)``) is chosen by
    ``k_select``: ``"edge"`` (default, :func:`edge_k`): 1 + the number of eigenvalues of the
    double-centred affinity above the estimated noise edge ``2 s sqrt(n)`` -- one eigensolve, then
    one SDP at that k; or ``"elbow"`` (:func:`elbow_k`): every k of the range plus its neighbours
    is solved (low-rank sweeps warm-start each k from the previous one) and k is the sharpest bend
    of the SDP objective. On planted groups of unequal sizes the elbow picked k = 2 in most cases
    (the first split of the two largest groups dominates the curvature) while the edge count
    recovered k exactly for equal groups up to noise 1.0 and under-counted only groups too small
    to rise above the noise (see ``experiments/results/bench_clustering.md``).

    Attributes (after ``fit``):
        labels_: ``[n]`` int64 group of each task, values ``0..k-1``, all used.
        k_: the k used.
        sdp_objective_: ``<A, X>`` of the SDP solution (preprocessed A).
        rounded_objective_: average density of ``labels_`` on the preprocessed A.
        upper_bound_: certified upper bound on the SDP optimum (hence on any partition).
        gap_: ``(upper_bound_ - sdp_objective_) / |upper_bound_|``.
        residuals_: primal feasibility residuals of the SDP solution.
        X_: ``[n, n]`` SDP matrix (exact solver) or None; V_: ``[n, r]`` factor.
        affinity_: ``[n, n]`` the preprocessed affinity.
        sweep_: list of ``{"k", "sdp_objective", "seconds"}`` (auto with "elbow"), else [].
        k_selection_: ``{"method", "eigenvalues", "edge", "noise_std"}`` (auto with "edge"),
            ``{"method": "elbow"}`` or ``{"method": "given"}``.
        solver_: "exact", "lowrank", "lowrank+admm" (polished), "admm" or "closed_form";
        timings_: seconds per stage.
    """

    def __init__(self, k: int | str = 8, *, solver: str = "auto",
                 k_range: tuple[int, int] | None = None, transform: str = "center",
                 diagonal: str = "zero", temperature: float = 1.0, sym_tol: float = 1e-6,
                 exact_max_n: int = 100, eps: float = 1e-5, max_iters: int = 20000,
                 rank: int | None = None, tol: float = 1e-3, n_init: int = 10,
                 refine: bool = True, certify: bool = True, random_state: int = 0,
                 polish: str = "auto", gap_tol: float = 5e-3, polish_max_n: int = 700,
                 polish_max_iters: int = 3000, threads: int | None = 1,
                 k_select: str = "edge", device: str | None = None, stable_checks: int = 5,
                 balance: str = "equal"):
        self.k = k
        self.balance = balance
        self.stable_checks = stable_checks
        self.solver = solver
        self.k_range = k_range
        self.transform = transform
        self.diagonal = diagonal
        self.temperature = temperature
        self.sym_tol = sym_tol
        self.exact_max_n = exact_max_n
        self.eps = eps
        self.max_iters = max_iters
        self.rank = rank
        self.tol = tol
        self.n_init = n_init
        self.refine = refine
        self.certify = certify
        self.random_state = random_state
        self.polish = polish
        self.gap_tol = gap_tol
        self.polish_max_n = polish_max_n
        self.polish_max_iters = polish_max_iters
        self.threads = threads
        self.k_select = k_select
        self.device = device

    # -- helpers ---------------------------------------------------------------------------
    def _solve(self, A: np.ndarray, k: int, solver: str, warm: SDPResult | None = None,
               precise: bool = False) -> SDPResult:
        """One SDP solve. ``warm``: the neighbouring k's result; ``precise``: the low-rank
        solver's tight stopping rule (the elbow sweep compares objectives across k, and its
        default early stop, fine for one partition, made the elbow pick k = 2 or 15-20)."""
        n = A.shape[0]
        if k == 1 or k == n:
            # The feasible set is one point: 1 1^T / n for k = 1, the identity for k = n.
            X = np.full((n, n), 1.0 / n) if k == 1 else np.eye(n)
            F = np.full((n, 1), 1.0 / np.sqrt(n)) if k == 1 else np.eye(n)
            return SDPResult(k=k, objective=float((A * X).sum()), factor=F, X=X,
                             residuals={"row_sum": 0.0, "trace": 0.0}, status="closed_form",
                             info={"solver": "closed_form"})
        if solver == "exact":
            return solve_sdp_exact(A, k, eps_abs=self.eps, eps_rel=self.eps,
                                   max_iters=self.max_iters)
        if solver == "admm":
            return solve_sdp_admm(A, k, gap_tol=min(self.gap_tol, 1e-3),
                                  max_iters=self.polish_max_iters, threads=None)
        stop = {"obj_tol": 1e-5, "max_inner": 500} if precise else {}
        if warm is not None and warm.y is not None and warm.factor.shape[1] < n:
            # Warm start from the neighbouring k of a sweep (its factor padded with new columns).
            return solve_sdp_lowrank(A, k, rank=self.rank, tol=self.tol, seed=self.random_state,
                                     V0=warm.factor, y0=warm.y, z0=warm.z, threads=None,
                                     device=self.device, **stop)
        return solve_sdp_lowrank(A, k, rank=self.rank, tol=self.tol, seed=self.random_state,
                                 threads=None, device=self.device, **stop)

    def _validate_params(self, n: int) -> str:
        check(self.solver in SOLVERS, f"solver: expected one of {SOLVERS}, got {self.solver!r}")
        if isinstance(self.k, str):
            check(self.k == "auto",
                  f"k: expected an integer or 'auto', got {self.k!r}")
            check(n >= 4, f"k: 'auto' needs n >= 4 tasks, got n = {n}")
        else:
            check(isinstance(self.k, (int, np.integer))
                  and 1 <= int(self.k) <= n,
                  f"k: need an integer 1 <= k <= n = {n}, got {self.k!r}")
        check(self.tol > 0 and self.eps > 0 and self.gap_tol > 0, "tol/eps/gap_tol: must be > 0")
        check(self.polish in POLISH, f"polish: expected one of {POLISH}, got {self.polish!r}")
        if self.device is not None:
            from graphmtl.utils.device import validate_device

            validate_device(self.device)
        check(self.k_select in K_SELECT,
              f"k_select: expected one of {K_SELECT}, got {self.k_select!r}")
        check(self.balance in BALANCE, f"balance: expected one of {BALANCE}, got {self.balance!r}")
        if self.solver != "auto":
            return self.solver
        return "exact" if n <= self.exact_max_n else "lowrank"

    # -- API -------------------------------------------------------------------------------
    def fit(self, A, y=None) -> "TaskClustering":
        """Cluster the tasks of affinity ``A [n, n]`` (larger = more related)."""
        # One BLAS / OpenMP thread by default: see graphmtl/utils/threads.py.
        with blas_threads(self.threads):
            return self._fit(A)

    def _fit(self, A) -> "TaskClustering":
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        t = time.perf_counter()
        A = preprocess_affinity(A, transform=self.transform, diagonal=self.diagonal,
                                temperature=self.temperature, sym_tol=self.sym_tol)
        n = A.shape[0]
        solver = self._validate_params(n)
        timings["preprocess"] = time.perf_counter() - t

        t = time.perf_counter()
        self.sweep_ = []
        self.k_selection_ = {"method": "given"}
        if self.k == "auto":
            lo, hi = self.k_range if self.k_range is not None else (2, min(n - 1, 20))
            check(1 <= lo < hi <= n and hi - lo >= 1,
                  f"k_range: need 1 <= k_min < k_max <= n = {n}, got {self.k_range}")
        if self.k == "auto" and self.k_select == "edge":
            k, info = edge_k(A, lo, hi, seed=self.random_state)
            self.k_selection_ = {"method": "edge", **info}
            res = self._solve(A, k, solver)
        elif self.k == "auto":
            self.k_selection_ = {"method": "elbow"}
            results = {}
            prev = None
            for k in range(max(1, lo - 1), min(n, hi + 1) + 1):
                results[k] = prev = self._solve(A, k, solver, warm=prev if solver == "lowrank"
                                                else None, precise=True)
                self.sweep_.append({"k": k, "sdp_objective": results[k].objective,
                                    "seconds": results[k].seconds})
            ks = sorted(results)
            k = elbow_k(ks, [results[j].objective for j in ks])
            k = min(max(k, lo), hi)
            res = results[k]
        else:
            k = int(self.k)
            res = self._solve(A, k, solver)
        timings["solve"] = time.perf_counter() - t

        t = time.perf_counter()
        labels = round_factor(res.factor, k, n_init=self.n_init, seed=self.random_state)
        if self.refine:
            labels = local_search(A, labels)
        rounded = partition_objective(A, labels)
        if solver == "lowrank" and rounded > res.objective and 1 < k < n:
            # The nonconvex solver stopped below a partition it can reach: restart it there.
            V0 = np.zeros((n, k))
            V0[np.arange(n), labels] = 1.0 / np.sqrt(np.bincount(labels)[labels])
            again = solve_sdp_lowrank(A, k, rank=self.rank, tol=self.tol, V0=V0,
                                      seed=self.random_state, threads=None, device=self.device)
            if again.objective > res.objective:
                res = again
        timings["round"] = time.perf_counter() - t

        t = time.perf_counter()
        upper = self._certify(A, k, res, labels) if self.certify else np.nan
        timings["certify"] = time.perf_counter() - t
        t = time.perf_counter()
        polished = False
        gap = (upper - res.objective) / abs(upper) if np.isfinite(upper) and upper else np.inf
        want = {"never": False, "always": True,
                "auto": rounded < res.objective - 1e-3 * abs(res.objective)}[self.polish]
        if (solver == "lowrank" and 1 < k < n and want and gap > self.gap_tol
                and n <= self.polish_max_n):
            V = res.factor
            pol = solve_sdp_admm(A, k, X0=V @ V.T, gap_tol=min(self.gap_tol, 1e-3),
                                 max_iters=self.polish_max_iters, threads=None, check_every=10,
                                 on_check=_PartitionSettled(k, self.stable_checks,
                                                            self.random_state))
            if pol.objective > res.objective:
                polished = True
                upper = min(upper, pol.info["upper_bound"]) if np.isfinite(upper) \
                    else pol.info["upper_bound"]
                res = pol
                alt = round_factor(res.factor, k, n_init=self.n_init, seed=self.random_state)
                if self.refine:
                    alt = local_search(A, alt)
                if partition_objective(A, alt) > rounded:
                    labels, rounded = alt, partition_objective(A, alt)
        timings["polish"] = time.perf_counter() - t
        t = time.perf_counter()
        if self.balance == "equal":
            labels = balance_labels(A, labels, k)
            rounded = partition_objective(A, labels)
        timings["balance"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start

        self.affinity_ = A
        self.k_ = k
        self.labels_ = labels
        solver_name = "lowrank+admm" if polished else solver
        self.solver_ = solver_name if res.status != "closed_form" else "closed_form"
        self.sdp_objective_ = float(res.objective)
        self.rounded_objective_ = float(rounded)
        self.upper_bound_ = float(upper)
        self.gap_ = float((upper - res.objective) / abs(upper)) if np.isfinite(upper) and upper \
            else float("nan")
        self.residuals_ = dict(res.residuals)
        self.X_ = res.X
        self.V_ = res.factor
        self.result_ = res
        self.timings_ = timings
        return self

    def _certify(self, A: np.ndarray, k: int, res: SDPResult, labels: np.ndarray) -> float:
        """Certified upper bound from the solver's multipliers (nan when it has none)."""
        if res.status == "closed_form":
            return float(res.objective)
        if res.y is None:
            return float("nan")
        candidates = [dual_bound(A, k, res.y, res.N)]
        if res.N is None:
            candidates.append(dual_bound(A, k, res.y, block_multipliers(A, res.y, labels)))
        if 1 < k < len(A):
            # Tight (= the rounded objective) whenever the rounded partition solves the SDP and
            # rank-one multiplier blocks can prove it (planted groups up to moderate noise); a
            # valid, looser bound otherwise. O(n^2) per evaluation of the z search.
            candidates.append(partition_bound(A, k, labels))
        if "upper_bound" in res.info:
            candidates.append(res.info["upper_bound"])
        return float(min(candidates))

    def fit_predict(self, A, y=None) -> np.ndarray:
        """``fit(A)`` and return ``labels_``."""
        return self.fit(A).labels_

    def groups(self, names=None) -> list[list]:
        """The groups as lists of task indices (or of ``names[i]``), largest group first."""
        order = np.argsort(-np.bincount(self.labels_), kind="stable")
        out = [np.flatnonzero(self.labels_ == g).tolist() for g in order]
        return [[names[i] for i in grp] for grp in out] if names is not None else out


class _PartitionSettled:
    """Stops the ADMM polish once the partition rounded from its iterate has stayed the same for
    ``stable`` certificate checks in a row: the polish is there to change the partition, and
    iterating on after it settles only tightens the objective's last digits (at n = 500 that
    was most of the clustering's time). ``stable = 0`` never stops early."""

    def __init__(self, k: int, stable: int, seed: int):
        self.k, self.stable, self.seed = k, stable, seed
        self.previous: np.ndarray | None = None
        self.unchanged = 0

    def __call__(self, X: np.ndarray) -> bool:
        if self.stable <= 0:
            return False
        lam, Q = np.linalg.eigh(X)
        top = np.argsort(lam)[::-1][: self.k]
        labels = round_factor(Q[:, top] * np.sqrt(np.maximum(lam[top], 0.0)), self.k, n_init=1,
                              seed=self.seed)
        same = self.previous is not None and _same_partition(labels, self.previous)
        self.unchanged = self.unchanged + 1 if same else 0
        self.previous = labels
        return self.unchanged >= self.stable


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labelings group the items identically (up to renaming the groups)."""
    pairs = np.unique(np.stack([a, b]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))
