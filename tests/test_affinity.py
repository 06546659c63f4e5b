import numpy as np
import pytest
import scipy.optimize
import torch
from sklearn.linear_model import LogisticRegression

from graphmtl.affinity import (BatchedSubsetSolver, GradTAGEnsemble, GradTAGEstimator,
                               SolverConfig, SplitRows, coverage_report, higher_order_affinity,
                               pair_subsets, pairwise_affinity, sample_subsets, score_subsets,
                               standardize_scores, symmetrize)
from graphmtl.affinity.matrices import gradient_cosine_affinity
from graphmtl.affinity.subsets import (as_membership, cooccurrence, padded_members,
                                      scatter_members)
from graphmtl.testing.stores import block_groups, write_synthetic_store
from graphmtl.errors import GraphMTLError


pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(n=8, d=10, lo=30, hi=70, seed=0, f0_shift=-1.0, weights=True, zero_f0=False):
    rng = np.random.default_rng(seed)
    counts = rng.integers(lo, hi + 1, n)
    ptr = np.r_[0, np.cumsum(counts)]
    R = int(ptr[-1])
    z = rng.normal(size=(R, d)).astype(np.float32)
    f0 = (np.zeros(R) if zero_f0 else rng.normal(size=R) + f0_shift).astype(np.float32)
    truth = rng.normal(size=(n, d)) / np.sqrt(d)
    task = np.repeat(np.arange(n), counts)
    logit = f0 + np.einsum("rd,rd->r", z, 2 * truth[task])
    y = (rng.random(R) < 1 / (1 + np.exp(-logit))).astype(np.uint8)
    w = (rng.uniform(0.5, 2.0, R) if weights else np.ones(R)).astype(np.float32)
    return SplitRows.from_arrays(z, f0, y, w, ptr), (z, f0, y, w, ptr)


def _reference_fit(arrays, subset, lam):
    """scipy L-BFGS on the exact mean-loss objective of one subset (float64)."""
    z, f0, y, w, ptr = arrays
    idx = np.concatenate([np.arange(ptr[t], ptr[t + 1]) for t in np.flatnonzero(subset)])
    Z, F0, Y, Wt = (a[idx].astype(np.float64) for a in (z, f0, y, w))
    total = Wt.sum()

    def obj(v):
        u = F0 + Z @ v
        loss = (Wt * (np.logaddexp(0, u) - Y * u)).sum() / total + 0.5 * lam * v @ v
        grad = Z.T @ (Wt * (1 / (1 + np.exp(-u)) - Y)) / total + lam * v
        return loss, grad

    res = scipy.optimize.minimize(obj, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B",
                                  options=dict(gtol=1e-13, ftol=1e-17, maxiter=5000))
    return res.x, res.fun


# ----------------------------------------------------------------------------- subsets
def test_sample_subsets_sizes_seed_and_coverage():
    M = sample_subsets(20, 300, 5, seed=3)
    assert M.shape == (300, 20) and M.dtype == bool
    assert (M.sum(1) == 5).all()
    assert np.array_equal(M, sample_subsets(20, 300, 5, seed=3))
    assert not np.array_equal(M, sample_subsets(20, 300, 5, seed=4))
    R = sample_subsets(20, 300, (2, 6), seed=1)
    sizes = R.sum(1)
    assert sizes.min() == 2 and sizes.max() == 6
    rep = coverage_report(M)
    co = cooccurrence(M)
    assert rep.mean_task == pytest.approx(300 * 5 / 20)
    off = co[np.triu_indices(20, 1)]
    assert rep.min_pair == off.min() and rep.mean_pair == pytest.approx(off.mean())
    assert rep.mean_pair == pytest.approx(300 * 5 * 4 / (20 * 19))


def test_balanced_subsets_raise_min_cooccurrence():
    n, m, s = 30, 120, 5
    plain = coverage_report(sample_subsets(n, m, s, seed=0))
    bal = coverage_report(sample_subsets(n, m, s, seed=0, balance=True))
    assert bal.mean_pair == pytest.approx(plain.mean_pair)
    assert bal.zero_pairs < plain.zero_pairs
    assert bal.max_pair - bal.min_pair <= plain.max_pair - plain.min_pair
    assert bal.mean_size == s


