"""Worker of ``tests/test_distributed.py``: the same small run in one process (``python``) or
in two ranks (``torchrun --nproc-per-node 2``, gloo). Writes ``OUT/result.pt`` from rank 0.

Usage: ``python tests/dist_worker.py OUT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from graphmtl.affinity.sharded import ShardedSubsetSolver
from graphmtl.affinity.rows import SplitRows
from graphmtl.affinity.solver import SolverConfig
from graphmtl.affinity.subsets import sample_subsets
from graphmtl.models import ModelConfig, MultiTaskGNN
from graphmtl.projection import GradientProjector, ProjectionConfig
from graphmtl.training import TrainConfig, Trainer
from graphmtl.utils.distributed import init_from_env, rank_world

sys.path.insert(0, str(Path(__file__).parent))
from test_training import planted_graph  # noqa: E402


def main(out: Path) -> None:
    init_from_env("cpu")
    rank, world = rank_world()
    torch.set_num_threads(1)
    graph = planted_graph(N=240)
    # 1. Data-parallel training; full neighbourhoods and no dropout draw no random numbers,
    #    so the ranks' gradients add up to the one-process gradient exactly (up to rounding).
    mc = ModelConfig(encoder="sage", hidden=8, dropout=0.0)
    tc = TrainConfig(epochs=3, batch_size=48, fanouts=(-1, -1), patience=0, num_threads=1,
                     eval_batch_size=128)
    trained = Trainer(mc, tc).fit(graph, out_dir=out / "train", progress=False)
    # 2. Projection sharded by node batches (sampled neighbourhoods, seeded per batch).
    torch.manual_seed(0)
    model = MultiTaskGNN(graph.num_features, graph.num_tasks, mc)
    store = GradientProjector(ProjectionConfig(dim=6, batch_size=16, fanouts=(3, 2),
                                               train_budget=40, val_budget=30)).project(
        model, graph, out / "store", progress=False)
    # 3. Subset solves sharded by blocks of subsets.
    rows = SplitRows.from_store(store, "train")
    fit = ShardedSubsetSolver(SolverConfig()).fit(rows, sample_subsets(6, 11, 3, seed=0))
    if rank == 0:
        torch.save({"world": world, "history": trained.history,
                    "state": trained.model.state_dict(),
                    "val_loss": torch.from_numpy(trained.val_metrics.loss),
                    "store": {f"{s}.{a}": torch.from_numpy(store.array(s, a).copy())
                              for s in ("train", "val") for a in ("z", "f0", "node")},
                    "shards": store.num_shards, "weights": fit.weights,
                    "converged": fit.converged}, out / "result.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
