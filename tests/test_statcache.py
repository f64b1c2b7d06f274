"""The stat cache: it saves reads, never changes a digest, and is ignored when it cannot be trusted.

Tests shorten the racy margin to 50 ms (and wait that long where a cache hit is wanted), so they
need no multi-second sleeps; the rule they test is the same.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freshinstall import fingerprint, quick, statcache
from freshinstall.cli import main
from freshinstall.errors import FingerprintError
from tests.helpers import SHORT_MARGIN_NS as MARGIN_NS
from tests.helpers import SLOW_LOGGED_READS, commit_all, git, kill_then_no_more_reads, settle, write
from tests.test_quick import child_pids

FILES: Mapping[str, str | bytes] = {
    "pyproject.toml": "[project]\nname = 'demo'\nversion = '1.0'\n",
    "src/demo/__init__.py": "",
    "src/demo/cli.py": "print('hello')\n",
    "src/demo/data.bin": bytes(range(256)) * 4,
    "scripts/run.sh": "#!/bin/sh\necho hi\n",
}
#: The margin other processes use.
REAL_MARGIN_NS = quick.MARGIN_NS


@pytest.fixture(autouse=True)
def short_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quick, "MARGIN_NS", MARGIN_NS)


def make_tree(root: Path, *, in_git: bool) -> Path:
    for relpath, content in FILES.items():
        write(root, relpath, content)
    (root / "scripts/run.sh").chmod(0o755)
    (root / "src/demo/alias.py").symlink_to("cli.py")
    if in_git:
        git(root, "init", "-q")
        commit_all(root, "initial")
    return root


@pytest.fixture(params=[False, True], ids=["plain", "git"])
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The same small project as a plain directory and as a git work tree."""
    return make_tree(tmp_path / "project", in_git=bool(request.param))


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """The project as a plain directory, for tests where git makes no difference."""
    return make_tree(tmp_path / "project", in_git=False)