def test_pair_subsets_all_and_sampled():
    P = pair_subsets(5)
    assert P.shape == (5 + 10, 5)
    assert (P[:5] == np.eye(5, dtype=bool)).all() and (P[5:].sum(1) == 2).all()
    assert len({tuple(r) for r in P[5:]}) == 10
    S = pair_subsets(40, num_pairs=50, seed=2, singletons=False)
    assert S.shape == (50, 40) and len({tuple(r) for r in S}) == 50
    assert np.array_equal(S, pair_subsets(40, num_pairs=50, seed=2, singletons=False))


def test_subset_errors_name_the_problem():
    with pytest.raises(GraphMTLError, match="exceeds the number of tasks"):
        sample_subsets(5, 10, 6)
    with pytest.raises(GraphMTLError, match="unknown task 'nope'"):
        as_membership([["a", "nope"]], ["a", "b"])
    with pytest.raises(GraphMTLError, match="subset 1: task position 7"):
        as_membership([[0], [7]], ["a", "b"])
    with pytest.raises(GraphMTLError, match="3 columns"):
        as_membership(np.ones((2, 3), bool), ["a", "b"])
    M = as_membership([["b"], [0, "b"]], ["a", "b"])
    assert M.tolist() == [[False, True], [True, True]]


# ------------------------------------------------------------------------------ solver
@pytest.mark.parametrize("lam", [0.3, 0.02])
def test_batched_solver_matches_scipy_on_the_exact_objective(lam):
    rows, arrays = _rows()
    M = sample_subsets(8, 25, (1, 5), seed=1)
    fit = BatchedSubsetSolver(SolverConfig(lam=lam, lam_relative=False, tol=1e-11)).fit(rows, M)
    assert fit.converged.all() and fit.lam == lam
    for k in range(M.shape[0]):
        ref_w, ref_f = _reference_fit(arrays, M[k], lam)
        np.testing.assert_allclose(fit.weights[k].numpy(), ref_w, atol=2e-7, rtol=0)
        assert float(fit.objective[k]) == pytest.approx(ref_f, abs=1e-12)
    assert fit.grad_evals >= 2 and fit.flops["grad"] > 0 and fit.flops["cholesky"] > 0


def test_batched_solver_matches_sklearn_without_offset():
    # With f0 = 0 the objective is sklearn's: ½‖w‖² + C Σ ω BCE with C = 1 / (λ W_S).
    rows, arrays = _rows(zero_f0=True)
    z, _, y, w, ptr = arrays
    M = sample_subsets(8, 6, 3, seed=5)
    lam = 0.05
    fit = BatchedSubsetSolver(SolverConfig(lam=lam, lam_relative=False, tol=1e-11)).fit(rows, M)
    for k in range(M.shape[0]):
        idx = np.concatenate([np.arange(ptr[t], ptr[t + 1]) for t in np.flatnonzero(M[k])])
        C = 1.0 / (lam * w[idx].astype(np.float64).sum())
        clf = LogisticRegression(C=C, fit_intercept=False, tol=1e-12, max_iter=10000)
        clf.fit(z[idx].astype(np.float64), y[idx], sample_weight=w[idx].astype(np.float64))
        np.testing.assert_allclose(fit.weights[k].numpy(), clf.coef_[0], atol=1e-6)


def test_relative_lambda_scales_with_gradient_scale():
    rows, arrays = _rows()
    z, f0, y, w, ptr = arrays
    big = SplitRows.from_arrays(3 * z, f0, y, w, ptr)
    M = sample_subsets(8, 5, 3, seed=0)
    a = BatchedSubsetSolver(SolverConfig(lam=0.1)).fit(rows, M)
    b = BatchedSubsetSolver(SolverConfig(lam=0.1)).fit(big, M)
    assert b.lam == pytest.approx(9 * a.lam, rel=1e-6)  # 3 * z rounds in float32
    # scaling z by 3 and λ by 9 gives w/3: the same logits
    np.testing.assert_allclose(b.weights.numpy() * 3, a.weights.numpy(), atol=1e-5)


