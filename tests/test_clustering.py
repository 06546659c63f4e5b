import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from graphmtl.cli import main as cli_main
from graphmtl.clustering import (TaskClustering, partition_objective, random_partition,
                                 spectral_partition)
from graphmtl.clustering.certificate import (block_multipliers, dual_bound, lambda_max,
                                             partition_bound, partition_multipliers)
from graphmtl.clustering.objective import partition_matrix
from graphmtl.clustering.preprocess import preprocess_affinity, validate_affinity
from graphmtl.clustering.rounding import fill_empty, local_search, round_factor
from graphmtl.clustering.sdp_admm import project_affine, solve_sdp_admm
from graphmtl.clustering.sdp_exact import solve_sdp_exact
from graphmtl.clustering.sdp_lowrank import solve_sdp_lowrank, spectral_start
from graphmtl.clustering.select_k import double_center, edge_k, elbow_k
from graphmtl.testing.affinities import planted_affinity
from graphmtl.errors import GraphMTLError


@pytest.fixture(scope="module")
def planted():
    A, labels = planted_affinity(60, 4, noise=0.8, seed=3, scale=5.0, shift=-7.0)
    return preprocess_affinity(A, transform="standardize"), labels, 4


@pytest.fixture(scope="module")
def exact(planted):
    A, _, k = planted
    return solve_sdp_exact(A, k)


# -- preprocessing ---------------------------------------------------------------------------
def test_preprocess_standardize_is_shift_scale_invariant():
    A, _ = planted_affinity(30, 3, noise=0.5, seed=0)
    P1 = preprocess_affinity(A, transform="standardize")
    P2 = preprocess_affinity(3.0 * A - 11.0, transform="standardize")
    np.testing.assert_allclose(P1, P2, atol=1e-10)
    assert np.all(np.diag(P1) == 0)
    off = P1[~np.eye(30, dtype=bool)]
    assert abs(off.mean()) < 1e-10 and abs(off.std() - 1) < 1e-10
    np.testing.assert_array_equal(P1, P1.T)


def test_preprocess_center_removes_task_offsets_and_keeps_planted_groups():
    from graphmtl.clustering import TaskClustering

    rng = np.random.default_rng(0)
    offsets = rng.normal(0, 1, 60)
    A, labels = planted_affinity(60, 4, noise=0.6, seed=1)
    shifted = A + offsets[:, None] + offsets[None, :]
    P = preprocess_affinity(shifted)                      # default: center
    np.testing.assert_allclose(P, preprocess_affinity(A), atol=1e-10)
    assert abs(P[~np.eye(60, dtype=bool)].reshape(60, 59).sum(1)).max() < 1e-8
    got = TaskClustering(k=4).fit(shifted).labels_
    assert np.array_equal(np.unique(labels[got == got[0]]).size, 1)
    # noise with per-task offsets: the raw objective isolates low-offset tasks
    E = rng.normal(0, 1, (60, 60))
    noisy = (E + E.T) / 2 + 2 * (offsets[:, None] + offsets[None, :])
    sizes = np.bincount(TaskClustering(k=6, balance="none").fit(noisy).labels_)
    raw = np.bincount(TaskClustering(k=6, transform="standardize",
                                     balance="none").fit(noisy).labels_)
    assert sizes.min() >= 3 and raw.min() < sizes.min()


def test_preprocess_symmetrises_and_transforms():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((8, 8))
    A = A + A.T
    A[0, 1] += 1e-9
    P = preprocess_affinity(A, transform="none", diagonal="keep")
    np.testing.assert_array_equal(P, P.T)
    np.testing.assert_allclose(np.diag(P), np.diag(A))
    E = preprocess_affinity(A, transform="exp")
    assert np.all(E[~np.eye(8, dtype=bool)] > 0) and np.all(np.diag(E) == 0)
    # A constant affinity carries no information: all zeros, not NaN.
    assert np.all(preprocess_affinity(np.ones((5, 5))) == 0)


