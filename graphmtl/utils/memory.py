"""Peak resident memory of a block of work, worker processes included."""

from __future__ import annotations

import os
import resource
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_PROC = Path("/proc")


def _rss_bytes(pid: int) -> int:
    """Resident bytes of one process (0 if it is gone)."""
    try:
        return int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's ``children`` list)."""
    out: list[int] = []
    try:
        for task in (_PROC / str(pid) / "task").iterdir():
            try:
                out += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree_rss_bytes(pid: int | None = None) -> int:
    """Resident bytes of ``pid`` (default: this process) and all its descendants.

    Pages shared between processes (a forked worker's copy-on-write pages) count once per
    process, so this is an upper bound of what the tree holds together.
    """
    pid = os.getpid() if pid is None else pid
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss_bytes(p)
        todo += _children(p)
    return total


def _self_peak_bytes() -> int:
    """This process's own lifetime peak RSS (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass
class PeakMemory:
    """``with PeakMemory() as pm: ...`` then ``pm.peak_mb``: the largest resident memory of this
    process and its worker processes together while the block ran.

    On Linux a background thread sums the resident memory of the process tree every
    ``interval`` seconds (spikes shorter than that between two samples can be missed, and pages
    shared by forked workers count per process, so the number is an upper bound of the tree's
    footprint at its sampled peak). Without ``/proc`` it is the process's own lifetime peak
    (``ru_maxrss``), workers not included, as ``method`` says.

    Attributes:
        interval: seconds between samples.
        peak_mb: the peak, in MiB (set when the block ends).
        method: ``"sampled process tree"`` or ``"own lifetime peak"``.
    """

    interval: float = 0.25
    peak_mb: float = 0.0
    method: str = field(default="", init=False)

    def __enter__(self) -> "PeakMemory":
        self._peak = 0
        self._stop = threading.Event()
        self._thread = None
        if (_PROC / str(os.getpid()) / "statm").exists():
            self.method = "sampled process tree"
            self._sample()
            self._thread = threading.Thread(target=self._loop, name="graphmtl-peak-memory",
                                            daemon=True)
            self._thread.start()
        else:
            self.method = "own lifetime peak"
        return self

    def _sample(self) -> None:
        self._peak = max(self._peak, tree_rss_bytes())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._sample()
        else:
            self._peak = max(self._peak, _self_peak_bytes())
        self.peak_mb = self._peak / 2**20
