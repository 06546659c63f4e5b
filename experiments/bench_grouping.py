"""The grouping benchmark: every way of grouping tasks against random groups of the same sizes.

For each seed (a new data split, base model, estimate and training seed) every method below
estimates a task affinity, which is clustered into ``k`` groups; then
:class:`graphmtl.evaluation.GroupingBenchmark` trains one model per group for every grouping, for
``--draws`` random groupings of each method's group sizes and for one model on all tasks, and
scores every task on its test split. The tables give each method's macro test scores, its paired
per-task difference to random groups of the same sizes and to one model on all tasks with 95 %
intervals (Student t over seeds), the ARI against planted groups where they are known, and what
obtaining the groups cost (wall and CPU seconds, child processes included).

Fidelity (``--fidelity``): every estimate is also computed on the trained affinity's own
subsets and compared with the trained scores there: per-task Spearman correlation, and on planted
graphs the *partner effect* (how many standard deviations a task's per-subset score rises per
same-group partner in the subset).

Partner signal (``--rerun-draws``): every random draw is trained a second time with another
training seed, and :func:`graphmtl.evaluation.partner_signal` says how much of a task's score
across the draws its partners decide (the two trainings' agreement), what picking each task's
draw on validation carries over to the other training, and so how much any grouping can gain on
the data.

    OMP_NUM_THREADS=1 nice .venv/bin/python -m experiments.bench_grouping --dataset annotated_scarce --seeds 0 1 2

Per-seed work (trained models, estimates) is kept in ``experiments/work/bench_grouping/`` so an
interrupted run resumes; results go to ``results/bench_grouping_<dataset>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.harness import WORK, command, machine, md_table, run, write_results
from graphmtl.evaluation.benchmark import GROUP_INITS, RERUN_SEED_SHIFT

NAME = "bench_grouping"


@dataclass(frozen=True)
class Dataset:
    """A benchmark dataset: its spec (``{seed}`` is the split seed) and the number of groups
    (``None``: the planted number)."""

    spec: str
    k: int | None
    note: str = ""


DATASETS: dict[str, Dataset] = {
    "annotated_scarce": Dataset("synthetic:preset=annotated_scarce,seed={seed}", None,
                                "planted, 2-3 training positives per task"),
    "annotated_moderate": Dataset("synthetic:preset=annotated_moderate,seed={seed}", None,
                                  "planted, about 10 training positives per task"),
    "annotated_disjoint": Dataset("synthetic:preset=annotated_disjoint,seed={seed}", None,
                                  "planted, tasks of a group labelled on disjoint node sets"),
    "youtube": Dataset("snap:youtube,k=100,seed={seed}", 10, "YouTube-100, 20 % training"),
    "dblp": Dataset("snap:dblp,k=100,train_pos=10,pos_cutoff=100,seed={seed}", 10,
                    "DBLP-100, papers' protocol: 10 training positives (20 % up to 100)"),
    "amazon": Dataset("snap:amazon,k=100,train_pos=2,seed={seed}", 10,
                      "Amazon-100 (shared file), papers' protocol: 2 training positives"),
    "blogcatalog": Dataset("blogcatalog,seed={seed}", 8, "BlogCatalog, 39 labels, 20 %"),
}
#: Datasets with a recorded run of group models fine-tuned from the all-task model
#: (``--group-init all_tasks``, result ``NAME_<dataset>_from_all_tasks``).
FINE_TUNED = ("annotated_scarce", "annotated_moderate", "annotated_disjoint", "amazon", "youtube",
              "blogcatalog", "dblp")
#: Recorded runs under a name of their own (``--out``), beside the main tables: the fidelity
#: check against both trainings of the trained affinity's subsets, and the trained affinity
#: fine-tuned like the group models on YouTube-100, BlogCatalog and Amazon-100.
OTHER_RESULTS = (f"{NAME}_annotated_scarce_fidelity", f"{NAME}_youtube_trained_fine_tuned",
                 f"{NAME}_blogcatalog_trained_fine_tuned", f"{NAME}_amazon_trained_fine_tuned")
RESULT_NAMES = [name for d in DATASETS
                for name in (f"{NAME}_{d}",) + ((f"{NAME}_{d}_from_all_tasks",)
                                                if d in FINE_TUNED else ())] + list(OTHER_RESULTS)


@dataclass(frozen=True)
class Method:
    """A way of obtaining groups: an affinity method of the pipeline with its settings, or the
    combination of other methods' affinities (``combines``: their names; computed from theirs,
    at the sum of their costs). ``fine_tuned``: a trained affinity whose subset models are
    fine-tuned from the seed's all-task model, as the group models of ``--group-init
    all_tasks`` are (only with that protocol)."""

    affinity: dict[str, Any]
    projection: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    combines: tuple[str, ...] = ()
    fine_tuned: bool = False


#: The methods, declared once. ``pairwise`` is the pipeline's naive pairwise baseline.
METHODS: dict[str, Method] = {
    "Grad-TAG offset (previous default)": Method(
        {"method": "gradtag", "mode": "offset", "num_subsets": 1000, "subset_size": 5},
        {"dim": 100, "train_budget": 2000, "val_budget": 1000},
        "the previous pipeline default: d = 100, 1000 subsets of 5, standardised"),
    "Grad-TAG reference": Method(
        {"method": "gradtag", "mode": "reference"},
        {"dim": 200, "params": "encoder", "train_budget": 2000, "val_budget": 1000},
        "the reference code's form: no offset, C = 0.01, encoder update, network scoring"),
    "Grad-TAG surrogate": Method({"method": "surrogate"}, {}, "batched surrogate training"),
    "surrogate + head cosine": Method({"method": "combined"}, {},
                                      "both affinities standardised and averaged",
                                      combines=("Grad-TAG surrogate", "head cosine")),
    "shared subspace": Method({"method": "subspace"}, {},
                              "closed-form reduced-rank linear models of the subsets"),
    "trained affinity": Method({"method": "trained"}, {}, "every sampled subset trained"),
    "trained affinity (fine-tuned)": Method(
        {"method": "trained", "num_subsets": 150, "subset_size": 10}, {},
        "150 subsets of 10, each fine-tuned from the all-task model", fine_tuned=True),
    "pairwise (sampled)": Method({}, {}, "3n sampled pairs + n single tasks trained"),
    "head cosine": Method({"method": "head_cosine"}, {}, "output weights of the base model"),
    "label co-occurrence": Method({"method": "label_cooccurrence"}, {},
                                  "Jaccard of training positives"),
}
#: The fidelity check's noise ceiling: the trained affinity's subsets trained once more, with the
#: training seed shifted by ``RERUN_SEED``.
RERUN, RERUN_SEED = "trained affinity, trained again", RERUN_SEED_SHIFT
#: Methods whose estimate can be recomputed on given subsets (for the fidelity check).
FIDELITY = ("Grad-TAG offset (previous default)", "Grad-TAG reference", "Grad-TAG surrogate",
            "shared subspace")


# ---------------------------------------------------------------------- one seed
def _cluster(A: np.ndarray, k: int) -> np.ndarray:
    from graphmtl.clustering import TaskClustering

    return TaskClustering(k=k).fit(A).labels_


def run_seed(dataset: str, seed: int, args, work: Path) -> dict[str, Any]:
    import torch_geometric  # noqa: F401 -- imported before any cost is timed: importing PyG
    # (several seconds, torch._dynamo included) would otherwise be charged to whichever method
    # happens to touch it first; every run of the library pays it once, before any stage.

    from graphmtl.data import load_dataset
    from graphmtl.evaluation import GroupingBenchmark
    from graphmtl.pipeline import CompareConfig, PipelineConfig
    from graphmtl.training import Trainer
    from graphmtl.utils.io import atomic_write_json, read_json
    from graphmtl.utils.timing import Stopwatch

    ds = DATASETS[dataset]
    done_path = work / ("seed.json" if args.group_init == "scratch" else
                        f"seed-{args.group_init}.json")
    done = None
    if done_path.is_file():
        done = read_json(done_path)
        if set(args.methods) <= set(done["methods"]) and not (   # else: add what is missing
                _fidelity_wanted(args) - set(done.get("fidelity") or {})) and not (
                args.rerun_draws and not done.get("random_rerun")):
            return done
    graph = load_dataset(ds.spec.format(seed=seed))
    planted = graph.provenance.get("planted_groups")
    planted = None if planted is None else np.asarray(planted)
    k = int(planted.max()) + 1 if ds.k is None else ds.k
    cfg = PipelineConfig(data=ds.spec.format(seed=seed), k=k, seed=seed,
                         compare=CompareConfig(workers=args.workers))
    cfg = cfg.replace(train=cfg.train.replace(seed=seed))
    names = [m for m in METHODS if m in args.methods]

    # Shared by the methods that read it: one base model on all tasks.
    base_dir = work / "base"
    if not (base_dir / "cost.json").is_file():
        with Stopwatch() as sw_base:
            Trainer(cfg.model, cfg.train).fit(graph, "all", out_dir=base_dir, resume=True,
                                              progress=False)
        atomic_write_json(base_dir / "cost.json", sw_base.to_dict())
    base_cost = read_json(base_dir / "cost.json")
    bench = GroupingBenchmark(cfg.model, cfg.train, random_draws=args.draws,
                              workers=args.workers, group_init=args.group_init,
                              rerun_draws=args.rerun_draws, progress=False)
    all_tasks_model = None
    if any(METHODS[n].fine_tuned for n in names):
        # The comparison's own all-task model (trained here first, reused by it below).
        bench.run_seed(graph, {}, seed=seed, results=work / "group_models.jsonl")
        all_tasks_model = work / "group_models.all_tasks" / f"seed{seed}" / "model.pt"
    groupings, costs, info = {}, {}, {}
    stores: dict[str, Path] = {}
    for name in names:
        cache = work / f"groups-{_slug(name)}.json"
        if (work / _slug(name) / "store").is_dir():
            stores[_slug(name)] = work / _slug(name) / "store"
        if cache.is_file():
            rec = read_json(cache)
            groupings[name], costs[name], info[name] = (np.array(rec["labels"]), rec["cost"],
                                                        rec["info"])
            continue
        A, cost, extra = _method_affinity(name, graph, cfg, seed, work, base_dir, base_cost,
                                          stores, all_tasks_model)
        with Stopwatch() as sw_cluster:
            labels = _cluster(A, k)
        cost = {key: cost[key] + v for key, v in sw_cluster.to_dict().items()}
        atomic_write_json(cache, {"labels": labels.tolist(), "cost": cost, "info": extra})
        groupings[name], costs[name], info[name] = labels, cost, extra
        print(f"[{dataset} seed {seed}] {name}: {np.bincount(labels).tolist()} "
              f"({cost['wall_s']:.0f} s wall, {cost['cpu_s']:.0f} s CPU)", flush=True)

    fidelity = (_fidelity(graph, cfg, work, names, stores, planted, seed)
                if _fidelity_wanted(args) else {})

    run = bench.run_seed(graph, groupings, seed=seed,
                         planted=None if planted is None else planted.tolist(), costs=costs,
                         results=work / "group_models.jsonl")
    out = {"seed": seed, "k": k, "task_names": graph.task_names,
           "planted": None if planted is None else planted.tolist(),
           "methods": {n: {"groups": r.groups.tolist(),
                           "scores": {m: v.tolist() for m, v in r.scores.items()},
                           "train_seconds": r.train_seconds}
                       for n, r in run.methods.items()},
           "random": _draws_json(run.random), "random_rerun": _draws_json(run.random_rerun),
           "all_tasks": {m: v.tolist() for m, v in run.all_tasks.scores.items()},
           "costs": costs, "info": info, "fidelity": fidelity, "machine": machine()}
    if done is not None:   # the seed's first run keeps its machine record; later additions too
        out["machine"] = done["machine"]
        out["machine_added"] = done.get("machine_added", []) + [machine()]
    atomic_write_json(done_path, out)
    return out


def _method_affinity(name: str, graph, cfg, seed: int, work: Path, base_dir: Path,
                     base_cost: dict, stores: dict, all_tasks_model: Path | None = None
                     ) -> tuple[np.ndarray, dict, dict]:
    """Method ``name``'s affinity, what it cost (wall / CPU seconds: base model, projection and
    estimate; not the clustering) and its details; computed once per seed and kept in
    ``work/<method>/``. ``all_tasks_model``: the checkpoint the ``fine_tuned`` methods start
    from."""
    from graphmtl.affinity import combine_affinities
    from graphmtl.pipeline.methods import METHODS as PIPELINE_METHODS
    from graphmtl.utils.io import atomic_write_json, read_json
    from graphmtl.utils.timing import Stopwatch

    spec = METHODS[name]
    method_dir = work / _slug(name)
    if (method_dir / "affinity.npy").is_file():
        return (np.load(method_dir / "affinity.npy"), read_json(method_dir / "cost.json"),
                read_json(method_dir / "info.json"))
    method_dir.mkdir(parents=True, exist_ok=True)
    if spec.combines:      # what the pipeline's method computes, from the parts' affinities
        parts = [_method_affinity(c, graph, cfg, seed, work, base_dir, base_cost, stores)
                 for c in spec.combines]
        A = combine_affinities(*[part[0] for part in parts])
        uses_base = sum("base" in PIPELINE_METHODS[METHODS[c].affinity["method"]].needs
                        for c in spec.combines)
        cost = {key: sum(part[1][key] for part in parts)
                - max(uses_base - 1, 0) * base_cost[key] for key in ("wall_s", "cpu_s")}
        extra: dict[str, Any] = {}
    elif spec.fine_tuned:
        # Its cost is its models' own seconds (one worker's time), also where an earlier call
        # trained them, plus the all-task model it starts from (the base model's settings).
        A, extra = _trained_fine_tuned(graph, cfg, spec, seed, method_dir, all_tasks_model)
        cost = {key: base_cost[key] + extra["model_seconds"] for key in ("wall_s", "cpu_s")}
    else:
        with Stopwatch() as sw:
            if name == "pairwise (sampled)":
                (A, extra), cost = _pairwise(graph, cfg, method_dir), {}
            else:
                A, extra, cost = _estimate(graph, cfg, spec, seed, base_dir, base_cost,
                                           method_dir, stores)
        cost = {key: cost.get(key, 0.0) + v for key, v in sw.to_dict().items()}
    np.save(method_dir / "affinity.npy", A)
    atomic_write_json(method_dir / "cost.json", cost)
    atomic_write_json(method_dir / "info.json", extra)
    return A, cost, extra


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def _pairwise(graph, cfg, work: Path):
    """The pipeline's naive pairwise affinity on a sample of ``3 n`` pairs."""
    from graphmtl.affinity import (TrainedSubsetScores, pair_subsets, pairwise_affinity,
                                   symmetrize)

    n = graph.num_tasks
    pairs = cfg.compare.num_pairs(n)
    total = n * (n - 1) // 2
    M = pair_subsets(n, None if pairs >= total else pairs, seed=cfg.seed, singletons=True)
    res = TrainedSubsetScores(cfg.model, cfg.train, workers=cfg.compare.workers,
                              progress=False).fit(graph, M, results=work / "pairs.jsonl").result_
    return (symmetrize(pairwise_affinity(M, res.scores, relative=True)),
            {"pairs": pairs, "pairs_total": total})


