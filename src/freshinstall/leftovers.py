"""Files that earlier in-tree builds left in the project, and that make plain installs stale.

setuptools never empties ``build/lib`` and zips it into every wheel it builds in the tree
(``pip install .``, ``pipx install .`` and ``uv tool install .`` all build there); it copies a
module only when the source is newer, so an edit that restored an old mtime stays unseen too.
It re-reads ``*.egg-info/SOURCES.txt``, which can carry files that no longer exist. Wheels of
the project in dist/ other than the current build get installed by ``pip install dist/*.whl``
and ``--find-links dist``. freshinstall builds from a clean copy and is not affected by any of
them, and never deletes them; ``doctor`` names them so that the user can.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from freshinstall import fingerprint
from freshinstall.findings import Finding, count, names
from freshinstall.installed import Contents, InstalledError, wheel_contents


@dataclass(frozen=True)
class Leftover:
    """One leftover: ``code`` says which kind, ``where`` is relative to the project root."""

    code: str
    where: str
    #: build-lib: files not in the source; egg-info: listed files that do not exist (relative
    #: to the project root); stale-wheels: the wheels' file names
    paths: tuple[str, ...]
    #: build-lib only: files whose content differs from the source
    outdated: tuple[str, ...] = ()


def find(
    root: Path, inputs: Collection[str], fresh: Contents, fresh_wheel: str, given: str
) -> list[Finding]:
    """Every leftover in the project at ``root`` (``inputs``: its fingerprinted files), as
    findings whose fixes name paths under ``given``, the project path as the user typed it."""
    found = [
        *build_lib(root, inputs, fresh),
        *egg_info(root, inputs),
        *stale_wheels(root / "dist", fresh, fresh_wheel),
    ]
    return [describe(item, given) for item in found]


def describe(item: Leftover, given: str) -> Finding:
    """What the leftover breaks, and the command that removes it."""
    where = os.path.normpath(os.path.join(given, item.where))
    if item.code == "build-lib":
        parts = []
        if item.paths:
            parts.append(f"{count(item.paths)} not in the source ({names(item.paths)})")
        if item.outdated:
            parts.append(f"old content in {count(item.outdated)} ({names(item.outdated)})")
        return Finding(
            "build-lib",
            f"{item.where} holds " + " and ".join(parts),
            "`pip install .`, `pipx install .` and `uv tool install .` put them in every wheel",
            shlex.join(["rm", "-rf", where]),
            (*item.paths, *item.outdated),
        )
    if item.code == "egg-info":
        return Finding(
            "egg-info",
            f"{item.where}/SOURCES.txt lists {count(item.paths)} no longer in the tree: "
            + names(item.paths),
            "setuptools re-reads it and can carry deleted files into new builds",
            shlex.join(["rm", "-rf", where]),
            item.paths,
        )
    return Finding(
        "stale-wheels",
        f"dist/ holds {count(item.paths, 'other wheel')} of the project: {names(item.paths)}",
        "`pip install dist/*.whl` or `--find-links dist` can install old code from them",
        shlex.join(["rm", *(os.path.join(where, name) for name in item.paths)]),
        item.paths,
    )


def build_lib(root: Path, inputs: Collection[str], fresh: Contents) -> Iterator[Leftover]:
    """``build/lib*`` directories holding files a fresh build does not have, or has otherwise."""
    if "build" not in fingerprint.root_output_dirs(root):
        return  # a flat-layout package called build: source, not output
    try:
        libs = sorted(p for p in (root / "build").iterdir() if p.name.startswith("lib"))
    except OSError:
        return
    for lib in libs:
        where = f"build/{lib.name}"
        if not lib.is_dir() or any(path.startswith(f"{where}/") for path in inputs):
            continue  # git tracks it: it is source
        extra, outdated = [], []
        for relpath in _files(lib):
            wanted = fresh.files.get(relpath)
            if wanted is None:
                extra.append(relpath)
            elif _sha256(lib / relpath) != wanted:
                outdated.append(relpath)
        if extra or outdated:
            yield Leftover("build-lib", where, tuple(extra), tuple(outdated))


def egg_info(root: Path, inputs: Collection[str]) -> Iterator[Leftover]:
    """``*.egg-info/SOURCES.txt`` (at the root or one level down) listing files now gone."""
    found = sorted({*root.glob("*.egg-info"), *root.glob("*/*.egg-info")})
    for directory in found:
        where = directory.relative_to(root).as_posix()
        if where.split("/", 1)[0] in {"build", "dist"} or f"{where}/SOURCES.txt" in inputs:
            continue
        try:
            listed = (directory / "SOURCES.txt").read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        gone = [line for line in listed if line.strip() and not (root / line.strip()).exists()]
        if gone:
            yield Leftover("egg-info", where, tuple(gone))


def stale_wheels(dist_dir: Path, fresh: Contents, fresh_wheel: str) -> Iterator[Leftover]:
    """This project's wheels in dist/ other than one identical to a fresh build."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    stale = []
    for wheel in sorted(dist_dir.glob("*.whl")):
        try:
            name = parse_wheel_filename(wheel.name)[0]
        except InvalidWheelFilename:
            continue
        if name != canonicalize_name(fresh.name):
            continue  # someone else's wheel
        if wheel.name == fresh_wheel and _same(wheel, fresh):
            continue
        stale.append(wheel.name)
    if stale:
        yield Leftover("stale-wheels", "dist", tuple(stale))


def _same(wheel: Path, fresh: Contents) -> bool:
    try:
        return wheel_contents(wheel) == fresh
    except InstalledError:
        return False


def _files(directory: Path) -> Iterator[str]:
    for parent, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(parent, name).relative_to(directory).as_posix()


def _sha256(path: Path) -> str:
    try:
        return fingerprint.file_sha256(path)
    except OSError:
        return ""
