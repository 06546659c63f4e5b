"""The run-directory lock: a second process is refused at once naming the holder, a lock left
by a killed process is taken over with a warning, and the lock is released on exit and on
exceptions."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from graphmtl.cli import main
from graphmtl.errors import GraphMTLError
from graphmtl.pipeline import RunDirectory
from graphmtl.utils.lock import LOCK_NAME, DirectoryLock, LockHolder

ROOT = Path(__file__).resolve().parents[1]
LOCK_PY = ROOT / "graphmtl" / "utils" / "lock.py"
# The lock module alone (graphmtl.utils imports torch, which takes seconds to start).
LIGHT_IMPORT = ("import importlib.util as u, sys\n"
                f"spec = u.spec_from_file_location('lock', {str(LOCK_PY)!r})\n"
                "lock = sys.modules['lock'] = u.module_from_spec(spec)\n"
                "spec.loader.exec_module(lock)\n")


def holder_process(directory: Path, light: bool = False) -> subprocess.Popen:
    """A process that locks ``directory`` as a run directory (``light``: with the lock module
    alone, which starts faster than the pipeline), says so, and waits."""
    if light:
        take = LIGHT_IMPORT + f"held = lock.DirectoryLock({str(directory)!r}).acquire()\n"
    else:
        take = (f"from graphmtl.pipeline import RunDirectory\n"
                f"held = RunDirectory({str(directory)!r}, {{'held': True}})\n")
    code = take + "import time\nprint('locked', flush=True)\ntime.sleep(60)\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def try_lock_elsewhere(directory: Path) -> str:
    """Whether another process could take the OS lock now: ``"acquired"`` or ``"in use"``."""
    code = ("import fcntl, sys\n"
            f"f = open({str(directory / LOCK_NAME)!r}, 'a')\n"
            "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('acquired')\n"
            "except BlockingIOError:\n    print('in use')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(params=[False], ids=["pipeline-holder"])
def held(tmp_path, request):
    proc = holder_process(tmp_path / "run", light=request.param)
    yield tmp_path / "run", proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_process_is_refused_naming_the_holder(held, capsys):
    run_dir, proc = held
    manifest = (run_dir / "manifest.json").read_bytes()
    with pytest.raises(GraphMTLError, match=rf"run: run directory in use by another graphmtl "
                                            rf"process \(PID {proc.pid} on "
                                            rf"{socket.gethostname()}, started 20"):
        RunDirectory(run_dir, {"second": True})
    assert main(["run", "--out", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"PID {proc.pid}" in err[0] and "wait for it to finish" in err[0]
    assert (run_dir / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME, "manifest.json"]


@pytest.mark.parametrize("held", [True], indirect=True, ids=["light-holder"])
def test_stale_lock_of_a_killed_process_is_taken_over(held):
    run_dir, proc = held
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert LockHolder.parse((run_dir / LOCK_NAME).read_text()).pid == proc.pid  # left behind
    with pytest.warns(UserWarning, match=rf"took over the stale lock of PID {proc.pid} .*"
                                         r"\(the process is gone\)"):
        run = RunDirectory(run_dir, {})
    holder = LockHolder.parse((run_dir / LOCK_NAME).read_text())
    assert holder.pid == os.getpid() and holder.host == socket.gethostname()
    assert try_lock_elsewhere(run_dir) == "in use"
    run.close()
    assert not (run_dir / LOCK_NAME).exists()


def test_lock_is_released_on_exception_and_retaken(tmp_path):
    run = RunDirectory(tmp_path, {})
    assert try_lock_elsewhere(tmp_path) == "in use"

    def failing(d):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run.run("s", {}, failing)
    assert try_lock_elsewhere(tmp_path) == "acquired"  # released with the exception
    assert run.run("s", {}, lambda d: {"ok": 1}).outputs == {"ok": 1}  # the lock is retaken
    assert try_lock_elsewhere(tmp_path) == "in use"
    run.close()


def test_lock_is_released_at_exit_without_a_stale_warning(tmp_path):
    code = LIGHT_IMPORT + f"held = lock.DirectoryLock({str(tmp_path)!r}).acquire()\n"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                   check=True)
    assert not (tmp_path / LOCK_NAME).exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RunDirectory(tmp_path, {}).close()


def test_run_directory_with_block_releases_the_lock(tmp_path):
    with RunDirectory(tmp_path, {}) as run:
        run.run("a", {}, lambda d: {})
        assert try_lock_elsewhere(tmp_path) == "in use"
    assert not (tmp_path / LOCK_NAME).exists() and try_lock_elsewhere(tmp_path) == "acquired"


def test_same_process_reopens_its_own_directory(tmp_path):
    first = RunDirectory(tmp_path, {})
    second = RunDirectory(tmp_path, {})  # e.g. re-created after an exception: supersedes
    assert second.run("a", {}, lambda d: {"n": 1}).outputs == {"n": 1}
    assert not first._lock.locked
    second.close()


def test_with_block_and_forked_children_do_not_release_it(tmp_path):
    with DirectoryLock(tmp_path) as lock:
        assert lock.locked and json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        pid = os.fork()
        if pid == 0:  # a forked worker exits: it must not unlink or unlock the parent's lock
            os._exit(0 if not lock.locked else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert (tmp_path / LOCK_NAME).exists() and try_lock_elsewhere(tmp_path) == "in use"
    assert not (tmp_path / LOCK_NAME).exists()


def test_holder_parse_and_liveness():
    me = LockHolder.me()
    assert LockHolder.parse(me.to_json()) == me and me.alive() is True
    assert LockHolder.parse("") is None and LockHolder.parse("{}") is None
    assert LockHolder(me.pid, "some-other-host", me.started).alive() is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert LockHolder(dead.pid, me.host, me.started).alive() is False
