"""early.py: the child that lists and hashes the inputs while ``freshinstall fingerprint
--no-cache`` imports the rest gives the very digest computed without it, whenever the parent
takes over; every file is read once; and whatever goes wrong in the child, the parent computes
the digest itself, or reports the error it always did.

pytest-xdist's workers run threads, so quick.can_fork says no fork there; the tests below that
run in this process say yes (the child only lists, hashes and exits). One test runs the console
script's code in a process of its own, where the child is made as for a user.
"""

from __future__ import annotations

import gc
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from freshinstall import config, early, fingerprint, inputs, launch, project, quick
from freshinstall.errors import FingerprintError, ProjectError
from freshinstall.project import load_project
from tests.helpers import (
    SLOW_LOGGED_READS,
    commit_all,
    git,
    kill_then_no_more_reads,
    process_state,
    write,
)
from tests.test_quick import FILES, NON_UTF8_NAME, SCM, child_pids, make_project
from tests.test_statcache import refuse_to_read

#: Besides test_quick's project: an executable, a link out of the tree, a cache and a virtual
#: environment nobody ignored, a file .gitignore leaves out, and an undecodable name.
MORE: Mapping[str, str | bytes] = {
    "scripts/run.sh": "#!/bin/sh\necho hi\n",
    "src/demo/__pycache__/a.cpython-311.pyc": b"\0\0",
    "venv/pyvenv.cfg": "home = /usr/bin\n",
    "venv/lib/site.py": "S = 1\n",
    "debug.log": "ignored\n",
    f"src/demo/{NON_UTF8_NAME}": "E = 5\n",
}
#: Settings that put an ignored file into git's view, or take files out of it.
INCLUDE = '\n[tool.freshinstall]\ninclude = ["*.log"]\n'
EXCLUDE = '\n[tool.freshinstall]\nexclude = ["src/demo/b.py", "scripts/*"]\n'


@pytest.fixture(autouse=True)
def forking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quick, "can_fork", lambda: True)


def project_at(root: Path, *, in_git: bool, settings: str = "") -> Path:
    make_project(root, in_git=in_git)
    for relpath, content in MORE.items():
        write(root, relpath, content)
    (root / "scripts/run.sh").chmod(0o755)
    (root / "src/demo/out.py").symlink_to("/etc/hostname")
    with (root / "pyproject.toml").open("a", encoding="utf-8") as file:
        file.write(settings)
    return root


def load_and_fingerprint(root: Path) -> fingerprint.Fingerprint:
    loaded = load_project(root)
    return inputs.fingerprint_project(loaded, config.load(loaded), use_cache=False)[1]


def computed_here(root: Path) -> str:
    """The digest without a child: everything listed and hashed in this process."""
    return load_and_fingerprint(root).digest


def at_once(pid: int) -> None:
    """The parent is ready at once: in this process its imports are long done."""


def with_child(
    root: Path, taken: list[int | None], ready: Callable[[int], object] = at_once
) -> str:
    """``freshinstall fingerprint --no-cache ROOT``'s digest. ``taken`` gets, per run, how many
    paths the child went through, or None when its results were not taken. ``ready(pid)``
    runs before the parent tells child ``pid`` to stop."""
    real = early.Early.result

    def result(self: early.Early, where: str) -> tuple[list[str], int, list[early.Entry]] | None:
        assert self._pid is not None
        ready(self._pid)
        found = real(self, where)
        taken.append(None if found is None else found[1])
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(early.Early, "result", result)
        return launch.fingerprint_text(root, no_cache=True, as_json=False)


def when_done(pid: int) -> None:
    """Wait until the child ``pid`` has exited (it stays a zombie until the parent reaps it)."""
    deadline = time.monotonic() + 60
    while process_state(pid) not in {"Z", ""} and time.monotonic() < deadline:
        time.sleep(0.005)


def hashed_by(monkeypatch: pytest.MonkeyPatch, log: Path, *, slow: float = 0.0) -> None:
    """Log to ``log`` which process reads which file (a forked child's lines land there too);
    each read takes ``slow`` seconds longer."""
    real = fingerprint._hash_contents

    def logged(source: str, copy_to: Path | None, mode: int) -> str:
        with log.open("a", encoding="utf-8", errors="surrogateescape") as file:
            file.write(f"{os.getpid()} {os.path.basename(source)}\n")
        time.sleep(slow)
        return real(source, copy_to, mode)

    monkeypatch.setattr(fingerprint, "_hash_contents", logged)


def reads(log: Path) -> list[tuple[int, str]]:
    """(pid, file name) per read, from ``log`` (see hashed_by)."""
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    return [(int(pid), name) for pid, name in (line.split(" ", 1) for line in lines)]


