"""The no-change answer of ``freshinstall fingerprint``, checked without importing the tool.

Start-up is most of a no-change run: importing tomllib, pathlib, typing, hashlib and subprocess
takes longer than the whole check of a 1,000-file project (benchmarks/breakdown.py). So the run
that computes a fingerprint also records, beside its stat cache (one file, replaced
atomically), the digest and everything the digest was computed from that is not a file's
content: the package version, the project root, the pyproject.toml bytes, the environment
variables that reach the fingerprint, the raw output of the ``git ls-files`` that listed the
inputs, and the VCS state. :func:`cached_fingerprint` returns the recorded digest only when all
of them are byte-for-byte the same now and every input passes the stat cache's test (same stat
data, not racy); anything else, including any error, returns None and the full computation runs.
It imports nothing but ``os``, ``sys``, ``zlib`` and the package's ``__init__``.

The facts are the values the computation used (the work tree and root ``build/`` it listed
with, the ``setup.py`` its checks saw), never looked at again afterwards, so that a change
while it worked, even one undone before the end, makes the answer refuse rather than vouch for
a state that was never fingerprinted.

The answer is recorded only where re-checking it is complete: inside a git work tree (its
listing covers the index, the .gitignore files and git's configuration at once), without
submodules outside dist/ (their files are listed by walking), without ``include`` patterns
(globbed from the file system), and when every input has a stat-cache record (a vanished
tracked file or an undecodable name has none, and could come back unseen).

While the stat data is checked, git lists the tree in its own process, on the other core.
"""

from __future__ import annotations

import os
import sys
import zlib

from freshinstall import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

FILENAME = ".freshinstall-cache"
MAGIC = "freshinstall-statcache-2"
#: Bumped whenever the hashing changes, so that old stamps stop matching (fingerprint.py).
SCHEME = "freshinstall-fingerprint-1"
#: Part of every answer: bump the number whenever the listing rules change (fingerprint.py's
#: OUTPUT_DIRS and friends), so that no answer outlives the rules it was computed with.
FORMAT = f"freshinstall-answer-1 {__version__} {SCHEME}"
#: Files changed less than this before the recording run started are re-hashed, never trusted.
MARGIN_NS = 2_000_000_000
DIGEST_LENGTH = 64
#: Trees with this many files are checked in two processes (see _all_unchanged).
FORK_MIN_FILES = 4000
#: An answer's fields: the facts (see facts()), pyproject.toml, the listing, the VCS state and
#: the digest.
FACTS = 5
ANSWER_FIELDS = FACTS + 4

#: Environment variables that build backends and version plugins read (part of the fingerprint)
#: and freshinstall's own settings (which choose its inputs).
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
SETTINGS_PREFIX = "FRESHINSTALL_"

#: The git commands whose output decides the inputs; the full path runs the very same ones.
#: The root dist/ never counts (fingerprint.py), and leaving it out of git's walk also keeps the
#: listing, and so an answer, the same when a run writes its cache, wheel or stamp there. The
#: positive "." lets git before 2.13 take the exclude pattern too (it refused one on its own).
LS_FILES = (
    "ls-files", "-z", "-t", "--stage", "--cached", "--others", "--exclude-standard",
    "--", ".", ":(exclude)dist",
)  # fmt: skip
DESCRIBE = ("describe", "--tags", "--long", "--always", "--abbrev=40")
STATUS = ("status", "--porcelain=v1", "-z", "--untracked-files=no")

#: What a cache file holds: the (path, record) pairs flattened, the answer, and the time before
#: which stat data is trusted.
Cache = tuple[list[str], bytes, int]


#: Variables that change how git reads pathspecs: GIT_LITERAL_PATHSPECS=1 (exported to hooks by
#: `git --literal-pathspecs`) would make ":(exclude)dist" a file name, and the listing empty.
PATHSPEC_VARIABLES = (
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
)


