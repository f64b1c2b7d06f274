"""What ``doctor`` reports: one finding per problem, and the commands that fix an installed copy."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from freshinstall.installed import Copy

#: The freshinstall installer that (re)installs each kind of copy.
INSTALLER_OF = {"uv tool": "uv-tool", "pipx": "pipx", "environment": "pip"}


@dataclass(frozen=True)
class Finding:
    """One problem: what is wrong, why it matters, and the command that fixes it."""

    code: str
    message: str
    why: str
    fix: str
    #: the files, wheels or executables the message names (all of them, also past the shown few)
    paths: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.code}: {self.message} -- {self.why} -- fix: {self.fix}"


def reinstall(copy: Copy, installer: str, project: str, *, force: bool = False) -> str:
    """The command that replaces ``copy`` with a fresh build (``installer``: the configured one;
    ``force`` when the stamp vouches for the copy, so that a plain run would do nothing)."""
    wanted = INSTALLER_OF[copy.installer]
    if copy.installer == "environment" and (installer == "uv-pip" or not copy.has_pip):
        wanted = "uv-pip"
    argv = ["freshinstall", "--force"] if force else ["freshinstall"]
    if wanted != installer:
        argv += ["--installer", wanted]
    if copy.installer == "environment":
        argv += ["--python", str(copy.python)]
    return shlex.join([*argv, project])


def uninstall(copy: Copy, name: str) -> str:
    if copy.installer == "uv tool":
        return shlex.join(["uv", "tool", "uninstall", name])
    if copy.installer == "pipx":
        return shlex.join(["pipx", "uninstall", name])
    return shlex.join([str(copy.python), "-m", "pip", "uninstall", name])


def add_to_path(copy: Copy) -> str:
    """The command that puts ``copy``'s console scripts on PATH."""
    if copy.installer == "uv tool":
        return "uv tool update-shell"
    if copy.installer == "pipx":
        return "pipx ensurepath"
    return f'export PATH="{copy.scripts_dir}:$PATH"'


def count(items: Sequence[object], noun: str = "file") -> str:
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"


def names(items: Sequence[str], limit: int = 5) -> str:
    """The first few of ``items``; the finding's ``paths`` hold them all."""
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown
