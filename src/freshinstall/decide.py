"""The decision: build, install, or nothing, and why, in the user's words.

Pure functions of the current fingerprint, the stamp and the installed RECORD file; the stamp
is data, so paths it names are read only where an install put them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from freshinstall import buildenv, fingerprint, stamp
from freshinstall.config import Settings

UP_TO_DATE = "up to date"


@dataclass(frozen=True)
class Decision:
    build: bool
    install: bool
    reason: str
    #: For `status --json`, where the reason is not about the files, the wheel or the install.
    code: str = ""


def decide(
    current: str,
    previous: stamp.Stamp | None,
    key: tuple[str, str],
    options: tuple[str, ...],
    dist_dir: Path,
    *,
    force: bool = False,
    python: str | None = None,
    links_out: Sequence[str] = (),
) -> Decision:
    """Whether to build and whether to install, and why, in the user's words.

    ``python`` is the --python setting: a wheel built for one interpreter is rebuilt when a
    build now would run on another. ``links_out`` (Fingerprint.links_out) are inputs whose
    content the fingerprint cannot see: with any, every run builds.
    """
    if force:
        return Decision(build=True, install=True, reason="--force")
    if links_out:
        reason = (
            f"{links_out[0]} points out of the project, where the build may follow it and the "
            "fingerprint does not, so every run builds (keep what it points at inside the "
            "project)"
        )
        return Decision(build=True, install=True, reason=reason, code="link-out")
    if previous is None:
        return Decision(build=True, install=True, reason="never built by freshinstall")
    if previous.fingerprint != current:
        return Decision(build=True, install=True, reason="the source changed since the last build")
    if previous.interpreter and buildenv.interpreter_changed(previous.interpreter, python):
        reason = f"dist/{previous.wheel} was built for another interpreter"
        return Decision(build=True, install=True, reason=reason, code="interpreter-changed")
    wheel = dist_dir / previous.wheel
    try:
        intact = fingerprint.file_sha256(wheel) == previous.wheel_sha256
    except OSError:
        return Decision(build=True, install=True, reason=f"dist/{previous.wheel} is missing")
    if not intact:
        return Decision(
            build=True, install=True, reason=f"dist/{previous.wheel} changed after the build"
        )
    install = previous.install_for(key)
    if install is None or install.editable or install.wheel_sha256 != previous.wheel_sha256:
        return Decision(build=False, install=True, reason="not installed here yet")
    if install.options != options:
        return Decision(build=False, install=True, reason="the install options changed")
    problem = record_problem(install)
    return Decision(build=False, install=problem is not None, reason=problem or UP_TO_DATE)


def decide_editable(
    metadata: str,
    previous: stamp.Stamp | None,
    key: tuple[str, str],
    options: tuple[str, ...],
    *,
    force: bool = False,
) -> Decision:
    """For an editable install: reinstall only when what shapes the metadata changed."""
    install = previous.install_for(key) if previous else None
    if force:
        reason = "--force"
    elif install is None or not install.editable:
        reason = "not installed here in editable mode yet"
    elif install.metadata != metadata:
        reason = "the project metadata changed"
    elif install.options != options:
        reason = "the install options changed"
    else:
        reason = record_problem(install) or UP_TO_DATE
    return Decision(build=False, install=reason != UP_TO_DATE, reason=reason)


def record_problem(install: stamp.Install) -> str | None:
    record_path = Path(install.record)
    # The stamp is data: read the RECORD only where an install put it (inside its target),
    # and only if it is a plain file, so a crafted stamp cannot make us read anything else.
    if not is_inside(record_path, Path(install.target)) or not record_path.is_file():
        return "the installed copy was removed"
    try:
        record = fingerprint.file_sha256(record_path)
    except OSError:
        return "the installed copy was removed"
    if record != install.record_sha256:
        return "the installed copy was changed by another install"
    return None


def decide_for(
    settings: Settings,
    current: str,
    previous: stamp.Stamp | None,
    key: tuple[str, str],
    options: tuple[str, ...],
    dist_dir: Path,
    *,
    force: bool = False,
    links_out: Sequence[str] = (),
) -> Decision:
    """decide(), or decide_editable() when the settings ask for an editable install."""
    if settings.editable:
        return decide_editable(current, previous, key, options, force=force)
    python = settings.python
    return decide(
        current, previous, key, options, dist_dir, force=force, python=python, links_out=links_out
    )


def is_inside(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except (OSError, ValueError):
        return False
