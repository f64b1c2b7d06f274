"""Hashing many files fast: a stat cache, so that unchanged files are not read, and threads.

The cache, ``dist/.freshinstall-cache``, maps each input's relative path to the ``lstat`` data it
had when it was hashed (size, mtime_ns, ctime_ns, inode, mode) and the digest. A file whose stat
data is unchanged is not read again, with git's racy-timestamp rule on top: a file changed (mtime
or ctime) less than ``quick.MARGIN_NS`` before the run that recorded it started is re-hashed,
never trusted, because an edit in the same timestamp tick as the hashing leaves the stat data
unchanged. ctime is set by the kernel on every write, chmod and ``utime``, so an edit that keeps
the size and restores the mtime (``cp -p``, ``tar``, ``rsync -a``) is still seen. The cache only
ever saves work: a missing, corrupt or unwritable cache means everything is hashed, and it never
changes the digest (``freshinstall fingerprint --no-cache`` computes the same one from scratch).
It is never used for the build snapshot, which hashes the very bytes it copies. The file
format, and the answer that ``freshinstall fingerprint`` records in the same file, are in
quick.py, which reads them without importing this module.

Choices, measured on 10,000 files (2-core AMD EPYC VM, Python 3.11; docs/performance.md):

* Format: a header line, the answer, then NUL-separated ``path`` / ``stat-data digest`` pairs,
  read, checked and split into a dict in about 6 ms; the same data as one JSON object takes
  about 9 ms, marshal 3 ms (but marshal is not safe on damaged input). A CRC-32 of the body
  catches a damaged file.
* Not git's index as the cache. Its blob ids hash content after clean filters (LFS, eol
  conversion), so they do not identify the bytes we hash; ``assume-unchanged`` and
  ``skip-worktree`` entries are never checked; an index git has not refreshed makes it re-read
  files (we never write the user's index); and untracked files would still need a cache of our
  own. Ours works the same in and outside git, and the digest never depends on git's state.
  The no-change answer does take git's word for tracked files whose index entry holds exactly
  the stat data of our record, because ``git diff-files`` checks them in C on several threads
  (gitindex.py says when that is sound).
* Reference time: the wall clock when the recording run started, and the cache file's own mtime
  (the filesystem's clock) minus the run's duration, whichever is earlier, so that a file server
  whose clock is behind ours cannot make a fresh edit look old. The 2 s margin covers the coarsest
  common timestamps (FAT: 2 s; ext3, HFS+: 1 s; coarse kernel clocks: milliseconds).
* Threads: only for large files (see :func:`hash_many`). Two threads hash 1,600 files of 64 KiB
  in 63 ms instead of 110 ms, and 8 x 64 MiB in 0.20 s instead of 0.40 s; but 1,000 and 10,000
  files of about 8 KB take longer on two threads (25 vs 18 ms, 296 vs 215 ms).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from freshinstall import quick
from freshinstall.errors import FingerprintError
from freshinstall.fingerprint import FileEntry, hash_stat, kind_of
from freshinstall.quick import DIGEST_LENGTH

#: Files this large are hashed on several threads when they add up to THREADS_MIN_BYTES.
LARGE_FILE = 64 << 10
THREADS_MIN_BYTES = 8 << 20
#: From this many files and bytes, a forked child hashes every other file (see hash_many).
FORK_MIN_FILES = 64
FORK_MIN_BYTES = 1 << 20

#: One file still to hash: its relative path, its absolute path and its lstat.
Todo = tuple[str, str, os.stat_result]
#: Kinds by st_mode, seeded with the common ones.
_KINDS = {mode: kind_of(mode) for mode in (0o100644, 0o100755, 0o100664, 0o100775, 0o120777)}
#: Indirection for tests, which fake stat data to stand for a coarse filesystem clock.
_lstat = os.lstat


def hash_files(root: Path, paths: Sequence[str], cache_dir: Path | None = None) -> list[FileEntry]:
    """Hash ``paths`` (relative to ``root``); files that vanished or are not files are left out.

    With ``cache_dir``, files whose stat data matches the cache there are not read, and the cache
    is refreshed when that saves work next time. Without it, no cache is read or written.
    """
    if cache_dir is None:
        prefix = os.path.join(root, "")
        every = [(path, prefix + path, info) for path, info in _lstat_all(prefix, paths)]
        return [entry for entry in hash_many(every) if entry is not None]
    cache = StatCache(cache_dir)
    entries = cache.hash_files(root, paths)
    cache.save()
    return entries


class StatCache:
    """The cache in ``cache_dir``, for one pass over the inputs (:meth:`hash_files`), which
    :meth:`save` then writes back, with the run's answer (see quick.py) or without one."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.started = _now_ns()
        parts, self.answer, self.trusted_before = quick.read_cache(os.fspath(cache_dir)) or (
            [],
            b"",
            0,
        )
        pairs = iter(parts)
        self.records: dict[str, str] = dict(zip(pairs, pairs, strict=False))
        #: Whether writing the records saves work next time.
        self.worth_saving = False
        #: Whether :meth:`hash_files` found every record as it was, and used them all.
        self.all_hits = False

    def hash_files(self, root: Path, paths: Sequence[str]) -> list[FileEntry]:
        """Hash ``paths`` (see :func:`hash_files`), reading only files the cache cannot vouch
        for; afterwards :attr:`records` describe exactly the entries returned."""
        prefix = os.path.join(root, "")
        records, trusted_before = self.records, self.trusted_before
        entries: list[FileEntry] = []
        todo: list[Todo] = []
        signatures: list[str] = []
        # The loop that decides the no-change path: per file one lstat, one lookup, one compare.
        # quick._unchanged builds the same signature: keep the two in step.
        append, lstat, get, kinds = entries.append, _lstat, records.get, _KINDS.copy()
        for path in paths:
            source = prefix + path
            try:
                info = lstat(source)
            except FileNotFoundError:
                continue
            except OSError as error:
                raise FingerprintError(f"cannot read {path}: {error.strerror}") from None
            mode, mtime, ctime = info.st_mode, info.st_mtime_ns, info.st_ctime_ns
            signature = f"{info.st_size} {mtime} {ctime} {info.st_ino} {mode} "
            record = get(path)
            if (
                record is not None
                and record[:-DIGEST_LENGTH] == signature
                and mtime < trusted_before
                and ctime < trusted_before
            ):
                kind = kinds.get(mode) or kinds.setdefault(mode, kind_of(mode))
                append(FileEntry(path, kind, record[-DIGEST_LENGTH:]))
            else:
                todo.append((path, source, info))
                signatures.append(signature)
        if not todo and len(entries) == len(records):
            self.all_hits = True  # every record was used: nothing to update
            return entries
        hashed = hash_many(todo)
        entries.extend(entry for entry in hashed if entry is not None)

        # Worth writing when some file hashed now will be trusted next time (it is not racy
        # against this run's start), or records are left over (files that went).
        limit = self.started - quick.MARGIN_NS
        current = {entry.path for entry in entries}
        self.worth_saving = any(
            entry is not None and info.st_mtime_ns < limit and info.st_ctime_ns < limit
            for entry, (_, _, info) in zip(hashed, todo, strict=True)
        ) or any(path not in current for path in records)
        for entry, signature in zip(hashed, signatures, strict=True):
            if entry is not None:
                records[entry.path] = signature + entry.digest
        self.records = {path: records[path] for path in current}
        return entries

    def save(self, answer: bytes = b"", *, create: bool = True) -> None:
        """Write the records and ``answer`` when either changes what the next run can skip;
        with ``create=False``, only into a cache directory that exists already.

        An answer is only ever written with the records of the pass that computed it, so
        without one, a rewrite drops the previous answer.
        """
        if not (create or self.cache_dir.is_dir()):
            return
        if self.worth_saving or answer != self.answer:
            save(self.cache_dir, self.records, self.started, answer)


