"""End-to-end pipeline: data → base model → projection → affinity → clustering → group models,
with the baselines and the report."""

from graphmtl.pipeline.config import AffinityConfig, CompareConfig, PipelineConfig
from graphmtl.pipeline.groups import GroupedModels, concat_metrics, train_group_models
from graphmtl.pipeline.report import MethodResult, Report
from graphmtl.pipeline.run import PipelineResult, run_pipeline
from graphmtl.pipeline.stages import RunDirectory

__all__ = ["AffinityConfig", "CompareConfig", "GroupedModels", "MethodResult",
           "PipelineConfig", "PipelineResult", "Report", "RunDirectory", "concat_metrics",
           "run_pipeline", "train_group_models"]
