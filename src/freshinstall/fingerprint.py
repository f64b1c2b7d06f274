"""Which files can reach the build, and one content hash over all of them.

A file counts when git would show it (tracked, or untracked and not ignored); outside a git
work tree the .gitignore files of the tree still apply. Build outputs never count unless they
are tracked. The hash covers each file's relative path, kind (plain, executable, symlink) and
content, never its timestamps.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from freshinstall._process import run_bytes
from freshinstall.errors import CommandError, FingerprintError, ToolNotFoundError

#: Bumped whenever the hashing changes, so that old stamps stop matching.
SCHEME = "freshinstall-fingerprint-1"
CHUNK = 1 << 20

#: Directories that are tool output wherever they are (unless git tracks files in them).
OUTPUT_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
    }
)
#: Directories that are output only at the project root: `src/build/` is source, and so is a
#: root `build/` that is a package (has an `__init__.py`; setuptools never writes one there).
ROOT_OUTPUT_DIRS = frozenset({"build", "dist"})
OUTPUT_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class FileEntry:
    """One input file: ``kind`` is ``f`` (plain), ``x`` (executable) or ``l`` (symlink)."""

    path: str
    kind: str
    digest: str


@dataclass(frozen=True)
class Fingerprint:
    """The content hash of a source tree plus the non-file inputs that change a build."""

    digest: str
    files: tuple[FileEntry, ...]
    extras: Mapping[str, str] = field(default_factory=dict)

    @property
    def short(self) -> str:
        return self.digest[:12]


def compute(root: Path, extras: Mapping[str, str] | None = None) -> Fingerprint:
    """List the inputs of ``root`` and hash them."""
    return combine([hash_entry(root, path) for path in list_inputs(root)], extras)


def combine(
    entries: Iterable[FileEntry | None], extras: Mapping[str, str] | None = None
) -> Fingerprint:
    """Fold file entries (None for files that vanished) and extra inputs into one digest."""
    files = sorted((entry for entry in entries if entry is not None), key=_sort_key)
    extras = dict(sorted((extras or {}).items()))
    digest = hashlib.sha256(SCHEME.encode() + b"\n")
    for entry in files:
        digest.update(
            b"F\0%s\0%s\0%s\n"
            % (os.fsencode(entry.path), entry.kind.encode(), entry.digest.encode())
        )
    for key, value in extras.items():
        digest.update(b"E\0%s\0%s\n" % (key.encode(), value.encode("utf-8", "surrogateescape")))
    return Fingerprint(digest.hexdigest(), tuple(files), extras)


def _sort_key(entry: FileEntry) -> bytes:
    return os.fsencode(entry.path)


def hash_entry(root: Path, relpath: str, copy_to: Path | None = None) -> FileEntry | None:
    """Hash one file; with ``copy_to``, also copy it there from the very bytes hashed.

    Returns None when the file no longer exists or is not a file or symlink (a FIFO, say).
    """
    source = os.path.join(root, relpath)
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise FingerprintError(f"cannot read {relpath}: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        # A symlink is hashed as a link (its target text), never followed out of the tree.
        target = os.readlink(source)
        if copy_to is not None:
            _make_parent(copy_to)
            os.symlink(target, copy_to)
        return FileEntry(relpath, "l", hashlib.sha256(os.fsencode(target)).hexdigest())
    if not stat.S_ISREG(info.st_mode):
        return None
    kind = "x" if info.st_mode & 0o111 else "f"
    try:
        digest = _hash_contents(source, copy_to, info.st_mode)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise FingerprintError(f"cannot read {relpath}: {error.strerror}") from None
    return FileEntry(relpath, kind, digest)


def _hash_contents(source: str, copy_to: Path | None, mode: int) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as reader:
        if copy_to is None:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
        else:
            _make_parent(copy_to)
            with open(copy_to, "xb") as writer:
                while chunk := reader.read(CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
            os.chmod(copy_to, stat.S_IMODE(mode) | stat.S_IRUSR | stat.S_IWUSR)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of a file's contents, read in fixed-size chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def new_file_mode() -> int:
    """The mode a plain new file gets under the current umask (mkstemp always uses 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _make_parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


def snapshot(
    root: Path, paths: Iterable[str], dest: Path, extras: Mapping[str, str] | None = None
) -> Fingerprint:
    """Copy ``paths`` from ``root`` into ``dest`` and fingerprint the bytes that were copied.

    The build then sees exactly the fingerprinted files, and the fingerprint describes exactly
    what was built, even if the tree changes while we copy.
    """
    return combine([hash_entry(root, path, dest / path) for path in paths], extras)


def list_inputs(root: Path) -> list[str]:
    """Relative paths of the files under ``root`` that can reach a build, sorted."""
    entries = _list_outside_git(root) if find_git_dir(root) is None else _git_ls_files(root, [])
    return sorted(set(_without_outputs(root, entries)), key=os.fsencode)


def find_git_dir(root: Path) -> Path | None:
    """The work tree root above ``root`` that holds a ``.git``, if any (no subprocess)."""
    for directory in (root, *root.parents):
        if os.path.lexists(directory / ".git"):
            return directory
    return None


def _git_ls_files(root: Path, git_options: list[str]) -> list[tuple[str, bool]]:
    """(path, tracked) pairs from ``git ls-files``, which applies .gitignore exactly as git does."""
    argv = [
        "git",
        *git_options,
        "ls-files",
        "-z",
        "-t",
        "--cached",
        "--others",
        "--exclude-standard",
    ]
    try:
        output = run_bytes(argv, cwd=root, env=_git_env(scratch=bool(git_options)))
    except ToolNotFoundError:
        if git_options:
            raise
        raise FingerprintError(f"{root} is in a git work tree but git is not installed") from None
    except CommandError as error:
        raise FingerprintError(
            f"git could not list the files of {root}: {error.output.strip()}"
        ) from None
    entries = []
    for record in output.split(b"\0"):
        if not record:
            continue
        tag, path = record[:1], os.fsdecode(record[2:])
        entries.append((path, tag != b"?"))
    return entries


def _git_env(*, scratch: bool = False) -> dict[str, str]:
    # Read-only git: never refresh the user's index behind their back.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    if scratch:
        for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
            env.pop(name, None)
    return env


def _list_outside_git(root: Path) -> list[tuple[str, bool]]:
    """Outside git, ask git with an empty scratch repository so .gitignore files still apply."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="freshinstall-git-") as scratch:
        for name in ("objects", "refs"):
            os.mkdir(os.path.join(scratch, name))
        with open(os.path.join(scratch, "HEAD"), "w", encoding="ascii") as head:
            head.write("ref: refs/heads/main\n")
        try:
            return _git_ls_files(root, [f"--git-dir={scratch}", f"--work-tree={root}"])
        except ToolNotFoundError:
            # No git at all: without a .gitignore matcher, every non-output file counts. That
            # can only cause extra rebuilds, never a stale install.
            return [(path, False) for path in _walk(root, "")]


def _walk(root: Path, prefix: str) -> Iterator[str]:
    try:
        with os.scandir(os.path.join(root, prefix) if prefix else root) as scan:
            children = list(scan)
    except OSError as error:
        raise FingerprintError(f"cannot list {prefix or root}: {error.strerror}") from None
    for child in children:
        relpath = f"{prefix}{child.name}"
        if child.is_dir(follow_symlinks=False):
            if child.name not in OUTPUT_DIRS:
                yield from _walk(root, relpath + "/")
        else:
            yield relpath


def _without_outputs(root: Path, entries: list[tuple[str, bool]]) -> Iterator[str]:
    """Drop untracked build outputs; expand directories (submodules, nested repositories)."""
    untracked = [path for path, tracked in entries if not tracked]
    venvs = {path[: -len("pyvenv.cfg")] for path in untracked if path.endswith("/pyvenv.cfg")}
    root_outputs = root_output_dirs(root)
    for path, tracked in entries:
        if path.startswith("dist/"):
            # Even where git tracks it: freshinstall writes its wheel and stamp there, and
            # counting them would make every install change the next fingerprint.
            continue
        if path.endswith("/") or (tracked and _is_real_dir(os.path.join(root, path))):
            inner_paths = _walk(root, path.rstrip("/") + "/")
            yield from (inner for inner in inner_paths if not is_output(inner, venvs, root_outputs))
        elif tracked or not is_output(path, venvs, root_outputs):
            yield path


def _is_real_dir(path: str) -> bool:
    """A directory, not a symlink to one: links are hashed as links, never followed."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def root_output_dirs(root: Path) -> frozenset[str]:
    """The root directories that hold build output in this project."""
    if os.path.isfile(os.path.join(root, "build", "__init__.py")):
        return ROOT_OUTPUT_DIRS - {"build"}
    return ROOT_OUTPUT_DIRS


def is_output(
    relpath: str, venvs: Iterable[str] = (), root_outputs: frozenset[str] = ROOT_OUTPUT_DIRS
) -> bool:
    """Whether an untracked path is a build output, a cache or part of a virtual environment."""
    parts = relpath.split("/")
    if parts[0] in root_outputs and len(parts) > 1:
        return True
    if relpath.endswith(OUTPUT_SUFFIXES) or parts[-1] == ".git":
        return True
    for part in parts[:-1]:
        if part in OUTPUT_DIRS or part.endswith(".egg-info"):
            return True
    return any(relpath.startswith(venv) for venv in venvs)
