"""Cheap task-affinity signals that need no subset sampling: the controls every estimator must beat.

- :func:`head_cosine_affinity`: cosine of the output-layer weight vectors of one model trained on
  all tasks (tasks whose logits read the shared representation the same way);
- :func:`label_cooccurrence_affinity`: Jaccard overlap of the tasks' training positives (tasks
  that label the same nodes).

Both return a symmetric ``[n, n]`` float64 matrix with a zero diagonal, like every affinity that
:class:`~graphmtl.clustering.TaskClustering` consumes. (The gradient cosine at the base model is
:func:`~graphmtl.affinity.baselines.gradient_cosine`.)
"""

from __future__ import annotations

import numpy as np

from graphmtl.affinity.matrices import gradient_cosine_affinity
from graphmtl.errors import check


def head_cosine_affinity(model) -> np.ndarray:
    """Cosine ``[n, n]`` of the per-task rows of ``model.head.weight`` ``[n, hidden]``."""
    W = model.head.weight.detach().double().cpu().numpy()
    return gradient_cosine_affinity(W)


def label_cooccurrence_affinity(graph) -> np.ndarray:
    """Jaccard index ``[n, n]`` of the tasks' training positives (diagonal 0).

    ``|P_i ∩ P_j| / |P_i ∪ P_j|`` with ``P_t`` the training nodes labelled positive for task
    ``t``; 0 for two tasks without training positives.
    """
    import scipy.sparse as sp

    check(graph.num_tasks >= 1, "label co-occurrence: the graph has no tasks")
    node, task = (graph.y & graph.train_mask).nonzero(as_tuple=True)
    P = sp.csc_matrix((np.ones(len(node)), (node.numpy(), task.numpy())),
                      shape=(graph.num_nodes, graph.num_tasks))        # sparse [N, n]
    inter = (P.T @ P).toarray()
    count = np.diag(inter).copy()
    union = count[:, None] + count[None, :] - inter
    A = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    np.fill_diagonal(A, 0.0)
    return A