def _lstat_all(prefix: str, paths: Sequence[str]) -> Iterator[tuple[str, os.stat_result]]:
    for path in paths:
        try:
            yield path, _lstat(prefix + path)
        except FileNotFoundError:  # noqa: PERF203 - free in 3.11 until raised
            continue
        except OSError as error:
            raise FingerprintError(f"cannot read {path}: {error.strerror}") from None


def hash_many(todo: Sequence[Todo]) -> list[FileEntry | None]:
    """Hash the files in ``todo``, in order, on both cores when it pays.

    Small files: a forked child hashes every other one, from FORK_MIN_FILES files and
    FORK_MIN_BYTES bytes: 1,000 files of 8 KB in 17 ms instead of 21 ms, 10,000 in 129 ms
    instead of 179 ms (medians, docs/performance.md). Threads do not pay for them (below); a
    fork and wait costs 1-5 ms, growing with the process's memory.
    """
    if len(todo) < FORK_MIN_FILES or not quick.can_fork():
        return hash_in_one_process(todo)
    if sum(info.st_size for _, _, info in todo) < FORK_MIN_BYTES:
        return hash_in_one_process(todo)
    results: list[FileEntry | None] = [None] * len(todo)
    theirs = todo[1::2]
    parent = os.getpid()
    forked = quick.fork_with_pipe(lambda writer: _report(writer, theirs, parent))
    if forked is None:  # no process to spare
        return hash_in_one_process(todo)
    pid, reader = forked
    try:
        results[0::2] = hash_in_one_process(todo[0::2])
        lines = quick.read_all(reader).decode().split("\n")
    finally:
        os.close(reader)
        quick.kill(pid)  # harmless once it is done; a stop half-way must not leave it behind
        quick.wait_child(pid)
    if len(lines) != len(theirs) + 1:  # it died: its half is hashed here
        results[1::2] = hash_in_one_process(theirs)
        return results
    for index, ((path, source, info), line) in enumerate(zip(theirs, lines, strict=False)):
        if line == "-":
            continue  # vanished, or not a file
        if line[:1] in ("f", "x", "l") and len(line) == 2 + quick.DIGEST_LENGTH:
            results[2 * index + 1] = FileEntry(path, line[0], line[2:])
        else:  # it failed to read this file: reading it here says why
            results[2 * index + 1] = hash_stat(source, path, info)
    return results