def test_solver_reports_non_convergence_naming_tasks():
    rows, _ = _rows()
    M = sample_subsets(8, 4, 4, seed=0)
    with pytest.warns(RuntimeWarning, match=r"did not converge.*tasks task\d"):
        fit = BatchedSubsetSolver(SolverConfig(lam=0.01, lam_relative=False, tol=1e-14,
                                               max_newton=1)).fit(rows, M)
    assert not fit.converged.all()


def test_solver_rejects_subset_without_rows_and_bad_values():
    rows, arrays = _rows(n=3)
    z, f0, y, w, ptr = arrays
    w = w.copy()
    w[ptr[1]:ptr[2]] = 0
    zero = SplitRows.from_arrays(z, f0, y, w, ptr, ["a", "b", "c"])
    with pytest.raises(GraphMTLError, match=r"subset 1 \(tasks b\): no train rows"):
        BatchedSubsetSolver().fit(zero, np.array([[1, 0, 0], [0, 1, 0]], bool))
    z = z.copy()
    z[ptr[2], 0] = np.nan
    with pytest.raises(GraphMTLError, match="task 'c': non-finite"):
        SplitRows.from_arrays(z, f0, y, w, ptr, ["a", "b", "c"])
    with pytest.raises(GraphMTLError, match="lambda"):
        SolverConfig(lam=0)


def test_solver_uses_worker_threads_identically():
    rows, _ = _rows(n=10)
    M = sample_subsets(10, 30, 4, seed=2)
    a = BatchedSubsetSolver(SolverConfig(workers=1, tol=1e-10)).fit(rows, M)
    b = BatchedSubsetSolver(SolverConfig(workers=2, tol=1e-10)).fit(rows, M)
    np.testing.assert_allclose(a.weights.numpy(), b.weights.numpy(), atol=1e-12)


# ---------------------------------------------------------------------------- matrices
def test_higher_order_affinity_is_the_mean_over_shared_subsets():
    rng = np.random.default_rng(0)
    M = sample_subsets(6, 40, 3, seed=0)
    F = np.where(M, rng.normal(size=M.shape), np.nan)
    T = higher_order_affinity(M, F)
    for i in range(6):
        for j in range(6):
            both = M[:, i] & M[:, j]
            if both.any():
                assert T[i, j] == pytest.approx(F[both, i].mean())
            else:
                assert np.isnan(T[i, j])
    Z = standardize_scores(M, F)
    assert np.nanmean(Z[M[:, 0], 0]) == pytest.approx(0, abs=1e-12)
    assert np.std(Z[M[:, 0], 0]) == pytest.approx(1)
    Ts = higher_order_affinity(M, F, standardize=True)
    np.testing.assert_allclose(np.diag(Ts), 0, atol=1e-12)
    A = symmetrize(T)
    np.testing.assert_allclose(A, A.T)
    assert (np.diag(A) == 0).all()


def test_pairwise_affinity_relative_to_singletons():
    P = pair_subsets(4)
    F = np.where(P, np.arange(P.size, dtype=float).reshape(P.shape), np.nan)
    T = pairwise_affinity(P, F)
    k = 4 + 0  # first pair row is {0, 1}
    assert T[0, 1] == pytest.approx(F[k, 0] - F[0, 0])
    assert T[1, 0] == pytest.approx(F[k, 1] - F[1, 1])
    assert (np.diag(T) == 0).all()
    with pytest.raises(GraphMTLError, match="no singleton"):
        pairwise_affinity(P[4:], F[4:])
    raw = pairwise_affinity(P[4:], F[4:], relative=False)
    assert raw[0, 1] == pytest.approx(F[k, 0])


def test_gradient_cosine_affinity():
    G = np.array([[1.0, 0], [2, 0], [0, 1], [0, 0]])
    A = gradient_cosine_affinity(G)
    assert A[0, 1] == pytest.approx(1) and A[0, 2] == pytest.approx(0) and A[3, 0] == 0
    assert (np.diag(A) == 0).all()


