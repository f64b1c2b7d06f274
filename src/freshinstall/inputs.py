"""Everything a build of the project depends on, fingerprinted in one place.

Files: fingerprint.list_inputs (git's view of the tree) plus the configured include/exclude
patterns. Beyond files ("extras"): the VCS state for projects versioned from git, so that a new
commit or tag rebuilds them (a project with a static version does not rebuild after a commit
that changes no file), the environment variables backends read (SETUPTOOLS_SCM_PRETEND_VERSION,
SOURCE_DATE_EPOCH, ...), and the backend's config settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from freshinstall import fingerprint, quick, statcache
from freshinstall._process import last_line, run_bytes
from freshinstall.config import Settings
from freshinstall.errors import CommandError, FingerprintError, ToolNotFoundError
from freshinstall.project import Project, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from freshinstall.early import Early, Entry

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
ENV_PREFIXES = quick.ENV_PREFIXES


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
    env = quick.git_env()
    try:
        describe = run_bytes(["git", *quick.DESCRIBE], cwd=root, env=env)
        status = run_bytes(["git", *quick.STATUS], cwd=root, env=env)
    except ToolNotFoundError:
        return "no git"
    except CommandError as error:
        if "not a git repository" in error.output or "No names found" in error.output:
            return "no repository"
        raise FingerprintError(
            f"git could not describe {root}: {last_line(error.output)}"
        ) from None
    return quick.vcs_text(describe, status)


def fingerprint_project(
    project: Project,
    settings: Settings | None = None,
    *,
    use_cache: bool = True,
    create_dist: bool = False,
    early: Early | None = None,
) -> tuple[list[str], fingerprint.Fingerprint]:
    """The input files of ``project`` and the fingerprint of them plus its non-file inputs.

    ``settings`` adds the configured include/exclude patterns and the build's own inputs:
    the backend's config settings.
    ``use_cache=False`` reads every file and neither reads nor writes the stat cache; with the
    cache, the run also records its answer for ``freshinstall fingerprint`` (see quick.py)
    where that can be re-checked. The cache is written into dist/ only when that exists
    already, or with ``create_dist`` (not for read-only commands such as ``status``).
    ``early``, without the cache: a child that has listed the files, and hashed some already.
    """
    settings = settings or Settings()
    root = project.root
    head_start = early.result(os.fspath(root)) if early is not None and not use_cache else None
    if head_start is not None:
        listed, done, hashed = head_start
        paths = select(root, listed, settings)
        entries = _take(root, paths, listed, done, hashed)
        return paths, _complete(root, fingerprint.combine(entries, _extras(project, settings)))
    # The cache's reference time comes first: whatever changes from here on is racy.
    cache = statcache.StatCache(project.dist_dir) if use_cache else None
    listing = fingerprint.listed_inputs(root)
    paths = select(root, listing.paths, settings)
    found = _extras(project, settings)
    entries = cache.hash_files(root, paths) if cache else statcache.hash_files(root, paths)
    result = fingerprint.combine(entries, found)
    if cache is not None:
        answer = b""
        if (
            listing.output is not None
            and project.source is not None
            and not settings.include
            and len(cache.records) == len(paths)  # every input has a record ...
            and all(map(quick.encodable, cache.records))  # ... that is written
            and _from_project_only(project, settings)
        ):
            known = quick.facts(
                os.fspath(root),
                listing.work_tree,
                vcs="vcs" in found,
                build_package=listing.build_package,
                setup_py=project.setup_py,
            )
            from freshinstall import gitindex

            settled_before = cache.started - quick.MARGIN_NS
            previous = cache.answer if cache.all_hits else b""
            witness = b""
            if listing.work_tree is not None:
                witness = gitindex.witness(
                    os.fspath(root),
                    listing.work_tree,
                    listing.index_identity,
                    cache.records,
                    settled_before,
                    previous,
                )
            vcs = found.get("vcs")
            answer = quick.make_answer(
                known, project.source, listing.output, vcs, witness, result.digest
            )
        cache.save(answer, create=create_dist)
    return paths, _complete(root, result)


def _extras(project: Project, settings: Settings) -> dict[str, str]:
    """The non-file inputs: :func:`extras` and the backend's config settings."""
    found = extras(project.root, project.pyproject)
    if settings.config_settings:
        import json

        found["config-settings"] = json.dumps(settings.config_settings, sort_keys=True)
    return found


def _complete(root: Path, result: fingerprint.Fingerprint) -> fingerprint.Fingerprint:
    """``result`` with its links out of the project."""
    return result.replace(links_out=links_out(root, result.files))


def _take(
    root: Path, paths: list[str], listed: list[str], done: int, hashed: list[Entry]
) -> list[fingerprint.FileEntry]:
    """The entries of ``paths``. From ``hashed``, those of the first ``done`` paths of ``listed``,
    which a child hashed before this process was ready (a path among them without an entry
    vanished, or is not a file); the others are hashed here: the rest of ``listed``, and the
    files that ``include`` adds."""
    entries = [fingerprint.FileEntry(*entry) for entry in hashed]
    if paths is listed:  # no include or exclude pattern
        return entries + statcache.hash_files(root, listed[done:])
    chosen, covered = set(paths), set(listed[:done])
    entries = [entry for entry in entries if entry.path in chosen]
    return entries + statcache.hash_files(root, [path for path in paths if path not in covered])


def _from_project_only(project: Project, settings: Settings) -> bool:
    """Whether the settings that shape the fingerprint are those of pyproject.toml and the
    environment alone, as ``freshinstall fingerprint`` sees them (not --config-setting)."""
    from freshinstall import config

    alone = config.load(project)
    return (settings.exclude, settings.config_settings) == (alone.exclude, alone.config_settings)


def links_out(root: Path, files: Iterable[fingerprint.FileEntry]) -> tuple[str, ...]:
    """Input symlinks that point out of the project, as "path -> target".

    The build copies them as links. An absolute one still resolves from the copy, and so does
    a relative one with enough ``..`` to reach ``/`` (``ln -sr`` makes those); then the backend
    packs what they point at, while the fingerprint only ever hashes the link text (it never
    follows a link out of the tree) and cannot tell when that content changes.
    """
    found = []
    for entry in files:
        if entry.kind == "l":
            try:
                target = os.readlink(os.path.join(root, entry.path))
            except OSError:
                continue
            inside = os.path.normpath(os.path.join(os.path.dirname(entry.path), target))
            if os.path.isabs(target) or inside == ".." or inside.startswith("../"):
                found.append(f"{entry.path} -> {target}")
    return tuple(found)


def select(root: Path, paths: list[str], settings: Settings) -> list[str]:
    """Apply ``include`` (globs of extra files, even ignored ones) and ``exclude`` patterns."""
    if not (settings.include or settings.exclude):
        return paths
    chosen = set(paths)
    for pattern in settings.include:
        chosen.update(
            found.relative_to(root).as_posix() for found in root.glob(pattern) if found.is_file()
        )
    if settings.exclude:
        import fnmatch

        chosen = {
            path
            for path in chosen
            if not any(fnmatch.fnmatchcase(path, pat) for pat in settings.exclude)
        }
    return sorted(chosen, key=os.fsencode)