def after_some(log: Path, count: int) -> Callable[[int], None]:
    """A ``ready`` for with_child: once the child has read ``count`` files."""

    def ready(pid: int) -> None:
        deadline = time.monotonic() + 60
        while sum(reader == pid for reader, _ in reads(log)) < count:
            assert time.monotonic() < deadline
            time.sleep(0.005)

    return ready


def ready_for(moment: str, log: Path) -> Callable[[int], object]:
    """When the parent is ready, against the child's progress: with its work done, half-way
    (after three files, which take 20 ms each then), or at once (the child may not even have
    listed the files yet)."""
    if moment == "child-done":
        return when_done
    if moment == "half-way":
        return after_some(log, 3)
    return at_once


@pytest.mark.parametrize("ready", ["child-done", "half-way", "at-once"])
@pytest.mark.parametrize("settings", ["", INCLUDE], ids=["as-listed", "include"])
@pytest.mark.parametrize("in_git", [False, True], ids=["plain", "git"])
def test_the_digest_is_the_one_computed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, in_git: bool, settings: str, ready: str
) -> None:
    root = project_at(tmp_path / "project", in_git=in_git, settings=settings)
    expected = computed_here(root)
    files = {name for _, name in reads_of(tmp_path, monkeypatch, root)}
    log = tmp_path / "hashed-by"
    hashed_by(monkeypatch, log, slow=0.02 if ready == "half-way" else 0.0)
    taken: list[int | None] = []
    before = child_pids()
    assert with_child(root, taken, ready_for(ready, log)) == expected
    assert child_pids() <= before  # reaped
    (done,) = taken
    assert done is not None
    seen = reads(log)
    assert sorted(name for _, name in seen) == sorted(files)  # each file read once
    mine = {name for pid, name in seen if pid == os.getpid()}
    theirs = {name for pid, name in seen if pid != os.getpid()}
    if ready == "child-done":  # only what the settings add to git's view is read here
        assert mine == ({"debug.log"} if settings else set())
    if ready == "half-way":
        assert len(theirs) >= 3
        assert mine - {"debug.log"}


def reads_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: Path) -> list[tuple[int, str]]:
    """The reads of the digest computed here, in a log of their own."""
    log = tmp_path / "reads-here"
    with monkeypatch.context() as patch:
        hashed_by(patch, log)
        computed_here(root)
    return reads(log)


