"""Moved: planted-group affinities are a test fixture, now
:func:`graphmtl.testing.affinities.planted_affinity`.

A temporary alias for ``experiments/gpu_check.py``, which still imports this path (its
CPU-path test runs it); delete this file once that script imports ``graphmtl.testing``.
Nothing in the library imports it.
"""

from graphmtl.testing.affinities import planted_affinity

__all__ = ["planted_affinity"]
