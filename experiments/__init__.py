"""Benchmarks and experiments of graphmtl, run as ``python -m experiments.NAME``."""