@pytest.mark.parametrize("A, match", [
    (np.array([[0.0, np.nan], [np.nan, 0.0]]), "non-finite"),
    (np.array([[0.0, np.inf], [np.inf, 0.0]]), "non-finite"),
    (np.zeros((2, 3)), "not square"),
    (np.zeros(4), "2-D"),
    (np.zeros((1, 1)), "at least 2"),
    (np.array([[0.0, 1.0], [0.0, 0.0]]), "not symmetric"),
])
def test_bad_affinity(A, match):
    with pytest.raises(GraphMTLError, match=match) as e:
        validate_affinity(A, name="T.npy")
    assert "T.npy" in str(e.value) and "\n" not in str(e.value)


def test_bad_parameters():
    A, _ = planted_affinity(10, 2, seed=0)
    for k in (0, 11, "five"):
        with pytest.raises(GraphMTLError, match="k"):
            TaskClustering(k).fit(A)
    with pytest.raises(GraphMTLError, match="solver"):
        TaskClustering(2, solver="clarabel").fit(A)
    with pytest.raises(GraphMTLError, match="transform"):
        TaskClustering(2, transform="log").fit(A)
    with pytest.raises(GraphMTLError, match="k_range"):
        TaskClustering("auto", k_range=(5, 3)).fit(A)
    with pytest.raises(GraphMTLError, match="k"):
        solve_sdp_lowrank(preprocess_affinity(A), 0)


# -- objective, certificate ----------------------------------------------------------------
def test_partition_objective_matches_matrix(planted):
    A, labels, _ = planted
    X = partition_matrix(labels)
    assert partition_objective(A, labels) == pytest.approx(float((A * X).sum()))
    np.testing.assert_allclose(X.sum(1), 1.0)
    assert np.trace(X) == pytest.approx(len(np.unique(labels)))


def test_exact_solver_feasible_and_certified(planted, exact):
    A, labels, k = planted
    assert exact.residuals["row_sum"] < 1e-3 and exact.residuals["trace"] < 1e-3
    # SDP relaxes the partition problem; the SCS duals give a tight certified bound.
    assert exact.objective >= partition_objective(A, labels) - 1e-3
    ub = dual_bound(A, k, exact.y, exact.N)
    assert exact.objective - 1e-6 <= ub <= exact.objective * (1 + 1e-3)


def test_dual_bound_valid_for_any_multipliers(planted):
    A, labels, k = planted
    rng = np.random.default_rng(0)
    best = partition_objective(A, labels)
    for _ in range(5):
        y = rng.standard_normal(len(A)) * 5
        N = rng.standard_normal(A.shape)  # clipped/symmetrised inside
        assert dual_bound(A, k, y, N) >= best
    N = block_multipliers(A, rng.standard_normal(len(A)), labels)
    assert np.all(N >= 0) and np.allclose(N, N.T)
    assert np.all(N[labels[:, None] == labels[None, :]] == 0)


def test_partition_multipliers_certify_a_well_separated_partition():
    # Low noise, n = 700 (Lanczos path of lambda_max): the partition solves the SDP and its
    # complementary-slackness multipliers prove it.
    A, labels = planted_affinity(700, 7, noise=0.3, seed=2, scale=3.0, shift=-1.0)
    y, N = partition_multipliers(A, labels)
    assert np.all(N >= 0) and np.allclose(N, N.T)
    assert np.all(N[labels[:, None] == labels[None, :]] == 0)
    p = partition_objective(A, labels)
    assert dual_bound(A, 7, y, N) == pytest.approx(p, rel=1e-8)
    # A wrong partition (two groups swapped halves) is not certified: the bound stays above.
    wrong = labels.copy()
    wrong[(labels == 0) & (np.arange(700) % 2 == 0)] = 1
    wrong[(labels == 1) & (np.arange(700) % 2 == 0)] = 0
    assert dual_bound(A, 7, *partition_multipliers(A, wrong)) >= p


