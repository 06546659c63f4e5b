"""Fixtures and reference computations for tests and benchmarks; the library never imports this.

- :mod:`graphmtl.testing.stores`: synthetic projection stores with planted task groups
  (:func:`write_synthetic_store`, :func:`block_groups`);
- :mod:`graphmtl.testing.affinities`: planted-group affinity matrices
  (:func:`planted_affinity`);
- :mod:`graphmtl.testing.projection`: the reverse-mode reference projection and the
  linearisation checks (:func:`reverse_mode_projection`, :func:`linearization_error`,
  :func:`linearization_error_between`).

Planted groups of a *generated graph* are :func:`graphmtl.data.synthetic.planted_groups`
(read from its provenance); :func:`block_groups` are those of a synthetic store.
"""

from graphmtl.testing.affinities import planted_affinity
from graphmtl.testing.projection import (linearization_error, linearization_error_between,
                                         reverse_mode_projection)
from graphmtl.testing.stores import block_groups, write_synthetic_store

__all__ = ["block_groups", "linearization_error", "linearization_error_between",
           "planted_affinity", "reverse_mode_projection", "write_synthetic_store"]
