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

from freshinstall import quick
from freshinstall._process import last_line
from freshinstall.errors import FingerprintError, ToolNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:  # nor typing: listing and hashing import next to nothing (see early.py)
    from collections.abc import Iterable, Iterator, Mapping
    from pathlib import Path

    from freshinstall._process import StrPath

#: Bumped whenever the hashing changes, so that old stamps stop matching. It lives in quick.py,
#: whose recorded answers must not outlive it either.
SCHEME = quick.SCHEME
CHUNK = 1 << 20

#: Directories that are tool output wherever they are (unless git tracks files in them).
#: A change to these rules must bump quick.FORMAT.
_VCS_AND_TOX = (".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".hypothesis")
OUTPUT_DIRS = frozenset({*_VCS_AND_TOX, ".mypy_cache", ".pytest_cache", ".ruff_cache"})
#: Directories that are output only at the project root: `src/build/` is source, and so is a
#: root `build/` that is a package (has an `__init__.py`; setuptools never writes one there).
ROOT_OUTPUT_DIRS = frozenset({"build", "dist"})
OUTPUT_SUFFIXES = (".pyc", ".pyo")


class FileEntry(tuple[str, str, str]):
    """One input file, ``(path, kind, digest)``: ``kind`` is ``f`` (plain), ``x`` (executable)
    or ``l`` (symlink).

    A tuple, not a frozen dataclass: one is made per file per run, three times faster. Nor a
    typing.NamedTuple, as this and :class:`Fingerprint` were: importing typing took early.py's
    child longer than listing the files of a small project.
    """

    __slots__ = ()

    def __new__(cls, path: str, kind: str, digest: str) -> FileEntry:  # noqa: PYI034 - final
        return tuple.__new__(cls, (path, kind, digest))

    def __getnewargs__(self) -> tuple[str, str, str]:  # for pickle and copy
        return (self[0], self[1], self[2])

    def __repr__(self) -> str:
        return f"FileEntry(path={self[0]!r}, kind={self[1]!r}, digest={self[2]!r})"

    @property
    def path(self) -> str:
        return self[0]

    @property
    def kind(self) -> str:
        return self[1]

    @property
    def digest(self) -> str:
        return self[2]


class Fingerprint(tuple[str, tuple[FileEntry, ...], "Mapping[str, str]", tuple[str, ...]]):
    """The content hash of a source tree plus the non-file inputs that change a build:
    ``(digest, files, extras, links_out)``, a tuple for the reason given at :class:`FileEntry`.
    """

    __slots__ = ()

    def __new__(  # noqa: PYI034 - final
        cls,
        digest: str,
        files: tuple[FileEntry, ...],
        extras: Mapping[str, str] | None = None,
        links_out: tuple[str, ...] = (),
    ) -> Fingerprint:
        return tuple.__new__(cls, (digest, files, extras or {}, links_out))

    def __getnewargs__(
        self,
    ) -> tuple[str, tuple[FileEntry, ...], Mapping[str, str], tuple[str, ...]]:
        return (self[0], self[1], self[2], self[3])

    def __repr__(self) -> str:
        return f"Fingerprint(digest={self[0]!r}, {len(self[1])} files, extras={self[2]!r})"

    @property
    def digest(self) -> str:
        return self[0]

    @property
    def files(self) -> tuple[FileEntry, ...]:
        return self[1]

    @property
    def extras(self) -> Mapping[str, str]:
        return self[2]

    @property
    def links_out(self) -> tuple[str, ...]:
        """Input symlinks that point out of the project, as "path -> target": the build may
        follow them, the fingerprint never does, so a project with any is built on every run."""
        return self[3]

    @property
    def short(self) -> str:
        return self.digest[:12]

    def replace(
        self, *, digest: str | None = None, links_out: tuple[str, ...] | None = None
    ) -> Fingerprint:
        """This fingerprint with another ``digest`` or ``links_out``."""
        return Fingerprint(
            self.digest if digest is None else digest,
            self.files,
            self.extras,
            self.links_out if links_out is None else links_out,
        )


def compute(root: Path, extras: Mapping[str, str] | None = None) -> Fingerprint:
    """List the inputs of ``root`` and hash them."""
    return combine([hash_entry(root, path) for path in list_inputs(root)], extras)


def combine(
    entries: Iterable[FileEntry | None], extras: Mapping[str, str] | None = None
) -> Fingerprint:
    """Fold file entries (None for files that vanished) and extra inputs into one digest."""
    files = sorted(entry for entry in entries if entry is not None)
    try:
        # Without undecodable names (the rule), str order is the UTF-8 byte order.
        data = _records(files).encode()
    except UnicodeEncodeError:
        files.sort(key=lambda entry: os.fsencode(entry.path))
        data = os.fsencode(_records(files))
    extras = dict(sorted((extras or {}).items()))
    digest = hashlib.sha256(SCHEME.encode() + b"\n" + data)
    for key, value in extras.items():
        digest.update(b"E\0%s\0%s\n" % (key.encode(), value.encode("utf-8", "surrogateescape")))
    return Fingerprint(digest.hexdigest(), tuple(files), extras)


def _records(files: list[FileEntry]) -> str:
    return "".join([f"F\0{path}\0{kind}\0{digest}\n" for path, kind, digest in files])


def hash_entry(root: StrPath, relpath: str, copy_to: Path | None = None) -> FileEntry | None:
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
    return hash_stat(source, relpath, info, copy_to)


def hash_stat(
    source: str, relpath: str, info: os.stat_result, copy_to: Path | None = None
) -> FileEntry | None:
    """Hash the file ``source`` whose ``lstat`` is ``info`` (see :func:`hash_entry`)."""
    if stat.S_ISLNK(info.st_mode):
        # A symlink is hashed as a link (its target text), never followed out of the tree.
        try:
            target = os.readlink(source)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise FingerprintError(f"cannot read {relpath}: {error.strerror}") from None
        if copy_to is not None:
            _make_parent(copy_to)
            os.symlink(target, copy_to)
        return FileEntry(relpath, "l", hashlib.sha256(os.fsencode(target)).hexdigest())
    if not stat.S_ISREG(info.st_mode):
        return None
    try:
        digest = _hash_contents(source, copy_to, info.st_mode)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise FingerprintError(f"cannot read {relpath}: {error.strerror}") from None
    return FileEntry(relpath, kind_of(info.st_mode), digest)


def kind_of(mode: int) -> str:
    """``l`` for a symlink, ``x`` for a file with any executable bit, else ``f``."""
    if stat.S_ISLNK(mode):
        return "l"
    return "x" if mode & 0o111 else "f"


def _hash_contents(source: str, copy_to: Path | None, mode: int) -> str:
    # os.open/os.read rather than open(): a third less CPU per small file (no buffered reader).
    digest = hashlib.sha256()
    reader = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if copy_to is None:
            while chunk := os.read(reader, CHUNK):
                digest.update(chunk)
        else:
            _make_parent(copy_to)
            with open(copy_to, "xb") as writer:
                while chunk := os.read(reader, CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
            os.chmod(copy_to, stat.S_IMODE(mode) | stat.S_IRUSR | stat.S_IWUSR)
    finally:
        os.close(reader)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of a file's contents, read in fixed-size chunks."""
    return _hash_contents(os.fspath(path), None, 0)


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
    return listed_inputs(root).paths


class Listing:
    """The inputs of a project, and what decided them."""

    __slots__ = ("build_package", "index_identity", "output", "paths", "work_tree")

    def __init__(
        self,
        paths: list[str],
        output: bytes | None,
        work_tree: str | None,
        build_package: bool,
        index_identity: str | None = None,
    ) -> None:
        self.paths = paths
        #: The output of ``git ls-files`` when that alone decided the paths: in a git work tree
        #: without submodules outside dist/ (whose files are found by walking); else None.
        self.output = output
        #: The directory holding the ``.git`` the listing ran in; None outside git.
        self.work_tree = work_tree
        #: Whether the root ``build/`` counted as source (see :func:`root_output_dirs`).
        self.build_package = build_package
        #: The quick.index_identity of git's index just before git listed the files, if any.
        self.index_identity = index_identity


def listed_inputs(root: StrPath) -> Listing:
    """:func:`list_inputs`, with what decided them (for quick.py's answers)."""
    work_tree = quick.find_work_tree(os.fspath(root))
    root_outputs = root_output_dirs(root)
    identity = None
    if work_tree is None:
        entries, output = _list_outside_git(root), None
    else:  # before git reads the index: what it listed from can be checked afterwards
        identity = quick.index_identity_at(quick.index_file(work_tree))
        entries, output = _git_ls_files(root, [])
    if any(path.endswith("/") for path, _ in entries):
        output = None
    paths = sorted(set(_without_outputs(root, entries, root_outputs)))
    if not all(path.isascii() for path in paths):
        paths.sort(key=os.fsencode)  # by bytes, as git sorts, even for undecodable names
    build_package = "build" not in root_outputs
    return Listing(paths, output, work_tree, build_package, identity)


def find_git_dir(root: Path) -> Path | None:
    """The work tree root above ``root`` that holds a ``.git``, if any (no subprocess)."""
    from pathlib import Path

    found = quick.find_work_tree(os.fspath(root))
    return None if found is None else Path(found)


def _git_ls_files(root: StrPath, git_options: list[str]) -> tuple[list[tuple[str, bool]], bytes]:
    """(path, tracked) pairs from ``git ls-files``, which applies .gitignore exactly as git does,
    and git's output itself.

    Submodules and embedded repositories (mode 160000) come back as directories, ``sub/``.
    """
    args, env = [*git_options, *quick.LS_FILES], _git_env(scratch=bool(git_options))
    where = os.fspath(root)
    try:
        code, output = quick.finish_git(*quick.start_git(where, args, env))
        if code is None:  # its exit status was lost; SIGCHLD is handled now (see quick.wait_child)
            code, output = quick.finish_git(*quick.start_git(where, args, env))
        if code != 0:
            raise FingerprintError(
                f"git could not list the files of {root}: {_why(where, args, env, code)}"
            )
    except FileNotFoundError:
        if git_options:
            raise ToolNotFoundError("git") from None
        raise FingerprintError(f"{root} is in a git work tree but git is not installed") from None
    entries = []
    for record in os.fsdecode(output).split("\0"):
        if record[:1] == "?":  # untracked: "? PATH"
            entries.append((record[2:], False))
        elif record:  # tracked: "TAG MODE OBJECT STAGE\tPATH", mode 160000 for a submodule
            path = record[record.index("\t") + 1 :]
            entries.append((f"{path}/" if record[2:8] == "160000" else path, True))
    return entries, output


def _why(where: str, args: list[str], env: dict[str, str], code: int | None) -> str:
    """Why ``git ARGS`` failed: its last error line, from a second run that keeps stderr (the
    listing discards it); its exit status when that run says nothing or succeeds."""
    again, output = quick.finish_git(*quick.start_git(where, args, env, stderr=True))
    message = last_line(output.decode(errors="replace")) if again not in (0, None) else ""
    if message and "\0" not in message:
        return message
    if code is not None and code < 0:
        return f"git was killed by signal {-code}"
    return f"git ls-files exited with status {code}"


def _git_env(*, scratch: bool = False) -> dict[str, str]:
    env = quick.git_env()
    if scratch:
        for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
            env.pop(name, None)
    return env


def _list_outside_git(root: StrPath) -> list[tuple[str, bool]]:
    """Outside git, ask git with an empty scratch repository so .gitignore files still apply."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="freshinstall-git-") as scratch:
        for name in ("objects", "refs"):
            os.mkdir(os.path.join(scratch, name))
        with open(os.path.join(scratch, "HEAD"), "w", encoding="ascii") as head:
            head.write("ref: refs/heads/main\n")
        try:
            return _git_ls_files(root, [f"--git-dir={scratch}", f"--work-tree={root}"])[0]
        except ToolNotFoundError:
            # No git at all: without a .gitignore matcher, every non-output file counts. That
            # can only cause extra rebuilds, never a stale install.
            return [(path, False) for path in _walk(root, "")]


def _walk(root: StrPath, prefix: str) -> Iterator[str]:
    try:
        with os.scandir(os.path.join(root, prefix) if prefix else root) as scan:
            children = list(scan)
    except (FileNotFoundError, NotADirectoryError):
        return  # gone, or a submodule that is not checked out: no files in it
    except OSError as error:
        raise FingerprintError(f"cannot list {prefix or root}: {error.strerror}") from None
    for child in children:
        relpath = f"{prefix}{child.name}"
        if child.is_dir(follow_symlinks=False):
            if child.name not in OUTPUT_DIRS:
                yield from _walk(root, relpath + "/")
        else:
            yield relpath


def _without_outputs(
    root: StrPath, entries: list[tuple[str, bool]], root_outputs: frozenset[str]
) -> Iterator[str]:
    """Drop untracked build outputs; expand directories (submodules, nested repositories)."""
    untracked = [path for path, tracked in entries if not tracked]
    venvs = {path[: -len("pyvenv.cfg")] for path in untracked if path.endswith("/pyvenv.cfg")}
    for path, tracked in entries:
        if path.startswith("dist/") or path == "dist":
            # Even where git tracks it: freshinstall writes its wheel and stamp there, and
            # counting them would make every install change the next fingerprint. Nor does
            # `dist` itself count where it is a symlink (to a roomier disk, say).
            continue
        if path.endswith("/"):
            inner_paths = _walk(root, path.rstrip("/") + "/")
            yield from (inner for inner in inner_paths if not is_output(inner, venvs, root_outputs))
        elif tracked or not is_output(path, venvs, root_outputs):
            yield path


def root_output_dirs(root: StrPath) -> frozenset[str]:
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
