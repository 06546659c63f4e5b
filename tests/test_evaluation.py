"""The grouping benchmark: statistics, random controls, the training pool and the signals."""

import json

import numpy as np
import pytest
import torch
from scipy import stats

from graphmtl.affinity.signals import head_cosine_affinity, label_cooccurrence_affinity
from graphmtl.data import MultiTaskGraph, SplitConfig, stratified_task_splits
from graphmtl.errors import GraphMTLError
from graphmtl.evaluation import (ALL_TASKS, RERUN_SEED_SHIFT, GroupingBenchmark, PartnerSignal,
                                 canonical_groups, mean_partner_signal, paired_difference,
                                 partner_means, partner_signal, partner_test, random_groups,
                                 size_profile, summarize)
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.training import TrainConfig
from graphmtl.training.metrics import tuned_threshold_f1
from graphmtl.training.pool import SubsetJob, SubsetTrainingPool, score_matrix

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------- statistics
def test_paired_difference_is_t_over_per_seed_means():
    rng = np.random.default_rng(0)
    method = rng.random((3, 5))
    control = rng.random((3, 4, 5))
    iv = paired_difference(method, control, level=0.9)
    per_seed = (method[:, None, :] - control).mean(2).mean(1)
    half = stats.t.ppf(0.95, 2) * per_seed.std(ddof=1) / np.sqrt(3)
    assert iv.kind == "seeds" and (iv.seeds, iv.draws) == (3, 4)
    assert iv.mean == pytest.approx(per_seed.mean())
    assert (iv.lo, iv.hi) == pytest.approx((per_seed.mean() - half, per_seed.mean() + half))
    assert iv.per_seed == pytest.approx(tuple(per_seed))


def test_paired_difference_pairs_tasks_and_skips_undefined_ones():
    method = np.array([[0.5, np.nan, 0.9], [0.6, 0.2, np.nan]])
    control = np.array([[0.4, 0.1, 0.1], [0.5, 0.1, 0.2]])    # deterministic control [S, n]
    iv = paired_difference(method, control)
    assert iv.per_seed == pytest.approx((np.mean([0.1, 0.8]), np.mean([0.1, 0.1])))
    assert iv.draws == 1


def test_one_seed_interval_is_over_draws_and_says_so():
    iv = paired_difference(np.full((1, 3), 0.5), np.array([[[0.4] * 3, [0.3] * 3, [0.35] * 3]]))
    assert iv.kind == "draws" and iv.defined and iv.lo > 0
    lone = paired_difference(np.full((1, 3), 0.5), np.full((1, 1, 3), 0.4))
    assert not lone.defined and lone.mean == pytest.approx(0.1)
    with pytest.raises(GraphMTLError, match="do not pair"):
        paired_difference(np.zeros((2, 3)), np.zeros((3, 2, 3)))


def test_runs_design_is_welch_over_independent_runs():
    rng = np.random.default_rng(1)
    method = 0.6 + 0.02 * rng.standard_normal((3, 1)) + 0.1 * rng.random((3, 4))
    control = 0.5 + 0.05 * rng.standard_normal((3, 5, 1)) + 0.1 * rng.random((3, 5, 4))
    method[0, 2] = np.nan                          # an undefined task leaves every run
    iv = paired_difference(method, control, level=0.95, design="runs")
    keep = [0, 1, 3]
    x, y = method[:, keep].mean(1), control[:, :, keep].mean(2).ravel()
    res = stats.ttest_ind(x, y, equal_var=False)
    lo, hi = res.confidence_interval(0.95)
    assert iv.kind == "runs" and iv.mean == pytest.approx(x.mean() - y.mean())
    assert (iv.lo, iv.hi) == pytest.approx((lo, hi))
    # a deterministic control (one draw per seed) counts its S runs
    det = paired_difference(method[:, keep], control[:, 0, keep], design="runs")
    ref = stats.ttest_ind(x, control[:, 0, keep].mean(1), equal_var=False)
    assert (det.lo, det.hi) == pytest.approx(tuple(ref.confidence_interval(0.95)))
    # one seed: no run variance of the method, so back to the draws
    assert paired_difference(method[:1], control[:1], design="runs").kind == "draws"
    with pytest.raises(GraphMTLError, match="interval design"):
        paired_difference(method, control, design="pooled")