@pytest.mark.parametrize("where", ["pyproject.toml", "environment"])
def test_no_child_where_files_may_be_excluded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The child cannot know the settings, and would hash what they exclude (a data directory,
    say) for nothing: no child where files may be excluded. The digest is the same."""
    if where == "environment":
        root = project_at(tmp_path / "project", in_git=True)
        monkeypatch.setenv("FRESHINSTALL_EXCLUDE", "src/demo/b.py scripts/*")
    else:
        root = project_at(tmp_path / "project", in_git=True, settings=EXCLUDE)
    expected = computed_here(root)
    taken: list[int | None] = []
    assert with_child(root, taken) == expected
    assert taken == []
    monkeypatch.delenv("FRESHINSTALL_EXCLUDE", raising=False)
    assert expected != computed_here(project_at(tmp_path / "unexcluded", in_git=True))


def test_a_change_is_seen_through_the_child(tmp_path: Path) -> None:
    root = project_at(tmp_path / "project", in_git=True)
    taken: list[int | None] = []
    before = with_child(root, taken, when_done)
    write(root, "src/demo/a.py", "A = 2\n")
    after = with_child(root, taken, when_done)
    assert after != before
    assert after == computed_here(root)
    assert None not in taken


@pytest.mark.parametrize("collecting", [True, False], ids=["gc-on", "gc-off"])
def test_garbage_collection_is_off_while_the_child_runs_then_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, collecting: bool
) -> None:
    """launch.fingerprint_text turns garbage collection off before the fork, in the child as
    in the parent, and leaves it as it found it for a library caller."""
    root = project_at(tmp_path / "project", in_git=True)
    seen: list[bool] = []
    real = early._send

    def send(writer: int, where: str, ready: mmap.mmap, parent: int) -> None:
        seen.append(gc.isenabled())  # in the child: only the parent's list, changed below
        assert not gc.isenabled()
        real(writer, where, ready, parent)

    monkeypatch.setattr(early, "_send", send)
    taken: list[int | None] = []
    (gc.enable if collecting else gc.disable)()
    try:
        with_child(root, taken, lambda _: seen.append(gc.isenabled()))
        assert gc.isenabled() == collecting
    finally:
        gc.enable()
    assert seen == [False]  # in the parent while the child runs
    assert len(taken) == 1
    assert taken[0] is not None  # the child's assertion held: it sent its results


def test_garbage_collection_stays_off_in_the_console_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the console script, which ends right after, collections stay off to the end."""
    root = project_at(tmp_path / "project", in_git=True)
    monkeypatch.setattr(launch._Exit, "ends", True)
    try:
        assert launch.fingerprint_text(root, no_cache=True, as_json=False) == computed_here(root)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_garbage_collection_is_back_on_when_the_fork_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of file descriptors for the pipe, say: the error goes up, and collections are on."""
    root = project_at(tmp_path / "project", in_git=True)

    def pipe() -> tuple[int, int]:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(os, "pipe", pipe)
    with pytest.raises(OSError, match="Too many open files"):
        launch.fingerprint_text(root, no_cache=True, as_json=False)
    assert gc.isenabled()


def test_a_child_that_fails_leaves_the_work_to_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project_at(tmp_path / "project", in_git=True)
    expected = computed_here(root)

    def fail(writer: int, where: str, ready: object, parent: int) -> None:
        raise OSError("no more file descriptors, say")

    monkeypatch.setattr(early, "_send", fail)
    taken: list[int | None] = []
    before = child_pids()
    assert with_child(root, taken, when_done) == expected
    assert taken == [None]
    assert child_pids() <= before


def test_half_an_answer_is_no_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child killed half-way through writing (say by the OOM killer) exits, and the pipe
    ends; marshal finds the data cut short and the parent computes everything itself."""
    root = project_at(tmp_path / "project", in_git=True)
    expected = computed_here(root)
    real = early._send

    def half(writer: int, where: str, ready: mmap.mmap, parent: int) -> None:
        reader, inner = os.pipe()
        real(inner, where, ready, parent)
        data = os.read(reader, 1 << 20)
        os.write(writer, data[: len(data) // 2])
        os._exit(0)  # as if killed: success is not what the parent relies on

    monkeypatch.setattr(early, "_send", half)
    taken: list[int | None] = []
    assert with_child(root, taken, when_done) == expected
    assert taken == [None]


def test_an_unreadable_file_is_reported_as_without_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child stops at the file it cannot read; the parent reads it again, from there on,
    and reports it as it does without a child."""
    root = project_at(tmp_path / "project", in_git=True)
    refuse_to_read(monkeypatch, "src/demo/b.py")  # in the child too: it is a fork of this one
    taken: list[int | None] = []
    before = child_pids()
    with pytest.raises(FingerprintError, match=r"^cannot read src/demo/b\.py: Permission denied$"):
        with_child(root, taken, when_done)
    listed = fingerprint.list_inputs(root)
    assert taken == [listed.index("src/demo/b.py")]
    assert child_pids() <= before


def test_the_child_is_stopped_when_the_parent_fails_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invalid TOML: the parent reports it, and the child, which was hashing with its stdout
    and stderr on /dev/null (it has nothing to say), is killed and reaped rather than left to
    finish."""
    root = project_at(tmp_path / "project", in_git=True)
    for index in range(40):
        write(root, f"src/demo/many/m{index:02}.py", f"M = {index}\n")
    write(root, "pyproject.toml", "[project\n")
    log = tmp_path / "hashed-by"
    hashed_by(monkeypatch, log, slow=0.05)  # a child busy for two seconds
    forked: list[int] = []
    real_fork, real_load = quick.fork, project.load_project
    outputs: set[str] = set()

    def fork(child: Callable[[], bool]) -> int:
        forked.append(real_fork(child))
        return forked[-1]

    def load(path: str | os.PathLike[str]) -> project.Project:
        after_some(log, 1)(forked[0])
        outputs.update(os.readlink(f"/proc/{forked[0]}/fd/{fd}") for fd in (1, 2))
        return real_load(path)

    monkeypatch.setattr(quick, "fork", fork)
    monkeypatch.setattr(project, "load_project", load)
    with pytest.raises(ProjectError, match="invalid TOML"):
        launch.fingerprint_text(root, no_cache=True, as_json=False)
    assert outputs == {os.devnull}
    assert len(forked) == 1
    with pytest.raises(ProcessLookupError):  # not even a zombie
        os.kill(forked[0], 0)
    assert len(reads(log)) < 10


def test_settings_that_exclude_files_apply_to_the_childs_results(tmp_path: Path) -> None:
    """Where the settings exclude files all the same (start() only glances at pyproject.toml),
    the child's entries for them are dropped."""
    root = project_at(tmp_path / "project", in_git=True)
    loaded = load_project(root)
    settings = config.load(loaded)._replace(exclude=("src/demo/b.py", "scripts/*"))
    expected = inputs.fingerprint_project(loaded, settings, use_cache=False)[1]
    child = early.start(os.fspath(root))
    assert child is not None
    try:
        assert child._pid is not None
        when_done(child._pid)
        found = inputs.fingerprint_project(loaded, settings, use_cache=False, early=child)[1]
    finally:
        child.close()
    assert found == expected
    assert "src/demo/b.py" not in {entry.path for entry in found.files}


def test_outside_git_the_child_removes_its_scratch_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside git the child lists the files with a scratch repository of its own. When the
    parent fails while the child lists (invalid TOML), the child is not killed, which would
    leave the repository in $TMPDIR: it is told to stop, and stops once it has removed it."""
    root = project_at(tmp_path / "project", in_git=False)
    write(root, "pyproject.toml", "[project\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", os.fspath(scratch))
    real = fingerprint._git_ls_files
    listing = tmp_path / "listing"

    def slow(where: str, git_options: list[str]) -> tuple[list[tuple[str, bool]], bytes]:
        listing.touch()
        time.sleep(0.3)
        return real(where, git_options)

    def load(path: str | os.PathLike[str]) -> project.Project:
        deadline = time.monotonic() + 60
        while not listing.exists():  # the child is listing, in its scratch repository
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert [child.name for child in scratch.iterdir()]
        return real_load(path)

    real_load = project.load_project
    monkeypatch.setattr(fingerprint, "_git_ls_files", slow)
    monkeypatch.setattr(project, "load_project", load)
    before = child_pids()
    with pytest.raises(ProjectError, match="invalid TOML"):
        launch.fingerprint_text(root, no_cache=True, as_json=False)
    assert list(scratch.iterdir()) == []
    assert child_pids() <= before


def test_the_child_stops_once_its_parent_is_gone(tmp_path: Path) -> None:
    """A parent killed by a signal it cannot handle cannot tell its child to stop: the child
    stops by itself after the file at hand. In a process of its own, to be killed."""
    root = project_at(tmp_path / "project", in_git=True)
    for index in range(40):
        write(root, f"src/demo/many/m{index:02}.py", f"M = {index}\n")
    log = tmp_path / "hashed-by"
    script = SLOW_LOGGED_READS + "from freshinstall import early\nearly.start(sys.argv[2])\n"
    script += "time.sleep(60)\n"  # as if importing, until killed
    run = subprocess.Popen([sys.executable, "-c", script, os.fspath(log), os.fspath(root)])
    kill_then_no_more_reads(run, log, readers=1)


def test_no_child_where_it_cannot_help(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not for a directory without a project (the parent says what is wrong at once), nor where
    no process can be made; and results from another directory are not taken."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert early.start(os.fspath(empty)) is None
    root = project_at(tmp_path / "project", in_git=True)
    child = early.start(os.fspath(root))
    assert child is not None
    try:
        assert child.result(os.fspath(empty)) is None
    finally:
        child.close()
    child.close()  # twice is harmless
    assert child.result(os.fspath(root)) is None

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    fds = len(os.listdir("/proc/self/fd"))
    assert early.start(os.fspath(root)) is None
    assert len(os.listdir("/proc/self/fd")) == fds  # the pipe is closed again
    taken: list[int | None] = []
    assert with_child(root, taken) == computed_here(root)
    assert taken == []


def test_the_console_script_hashes_in_a_child(tmp_path: Path) -> None:
    """In a process of its own, as a user runs it: the child is made (no test patches
    can_fork there) and gives the digest computed here."""
    root = project_at(tmp_path / "pro ject $(x)", in_git=True)
    script = (
        "import sys\n"
        "from freshinstall import early, launch\n"
        "real, used = early.Early.result, []\n"
        "def result(self, where):\n"
        "    found = real(self, where)\n"
        "    used.append(found is not None)\n"
        "    return found\n"
        "early.Early.result = result\n"
        "code = launch.main(['fingerprint', '--no-cache', sys.argv[1]])\n"
        "print(used, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, os.fspath(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    expected = "[True]" if len(os.sched_getaffinity(0)) > 1 else "[]"
    assert run.stderr.strip() == expected
    assert run.stdout.strip() == computed_here(root)


def test_sigchld_ignored_by_a_library_caller(tmp_path: Path) -> None:
    """A caller that ignores SIGCHLD (the console script restores it first thing): git's exit
    statuses are still seen, so the digest is the one computed with SIGCHLD at its default.
    Here `git status` for the VCS state waits for a git of its own, in the submodule; with
    SIGCHLD ignored, that wait would fail and its message would enter the digest."""
    inner = make_project(tmp_path / "inner", in_git=True)
    root = make_project(tmp_path / "project", {**FILES, "pyproject.toml": SCM})
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "-q",
        os.fspath(inner), "sub")  # fmt: skip
    commit_all(root, "with a submodule")
    expected = computed_here(root)
    assert "vcs" in load_and_fingerprint(root).extras
    taken: list[int | None] = []
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert with_child(root, taken, when_done) == expected
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert None not in taken
