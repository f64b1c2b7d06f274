"""``freshinstall watch``: freshen the project now and after every change, until Ctrl-C.

Changes come from watchfiles (the ``watch`` extra) when it is installed, else from a poller.
Only changes that can reach a build count: events in dist/, build/, caches and the other outputs
are dropped (freshinstall's own writes to dist/ would otherwise trigger it again and again), and
a run starts after QUIET seconds without a change, so that saving ten files builds once.

The poller lists the inputs as the fingerprint does and compares their stat signatures every
INTERVAL seconds; it never hashes the tree in a loop. It hashes only the files changed in the
last few seconds, whose timestamps cannot be trusted yet: an edit within one timestamp tick that
keeps the size shows only in the content (git's "racy clean" problem).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freshinstall import config, fingerprint, inputs
from freshinstall.core import Options, Outcome, Reporter, freshen
from freshinstall.errors import FreshinstallError, ProjectError
from freshinstall.inputs import select
from freshinstall.project import Project, load_project

QUIET = 0.3
INTERVAL = 0.5
#: Files changed this recently are compared by content too (coarse timestamps, racy edits).
RACY_NS = 3_000_000_000
#: The git files that record commits, tags and the index: the VCS state a version plugin reads.
GIT_STATE = ("HEAD", "index", "packed-refs")

#: path -> (stat signature, content digest of a recently changed file or None)
Signature = dict[str, tuple[tuple[int, ...], str | None]]


class WatchError(FreshinstallError):
    """The file watcher failed."""


@dataclass(frozen=True)
class Run:
    """One freshen of a watch: its outcome, or the error it ended with."""

    outcome: Outcome | None = None
    error: FreshinstallError | OSError | None = None
    first: bool = False


def watch(
    options: Options,
    reporter: Reporter,
    report: Callable[[Run], None],
    *,
    poll: bool = False,
    quiet: float = QUIET,
    interval: float = INTERVAL,
    stop: threading.Event | None = None,
) -> None:
    """Freshen now and after every change, until ``stop`` is set or KeyboardInterrupt.

    A failed run is handed to ``report`` like a successful one, and watching goes on. Watching
    starts before the first run, so that edits made during a build are not missed.
    """
    project = load_project(options.path)
    stop = stop or threading.Event()
    tree = _Tree(project, options)
    changes = None if poll else _watchfiles(tree, reporter, quiet, stop)
    if changes is None:
        changes = _Poller(tree, interval, quiet, stop).changes()
    report(_freshen(options, reporter, first=True))
    for _ in changes:
        report(_freshen(options, reporter, first=False))


def _freshen(options: Options, reporter: Reporter, *, first: bool) -> Run:
    try:
        return Run(outcome=freshen(options, reporter), first=first)
    except (FreshinstallError, OSError) as error:
        return Run(error=error, first=first)


class _Tree:
    """What of the project is watched: its input files, and git's state when it sets the version."""

    def __init__(self, project: Project, options: Options) -> None:
        self.root = project.root
        self.options = options
        self.git_dirs = (
            _git_dirs(project.root) if inputs.uses_vcs_version(project.pyproject) else []
        )
        self.known: frozenset[str] = frozenset()
        self.venvs: frozenset[str] = frozenset()
        self.refresh()

    def refresh(self) -> None:
        """Re-list the inputs (they change with .gitignore, git add, the configuration)."""
        with contextlib.suppress(FreshinstallError):  # the next run reports it
            self.known = frozenset(self.inputs())
        self.venvs = frozenset(
            f"{entry.name}/"
            for entry in os.scandir(self.root)
            if entry.is_dir(follow_symlinks=False) and os.path.isfile(f"{entry.path}/pyvenv.cfg")
        )

    def inputs(self) -> list[str]:
        """The input files, as freshen selects them, plus the git state files when relevant."""
        project = load_project(self.options.path)
        paths = fingerprint.list_inputs(project.root)
        # A configuration error is freshen's to report; meanwhile watch the plain inputs.
        with contextlib.suppress(ProjectError):
            paths = select(project.root, paths, config.load(project, self.options.overrides()))
        return paths + self.git_files()

    def git_files(self) -> list[str]:
        """Absolute paths of the files that record commits, tags and the index."""
        found = []
        for git_dir in self.git_dirs:
            found += [os.path.join(git_dir, name) for name in GIT_STATE]
            for top, _, names in os.walk(git_dir / "refs"):
                found += [os.path.join(top, name) for name in names]
        return found

    def relevant(self, path: str) -> bool:
        """Whether an event on ``path`` (absolute) can change the build."""
        for git_dir in self.git_dirs:
            inside = os.path.relpath(path, git_dir)
            if not _outside(inside):
                return inside in GIT_STATE or inside.startswith("refs" + os.sep)
        rel = os.path.relpath(path, self.root)
        if _outside(rel):
            return False
        rel = rel.replace(os.sep, "/")
        if rel in self.known:
            return True
        outputs = fingerprint.root_output_dirs(self.root)
        # ``path`` may be a directory: "src/__pycache__" itself is output too.
        return not any(
            fingerprint.is_output(candidate, self.venvs, outputs) for candidate in (rel, f"{rel}/_")
        )