# --------------------------------------------------------------------------- estimator
def test_score_subsets_matches_direct_computation():
    rows, arrays = _rows(n=5, seed=3)
    val, varr = _rows(n=5, seed=4)
    M = sample_subsets(5, 7, 2, seed=0)
    W = torch.randn(7, 10, dtype=torch.float64) * 0.1
    loss, f1 = score_subsets(val, M, W)
    z, f0, y, w, ptr = varr
    for k in range(7):
        for i in range(5):
            if not M[k, i]:
                assert np.isnan(loss[k, i])
                continue
            sl = slice(ptr[i], ptr[i + 1])
            u = f0[sl].astype(float) + z[sl].astype(float) @ W[k].numpy()
            ww = w[sl].astype(float)
            ref = (ww * (np.logaddexp(0, u) - y[sl] * u)).sum() / ww.sum()
            assert loss[k, i] == pytest.approx(ref, rel=1e-12)
            pred = u > 0
            tp, fp, fn = (ww * (pred & (y[sl] == 1))).sum(), (ww * (pred & (y[sl] == 0))).sum(), \
                (ww * (~pred & (y[sl] == 1))).sum()
            assert f1[k, i] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_estimator_recovers_planted_groups(tmp_path):
    store = write_synthetic_store(tmp_path / "s", n=12, d=16, groups=3, train_rows=(150, 250),
                                  val_rows=(150, 250), signal=3.0, seed=1)
    est = GradTAGEstimator(num_subsets=150, subset_size=4, standardize=True, seed=0).fit(store)
    n = 12
    assert est.scores_.shape == (150, n) and est.affinity_.shape == (n, n)
    assert np.isnan(est.scores_[~est.subsets_]).all() and np.isfinite(est.scores_[est.subsets_]).all()
    assert est.converged_.all() and est.lam_ > 0
    g = block_groups(n, 3)
    same = (g[:, None] == g[None, :]) & ~np.eye(n, dtype=bool)
    diff = g[:, None] != g[None, :]
    assert est.affinity_[same].mean() > est.affinity_[diff].mean() + 0.2
    s = est.summary()
    assert s["coverage"]["mean_task"] == pytest.approx(150 * 4 / 12)
    assert s["timings"]["solve_s"] > 0 and s["solver"]["total_flops"] > 0
    # pairwise mode on the same store: same-group pairs help more
    pw = GradTAGEstimator(pairwise=True).fit(store)
    assert pw.subsets_.shape == (n + n * (n - 1) // 2, n)
    assert pw.affinity_[same].mean() > pw.affinity_[diff].mean()
    # subsets by name
    named = GradTAGEstimator().fit(store, subsets=[["task0", "task1"], ["task5"]])
    assert named.subsets_.shape == (2, n)
    with pytest.raises(GraphMTLError, match="unknown task 'zzz'"):
        GradTAGEstimator().fit(store, subsets=[["task0", "zzz"]])
    with pytest.raises(GraphMTLError, match="exceeds the number of tasks"):
        GradTAGEstimator(subset_size=13).fit(store)


def test_estimator_warns_about_tasks_without_positives(tmp_path):
    store = write_synthetic_store(tmp_path / "s", n=4, d=6, train_rows=40, val_rows=30, seed=0)
    y = np.load(tmp_path / "s" / "train.y.npy", mmap_mode="r+")
    ptr = store.task_ptr("train")
    y[ptr[2]:ptr[3]] = 0
    y.flush()
    with pytest.warns(RuntimeWarning, match="no positive train rows.*'task2'"):
        GradTAGEstimator(num_subsets=10, subset_size=2).fit(store)  # opened before the edit


def test_ensemble_averages_members_and_reports_spread(tmp_path):
    stores = [write_synthetic_store(tmp_path / f"s{i}", n=6, d=8, train_rows=80, val_rows=60,
                                    seed=10 + i) for i in range(2)]
    ens = GradTAGEnsemble(GradTAGEstimator(num_subsets=30, subset_size=3)).fit(stores)
    assert len(ens.members_) == 2
    np.testing.assert_allclose(ens.affinity_,
                               (ens.members_[0].affinity_ + ens.members_[1].affinity_) / 2)
    assert (ens.affinity_std_ >= 0).all() and ens.spread_ > 0
    assert np.array_equal(ens.members_[0].subsets_, ens.members_[1].subsets_)
    other = write_synthetic_store(tmp_path / "o", n=5, d=8, train_rows=20, val_rows=20)
    with pytest.raises(GraphMTLError, match="tasks differ"):
        GradTAGEnsemble().fit([stores[0], other])


def test_line_search_shortens_overshooting_steps_and_still_matches_scipy():
    # Weak L2 and a base logit far from the labels: the first (w = 0 curvature) Newton steps
    # overshoot.
    rng = np.random.default_rng(7)
    n, d = 5, 4
    counts = np.full(n, 40)
    ptr = np.r_[0, np.cumsum(counts)]
    z = rng.normal(size=(ptr[-1], d)).astype(np.float32)
    y = (z[:, 0] + 0.3 * rng.normal(size=ptr[-1]) > 0).astype(np.uint8)
    f0 = np.full(ptr[-1], 3.0, np.float32)
    w = np.ones(ptr[-1], np.float32)
    rows = SplitRows.from_arrays(z, f0, y, w, ptr)
    M = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]], bool)  # task 0 absent last
    lam = 1e-3
    fit = BatchedSubsetSolver(SolverConfig(lam=lam, lam_relative=False, tol=1e-10,
                                           max_newton=60)).fit(rows, M)
    assert fit.converged.all() and fit.shortened_steps > 0
    for k in range(3):
        ref_w, _ = _reference_fit((z, f0, y, w, ptr), M[k], lam)
        np.testing.assert_allclose(fit.weights[k].numpy(), ref_w, atol=1e-5)