def _report(writer: int, todo: Sequence[Todo], parent: int) -> None:
    """In the forked child: hash ``todo``, and write one line per file: "KIND DIGEST", "-" when
    it is not a file (any more), "!" when it cannot be read. Once the process ``parent`` that
    forked it is gone (killed by a signal it cannot handle), it stops after the file at hand
    rather than hash on for nobody."""
    lines = []
    for path, source, info in todo:
        if os.getppid() != parent:
            return
        try:
            entry = hash_stat(source, path, info)
        except FingerprintError:
            lines.append("!")
        else:
            lines.append("-" if entry is None else f"{entry.kind} {entry.digest}")
    quick.write_all(writer, ("\n".join(lines) + "\n").encode())
    os.close(writer)  # the parent reads to the end now, not once this process is torn down


def hash_in_one_process(todo: Sequence[Todo]) -> list[FileEntry | None]:
    """Hash the files in ``todo``, in order; large files on other threads too, when it pays.

    Hashing a large file is sha256 and ``read``, both without the GIL, so threads run them on
    every core. For small files the per-file Python work dominates and threads only fight for
    the GIL (measured: slower at 1,000 and 10,000 files of 8 KB), so they stay on this thread,
    which takes large files too once it is done with the small ones.
    """
    results: list[FileEntry | None] = [None] * len(todo)
    large = [index for index, (_, _, info) in enumerate(todo) if info.st_size >= LARGE_FILE]
    workers = min(_cpus(), len(large)) - 1
    if workers < 1 or sum(todo[index][2].st_size for index in large) < THREADS_MIN_BYTES:
        large = []
    queue = iter(large)  # shared by the threads: each file is taken once (safe under the GIL)

    def drain() -> None:
        for index in queue:
            path, source, info = todo[index]
            results[index] = hash_stat(source, path, info)

    with contextlib.ExitStack() as stack:
        others = []
        if large:
            from concurrent.futures import ThreadPoolExecutor

            pool = stack.enter_context(ThreadPoolExecutor(workers, "freshinstall-hash"))
            others = [pool.submit(drain) for _ in range(workers)]
        taken = set(large)
        for index, (path, source, info) in enumerate(todo):
            if index not in taken:
                results[index] = hash_stat(source, path, info)
        drain()
        for future in others:
            future.result()
    return results


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _now_ns() -> int:
    return time.time_ns()


def load(cache_dir: Path) -> tuple[dict[str, str], int]:
    """The records of the cache in ``cache_dir`` and the time before which files are trusted;
    none for a cache that is missing or damaged (see quick.read_cache)."""
    parts, _, trusted_before = quick.read_cache(os.fspath(cache_dir)) or ([], b"", 0)
    pairs = iter(parts)
    return dict(zip(pairs, pairs, strict=False)), trusted_before


def save(
    cache_dir: Path,
    records: dict[str, str],
    started: int,
    answer: bytes = b"",
    written: int | None = None,
) -> None:
    """Replace the cache atomically (last writer wins); a failure to write is not an error.
    ``written`` is when the run that made the records ended (by default, now)."""
    from freshinstall.errors import StampError
    from freshinstall.stamp import _write_atomically

    text = quick.cache_text(records, answer, started, _now_ns() if written is None else written)
    # A read-only project or a full disk only means that the next run hashes again.
    with contextlib.suppress(StampError):
        _write_atomically(cache_dir, quick.FILENAME, text)
