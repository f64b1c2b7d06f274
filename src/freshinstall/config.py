"""Settings: ``[tool.freshinstall]`` in pyproject.toml, FRESHINSTALL_* variables, the command line.

Precedence: command line > environment > pyproject.toml > defaults. An unknown key or a value
of the wrong type is an error that names the key and where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from freshinstall.errors import ProjectError
from freshinstall.project import Project

#: The --installer choices; the first is the default.
INSTALLERS = ("uv-tool", "uv-pip", "pip", "pipx")

ConfigSettings = Mapping[str, "str | list[str]"]


class Settings(NamedTuple):
    """Everything that shapes one run besides the project itself (see project.Project)."""

    installer: str = "uv-tool"
    python: str | None = None
    with_: tuple[str, ...] = ()
    editable: bool = False
    installer_args: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    config_settings: Mapping[str, str | list[str]] = {}


#: pyproject key -> (Settings field, kind)
KEYS: dict[str, tuple[str, str]] = {
    "installer": ("installer", "installer"),
    "python": ("python", "str"),
    "with": ("with_", "list"),
    "editable": ("editable", "bool"),
    "installer-args": ("installer_args", "list"),
    "include": ("include", "list"),
    "exclude": ("exclude", "list"),
    "config-settings": ("config_settings", "table"),
}

ENV_PREFIX = "FRESHINSTALL_"
#: FRESHINSTALL_* variables that are not settings of a run.
OTHER_VARIABLES = frozenset({"FRESHINSTALL_WATCH_POLL"})
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def resolve(
    pyproject_path: Path,
    pyproject: Mapping[str, Any],
    environ: Mapping[str, str],
    command_line: Mapping[str, Any],
) -> Settings:
    """Merge the three sources; ``command_line`` holds only options the user gave."""
    values: dict[str, Any] = {}
    values.update(_from_pyproject(pyproject_path, pyproject))
    values.update(_from_environment(environ))
    values.update({key: value for key, value in command_line.items() if value is not None})
    return Settings(**values)


def _from_pyproject(path: Path, pyproject: Mapping[str, Any]) -> dict[str, Any]:
    table = pyproject.get("tool", {}).get("freshinstall", {})
    if not isinstance(table, dict):
        raise ProjectError(f"{path}: [tool.freshinstall] must be a table")
    values = {}
    for key, value in table.items():
        if key not in KEYS:
            known = ", ".join(KEYS)
            raise ProjectError(f"{path}: unknown key tool.freshinstall.{key} (known keys: {known})")
        name, kind = KEYS[key]
        values[name] = _check(value, kind, f"{path}: tool.freshinstall.{key}")
    return values


def _check(value: Any, kind: str, where: str) -> Any:
    if kind == "installer":
        if value not in INSTALLERS:
            raise ProjectError(f"{where} must be one of {', '.join(INSTALLERS)}, not {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ProjectError(f"{where} must be a string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ProjectError(f"{where} must be true or false")
        return value
    if kind == "list":
        if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            raise ProjectError(f"{where} must be a list of strings")
        return tuple(value)
    if not isinstance(value, dict) or not all(
        isinstance(item, str) or (isinstance(item, list) and all(isinstance(i, str) for i in item))
        for item in value.values()
    ):
        raise ProjectError(f"{where} must be a table of strings or lists of strings")
    return dict(value)


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    known = {env_name(key): key for key in KEYS}
    values: dict[str, Any] = {}
    for variable, text in environ.items():
        if not variable.startswith(ENV_PREFIX) or variable in OTHER_VARIABLES:
            continue
        if variable not in known:
            raise ProjectError(
                f"unknown environment variable {variable} (known: {', '.join(sorted(known))})"
            )
        name, kind = KEYS[known[variable]]
        values[name] = _parse_env(text, kind, variable)
    return values


def _parse_env(text: str, kind: str, variable: str) -> Any:
    if kind == "bool":
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise ProjectError(f"{variable} must be 1 or 0 (true/false), not {text!r}")
    import shlex

    if kind == "list":
        return tuple(shlex.split(text))
    if kind == "table":
        table: dict[str, str] = {}
        for item in shlex.split(text):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ProjectError(f"{variable} must hold KEY=VALUE items, not {item!r}")
            table[key] = value
        return table
    return _check(text, kind, variable)


def parse_config_settings(items: tuple[str, ...]) -> dict[str, str | list[str]]:
    """``-C KEY=VALUE`` options, as pypa/build takes them: a repeated key makes a list."""
    settings: dict[str, str | list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ProjectError(f"--config-setting must be KEY=VALUE, not {item!r}")
        previous = settings.get(key)
        if previous is None:
            settings[key] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            settings[key] = [previous, value]
    return settings


def env_name(key: str) -> str:
    return f"{ENV_PREFIX}{key.upper().replace('-', '_')}"


def load(project: Project, overrides: Mapping[str, object] | None = None) -> Settings:
    """The run's settings: command line > FRESHINSTALL_* > [tool.freshinstall] > defaults."""
    path = project.root / "pyproject.toml"
    return resolve(path, project.pyproject, os.environ, overrides or {})
