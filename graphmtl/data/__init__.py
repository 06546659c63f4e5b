"""Data layer: the multitask graph container, loaders for public formats, features, generator."""

from graphmtl.data.graph import SPLITS, MultiTaskGraph
from graphmtl.data.splits import SplitConfig, stratified_task_splits

__all__ = ["MultiTaskGraph", "SPLITS", "SplitConfig", "stratified_task_splits"]
