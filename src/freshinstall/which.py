"""What actually runs when a user types a command: the executables on PATH in the order a shell
tries them, the copy each belongs to, the interpreter a console script's shebang names, and
where that interpreter imports the package from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from freshinstall._process import last_line, run
from freshinstall.errors import CommandError, FreshinstallError, ToolNotFoundError
from freshinstall.findings import INSTALLER_OF, Finding, add_to_path, uninstall
from freshinstall.installed import Copy

#: Asks an interpreter what it is and where it imports each top-level name in argv from.
_PROBE = """
import importlib.util, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        spec = None
    places = list(spec.submodule_search_locations or []) if spec else []
    found[name] = places[0] if places else (spec.origin or "") if spec else ""
print(json.dumps({"python": sys.executable, "version": sys.version.split()[0], "imports": found}))
"""


class ProbeError(FreshinstallError):
    """An interpreter could not be run or asked."""


def on_path(command: str, path: str | None = None) -> list[Path]:
    """Every executable called ``command`` on PATH, in the order a shell tries them."""
    found = []
    seen = set()
    for directory in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        if not directory or directory in seen:
            continue
        seen.add(directory)
        candidate = Path(directory) / command
        if candidate.is_file() and os.access(candidate, os.X_OK):
            found.append(candidate)
    return found


def script_interpreter(script: Path) -> Path | None:
    """The interpreter a console script's shebang names (also pip's ``/bin/sh`` trampoline)."""
    try:
        with script.open("rb") as file:
            head = file.read(1024).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    if not head or not head[0].startswith("#!"):
        return None
    words = head[0][2:].split()
    if words and os.path.basename(words[0]).startswith("python"):
        return Path(words[0])
    for line in head[1:3]:  # pip, for long paths: '''exec' /long/path/python "$0" "$@"
        if line.startswith("'''exec'"):
            parts = line.split()
            return Path(parts[1]) if len(parts) > 1 else None
    return None


def is_inside(path: Path, directory: Path) -> bool:
    """Whether ``path``, with symlinks resolved, lies in ``directory`` (resolved too)."""
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except OSError:
        return False


@dataclass(frozen=True)
class Probe:
    """What an interpreter says about itself and where it imports each name from."""

    python: str
    version: str
    #: top-level name -> the package directory or module file it is imported from ("": nowhere)
    imports: Mapping[str, str]


def probe(python: Path, names: Sequence[str], cwd: Path) -> Probe:
    """Run ``python`` from ``cwd`` and ask where it imports ``names`` from.

    ``cwd`` should be the scripts directory: ``-c`` puts the working directory first on
    sys.path, as a console script puts its own directory. The environment is passed on as it
    is, so PYTHONPATH and ``.pth`` files affect the answer exactly as they affect the tool.
    """
    try:
        output = run([python, "-c", _PROBE, *names], cwd=cwd if cwd.is_dir() else None)
        data = json.loads(output.strip().splitlines()[-1])
        return Probe(str(data["python"]), str(data["version"]), dict(data["imports"]))
    except ToolNotFoundError:
        raise ProbeError(f"{python} does not exist") from None
    except CommandError as error:
        raise ProbeError(f"{python} does not run: {last_line(error.output)}") from None
    except (ValueError, IndexError, KeyError, TypeError):
        raise ProbeError(f"{python} did not answer as expected") from None


def check_command(
    script: str, copies: Sequence[Copy], installer: str, name: str
) -> tuple[str | None, list[Finding]]:
    """What a shell runs for ``script``, and a finding when that is not the copy meant to run:
    the one ``installer`` (the configured freshinstall installer) puts there, else the first
    copy whose scripts are meant to be on PATH."""
    hits = on_path(script)
    runs = str(hits[0]) if hits else None
    meant = _meant(copies, installer)
    owners = [_owner(hit, copies) for hit in hits]
    if meant is None or (owners and owners[0] is meant) or script not in meant.scripts:
        return runs, []  # a script the copy lacks is a scripts-differ finding, not a PATH one
    ours = next((hit for hit, owner in zip(hits, owners, strict=True) if owner is meant), None)
    if ours is None:
        instead = f"; {hits[0]} runs instead" if hits else ""
        return runs, [
            Finding(
                "not-on-path",
                f"`{script}` of {meant.label} is not on PATH{instead}",
                f"typing `{script}` does not run the installed copy",
                add_to_path(meant),
            )
        ]
    owner = owners[0]
    return runs, [
        Finding(
            "shadowed",
            f"`{script}` runs {hits[0]}"
            + (f" ({owner.label})" if owner else "")
            + f", which comes before {ours} on PATH",
            "the shell runs that other copy, not the one you installed",
            uninstall(owner, name) if owner else f'export PATH="{ours.parent}:$PATH"',
            (str(hits[0]),),
        )
    ]


def _meant(copies: Sequence[Copy], installer: str) -> Copy | None:
    on_path = {os.path.abspath(d) for d in os.environ.get("PATH", "").split(os.pathsep) if d}
    candidates = [
        copy
        for copy in copies
        if copy.installer != "environment" or os.path.abspath(copy.scripts_dir) in on_path
    ]
    preferred = [copy for copy in candidates if INSTALLER_OF[copy.installer] == installer]
    chosen = preferred or candidates
    return chosen[0] if chosen else None


def _owner(hit: Path, copies: Sequence[Copy]) -> Copy | None:
    """The copy an executable belongs to: it links into the copy, or its shebang names the
    copy's interpreter (compared unresolved: a venv's python is a link to the base one)."""
    interpreter = script_interpreter(hit)
    for copy in copies:
        if is_inside(hit, copy.scripts_dir):
            return copy
        if interpreter is not None and os.path.abspath(interpreter.parent) == os.path.abspath(
            copy.scripts_dir
        ):
            return copy
    return None