@pytest.fixture
def in_git(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "project", in_git=True)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files whose contents were read (hashed), in order; safe from several threads."""
    seen: list[str] = []
    real = fingerprint._hash_contents

    def counting(source: str, copy_to: Path | None, mode: int) -> str:
        seen.append(source)
        return real(source, copy_to, mode)

    monkeypatch.setattr(fingerprint, "_hash_contents", counting)
    return seen


def cached(root: Path) -> str:
    paths = fingerprint.list_inputs(root)
    return fingerprint.combine(statcache.hash_files(root, paths, root / "dist")).digest


def uncached(root: Path) -> str:
    return fingerprint.compute(root).digest


def cli_fingerprint(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["fingerprint", *args]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1, out
    return out.strip()


def regular_files(root: Path) -> int:
    return sum(1 for path in fingerprint.list_inputs(root) if not (root / path).is_symlink())


# --- the cache saves reads ---------------------------------------------------------------------


def test_unchanged_files_are_not_read_again(tree: Path, reads: list[str]) -> None:
    settle()
    first = cached(tree)
    assert len(reads) == regular_files(tree)
    assert (tree / "dist" / quick.FILENAME).is_file()
    reads.clear()
    assert cached(tree) == first == uncached(tree)
    assert len(reads) == regular_files(tree)  # only uncached() read them
    reads.clear()
    cached(tree)
    assert reads == []


def test_hits_do_not_rewrite_the_cache(plain: Path) -> None:
    settle()
    cached(plain)
    cache = plain / "dist" / quick.FILENAME
    before = cache.stat()
    cached(plain)
    after = cache.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_only_changed_files_are_read(plain: Path, reads: list[str]) -> None:
    settle()
    cached(plain)
    write(plain, "src/demo/cli.py", "print('bye')\n")
    write(plain, "src/demo/new.py", "x = 1\n")
    reads.clear()
    assert cached(plain) == uncached(plain)
    assert sorted(os.path.basename(path) for path in reads[:2]) == ["cli.py", "new.py"]


def test_files_that_went_leave_the_cache(plain: Path) -> None:
    settle()
    cached(plain)
    (plain / "src/demo/cli.py").unlink()
    assert cached(plain) == uncached(plain)
    records, _ = statcache.load(plain / "dist")
    assert "src/demo/cli.py" not in records
    assert "src/demo/__init__.py" in records


# --- the racy-timestamp rule -------------------------------------------------------------------


def test_fresh_files_are_hashed_every_time(
    plain: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quick, "MARGIN_NS", 3_600 * 10**9)  # everything is "just changed"
    cached(plain)
    reads.clear()
    cached(plain)
    assert len(reads) == regular_files(plain)
    # A cache that could save nothing is not written at all.
    assert not (plain / "dist" / quick.FILENAME).exists()


@dataclass(frozen=True)
class FakeStat:
    """The stat fields the cache reads, for a filesystem whose clock hides an edit."""

    st_size: int
    st_mtime_ns: int
    st_ctime_ns: int
    st_ino: int
    st_mode: int


def frozen_clock(monkeypatch: pytest.MonkeyPatch, at_ns: int) -> None:
    """Make every file's mtime and ctime read ``at_ns``: an edit leaves no trace in stat data.

    This is a filesystem whose timestamps are coarser than the time between an edit and the
    cache being written: the edit lands in the same tick, and only the racy rule can see it.
    """
    real = os.lstat

    def lstat(path: str) -> os.stat_result:
        info = real(path)
        return cast(
            "os.stat_result",
            FakeStat(info.st_size, at_ns, at_ns, info.st_ino, info.st_mode),
        )

    monkeypatch.setattr(statcache, "_lstat", lstat)


def same_size_edit(root: Path) -> None:
    path = root / "src/demo/cli.py"
    before = path.stat().st_size
    with path.open("r+b") as file:  # in place: same inode
        file.write(b"PRINT")
    assert path.stat().st_size == before


def _all_records(root: Path) -> dict[str, str]:
    """Records for every file as it is now, as a run would have written them."""
    records = {}
    for entry in statcache.hash_files(root, fingerprint.list_inputs(root)):
        info = statcache._lstat(str(root / entry.path))
        signature = (
            f"{info.st_size} {info.st_mtime_ns} {info.st_ctime_ns} {info.st_ino} {info.st_mode} "
        )
        records[entry.path] = signature + entry.digest
    return records


def test_edit_in_the_same_tick_as_the_cache_write_is_seen(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = uncached(tree)
    now = time.time_ns()
    frozen_clock(monkeypatch, now)
    statcache.save(tree / "dist", _all_records(tree), now)  # written in that same tick
    same_size_edit(tree)
    assert cached(tree) != first
    assert cached(tree) == uncached(tree)


def test_identical_stat_data_older_than_the_margin_is_trusted(
    plain: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: without the racy rule the same edit would be missed.

    Real filesystems cannot get here: an edit always moves ctime, which no user can set back.
    """
    first = uncached(plain)
    now = time.time_ns()
    frozen_clock(monkeypatch, now - 10 * MARGIN_NS)
    statcache.save(plain / "dist", _all_records(plain), now)
    same_size_edit(plain)
    assert cached(plain) == first != uncached(plain)


def test_same_size_edit_with_restored_mtime_is_seen(tree: Path, reads: list[str]) -> None:
    settle()
    path = tree / "src/demo/cli.py"
    old = path.stat()
    first = cached(tree)
    same_size_edit(tree)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    new = path.stat()
    assert (new.st_size, new.st_mtime_ns, new.st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino)
    reads.clear()
    assert cached(tree) != first
    assert [os.path.basename(path) for path in reads] == ["cli.py"]
    assert cached(tree) == uncached(tree)


