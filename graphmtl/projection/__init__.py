"""Projected gradients of every (node, task) at a trained model, and their on-disk store."""

from graphmtl.projection.directions import PARAM_SETS, Directions, select_parameters
from graphmtl.projection.engine import (STRATEGIES, GradientProjector, NodeBatches,
                                        ProjectionConfig, RowSelection, labelled_graph_digest,
                                        linearization_error, linearization_error_between,
                                        model_digest, project_batch,
                                        reverse_mode_projection, select_rows)
from graphmtl.projection.store import ProjectionStore, ShardWriter, StoreWriter, TaskRows

__all__ = ["PARAM_SETS", "STRATEGIES", "Directions", "GradientProjector", "NodeBatches",
           "ProjectionConfig", "ProjectionStore", "RowSelection", "ShardWriter", "StoreWriter",
           "TaskRows",
           "labelled_graph_digest", "linearization_error",
           "linearization_error_between", "model_digest", "project_batch",
           "reverse_mode_projection", "select_parameters", "select_rows"]
