"""affinity stage."""
