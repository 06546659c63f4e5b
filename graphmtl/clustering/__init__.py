"""clustering stage."""
