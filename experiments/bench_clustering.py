"""Benchmark task clustering: low-rank SDP vs cvxpy + SCS vs spectral vs random, planted groups.

For each n, planted-group affinities (``planted_affinity``) at relative noise levels ``nu``:
``noise = nu * (n / k) / (2 sqrt(n))`` puts a group's signal eigenvalue at ``1 / nu`` times the
noise spectral edge (nu = 0.6 "moderate", 1.0 "hard"). Reports wall time, peak traced memory
(tracemalloc: numpy buffers; SCS's C allocations are not traced, see ``maxrss_mb``), SDP
objective vs the exact SDP where SCS runs, certified bound, rounded objective, and ARI vs the
planted groups. Real affinities: pass ``--affinity T.npy --k K`` (hook for the estimator output).

    nice -n 5 .venv/bin/python experiments/bench_clustering.py --sizes 100 200 500 1000 2000 \
        --exact-max-n 500
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from graphmtl.clustering import (TaskClustering, partition_objective, planted_affinity,
                                 random_partition, spectral_partition)
from graphmtl.utils.io import atomic_path, atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"


def measured(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    sec = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, sec, peak


def bench_one(A, k, labels, exact: bool, seed: int) -> list[dict]:
    rows = []
    ref = None
    methods = (["exact"] if exact else []) + ["lowrank"]
    for solver in methods:
        m, sec, peak = measured(lambda: TaskClustering(k, solver=solver, random_state=seed).fit(A))
        row = {"method": f"sdp_{solver}", "seconds": sec, "peak_mb": peak,
               "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "sdp_objective": m.sdp_objective_, "rounded_objective": m.rounded_objective_,
               "upper_bound": m.upper_bound_, "gap": m.gap_, "residuals": m.residuals_,
               "n_groups": int(len(np.unique(m.labels_))),
               "solve_seconds": m.timings_["solve"]}
        if labels is not None:
            row["ari"] = adjusted_rand_score(labels, m.labels_)
        if solver == "exact":
            ref = m.sdp_objective_
        rows.append(row)
    Ap = m.affinity_  # the preprocessed affinity every objective is measured on
    spec, sec, peak = measured(lambda: spectral_partition(Ap, k, seed=seed))
    rnd = random_partition(np.bincount(m.labels_), seed=seed)
    for name, lab, s, p in (("spectral", spec, sec, peak), ("random_same_sizes", rnd, 0.0, 0.0)):
        row = {"method": name, "seconds": s, "peak_mb": p,
               "rounded_objective": partition_objective(Ap, lab),
               "n_groups": int(len(np.unique(lab)))}
        if labels is not None:
            row["ari"] = adjusted_rand_score(labels, lab)
        rows.append(row)
    if labels is not None:
        rows.append({"method": "planted", "rounded_objective": partition_objective(Ap, labels),
                     "n_groups": int(k), "ari": 1.0})
    for row in rows:
        if ref is not None and "sdp_objective" in row:
            row["sdp_vs_exact"] = row["sdp_objective"] / ref
        if ref is not None:
            row["rounded_vs_exact_sdp"] = row["rounded_objective"] / ref
    return rows


def write_md(path: Path, meta: dict, rows: list[dict]) -> None:
    lines = [f"# bench_clustering", "", f"Command: `{meta['command']}`", "",
             f"Machine: {meta['machine']}; load average before/after: {meta['load_before']} / "
             f"{meta['load_after']} (other helpers' jobs share the 2 cores; timings are inflated "
             "accordingly).", "",
             "| n | k | nu | method | time s | peak MB | SDP obj | vs exact | bound gap | "
             "rounded obj | rounded/exact SDP | ARI |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(x, fmt):
        return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, fmt)

    for r in rows:
        lines.append(
            f"| {r['n']} | {r['k']} | {r.get('nu', '')} | {r['method']} | "
            f"{f(r.get('seconds'), '.2f')} | {f(r.get('peak_mb'), '.0f')} | "
            f"{f(r.get('sdp_objective'), '.2f')} | {f(r.get('sdp_vs_exact'), '.4f')} | "
            f"{f(r.get('gap'), '.3f')} | {f(r.get('rounded_objective'), '.2f')} | "
            f"{f(r.get('rounded_vs_exact_sdp'), '.4f')} | {f(r.get('ari'), '.3f')} |")
    lines += ["", "bound gap = (certified upper bound - SDP objective) / bound: tight for SCS "
              "(its duals), loose for the low-rank solver (block-structured multipliers).", ""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 500, 1000, 2000])
    p.add_argument("--nus", type=float, nargs="+", default=[0.6, 1.0])
    p.add_argument("--exact-max-n", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--affinity", help="real affinity .npy (hook for the estimator's output)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--out", default=str(RESULTS / "bench_clustering"))
    args = p.parse_args(argv)
    meta = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "load_before": [round(x, 2) for x in os.getloadavg()]}
    rows: list[dict] = []

    def save():
        meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
        atomic_write_json(args.out + ".json", {"meta": meta, "rows": rows})
        write_md(Path(args.out + ".md"), meta, rows)

    if args.affinity:
        A = np.load(args.affinity)
        for r in bench_one(A, args.k, None, A.shape[0] <= args.exact_max_n, args.seed):
            rows.append({"n": A.shape[0], "k": args.k, "nu": None, **r})
        save()
        return 0
    for n in args.sizes:
        k = 10 if n <= 200 else 20
        for nu in args.nus:
            noise = nu * (n / k) / (2 * np.sqrt(n))
            A, labels = planted_affinity(n, k, noise, seed=args.seed, scale=0.37, shift=-1.2)
            for r in bench_one(A, k, labels, n <= args.exact_max_n, args.seed):
                rows.append({"n": n, "k": k, "nu": nu, "noise": noise, **r})
                print({kk: (round(v, 4) if isinstance(v, float) else v) for kk, v in rows[-1].items()
                       if kk != "residuals"}, flush=True)
            save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