def _trained_fine_tuned(graph, cfg, spec: Method, seed: int, work: Path, init_from: Path):
    """The trained affinity with every subset model fine-tuned from ``init_from``; its details
    include the split-half reliability of the affinity (:func:`split_half_reliability`) and the
    per-task Spearman correlation of the default estimate's scores on the same subsets with
    its scores."""
    from graphmtl.affinity import (SubspaceAffinityEstimator, TrainedAffinityEstimator,
                                   split_half_reliability)

    est = TrainedAffinityEstimator(spec.affinity["num_subsets"], spec.affinity["subset_size"],
                                   seed=seed, model_config=cfg.model, train_config=cfg.train,
                                   init_from=init_from, workers=cfg.compare.workers,
                                   progress=False).fit(graph, results=work / "subset_models.jsonl")
    M, truth = est.subsets_, est.scores_["ap"]
    np.save(work / "subsets.npy", M)
    np.save(work / "scores.npy", truth)
    subspace = SubspaceAffinityEstimator(seed=seed).fit(graph, subsets=M).scores_
    return est.affinity_, {"subsets": int(M.shape[0]), "subset_size": int(M.sum(1).max()),
                           "model_seconds": float(est.seconds_.sum()),
                           "split_half": split_half_reliability(M, truth, seed=seed),
                           "subspace_spearman": _task_spearman(_z(M, subspace), _z(M, truth))}


def _estimate(graph, cfg, spec: Method, seed: int, base_dir: Path, base_cost: dict, work: Path,
              stores: dict):
    """One affinity method of the pipeline; its cost includes the base model and the
    projection where it reads them."""
    from graphmtl.pipeline import AffinityConfig
    from graphmtl.pipeline.methods import METHODS as PIPELINE_METHODS, MethodInputs
    from graphmtl.projection import GradientProjector, ProjectionConfig
    from graphmtl.training import load_checkpoint

    acfg = AffinityConfig(**{**spec.affinity, "seed": seed})
    needs = PIPELINE_METHODS[acfg.method].needs
    cost = dict(base_cost) if "base" in needs else {}
    store = None
    if "store" in needs:
        store = work / "store"
        GradientProjector(ProjectionConfig(**{**spec.projection, "seed": seed})).project(
            load_checkpoint(base_dir / "model.pt").model, graph, store, resume=True,
            progress=False)
        stores[work.name] = store
    est = PIPELINE_METHODS[acfg.method].estimate(
        MethodInputs(graph=graph, config=cfg, base_checkpoint=base_dir / "model.pt", store=store),
        acfg, work)
    for arr, val in est.arrays.items():
        np.save(work / f"{arr}.npy", val)
    return est.affinity, {key: v for key, v in est.info.items()
                          if key in ("subsets", "subset_size")}, cost


