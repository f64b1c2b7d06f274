"""Installers: put one wheel where the user runs it, and say where its RECORD ended up.

install.py knows nothing about fingerprints or stamps; it installs a wheel and reports the
installed distribution's RECORD file, which the caller uses to notice later removals.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from freshinstall._process import last_line, run
from freshinstall.errors import CommandError, InstallError, ToolNotFoundError


@dataclass(frozen=True)
class InstallResult:
    """Where a wheel was installed; ``record`` is the installed distribution's RECORD file."""

    installer: str
    target: str
    record: Path
    seconds: float


@functools.cache
def find_uv() -> str:
    """A ``uv`` on PATH first (the user's own), else the binary of the ``uv`` PyPI package.

    That binary sits beside our interpreter when freshinstall is installed in a virtual
    environment (uv tool, pipx, a venv): looking there first spares importing ``uv``.
    """
    found = shutil.which("uv")
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "uv.exe" if os.name == "nt" else "uv")
    if os.access(beside, os.X_OK):
        return beside
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        raise ToolNotFoundError("uv", "install it with `pip install uv`") from None


class UvToolInstaller:
    """``uv tool install``: one isolated environment per tool, its scripts on uv's bin dir."""

    name = "uv-tool"

    def __init__(
        self,
        *,
        python: str | None = None,
        with_: tuple[str, ...] = (),
        stream: bool = False,
    ) -> None:
        self.python = python
        self.with_ = with_
        self.stream = stream

    @property
    def options(self) -> tuple[str, ...]:
        """The options that shape the install; part of the target's identity in the stamp."""
        options: list[str] = []
        if self.python:
            options += ["--python", self.python]
        for requirement in self.with_:
            options += ["--with", requirement]
        return tuple(options)

    def locator(self) -> str:
        """Everything uv resolves its tool directory from, so a stamped target can be reused.

        uv's documented rule: ``UV_TOOL_DIR``, else ``$XDG_DATA_HOME/uv/tools``, else
        ``~/.local/share/uv/tools`` (``%APPDATA%\\uv\\data\\tools`` on Windows); a relative
        path is relative to the working directory. Asking ``uv tool dir`` costs a subprocess
        on every no-change run, which this avoids.
        """
        names = ("UV_TOOL_DIR", "XDG_DATA_HOME", "HOME", "APPDATA")
        values = [f"{name}={os.environ.get(name, '')}" for name in names]
        if not os.path.isabs(os.environ.get("UV_TOOL_DIR") or "/"):
            values.append(f"cwd={os.getcwd()}")
        return "\n".join(values)

    def target(self) -> str:
        """uv's tool directory, as uv itself resolves it (UV_TOOL_DIR, XDG_DATA_HOME, ...)."""
        try:
            return run([find_uv(), "tool", "dir"]).strip()
        except CommandError as error:
            raise InstallError(
                f"`uv tool dir` failed: {error.output.strip()}", error.output
            ) from None

    def install(self, wheel: Path, project: str) -> InstallResult:
        start = time.monotonic()
        dist_info = wheel_dist_info(wheel)
        if not wheel_console_scripts(wheel):
            raise InstallError(
                f"{project} declares no console scripts, so `uv tool install` has nothing to "
                "install; use --installer uv-pip to install it into an environment"
            )
        argv = [
            find_uv(),
            "tool",
            "install",
            "--force",
            "--reinstall-package",
            project,
            *self.options,
            str(wheel),
        ]
        try:
            run(argv, stream=self.stream)
        except CommandError as error:
            raise InstallError(
                f"uv tool install: {last_line(error.output)}", error.output
            ) from None
        target = self.target()
        from packaging.utils import canonicalize_name

        env_dir = Path(target) / canonicalize_name(project)
        record = find_record(env_dir, dist_info)
        if record is None:
            raise InstallError(f"uv reported success but {dist_info} is not in {env_dir}")
        return InstallResult(self.name, target, record, time.monotonic() - start)


def find_record(env_dir: Path, dist_info: str) -> Path | None:
    """The RECORD of ``dist_info`` in the virtual environment at ``env_dir``."""
    import glob

    patterns = [
        os.path.join(
            glob.escape(str(env_dir)), "lib", "python*", "site-packages", dist_info, "RECORD"
        ),
        os.path.join(glob.escape(str(env_dir)), "Lib", "site-packages", dist_info, "RECORD"),
    ]
    for pattern in patterns:
        for match in sorted(glob.glob(pattern)):
            return Path(match)
    return None


def wheel_dist_info(wheel: Path) -> str:
    """The ``NAME-VERSION.dist-info`` directory name inside a wheel."""
    import zipfile

    try:
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                top, _, rest = name.partition("/")
                if top.endswith(".dist-info") and rest == "RECORD":
                    return top
    except (OSError, zipfile.BadZipFile) as error:
        raise InstallError(f"{wheel.name} is not a readable wheel: {error}") from None
    raise InstallError(f"{wheel.name} has no .dist-info/RECORD")


def wheel_console_scripts(wheel: Path) -> list[str]:
    """The console script names a wheel declares in its entry_points.txt."""
    import configparser
    import zipfile

    dist_info = wheel_dist_info(wheel)
    with zipfile.ZipFile(wheel) as archive:
        try:
            text = archive.read(f"{dist_info}/entry_points.txt").decode("utf-8")
        except KeyError:
            return []
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return list(parser["console_scripts"]) if parser.has_section("console_scripts") else []
