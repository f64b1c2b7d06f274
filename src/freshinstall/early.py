"""Listing and hashing the inputs while the rest of freshinstall is still being imported.

``freshinstall fingerprint --no-cache`` reads every input, and on a small project the imports
that parse pyproject.toml and the configuration (tomllib, pathlib, typing, hashlib: about 40 ms)
take as long as that. Neither needs the other until the end: the file list comes from git and
the .gitignore files, not from pyproject.toml. So the console script forks a child first thing
(:func:`start`), which lists the files and hashes them one by one while the parent imports,
parses and validates. When the parent is ready (:meth:`Early.result`), it tells the child to
stop after the file at hand, takes the listing and the files hashed so far, and hashes the rest
itself as it always does, on both cores where that pays. On a small project the child is done
by then (1,000 files: 93 instead of 114 ms); on a large one it has listed the files, and the
hashing takes most of the run either way (docs/performance.md). The child runs the very
functions the parent would have run (fingerprint.listed_inputs, fingerprint.hash_entry), so the
digest is the same; its snapshot of the tree is only a few milliseconds earlier. When anything
goes wrong in the child, the parent computes everything itself, and reports the error as it
always does.

This module is imported before anything else, so it imports only ``os``, ``marshal``, ``mmap``
(all built in or small) and quick.py. The child's own imports are kept as small: fingerprint.py
and what it imports load neither typing nor pathlib, which took the child 15 ms longer.
"""

from __future__ import annotations

import marshal
import mmap
import os

from freshinstall import quick

#: One hashed file as the child sends it: the fields of a fingerprint.FileEntry.
Entry = tuple[str, str, str]


class Early:
    """A child listing and hashing the inputs of ``root``; :meth:`close` when done with it."""

    def __init__(self, root: str, pid: int, reader: int, ready: mmap.mmap) -> None:
        self.root = root
        self._pid: int | None = pid
        self._reader: int | None = reader
        #: One byte shared with the child: set when this process is ready to hash by itself.
        self._ready = ready
        #: Outside git, the child lists the files in a scratch repository of its own, which
        #: it removes when it is done listing (see fingerprint.listed_inputs).
        self._scratch = quick.find_work_tree(root) is None

    def result(self, root: str) -> tuple[list[str], int, list[Entry]] | None:
        """The paths listed in ``root``, how many of them (from the first) the child went
        through, and the entries it hashed among those (files that vanished or are not files
        are left out, as statcache.hash_files leaves them out). None when it failed, or worked
        on another directory than ``root``."""
        if self._reader is None or root != self.root:
            return None
        self._ready[0] = 1  # stop after the file at hand
        try:
            data = quick.read_all(self._reader)
        finally:
            os.close(self._reader)
            self._reader = None
        # What it wrote is whole when marshal reads it whole, as it checks every length it
        # reads: its exit status does not matter (it is reaped in close).
        try:
            paths, done, entries = marshal.loads(data)  # noqa: S302 - from our child: see _send
        except (EOFError, ValueError, TypeError):  # it failed, and wrote nothing or half
            return None
        return paths, done, entries

    def close(self) -> None:
        """Stop the child, in case its results were not taken (the parent failed first), and
        reap it. Killed outside git, it could leave its scratch repository behind: there it
        is told to stop instead, which it does after the file at hand or, while it is still
        listing, once it has listed the files and removed the repository."""
        if self._ready.closed:  # closed already
            return
        self._ready[0] = 1
        if self._reader is not None:
            os.close(self._reader)  # its write fails, if it gets that far
            self._reader = None
        if self._pid is not None:
            pid, self._pid = self._pid, None
            if not self._scratch:
                quick.kill(pid)
            quick.wait_child(pid)
        self._ready.close()


def start(path: str) -> Early | None:
    """Fork a child that lists and hashes the inputs of the project at ``path``; None when no
    child can be made or would help (see :func:`_worth_it`)."""
    root = os.path.realpath(path)  # as project.load_project's Path.resolve()
    if not (_worth_it(root) and quick.can_fork()):
        return None
    quick.restore_sigchld()  # else the child is reaped unseen, and its pid may be reused
    ready = mmap.mmap(-1, 1)  # anonymous and shared: the child sees what this process writes
    parent = os.getpid()
    forked = quick.fork_with_pipe(lambda writer: _send(writer, root, ready, parent))
    if forked is None:  # the parent does it all
        ready.close()
        return None
    pid, reader = forked
    return Early(root, pid, reader, ready)


def _worth_it(root: str) -> bool:
    """Whether ``root`` holds a project (else the parent says what is wrong at once) whose
    settings exclude no files, as far as a glance can tell. The child cannot know the
    settings, and would hash what they exclude, a data directory say, for nothing. So any
    pyproject.toml that names both freshinstall and "exclude" counts as excluding, and so
    does FRESHINSTALL_EXCLUDE: a wrong guess costs only the child's head start."""
    if "FRESHINSTALL_EXCLUDE" in os.environ:
        return False
    try:
        with open(os.path.join(root, "pyproject.toml"), "rb") as file:
            text = file.read()
    except FileNotFoundError:
        return os.path.isfile(os.path.join(root, "setup.py"))
    except OSError:  # the parent reports it
        return False
    return not (b"freshinstall" in text and b"exclude" in text)


def _send(writer: int, root: str, ready: mmap.mmap, parent: int) -> None:
    """In the child: list the inputs of ``root`` and hash them in order until ``ready`` is
    set, or the process ``parent`` is gone (killed by a signal it cannot handle); write the
    listing, how far it got and the entries to ``writer``, and close it.

    Its stdout and stderr go to /dev/null: it has nothing to say (the parent reports every
    error, reading again any file that failed here), and a caller waiting for the end of the
    run's output must not wait for it. marshal is safe here: the data comes from this very
    program, through a pipe only the two processes hold. It keeps str with surrogates
    (undecodable file names) as they are.
    """
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    # Imports neither typing, pathlib nor collections; in a git work tree not even tempfile.
    from freshinstall import fingerprint
    from freshinstall.errors import FingerprintError

    paths = fingerprint.listed_inputs(root).paths
    entries = []
    done = 0
    for path in paths:
        if ready[0] or os.getppid() != parent:
            break
        try:
            entry = fingerprint.hash_entry(root, path)
        except FingerprintError:
            break  # the parent reads it again, and says why it cannot
        if entry is not None:
            entries.append((entry.path, entry.kind, entry.digest))
        done += 1
    quick.write_all(writer, marshal.dumps((paths, done, entries)))
    os.close(writer)  # the parent reads to the end now, not once this process is torn down