def _fidelity_wanted(args) -> set[str]:
    """The rows of the fidelity check this call asks for (empty without ``--fidelity`` or
    without the trained affinity to compare with)."""
    if not args.fidelity or "trained affinity" not in args.methods:
        return set()
    return {"trained affinity", RERUN} | {n for n in FIDELITY if n in args.methods}


def _z(M: np.ndarray, F: np.ndarray) -> np.ndarray:
    """``F`` z-scored per task over the subsets where it is scored."""
    from graphmtl.affinity import standardize_scores

    ok = M & np.isfinite(F)
    return standardize_scores(ok, np.where(ok, F, np.nan))


def _task_spearman(Z: np.ndarray, target: np.ndarray) -> float | None:
    """Mean over tasks (at least 5 subsets with both, both varying) of the rank correlation of
    a task's scores with the target's over its subsets."""
    from scipy.stats import spearmanr

    rho = []
    for i in range(Z.shape[1]):
        rows = np.isfinite(Z[:, i]) & np.isfinite(target[:, i])
        if rows.sum() >= 5 and np.std(Z[rows, i]) > 0 and np.std(target[rows, i]) > 0:
            rho.append(spearmanr(Z[rows, i], target[rows, i])[0])
    return float(np.mean(rho)) if rho else None


def _fidelity(graph, cfg, work: Path, names, stores, planted, seed) -> dict[str, Any]:
    """Each estimate on the trained affinity's subsets against the trained scores."""
    from graphmtl.affinity import (GradTAGEstimator, SubspaceAffinityEstimator,
                                   SurrogateAffinityEstimator, TrainedSubsetScores)
    from graphmtl.utils.io import atomic_write_json, read_json

    path = work / "fidelity.json"
    done = read_json(path) if path.is_file() else {}
    todo = [n for n in (RERUN, *FIDELITY) if (n in names or n == RERUN) and n not in done]
    if done and not todo:
        return done
    tdir = work / _slug("trained affinity")
    M = np.load(tdir / "subsets.npy")
    truth = np.load(tdir / "scores.npy")                       # validation AP [m, n]
    # The same subsets trained again: how far training noise lets any estimate agree (its
    # models are reused from their results file once trained).
    rerun = TrainedSubsetScores(cfg.model, cfg.train.replace(seed=seed + RERUN_SEED),
                                workers=cfg.compare.workers, progress=False).fit(
        graph, M, results=work / "trained_rerun.jsonl").result_.ap
    scores = {"trained affinity": truth}
    for name in todo:            # a method added later is compared too; the others are kept
        if name == RERUN:
            scores[name] = rerun
            continue
        spec = METHODS[name].affinity
        if spec["method"] == "surrogate":
            est = SurrogateAffinityEstimator(seed=seed).fit(graph, subsets=M)
        elif spec["method"] == "subspace":
            est = SubspaceAffinityEstimator(seed=seed).fit(graph, subsets=M)
        else:
            est = GradTAGEstimator(mode=spec["mode"], standardize=True, seed=seed).fit(
                stores[_slug(name)], subsets=M, checkpoint=work / "base" / "model.pt",
                graph=graph)
        scores[name] = est.scores_
    out: dict[str, Any] = {**done, "subsets": int(M.shape[0]),
                           "subset_size": int(M.sum(1).max())}
    Zt = _z(M, truth)
    # The mean of both trainings is a less noisy truth: an estimate, which has no training noise,
    # can reach about sqrt(2 rho / (1 + rho)) against it, rho the two trainings' agreement.
    Zboth = (Zt + _z(M, rerun)) / 2
    for name, F in scores.items():
        Z = _z(M, F)
        rec = {"spearman": _task_spearman(Z, Zt)}
        if name not in ("trained affinity", RERUN):
            rec["spearman_both"] = _task_spearman(Z, Zboth)
        if planted is not None:
            ok = np.isfinite(Z)
            same = planted[None, :] == planted[:, None]
            partners = (M.astype(int) @ same.astype(int)) - 1      # same-group co-members
            xs, ys = partners[ok], Z[ok]
            rec["partner_effect"] = float(np.polyfit(xs, ys, 1)[0])
        out[name] = rec
    atomic_write_json(path, out)
    return out


