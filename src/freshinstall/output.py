"""Progress on stderr: colours, one line per finished phase, and a live line on a terminal.

Colours follow NO_COLOR, then FORCE_COLOR, then whether the stream is a terminal. The live line
(the phase and its elapsed time, rewritten in place with ``\\r``) is drawn only when stderr is a
terminal, never with ``-q`` or while the backend's output is streamed (``-v``); it never uses an
escape code, and it is erased before anything else is written to stderr.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import threading

    from typing_extensions import Self

#: Phases shorter than this never show a live line: it would only flicker.
LIVE_DELAY = 0.25
#: How often the live line is redrawn.
LIVE_INTERVAL = 0.1
_SPINNER = "-\\|/"
#: Width of the phase column: the longest phase name, "fingerprint".
_PHASE_WIDTH = 11


def use_color(stream: Any) -> bool:
    """NO_COLOR wins, then FORCE_COLOR, then whether the stream is a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_terminal(stream)


def is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


#: Colours by hand, not with click.style: this module is on the path of a plain
#: `freshinstall .`, which does not import click (see launch.py). The codes are click's.
_BOLD = {"red": "\x1b[31m\x1b[1m", "yellow": "\x1b[33m\x1b[1m", "cyan": "\x1b[36m\x1b[1m"}
_RESET = "\x1b[0m"
_ANSI = re.compile(r"\x1b\[[;?0-9]*[a-zA-Z]")


def bold(text: str, colour: str) -> str:
    return f"{_BOLD[colour]}{text}{_RESET}"


def unstyle(text: str) -> str:
    """``text`` without ANSI escape sequences."""
    return _ANSI.sub("", text)


def label(phase: str, *, color: bool) -> str:
    """The phase column: padded, and bold cyan when colours are on."""
    text = f"{phase:<{_PHASE_WIDTH}}"
    return bold(text, "cyan") if color else text


def prefix(word: str, *, color: bool) -> str:
    """``error:`` in bold red, ``note:`` in bold yellow, when colours are on."""
    text = f"{word}:"
    return bold(text, "red" if word == "error" else "yellow") if color else text


class LiveLine:
    """One stderr line that a thread rewrites with the elapsed time until ``stop()`` erases it."""

    def __init__(self, phase: str, stream: TextIO, *, color: bool) -> None:
        import threading

        self.phase = phase
        self.stream = stream
        self.color = color
        self.started = time.monotonic()
        self.width = 0  # of what is on the screen now
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread: threading.Thread = threading.Thread(
            target=self._run, name=f"freshinstall-live-{phase}", daemon=True
        )

    def start(self) -> LiveLine:
        self.thread.start()
        return self

    def _run(self) -> None:
        if self.done.wait(LIVE_DELAY):
            return
        tick = 0
        while True:
            elapsed = time.monotonic() - self.started
            self._draw(f"{label(self.phase, color=self.color)} {_SPINNER[tick % 4]} {elapsed:.1f}s")
            tick += 1
            if self.done.wait(LIVE_INTERVAL):
                return

    def _draw(self, text: str) -> None:
        plain = unstyle(text)
        room = _columns(self.stream) - 1  # never wrap: \r returns to the start of one line only
        if len(plain) > room:
            text = plain = plain[: max(room, 0)]
        with self.lock:
            if self.done.is_set():
                return
            pad = " " * max(self.width - len(plain), 0)
            self._write(f"\r{text}{pad}\r" if pad else f"\r{text}")
            self.width = len(plain)

    def stop(self) -> None:
        """Stop the thread and erase the line, leaving the cursor at its start."""
        with self.lock:
            self.done.set()
            self._erase()
        self.thread.join()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Erase the line while the caller writes; the next tick draws it again, below."""
        with self.lock:
            self._erase()
            yield

    def _erase(self) -> None:
        if self.width:
            self._write("\r" + " " * self.width + "\r")
            self.width = 0

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken terminal: progress is optional
            self.done.set()


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


class StderrReporter:
    """Progress on stderr: ``phase  detail (seconds)`` per finished phase, notes, and while a long
    phase runs, on a terminal, a live line with its elapsed time.

    Use it as a context manager, so that a live line is erased when the command ends, also by an
    error.
    """

    def __init__(self, *, quiet: bool, live: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.color = use_color(self.stream)
        self.live = live and not quiet and is_terminal(self.stream)
        self._line: LiveLine | None = None

    def start(self, phase: str) -> None:
        """A long phase begins; its ``step()`` (or ``stop()``) ends the live line."""
        self.stop()
        if self.live:
            self._line = LiveLine(phase, self.stream, color=self.color).start()

    def step(self, phase: str, detail: str, seconds: float) -> None:
        self.stop()
        if not self.quiet:
            self._echo(f"{label(phase, color=self.color)} {detail} ({seconds:.2f}s)")

    def note(self, message: str) -> None:
        if not self.quiet:
            self.echo(f"{prefix('note', color=self.color)} {message}")

    def echo(self, message: str) -> None:
        """A line on stderr, written above the live line (which is redrawn on its next tick)."""
        if self._line is None:
            self._echo(message)
            return
        with self._line.paused():
            self._echo(message)

    def _echo(self, message: str) -> None:
        if self.stream is None:  # started with stderr closed (2>&-)
            return
        try:
            self.stream.write(f"{message if self.color else unstyle(message)}\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr: progress is optional
            pass

    def stop(self) -> None:
        """Erase the live line, if one is drawn."""
        if self._line is not None:
            self._line.stop()
            self._line = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
