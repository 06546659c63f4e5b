"""Projected gradients of every (node, task) at a trained model, and their on-disk store."""

from graphmtl.projection.store import ProjectionStore, StoreWriter, TaskRows

__all__ = ["ProjectionStore", "StoreWriter", "TaskRows"]
