"""Projected gradients of every (node, task) at a trained model, and their on-disk store.

One concept per module: :mod:`~graphmtl.projection.config` (:class:`ProjectionConfig`),
:mod:`~graphmtl.projection.directions` (the random directions ``P``),
:mod:`~graphmtl.projection.batches` (:class:`NodeBatches`, the model inputs of seed batches),
:mod:`~graphmtl.projection.kernel` (:func:`project_batch`, the forward-mode kernel),
:mod:`~graphmtl.projection.rows` (:func:`select_rows`, the stored rows),
:mod:`~graphmtl.projection.digests` (what keys a store),
:mod:`~graphmtl.projection.projector` (:class:`GradientProjector`) and
:mod:`~graphmtl.projection.store` (:class:`ProjectionStore`, the on-disk format). Reference and
linearisation checks live in :mod:`graphmtl.testing.projection`.
"""

from graphmtl.projection.batches import NodeBatches
from graphmtl.projection.config import STRATEGIES, ProjectionConfig
from graphmtl.projection.digests import labelled_graph_digest, model_digest
from graphmtl.projection.directions import PARAM_SETS, Directions, select_parameters
from graphmtl.projection.kernel import project_batch
from graphmtl.projection.projector import GradientProjector
from graphmtl.projection.rows import RowSelection, select_rows
from graphmtl.projection.store import ProjectionStore, ShardWriter, StoreWriter, TaskRows

__all__ = ["PARAM_SETS", "STRATEGIES", "Directions", "GradientProjector", "NodeBatches",
           "ProjectionConfig", "ProjectionStore", "RowSelection", "ShardWriter", "StoreWriter",
           "TaskRows", "labelled_graph_digest", "model_digest", "project_batch",
           "select_parameters", "select_rows"]