def git_env() -> dict[str, str]:
    """Read-only git: never refresh the user's index behind their back; stable messages;
    pathspecs read as written."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    for name in PATHSPEC_VARIABLES:
        env.pop(name, None)
    return env


def environment_text(environ: Mapping[str, str]) -> bytes:
    """The variables that can change the fingerprint or the settings, as one string."""
    names = sorted(name for name in environ if name.startswith((*ENV_PREFIXES, SETTINGS_PREFIX)))
    text = "".join(f"{name}={environ[name]}\0" for name in names)
    return os.fsencode(text)


def vcs_text(describe: bytes, status: bytes) -> str:
    """The VCS state of a project versioned from git (see inputs.vcs_state)."""
    return f"{describe.decode(errors='replace').strip()}\n{status.decode(errors='replace')}"


# --- the cache file ----------------------------------------------------------------------------
#
# A header line "MAGIC STARTED WRITTEN CRC ANSWER-LENGTH", the answer (empty when none was
# recorded), then NUL-separated path / record pairs; the CRC-32 covers the answer and the pairs.


def read_cache(cache_dir: str) -> Cache | None:
    """The cache in ``cache_dir``, or None for anything unexpected (missing, unreadable,
    truncated, edited, another format): the cache can only save work, never decide anything."""
    try:
        with open(os.path.join(cache_dir, FILENAME), "rb") as file:
            mtime_ns = os.fstat(file.fileno()).st_mtime_ns
            data = file.read()
        header, _, rest = data.partition(b"\n")
        magic, *numbers = header.decode("ascii").split(" ")
        started, written, crc, length = (int(number) for number in numbers)
        if magic != MAGIC or crc != zlib.crc32(rest) or not 0 <= started <= written:
            return None
        if not 0 <= length <= len(rest):
            return None
        parts = rest[length:].decode("utf-8").split("\0")
    except (OSError, ValueError):
        return None
    if len(parts) % 2 != 1 or parts[-1]:
        return None
    del parts[-1]
    # The reference time: the recording run's start by our clock, or by the file system's
    # clock (the cache file's mtime minus the run's duration), whichever is earlier.
    reference = min(started, mtime_ns - (written - started))
    return parts, rest[:length], reference - MARGIN_NS


def cache_text(records: Mapping[str, str], answer: bytes, started: int, written: int) -> bytes:
    """The bytes of a cache file (see :func:`read_cache`)."""
    # Names that are not valid UTF-8 are left out: they are rare, and simply hashed each time.
    pairs = "".join([f"{path}\0{record}\0" for path, record in records.items() if encodable(path)])
    rest = answer + pairs.encode()
    header = f"{MAGIC} {started} {written} {zlib.crc32(rest)} {len(answer)}\n"
    return header.encode() + rest


def encodable(path: str) -> bool:
    """Whether ``path`` can be written as UTF-8 (names that are not are never cached)."""
    if path.isascii():
        return True
    try:
        path.encode()
    except UnicodeEncodeError:
        return False
    return True


# --- the answer --------------------------------------------------------------------------------


def facts(
    root: str, work_tree: str | None, *, vcs: bool, build_package: bool, setup_py: bool
) -> list[bytes]:
    """What an answer for ``root`` depends on besides pyproject.toml, the listing and the files.

    ``work_tree`` is the directory holding ``.git`` that the listing ran in, ``build_package``
    whether the root ``build/`` counted as source (it holds an ``__init__.py``), ``setup_py``
    whether the project had one when it was loaded, ``vcs`` whether its version comes from git.
    """
    flags = f"vcs={vcs:d} build-package={build_package:d} setup.py={setup_py:d} "
    flags += f"encoding={sys.getfilesystemencoding()}"
    return [
        FORMAT.encode(),
        os.fsencode(root),
        os.fsencode(work_tree or ""),
        flags.encode(),
        environment_text(os.environ),
    ]


def facts_now(root: str, *, vcs: bool) -> list[bytes]:
    """:func:`facts` as they are now."""
    build_package = os.path.isfile(os.path.join(root, "build", "__init__.py"))
    setup_py = os.path.isfile(os.path.join(root, "setup.py"))
    work_tree = find_work_tree(root)
    return facts(root, work_tree, vcs=vcs, build_package=build_package, setup_py=setup_py)


def make_answer(
    known: Sequence[bytes], pyproject: bytes, listing: bytes, vcs: str | None, digest: str
) -> bytes:
    """What a run that computed ``digest`` records for :func:`cached_fingerprint`.

    ``known`` are its :func:`facts`, ``pyproject`` the bytes of pyproject.toml it parsed,
    ``listing`` the raw output of its ``git LS_FILES``, ``vcs`` the VCS state (None when the
    version is static).
    """
    return _join([*known, pyproject, listing, (vcs or "").encode(), digest.encode()])


def _join(fields: Sequence[bytes]) -> bytes:
    lengths = " ".join(str(len(field)) for field in fields)
    return lengths.encode() + b"\n" + b"".join(fields)


def _split(data: bytes) -> list[bytes]:
    lengths, _, rest = data.partition(b"\n")
    fields, offset = [], 0
    for length in map(int, lengths.split()):
        fields.append(rest[offset : offset + length])
        offset += length
    if offset != len(rest):
        raise ValueError("damaged answer")
    return fields


def find_work_tree(root: str) -> str | None:
    """The directory at or above ``root`` that holds a ``.git``, if any (no subprocess)."""
    directory = root
    while True:
        if os.path.lexists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def cached_fingerprint(path: str) -> str | None:
    """The fingerprint of the project at ``path`` if it provably equals the recorded one."""
    children: list[tuple[int, int]] = []
    try:
        return _check(os.path.realpath(path), children)
    except (OSError, ValueError):
        return None
    finally:
        for pid, reader in children:  # the answer was refused, or a git failed
            _stop(pid, reader)


def _check(root: str, children: list[tuple[int, int]]) -> str | None:
    # git first, so that it lists the tree on the other core while we check the rest.
    env = git_env()
    children.append(start_git(root, LS_FILES, env))
    cache = read_cache(os.path.join(root, "dist"))
    if cache is None or not cache[1]:
        return None
    parts, recorded, trusted_before = cache
    fields = _split(recorded)
    if len(fields) != ANSWER_FIELDS or fields[0] != FORMAT.encode():
        return None
    pyproject, listing, vcs, digest = fields[FACTS:]
    # Read before the facts are checked, only to start the VCS commands early: the check
    # compares the whole flags field, this part included.
    vcs_project = fields[3].startswith(b"vcs=1")
    if vcs_project:
        children.append(start_git(root, DESCRIBE, env, stderr=True))
        children.append(start_git(root, STATUS, env, stderr=True))
    if fields[:FACTS] != facts_now(root, vcs=vcs_project) or not _is_digest(digest):
        return None
    with open(os.path.join(root, "pyproject.toml"), "rb") as file:
        if file.read() != pyproject:
            return None
    if not _all_unchanged(os.path.join(root, ""), parts, trusted_before):
        return None
    outputs = [git_output(*children.pop(0)) for _ in range(len(children))]
    if outputs[0] != listing:
        return None
    if vcs_project and vcs_text(outputs[1], outputs[2]).encode() != vcs:
        return None
    return digest.decode("ascii")


def _is_digest(text: bytes) -> bool:
    return len(text) == DIGEST_LENGTH and not text.strip(b"0123456789abcdef")


def _all_unchanged(prefix: str, parts: list[str], trusted_before: int) -> bool:
    """:func:`unchanged`, for a large tree in two processes: the parent and a forked child
    check one half each. Threads do not pay here (docs/performance.md): the work between the
    ``lstat`` calls holds the GIL."""
    if len(parts) < 2 * FORK_MIN_FILES or not _can_fork():
        return unchanged(prefix, parts, trusted_before)
    half = len(parts) // 4 * 2  # on a (path, record) boundary
    pid = os.fork()
    if pid == 0:  # the child: its verdict is its exit status, and it runs nothing else
        try:
            os._exit(0 if unchanged(prefix, parts[half:], trusted_before) else 1)
        finally:
            os._exit(2)
    mine = False
    try:
        mine = unchanged(prefix, parts[:half], trusted_before)
    finally:
        if not mine:
            _kill(pid)  # its answer no longer matters
        code = _wait(pid)
    return mine and code == 0


def _can_fork() -> bool:
    """Two CPUs for this process, and no other thread (a fork copies only the calling one)."""
    if not hasattr(os, "fork") or "threading" in sys.modules:
        return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # not on Linux
        return (os.cpu_count() or 1) > 1


def unchanged(prefix: str, parts: list[str], trusted_before: int) -> bool:
    """Whether every recorded file has its recorded stat data, older than ``trusted_before``.

    The signature is statcache.hash_files's, built the same way: keep the two in step.
    """
    lstat, end = os.lstat, -DIGEST_LENGTH
    pairs = iter(parts)
    for path, record in zip(pairs, pairs):  # noqa: B905 - even length checked by read_cache
        info = lstat(prefix + path)
        mtime, ctime = info.st_mtime_ns, info.st_ctime_ns
        signature = f"{info.st_size} {mtime} {ctime} {info.st_ino} {info.st_mode} "
        if record[:end] != signature or mtime >= trusted_before or ctime >= trusted_before:
            return False
    return True


def start_git(
    root: str, args: Sequence[str], env: Mapping[str, str], *, stderr: bool = False
) -> tuple[int, int]:
    """Start ``git -C ROOT ARGS`` with its stdout into a pipe; its pid and the pipe's end to
    read. FileNotFoundError when there is no git.

    FileNotFoundError can also mean that /dev/null is missing. Its stderr is discarded: a
    warning (an unreadable .gitignore, say) must not end up among
    the ``-z`` records. With ``stderr``, it goes into the same pipe instead, as
    _process.run_bytes combines them (for an error message, and for the VCS state, which
    inputs.vcs_state reads that way).

    ``os.posix_spawnp`` rather than subprocess, whose import (threads, signals, selectors) costs
    more than a small project's whole check."""
    reader, writer = os.pipe()
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, writer, 1),
            (os.POSIX_SPAWN_DUP2, writer, 2)
            if stderr
            else (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ]
        pid = os.posix_spawnp("git", ["git", "-C", root, *args], env, file_actions=actions)
    except BaseException:
        os.close(reader)
        raise
    finally:
        os.close(writer)
    return pid, reader


