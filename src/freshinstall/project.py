"""What the project directory says about itself: where it is and what pyproject.toml declares."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from freshinstall.errors import ProjectError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Project(NamedTuple):
    """A Python project directory and the parts of its pyproject.toml freshinstall reads.

    NamedTuples, not dataclasses, on the path of ``freshinstall fingerprint``: importing
    dataclasses (and with it inspect) is a measurable part of that command's start-up.
    """

    root: Path
    #: The parsed pyproject.toml, empty for a legacy setup.py-only project.
    pyproject: Mapping[str, Any] = {}
    #: The bytes of pyproject.toml that were parsed; None without one.
    source: bytes | None = None
    #: Whether it had a setup.py when it was loaded (which makes some tables optional).
    setup_py: bool = False

    @property
    def name(self) -> str | None:
        """The static ``[project].name``, or None when only the build can tell."""
        name = self.pyproject.get("project", {}).get("name")
        return name if isinstance(name, str) else None

    @property
    def dist_dir(self) -> Path:
        return self.root / "dist"


def table(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    """The nested table ``data[key1][key2]...``; empty where a level is missing or not a table."""
    for key in keys:
        value = data.get(key)
        data = value if isinstance(value, dict) else {}
    return data


def load_project(path: str | os.PathLike[str]) -> Project:
    """Check that ``path`` is a buildable project directory and read its pyproject.toml."""
    root = Path(path)
    if not root.exists():
        raise ProjectError(f"{os.fsdecode(path)}: no such directory")
    if not root.is_dir():
        raise ProjectError(f"{os.fsdecode(path)}: not a directory")
    root = root.resolve()
    pyproject_path = root / "pyproject.toml"
    has_setup_py = (root / "setup.py").is_file()
    if not pyproject_path.is_file():
        if has_setup_py:
            return Project(root, {}, setup_py=True)
        raise ProjectError(f"{root}: not a Python project (no pyproject.toml or setup.py)")
    try:
        source = pyproject_path.read_bytes()
        data = tomllib.loads(source.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ProjectError(f"{pyproject_path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ProjectError(f"{pyproject_path}: cannot read: {error.strerror}") from None
    _validate(pyproject_path, data, has_setup_py=has_setup_py)
    return Project(root, data, source, has_setup_py)


def _validate(path: Path, data: dict[str, Any], *, has_setup_py: bool) -> None:
    build_system = data.get("build-system")
    if build_system is not None:
        if not isinstance(build_system, dict):
            raise ProjectError(f"{path}: [build-system] must be a table")
        requires = build_system.get("requires")
        if requires is not None and not (
            isinstance(requires, list) and all(isinstance(item, str) for item in requires)
        ):
            raise ProjectError(f"{path}: [build-system].requires must be a list of strings")
    table = data.get("project")
    if table is None:
        if build_system is None and not has_setup_py:
            raise ProjectError(f"{path}: no [project] or [build-system] table, and no setup.py")
        return
    if not isinstance(table, dict):
        raise ProjectError(f"{path}: [project] must be a table")
    dynamic = table.get("dynamic", [])
    if not (isinstance(dynamic, list) and all(isinstance(item, str) for item in dynamic)):
        raise ProjectError(f"{path}: [project].dynamic must be a list of strings")
    name = table.get("name")
    if name is None and "name" not in dynamic:
        raise ProjectError(f"{path}: [project] has no name")
    if name is not None and not isinstance(name, str):
        raise ProjectError(f"{path}: [project].name must be a string")
