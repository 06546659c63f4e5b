"""Multitask node classifiers (shared PyG encoder + one logit per task)."""

from graphmtl.models.config import ENCODERS, ModelConfig
from graphmtl.models.multitask import MultiTaskGNN
from graphmtl.models.sign import sign_features

__all__ = ["ENCODERS", "ModelConfig", "MultiTaskGNN", "sign_features"]