def test_padded_members_and_their_scatter_back():
    M = np.array([[0, 1, 0, 1, 1], [1, 0, 0, 0, 0], [0, 0, 1, 1, 0]], dtype=bool)
    idx, valid = padded_members(M)
    assert idx.dtype == np.int64 and idx.tolist() == [[1, 3, 4], [0, 0, 0], [2, 3, 0]]
    assert valid.tolist() == [[True, True, True], [True, False, False], [True, True, False]]
    values = np.arange(9, dtype=float).reshape(3, 3)
    out = scatter_members(values, idx, valid, 5)
    assert np.array_equal(np.isfinite(out), M)                 # NaN outside the subsets
    assert out[0, [1, 3, 4]].tolist() == [0, 1, 2] and out[1, 0] == 3    # padding not written
    assert out[2, [2, 3]].tolist() == [6, 7]


def test_split_half_reliability_tells_pairs_from_noise():
    from graphmtl.affinity import sample_subsets, split_half_reliability

    n, rng = 12, np.random.default_rng(0)
    planted = np.arange(n) % 3
    M = sample_subsets(n, 400, 4, seed=0)
    same = (planted[:, None] == planted[None, :]).astype(float)
    partners = M.astype(float) @ same - 1                      # same-group partners in S
    noise = rng.normal(size=M.shape)
    real = split_half_reliability(M, np.where(M, partners + 0.5 * noise, np.nan), seed=0)
    assert real["half"] > 0.8 and real["full"] > real["half"]
    assert real["subsets_for_half"] < 0.5 and real["pairs"] == n * (n - 1) / 2
    pure = split_half_reliability(M, np.where(M, noise, np.nan), seed=0)
    assert abs(pure["half"]) < 0.3
    # Spearman-Brown by hand, and the multiple of subsets a reliability of 0.5 needs.
    r = pure["half"]
    assert pure["full"] == pytest.approx(2 * r / (1 + r))
    assert (pure["subsets_for_half"] == np.inf if pure["full"] <= 0
            else pure["subsets_for_half"] == pytest.approx((1 - pure["full"]) / pure["full"]))
    # Seeded; a NaN score leaves that task out of that subset.
    again = split_half_reliability(M, np.where(M, partners + 0.5 * noise, np.nan), seed=0)
    assert again == real
    F = np.where(M, partners + 0.5 * noise, np.nan)
    F[0, np.flatnonzero(M[0])[0]] = np.nan
    assert np.isfinite(split_half_reliability(M, F)["half"])
    with pytest.raises(GraphMTLError, match="at least 4 subsets"):
        split_half_reliability(M[:3], F[:3])
    with pytest.raises(GraphMTLError, match="does not match"):
        split_half_reliability(M, F[:, :3])
