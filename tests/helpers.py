"""Helpers shared by the tests: the sandbox, running freshinstall and git, fixture projects."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    import pytest

PACKAGES = Path(__file__).parent / "packages"


@dataclass(frozen=True)
class Sandbox:
    """The isolated places one test installs into."""

    home: Path
    tools: Path
    bin: Path
    cache: Path

    def run_tool(self, name: str, *args: str) -> str:
        """Run an installed console script and return its stdout."""
        result = subprocess.run(
            [str(self.bin / name), *args], capture_output=True, text=True, check=True, timeout=60
        )
        return result.stdout.strip()

    def tool_site_packages(self, tool: str) -> Path:
        (site,) = (self.tools / tool / "lib").glob("python*/site-packages")
        return site


#: The racy margin of the stat cache in tests (quick.MARGIN_NS, patched), so that "settled"
#: takes a 0.1 s sleep rather than seconds; the rule tested is the same.
SHORT_MARGIN_NS = 50_000_000


def settle() -> None:
    """Wait until every file written so far is older than the (shortened) racy margin."""
    time.sleep(2 * SHORT_MARGIN_NS / 1e9)


def write(root: Path, relpath: str, content: str | bytes = "x\n") -> Path:
    """Write ``content`` to ``root/relpath``, making its directories."""
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def uv(*args: str, cwd: Path | None = None) -> str:
    """Run the same uv that freshinstall would use (PATH first, else the uv package's binary)."""
    from freshinstall.install import find_uv

    return subprocess.run(
        [find_uv(), *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def first_on_path(monkeypatch: pytest.MonkeyPatch, directory: Path, name: str, text: str) -> Path:
    """Write the executable ``directory/name`` holding ``text``; put ``directory`` first on PATH
    (a wrapper of uv, say, that freshinstall then finds before the real one)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def commit_all(cwd: Path, message: str = "change") -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "--allow-empty", "-m", message)


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def freshinstall(
    *args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 300
) -> Result:
    """Run freshinstall as a user would: a separate process, its real exit code and streams."""
    completed = subprocess.run(
        [sys.executable, "-m", "freshinstall", *(os.fspath(arg) for arg in args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def start_group(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``argv`` in a process group of its own (as a shell job is), output captured."""
    return subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_groups(started: list[subprocess.Popen[str]]) -> None:
    """Kill whatever is left of each group and reap it.

    The group outlives its leader when only the leader was killed: this kills the orphans too.
    """
    import contextlib
    import signal

    for process in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=30)


#: Python lines for a script that tests kill: every file read takes 50 ms longer, and the pid
#: of the process reading it is appended to the file named by sys.argv[1].
SLOW_LOGGED_READS = (
    "import os, sys, time\n"
    "from freshinstall import fingerprint, quick\n"
    "quick.can_fork = lambda: True\n"
    "real = fingerprint._hash_contents\n"
    "def slow(source, copy_to, mode):\n"
    "    with open(sys.argv[1], 'a') as log:\n"
    "        log.write(f'{os.getpid()}\\n')\n"
    "    time.sleep(0.05)\n"
    "    return real(source, copy_to, mode)\n"
    "fingerprint._hash_contents = slow\n"
)


def kill_then_no_more_reads(run: subprocess.Popen[bytes], log: Path, readers: int) -> None:
    """Once ``readers`` processes of ``run`` are reading files (by ``log``, see
    SLOW_LOGGED_READS), SIGKILL it, which leaves it no chance to stop its children; assert
    that they stop reading after the file at hand."""
    deadline = time.monotonic() + 60
    while len(set(log.read_text().split()) if log.exists() else ()) < readers:
        assert time.monotonic() < deadline, "not seen reading"
        time.sleep(0.01)
    run.kill()
    run.wait()
    time.sleep(0.2)  # the file at hand
    lines = log.read_text()
    time.sleep(0.5)  # ten files more, if they went on
    assert log.read_text() == lines
    assert lines.count("\n") < 30


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...); [] once
    the process is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return []
    return data[data.rindex(b")") + 2 :].decode().split()


def process_state(pid: int) -> str:
    """The process's state letter (R, S, D, T, Z, ...), or "" once it is gone."""
    fields = proc_stat(pid)
    return fields[0] if fields else ""
