"""Multitask node classifiers (shared PyG encoder + one logit per task)."""

from graphmtl.models.config import ENCODERS, ModelConfig
from graphmtl.models.multitask import MultiTaskGNN

__all__ = ["ENCODERS", "ModelConfig", "MultiTaskGNN"]
