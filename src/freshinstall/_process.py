"""How freshinstall runs a subprocess: an argv list, never a shell.

The one exception is git for the fingerprint, started by quick.start_git (``os.posix_spawnp``,
also an argv list) so that the fingerprint does not import subprocess.
"""

from __future__ import annotations

import os
import sys

from freshinstall.errors import CommandError, ToolNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping, Sequence

StrPath = str | os.PathLike[str]


def run(
    argv: Sequence[StrPath],
    *,
    cwd: StrPath | None = None,
    env: Mapping[str, str] | None = None,
    stream: bool = False,
    stdin: bytes | None = None,
    capture: bool = False,
) -> str:
    """Run ``argv`` and return its output as text (see :func:`run_bytes`)."""
    output = run_bytes(argv, cwd=cwd, env=env, stream=stream, stdin=stdin, capture=capture)
    return output.decode(errors="replace")


def run_bytes(
    argv: Sequence[StrPath],
    *,
    cwd: StrPath | None = None,
    env: Mapping[str, str] | None = None,
    stream: bool = False,
    stdin: bytes | None = None,
    capture: bool = False,
) -> bytes:
    """Run ``argv`` and return its combined output (stdout alone with ``capture``).

    With ``stream`` the command is echoed as ``$ ...`` and its output goes straight to our
    stderr (stdout stays reserved for results); otherwise the output is captured and carried
    by the :class:`CommandError` raised when the command fails, so it can be replayed.
    ``capture`` returns the command's stdout alone, for parsing, in any case; its stderr goes
    into the error only (both are echoed afterwards with ``stream``). ``stdin`` is the
    command's input (else it reads nothing).
    """
    import subprocess  # here: the fingerprint's start-up does without it (see quick.start_git)

    args = [os.fspath(arg) for arg in argv]
    if stream:
        _echo(args)
    sink = _stderr_fd() if stream and not capture else None
    try:
        completed = subprocess.run(
            args,
            cwd=cwd,
            env=env,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            stdout=subprocess.PIPE if sink is None else sink,
            stderr=subprocess.PIPE if capture else subprocess.STDOUT,
            check=False,
        )
    except FileNotFoundError as error:
        if cwd is not None and not os.path.isdir(cwd):
            raise
        raise ToolNotFoundError(args[0]) from error
    output: bytes = completed.stdout or b""
    everything = output + (completed.stderr or b"")
    if stream and sink is None:
        sys.stderr.write(everything.decode(errors="replace"))
    if completed.returncode != 0:
        raise CommandError(args, completed.returncode, everything.decode(errors="replace"))
    return output


def start_quiet(
    argv: Sequence[StrPath], *, cwd: StrPath, env: Mapping[str, str], stream: bool = False
) -> subprocess.Popen[bytes] | None:
    """Start ``argv`` beside what runs next, its output discarded, its stdin a pipe that the
    caller closes to tell it to stop (and that closes when this process ends, however it
    ends); None when it cannot be started. It runs in a session of its own, out of reach of
    the terminal's Ctrl-C. With ``stream`` the command is echoed as ``$ ...``."""
    import subprocess

    args = [os.fspath(arg) for arg in argv]
    if stream:
        _echo(args)
    try:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None


def _echo(args: list[str]) -> None:
    """Show a command line as ``$ ...`` on stderr."""
    import shlex

    print(f"$ {shlex.join(args)}", file=sys.stderr, flush=True)


def _stderr_fd() -> int | None:
    """Our stderr as a file descriptor, or None when it is not a real file (a test capture)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def last_line(output: str) -> str:
    """The line of a tool's output most likely to be its error message."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [
        line for line in lines if line.lower().startswith(("error", "\N{MULTIPLICATION SIGN}"))
    ]
    return (errors or lines or [""])[-1]
