"""Data layer: the multitask graph container, loaders for public formats, features, generator.

Entry point: :func:`load_dataset` (``"snap:youtube,k=100"``, ``"blogcatalog"``, ``"deezer"``,
``"ogb:ogbn-proteins"``, ``"synthetic"``, a saved ``.npz``, or a saved PyG ``.pt``); see
:mod:`graphmtl.data.sources`. PyG ``Data`` and OGB dataset objects convert with
:func:`from_pyg` / :func:`from_ogb` (:mod:`graphmtl.data.pyg`).
"""

from graphmtl.data.build import DataWarning
from graphmtl.data.features import FeatureConfig, structural_features
from graphmtl.data.graph import SPLITS, MultiTaskGraph
from graphmtl.data.multilabel import load_blogcatalog, load_deezer
from graphmtl.data.ogb_proteins import load_ogbn_proteins
from graphmtl.data.pyg import from_ogb, from_pyg, load_pyg, to_pyg
from graphmtl.data.snap import SnapRecipe, load_snap
from graphmtl.data.sources import DatasetSpec, load_dataset
from graphmtl.data.splits import SplitConfig, stratified_task_splits
from graphmtl.data.synthetic import SyntheticConfig, make_planted_graph, planted_groups

__all__ = ["MultiTaskGraph", "SPLITS", "SplitConfig", "stratified_task_splits", "DataWarning",
           "FeatureConfig", "structural_features", "SnapRecipe", "load_snap",
           "load_blogcatalog", "load_deezer", "load_ogbn_proteins", "DatasetSpec",
           "load_dataset", "SyntheticConfig", "make_planted_graph", "planted_groups",
           "from_pyg", "from_ogb", "to_pyg", "load_pyg"]
