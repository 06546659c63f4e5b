"""torch.distributed: two gloo ranks started by torchrun give the one-process results (DDP
training to float rounding, the sharded projection store bit for bit, sharded subset solves to
the solver's tolerance); the seed order, shard reading and merging on their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graphmtl.errors import GraphMTLError
from graphmtl.training.loader import make_loader
from graphmtl.training.trainer import _RankBatches
from graphmtl.utils import distributed as dist

from test_training import planted_graph

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("dist_worker.py")


def _gloo_available() -> bool:
    import torch.distributed as td

    return td.is_available() and td.is_gloo_available()


def _run(cmd: list[str], out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd + [str(WORKER), str(out)], env=env, capture_output=True,
                          text=True, timeout=180, cwd=out.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return torch.load(out / "result.pt", weights_only=True)


@pytest.mark.skipif(not _gloo_available(), reason="torch.distributed with gloo is not available")
def test_torchrun_two_ranks_equal_one_process(tmp_path):
    one = _run([sys.executable], tmp_path / "one")
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "2"], tmp_path / "two")
    assert (one["world"], two["world"]) == (1, 2) and (one["shards"], two["shards"]) == (1, 2)
    # DDP: same epochs, losses and weights up to float rounding (the gradient sum is split).
    assert [h["epoch"] for h in two["history"]] == [1, 2, 3]
    for a, b in zip(one["history"], two["history"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["val_ap"] == pytest.approx(a["val_ap"], abs=1e-5)
    for k, v in one["state"].items():
        torch.testing.assert_close(two["state"][k], v, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(two["val_loss"], one["val_loss"], atol=1e-5, rtol=1e-4)
    # Projection: every batch is a function of its index, so the shards assemble to the
    # one-process store bit for bit.
    for k, v in one["store"].items():
        assert torch.equal(two["store"][k], v), k
    # Subset solves: each block alone, gathered; equal to the solver's tolerance.
    torch.testing.assert_close(two["weights"], one["weights"], atol=1e-9, rtol=1e-7)
    assert bool(two["converged"].all())


def test_rank_batches_follow_the_one_process_order():
    graph = planted_graph(N=200)
    seeds = graph.train_mask.any(1).nonzero().flatten()
    pairs = graph.train_mask[seeds].float()
    for fanouts in ([3, 2], None):
        shuffled = make_loader(graph, seeds, fanouts, 16, shuffle=True)
        plain = make_loader(graph, seeds, fanouts, 16, shuffle=False)
        torch.manual_seed(5)
        want = [b.n_id[:b.batch_size] for b in shuffled]
        torch.manual_seed(5)
        got = list(_RankBatches(plain, len(seeds), 16, pairs, 0, 1).epoch())
        assert all(torch.equal(ids, w) for (_, ids, _), w in zip(got, want))
        assert [s for *_, s in got] == [1.0] * len(want)
        # Two ranks: the halves of each global batch, scaled by their share of its pairs.
        halves = []
        for r in (0, 1):   # every rank draws the same order from the same epoch seed
            torch.manual_seed(5)
            halves.append(list(_RankBatches(plain, len(seeds), 16, pairs, r, 2).epoch()))
        for (_, a, sa), (_, b, sb), w in zip(*halves, want):
            assert torch.equal(torch.cat([a, b]), w)
            share = pairs.sum(1)[torch.searchsorted(seeds, a)].sum() / pairs.sum(1)[
                torch.searchsorted(seeds, w)].sum()
            assert sa == pytest.approx(2 * float(share)) and sa + sb == pytest.approx(2.0)


def test_single_process_helpers():
    assert not dist.is_distributed() and dist.rank_world() == (0, 1)
    assert dist.broadcast_object({"a": 1}) == {"a": 1} and dist.all_gather_objects(3) == [3]
    assert [dist.shard_range(10, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 10)]
    t = torch.ones(2)
    assert torch.equal(dist.all_reduce_sum(t), torch.ones(2))
    assert dist.init_from_env("cpu") is False           # not started by torchrun
    assert dist.rank_device(torch.device("cpu")).type == "cpu"


def test_merge_fits_of_subset_blocks_equals_one_fit():
    from graphmtl.affinity.sharded import ShardedSubsetSolver, merge_fits
    from graphmtl.affinity.rows import SplitRows
    from graphmtl.affinity.solver import BatchedSubsetSolver, SolverConfig
    from graphmtl.affinity.subsets import sample_subsets

    g = torch.Generator().manual_seed(0)
    n, d, r = 5, 4, 30
    z = torch.randn(n * r, d, generator=g)
    f0 = torch.randn(n * r, generator=g, dtype=torch.float64) * 0.5
    y = (torch.rand(n * r, generator=g) < 0.4).double()
    rows = SplitRows(z, f0, y, torch.ones(n * r, dtype=torch.float64),
                     np.arange(0, n * r + 1, r), [f"t{i}" for i in range(n)])
    M = sample_subsets(n, 9, 2, seed=1)
    solver = BatchedSubsetSolver(SolverConfig())
    whole = solver.fit(rows, M)
    merged = merge_fits([solver.fit(rows, M[:4]), None, solver.fit(rows, M[4:])])
    torch.testing.assert_close(merged.weights, whole.weights, atol=1e-10, rtol=1e-8)
    assert merged.lam == whole.lam and merged.converged.shape == (9,)
    assert merged.grad_evals >= whole.grad_evals
    one = ShardedSubsetSolver(SolverConfig()).fit(rows, M)      # one process: the plain solver
    assert torch.equal(one.weights, whole.weights)


def test_sharded_store_missing_shard_is_one_line_error(tmp_path):
    """A store whose manifest names two shards reads them as one, and names a missing file."""
    from graphmtl.models import ModelConfig, MultiTaskGNN
    from graphmtl.projection import GradientProjector, ProjectionConfig, ProjectionStore
    from graphmtl.projection.store import shard_dir
    from graphmtl.utils.io import atomic_write_json, read_json

    graph = planted_graph(N=80)
    torch.manual_seed(0)
    model = MultiTaskGNN(graph.num_features, graph.num_tasks, ModelConfig(encoder="sage", hidden=4))
    store = GradientProjector(ProjectionConfig(dim=3, batch_size=16, fanouts=(2, 2))).project(
        model, graph, tmp_path / "s", progress=False)
    want = {(s, a): np.array(store.array(s, a)) for s in ("train", "val") for a in ("z", "f0")}
    # Split the single-file store into two shards by hand.
    for split in ("train", "val"):
        rows = np.arange(int(store.manifest["rows"][split]))
        for r, part in enumerate(np.array_split(rows[::-1], 2)):
            d = shard_dir(tmp_path / "s", r, 2)
            d.mkdir(parents=True, exist_ok=True)
            np.save(d / f"{split}.row.npy", part)
            for a in ("z", "f0"):
                np.save(d / f"{split}.{a}.npy", want[(split, a)][part])
        for a in ("z", "f0"):
            (tmp_path / "s" / f"{split}.{a}.npy").unlink()
    # ... and record the new layout with its digests, as a sharded run's rank 0 does.
    from graphmtl.projection.store import _store_files
    from graphmtl.utils.integrity import file_record, seal

    m = read_json(tmp_path / "s" / "manifest.json")
    m = {**m, "shards": 2, "files": {f: file_record(tmp_path / "s" / f) for f in _store_files(2)}}
    m.pop("sha256", None)
    atomic_write_json(tmp_path / "s" / "manifest.json", seal(m))
    sharded = ProjectionStore(tmp_path / "s")
    assert sharded.num_shards == 2
    for (s, a), v in want.items():
        assert np.array_equal(sharded.array(s, a), v)
    assert np.array_equal(sharded.rows("train", 1).z, store.rows("train", 1).z)
    (shard_dir(tmp_path / "s", 1, 2) / "val.z.npy").unlink()
    with pytest.raises(GraphMTLError, match="val.z.npy: missing"):
        ProjectionStore(tmp_path / "s").array("val", "z")
    shutil.rmtree(tmp_path / "s")