def test_a_wall_clock_ahead_of_the_filesystem_does_not_make_fresh_files_trusted(
    plain: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stat data that hides the edit, and a wall clock an hour ahead when the cache is written:
    # the cache file's own mtime (the filesystem's clock) still marks the files as racy.
    first = uncached(plain)
    now = time.time_ns()
    frozen_clock(monkeypatch, now)
    ahead = now + 3_600 * 10**9
    with monkeypatch.context() as patch:
        patch.setattr(statcache, "_now_ns", lambda: ahead + 1)
        statcache.save(plain / "dist", _all_records(plain), ahead)
    same_size_edit(plain)
    assert cached(plain) != first
    assert cached(plain) == uncached(plain)


# --- cached and uncached always agree ----------------------------------------------------------


def _chmod(root: Path) -> None:
    (root / "src/demo/cli.py").chmod(0o755)


def _retarget(root: Path) -> None:
    link = root / "src/demo/alias.py"
    link.unlink()
    link.symlink_to("xyz.py")  # a target of the same length


def _restore_mtime_edit(root: Path) -> None:
    path = root / "src/demo/data.bin"
    old = path.stat()
    path.write_bytes(bytes(reversed(path.read_bytes())))
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))


EDITS: dict[str, Callable[[Path], object]] = {
    "same-size, mtime restored": _restore_mtime_edit,
    "chmod +x": _chmod,
    "symlink retargeted": _retarget,
    "delete": lambda root: (root / "src/demo/__init__.py").unlink(),
    "add": lambda root: write(root, "src/demo/new.py", "y = 2\n"),
    "rename": lambda root: (root / "src/demo/cli.py").rename(root / "src/demo/main.py"),
    "truncate": lambda root: write(root, "src/demo/cli.py", ""),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_cli_cached_equals_no_cache_after_edits(
    tree: Path, edit: Callable[[Path], object], capsys: pytest.CaptureFixture[str]
) -> None:
    settle()
    before = cli_fingerprint(capsys, str(tree))
    assert before == cli_fingerprint(capsys, "--no-cache", str(tree))
    assert (tree / "dist" / quick.FILENAME).is_file()
    edit(tree)
    after = cli_fingerprint(capsys, str(tree))
    assert after != before
    assert after == cli_fingerprint(capsys, "--no-cache", str(tree))
    settle()
    assert cli_fingerprint(capsys, str(tree)) == after


NAMES = ("a.py", "b.txt", "pkg/c.py", "pkg/d.py")


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["write", "write-keep-mtime", "delete", "chmod"]),
            st.sampled_from(NAMES),
            st.binary(min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_cached_always_equals_uncached(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, str, bytes]]
) -> None:
    root = tmp_path_factory.mktemp("prop")
    for name in NAMES:
        write(root, name, b"abc")
    settle()
    cached(root)  # a full, trusted cache
    for action, name, content in ops:
        path = root / name
        if action == "delete":
            path.unlink(missing_ok=True)
        elif action == "chmod" and path.exists():
            path.chmod(path.stat().st_mode ^ 0o100)
        elif action.startswith("write"):
            old = path.stat() if path.exists() else None
            write(root, name, content.ljust(3, b"-")[:3])
            if old is not None and action == "write-keep-mtime":
                os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
        assert cached(root) == uncached(root)


# --- a bad cache only costs time ---------------------------------------------------------------


def _valid_cache(root: Path) -> bytes:
    settle()
    cached(root)
    return (root / "dist" / quick.FILENAME).read_bytes()


def _with_crc(body: bytes, started: int = 1, written: int = 2) -> bytes:
    """A cache of records ``body`` without an answer, with valid CRCs."""
    crcs = f"0 {zlib.crc32(b'')} {zlib.crc32(body)}"
    return f"{quick.MAGIC} {started} {written} {crcs}\n".encode() + body


