"""What an editable install depends on: the project's metadata, not its code.

An editable install imports the code from the source tree, so code edits need no reinstall.
It must be redone when what the installer wrote from the metadata changes: console scripts,
dependencies, the version, and the set of top-level packages (setuptools' editable finder maps
them at install time). Those come from pyproject.toml, setup.cfg and setup.py, from the files
that dynamic metadata reads (``file:``/``attr:`` in setuptools, hatch's and pdm's version path,
flit's module docstring and ``__version__``), and from the version-control state.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from freshinstall import fingerprint
from freshinstall.project import Project, table

METADATA_FILES = frozenset({"pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in"})


def metadata_fingerprint(
    project: Project, current: fingerprint.Fingerprint
) -> fingerprint.Fingerprint:
    """The part of ``current`` (the whole tree's fingerprint) that shapes the metadata."""
    wanted = METADATA_FILES | referenced_files(project.pyproject)
    files = [entry for entry in current.files if entry.path in wanted]
    extras = {**current.extras, "top-level packages": " ".join(top_level_packages(current.files))}
    return fingerprint.combine(files, extras)


def referenced_files(pyproject: Mapping[str, Any]) -> frozenset[str]:
    """Files that dynamic metadata is read from, as paths relative to the project root."""
    tool = table(pyproject, "tool")
    found: set[str] = set()
    for value in table(tool, "setuptools", "dynamic").values():
        if isinstance(value, dict):
            files = value.get("file", [])
            found.update(
                [files] if isinstance(files, str) else [f for f in files if isinstance(f, str)]
            )
            if isinstance(value.get("attr"), str):
                found.update(_module_files(value["attr"].rpartition(".")[0]))
    for version in (table(tool, "hatch", "version"), table(tool, "pdm", "version")):
        if isinstance(version.get("path"), str):
            found.add(version["path"])
    backend = table(pyproject, "build-system").get("build-backend", "")
    if isinstance(backend, str) and backend.startswith("flit"):
        module = table(tool, "flit", "module").get("name") or table(pyproject, "project").get(
            "name", ""
        )
        if isinstance(module, str):
            found.update(_module_files(module.replace("-", "_")))
    return frozenset(os.path.normpath(path).replace(os.sep, "/") for path in found)


def top_level_packages(entries: Iterable[fingerprint.FileEntry]) -> list[str]:
    """Top-level import packages (in the root or src/): adding one needs a reinstall."""
    packages = set()
    for entry in entries:
        parts = entry.path.split("/")
        if parts[0] == "src":
            parts = parts[1:]
        if len(parts) == 2 and parts[1] == "__init__.py":  # noqa: PLR2004 - package/__init__.py
            packages.add(parts[0])
    return sorted(packages)


def _module_files(module: str) -> list[str]:
    base = module.replace(".", "/")
    return [
        f"{prefix}{base}{suffix}" for prefix in ("", "src/") for suffix in (".py", "/__init__.py")
    ]
