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
It imports nothing but ``os``, ``sys``, ``zlib`` and the package's ``__init__`` (except, once,
to record a new witness, below).

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
Where git's index vouches for tracked files (gitindex.py), ``git diff-files`` checks them
instead, and only the untracked files are listed again; when git has rewritten its index since,
the answer that still holds is recorded again with a witness of the new index.
"""

from __future__ import annotations

import os
import sys
import zlib

from freshinstall import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

FILENAME = ".freshinstall-cache"
MAGIC = "freshinstall-statcache-3"
#: Bumped whenever the hashing changes, so that old stamps stop matching (fingerprint.py).
SCHEME = "freshinstall-fingerprint-1"
#: Part of every answer: bump the number whenever the listing rules change (fingerprint.py's
#: OUTPUT_DIRS and friends), so that no answer outlives the rules it was computed with.
FORMAT = f"freshinstall-answer-2 {__version__} {SCHEME}"
#: Files changed less than this before the recording run started are re-hashed, never trusted.
MARGIN_NS = 2_000_000_000
DIGEST_LENGTH = 64
#: Trees with this many files are checked in two processes (see _all_unchanged).
FORK_MIN_FILES = 4000
#: An answer's fields: the facts (see facts()), pyproject.toml, the listing, the VCS state, the
#: witness (see gitindex.py) and the digest.
FACTS = 5
ANSWER_FIELDS = FACTS + 5
#: A witness's fields: see make_witness().
WITNESS_FIELDS = 6

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
#: The untracked part of LS_FILES, which prints it first: all that is left to list where the
#: index is the recorded one (see _check).
OTHERS = ("ls-files", "-z", "-t", "--others", "--exclude-standard", "--", ".", ":(exclude)dist")
DESCRIBE = ("describe", "--tags", "--long", "--always", "--abbrev=40")
STATUS = ("status", "--porcelain=v1", "-z", "--untracked-files=no")
#: The index entries whose stat data no longer matches the file (gitindex.py). Never a content
#: comparison for an entry the witness vouches for, and whatever the user's configuration says,
#: the owner's executable bit, ctime, inode and size all count, and no file system monitor is
#: trusted. Times count in whole seconds unless git was built with USE_NSEC (Debian's is not):
#: see gitindex.py. Paths relative to the project root, like the listing's.
DIFF_FILES = (
    "-c", "core.fileMode=true", "-c", "core.trustctime=true", "-c", "core.checkStat=default",
    "-c", "core.symlinks=true", "-c", "core.ignoreStat=false", "-c", "core.fsmonitor=false",
    "diff-files", "--name-only", "-z", "--relative", "--", ".", ":(exclude)dist",
)  # fmt: skip
#: Variables that make git read another index or repository than the work tree's own.
GIT_LOCATION_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")

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
    pathspecs read as written; no tracing (GIT_TRACE=1 writes to stderr, which the VCS state
    and the witness's check read)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    for name in PATHSPEC_VARIABLES:
        env.pop(name, None)
    for name in [name for name in env if name.startswith("GIT_TRACE")]:
        del env[name]
    # trace2 can also be turned on in git's configuration (trace2.normalTarget = 2, say); the
    # variables, set to 0, turn it off over that.
    env.update(GIT_TRACE2="0", GIT_TRACE2_PERF="0", GIT_TRACE2_EVENT="0")
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
# A header line "MAGIC STARTED WRITTEN ANSWER-LENGTH ANSWER-CRC PAIRS-CRC", the answer (empty
# when none was recorded), then NUL-separated path / record pairs. The answer comes first, with
# its own CRC-32, so that a no-change answer the index vouches for never reads the pairs.

#: Longer than any header.
HEADER_MAX = 256


def read_cache(cache_dir: str) -> Cache | None:
    """The cache in ``cache_dir``, or None for anything unexpected (missing, unreadable,
    truncated, edited, another format): the cache can only save work, never decide anything."""
    found = read_cache_file(cache_dir)
    if found is None:
        return None
    answer, read_pairs, trusted_before = found
    pairs = read_pairs()
    parts = None if pairs is None else split_pairs(pairs)
    return None if parts is None else (parts, answer, trusted_before)


def read_cache_file(cache_dir: str) -> tuple[bytes, Callable[[], bytes | None], int] | None:
    """:func:`read_cache` in two steps: the answer, a function that reads the (path, record)
    pairs as stored (None when they are damaged, or the file was replaced meanwhile), and the
    time before which stat data is trusted."""
    path = os.path.join(cache_dir, FILENAME)
    try:
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            header, newline, _ = file.read(HEADER_MAX).partition(b"\n")
            magic, *numbers = header.decode("ascii").split(" ")
            started, written, length, answer_crc, pairs_crc = (int(number) for number in numbers)
            start = len(header) + 1
            answer = os.pread(file.fileno(), length, start) if newline and length >= 0 else b""
    except (OSError, ValueError):
        return None
    if magic != MAGIC or not newline or len(answer) != length or zlib.crc32(answer) != answer_crc:
        return None
    if not 0 <= started <= written:
        return None

    def read_pairs() -> bytes | None:
        try:
            with open(path, "rb") as file:
                if file_signature(os.fstat(file.fileno())) != file_signature(info):
                    return None
                file.seek(start + length)
                pairs = file.read()
        except OSError:
            return None
        return pairs if zlib.crc32(pairs) == pairs_crc else None

    # The reference time: the recording run's start by our clock, or by the file system's
    # clock (the cache file's mtime minus the run's duration), whichever is earlier.
    reference = min(started, info.st_mtime_ns - (written - started))
    return answer, read_pairs, reference - MARGIN_NS


def split_pairs(pairs: bytes) -> list[str] | None:
    """The NUL-separated path / record pairs of a cache, flattened; None when damaged."""
    try:
        parts = pairs.decode("utf-8").split("\0")
    except ValueError:
        return None
    if len(parts) % 2 != 1 or parts[-1]:
        return None
    del parts[-1]
    return parts


def cache_text(records: Mapping[str, str], answer: bytes, started: int, written: int) -> bytes:
    """The bytes of a cache file (see :func:`read_cache`)."""
    # Names that are not valid UTF-8 are left out: they are rare, and simply hashed each time.
    text = "".join([f"{path}\0{record}\0" for path, record in records.items() if encodable(path)])
    pairs = text.encode()
    crcs = f"{len(answer)} {zlib.crc32(answer)} {zlib.crc32(pairs)}"
    return f"{MAGIC} {started} {written} {crcs}\n".encode() + answer + pairs


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


def facts_now(root: str, work_tree: str | None, *, vcs: bool) -> list[bytes]:
    """:func:`facts` as they are now (``work_tree`` from :func:`find_work_tree`)."""
    build_package = os.path.isfile(os.path.join(root, "build", "__init__.py"))
    setup_py = os.path.isfile(os.path.join(root, "setup.py"))
    return facts(root, work_tree, vcs=vcs, build_package=build_package, setup_py=setup_py)


def make_answer(
    known: Sequence[bytes],
    pyproject: bytes,
    listing: bytes,
    vcs: str | None,
    witness: bytes,
    digest: str,
) -> bytes:
    """What a run that computed ``digest`` records for :func:`cached_fingerprint`.

    ``known`` are its :func:`facts`, ``pyproject`` the bytes of pyproject.toml it parsed,
    ``listing`` the raw output of its ``git LS_FILES``, ``vcs`` the VCS state (None when the
    version is static), ``witness`` what git's index vouches for (:func:`make_witness`, or
    empty).
    """
    return _join([*known, pyproject, listing, (vcs or "").encode(), witness, digest.encode()])


def make_witness(
    index: str, signature: str, checksum: bytes, vouched: bytes, own: bytes, newest: int
) -> bytes:
    """The witness of an answer (gitindex.py): the ``index`` file, its :func:`file_signature`
    and ``checksum`` (its last 20 bytes); the paths it ``vouched`` for, each between NULs; the
    cache pairs of every other input (``own``), checked with ``lstat`` instead; and the newest
    mtime or ctime among the files it vouches for."""
    fields = [os.fsencode(index), signature.encode(), checksum, vouched, own]
    return _join([*fields, str(newest).encode()])


def recorded_witness(answer: bytes) -> tuple[bytes, list[bytes]]:
    """The witness in a recorded ``answer``, and its fields; nothing if it has none."""
    try:
        fields = _split(answer)
        ours = len(fields) == ANSWER_FIELDS and fields[0] == FORMAT.encode()
        witness = fields[FACTS + 3] if ours else b""
        parts = _split(witness)
    except ValueError:
        return b"", []
    return (witness, parts) if len(parts) == WITNESS_FIELDS else (b"", [])


def index_identity(info: os.stat_result, checksum: bytes) -> str:
    """What tells one version of git's index from another: its :func:`file_signature` and its
    ``checksum`` (its last 20 bytes)."""
    return f"{file_signature(info)} {checksum.hex()}"


def index_identity_at(path: str | None) -> str | None:
    """The :func:`index_identity` of the index file at ``path`` now; None if it cannot be read."""
    try:
        with open(path or "", "rb") as file:
            info = os.fstat(file.fileno())
            return index_identity(info, os.pread(file.fileno(), 20, max(0, info.st_size - 20)))
    except OSError:
        return None


def index_identity_of(witness: Sequence[bytes]) -> str:
    """The :func:`index_identity` recorded in the fields of a witness."""
    return f"{witness[1].decode(errors='replace')} {witness[2].hex()}"


def file_signature(info: os.stat_result) -> str:
    """What tells one version of a file (git's index, which git replaces to change it) from
    another."""
    return f"{info.st_dev} {info.st_ino} {info.st_size} {info.st_mtime_ns} {info.st_ctime_ns}"


def index_file(work_tree: str) -> str | None:
    """The index of the git work tree ``work_tree`` (GIT_INDEX_FILE aside): ``.git/index``,
    or in the git directory that a ``.git`` file names (a linked work tree, a submodule)."""
    dot_git = os.path.join(work_tree, ".git")
    if os.path.isdir(dot_git):
        return os.path.join(dot_git, "index")
    try:
        with open(dot_git, "rb") as file:
            text = file.read(4096)
    except OSError:
        return None
    if not text.startswith(b"gitdir: "):
        return None
    return os.path.join(work_tree, os.fsdecode(text[8:].rstrip(b"\r\n")), "index")


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
    pipes: list[int] = []
    try:
        return _check(os.path.realpath(path), children, pipes)
    except (OSError, ValueError):
        return None
    finally:
        for pid, reader in children:  # the answer was refused, or a git failed
            _stop(pid, reader)
        for pipe in pipes:
            os.close(pipe)


def _check(root: str, children: list[tuple[int, int]], pipes: list[int]) -> str | None:
    found = read_cache_file(os.path.join(root, "dist"))
    if found is None or not found[0]:
        return None
    recorded, read_pairs, trusted_before = found
    fields = _split(recorded)
    if len(fields) != ANSWER_FIELDS or fields[0] != FORMAT.encode():
        return None
    pyproject, listing, vcs, witness, digest = fields[FACTS:]
    work_tree = find_work_tree(root)
    vouched = _witness(work_tree, witness)
    # git first, so that it works on the other core while we check the rest. Where the index
    # is the recorded one, so is the tracked part of the listing.
    env = git_env()
    # Without a usable witness, where there was one (git has rewritten its index since), a
    # new one is made if the answer holds: from the index as it was before git listed.
    renewable = vouched is None and bool(witness) and witness_possible(work_tree)
    identity = index_identity_at(index_file(work_tree)) if renewable and work_tree else None
    children.append(start_git(root, LS_FILES if vouched is None else OTHERS, env))
    if vouched is not None and work_tree is not None:
        # git's complaints come apart, into a file in memory (a pipe could fill up and stall
        # git): a file it cannot lstat is only a warning to it, and left out of its list. Its
        # work tree is the one whose files the witness vouches for, whatever core.worktree says.
        complaints = os.memfd_create("freshinstall-git-stderr", os.MFD_CLOEXEC)
        pipes.append(complaints)
        args = (f"--work-tree={work_tree}", *DIFF_FILES)
        children.append(start_git(root, args, env, errors=complaints))
    # Read before the facts are checked, only to start the VCS commands early: the check
    # compares the whole flags field, this part included.
    vcs_project = fields[3].startswith(b"vcs=1")
    if vcs_project:
        children.append(start_git(root, DESCRIBE, env, stderr=True))
        children.append(start_git(root, STATUS, env, stderr=True))
    if fields[:FACTS] != facts_now(root, work_tree, vcs=vcs_project) or not _is_digest(digest):
        return None
    with open(os.path.join(root, "pyproject.toml"), "rb") as file:
        if file.read() != pyproject:
            return None
    if vouched is not None and int(vouched[5]) >= trusted_before:  # its newest file is racy
        return None
    prefix = os.path.join(root, "")
    parts = _holding(prefix, read_pairs() if vouched is None else vouched[4], trusted_before)
    if parts is None:
        return None
    outputs = [git_output(*children.pop(0)) for _ in range(len(children))]
    if vouched is None:
        if outputs[0] != listing:
            return None
    elif not _same_untracked(outputs[0], listing):
        return None
    if vcs_project and vcs_text(outputs[-2], outputs[-1]).encode() != vcs:
        return None
    if vouched is not None:
        # No file git names may be one the witness vouches for (the others have their own
        # record, checked above, or are no input), and git must have read the same index.
        names = vouched[3]
        if any(b"\0" + path + b"\0" in names for path in outputs[1].split(b"\0")[:-1]):
            return None
        # Then every file is checked here, as without a witness.
        if os.fstat(complaints).st_size and _holding(prefix, read_pairs(), trusted_before) is None:
            return None
        if not _same_index(vouched):
            return None
    elif identity is not None and work_tree is not None:
        try:  # noqa: SIM105 - contextlib.suppress would import contextlib on this path
            _renew_witness(root, work_tree, recorded, identity, parts, trusted_before)
        except (OSError, ValueError):  # the answer stands all the same
            pass
    return digest.decode("ascii")


def _renew_witness(
    root: str,
    work_tree: str,
    recorded: bytes,
    identity: str,
    parts: list[str],
    trusted_before: int,
) -> None:
    """Record the answer ``recorded`` again, with a witness of the index as it is now (its
    ``identity``, taken before git listed the files): every record was just found unchanged
    and trusted. Once, after git rewrote its index. An index that cannot vouch (a split index,
    say) is recorded as no witness, so that the next runs do not try again; an unwritable
    dist/ is not even tried."""
    cache_dir = os.path.join(root, "dist")
    if not os.access(cache_dir, os.W_OK):
        return
    from pathlib import Path

    from freshinstall import gitindex, statcache  # the full machinery, for this once

    records = dict(zip(parts[::2], parts[1::2], strict=True))
    witness = gitindex.witness(root, work_tree, identity, records, trusted_before)
    found = read_cache_file(cache_dir)
    if found is None or found[0] != recorded:  # a newer run wrote the cache meanwhile
        return
    fields = _split(recorded)
    fields[FACTS + 3] = witness
    # Started and written at the time the records are trusted from: the new file trusts them
    # from exactly that time (read_cache_file), whatever the clocks do.
    reference = trusted_before + MARGIN_NS
    statcache.save(Path(cache_dir), records, reference, _join(fields), written=reference)


def _holding(prefix: str, pairs: bytes | None, trusted_before: int) -> list[str] | None:
    """The cache ``pairs`` flattened, when every record in them still holds (see
    :func:`unchanged`); None when one does not, or they are damaged."""
    parts = None if pairs is None else split_pairs(pairs)
    if parts is None or not _all_unchanged(prefix, parts, trusted_before):
        return None
    return parts


def _same_untracked(others: bytes, listing: bytes) -> bool:
    """Whether ``others`` (the output of OTHERS) is exactly the untracked records at the start
    of ``listing`` (LS_FILES's)."""
    rest = listing[len(others) :]
    return listing.startswith(others) and not rest.startswith(b"? ") and b"\0? " not in rest


def _witness(work_tree: str | None, witness: bytes) -> list[bytes] | None:
    """The fields of ``witness`` (see :func:`make_witness`) when the index it was made from is
    still the one git reads for ``work_tree``, unchanged; else None, and every file is checked
    with ``lstat``."""
    if not witness or work_tree is None or not witness_possible(work_tree):
        return None
    fields = _split(witness)
    index = index_file(work_tree)
    if len(fields) != WITNESS_FIELDS or index is None or os.fsencode(index) != fields[0]:
        return None
    return fields if _same_index(fields) else None


def witness_possible(work_tree: str | None) -> bool:
    """Whether a witness can be used here: in a git work tree, with git pointed at nothing
    else, and where git's stderr can go to a file in memory (Linux)."""
    if work_tree is None or not hasattr(os, "memfd_create"):
        return False
    return not any(name in os.environ for name in GIT_LOCATION_VARIABLES)


def _same_index(fields: list[bytes]) -> bool:
    """Whether the index a witness was made from is the very same file still."""
    return index_identity_at(os.fsdecode(fields[0])) == index_identity_of(fields)


def _is_digest(text: bytes) -> bool:
    return len(text) == DIGEST_LENGTH and not text.strip(b"0123456789abcdef")


def _all_unchanged(prefix: str, parts: list[str], trusted_before: int) -> bool:
    """:func:`unchanged`, for a large tree in two processes: the parent and a forked child
    check one half each. Threads do not pay here (docs/performance.md): the work between the
    ``lstat`` calls holds the GIL."""
    if len(parts) < 2 * FORK_MIN_FILES or not can_fork():
        return unchanged(prefix, parts, trusted_before)
    half = len(parts) // 4 * 2  # on a (path, record) boundary
    try:
        pid = fork(lambda: unchanged(prefix, parts[half:], trusted_before))
    except OSError:  # no process to spare
        return unchanged(prefix, parts, trusted_before)
    mine = False
    try:
        mine = unchanged(prefix, parts[:half], trusted_before)
    finally:
        if not mine:
            kill(pid)  # its answer no longer matters
        code = wait_child(pid)
    return mine and code == 0


def can_fork() -> bool:
    """Two CPUs for this process, and no other thread (a fork copies only the calling one)."""
    if not hasattr(os, "fork"):
        return False
    try:  # every thread, also those that the threading module does not know of
        if len(os.listdir("/proc/self/task")) > 1:
            return False
    except OSError:  # no /proc
        threading = sys.modules.get("threading")  # subprocess imports it, and starts no thread
        if threading is not None and threading.active_count() > 1:
            return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # not on Linux
        return (os.cpu_count() or 1) > 1


def fork(child: Callable[[], bool]) -> int:
    """Fork a process that runs ``child`` and exits: 0 when it returns True, 1 when False, 2 on
    any exception. Returns its pid, in the parent only; OSError when no process can be made.

    SIGINT is blocked across the fork, so that a Ctrl-C never raises in the child before it is
    inside its own exit path (it would unwind the parent's stack there: print the error, run
    ``finally`` blocks and atexit handlers). The caller kills and reaps the child.
    """
    signals = _signal_module()
    mask = signals.pthread_sigmask(signals.SIG_BLOCK, {signals.SIGINT})
    try:
        pid = os.fork()
    except BaseException:
        signals.pthread_sigmask(signals.SIG_SETMASK, mask)
        raise
    if pid == 0:
        code = 2
        try:
            signals.pthread_sigmask(signals.SIG_SETMASK, mask)
            code = 0 if child() else 1
        finally:
            os._exit(code)
    try:  # a Ctrl-C held back meanwhile raises here, before the caller knows of the child
        signals.pthread_sigmask(signals.SIG_SETMASK, mask)
    except BaseException:
        kill(pid)
        wait_child(pid)
        raise
    return pid


def fork_with_pipe(work: Callable[[int], object]) -> tuple[int, int] | None:
    """Fork a process that runs ``work(WRITER)``, WRITER being a pipe's end for it to write
    to, and exits (see :func:`fork`). Returns its pid and the pipe's end to read, in the parent;
    None when no process can be made, and then both ends are closed."""
    reader, writer = os.pipe()

    def child() -> bool:
        os.close(reader)
        work(writer)
        return True

    try:
        pid = fork(child)
    except BaseException as error:
        os.close(reader)
        os.close(writer)
        if not isinstance(error, OSError):
            raise
        return None  # no process to spare: EAGAIN from a pids cgroup or RLIMIT_NPROC, ENOMEM
    os.close(writer)
    return pid, reader


def unchanged(prefix: str, parts: list[str], trusted_before: int) -> bool:
    """Whether every recorded file has its recorded stat data, older than ``trusted_before``.

    The signature is statcache.hash_files's, built the same way: keep the two in step.
    """
    lstat, end = os.lstat, -DIGEST_LENGTH
    pairs = iter(parts)
    for path, record in zip(pairs, pairs):  # noqa: B905 - even length checked by split_pairs
        info = lstat(prefix + path)
        mtime, ctime = info.st_mtime_ns, info.st_ctime_ns
        signature = f"{info.st_size} {mtime} {ctime} {info.st_ino} {info.st_mode} "
        if record[:end] != signature or mtime >= trusted_before or ctime >= trusted_before:
            return False
    return True


def start_git(
    root: str,
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    stderr: bool = False,
    errors: int | None = None,
) -> tuple[int, int]:
    """Start ``git -C ROOT ARGS`` with its stdout into a pipe; its pid and the pipe's end to
    read. FileNotFoundError when there is no git.

    FileNotFoundError can also mean that /dev/null is missing. Its stderr is discarded: a
    warning (an unreadable .gitignore, say) must not end up among
    the ``-z`` records. With ``stderr``, it goes into the same pipe instead, as
    _process.run_bytes combines them (for an error message, and for the VCS state, which
    inputs.vcs_state reads that way). With ``errors``, a file descriptor, it goes there.

    ``os.posix_spawnp`` rather than subprocess, whose import (threads, signals, selectors) costs
    more than a small project's whole check."""
    reader, writer = os.pipe()
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, writer, 1),
            (os.POSIX_SPAWN_DUP2, writer if errors is None else errors, 2)
            if stderr or errors is not None
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
    """The exit code (None when it was lost, see :func:`wait_child`) and all the output of a git
    started by :func:`start_git`."""
    try:
        output = read_all(reader)
    finally:
        os.close(reader)
        code = wait_child(pid)
    return code, output


def read_all(reader: int) -> bytes:
    """Everything that comes through the pipe ``reader`` until its other end is closed."""
    chunks = []
    while chunk := os.read(reader, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def write_all(writer: int, data: bytes) -> None:
    """Write all of ``data`` to the pipe ``writer``."""
    view = memoryview(data)
    while view:
        view = view[os.write(writer, view) :]


def wait_child(pid: int) -> int | None:
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
    does this first thing; :func:`wait_child` again for library callers."""
    signals = _signal_module()
    if signals.getsignal(signals.SIGCHLD) == signals.SIG_IGN:
        try:  # noqa: SIM105 - contextlib.suppress would import contextlib on this path
            signals.signal(signals.SIGCHLD, signals.SIG_DFL)
        except ValueError:  # not the main thread: the caller refuses or retries in vain
            pass


def _signal_module() -> Any:
    try:
        import _signal  # type: ignore[import-not-found]  # C module, loaded at start-up anyway
    except ImportError:  # pragma: no cover - not CPython
        import signal as _signal  # imports enum, a few ms
    return _signal


def kill(pid: int) -> None:
    # SIGKILL is 9 by POSIX; `signal` is not imported for it. A child that exited already is
    # still ours to kill until it is waited for (unless SIGCHLD is ignored: see wait_child).
    try:  # noqa: SIM105 - contextlib.suppress would import contextlib on this path
        os.kill(pid, 9)
    except OSError:
        pass


def _stop(pid: int, reader: int) -> None:
    """Stop a git whose output is no longer wanted, and reap it."""
    os.close(reader)
    kill(pid)
    wait_child(pid)
