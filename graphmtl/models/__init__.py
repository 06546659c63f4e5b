"""Multitask node classifiers (shared PyG encoder + one logit per task).

:mod:`~graphmtl.models.registry` declares every encoder (:class:`EncoderSpec`);
:func:`node_inputs` gives a model's per-node inputs (``graph.x`` or precomputed features).
"""

from graphmtl.models.config import ModelConfig
from graphmtl.models.inputs import node_inputs
from graphmtl.models.multitask import MultiTaskGNN
from graphmtl.models.registry import ENCODER_SPECS, ENCODERS, EncoderSpec, encoder_spec
from graphmtl.models.sign import sign_features

__all__ = ["ENCODERS", "ENCODER_SPECS", "EncoderSpec", "ModelConfig", "MultiTaskGNN",
           "encoder_spec", "node_inputs", "sign_features"]
