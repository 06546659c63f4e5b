"""An exclusive, self-describing lock on a directory (one writer per run directory).

:class:`DirectoryLock` holds an OS file lock (``flock``) on ``<dir>/.graphmtl.lock`` and writes
into that file who holds it (PID, host, start time, command):

- a second process asking for the same directory is refused at once with a one-line error that
  names the holder (no waiting, no "different settings" confusion);
- the kernel drops the lock when its holder dies, even by ``kill -9``, so a lock left by a killed
  process is stale by construction: the next process takes it over, with a warning naming the
  previous holder (and saying whether that PID is gone on this host);
- the lock is released (and its file removed) by :meth:`~DirectoryLock.release`, on leaving a
  ``with`` block, when the object is garbage-collected, and at interpreter exit.

Forked child processes (e.g. a ``fork`` worker pool) close their inherited copy of the lock file,
so orphaned workers of a killed run do not keep its directory locked. On file systems without
``flock`` (or without :mod:`fcntl`), the lock falls back to the holder's PID: a holder on this
host whose PID is gone is stale; a holder on another host is trusted.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
import sys
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphmtl.errors import GraphMTLError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".graphmtl.lock"

# Locks held by this process, by resolved directory: a new lock on a directory this process
# already holds supersedes the old one (e.g. a RunDirectory re-created after an exception).
# Weak: a lock whose owner is garbage-collected is released by its finalizer.
_HELD: "weakref.WeakValueDictionary[str, DirectoryLock]" = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a lock: ``pid`` on ``host``, since ``started`` (ISO time), running
    ``command``."""

    pid: int
    host: str
    started: str
    command: str = ""

    @classmethod
    def me(cls) -> "LockHolder":
        now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        return cls(os.getpid(), socket.gethostname(), now, " ".join(sys.argv)[:300])

    @classmethod
    def parse(cls, text: str) -> "LockHolder | None":
        """The holder recorded in a lock file's text (``None`` if empty or unreadable)."""
        try:
            d = json.loads(text)
            return cls(int(d["pid"]), str(d["host"]), str(d["started"]), str(d.get("command", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def to_json(self) -> str:
        return json.dumps(vars(self)) + "\n"

    def describe(self) -> str:
        return f"PID {self.pid} on {self.host}, started {self.started}"

    def alive(self) -> bool | None:
        """Whether the process still exists (``None``: on another host, cannot tell)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by someone else
            return True
        return True


class DirectoryLock:
    """Exclusive lock on ``directory`` (created if needed) for this process.

    Args:
        directory: the directory to lock.
        what: how the directory is named in messages (e.g. ``"run directory"``).

    Use as ``with DirectoryLock(d): ...`` or call :meth:`acquire` / :meth:`release`.
    """

    def __init__(self, directory: str | os.PathLike, what: str = "directory"):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.what = what
        self._fd: int | None = None
        self._pid = os.getpid()
        self._finalizer: Any = None

    @property
    def locked(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None and self._pid == os.getpid()

    def holder(self) -> LockHolder | None:
        """The holder recorded in the lock file, if any."""
        try:
            return LockHolder.parse(self.path.read_text())
        except (OSError, UnicodeDecodeError):
            return None

    # ------------------------------------------------------------------ acquire / release
    def acquire(self) -> "DirectoryLock":
        """Take the lock, or raise a one-line :class:`GraphMTLError` naming its holder.

        A lock left by a dead process is taken over with a warning.
        """
        if self.locked:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        key = str(self.directory.resolve())
        previous = _HELD.get(key)
        if previous is not None and previous is not self:
            previous.release()
        for _ in range(10):  # retry if the file was replaced between open and lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                got = self._try_lock(fd)
            except BaseException:
                os.close(fd)
                raise
            if not got:
                os.close(fd)
                holder = self.holder()
                who = holder.describe() if holder else "a process that is starting up"
                raise GraphMTLError(f"{self.directory}: {self.what} in use by another graphmtl "
                                    f"process ({who}); wait for it to finish or choose another "
                                    "directory")
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        else:  # pragma: no cover - ten races in a row
            raise GraphMTLError(f"{self.path}: could not lock (the lock file keeps changing)")
        stale = LockHolder.parse(os.pread(fd, 1 << 16, 0).decode("utf-8", "replace"))
        if stale is not None and (stale.pid, stale.host) != (os.getpid(), socket.gethostname()):
            gone = {False: "the process is gone", None: "on another host"}.get(
                stale.alive(), "it no longer holds the lock")
            warnings.warn(f"{self.directory}: took over the stale lock of {stale.describe()} "
                          f"({gone})", stacklevel=2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, LockHolder.me().to_json().encode(), 0)
        self._fd, self._pid = fd, os.getpid()
        _HELD[key] = self
        self._finalizer = weakref.finalize(self, _release, fd, str(self.path), self._pid, key)
        return self

    def _try_lock(self, fd: int) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError as e:
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
        # No flock here: a recorded holder that is alive (or on another host) still holds it.
        holder = LockHolder.parse(os.pread(fd, 1 << 16, 0).decode("utf-8", "replace"))
        return holder is None or holder.pid == os.getpid() or holder.alive() is False

    def release(self) -> None:
        """Release the lock and remove the lock file (no-op if not held)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._fd = None

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _release(fd: int, path: str, owner_pid: int, key: str) -> None:
    """Remove the lock file (if it is still ours) and close it; only in the owning process."""
    if os.getpid() != owner_pid:
        return
    try:
        if os.path.samestat(os.fstat(fd), os.stat(path)):
            os.unlink(path)
    except OSError:
        pass
    try:
        os.close(fd)
    except OSError:
        pass
    held = _HELD.get(key)
    if held is not None and held._fd == fd:
        _HELD.pop(key, None)


def _close_in_child() -> None:
    """After ``fork``: drop the child's copies of the parent's lock files (without unlinking)."""
    for lock in list(_HELD.values()):
        if lock._fd is not None:
            try:
                os.close(lock._fd)
            except OSError:
                pass
            lock._fd = None
            if lock._finalizer is not None:
                lock._finalizer.detach()
                lock._finalizer = None
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)
