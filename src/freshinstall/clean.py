"""Remove what freshinstall can prove is a build artefact of the project, and nothing else.

The proof, artefact by artefact; a path git tracks is never removed, whatever it looks like:

- a wheel in dist/ that the stamp says freshinstall wrote there (the current one, or an earlier
  one recorded when it was replaced), and whose sha256 still matches: a wheel built, copied or
  changed by anyone else stays;
- freshinstall's own files in dist/ (stamp, manifest, leftovers of interrupted writes), but not
  the lock: another run may be waiting on it, and a new lock file beside the old one would let
  two runs hold "the" lock at once. dist/ itself always stays;
- the root's build/, when it holds nothing but the directories setuptools writes there (lib,
  lib.*, bdist.*, temp.*, scripts-*): never a build/ package, never anything else;
- a ``*.egg-info`` directory at the root or one level down (src/), when it holds only the files
  setuptools' egg_info writes and its PKG-INFO names this project.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from freshinstall import fingerprint, stamp
from freshinstall._process import run_bytes
from freshinstall.core import Reporter, _project_lock
from freshinstall.errors import (
    CommandError,
    FingerprintError,
    FreshinstallError,
    ToolNotFoundError,
)
from freshinstall.project import Project

#: What setuptools writes into build/: lib (lib.PLATFORM with extension modules), bdist.PLATFORM,
#: temp.PLATFORM and scripts-PYVER, all directories.
BUILD_ENTRY = re.compile(r"lib|lib\..+|bdist\..+|temp\..+|scripts-.+")
#: The files setuptools' egg_info command writes.
EGG_INFO_FILES = frozenset(
    {
        "PKG-INFO",
        "SOURCES.txt",
        "top_level.txt",
        "dependency_links.txt",
        "entry_points.txt",
        "requires.txt",
        "not-zip-safe",
    }
)
#: A temporary file younger than this may still be being written by a run that takes no lock.
TMP_AGE = 60.0


class CleanError(FreshinstallError):
    """An artefact could not be removed."""


@dataclass(frozen=True)
class Item:
    """A path relative to the project root, and why it is removed or kept."""

    path: str
    reason: str


@dataclass(frozen=True)
class Plan:
    remove: tuple[Item, ...]
    keep: tuple[Item, ...]


def clean(project: Project, reporter: Reporter, *, dry_run: bool = False) -> Plan:
    """Remove the provable artefacts of ``project`` (none with ``dry_run``); return the plan.

    The real run holds the project's lock, so it never races a build; without a lock file
    freshinstall never ran here, and clean does not create one. A dry run changes nothing.
    """
    if dry_run or not (project.dist_dir / stamp.LOCKNAME).is_file():
        found = plan(project)
        if not dry_run:
            _remove(project.root, found.remove)
        return found
    with _project_lock(project, reporter):
        found = plan(project)
        _remove(project.root, found.remove)
    return found


def plan(project: Project) -> Plan:
    """What ``clean`` would remove and what it keeps, with the reasons."""
    tracked = _tracked(project.root)
    remove: list[Item] = []
    keep: list[Item] = []
    for item, removable in (
        *_dist_items(project),
        *_build_items(project.root),
        *_egg_info_items(project),
    ):
        if removable and item.path in tracked:
            keep.append(Item(item.path, "tracked by git"))
        else:
            (remove if removable else keep).append(item)
    return Plan(tuple(remove), tuple(keep))


def _dist_items(project: Project) -> list[tuple[Item, bool]]:
    dist = project.dist_dir
    try:
        names = sorted(os.listdir(dist))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        raise CleanError(f"cannot list {dist}: {error.strerror}") from None
    try:
        current = stamp.read(dist)
    except stamp.StampInvalidError:
        current = None
    ours = dict(current.wheels) if current else {}
    if current and current.wheel:
        ours[current.wheel] = current.wheel_sha256
    items = []
    for name in names:
        path = dist / name
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        regular = stat.S_ISREG(info.st_mode)
        if name == stamp.LOCKNAME:
            items.append((Item(f"dist/{name}", "the lock other runs may be waiting on"), False))
        elif name.startswith(".freshinstall"):
            fresh = name.endswith(".tmp") and time.time() - info.st_mtime < TMP_AGE
            ok = regular and not fresh
            reason = "freshinstall's own file" if ok else "not a file freshinstall left there"
            items.append((Item(f"dist/{name}", reason), ok))
        elif name.endswith(".whl") and name in ours:
            ok = regular and fingerprint.file_sha256(path) == ours[name]
            reason = "a wheel freshinstall built" if ok else "changed since freshinstall wrote it"
            items.append((Item(f"dist/{name}", reason), ok))
        else:
            items.append((Item(f"dist/{name}", "not written by freshinstall"), False))
    return items


def _build_items(root: Path) -> list[tuple[Item, bool]]:
    build = root / "build"
    if not _is_real_dir(build):
        return []
    entries = _scandir(build)
    if not entries:
        return [(Item("build", "empty"), False)]
    for entry in entries:
        if not (BUILD_ENTRY.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)):
            return [(Item("build", f"holds {entry.name}, which setuptools does not write"), False)]
    return [(Item("build", "setuptools' build directory"), True)]


def _egg_info_items(project: Project) -> list[tuple[Item, bool]]:
    parents = [""]
    for entry in _scandir(project.root):
        name = entry.name
        if (
            entry.is_dir(follow_symlinks=False)
            and not name.startswith(".")
            and name not in fingerprint.ROOT_OUTPUT_DIRS
            and name not in fingerprint.OUTPUT_DIRS
            and not name.endswith(".egg-info")
            and not os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))
        ):
            parents.append(f"{name}/")
    names = _project_names(project)
    items = []
    for parent in parents:
        for entry in _scandir(project.root / parent if parent else project.root):
            if entry.name.endswith(".egg-info") and entry.is_dir(follow_symlinks=False):
                reason = _egg_info_problem(Path(entry.path), names)
                item = Item(f"{parent}{entry.name}", reason or "setuptools' egg-info")
                items.append((item, reason is None))
    return items


def _egg_info_problem(path: Path, names: set[str]) -> str | None:
    """Why ``path`` is not provably this project's egg-info, or None when it is."""
    from packaging.utils import canonicalize_name

    entries = list(_scandir(path))
    for entry in entries:
        if entry.name not in EGG_INFO_FILES or not entry.is_file(follow_symlinks=False):
            return f"holds {entry.name}, which setuptools does not write"
    try:
        text = (path / "PKG-INFO").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "has no PKG-INFO"
    except OSError as error:
        return f"cannot read its PKG-INFO ({error.strerror})"
    match = re.search(r"^Name: *(.+?) *$", text, flags=re.MULTILINE)
    name = canonicalize_name(match.group(1)) if match else None
    if name is None or name != canonicalize_name(path.name.removesuffix(".egg-info")):
        return "its PKG-INFO does not name it"
    if names and name not in names:
        return "it belongs to another project"
    return None