def test_verdicts():
    from graphmtl.evaluation import Interval

    better = Interval(0.05, 0.01, 0.09, 0.95, 3, 5, "seeds")
    assert better.verdict("random groups", "AP").startswith("better than random groups by +0.050")
    assert Interval(-0.05, -0.09, -0.01, 0.95, 3, 5, "seeds").verdict("x", "AP").startswith(
        "worse than x")
    assert Interval(0.01, -0.02, 0.04, 0.95, 3, 5, "seeds").verdict("x", "AP").startswith(
        "no better than x")


# ---------------------------------------------------------------------- random controls
def test_random_groups_keep_sizes_and_are_seeded():
    sizes = (4, 3, 3)
    a, b = random_groups(sizes, 0, 7), random_groups(sizes, 0, 7)
    assert np.array_equal(a, b) and sorted(np.bincount(a).tolist()) == [3, 3, 4]
    assert not np.array_equal(a, random_groups(sizes, 1, 7))
    assert not np.array_equal(a, random_groups(sizes, 0, 8))


def test_canonical_groups_and_size_profile():
    assert canonical_groups([5, 5, 2, 9, 2]).tolist() == [0, 0, 1, 2, 1]
    assert size_profile(np.array([1, 1, 0, 2, 1])) == (3, 1, 1)


# ---------------------------------------------------------------------- metrics and signals
def test_tuned_threshold_f1_picks_the_validation_optimum():
    val_scores = np.array([-2.0, -1.0, 0.5, 1.0, 2.0])
    val_labels = np.array([0, 1, 1, 0, 1])
    f1, thr = tuned_threshold_f1(val_scores, val_labels, np.array([-1.5, -0.5, 3.0]),
                                 np.array([0, 1, 1]))
    assert thr == -1.0                       # everything from -1 up: P = 3/4, R = 1
    assert f1 == pytest.approx(2 * 2 / (2 + 2))
    f1, thr = tuned_threshold_f1(np.zeros(3), np.zeros(3), np.array([1.0]), np.array([1]))
    assert thr == 0.0 and f1 == 1.0          # no validation positive: logit 0
    assert np.isnan(tuned_threshold_f1(val_scores, val_labels, np.ones(2), np.zeros(2))[0])


