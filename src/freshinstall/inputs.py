"""Inputs of a build that are not files: the VCS state and the environment backends read.

These go into the fingerprint as "extras", so that a new commit or tag rebuilds a project whose
version comes from git, and setting SETUPTOOLS_SCM_PRETEND_VERSION rebuilds too; a project with
a static version does not rebuild after a commit that changes no file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from freshinstall._process import last_line, run
from freshinstall.errors import CommandError, FingerprintError, ToolNotFoundError
from freshinstall.project import table

#: Build requirements that derive the version from version control.
VCS_PLUGINS = frozenset(
    {
        "setuptools-scm",
        "hatch-vcs",
        "versioningit",
        "poetry-dynamic-versioning",
        "setuptools-git-versioning",
        "dunamai",
        "vcs-versioning",
        "uv-dynamic-versioning",
        "pbr",
        "flit-scm",
        "dynamic-versioning",
    }
)

#: Environment variables that build backends and version plugins read.
ENV_PREFIXES = (
    "SETUPTOOLS_SCM_",
    "VCS_VERSIONING_",
    "HATCH_BUILD_",
    "PDM_BUILD_",
    "POETRY_DYNAMIC_VERSIONING_",
    "VERSIONINGIT_",
    "PBR_",
    "SOURCE_DATE_EPOCH",
)


def uses_vcs_version(pyproject: Mapping[str, Any]) -> bool:
    """Whether the version comes from version control, judged from pyproject.toml alone."""
    requires = table(pyproject, "build-system").get("requires", [])
    for requirement in requires if isinstance(requires, list) else []:
        name = _requirement_name(requirement)
        if name in VCS_PLUGINS:
            return True
    tool = table(pyproject, "tool")
    if {
        "setuptools_scm",
        "setuptools-scm",
        "versioningit",
        "poetry-dynamic-versioning",
    } & tool.keys():
        return True
    hatch_source = table(pyproject, "tool", "hatch", "version").get("source")
    pdm_source = table(pyproject, "tool", "pdm", "version").get("source")
    return hatch_source == "vcs" or pdm_source == "scm"


def _requirement_name(requirement: object) -> str:
    text = str(requirement).strip().lower()
    for stop in "<>=!~;[ @(":
        text = text.split(stop, 1)[0]
    return text.replace("_", "-").replace(".", "-")


def extras(root: Path, pyproject: Mapping[str, Any]) -> dict[str, str]:
    """The non-file inputs of a build of the project at ``root``."""
    found = {
        f"env:{name}": value for name, value in os.environ.items() if name.startswith(ENV_PREFIXES)
    }
    if uses_vcs_version(pyproject):
        found["vcs"] = vcs_state(root)
    return found


def vcs_state(root: Path) -> str:
    """The commit, the nearest tag and which tracked files differ: what a version plugin reads.

    Read-only: GIT_OPTIONAL_LOCKS=0 keeps ``git status`` from refreshing the user's index.
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        describe = run(
            ["git", "describe", "--tags", "--long", "--always", "--abbrev=40"], cwd=root, env=env
        ).strip()
        status = run(
            ["git", "status", "--porcelain=v1", "-z", "--untracked-files=no"], cwd=root, env=env
        )
    except ToolNotFoundError:
        return "no git"
    except CommandError as error:
        if "not a git repository" in error.output or "No names found" in error.output:
            return "no repository"
        raise FingerprintError(
            f"git could not describe {root}: {last_line(error.output)}"
        ) from None
    return f"{describe}\n{status}"