def test_partition_multipliers_bound_valid_on_noisy_instance(planted, exact):
    A, labels, k = planted
    # Noisy: the SDP optimum exceeds every partition, so no partition is certified, but the
    # bound never falls below the exact SDP value.
    ub = dual_bound(A, k, *partition_multipliers(A, labels))
    assert ub >= exact.objective - 1e-3 * abs(exact.objective)
    # Past the feasible z the clipped multipliers stay nonnegative and symmetric, and every
    # bound of the z search is still valid.
    y, N = partition_multipliers(A, labels, z=1e3)
    assert np.all(N >= 0) and np.allclose(N, N.T)
    assert partition_bound(A, k, labels) >= exact.objective - 1e-3 * abs(exact.objective)


def test_partition_bound_search_tightens_many_task_certificate():
    # n = 1000 at moderate noise (nu = 0.6 of the benchmark): the smallest of the 19,000
    # cross-group row sums caps z, so the feasible-z bound is ~2 % loose; the z search closes it.
    n, k = 1000, 20
    A, labels = planted_affinity(n, k, 0.6 * (n / k) / (2 * np.sqrt(n)), seed=0)
    p = partition_objective(A, labels)
    loose = dual_bound(A, k, *partition_multipliers(A, labels))
    tight = partition_bound(A, k, labels)
    assert (loose - p) / abs(p) > 5e-3
    assert p <= tight <= p + 1e-3 * abs(p)
    assert partition_bound(A, k, labels, search=False) == pytest.approx(loose)


def test_lambda_max_matches_dense():
    rng = np.random.default_rng(1)
    B = rng.standard_normal((700, 700))
    B = B + B.T
    lm = lambda_max(B)
    assert lm >= np.linalg.eigvalsh(B)[-1] - 1e-8
    assert lm == pytest.approx(np.linalg.eigvalsh(B)[-1], rel=1e-6)


# -- solvers --------------------------------------------------------------------------------
def test_lowrank_matches_exact_objective(planted, exact):
    A, _, k = planted
    lr = solve_sdp_lowrank(A, k)
    assert lr.factor.min() >= 0 and lr.factor.shape == (len(A), 2 * k + 2)
    assert lr.residuals["row_sum"] < 1e-3 and lr.residuals["trace"] < 1e-3 * k
    assert lr.objective == pytest.approx(exact.objective, rel=5e-3)


def test_lowrank_warm_start_and_spectral_start(planted):
    A, labels, k = planted
    V = spectral_start(A, k, 2 * k, seed=0)
    assert V.shape == (len(A), 2 * k) and V.min() >= 0
    assert np.allclose(V @ V.sum(0), 1.0, atol=1e-2)
    cold = solve_sdp_lowrank(A, k)
    warm = solve_sdp_lowrank(A, k, V0=cold.factor, y0=cold.y, z0=cold.z)
    assert warm.objective == pytest.approx(cold.objective, rel=1e-3)
    assert warm.iterations <= cold.iterations


def test_project_affine():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((12, 12))
    M = M + M.T
    X = project_affine(M, 4)
    np.testing.assert_allclose(X.sum(1), 1.0, atol=1e-12)
    assert np.trace(X) == pytest.approx(4.0)
    # Idempotent, and M - X lies in the normal space {a 1^T + 1 a^T + b I}: orthogonal to
    # any direction D inside the affine set's tangent space (D 1 = 0, tr D = 0).
    np.testing.assert_allclose(project_affine(X, 4), X, atol=1e-12)
    D = rng.standard_normal((12, 12))
    D = D + D.T
    D = project_affine(D, 0) - project_affine(np.zeros((12, 12)), 0)
    assert abs(float(((M - X) * D).sum())) < 1e-9