def _graph(N=160, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 6, generator=g)
    latent = x[:, :2].repeat_interleave(n // 2, dim=1)           # tasks 0-2 and 3-5 related
    y = (latent + 0.7 * torch.randn(N, n, generator=g)) > 0.4
    tr, va, te = stratified_task_splits(y, None, SplitConfig(seed=seed))
    ei = torch.randint(0, N, (2, 500), generator=g)
    return MultiTaskGraph(x=x, edge_index=ei, y=y, train_mask=tr, val_mask=va, test_mask=te,
                          task_names=[f"t{i}" for i in range(n)])


def test_label_cooccurrence_is_jaccard_of_training_positives():
    graph = _graph()
    A = label_cooccurrence_affinity(graph)
    P = (graph.y & graph.train_mask).numpy()
    i, j = 0, 4
    expect = (P[:, i] & P[:, j]).sum() / (P[:, i] | P[:, j]).sum()
    assert A[i, j] == pytest.approx(expect) and A[j, i] == pytest.approx(expect)
    assert np.all(np.diag(A) == 0)


def test_head_cosine():
    model = MultiTaskGNN(6, 3, ModelConfig("sign", hidden=4, sign_hops=1))
    W = model.head.weight.detach().double().numpy()
    A = head_cosine_affinity(model)
    assert A[0, 1] == pytest.approx(W[0] @ W[1] / np.linalg.norm(W[0]) / np.linalg.norm(W[1]))
    assert A[2, 2] == 0


MC = ModelConfig("sign", hidden=8, sign_hops=1, dropout=0.0)
TC = TrainConfig(epochs=3, patience=0, batch_size=64)


def test_pool_trains_each_distinct_job_once_and_resumes(tmp_path):
    graph = _graph()
    jobs = [SubsetJob(("t0", "t1")), SubsetJob(("t2",), seed=3), SubsetJob(("t0", "t1"))]
    pool = SubsetTrainingPool(MC, TC, workers=1, splits=("val", "test"), progress=False)
    out = tmp_path / "pool.jsonl"
    records = pool.run(graph, jobs, results=out)
    assert len(out.read_text().splitlines()) == 1 + 2            # header + two distinct jobs
    assert records[0] is records[2] and records[1]["seed"] == 3
    for s in ("val", "test"):
        assert set(records[0]["scores"][s]["ap"]) == {"t0", "t1"}
    assert "f1_tuned" in records[0]["scores"]["test"]
    ap = score_matrix(records, graph.task_names, "test", "ap")
    assert np.isfinite(ap[0, :2]).all() and np.isnan(ap[0, 2:]).all()
    more = pool.run(graph, jobs + [SubsetJob(("t5",))], results=out)   # reuses the finished
    assert more[0]["seconds"] == records[0]["seconds"]
    assert len(out.read_text().splitlines()) == 1 + 3
    with pytest.raises(GraphMTLError, match="other settings"):
        SubsetTrainingPool(MC, TC.replace(epochs=4), workers=1, progress=False).run(
            graph, jobs, results=out)
    with pytest.raises(GraphMTLError, match="unknown task 'zz'"):
        pool.run(graph, [SubsetJob(("zz",))])


# ---------------------------------------------------------------------- the benchmark
def test_benchmark_seed_and_summary(tmp_path):
    graph = _graph()
    planted = np.array([0, 0, 0, 1, 1, 1])
    bench = GroupingBenchmark(MC, TC, random_draws=2, workers=2, progress=False)
    runs = []
    for seed in (0, 1):
        runs.append(bench.run_seed(
            graph, {"mine": [1, 1, 1, 0, 0, 0], "uneven": [0, 0, 0, 0, 1, 1]}, seed=seed,
            planted=planted, costs={"mine": {"wall_s": 1.0, "cpu_s": 2.0}},
            results=tmp_path / f"s{seed}.jsonl",
            save_models={"mine": tmp_path / f"models{seed}"}))
    r0 = runs[0]
    assert list(r0.methods) == ["mine", "uneven", "planted groups"]
    assert set(r0.random) == {(3, 3), (4, 2)} and all(len(d) == 2 for d in r0.random.values())
    for draw in r0.control("uneven"):
        assert size_profile(draw.groups) == (4, 2)
    assert (tmp_path / "models0" / "group_0" / "model.pt").is_file()
    assert np.array_equal(r0.all_tasks.groups, np.zeros(6))
    ap = r0.methods["mine"].scores["ap"]
    assert ap.shape == (6,) and np.all((ap >= 0) & (ap <= 1))
    # "mine" and the planted groups are the same partition: the same models, the same scores
    np.testing.assert_array_equal(ap, r0.methods["planted groups"].scores["ap"])
    res = summarize(runs)
    mine = res.method("mine")
    assert mine.ari == 1.0 and res.method("uneven").ari < 1.0
    assert mine.vs_random["ap"].seeds == 2 and mine.vs_random["ap"].draws == 2
    assert mine.wall_s == 1.0 and res.method("uneven").wall_s is None
    assert "| mine | 2 |" in res.table()
    json.dumps(res.to_dict())
    with pytest.raises(GraphMTLError, match="reserved"):
        bench.run_seed(graph, {ALL_TASKS: planted})
    with pytest.raises(GraphMTLError, match="one group id per task"):
        bench.run_seed(graph, {"short": [0, 1]})


def test_benchmark_fine_tunes_every_model_from_the_all_task_model(tmp_path):
    graph = _graph()
    groupings = {"mine": [1, 1, 1, 0, 0, 0]}
    scratch = GroupingBenchmark(MC, TC, random_draws=2, workers=1, group_init="scratch",
                                progress=False).run_seed(
        graph, groupings, seed=0, results=tmp_path / "scratch.jsonl")
    # A learning rate too small to move: every fine-tuned model keeps the all-task weights, so
    # each task scores exactly what the all-task model scores.
    still = TC.replace(lr=1e-12)
    bench = GroupingBenchmark(MC, still, random_draws=2, workers=2, group_init="all_tasks",
                              progress=False)
    out = tmp_path / "tuned.jsonl"
    run = bench.run_seed(graph, groupings, seed=0, results=out)
    all_ap = run.all_tasks.scores["ap"]
    for r in [run.methods["mine"], *run.control("mine")]:
        np.testing.assert_allclose(r.scores["ap"], all_ap, atol=1e-6)
    assert (tmp_path / "tuned.all_tasks" / "seed0" / "model.pt").is_file()
    assert len((tmp_path / "tuned.tuned-seed0.jsonl").read_text().splitlines()) == 1 + 2 + 2 * 2
    # The all-task model itself is trained as in the scratch protocol (same seed, same
    # settings but the learning rate): with the scratch learning rate it is the same model.
    same = GroupingBenchmark(MC, TC, random_draws=1, workers=1, group_init="all_tasks",
                             progress=False).run_seed(graph, groupings, seed=0)
    np.testing.assert_allclose(same.all_tasks.scores["ap"], scratch.all_tasks.scores["ap"])
    # Resumed: nothing is trained again.
    again = bench.run_seed(graph, groupings, seed=0, results=out)
    np.testing.assert_array_equal(again.methods["mine"].scores["ap"],
                                  run.methods["mine"].scores["ap"])
    with pytest.raises(GraphMTLError, match="group_init: unknown 'warm'"):
        GroupingBenchmark(MC, TC, group_init="warm")


def test_benchmark_trains_the_draws_twice_for_the_partner_signal(tmp_path):
    graph = _graph()
    groupings = {"mine": [1, 1, 1, 0, 0, 0]}
    out = tmp_path / "g.jsonl"
    bench = GroupingBenchmark(MC, TC, random_draws=2, workers=1, group_init="scratch",
                              rerun_draws=True, progress=False)
    run = bench.run_seed(graph, groupings, seed=3, results=out)
    first, second = run.control("mine"), run.random_rerun[(3, 3)]
    assert [d.groups.tolist() for d in first] == [d.groups.tolist() for d in second]
    seeds = sorted(json.loads(line)["seed"] for line in out.read_text().splitlines()[1:])
    assert seeds == [3] * (2 + 1 + 2 * 2) + [3 + RERUN_SEED_SHIFT] * (2 * 2)
    for d in first + second:               # validation scores kept beside the test scores
        assert set(d.val_scores) == {"ap", "roc_auc", "f1"}
        assert np.all((d.val_scores["ap"] >= 0) & (d.val_scores["ap"] <= 1))
    sig = run.partner_signal("mine")
    assert sig.trainings == 2 and sig.observations == 2 * 6
    # without the second training: one training, no reproducibility
    once = GroupingBenchmark(MC, TC, random_draws=2, workers=1, group_init="scratch",
                             progress=False).run_seed(graph, groupings, seed=3, results=out)
    assert once.random_rerun == {}
    one = once.partner_signal("mine")
    assert one.trainings == 1 and np.isnan(one.reproducibility)
    assert one.selection_gain == one.selection_gain_same_run
    np.testing.assert_array_equal(once.control("mine")[0].scores["ap"], first[0].scores["ap"])


def test_train_group_models_scores_each_task_with_its_group_and_fine_tunes(tmp_path):
    from graphmtl.pipeline import train_group_models
    from graphmtl.training import Trainer, evaluate, load_checkpoint

    graph = _graph()
    groups = np.array([2, 0, 2, 0, 5, 5])
    got = train_group_models(graph, groups, MC, TC, tmp_path / "g", workers=1, progress=False)
    assert got.metrics.task_names == graph.task_names and got.metrics.split == "test"
    assert np.isfinite(got.metrics.ap).all()
    for g in (0, 2, 5):                       # each group's own model scores its tasks
        assert (tmp_path / "g" / f"group_{g}" / "model.pt").is_file()
    model = load_checkpoint(tmp_path / "g" / "group_5" / "model.pt").model
    own = evaluate(model, graph, ["t4", "t5"], "test")
    np.testing.assert_allclose(got.metrics.ap[[4, 5]], own.ap, atol=1e-6)
    again = train_group_models(graph, groups, MC, TC, tmp_path / "g", workers=1, progress=False)
    np.testing.assert_array_equal(again.metrics.ap, got.metrics.ap)      # resumed, not retrained
    # Fine-tuned from an all-task model with steps too small to move: its scores, task by task.
    Trainer(MC, TC).fit(graph, out_dir=tmp_path / "all", progress=False)
    base = evaluate(load_checkpoint(tmp_path / "all" / "model.pt").model, graph,
                    graph.task_names, "test")
    tuned = train_group_models(graph, groups, MC, TC.replace(lr=1e-12),
                               init_from=tmp_path / "all" / "model.pt", workers=2,
                               progress=False)
    np.testing.assert_allclose(tuned.metrics.ap, base.ap, atol=1e-6)
    with pytest.raises(GraphMTLError, match="one group id per task"):
        train_group_models(graph, groups[:3], MC, TC, progress=False)


def test_cli_compare_judges_groupings_against_random(tmp_path, capsys):
    from graphmtl.cli import main

    graph = _graph()
    graph.save(tmp_path / "g.npz")
    (tmp_path / "mine.json").write_text(json.dumps(
        {"task_names": graph.task_names, "labels": [0, 0, 0, 1, 1, 1]}))
    (tmp_path / "theirs.json").write_text(json.dumps(
        {"groups": {"a": ["t0", "t3"], "b": ["t1", "t4"], "c": ["t2", "t5"]}}))
    out = tmp_path / "cmp"
    argv = ["compare", "--data", str(tmp_path / "g.npz"), "--groups",
            f"mine={tmp_path / 'mine.json'}", f"theirs={tmp_path / 'theirs.json'}",
            "--seeds", "2", "--draws", "2", "--workers", "1", "--epochs", "3", "--hidden", "8",
            "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| mine | 2 |" in text and "| theirs | 3 |" in text
    assert "mine: " in text and "random groups of the same sizes" in text
    res = json.loads((out / "comparison.json").read_text())["result"]
    assert res["seeds"] == [0, 1] and res["draws"] == 2
    assert (out / "models.all_tasks" / "seed1" / "model.pt").is_file()     # fine-tuned (default)
    fresh = tmp_path / "fresh"
    assert main(argv[:-1] + [str(fresh), "--group-init", "scratch", "--seeds", "1"]) == 0
    assert "| mine | 2 |" in capsys.readouterr().out
    assert not (fresh / "models.all_tasks").exists()
    # --partner-signal: the draws trained twice, one line per group-size profile
    assert main(argv + ["--partner-signal"]) == 0
    text = capsys.readouterr().out
    assert "Partner signal on the random draws of mine's group sizes: A task's partners" in text
    assert "Partner signal on the random draws of theirs's" in text
    signal = json.loads((out / "comparison.json").read_text())["partner_signal"]
    assert set(signal) == {"mine", "theirs"} and signal["mine"]["trainings"] == 2
    # bad input: one line, nothing left behind
    (tmp_path / "bad.json").write_text(json.dumps({"task_names": ["t0"], "labels": [0]}))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv[:3] + ["--groups", f"bad={tmp_path / 'bad.json'}", "--out",
                            str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "task 't1' of --data has no group" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_average_precision_columns_equals_scikit_learn_with_ties():
    from sklearn.metrics import average_precision_score

    from graphmtl.training.metrics import average_precision_columns

    rng = np.random.default_rng(0)
    s = rng.integers(-3, 4, size=(80, 6)).astype(float)          # many ties
    s[:, 3] = rng.normal(size=80)
    y = rng.random((80, 6)) < 0.3
    m = rng.random((80, 6)) < 0.8
    m[:, 5] &= ~y[:, 5]                                            # a column without positives
    got = average_precision_columns(torch.tensor(s), torch.tensor(y), torch.tensor(m)).numpy()
    for c in range(5):
        assert got[c] == pytest.approx(average_precision_score(y[m[:, c], c], s[m[:, c], c]),
                                       abs=1e-12)
    assert np.isnan(got[5])


def test_combine_affinities_standardises_then_averages():
    from graphmtl.affinity import combine_affinities

    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 5))
    A = A + A.T
    C = combine_affinities(A, 100.0 * A + 3.0)            # the same signal in other units
    off = ~np.eye(5, dtype=bool)
    z = (A[off] - A[off].mean()) / A[off].std()
    np.testing.assert_allclose(C[off], z, atol=1e-12)
    assert np.all(np.diag(C) == 0) and np.allclose(C, C.T)
    with pytest.raises(GraphMTLError, match="shapes"):
        combine_affinities(A, np.zeros((4, 4)))


# ---------------------------------------------------------------------- partner test
def _draws(n=60, k=6, D=5, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    A = (A + A.T) / 2
    G = np.stack([random_groups([n // k] * k, d, seed) for d in range(D)])
    return rng, A, G


def test_partner_means_is_the_mean_affinity_with_group_mates():
    rng, A, G = _draws(n=12, k=3, D=2)
    got = partner_means(A, G)
    for d in range(2):
        for i in range(12):
            mates = [j for j in range(12) if G[d, j] == G[d, i] and j != i]
            assert got[d, i] == pytest.approx(A[i, mates].mean())
    # a task alone in its group has no partners: NaN; a stack of affinities is vectorised
    G1 = np.array([[0, 0, 1], [0, 1, 1]])
    assert np.isnan(partner_means(np.ones((3, 3)), G1)[0, 2])
    stack = partner_means(np.stack([A, 2 * A]), G)
    assert np.allclose(stack[1], 2 * stack[0])


def test_partner_test_finds_an_affinity_that_predicts_scores_and_not_noise():
    rng, A, G = _draws()
    x = partner_means(A, G)
    easy = rng.normal(size=(1, 60))                  # per-task level: centred away
    Y = 0.5 * x + 0.3 * rng.normal(size=x.shape) + 3 * easy
    real = partner_test(A, G, Y)
    assert real.rho > 0.2 and real.p_value < 0.02 and real.observations == 300
    assert real.null_sd < real.rho / 2
    noise = partner_test(A, G, rng.normal(size=Y.shape) + 3 * easy)
    assert abs(noise.rho) < 3 * noise.null_sd and noise.p_value > 0.02
    # the affinity of other tasks (relabelled) does not predict them either
    p = rng.permutation(60)
    assert partner_test(A[p][:, p], G, Y).rho < real.rho / 2
    # seeded; NaN scores drop out; a task with a score in fewer than 2 draws is not used
    assert partner_test(A, G, Y, seed=3) == partner_test(A, G, Y, seed=3)
    Y2 = Y.copy()
    Y2[1:, 0] = np.nan                       # task 0 scored in one draw only: all 5 dropped
    Y2[2, 1] = np.nan                        # task 1 keeps its 4 other draws
    assert partner_test(A, G, Y2).observations == 300 - 5 - 1


def _signal_scores(partner: float, luck: float, seed: int = 0):
    """Val and test scores ``[2 trainings, 5 draws, 80 tasks]``: a partner effect shared by
    both trainings and both splits, a training's luck shared by its splits, split noise."""
    rng = np.random.default_rng(seed)
    R, D, n = 2, 5, 80
    level = 3 * rng.normal(size=(1, 1, n))             # per-task level: centred away
    effect = partner * rng.normal(size=(1, D, n))
    run_luck = luck * rng.normal(size=(R, D, n))
    val = level + effect + run_luck + 0.2 * rng.normal(size=(R, D, n))
    test = level + effect + run_luck + 0.2 * rng.normal(size=(R, D, n))
    return val, test


def test_partner_signal_separates_the_partners_from_the_trainings_luck():
    val, test = _signal_scores(partner=1.0, luck=0.3)
    real = partner_signal(val, test)
    assert real.trainings == 2 and real.observations == 5 * 80
    assert real.reproducibility > 0.7 and real.null_sd < 0.1
    assert real.partner_test_ceiling == pytest.approx(np.sqrt(real.reproducibility))
    assert real.selection_gain > 0.8 and real.selection_gain_same_run > 0.8
    # Only the training's luck moves the scores: validation still "predicts" test within one
    # training, but nothing carries over to the other training.
    luck = partner_signal(*_signal_scores(partner=0.0, luck=1.0))
    assert abs(luck.reproducibility) < 3 * luck.null_sd
    assert real.validation_agreement > 0.7 and abs(luck.validation_agreement) < 3 * luck.null_sd
    assert partner_signal(*[x[:1] for x in _signal_scores(0.0, 1.0)]).validation_agreement > 0.7
    assert luck.selection_gain_same_run > 0.8 and abs(luck.selection_gain) < 0.25
    # selection gain, by hand: draw picked on training 0's validation, scored in training 1
    best = val[0].argmax(0)
    by_hand = np.mean(test[1][best, np.arange(80)] - test[1].mean(0))
    best1 = val[1].argmax(0)
    by_hand = (by_hand + np.mean(test[0][best1, np.arange(80)] - test[0].mean(0))) / 2
    assert real.selection_gain == pytest.approx(by_hand)
    # one training ([D, n]): no reproducibility, the gain is within it
    one = partner_signal(val[0], test[0])
    assert one.trainings == 1 and np.isnan(one.reproducibility) and np.isnan(one.null_sd)
    assert one.selection_gain == one.selection_gain_same_run
    # a task missing a score in any draw or training is left out; seeded
    test2 = test.copy()
    test2[1, 3, 7] = np.nan
    assert partner_signal(val, test2).observations == 5 * 79
    assert partner_signal(val, test, seed=4) == partner_signal(val, test, seed=4)
    assert set(real.to_dict()) >= {"reproducibility", "partner_test_ceiling"}


def test_mean_partner_signal_and_its_sentence():
    val, test = _signal_scores(1.0, 0.3)
    a, b = partner_signal(val, test, seed=0), partner_signal(val[::-1], test[::-1], seed=1)
    m = mean_partner_signal([a, b])
    assert m.reproducibility == pytest.approx((a.reproducibility + b.reproducibility) / 2)
    assert m.observations == a.observations + b.observations and m.trainings == 2
    text = m.describe()
    assert f"decide {m.reproducibility:.2f}" in text and f"{100 * m.selection_gain:+.1f} AP" in text
    one = partner_signal(val[0], test[0]).describe()
    assert "within the same training" in one and "decide" not in one
    # read back from JSON, where NaN was written as None
    assert PartnerSignal.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    single = partner_signal(val[0], test[0])
    back = PartnerSignal.from_dict({k: None if isinstance(v, float) and np.isnan(v) else v
                                    for k, v in single.to_dict().items()})
    assert np.isnan(back.reproducibility) and back.describe() == single.describe()
    with pytest.raises(GraphMTLError, match="no signals"):
        mean_partner_signal([])


def test_partner_signal_rejects_bad_shapes():
    val, test = _signal_scores(1.0, 0.3)
    with pytest.raises(GraphMTLError, match="test_scores: expected"):
        partner_signal(val[:, :1], test[:, :1])
    with pytest.raises(GraphMTLError, match="val_scores: expected shape"):
        partner_signal(val[:, :, :5], test)
    with pytest.raises(GraphMTLError, match="permutations"):
        partner_signal(val, test, permutations=0)


def test_partner_test_rejects_bad_shapes():
    _, A, G = _draws()
    Y = np.zeros(G.shape)
    with pytest.raises(GraphMTLError, match="affinity: expected a square"):
        partner_test(A[:, :5], G, Y)
    with pytest.raises(GraphMTLError, match="groups: expected at least 2 groupings"):
        partner_test(A, G[:1], Y[:1])
    with pytest.raises(GraphMTLError, match="scores: expected shape"):
        partner_test(A, G, Y[:, :5])
    with pytest.raises(GraphMTLError, match="permutations"):
        partner_test(A, G, Y, permutations=0)