def _project_names(project: Project) -> set[str]:
    """The project's canonical name(s): from pyproject.toml, else from the stamp."""
    from packaging.utils import canonicalize_name

    found = {project.name} if project.name else set()
    try:
        current = stamp.read(project.dist_dir)
    except stamp.StampInvalidError:
        current = None
    if current and current.project:
        found.add(current.project)
    return {canonicalize_name(name) for name in found}


def _tracked(root: Path) -> frozenset[str]:
    """Every path git tracks under ``root`` and every directory above one (relative to root)."""
    if fingerprint.find_git_dir(root) is None:
        return frozenset()
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        output = run_bytes(["git", "ls-files", "-z", "--cached"], cwd=root, env=env)
    except ToolNotFoundError:
        raise ToolNotFoundError(
            "git", "clean cannot tell tracked files from build artefacts without it"
        ) from None
    except CommandError as error:
        raise FingerprintError(f"git could not list the files of {root}: {error.output}") from None
    found: set[str] = set()
    for line in os.fsdecode(output).split("\0"):
        path = line
        while path and path not in found:
            found.add(path)
            path = path.rpartition("/")[0]
    return frozenset(found)


def _remove(root: Path, items: tuple[Item, ...]) -> None:
    for item in items:
        path = root / item.path
        try:
            if _is_real_dir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise CleanError(f"cannot remove {path}: {error.strerror}") from None


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        raise CleanError(f"cannot list {path}: {error.strerror}") from None