def _draws_json(random) -> dict[str, list[dict[str, Any]]]:
    """``SeedComparison.random`` (or ``random_rerun``) as JSON: per size profile, every draw's
    groups and test and validation scores."""
    return {json.dumps(list(p)): [{"groups": d.groups.tolist(),
                                   "scores": {m: v.tolist() for m, v in d.scores.items()},
                                   "val_scores": {m: v.tolist() for m, v in d.val_scores.items()}}
                                  for d in draws] for p, draws in random.items()}


# ---------------------------------------------------------------------- summary
def comparisons(runs: list[dict[str, Any]], draws: int) -> list:
    """The cached seeds as :class:`graphmtl.evaluation.SeedComparison` (``draws`` per profile)."""
    from graphmtl.evaluation import GroupingRun, SeedComparison

    def arrays(scores: dict[str, list]) -> dict[str, np.ndarray]:
        return {k: np.array(v, dtype=float) for k, v in scores.items()}

    def draw_runs(random: dict[str, list]) -> dict[tuple[int, ...], list]:
        return {tuple(json.loads(p)): [GroupingRun("random", np.array(d["groups"]),
                                                   arrays(d["scores"]), 0.0,
                                                   arrays(d.get("val_scores", {})))
                                       for d in ds][:draws] for p, ds in random.items()}

    comps = []
    for r in runs:
        methods = {n: GroupingRun(n, np.array(m["groups"]), arrays(m["scores"]),
                                  m["train_seconds"]) for n, m in r["methods"].items()}
        comps.append(SeedComparison(
            seed=r["seed"], task_names=r["task_names"], methods=methods,
            random=draw_runs(r["random"]),
            all_tasks=GroupingRun("all tasks", np.zeros(len(r["task_names"]), dtype=int),
                                  arrays(r["all_tasks"]), 0.0),
            planted=None if r["planted"] is None else np.array(r["planted"]),
            costs=r["costs"], random_rerun=draw_runs(r.get("random_rerun") or {})))
    return comps