@pytest.fixture(scope="module")
def noisy():
    # Noise where the SDP optimum is no partition (rank >> k): the nonnegative factorisation
    # falls short, ADMM must not.
    A, labels = planted_affinity(80, 4, noise=1.5 * 20 / (2 * np.sqrt(80)), seed=5)
    A = preprocess_affinity(A)
    return A, 4, solve_sdp_exact(A, 4, eps_abs=1e-6, eps_rel=1e-6)


def test_admm_matches_scs_on_noisy_instance(noisy):
    A, k, ex = noisy
    ad = solve_sdp_admm(A, k, gap_tol=1e-3)
    assert ad.status == "converged"
    assert ad.objective == pytest.approx(ex.objective, rel=2e-3)
    # The certificate is a valid and tight upper bound.
    assert ex.objective * (1 - 1e-4) <= ad.info["upper_bound"] <= ex.objective * (1 + 2e-3)
    assert ad.residuals["row_sum"] < 1e-8 and ad.residuals["min_eig"] > -1e-3


def test_estimator_polishes_noisy_lowrank(noisy):
    A, k, ex = noisy
    plain = TaskClustering(k, solver="lowrank", polish="never", transform="none").fit(A)
    pol = TaskClustering(k, solver="lowrank", transform="none").fit(A)
    assert plain.solver_ == "lowrank" and pol.solver_ == "lowrank+admm"
    assert pol.sdp_objective_ >= 0.995 * ex.objective
    assert pol.sdp_objective_ >= plain.sdp_objective_
    assert pol.gap_ < 5e-3 and len(np.unique(pol.labels_)) == k
    again = TaskClustering(k, solver="lowrank", transform="none").fit(A)
    np.testing.assert_array_equal(again.labels_, pol.labels_)
    assert again.sdp_objective_ == pol.sdp_objective_


