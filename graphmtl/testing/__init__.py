"""Fixtures and reference computations for tests and benchmarks; the library never imports this.

- :mod:`graphmtl.testing.projection`: reverse-mode reference projection and the linearisation
  checks.
"""
