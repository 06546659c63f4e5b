"""Training stage: one trainer for every model graphmtl trains (base, subsets, warm starts, groups).

>>> from graphmtl.training import Trainer, TrainConfig, evaluate
>>> result = Trainer(ModelConfig(encoder="sage"), TrainConfig(epochs=50)).fit(graph, tasks="all")
>>> evaluate(result.model, graph, result.task_names, split="test").macro_f1
"""

from graphmtl.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from graphmtl.training.config import METRICS, TrainConfig
from graphmtl.training.loader import (graph_digest, inference_loader, make_loader,
                                      node_inputs)
from graphmtl.training.loss import masked_bce, per_task_bce
from graphmtl.training.metrics import (TaskMetrics, average_precision_scores, compute_metrics,
                                       f1_scores, roc_auc_scores)
from graphmtl.training.trainer import (TrainResult, Trainer, evaluate, predict_logits,
                                       warm_start)

__all__ = [
    "Checkpoint", "METRICS", "TaskMetrics", "TrainConfig", "TrainResult", "Trainer",
    "average_precision_scores", "compute_metrics", "evaluate", "f1_scores", "graph_digest",
    "inference_loader", "load_checkpoint", "make_loader", "masked_bce", "node_inputs",
    "per_task_bce", "predict_logits", "roc_auc_scores", "save_checkpoint", "warm_start",
]
