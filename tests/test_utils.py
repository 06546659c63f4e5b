"""The shared helpers of graphmtl.utils: thread counts, progress bars, atomic .npy saving and the
per-tensor cache."""

import gc
import io

import numpy as np
import pytest
import torch

from graphmtl.utils import atomic_save_npy
from graphmtl.utils.cache import cached_on
from graphmtl.utils.io import is_temp_file
from graphmtl.utils.progress import progress, progress_bar
from graphmtl.utils.threads import blas_threads, torch_threads


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_blas_threads_limits_the_pools():
    from threadpoolctl import threadpool_info

    with blas_threads(1):
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    with blas_threads(None):   # as is: a no-op context
        pass


def test_progress_bar_and_progress():
    bar = progress_bar(3, desc="x", enabled=False, initial=1)
    bar.update(1)
    bar.close()
    assert bar.total == 3 and bar.disable
    out = io.StringIO()
    shown = progress_bar(2, desc="shown", file=out, unit="B", unit_scale=True)
    shown.update(2)
    shown.close()
    assert "shown" in out.getvalue()
    assert list(progress([1, 2, 3], enabled=False)) == [1, 2, 3]
    wrapped = progress(iter(range(4)), enabled=False, total=4)
    assert wrapped.total == 4 and list(wrapped) == [0, 1, 2, 3]


def test_atomic_save_npy_writes_np_save_bytes(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic_save_npy(tmp_path / "sub" / "a.npy", a)
    ref = io.BytesIO()
    np.save(ref, a)
    assert (tmp_path / "sub" / "a.npy").read_bytes() == ref.getvalue()
    np.testing.assert_array_equal(np.load(tmp_path / "sub" / "a.npy"), a)

    class Unsaveable:
        def __array__(self, *args, **kwargs):
            raise ValueError("cannot convert")

    with pytest.raises(ValueError, match="cannot convert"):
        atomic_save_npy(tmp_path / "sub" / "a.npy", Unsaveable())
    # a failed save leaves the previous file as it was and no temporary file behind
    assert (tmp_path / "sub" / "a.npy").read_bytes() == ref.getvalue()
    assert not any(is_temp_file(p) for p in (tmp_path / "sub").iterdir())


def test_cached_on_memoises_per_tensor_identity():
    calls = []
    x = torch.ones(5)

    def build():
        calls.append(1)
        return len(calls)

    assert cached_on([x], ("k",), build) == 1
    assert cached_on([x], ("k",), build) == 1          # same tensor, same key: cached
    assert cached_on([x], ("other",), build) == 2      # another key
    assert cached_on([torch.ones(5)], ("k",), build) == 3   # another tensor
    from graphmtl.utils import cache

    entries = len(cache._CACHE)
    del x
    gc.collect()
    assert len(cache._CACHE) < entries                  # freed with its tensor


def test_peak_memory_counts_the_block_and_its_worker_processes():
    import multiprocessing as mp

    from graphmtl.utils.memory import PeakMemory, tree_rss_bytes

    base = tree_rss_bytes() / 2**20
    with PeakMemory(interval=0.05) as own:
        block = np.ones(96 << 17)                      # 96 MiB in this process
        block[::512] += 1
    assert own.method == "sampled process tree"
    assert own.peak_mb >= base + 80
    del block
    # a child holding 96 MiB for a while shows up in the parent's peak
    with PeakMemory(interval=0.05) as tree:
        p = mp.get_context("spawn").Process(target=_hold_memory, args=(96, 1.5))
        p.start()
        p.join()
    assert p.exitcode == 0
    assert tree.peak_mb >= tree_rss_bytes() / 2**20 + 80
    with PeakMemory(interval=0.05) as idle:
        pass
    assert 0 < idle.peak_mb < tree.peak_mb


def _hold_memory(mib: int, seconds: float) -> None:
    import time

    block = np.ones(mib << 17)
    block[::512] += 1
    time.sleep(seconds)
