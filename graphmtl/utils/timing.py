"""Wall and CPU time of a block of work, child processes included."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.wall_s`` / ``sw.cpu_s``.

    CPU time counts this process and the child processes that finished inside the block (worker
    pools are joined before the block ends), so a computation spread over workers reports the
    total CPU it used, not just the parent's share.
    """

    wall_s: float = 0.0
    cpu_s: float = 0.0

    def __enter__(self) -> "Stopwatch":
        self._wall0, self._cpu0 = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_s += time.perf_counter() - self._wall0
        self.cpu_s += _cpu_seconds() - self._cpu0

    def to_dict(self) -> dict[str, float]:
        return {"wall_s": self.wall_s, "cpu_s": self.cpu_s}
