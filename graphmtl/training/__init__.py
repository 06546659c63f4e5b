"""Training stage: one trainer for every model graphmtl trains (base, subsets, warm starts, groups).

>>> from graphmtl.training import Trainer, TrainConfig, evaluate
>>> result = Trainer(ModelConfig(encoder="sage"), TrainConfig(epochs=50)).fit(graph, tasks="all")
>>> evaluate(result.model, graph, result.task_names, split="test").macro_f1
"""

from graphmtl.models import node_inputs  # re-exported: the inputs training batches are cut from
from graphmtl.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from graphmtl.training.config import METRICS, TrainConfig
from graphmtl.training.inference import (NodeOutputs, embed, full_graph_bytes,
                                         layerwise_embeddings, node_outputs, streaming_metrics)
from graphmtl.training.loader import graph_digest, inference_loader, make_loader
from graphmtl.training.loss import masked_bce, per_task_bce
from graphmtl.training.metrics import (TaskMetrics, average_precision_scores, compute_metrics,
                                       f1_scores, roc_auc_scores)
from graphmtl.training.trainer import (TrainResult, Trainer, evaluate, predict_logits,
                                       warm_start)

__all__ = [
    "Checkpoint", "METRICS", "NodeOutputs", "TaskMetrics", "TrainConfig", "TrainResult", "Trainer",
    "average_precision_scores", "compute_metrics", "embed", "evaluate", "f1_scores",
    "full_graph_bytes", "graph_digest", "inference_loader", "layerwise_embeddings",
    "load_checkpoint", "make_loader", "masked_bce", "node_inputs", "node_outputs",
    "per_task_bce", "predict_logits", "roc_auc_scores", "save_checkpoint",
    "streaming_metrics", "warm_start",
]