def _outside(relpath: str) -> bool:
    return relpath == os.pardir or relpath.startswith(os.pardir + os.sep)


def _git_dirs(root: Path) -> list[Path]:
    """The git directory of the work tree holding ``root``, and its common directory."""
    top = fingerprint.find_git_dir(root)
    if top is None:
        return []
    git_dir = top / ".git"
    try:
        if git_dir.is_file():  # a worktree or submodule: ".git" holds "gitdir: <path>"
            text = git_dir.read_text(encoding="utf-8").strip()
            git_dir = (top / text.removeprefix("gitdir:").strip()).resolve()
        common = git_dir / "commondir"
        if common.is_file():
            return [git_dir, (git_dir / common.read_text(encoding="utf-8").strip()).resolve()]
    except OSError:
        return []
    return [git_dir]


def _watchfiles(
    tree: _Tree, reporter: Reporter, quiet: float, stop: threading.Event
) -> Iterator[None] | None:
    """Changes as watchfiles reports them; None when it is not installed or cannot start."""
    try:
        import watchfiles
    except ImportError:
        reporter.note(
            "watchfiles is not installed (pip install 'freshinstall[watch]'): "
            f"polling every {INTERVAL}s instead"
        )
        return None
    paths = [tree.root, *(d for d in tree.git_dirs if not d.is_relative_to(tree.root))]
    step = max(1, round(quiet * 1000))
    stream = watchfiles.watch(
        *paths,
        watch_filter=lambda _change, path: tree.relevant(path),
        step=step,
        # Wake up now and then without changes: the first wake-up tells us watching has begun.
        rust_timeout=2 * step,
        yield_on_timeout=True,
        stop_event=stop,
    )
    try:
        next(stream)
    except (OSError, RuntimeError) as error:
        reporter.note(f"watchfiles cannot watch {tree.root} ({error}): polling instead")
        return None
    return _batches(tree, stream)


def _batches(tree: _Tree, stream: Iterator[set[Any]]) -> Iterator[None]:
    try:
        for batch in stream:
            if batch:
                yield
                tree.refresh()
    except (OSError, RuntimeError) as error:
        raise WatchError(f"watching {tree.root} failed: {error}") from None


class _Poller:
    """Changes found by comparing stat signatures of the inputs every ``interval`` seconds."""

    def __init__(self, tree: _Tree, interval: float, quiet: float, stop: threading.Event) -> None:
        self.tree = tree
        self.interval = interval
        self.quiet = quiet
        self.stop = stop
        self.last = self.take()  # before the first run: edits during it are seen

    def take(self) -> Signature:
        try:
            return signature(self.tree.root, self.tree.inputs(), time.time_ns())
        except FreshinstallError as error:
            # Unlistable (a broken pyproject.toml, say): one run reports it, then quiet until
            # the error changes.
            return {"": ((), str(error))}

    def changes(self) -> Iterator[None]:
        while not self.stop.wait(self.interval):
            current = self.take()
            if changed(self.last, current):
                while not self.stop.wait(self.quiet):  # settle: wait for QUIET without changes
                    later = self.take()
                    if not changed(current, later):
                        break
                    current = later
                else:
                    return
                self.last = current
                yield
            else:
                self.last = current


def signature(root: Path, paths: Iterable[str], now_ns: int) -> Signature:
    """What can be learnt about ``paths`` cheaply: lstat, plus the content of recent files."""
    found: Signature = {}
    for path in paths:
        try:
            info = os.lstat(os.path.join(root, path))
        except OSError:
            continue  # gone (or unreadable: freshen says so)
        key = (info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        digest = None
        if now_ns - max(info.st_mtime_ns, info.st_ctime_ns) < RACY_NS:
            entry = fingerprint.hash_entry(root, path)
            digest = entry.digest if entry else None
        found[path] = (key, digest)
    return found


def changed(old: Signature, new: Signature) -> bool:
    """Whether anything differs; digests are compared where both sides have one."""
    if old.keys() != new.keys():
        return True
    for path, (info, digest) in new.items():
        old_info, old_digest = old[path]
        if info != old_info or (digest and old_digest and digest != old_digest):
            return True
    return False
