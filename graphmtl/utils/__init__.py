"""Small helpers shared by every stage: atomic writes, hashing, threads, progress bars."""

from graphmtl.utils.io import (atomic_path, atomic_save_npy, atomic_write_json, file_digest,
                               read_json, stable_hash)

__all__ = ["atomic_path", "atomic_save_npy", "atomic_write_json", "file_digest", "read_json",
           "stable_hash"]
