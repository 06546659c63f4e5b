"""graphmtl: multitask learning on graphs with hundreds of binary labelling tasks.

The pipeline, one subpackage per stage::

    data → models → training → projection → affinity → clustering → pipeline
"""

__version__ = "0.1.0"