def partner_signals(comps: list) -> dict[str, list]:
    """Per method, per seed: :meth:`SeedComparison.partner_signal` on the random draws of its
    group sizes, trained twice (empty unless every seed has ``--rerun-draws`` trainings)."""
    if not all(c.random_rerun for c in comps):
        return {}
    return {name: [c.partner_signal(name) for c in comps] for name in comps[0].methods}


def partner_tests(dataset: str, runs: list[dict[str, Any]], args) -> dict[str, list]:
    """Per method with an affinity, per seed: :func:`graphmtl.evaluation.partner_test` of its
    affinity on the random draws of its group sizes (test AP)."""
    from graphmtl.evaluation import partner_test, size_profile

    out: dict[str, list] = {}
    for name in runs[0]["methods"]:
        tests = []
        for r in runs:
            path = args.work / dataset / f"seed{r['seed']}" / _slug(name) / "affinity.npy"
            if name not in r["methods"] or not path.is_file():
                break
            profile = size_profile(np.array(r["methods"][name]["groups"]))
            draws = r["random"][json.dumps(list(profile))][:args.draws]
            tests.append(partner_test(np.load(path), [d["groups"] for d in draws],
                                      [d["scores"]["ap"] for d in draws], seed=r["seed"]))
        else:
            out[name] = tests
    return out


