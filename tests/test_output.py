"""What freshinstall writes, as a person or a script sees it: colours, the live line, streams.

Colours follow NO_COLOR, then FORCE_COLOR, then whether stderr is a terminal. On a terminal a
live line (rewritten with ``\\r``) shows the elapsed time of a build or install; it never
appears when stderr is not a terminal, with ``-q``, or on stdout.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from freshinstall import output
from freshinstall.output import StderrReporter
from tests.conftest import MakeProject
from tests.helpers import freshinstall

ESC = "\x1b"


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


# --- colours: NO_COLOR, FORCE_COLOR, not a terminal -------------------------------------------


def test_not_a_terminal_gives_no_escape_codes(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    result = freshinstall("--dry-run", project)
    assert result.code == 0, result.stderr
    assert "fingerprint" in result.stderr
    assert ESC not in result.stderr
    assert ESC not in result.stdout


def test_force_color_colours_stderr_but_never_stdout(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project("setuptools_cli")
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = freshinstall("--dry-run", project)
    assert result.code == 0, result.stderr
    assert f"{ESC}[" in result.stderr
    assert "fingerprint" in result.stderr
    assert ESC not in result.stdout
    assert result.stdout.startswith("would build and install stcli")


def test_no_color_wins_over_force_color(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project("setuptools_cli")
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    result = freshinstall("--dry-run", project)
    assert result.code == 0, result.stderr
    assert "fingerprint" in result.stderr
    assert ESC not in result.stderr + result.stdout


def test_error_prefix_is_coloured_only_when_colours_are_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = freshinstall(tmp_path / "nope")
    assert plain.stderr.startswith("error: ")
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = freshinstall(tmp_path / "nope")
    assert coloured.code == 1
    assert coloured.stderr.startswith(ESC)
    assert "error:" in coloured.stderr
    assert "no such directory" in coloured.stderr


@pytest.mark.parametrize(
    ("env", "tty", "expected"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"NO_COLOR": "1"}, True, False),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # an empty NO_COLOR is not set
    ],
)
def test_use_color(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, expected: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = FakeTerminal() if tty else io.StringIO()
    assert output.use_color(stream) is expected


# --- the live line, in process -----------------------------------------------------------------


@pytest.fixture
def fast_live_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "LIVE_DELAY", 0.0)
    monkeypatch.setattr(output, "LIVE_INTERVAL", 0.01)
    monkeypatch.setenv("NO_COLOR", "1")


def wait_until_drawn(stream: io.StringIO, after: str = "") -> None:
    """Wait until the live line is drawn (after the first occurrence of ``after``)."""
    deadline = time.monotonic() + 10
    while "\r" not in (stream.getvalue().partition(after)[2] if after else stream.getvalue()):
        assert time.monotonic() < deadline, "the live line was never drawn"
        time.sleep(0.01)


@pytest.mark.usefixtures("fast_live_line")
def test_live_line_on_a_terminal_is_erased_by_the_step() -> None:
    stream = FakeTerminal()
    with StderrReporter(quiet=False, stream=stream) as reporter:
        reporter.start("build")
        wait_until_drawn(stream)
        reporter.note("waiting for another freshinstall run on this project to finish")
        wait_until_drawn(stream, after="to finish\n")  # drawn again, below the note
        reporter.step("build", "demo-1.0-py3-none-any.whl", 1.5)
        reporter.step("fingerprint", "abc (1 files)", 0.01)  # no live line: nothing to erase
    text = stream.getvalue()
    assert ESC not in text
    assert re.search(r"\rbuild {7}[-\\|/] \d+\.\ds", text), text
    # Everything after the last carriage return is plain lines: the live line was erased.
    tail = text.rsplit("\r", 1)[1]
    assert (
        tail == "build       demo-1.0-py3-none-any.whl (1.50s)\nfingerprint abc (1 files) (0.01s)\n"
    )
    # The live line was erased before the note, which has a line of its own.
    assert re.search(r"\r +\rnote: waiting for another freshinstall run.*finish\n", text), text


@pytest.mark.usefixtures("fast_live_line")
def test_live_line_is_erased_when_the_phase_fails() -> None:
    stream = FakeTerminal()

    def fail_during_the_install() -> None:
        with StderrReporter(quiet=False, stream=stream) as reporter:
            reporter.start("install")
            wait_until_drawn(stream)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_during_the_install()
    *drawn, erased, rest = stream.getvalue().split("\r")
    assert drawn[-1].startswith("install")
    assert erased == " " * len(drawn[-1])
    assert rest == ""


@pytest.mark.usefixtures("fast_live_line")
@pytest.mark.parametrize(
    ("terminal", "quiet", "live"),
    [(False, False, True), (True, True, True), (True, False, False)],
    ids=["not-a-terminal", "quiet", "verbose"],
)
def test_no_live_line(terminal: bool, quiet: bool, live: bool) -> None:
    stream = FakeTerminal() if terminal else io.StringIO()
    with StderrReporter(quiet=quiet, live=live, stream=stream) as reporter:
        reporter.start("build")
        time.sleep(0.1)
        reporter.step("build", "demo-1.0-py3-none-any.whl", 1.5)
    assert "\r" not in stream.getvalue()
    assert stream.getvalue() == ("" if quiet else "build       demo-1.0-py3-none-any.whl (1.50s)\n")


@pytest.mark.usefixtures("fast_live_line")
def test_live_line_never_wraps() -> None:
    stream = FakeTerminal()  # no terminal size: taken as 80 columns
    with StderrReporter(quiet=False, stream=stream) as reporter:
        reporter.start("x" * 200)
        wait_until_drawn(stream)
    drawn = [part for part in stream.getvalue().split("\r") if part.strip()]
    assert drawn
    assert all(len(part) < 80 for part in drawn)


# --- the live line, end to end on a pseudo-terminal --------------------------------------------


@dataclass(frozen=True)
class PtyResult:
    code: int
    stdout: str
    stderr: str


def freshinstall_on_a_pty(*args: str | os.PathLike[str], timeout: float = 300) -> PtyResult:
    """Run freshinstall with stderr on a pseudo-terminal (stdout stays a pipe)."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "freshinstall", *(os.fspath(arg) for arg in args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        code = process.wait(timeout=30)
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    # The terminal turns "\n" into "\r\n"; undo that so that a lone "\r" is the live line's.
    return PtyResult(code, stdout, seen.decode().replace("\r\n", "\n"))