def _flip_digest(data: bytes) -> bytes:
    return data[:-3] + (b"0" if data[-3:-2] != b"0" else b"1") + data[-2:]


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda _: b"",
    "garbage": lambda _: os.urandom(256),
    "truncated": lambda data: data[: len(data) // 2],
    "digest changed (crc)": _flip_digest,
    "other format": lambda data: data.replace(quick.MAGIC.encode(), b"freshinstall-statcache-0"),
    "header only": lambda data: data.split(b"\n", 1)[0],
    "no header": lambda data: data.split(b"\n", 1)[1],
    "odd fields": lambda _: _with_crc(b"src/demo/cli.py\0"),
    "short record": lambda _: _with_crc(b"src/demo/cli.py\x001 2 3 4 5 abc\0"),
    "not utf-8": lambda _: _with_crc(b"\xff\xfe\0x\0"),
    "started after written": lambda data: _with_crc(data.split(b"\n", 1)[1], 5, 4),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_corrupt_cache_is_ignored_and_replaced(
    plain: Path, corrupt: Callable[[bytes], bytes], reads: list[str]
) -> None:
    cache = plain / "dist" / quick.FILENAME
    cache.write_bytes(corrupt(_valid_cache(plain)))
    reads.clear()
    assert cached(plain) == uncached(plain)
    assert len(reads) == 2 * regular_files(plain)  # both read everything
    records, _ = statcache.load(plain / "dist")
    assert set(records) == set(fingerprint.list_inputs(plain))


def test_unreadable_cache_is_ignored(plain: Path) -> None:
    (plain / "dist" / quick.FILENAME).mkdir(parents=True)
    settle()
    assert cached(plain) == uncached(plain)


def test_unwritable_cache_is_not_an_error(plain: Path) -> None:
    (plain / "dist").write_text("not a directory", encoding="utf-8")
    settle()
    assert cached(plain) == uncached(plain)


def test_non_utf8_names_count_but_are_not_cached(tmp_path: Path, reads: list[str]) -> None:
    root = tmp_path / "project"
    name = os.fsdecode(b"caf\xe9.py")
    write(root, "pyproject.toml", "[project]\nname = 'demo'\nversion = '1.0'\n")
    write(root, name, "x = 1\n")
    settle()
    assert cached(root) == uncached(root)
    records, _ = statcache.load(root / "dist")
    assert set(records) == {"pyproject.toml"}
    reads.clear()
    assert cached(root) == uncached(root)
    assert sum(path.endswith(name) for path in reads) == 2


# --- --no-cache --------------------------------------------------------------------------------


def test_no_cache_neither_reads_nor_writes_the_cache(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settle()
    assert not (tree / "dist").exists()
    fresh = cli_fingerprint(capsys, "--no-cache", str(tree))
    assert not (tree / "dist").exists()

    cache = tree / "dist" / quick.FILENAME
    assert cli_fingerprint(capsys, str(tree)) == fresh
    before = cache.read_bytes(), cache.stat()

    def forbidden(*args: object) -> None:
        raise AssertionError(args)

    monkeypatch.setattr(statcache, "load", forbidden)
    monkeypatch.setattr(statcache, "save", forbidden)
    write(tree, "src/demo/cli.py", "print('changed')\n")
    changed = cli_fingerprint(capsys, "--no-cache", str(tree))
    assert changed != fresh
    after = cache.read_bytes(), cache.stat()
    assert after[0] == before[0]
    assert after[1].st_mtime_ns == before[1].st_mtime_ns


def test_install_uses_the_cache(plain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settle()
    assert main(["--dry-run", "-q", str(plain)]) == 0
    assert not (plain / "dist").exists()  # a dry run creates nothing ...
    (plain / "dist").mkdir()
    assert main(["--dry-run", "-q", str(plain)]) == 0
    records, _ = statcache.load(plain / "dist")  # ... but fills a cache in an existing dist/
    assert set(records) == set(fingerprint.list_inputs(plain))


# --- threads -----------------------------------------------------------------------------------


@pytest.fixture
def always_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "LARGE_FILE", 0)
    monkeypatch.setattr(statcache, "THREADS_MIN_BYTES", 0)
    monkeypatch.setattr(statcache, "_cpus", lambda: 4)


@pytest.mark.usefixtures("always_threads")
def test_threads_give_the_same_entries(plain: Path, reads: list[str]) -> None:
    for index in range(40):
        write(plain, f"src/demo/many/m{index}.py", f"x = {index}\n")
    paths = fingerprint.list_inputs(plain)
    threads = statcache.hash_files(plain, paths)
    assert sorted(reads) == sorted(
        str(plain / path) for path in paths if path != "src/demo/alias.py"
    )
    assert sorted(threads) == sorted(fingerprint.compute(plain).files)


@pytest.mark.usefixtures("always_threads")
def test_threads_share_the_work(plain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names: list[str] = []
    real = fingerprint._hash_contents

    def slow(source: str, copy_to: Path | None, mode: int) -> str:
        names.append(threading.current_thread().name)
        time.sleep(0.002)
        return real(source, copy_to, mode)

    monkeypatch.setattr(fingerprint, "_hash_contents", slow)
    for index in range(40):
        write(plain, f"src/demo/many/m{index}.py", f"x = {index}\n")
    statcache.hash_files(plain, fingerprint.list_inputs(plain))
    assert len(set(names)) > 1


def test_only_large_files_go_to_other_threads(plain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "_cpus", lambda: 2)
    for index in range(3):
        with (plain / f"large{index}.bin").open("wb") as file:
            file.truncate(statcache.THREADS_MIN_BYTES // 2)  # sparse: cheap to make and read
    where: dict[str, str] = {}
    real = fingerprint._hash_contents

    def record(source: str, copy_to: Path | None, mode: int) -> str:
        where[os.path.basename(source)] = threading.current_thread().name
        if not source.endswith(".bin"):
            time.sleep(0.005)  # so that the other thread surely starts on the large files
        return real(source, copy_to, mode)

    monkeypatch.setattr(fingerprint, "_hash_contents", record)
    statcache.hash_files(plain, fingerprint.list_inputs(plain))
    small = {name for name in where if not name.endswith(".bin")}
    assert {where[name] for name in small} == {threading.current_thread().name}
    assert any(where[f"large{index}.bin"].startswith("freshinstall-hash") for index in range(3))


def refuse_to_read(monkeypatch: pytest.MonkeyPatch, name: str, *, slow: float = 0.0) -> None:
    """Reading a file whose path ends with ``name`` fails with EACCES (as root, chmod cannot
    make that happen); reading any other file takes ``slow`` seconds longer."""
    real = fingerprint._hash_contents

    def refuse(source: str, copy_to: Path | None, mode: int) -> str:
        if source.endswith(name):
            raise PermissionError(13, "Permission denied", source)
        if slow:
            time.sleep(slow)
        return real(source, copy_to, mode)

    monkeypatch.setattr(fingerprint, "_hash_contents", refuse)


@pytest.mark.usefixtures("always_threads")
def test_an_error_in_a_thread_is_reported(plain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_to_read(monkeypatch, "cli.py")
    with pytest.raises(FingerprintError, match=r"cannot read src/demo/cli\.py: Permission denied"):
        statcache.hash_files(plain, fingerprint.list_inputs(plain))


# --- a forked child hashes half the files ------------------------------------------------------


@pytest.fixture
def always_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "FORK_MIN_FILES", 2)
    monkeypatch.setattr(statcache, "FORK_MIN_BYTES", 0)
    monkeypatch.setattr(quick, "can_fork", lambda: True)


def todo_of(root: Path, count: int = 20) -> list[statcache.Todo]:
    """``count`` small files under ``root``, as hash_many takes them."""
    todo = []
    for index in range(count):
        path = f"src/many/m{index:02}.py"
        source = os.fspath(write(root, path, f"x = {index}\n" * (index + 1)))
        todo.append((path, source, os.lstat(source)))
    return todo


def in_one_process(todo: list[statcache.Todo]) -> list[fingerprint.FileEntry | None]:
    return [fingerprint.hash_stat(source, path, info) for path, source, info in todo]


@pytest.mark.usefixtures("always_fork")
def test_a_forked_child_hashes_every_other_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    todo = todo_of(tmp_path)
    log = tmp_path / "hashed-by"
    real = fingerprint._hash_contents

    def logged(source: str, copy_to: Path | None, mode: int) -> str:
        with log.open("a", encoding="utf-8") as file:  # the child's appends land here too
            file.write(f"{os.getpid()} {os.path.basename(source)}\n")
        return real(source, copy_to, mode)

    monkeypatch.setattr(fingerprint, "_hash_contents", logged)
    before = child_pids()
    assert statcache.hash_many(todo) == in_one_process(todo)
    by_process: dict[str, set[str]] = {}
    for line in log.read_text(encoding="utf-8").splitlines()[: len(todo)]:
        pid, name = line.split()
        by_process.setdefault(pid, set()).add(name)
    assert by_process.pop(str(os.getpid())) == {f"m{index:02}.py" for index in range(0, 20, 2)}
    assert list(by_process.values()) == [{f"m{index:02}.py" for index in range(1, 20, 2)}]
    assert child_pids() <= before  # reaped


@pytest.mark.usefixtures("always_fork")
def test_the_childs_unreadable_file_is_reported_by_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    todo = todo_of(tmp_path)
    refuse_to_read(monkeypatch, "m03.py")  # in the child's half: odd positions
    before = child_pids()
    with pytest.raises(FingerprintError, match=r"cannot read src/many/m03\.py: Permission denied"):
        statcache.hash_many(todo)
    assert child_pids() <= before


@pytest.mark.usefixtures("always_fork")
def test_an_error_in_the_parents_half_stops_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    todo = todo_of(tmp_path)
    refuse_to_read(monkeypatch, "m00.py", slow=0.01)
    before = child_pids()
    with pytest.raises(FingerprintError, match=r"cannot read src/many/m00\.py"):
        statcache.hash_many(todo)
    assert child_pids() <= before  # killed and reaped, not left to finish


@pytest.mark.usefixtures("always_fork")
def test_files_gone_from_the_childs_half_are_left_out(tmp_path: Path) -> None:
    todo = todo_of(tmp_path)
    os.unlink(todo[5][1])
    os.unlink(todo[6][1])
    result = statcache.hash_many(todo)
    assert result[5] is None
    assert result[6] is None
    assert result == in_one_process(todo)


@pytest.mark.usefixtures("always_fork")
def test_a_child_that_dies_costs_only_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    todo = todo_of(tmp_path)

    def die(writer: int, todo: object, parent: int) -> None:
        os.write(writer, b"f " + b"0" * quick.DIGEST_LENGTH + b"\n")  # one line, then gone
        os._exit(3)

    monkeypatch.setattr(statcache, "_report", die)
    assert statcache.hash_many(todo) == in_one_process(todo)


def test_the_child_stops_once_its_parent_is_gone(tmp_path: Path) -> None:
    """A parent killed by a signal it cannot handle (SIGKILL, or SIGTERM to a library caller)
    cannot stop its hashing child: the child stops by itself after the file at hand, rather
    than hash on for nobody. In a process of its own, to be killed."""
    log = tmp_path / "hashed-by"
    todo = todo_of(tmp_path / "tree", 40)
    script = SLOW_LOGGED_READS + (
        "from freshinstall import statcache\n"
        "statcache.FORK_MIN_FILES, statcache.FORK_MIN_BYTES = 2, 0\n"
        "todo = [(p, s, os.lstat(s)) for p, s in zip(sys.argv[2::2], sys.argv[3::2])]\n"
        "statcache.hash_many(todo)\n"
    )
    files = [part for path, source, _ in todo for part in (path, source)]
    run = subprocess.Popen([sys.executable, "-c", script, os.fspath(log), *files])
    kill_then_no_more_reads(run, log, readers=2)  # both hashing


def test_no_fork_for_few_files_or_with_threads_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too few files: no fork even where one could be made. Another thread running: no fork
    (checked in a process of its own, below: pytest-xdist's workers run threads already)."""

    def no_fork() -> int:
        raise AssertionError("forked")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(quick, "can_fork", lambda: True)
    small = todo_of(tmp_path / "small", 10)
    assert statcache.hash_many(small) == in_one_process(small)
    monkeypatch.undo()
    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(statcache, "FORK_MIN_FILES", 2)
    monkeypatch.setattr(statcache, "FORK_MIN_BYTES", 0)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        assert not quick.can_fork()
        assert statcache.hash_many(small) == in_one_process(small)
    finally:
        stop.set()
        worker.join()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.usefixtures("always_fork")
def test_no_process_to_spare_means_hashing_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fork fails (EAGAIN: a pids cgroup, RLIMIT_NPROC): everything is hashed in this process,
    and the pipe meant for the child is closed."""

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    todo = todo_of(tmp_path)
    monkeypatch.setattr(os, "fork", no_fork)
    before = open_fds()
    assert statcache.hash_many(todo) == in_one_process(todo)
    assert open_fds() == before
    parts = [part for path, _, info in todo for part in (path, _record(info))]
    monkeypatch.setattr(quick, "FORK_MIN_FILES", 1)
    assert quick._all_unchanged(os.fspath(tmp_path) + "/", parts, time.time_ns())


def _record(info: os.stat_result) -> str:
    """A cache record with ``info``'s stat data (the digest does not matter to the check)."""
    signature = f"{info.st_size} {info.st_mtime_ns} {info.st_ctime_ns} {info.st_ino} "
    return f"{signature}{info.st_mode} " + "0" * quick.DIGEST_LENGTH


@pytest.mark.usefixtures("always_fork")
def test_ctrl_c_is_held_back_while_forking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT is blocked while the process forks, so that the child can never raise
    KeyboardInterrupt through the parent's code; it is unblocked again afterwards."""
    masks: list[set[int | signal.Signals]] = []
    real = os.fork

    def fork() -> int:
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        return real()

    monkeypatch.setattr(os, "fork", fork)
    todo = todo_of(tmp_path)
    assert statcache.hash_many(todo) == in_one_process(todo)
    assert masks
    assert all(signal.SIGINT in mask for mask in masks)
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_ctrl_c_held_back_during_the_fork_stops_the_child(tmp_path: Path) -> None:
    """The Ctrl-C held back across the fork raises as soon as it is let through, before the
    caller learns the child's pid: the child is killed and reaped then, and early.start closes
    both ends of its pipe. In a process of its own, whose main thread gets the SIGINT."""
    project = tmp_path / "project"
    write(project, "pyproject.toml", "[project]\nname = 'demo'\nversion = '1.0'\n")
    script = (
        "import os, signal, sys, time\n"
        "from freshinstall import early, quick\n"
        "quick.can_fork = lambda: True\n"
        "real, forked = os.fork, []\n"
        "def fork():\n"
        "    pid = real()\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"  # a child that would outlive the test
        "        os._exit(0)\n"
        "    forked.append(pid)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"  # pending: SIGINT is blocked here
        "    return pid\n"
        "os.fork = fork\n"
        "fds = len(os.listdir('/proc/self/fd'))\n"
        "try:\n"
        "    early.start(sys.argv[1])\n"
        "except KeyboardInterrupt:\n"
        "    try:\n"
        "        os.kill(forked[0], 0)\n"
        "    except ProcessLookupError:\n"
        "        print('reaped', len(os.listdir('/proc/self/fd')) - fds)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, os.fspath(project)],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )
    assert run.stdout == "reaped 0\n", run.stderr


def test_no_fork_beside_a_thread_threading_does_not_know() -> None:
    """A thread started below the threading module (as C extensions do) counts too. In a
    process of its own: pytest-xdist's workers run threads already."""
    script = (
        "import _thread, os, threading, time; from freshinstall import quick; "
        "two = len(os.sched_getaffinity(0)) > 1; before = quick.can_fork() == two; "
        "_thread.start_new_thread(time.sleep, (0.3,)); time.sleep(0.1); below = quick.can_fork(); "
        "time.sleep(0.5); after = quick.can_fork() == two; "
        "threading.Thread(target=time.sleep, args=(2,), daemon=True).start(); "
        "print(before, below, after, quick.can_fork())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "False", "True", "False"]


# --- concurrent runs ---------------------------------------------------------------------------


def test_concurrent_runs_leave_a_valid_cache(in_git: Path) -> None:
    for index in range(50):
        write(in_git, f"src/demo/many/m{index}.py", f"x = {index}\n")
    time.sleep(REAL_MARGIN_NS / 1e9 + 0.1)  # so that every run has a cache worth writing
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "freshinstall", "fingerprint", str(in_git)],
            stdout=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = {run.communicate(timeout=120)[0] for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert len(outputs) == 1
    records, _ = statcache.load(in_git / "dist")
    assert set(records) == set(fingerprint.list_inputs(in_git))
    assert [name for name in os.listdir(in_git / "dist") if name.endswith(".tmp")] == []