# -- rounding -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
def test_rounding_gives_exactly_k_nonempty_groups(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    k = int(rng.integers(1, n + 1))
    r = int(rng.integers(1, 6))
    F = rng.random((n, r))
    if seed % 2:  # many duplicate rows: fewer distinct points than k
        F = F[rng.integers(0, 2, n)]
    labels = round_factor(F, k, n_init=2, seed=seed)
    assert labels.shape == (n,) and set(labels.tolist()) == set(range(k))
    again = round_factor(F, k, n_init=2, seed=seed)
    np.testing.assert_array_equal(labels, again)
    A = rng.standard_normal((n, n))
    A = A + A.T
    ls = local_search(A, labels)
    assert len(np.unique(ls)) == k
    assert partition_objective(A, ls) >= partition_objective(A, labels) - 1e-9


def test_fill_empty():
    F = np.zeros((5, 2))
    labels = fill_empty(F, np.array([7, 7, 7, 7, 7]), 3)
    assert sorted(np.bincount(labels).tolist()) == [1, 1, 3]


# -- estimator ------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["exact", "lowrank"])
def test_planted_recovery(solver):
    A, labels = planted_affinity(100, 5, noise=1.0, seed=1, scale=0.1, shift=3.0)
    model = TaskClustering(5, solver=solver).fit(A)
    assert adjusted_rand_score(labels, model.labels_) >= 0.9
    assert len(np.unique(model.labels_)) == 5
    assert model.rounded_objective_ <= model.upper_bound_ + 1e-6
    assert model.rounded_objective_ <= model.sdp_objective_ * (1 + 1e-3)
    # SCS primal is feasible only to eps, so it may exceed the certified bound by ~eps.
    assert model.upper_bound_ >= model.sdp_objective_ * (1 - 1e-4)
    assert set(model.timings_) >= {"solve", "round", "total"}
    assert (model.X_ is not None) == (model.solver_ in ("exact", "lowrank+admm"))
    assert sum(map(len, model.groups())) == 100


def test_estimator_certifies_well_separated_groups_beyond_exact_reach():
    # n = 800 is past the ADMM polish (n <= 700): the certificate comes from the rounded
    # partition's complementary-slackness multipliers and is tight.
    A, labels = planted_affinity(800, 10, noise=0.3, seed=4, scale=2.0, shift=0.5)
    model = TaskClustering(10, solver="lowrank").fit(A)
    assert model.solver_ == "lowrank"
    assert adjusted_rand_score(labels, model.labels_) == 1.0
    assert model.gap_ < 1e-6
    assert model.upper_bound_ >= model.rounded_objective_ * (1 - 1e-9)


def test_closed_form_k1_and_kn():
    A, _ = planted_affinity(12, 3, seed=0)
    one = TaskClustering(1).fit(A)
    assert np.all(one.labels_ == 0)
    assert one.sdp_objective_ == pytest.approx(one.affinity_.sum() / 12)
    alln = TaskClustering(12).fit(A)
    assert len(np.unique(alln.labels_)) == 12


def test_auto_k_recovers_planted():
    A, labels = planted_affinity(90, 6, noise=0.6, seed=2)
    model = TaskClustering("auto", solver="lowrank", k_range=(2, 10), k_select="elbow").fit(A)
    assert model.k_ == 6 and model.k_selection_["method"] == "elbow"
    assert [s["k"] for s in model.sweep_] == list(range(1, 12))
    assert adjusted_rand_score(labels, model.labels_) >= 0.9


def test_edge_k_counts_planted_groups_and_ignores_offsets():
    # Unequal groups, task offsets (a_i + a_j), arbitrary units: k from the eigenvalue edge.
    A, labels = planted_affinity(200, 8, noise=0.7 * 25 / (2 * np.sqrt(200)), seed=0,
                                 balanced=True, scale=0.3, shift=2.0)
    a = np.random.default_rng(0).standard_normal(200)
    A_off = A + a[:, None] + a[None, :]
    k, info = edge_k(preprocess_affinity(A_off), 2, 20)
    assert k == 8 and info["eigenvalues"][6] > info["edge"] > info["eigenvalues"][7]
    # Offsets change no feasible objective, and double-centring removes them exactly.
    np.testing.assert_allclose(double_center(A_off), double_center(A), atol=1e-9)
    model = TaskClustering("auto", solver="lowrank").fit(A_off)
    assert model.k_ == 8 and model.k_selection_["method"] == "edge"
    assert adjusted_rand_score(labels, model.labels_) >= 0.9
    # Pure noise: no eigenvalue above the edge -> the smallest k of the range.
    E = planted_affinity(200, 1, noise=1.0, seed=1)[0]
    assert edge_k(preprocess_affinity(E), 2, 20)[0] == 2


def test_elbow_k():
    ks = np.arange(1, 9)
    f = np.minimum(ks, 4) * 10.0 - 0.3 * ks + 2.0  # bend at 4
    assert elbow_k(ks, f) == 4
    assert elbow_k(ks, f + 5 * ks - 1) == 4  # invariant to a + b k
    with pytest.raises(GraphMTLError):
        elbow_k([1, 2], [0.0, 1.0])


# -- baselines ------------------------------------------------------------------------------
def test_baselines(planted):
    A, labels, k = planted
    spec = spectral_partition(A, k, seed=0)
    assert set(spec.tolist()) == set(range(k))
    assert adjusted_rand_score(labels, spec) >= 0.9
    rnd = random_partition(np.bincount(labels), seed=0)
    np.testing.assert_array_equal(np.bincount(rnd), np.bincount(labels))
    assert partition_objective(A, rnd) < partition_objective(A, labels)
    with pytest.raises(GraphMTLError, match="sizes"):
        random_partition([3, 0])


def test_planted_affinity_shapes():
    A, labels = planted_affinity(50, 7, noise=0.1, seed=0, balanced=False)
    assert A.shape == (50, 50) and np.allclose(A, A.T)
    assert set(labels.tolist()) == set(range(7)) and np.bincount(labels).min() >= 2
    with pytest.raises(GraphMTLError, match="k"):
        planted_affinity(5, 6)


# -- CLI ------------------------------------------------------------------------------------
def test_cli_cluster(tmp_path, capsys):
    A, labels = planted_affinity(30, 3, noise=0.3, seed=0)
    np.save(tmp_path / "A.npy", A)
    names = [f"task{i}" for i in range(30)]
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    out = tmp_path / "groups.json"
    rc = cli_main(["cluster", "--affinity", str(tmp_path / "A.npy"), "--k", "3", "--out", str(out),
                   "--task-names", str(tmp_path / "names.txt"), "--solver", "lowrank"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["k"] == 3 and len(res["groups"]) == 3
    assert sorted(sum(res["groups"], [])) == sorted(names)
    for key in ("sdp_objective", "rounded_objective", "upper_bound", "timings_s"):
        assert key in res
    rc = cli_main(["cluster", "--affinity", str(tmp_path / "A.npy"), "--k", "auto",
                   "--k-range", "2", "5", "--out", str(out)])
    assert rc == 0 and json.loads(out.read_text())["k"] == 3


@pytest.mark.parametrize("case, match", [
    ("missing", "file not found"), ("garbage", "cannot read"), ("k0", "--k"),
    ("kbig", "--k"), ("kword", "--k"), ("nan", "non-finite"), ("names", "--task-names"),
])
def test_cli_errors(tmp_path, capsys, case, match):
    A, _ = planted_affinity(10, 2, seed=0)
    path = tmp_path / "A.npy"
    np.save(path, A)
    k = {"k0": "0", "kbig": "11", "kword": "many"}.get(case, "2")
    extra = []
    if case == "missing":
        path = tmp_path / "nope.npy"
    elif case == "garbage":
        path.write_bytes(b"not a numpy file")
    elif case == "nan":
        A[1, 2] = A[2, 1] = np.nan
        np.save(path, A)
    elif case == "names":
        (tmp_path / "n.txt").write_text("a\nb\n")
        extra = ["--task-names", str(tmp_path / "n.txt")]
    rc = cli_main(["cluster", "--affinity", str(path), "--k", k, "--out",
                   str(tmp_path / "g.json"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and err.count("\n") == 1
    assert not (tmp_path / "g.json").exists()


def test_polish_stops_once_the_partition_settles():
    from graphmtl.clustering import TaskClustering

    A, labels = planted_affinity(150, 6, noise=1.0, seed=2)
    full = TaskClustering(k=6, stable_checks=0, polish="always").fit(A)
    early = TaskClustering(k=6, stable_checks=3, polish="always").fit(A)
    assert np.array_equal(np.unique(np.stack([full.labels_, early.labels_]), axis=1).shape,
                          (2, 6))                       # the same partition
    assert early.solver_ == full.solver_ == "lowrank+admm"


def test_balance_equal_gives_near_equal_sizes_and_keeps_planted_groups():
    from graphmtl.clustering import TaskClustering
    from graphmtl.clustering.rounding import balance_labels

    A, labels = planted_affinity(60, 4, noise=0.6, seed=1)          # equal planted groups
    got = TaskClustering(k=4).fit(A)
    assert sorted(np.bincount(got.labels_).tolist()) == [15, 15, 15, 15]
    assert np.unique(np.stack([got.labels_, labels]), axis=1).shape[1] == 4   # same partition
    rng = np.random.default_rng(0)
    E = rng.normal(size=(61, 61))
    noise = (E + E.T) / 2
    np.fill_diagonal(noise, 0.0)
    free = TaskClustering(k=5, balance="none").fit(noise).labels_
    eq = balance_labels(noise, free, 5)
    assert sorted(np.bincount(eq).tolist()) == [12, 12, 12, 12, 13]
    with pytest.raises(GraphMTLError, match="balance: expected one of"):
        TaskClustering(k=3, balance="some").fit(noise)