@pytest.mark.slow
def test_terminal_shows_a_live_line_during_the_build(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project("setuptools_cli", in_git=True)
    monkeypatch.setenv("NO_COLOR", "1")  # the live line needs no escape codes either
    result = freshinstall_on_a_pty("--json", project)
    assert result.code == 0, result.stderr
    assert "\rbuild       " in result.stderr, result.stderr
    assert ESC not in result.stderr
    # The finished phases are plain lines once the live line is erased.
    final = [line.rsplit("\r", 1)[-1] for line in result.stderr.splitlines()]
    assert final[0].startswith("fingerprint ")
    assert any(line.startswith("build       stcli-1.0.0-") for line in final), final
    assert any(line.startswith("install     uv-tool in ") for line in final), final
    # stdout is exactly one JSON object: nothing of the live line leaks into it.
    assert "\r" not in result.stdout
    assert json.loads(result.stdout)["rebuilt"] is True

    quiet = freshinstall_on_a_pty("-q", "--force", project)
    assert quiet.code == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout == ""


@pytest.mark.slow
def test_no_live_line_when_stderr_is_not_a_terminal(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli", in_git=True)
    result = freshinstall(project)
    assert result.code == 0, result.stderr
    assert "\r" not in result.stderr + result.stdout
    assert ESC not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert [line.split()[0] for line in lines] == ["fingerprint", "build", "install"], lines
    assert result.stdout.startswith("stcli 1.0.0 built and installed (uv-tool in ")