def report(dataset: str, runs: list[dict[str, Any]], args) -> None:
    from graphmtl.evaluation import summarize

    comps = comparisons(runs, args.draws)
    res = summarize(comps)
    partners = partner_tests(dataset, runs, args)
    signals = partner_signals(comps)
    ds = DATASETS[dataset]
    cmd = command(NAME)
    fid_names = [n for n in ("trained affinity", RERUN, *FIDELITY)
                 if all(n in r.get("fidelity", {}) for r in runs)]
    tuned = args.group_init == "all_tasks"
    start = (", fine-tuned from the seed's all-task model (its weights the first checkpoint "
             "candidate)" if tuned else "")
    lines = [f"# Grouping benchmark: {dataset}"
             + (", group models fine-tuned from the all-task model" if tuned else ""), "",
             f"Command: `{cmd}`  ",
             f"Data: `{ds.spec}` ({ds.note}); seeds {res.seeds}; k = "
             f"{runs[0]['k']}; {res.draws} random draws per seed and group-size profile.  ",
             f"Model of every group model and control: SIGN (hidden 64){start}, checkpoint "
             f"selected on validation AP, {args.workers} worker "
             + ("processes" if args.workers > 1 else "process") + " in this call. Machine: "
             + ", ".join(f"load {r['machine']['loadavg'][0]}" + "".join(
                 f" (then {m['loadavg'][0]} adding methods)" for m in r.get("machine_added", []))
                 for r in runs) + ".", "",
             "Scores are test macro averages (%); differences are paired per task, mean over "
             "seeds with the 95 % interval (Student t over seeds); **bold** when the interval "
             "is above 0. Cost: obtaining the groups (base model, projection, estimate, "
             "clustering), mean wall / CPU seconds per seed.", "", res.table()]
    if fid_names:
        both = all("spearman_both" in r["fidelity"][n] for r in runs for n in fid_names
                   if n not in ("trained affinity", RERUN))
        header = ["estimate", "per-task Spearman with trained scores"] + (
            ["with the mean of both trainings"] if both else []) + (
            ["partner effect (SD per same-group partner)"] if runs[0]["planted"] else [])

        def values(v) -> str:
            return " / ".join("–" if x is None else f"{x:.2f}" for x in v)

        rows = []
        for n in fid_names:
            rho = [r["fidelity"][n]["spearman"] for r in runs]
            row = [n, values(rho)]
            if both and n == RERUN:    # what an estimate free of training noise can reach
                row.append("ceiling ≈ " + values([None if x is None else float(
                    np.sqrt(max(0.0, 2 * x / (1 + x)))) for x in rho]))
            elif both:
                row.append("" if n == "trained affinity" else
                           values([r["fidelity"][n]["spearman_both"] for r in runs]))
            if runs[0]["planted"]:
                row.append(" / ".join(f"{r['fidelity'][n]['partner_effect']:+.2f}"
                                      for r in runs))
            rows.append(row)
        f0 = runs[0]["fidelity"]
        lines += ["", f"Fidelity on the trained affinity's {f0['subsets']} subsets of "
                      f"{f0['subset_size']} (per seed): each estimate's per-task Spearman with the "
                      "trained scores, and with the mean of the two trainings' z-scores (a less "
                      "noisy truth; an estimate can reach about sqrt(2 rho / (1 + rho)) there, "
                      "rho the two trainings' agreement).", "", md_table(header, rows)]
    if partners:
        def rho(t) -> str:     # NaN: the affinity is constant over the partners (no ranking)
            return "– (constant)" if np.isnan(t.rho) else f"{t.rho:+.2f} (p {t.p_value:.2f})"

        def mean(values) -> str:
            v = np.asarray(values, dtype=float)
            return "–" if np.isnan(v).all() else f"{np.nanmean(v):+.2f}"

        rows = [[n, " / ".join(rho(t) for t in tests), mean([t.rho for t in tests]),
                 mean([t.null_sd for t in tests]).lstrip("+")]
                for n, tests in partners.items()]
        spread = np.mean([t.spread for t in next(iter(partners.values()))])
        lines += ["", "Partner test on the random groups (`graphmtl.evaluation.partner_test`): "
                      "over every (task, random draw) pair, the Spearman correlation of the mean "
                      "affinity of the task's random partners with its test AP, both centred "
                      "per task; p from 200 relabellings of the affinity's tasks (one-sided). "
                      "Does the affinity know which partners help, on the real data? A task's "
                      f"test AP moves by {100 * spread:.1f} points (SD) between draws.", "",
                  md_table(["affinity", "rho per seed (p)", "mean rho", "null SD"], rows)]
    halves = {n: [r["info"][n]["split_half"] for r in runs] for n in runs[0]["info"]
              if all("split_half" in (r["info"].get(n) or {}) for r in runs)}
    if halves:
        def rho(v) -> str:
            return "–" if v is None else f"{v:+.3f}"

        rows = [[n, " / ".join(f"{h['half']:+.3f}" for h in hs),
                 " / ".join(f"{h['full']:+.3f}" for h in hs),
                 " / ".join(f"{h['pairs']:.0f}" for h in hs),
                 " / ".join(f"{h['subsets_for_half']:.0f}x" for h in hs),
                 " / ".join(rho(r["info"][n].get("subspace_spearman")) for r in runs)]
                for n, hs in halves.items()]
        lines += ["", "Split-half reliability (`graphmtl.affinity.split_half_reliability`, 5 "
                      "random halvings of the subsets): correlation of the affinities of two "
                      "halves over the pairs both observe, projected to the whole set "
                      "(Spearman-Brown), and how many times the subsets a reliability of 0.5 "
                      "would need; last column: mean per-task Spearman correlation of the "
                      "shared subspace's scores on the same subsets with the trained ones.", "",
                  md_table(["affinity", "halves r per seed", "whole set", "pairs",
                            "subsets for 0.5", "shared subspace Spearman"], rows)]
    if signals:
        from graphmtl.evaluation import paired_difference, size_profile

        def iv(values) -> str:   # a gain over seeds (points) with the t interval over seeds
            x = 100 * np.asarray(values, dtype=float)[:, None]
            d = paired_difference(x, np.zeros_like(x), res.level)
            return (f"{d.mean:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}]" if d.defined
                    else f"{d.mean:+.2f}")

        rows, seen = [], {}
        for name, sig in signals.items():     # methods with equal group sizes share draws
            profile = tuple(size_profile(np.array(r["methods"][name]["groups"])) for r in runs)
            if profile in seen:
                seen[profile][0] += f", {name}"
                continue
            row = [name, " / ".join(f"{s.reproducibility:+.2f}" for s in sig),
                   f"{np.mean([s.reproducibility for s in sig]):+.2f}",
                   f"{np.mean([s.null_sd for s in sig]):.2f}",
                   f"{np.mean([s.partner_test_ceiling for s in sig]):.2f}",
                   f"{np.mean([s.validation_agreement for s in sig]):+.2f}",
                   iv([s.selection_gain for s in sig]),
                   iv([s.selection_gain_same_run for s in sig])]
            seen[profile] = row
            rows.append(row)
        lines += ["", "Partner signal (`graphmtl.evaluation.partner_signal`, `--rerun-draws`): "
                      f"every random draw trained a second time (training seed + "
                      f"{RERUN_SEED_SHIFT}). *Reproducibility*: Spearman correlation of a "
                      "task's test AP across the draws (centred per task) between the two "
                      "trainings: how much of it the partners decide rather than the training's "
                      "randomness; its square root is about the highest partner-test rho an "
                      "affinity can reach. *Validation agreement*: the same correlation "
                      "between one training's validation AP and the other's test AP, the "
                      "signal a validation-scored affinity is built from. *Selection gain*: "
                      "test AP (points) of each task's "
                      "draw picked on validation minus its mean over the draws, picked in one "
                      "training and scored in the other (across) or in the same one (within: "
                      "includes the training's luck); mean with the 95 % interval over seeds.",
                  "", md_table(["draws of the group sizes of", "reproducibility per seed",
                                "mean", "null SD", "partner-test ceiling",
                                "validation agreement",
                                "selection gain, across trainings",
                                "selection gain, within one training"], rows)]
    data = {"command": cmd, "dataset": dataset, "spec": ds.spec, "k": runs[0]["k"],
            "group_init": args.group_init,
            **res.to_dict(), "fidelity": [r.get("fidelity") for r in runs],
            "partner_test": {n: [t.to_dict() for t in tests] for n, tests in partners.items()},
            "partner_signal": {n: [s.to_dict() for s in sig] for n, sig in signals.items()},
            "split_half": halves,
            "costs": [r["costs"] for r in runs], "machines": [r["machine"] for r in runs]}
    write_results(args.out or f"{NAME}_{dataset}" + ("_from_all_tasks" if tuned else ""), data,
                  "\n".join(lines))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--draws", type=int, default=5, help="random groupings per seed and profile")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                   metavar="METHOD")
    p.add_argument("--fidelity", action="store_true",
                   help="compare each estimate with the trained scores on the same subsets")
    p.add_argument("--group-init", choices=GROUP_INITS, default="scratch",
                   help="how group models and random controls start: scratch (default here: "
                        "the papers' protocol, results bench_grouping_<dataset>) or all_tasks "
                        "(graphmtl's default: fine-tuned from the seed's all-task model, "
                        "results bench_grouping_<dataset>_from_all_tasks)")
    p.add_argument("--rerun-draws", action="store_true",
                   help="train every random draw a second time (training seed + "
                        f"{RERUN_SEED_SHIFT}) and report the partner signal")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=None, metavar="NAME",
                   help="result name (default bench_grouping_<dataset>, with --group-init "
                        "all_tasks bench_grouping_<dataset>_from_all_tasks)")
    p.add_argument("--work", type=Path, default=WORK / NAME)
    args = p.parse_args(argv)
    fine_tuned = [n for n in args.methods if METHODS[n].fine_tuned]
    if fine_tuned and args.group_init != "all_tasks":     # before any model is trained
        p.error(f"method {fine_tuned[0]!r} fine-tunes from the all-task model: it needs "
                "--group-init all_tasks")
    runs = []
    for seed in args.seeds:
        work = args.work / args.dataset / f"seed{seed}"
        work.mkdir(parents=True, exist_ok=True)
        run_record = run_seed(args.dataset, seed, args, work)
        # a seed's cache may hold methods another call added: report the ones asked for
        runs.append({**run_record, **{key: {n: v for n, v in run_record[key].items()
                                            if n in args.methods}
                                      for key in ("methods", "costs", "info")}})
    report(args.dataset, runs, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, NAME))
