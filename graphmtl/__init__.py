"""graphmtl: multitask learning on graphs with hundreds of binary labelling tasks.

The pipeline, one subpackage per stage::

    data → models → training → projection → affinity → clustering → pipeline

The one-call entry point, :func:`graphmtl.find_groups` (a PyG ``Data`` in, task groups and their
models out), is imported on first use, so ``import graphmtl`` stays cheap.
"""

__version__ = "0.1.0"

_LAZY = {"find_groups": "graphmtl.pipeline.discover",
         "GroupDiscovery": "graphmtl.pipeline.discover"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphmtl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
