"""The one exception root, and the small errors that carry what the user needs to know."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # not imported at run time: see early.py
    from collections.abc import Sequence


class FreshinstallError(Exception):
    """Base of every error freshinstall reports; ``str()`` is the one-line reason."""

    #: Output captured from the tool that failed, replayed before the reason.
    output: str = ""


class ProjectError(FreshinstallError):
    """The path is not a buildable Python project, or its metadata is malformed."""


class FingerprintError(FreshinstallError):
    """A file of the source tree could not be listed or read."""


class StampError(FreshinstallError):
    """The stamp or lock in dist/ could not be written."""


class ToolNotFoundError(FreshinstallError):
    """A program freshinstall needs (uv, git, pip, pipx) is not installed."""

    def __init__(self, tool: str, hint: str = "") -> None:
        self.tool = tool
        self.hint = hint
        super().__init__(tool)

    def __str__(self) -> str:
        text = f"{self.tool} was not found"
        return f"{text}; {self.hint}" if self.hint else text


class CommandError(FreshinstallError):
    """A subprocess exited non-zero; ``output`` holds what it printed."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        super().__init__(argv, returncode)

    def __str__(self) -> str:
        program = self.argv[0].rsplit("/", 1)[-1] if self.argv else "command"
        return f"{program} exited with code {self.returncode}"


class _StepError(FreshinstallError):
    """A step failed; ``output`` holds what the failing tool printed."""

    step = "step"

    def __init__(self, reason: str, output: str = "") -> None:
        self.reason = reason
        self.output = output
        super().__init__(reason)

    def __str__(self) -> str:
        return f"{self.step} failed: {self.reason}"


class BuildError(_StepError):
    """The PEP 517 build failed; the previous install and stamp are untouched."""

    step = "build"


class InstallError(_StepError):
    """The installer failed or cannot install this wheel."""

    step = "install"