def git_output(pid: int, reader: int) -> bytes:
    """All the output of a git started by :func:`start_git`; ValueError when it failed."""
    code, output = finish_git(pid, reader)
    if code != 0:
        raise ValueError("git failed")
    return output


def finish_git(pid: int, reader: int) -> tuple[int | None, bytes]:
    """The exit code (None when it was lost, see :func:`_wait`) and all the output of a git
    started by :func:`start_git`."""
    chunks = []
    try:
        while chunk := os.read(reader, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(reader)
        code = _wait(pid)
    return code, b"".join(chunks)


def _wait(pid: int) -> int | None:
    """The exit code of our child ``pid``; None when the kernel reaped it already.

    That happens when SIGCHLD was inherited as ignored (a parent's choice that exec keeps), and
    then no exit status can be had, not even by subprocess, which reports 0. So the default is
    restored here, for this process's later children, and the caller runs the command again or
    refuses to trust it.
    """
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        restore_sigchld()
        return None
    return os.waitstatus_to_exitcode(status)


def restore_sigchld() -> None:
    """Give SIGCHLD its default disposition again if it was inherited as ignored (exec keeps
    a parent's SIG_IGN), so that waiting for a child yields its exit status. The console script
    does this first thing; :func:`_wait` again for library callers."""
    try:
        import _signal  # type: ignore[import-not-found]  # C module, loaded at start-up anyway
    except ImportError:  # pragma: no cover - not CPython
        import signal as _signal  # imports enum, a few ms
    if _signal.getsignal(_signal.SIGCHLD) == _signal.SIG_IGN:
        try:  # noqa: SIM105 - contextlib.suppress would import contextlib on this path
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        except ValueError:  # not the main thread: the caller refuses or retries in vain
            pass


def _kill(pid: int) -> None:
    # SIGKILL is 9 by POSIX; `signal` is not imported for it. A child that exited already is
    # still ours to kill until it is waited for (unless SIGCHLD is ignored: see _wait).
    try:  # noqa: SIM105 - contextlib.suppress would import contextlib on this path
        os.kill(pid, 9)
    except OSError:
        pass


def _stop(pid: int, reader: int) -> None:
    """Stop a git whose output is no longer wanted, and reap it."""
    os.close(reader)
    _kill(pid)
    _wait(pid)
