"""Scratch directories left by killed builds, and Ctrl-C while fingerprinting.

A build works in ``$TMPDIR/freshinstall-build-*``. A run killed with SIGKILL cannot remove that
directory, so the next build removes it, provided its ``.lock`` is free (the OS released it when
the owner died) and its ``.owned`` marker is there. Each test points ``TMPDIR`` at a fresh
directory of its own, so what the runs leave there can be seen. Runs that must be caught in
the middle of a build use test_reliability's slow in-tree backend; Ctrl-C while fingerprinting
is sent while the run is frozen in the middle of hashing a big file (``ctrl_c_while_hashing``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeProject
from tests.helpers import Sandbox, freshinstall, kill_groups, proc_stat, process_state, start_group
from tests.test_reliability import (
    MAIN,
    STCLI_MODULES,
    assert_not_up_to_date,
    finish,
    install_json,
    read_stamp,
    slow_project,
    the_error_line,
    wait_for,
)

pytestmark = pytest.mark.slow

Launch = Callable[..., subprocess.Popen[str]]

#: Holds the lock given as argv[1] until killed, as a live build holds the lock of its scratch.
HOLD_LOCK = """\
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1])  # kept: a collected FileLock releases its lock
lock.acquire()
print("locked", flush=True)
time.sleep(600)
"""

#: The big file that fingerprinting hashes: real bytes, not a sparse file. Hashing it takes a
#: third of a second on a fast machine, long enough for the polls (every 10 ms) to see it open;
#: the freezing in ``ctrl_c_while_hashing``, not the size, makes the interrupt land in time.
BIG_MIB = 512

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/fdinfo").is_dir(), reason="watches the run's open files in /proc"
)


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``TMPDIR`` for every freshinstall run of the test."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    return path


@pytest.fixture
def launch() -> Iterator[Launch]:
    """Start a command in its own process group; whatever is left of it is killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(
        *argv: str | os.PathLike[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        process = start_group([os.fspath(arg) for arg in argv], {**os.environ, **(env or {})})
        started.append(process)
        return process

    yield start
    kill_groups(started)


@pytest.fixture
def big_project(make_project: MakeProject) -> Iterator[Path]:
    """setuptools_cli with a file of BIG_MIB MiB, hashed first (``big.bin`` sorts first)."""
    project = make_project("setuptools_cli")
    big = project / "big.bin"
    block = os.urandom(1 << 20)
    with big.open("wb") as file:
        for _ in range(BIG_MIB):
            file.write(block)
    yield project
    big.unlink()  # pytest keeps the temporary directories of the last runs


def scratch_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("freshinstall-build-*"))


def freshinstall_argv(*args: str | os.PathLike[str]) -> list[str | os.PathLike[str]]:
    return [sys.executable, "-m", "freshinstall", *args]


# -- scratch directories ------------------------------------------------------------------------


def test_scratch_of_a_killed_build_is_removed_by_the_next_build(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, tmp: Path, launch: Launch
) -> None:
    project = slow_project(make_project, "slow")
    marker = tmp_path / "building"
    run = launch(
        *freshinstall_argv(project), env={f"{MAIN}SLEEP": "600", f"{MAIN}MARKER": str(marker)}
    )
    wait_for(marker, run)
    os.killpg(run.pid, signal.SIGKILL)  # freshinstall, uv and the backend
    assert finish(run, timeout=30).code == -signal.SIGKILL

    (left,) = scratch_dirs(tmp)  # a SIGKILLed run cannot clean up
    assert {".lock", ".owned", "src"} <= {path.name for path in left.iterdir()}

    result = freshinstall("--json", project, timeout=120)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["rebuilt"] is True
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    assert scratch_dirs(tmp) == []


def test_cleanup_leaves_live_unmarked_and_linked_directories_alone(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, tmp: Path, launch: Launch
) -> None:
    import filelock

    def scratch(path: Path, *, owned: bool) -> Path:
        path.mkdir()
        (path / "keep").write_text("keep\n")
        if owned:
            (path / ".lock").touch()
            (path / ".owned").touch()
        return path

    # The control: abandoned (marked, lock free), so it must go, which shows the cleanup ran.
    dead = scratch(tmp / "freshinstall-build-dead", owned=True)
    # Without .owned it may be someone else's, or half made or removed: not even locked.
    unmarked = scratch(tmp / "freshinstall-build-x", owned=False)
    live = scratch(tmp / "freshinstall-build-live", owned=True)
    target = scratch(tmp_path / "elsewhere", owned=True)
    (tmp / "freshinstall-build-y").symlink_to(target, target_is_directory=True)
    holder = launch(sys.executable, "-c", HOLD_LOCK, live / ".lock")
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"

    result = freshinstall("--json", make_project("setuptools_cli"), timeout=120)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["rebuilt"] is True
    assert sandbox.run_tool("stcli") == STCLI_MODULES

    assert not dead.exists()
    assert sorted(path.name for path in tmp.iterdir()) == [
        "freshinstall-build-live",
        "freshinstall-build-x",
        "freshinstall-build-y",
    ]
    assert sorted(child.name for child in unmarked.iterdir()) == ["keep"]
    for path in (live, target):
        assert sorted(child.name for child in path.iterdir()) == [".lock", ".owned", "keep"]
    assert (tmp / "freshinstall-build-y").is_symlink()
    assert holder.poll() is None
    with pytest.raises(filelock.Timeout):  # still the live holder's
        filelock.FileLock(live / ".lock").acquire(timeout=0)


# -- Ctrl-C while fingerprinting ----------------------------------------------------------------


def _group(pgid: int) -> list[int]:
    """The processes of process group ``pgid``: the run, and the children it forked to hash."""
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return [pid for pid in pids if proc_stat(pid)[2:3] == [str(pgid)]]


def _all_stopped(pids: list[int], timeout: float = 1.0) -> bool:
    """Whether each of ``pids`` stops (or is gone) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while any(process_state(pid) not in {"T", "t", "Z", "X", ""} for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def _reading(pid: int, path: str) -> int | None:
    """The offset reached in ``path`` by ``pid``, if it has the file open."""
    with contextlib.suppress(OSError):  # gone
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
                    return int(info.split("pos:")[1].split()[0])
    return None


def _hashing(pids: list[int], path: str, size: int) -> bool:
    """Whether one of ``pids``, stopped, has ``path`` open with bytes of it still to read."""
    offsets = [_reading(pid, path) for pid in pids if process_state(pid) in {"T", "t"}]
    return any(offset is not None and offset < size for offset in offsets)


def ctrl_c_while_hashing(
    process: subprocess.Popen[str],
    big: Path,
    tmp: Path,
    timeout: float = 120,
    signum: int = signal.SIGINT,
) -> None:
    """Send Ctrl-C (``signum`` to the process group) while ``process`` hashes ``big``.

    Polling alone can see the file open and then signal too late, on a slow or loaded machine.
    So the run is frozen (SIGSTOP to its process group, which holds the children it forks to
    hash: see early.py) for each look: once one of them is found with ``big`` open and bytes
    of it still to read, and no scratch directory yet (a build reads the file again, for its
    copy), SIGINT is sent while they are frozen, then they resume, and the interrupt lands in
    the middle of the hashing whatever the machine's speed or load. Fails if that moment never
    comes.

    A look gives up after a second when a member does not stop: a process that has just
    started git with posix_spawn waits in state D until git runs, and git, stopped too before
    it could, never does until SIGCONT (a look that waited for it hung CI for good).
    """
    path = os.path.realpath(big)
    size = big.stat().st_size
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        os.killpg(process.pid, signal.SIGSTOP)
        try:
            members = _group(process.pid)
            if _all_stopped(members) and _hashing(members, path, size) and not scratch_dirs(tmp):
                os.killpg(process.pid, signum)
                return
        finally:
            os.killpg(process.pid, signal.SIGCONT)
        if process.poll() is not None:
            pytest.fail(f"the run ended before it was seen hashing {big.name}: {finish(process)}")
        time.sleep(0.01)
    pytest.fail(f"the run was not seen hashing {big.name} within {timeout}s")


def assert_interrupted_while_fingerprinting(process: subprocess.Popen[str], tmp: Path) -> None:
    interrupted = finish(process, timeout=60)
    assert interrupted.code == 130, interrupted
    assert the_error_line(interrupted) == "error: interrupted"
    assert interrupted.stdout == ""
    # Interrupted before the fingerprint was done (no progress line for it) or a build began.
    lines = interrupted.stderr.splitlines()
    assert not any(line.startswith("fingerprint") for line in lines), interrupted.stderr
    assert scratch_dirs(tmp) == []


@needs_proc
def test_ctrl_c_while_fingerprinting_exits_130(
    big_project: Path, tmp: Path, launch: Launch
) -> None:
    run = launch(*freshinstall_argv("fingerprint", "--no-cache", big_project))
    ctrl_c_while_hashing(run, big_project / "big.bin", tmp)
    assert_interrupted_while_fingerprinting(run, tmp)

    again = freshinstall("fingerprint", "--no-cache", big_project)
    assert again.code == 0, again.stderr
    assert len(again.stdout.strip()) == 64


@needs_proc
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_ctrl_c_while_fingerprinting_before_an_install_claims_nothing(
    big_project: Path, sandbox: Sandbox, tmp: Path, launch: Launch, signum: int
) -> None:
    run = launch(*freshinstall_argv(big_project))
    ctrl_c_while_hashing(run, big_project / "big.bin", tmp, signum=signum)
    if signum == signal.SIGINT:
        assert_interrupted_while_fingerprinting(run, tmp)
    else:
        killed = finish(run, timeout=60)
        assert killed.code == -signal.SIGKILL, killed
        assert scratch_dirs(tmp) == []

    stamp = read_stamp(big_project)
    assert stamp is None or stamp["installs"] == [], stamp
    assert not (sandbox.bin / "stcli").exists()
    assert_not_up_to_date(big_project)

    data = install_json(big_project)
    assert (data["rebuilt"], data["installed"]) == (True, True)
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    assert install_json(big_project)["reason"] == "up to date"


def test_a_removal_cut_short_leaves_the_directory_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So that the next build removes the rest (*unit*: the removal fails on one file)."""
    from freshinstall import build

    scratch = tmp_path / "freshinstall-build-x"
    (scratch / "src").mkdir(parents=True)
    (scratch / "src" / "module.py").write_text("", encoding="utf-8")
    (scratch / "stuck").write_text("", encoding="utf-8")
    (scratch / build.OWNED).touch()
    (scratch / build.LOCK).touch()
    real_unlink = os.unlink

    def unlink(path: str, *args: Any, **kwargs: Any) -> None:
        if os.fspath(path).endswith("stuck"):
            raise PermissionError(1, "Operation not permitted", os.fspath(path))
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    build._remove_marked_last(str(scratch))
    assert (scratch / build.OWNED).exists()
    assert (scratch / "stuck").exists()

    monkeypatch.setattr(os, "unlink", real_unlink)
    build._remove_marked_last(str(scratch))
    assert not scratch.exists()
