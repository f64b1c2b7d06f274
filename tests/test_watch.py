"""``freshinstall watch``: a real watcher process, real builds, real uv, real signals.

Each story runs ``python -m freshinstall watch`` and waits (bounded) for what it prints; the
three ways of finding changes are tested alike: watchfiles, FRESHINSTALL_WATCH_POLL=1, and the
fallback when watchfiles cannot be imported at all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from freshinstall import watch
from freshinstall.core import Options
from freshinstall.project import load_project
from tests.conftest import MakeProject
from tests.helpers import Sandbox, commit_all, git

pytestmark = pytest.mark.slow

#: Bounds for every wait: a cold build on a loaded CI machine, and anything quicker.
BUILD_TIMEOUT = 120.0
TIMEOUT = 30.0
BUILT = "built and installed"
CHANGED = "the source changed since the last build"


class Watcher:
    """A ``freshinstall watch`` process whose output is collected line by line as it comes."""

    def __init__(self, *args: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
        argv = [sys.executable, "-m", "freshinstall", "watch", *(os.fspath(arg) for arg in args)]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.readers = [
            threading.Thread(target=self._collect, args=(pipe, lines), daemon=True)
            for pipe, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _collect(pipe: IO[str], lines: list[str]) -> None:
        for line in pipe:
            lines.append(line.rstrip("\n"))  # noqa: PERF401 - one by one, as they come

    def output(self) -> str:
        return "\n".join(["--- stdout", *self.stdout, "--- stderr", *self.stderr])

    def wait_for(self, condition: Callable[[], bool], timeout: float = BUILD_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"watch exited early\n{self.output()}"
            assert time.monotonic() < deadline, f"gave up after {timeout}s\n{self.output()}"
            time.sleep(0.05)

    def wait_for_stdout(self, count: int, text: str, timeout: float = BUILD_TIMEOUT) -> None:
        """Wait until ``count`` lines of stdout contain ``text``."""
        self.wait_for(lambda: sum(text in line for line in self.stdout) >= count, timeout)

    def runs(self) -> int:
        """How many freshen runs have started (each prints its fingerprint step)."""
        return sum(line.startswith("fingerprint") for line in self.stderr)

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=TIMEOUT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with self.process:  # waits, and closes the pipes once the readers are done
            for reader in self.readers:
                reader.join(timeout=TIMEOUT)


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.close()


def environment(mode: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    if mode == "poll":
        env["FRESHINSTALL_WATCH_POLL"] = "1"
    elif mode == "no-watchfiles":
        shim = tmp_path / "shim" / "watchfiles"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text("raise ImportError('watchfiles is hidden by a test')\n")
        env["PYTHONPATH"] = os.pathsep.join([str(shim.parent), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("mode", ["watchfiles", "poll", "no-watchfiles"])
def test_edits_are_reinstalled_until_ctrl_c(
    make_project: MakeProject,
    sandbox: Sandbox,
    watchers: list[Watcher],
    tmp_path: Path,
    mode: str,
) -> None:
    project = make_project("setuptools_cli", in_git=True)
    watcher = Watcher(project, env=environment(mode, tmp_path))
    watchers.append(watcher)
    watcher.wait_for_stdout(1, f"{BUILT} (uv-tool in {sandbox.tools}): never built by freshinstall")
    watcher.wait_for(lambda: any(line.startswith("watching") for line in watcher.stderr))
    assert sandbox.run_tool("stcli") == "stcli.cli stcli.commands stcli.commands.hello stcli.utils"
    if mode == "no-watchfiles":
        assert any("watchfiles is not installed" in line for line in watcher.stderr)

    # A new module and a deleted one, in one go: one rebuild, and no ghost.
    (project / "src/stcli/commands/bye.py").write_text("def run() -> str:\n    return 'bye'\n")
    (project / "src/stcli/commands/hello.py").unlink()
    started = time.monotonic()
    watcher.wait_for_stdout(1, f"{BUILT} (uv-tool in {sandbox.tools}): {CHANGED}")
    assert time.monotonic() - started < BUILD_TIMEOUT
    assert sandbox.run_tool("stcli") == "stcli.cli stcli.commands stcli.commands.bye stcli.utils"

    # Outputs do not count: caches, build/, dist/ (freshinstall's own writes there included).
    runs = watcher.runs()
    (project / "src/stcli/__pycache__").mkdir(exist_ok=True)
    (project / "src/stcli/__pycache__/cli.cpython-311.pyc").write_bytes(b"\0")
    (project / "build/lib").mkdir(parents=True)
    (project / "build/lib/old.py").write_text("")
    (project / "dist/notes.txt").write_text("mine\n")
    time.sleep(2)  # longer than the debounce and a poll; the next edit shows nothing ran
    (project / "src/stcli/utils.py").write_text(
        "def shout(text: str) -> str:\n    return text.upper()\n"
    )
    watcher.wait_for_stdout(2, f"{BUILT} (uv-tool in {sandbox.tools}): {CHANGED}")
    assert watcher.runs() == runs + 1, watcher.output()
    assert sandbox.run_tool("stcli") == "STCLI.CLI STCLI.COMMANDS STCLI.COMMANDS.BYE STCLI.UTILS"

    assert watcher.interrupt() == 0, watcher.output()
    assert watcher.stderr[-1] == "stopped watching", watcher.output()
    assert "Traceback" not in watcher.output()


def test_failed_build_is_reported_and_watching_goes_on(
    make_project: MakeProject, sandbox: Sandbox, watchers: list[Watcher]
) -> None:
    project = make_project("setuptools_cli")
    watcher = Watcher(project)
    watchers.append(watcher)
    watcher.wait_for_stdout(1, BUILT)

    (project / "setup.py").write_text("raise RuntimeError('this setup.py is broken')\n")
    watcher.wait_for(lambda: any(line.startswith("error: ") for line in watcher.stderr))
    error = next(line for line in watcher.stderr if line.startswith("error: "))
    assert error.startswith("error: build failed"), watcher.output()
    # The backend's own output comes first, as with `freshinstall install`.
    assert any("this setup.py is broken" in line for line in watcher.stderr[:-1])
    assert "Traceback" not in error
    assert watcher.process.poll() is None
    assert sandbox.run_tool("stcli").startswith("stcli.cli")  # the old install still works

    (project / "setup.py").write_text("from setuptools import setup\n\nsetup()\n")
    watcher.wait_for_stdout(2, BUILT)
    assert sandbox.run_tool("stcli").startswith("stcli.cli")
    assert watcher.interrupt() == 0


def test_a_bad_path_is_one_error_before_watching(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "freshinstall", "watch", tmp_path / "missing"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [f"error: {tmp_path / 'missing'}: no such directory"]


# --- the pieces, in process ---------------------------------------------------------------------


def test_poller_sees_an_edit_that_keeps_size_and_mtime(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text("A = 1\n")
    stat = module.stat()
    before = watch.signature(tmp_path, ["mod.py"], time.time_ns())
    module.write_text("A = 2\n")
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = watch.signature(tmp_path, ["mod.py"], time.time_ns())
    assert watch.changed(before, after)
    assert not watch.changed(after, watch.signature(tmp_path, ["mod.py"], time.time_ns()))


def test_poller_does_not_hash_files_that_are_not_recent(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("A = 1\n")
    later = time.time_ns() + 10 * watch.RACY_NS
    assert watch.signature(tmp_path, ["mod.py"], later)["mod.py"][1] is None


def test_only_events_that_can_change_the_build_count(make_project: MakeProject) -> None:
    project = make_project("tracked_build", in_git=True)
    (project / "build/lib").mkdir()
    (project / ".venv").mkdir()
    (project / ".venv/pyvenv.cfg").write_text("")
    tree = watch._Tree(load_project(project), Options(path=project))
    relevant = {
        "src/tbuild/__init__.py": True,
        "src/tbuild/new.py": True,
        "pyproject.toml": True,
        "build/KEEP.txt": True,  # tracked: source, even under build/
        "build/lib/tbuild/__init__.py": False,
        "build/lib": False,
        "dist/tbuild-1.0.0-py3-none-any.whl": False,
        "dist/.freshinstall-cache": False,
        "dist": False,
        "src/tbuild/__pycache__": False,
        "src/tbuild/__pycache__/x.cpython-311.pyc": False,
        "src/tbuild.egg-info/PKG-INFO": False,
        ".venv/lib/site.py": False,
        ".git/index": False,  # the version does not come from git here
    }
    assert {path: tree.relevant(str(project / path)) for path in relevant} == relevant
    assert not tree.relevant(str(project.parent / "elsewhere.py"))


def test_git_state_counts_when_the_version_comes_from_git(make_project: MakeProject) -> None:
    project = make_project("scm_cli", in_git=True)
    git(project, "tag", "v1.0.0")
    commit_all(project)
    tree = watch._Tree(load_project(project), Options(path=project))
    assert tree.relevant(str(project / ".git/index"))
    assert tree.relevant(str(project / ".git/refs/tags/v1.0.0"))
    assert not tree.relevant(str(project / ".git/objects/ab/cdef"))
    assert str(project / ".git/refs/tags/v1.0.0") in tree.inputs()
