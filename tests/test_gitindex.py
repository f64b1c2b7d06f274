"""git's index as a witness for the no-change answer (gitindex.py; quick.py's _check).

Every test asserts the property of test_quick.py: ``quick.cached_fingerprint(root)`` is None or
exactly the digest computed from scratch. A test of the witness is worthless when the witness
never vouched, so the tests of a change first prove that the file changed was vouched for: it
is not among the witness's own records, and the check left it to ``git diff-files`` rather than
``lstat`` (see :func:`check`).

An index entry vouches only when it is not racy: its mtime a whole second older than the index
file's. :func:`vouch` crosses a second boundary after every file was written, rewrites the
index, then records; it takes several projects, so that one wait serves them all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from freshinstall import gitindex, inputs, quick
from tests.helpers import SHORT_MARGIN_NS, commit_all, git, settle, write
from tests.test_quick import (
    FILES,
    SCM,
    UNTRACKED,
    answer,
    answering,
    full,
    make_project,
    refresh,
    same_size_edit,
    scratch,
    sound,
)

#: The committed inputs the index vouches for once settled: all but the empty __init__.py.
VOUCHED = frozenset(
    {
        "pyproject.toml",
        ".gitignore",
        "src/demo/a.py",
        "src/demo/b.py",
        "src/demo/c.py",
        "src/demo/alias.py",
    }
)


@pytest.fixture(autouse=True)
def short_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quick, "MARGIN_NS", SHORT_MARGIN_NS)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


# --- helpers -----------------------------------------------------------------------------------


def next_second() -> None:
    """Sleep past the next whole second, with room for the kernel's coarse file clock."""
    time.sleep(1.05 - time.time() % 1)


def work_tree(root: Path) -> Path:
    found = quick.find_work_tree(os.fspath(root))
    assert found is not None
    return Path(found)


def index_of(root: Path) -> Path:
    found = quick.index_file(os.fspath(work_tree(root)))
    assert found is not None
    return Path(found)


def git_code(cwd: Path, *args: str) -> int:
    """Run git where a non-zero exit is expected now and then; its exit status."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False).returncode


def rewrite_index(root: Path) -> None:
    """Have git write the index anew (``update-index --refresh``, or forced)."""
    tree, index = work_tree(root), index_of(root)
    before = index.stat().st_mtime_ns
    git_code(tree, "update-index", "-q", "--refresh")
    if index.stat().st_mtime_ns == before:
        git(tree, "update-index", "--force-write-index")
    assert index.stat().st_mtime_ns != before


def vouch(*roots: Path) -> list[str]:
    """Make the index of each project vouch for its settled tracked files and record the
    answer: cross a second boundary after every file was written, rewrite the index (now a
    whole second newer than the files), settle, full run. The digests."""
    next_second()
    for root in roots:
        rewrite_index(root)
    settle()
    return [full(root) for root in roots]


class Witness(NamedTuple):
    """The recorded witness of a project (quick.make_witness), decoded."""

    index_path: str
    tracked: frozenset[str]
    unvouched: frozenset[str]
    own: dict[str, str]
    newest: int

    @property
    def vouched(self) -> frozenset[str]:
        return self.tracked - self.unvouched


def tracked_in(listing: bytes) -> frozenset[str]:
    """The tracked paths of a recorded listing (quick.LS_FILES's output: untracked records are
    "? PATH", tracked ones "TAG MODE OBJECT STAGE\tPATH")."""
    records = os.fsdecode(listing).split("\0")
    return frozenset(record.split("\t", 1)[1] for record in records if record[:2] not in ("", "? "))


def recorded_witness(root: Path) -> Witness | None:
    """The witness of the answer recorded in ``root``'s cache; None when it is empty, or no
    answer was recorded."""
    found = quick.read_cache_file(os.fspath(root / "dist"))
    assert found is not None
    if not found[0]:
        return None
    fields = quick._split(found[0])
    assert len(fields) == quick.ANSWER_FIELDS
    if not fields[quick.FACTS + 3]:
        return None
    parts = quick._split(fields[quick.FACTS + 3])
    assert len(parts) == quick.WITNESS_FIELDS
    index, _, checksum, vouched, own, newest = parts
    assert checksum == index_bytes(Path(os.fsdecode(index)))[-20:]
    flat = own.decode().split("\0")
    assert flat.pop() == ""
    records = dict(zip(flat[::2], flat[1::2], strict=True))
    tracked = tracked_in(fields[quick.FACTS + 1])
    names = frozenset(os.fsdecode(path) for path in vouched.split(b"\0") if path)
    assert names <= tracked
    assert not names & records.keys()  # a vouched file has no record of its own
    return Witness(os.fsdecode(index), tracked, tracked - names, records, int(newest))


def witness_of(root: Path) -> Witness:
    found = recorded_witness(root)
    assert found is not None, "no witness was recorded"
    return found


class Check(NamedTuple):
    """What one quick check did."""

    digest: str | None
    #: Whether it ran ``git diff-files``: the witness was used.
    witnessed: bool
    #: The paths it checked with ``lstat`` against their records.
    lstat: frozenset[str]


def check(root: Path) -> Check:
    """``quick.cached_fingerprint(root)``, spied on (nothing is faked)."""
    commands: list[tuple[str, ...]] = []
    checked: set[str] = set()
    real_start, real_unchanged = quick.start_git, quick.unchanged

    def start(where: str, args: Sequence[str], *rest: Any, **options: Any) -> Any:
        commands.append(tuple(args))
        return real_start(where, args, *rest, **options)

    def unchanged(prefix: str, parts: list[str], trusted_before: int) -> bool:
        checked.update(parts[::2])
        return real_unchanged(prefix, parts, trusted_before)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quick, "start_git", start)
        patch.setattr(quick, "unchanged", unchanged)
        digest = quick.cached_fingerprint(os.fspath(root))
    return Check(digest, any("diff-files" in args for args in commands), frozenset(checked))


def assert_vouched(root: Path, *paths: str) -> str:
    """Assert that the witness vouches for ``paths``, and that the quick path answers the
    from-scratch digest through it without ``lstat``-ing any vouched file; that digest."""
    witness = witness_of(root)
    for path in paths:
        assert path in witness.vouched, path
        assert path not in witness.own, path
    checked = check(root)
    assert checked.witnessed
    assert not checked.lstat & witness.vouched
    assert checked.lstat == witness.own.keys()
    digest = scratch(root)
    assert checked.digest == digest
    return digest


def index_bytes(path: Path) -> bytes:
    return path.read_bytes()


def tracked_files_present(root: Path) -> bool:
    tracked = git(root, "ls-files", "-z").split("\0")
    return all(os.path.lexists(root / path) for path in tracked if path)


def answers_again(root: Path, digest: str) -> None:
    """A settled full run makes the quick path answer ``digest`` again (unless a tracked file
    is missing: then no answer is ever recorded)."""
    refresh(root)
    if tracked_files_present(root):
        assert answering(root) == digest
    else:
        assert answer(root) is None


def assert_seen(root: Path, before: str) -> None:
    """After a change to a file the witness vouched for: the from-scratch digest is no longer
    ``before``, the witness was used and refused, and a full run makes it answer again."""
    now = scratch(root)
    assert now != before
    checked = check(root)
    assert checked.witnessed
    assert checked.digest is None
    answers_again(root, now)


def projects(tmp_path: Path, names: Sequence[str]) -> dict[str, Path]:
    """One fresh copy of the test project per name."""
    return {name: make_project(tmp_path / f"p{number}") for number, name in enumerate(names)}


def git_names(root: Path) -> str:
    """What ``git diff-files`` names, checking as strictly as quick.DIFF_FILES does."""
    return git(root, *quick.DIFF_FILES)


# --- the witness vouches -----------------------------------------------------------------------


def test_settled_tracked_files_are_vouched_for(project: Path) -> None:
    """After a settled run on a non-racy index, every committed input but the empty one is
    left to git; only the empty file and the untracked input keep records of their own, and
    only they are checked with lstat. Rewriting the index makes quick fall back to lstat-ing
    every file, and it still answers."""
    (digest,) = vouch(project)
    witness = witness_of(project)
    assert witness.index_path == os.fspath(project / ".git" / "index")
    assert witness.vouched == VOUCHED
    assert witness.unvouched == {"src/demo/__init__.py"}  # empty: never vouched for
    assert witness.own.keys() == {"src/demo/__init__.py", "src/demo/scratch.py"}
    cache = quick.read_cache(os.fspath(project / "dist"))
    assert cache is not None
    records = dict(zip(cache[0][::2], cache[0][1::2], strict=True))
    assert all(records[path] == record for path, record in witness.own.items())
    assert 0 < witness.newest < cache[2]
    assert assert_vouched(project, *VOUCHED) == digest
    git(project, "update-index", "--force-write-index")  # the same entries, a new index file
    fallback = check(project)
    assert not fallback.witnessed
    assert fallback.lstat == records.keys()
    assert fallback.digest == digest


def test_a_witness_of_the_new_index_after_git_rewrote_it(project: Path) -> None:
    """git writes its index anew (a commit, a `git status` that refreshed it): the next check
    lstats every file, answers, and records a witness of the new index, with no more trust
    than the records had; the check after it uses that witness, and sees a change."""
    (digest,) = vouch(project)
    trusted_before = quick.read_cache_file(os.fspath(project / "dist"))
    assert trusted_before is not None
    old = witness_of(project)
    git(project, "update-index", "--force-write-index")  # the same entries, a new index file
    fallback = check(project)
    assert not fallback.witnessed
    assert fallback.digest == digest
    renewed = witness_of(project)
    assert renewed.vouched == old.vouched
    assert renewed.own == old.own
    now = quick.read_cache_file(os.fspath(project / "dist"))
    assert now is not None
    assert now[2] == trusted_before[2]  # the records are trusted from the same time ...
    header = (project / "dist" / quick.FILENAME).read_bytes().split(b"\n", 1)[0].split()
    assert header[1] == header[2]  # ... whatever the clocks: started and written coincide
    assert assert_vouched(project, *VOUCHED) == digest
    same_size_edit(project / "src/demo/b.py")
    assert_seen(project, digest)


def test_an_index_that_cannot_vouch_is_recorded_as_no_witness(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git rewrote its index as a split index, which gitindex does not read: the answer is
    recorded again without a witness, so that the next checks do not try again."""
    (digest,) = vouch(project)
    git(project, "update-index", "--split-index")
    assert check(project).digest == digest
    assert recorded_witness(project) is None
    made: list[str] = []
    real = gitindex.witness

    def counted(*args: Any, **kwargs: Any) -> bytes:
        made.append("witness")
        return real(*args, **kwargs)

    monkeypatch.setattr(gitindex, "witness", counted)
    assert check(project).digest == digest
    assert made == []


def test_no_witness_is_renewed_for_a_changed_tree(project: Path) -> None:
    """The fallback check refuses (a file changed): nothing is written."""
    vouch(project)
    git(project, "update-index", "--force-write-index")
    same_size_edit(project / "src/demo/a.py")
    before = (project / "dist" / quick.FILENAME).read_bytes()
    assert check(project).digest is None
    assert (project / "dist" / quick.FILENAME).read_bytes() == before


def test_a_run_on_the_same_index_keeps_the_witness(project: Path) -> None:
    """A run that finds every record as it was keeps the witness made from the same index
    file; once git writes the index anew, the next run makes a witness of the new one."""
    (digest,) = vouch(project)
    first = witness_of(project)
    write(project, "build/y.py", "Y = 1\n")  # listed by git, but no input
    settle()
    assert full(project) == digest
    assert witness_of(project) == first
    assert assert_vouched(project, *VOUCHED) == digest
    git(project, "update-index", "--force-write-index")
    assert check(project).digest == digest  # by lstat
    settle()
    assert full(project) == digest
    second = witness_of(project)
    assert second.vouched == VOUCHED
    assert assert_vouched(project, *VOUCHED) == digest


def test_racy_entries_are_not_vouched_for(tmp_path: Path) -> None:
    """An entry as new as the index file (the same second) is racy: git compares its content
    after the clean filter, which can hide a change of the raw bytes we hash. Such an entry
    keeps a record of its own, which sees the change."""
    root = make_project(tmp_path / "project", in_git=False)
    write(root, ".gitattributes", "*.py filter=lower\n")
    git(root, "init", "-q")
    git(root, "config", "filter.lower.clean", "tr A-Z a-z")
    commit_all(root, "initial")
    vouch(root)
    next_second()
    target = write(root, "src/demo/b.py", "b = 2\n")
    git(root, "add", "src/demo/b.py")  # the entry and the index share a second
    index_second = (root / ".git/index").stat().st_mtime_ns // 10**9
    assert target.stat().st_mtime_ns // 10**9 == index_second, "the setup took over a second"
    before = refresh(root)
    witness = witness_of(root)
    assert "src/demo/b.py" in witness.unvouched
    assert "src/demo/b.py" in witness.own
    assert_vouched(root, "src/demo/a.py")
    old = target.stat()
    target.write_bytes(b"B = 2\n")  # the same after the clean filter
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))
    now = scratch(root)
    assert now != before
    checked = check(root)
    assert checked.witnessed
    assert checked.digest is None


def test_a_vouched_ctime_shares_no_second_with_a_later_edit(project: Path) -> None:
    """git compares whole seconds unless it was built with USE_NSEC (Debian's git is not):
    a later edit that keeps the size and puts the mtime back changes only the ctime's
    nanoseconds when the entry's ctime is in the same second. The entry's mtime is a second
    older than the index (not racy), its ctime is not; and the record is settled by the
    racy margin (50 ms here). The production margin of 2 s happens to rule this out; the
    witness's own rule should not depend on it (the mtime's does not)."""
    vouch(project)
    next_second()
    target = project / "src/demo/a.py"
    target.chmod(0o644)  # the ctime moves to this second, the mtime stays in an older one
    git(project, "update-index", "-q", "--refresh")  # the entry takes the new ctime
    before = refresh(project)
    same_size_edit(target)
    now = scratch(project)
    assert now != before
    index = (project / ".git/index").stat()
    if target.stat().st_ctime_ns // 10**9 == index.st_mtime_ns // 10**9:  # else: not shown
        assert git_names(project) == ""  # git cannot tell
    assert answer(project) in (None, now)


# --- every change to a vouched file is seen ------------------------------------------------------


def _symlink(root: Path) -> None:
    path = root / "src/demo/c.py"
    path.unlink()
    path.symlink_to("a.py")


def _retarget(root: Path) -> None:
    link = root / "src/demo/alias.py"
    link.unlink()
    link.symlink_to("c.py")  # the same length as "a.py"


def _copy_in_place(root: Path) -> None:
    path = root / "src/demo/c.py"
    shutil.copy2(path, root / "c.tmp")
    os.replace(root / "c.tmp", path)


def _group_execute(root: Path) -> None:
    """git looks at the owner's x bit only; the digest at any x bit: ctime must show it."""
    (root / "src/demo/a.py").chmod(0o654)


def _crlf(root: Path) -> None:
    path = root / "src/demo/a.py"
    old = path.stat()
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))


#: name -> (change to a vouched file, whether it changes the digest).
FILE_CHANGES: dict[str, tuple[Callable[[Path], object], bool]] = {
    "edit": (lambda root: write(root, "src/demo/a.py", "A = 100\n"), True),
    "same size, mtime restored": (lambda root: same_size_edit(root / "src/demo/b.py"), True),
    "chmod +x": (lambda root: (root / "src/demo/a.py").chmod(0o755), True),
    "chmod g+x": (_group_execute, True),
    "chmod g+w": (lambda root: (root / "src/demo/a.py").chmod(0o664), False),
    "replace by a symlink": (_symlink, True),
    "retarget a symlink": (_retarget, True),
    "delete": (lambda root: (root / "src/demo/b.py").unlink(), True),
    "rename": (lambda root: (root / "src/demo/b.py").rename(root / "src/demo/z.py"), True),
    "touch": (lambda root: os.utime(root / "src/demo/a.py"), False),
    "replace by an identical copy": (_copy_in_place, False),
    "CRLF, mtime restored": (_crlf, True),
}


@pytest.mark.parametrize(("change", "changes_digest"), FILE_CHANGES.values(), ids=FILE_CHANGES)
def test_a_change_to_a_vouched_file_is_seen(
    project: Path, change: Callable[[Path], object], changes_digest: bool
) -> None:
    """The index is untouched, so the witness is used, and git names the file: never the old
    digest. A settled run then answers the new one."""
    (before,) = vouch(project)
    assert_vouched(project, *VOUCHED)
    change(project)
    now = scratch(project)
    assert (now != before) == changes_digest
    checked = check(project)
    assert checked.witnessed
    assert checked.digest in (None, now)
    answers_again(project, now)


@pytest.mark.parametrize(
    "conversion",
    [
        (".gitattributes", "* text=auto\n"),
        (".gitattributes", "* text eol=crlf\n"),
        (".git/config", "core.autocrlf=true"),
    ],
    ids=["text=auto", "eol=crlf", "core.autocrlf"],
)
def test_line_endings_flipped_under_conversion(tmp_path: Path, conversion: tuple[str, str]) -> None:
    """git would call the file unchanged after eol conversion; its raw bytes, which we hash,
    did change. Flipped both ways (one project each), with the mtime put back."""
    where, setting = conversion
    roots = []
    for name in ("to CRLF", "to LF"):
        root = make_project(tmp_path / name, {**FILES, "src/demo/w.py": b"W = 1\r\n"}, in_git=False)
        git(root, "init", "-q")
        if where == ".git/config":
            key, value = setting.split("=")
            git(root, "config", key, value)
        else:
            write(root, where, setting)
        commit_all(root, "initial")
        roots.append(root)
    digests = vouch(*roots)
    for root, before, path, old, new in zip(
        roots,
        digests,
        ("src/demo/a.py", "src/demo/w.py"),
        (b"\n", b"\r\n"),
        (b"\r\n", b"\n"),
        strict=True,
    ):
        assert_vouched(root, path)
        target = root / path
        info = target.stat()
        target.write_bytes(target.read_bytes().replace(old, new))
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
        assert_seen(root, before)


# --- the index changes ---------------------------------------------------------------------------


def _add_modified(root: Path) -> None:
    write(root, "src/demo/a.py", "A = 1000\n")
    git(root, "add", "src/demo/a.py")


def _assume_unchanged_then_edit(root: Path) -> None:
    git(root, "update-index", "--assume-unchanged", "src/demo/a.py")
    same_size_edit(root / "src/demo/a.py")


def _skip_worktree_then_edit(root: Path) -> None:
    git(root, "update-index", "--skip-worktree", "src/demo/a.py")
    same_size_edit(root / "src/demo/a.py")


def _untrack_ignored(root: Path) -> None:
    git(root, "rm", "-q", "--cached", "debug.log")


def _checkout_previous(root: Path) -> None:
    git(root, "checkout", "-q", "--detach", "HEAD~1")


def _reset_previous(root: Path) -> None:
    git(root, "reset", "-q", "HEAD~1")


def _touch_then_status(root: Path) -> None:
    os.utime(root / "src/demo/b.py")
    git(root, "status", "--porcelain")


def _update_index_chmod(root: Path) -> None:
    git(root, "update-index", "--chmod=+x", "src/demo/a.py")


#: name -> (change that rewrites the index, whether it changes the digest).
INDEX_CHANGES: dict[str, tuple[Callable[[Path], object], bool]] = {
    "git add of a modified file": (_add_modified, True),
    "assume-unchanged, then a same-size edit": (_assume_unchanged_then_edit, True),
    "skip-worktree, then a same-size edit": (_skip_worktree_then_edit, True),
    "git rm --cached of an ignored file": (_untrack_ignored, True),
    "git checkout of the previous commit": (_checkout_previous, True),
    "git reset to the previous commit": (_reset_previous, True),  # debug.log untracked
    "touch, then git status": (_touch_then_status, False),
    "update-index --chmod=+x": (_update_index_chmod, False),
}


@pytest.mark.parametrize(("change", "changes_digest"), INDEX_CHANGES.values(), ids=INDEX_CHANGES)
def test_an_index_change_is_never_vouched_for(
    tmp_path: Path, change: Callable[[Path], object], changes_digest: bool
) -> None:
    """Whatever git does to its index, the answer is None or the new digest."""
    root = make_project(tmp_path / "project")
    write(root, "debug.log", "tracked though ignored\n")
    git(root, "add", "-f", "debug.log")
    write(root, "src/demo/a.py", "A = 10\n")  # a second commit to go back from
    commit_all(root, "second")
    (before,) = vouch(root)
    assert_vouched(root, "src/demo/a.py", "src/demo/b.py", "debug.log")
    change(root)
    now = scratch(root)
    assert (now != before) == changes_digest
    checked = check(root)
    assert not checked.witnessed  # another index file: every input is checked with lstat
    assert checked.digest in (None, now)
    answers_again(root, now)


def test_harmless_git_commands_keep_the_witness(project: Path) -> None:
    """Commands that read the index leave it as it is: the witness still answers."""
    (digest,) = vouch(project)
    git(project, "status", "--porcelain")
    git(project, "diff", "--stat")
    git(project, "ls-files", "-s")
    assert assert_vouched(project, *VOUCHED) == digest


@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_entries_git_does_not_check_are_never_vouched_for(project: Path, flag: str) -> None:
    """Recorded with the flag set: git never looks at the file, so it keeps its own record,
    which sees a same-size edit while git stays silent about it."""
    git(project, "update-index", flag, "src/demo/a.py")
    (before,) = vouch(project)
    witness = witness_of(project)
    assert "src/demo/a.py" in witness.unvouched
    assert "src/demo/a.py" in witness.own
    assert_vouched(project, "src/demo/b.py")
    same_size_edit(project / "src/demo/a.py")
    assert git_names(project) == ""  # git does not look at it
    now = scratch(project)
    assert now != before
    checked = check(project)
    assert checked.witnessed
    assert "src/demo/a.py" in checked.lstat
    assert checked.digest is None
    answers_again(project, now)


# --- git pointed elsewhere -----------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["GIT_INDEX_FILE", "GIT_DIR"])
def test_git_pointed_at_another_index_is_not_trusted(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """With GIT_INDEX_FILE or GIT_DIR set, ``git diff-files`` reads another index than the
    recorded one. Here that index has the edited file's new stat data, so git is silent about
    it: only refusing the witness avoids the old digest."""
    (before,) = vouch(project)
    assert_vouched(project, "src/demo/a.py")
    other = tmp_path / "other.git"
    shutil.copytree(project / ".git", other)
    target = write(project, "src/demo/a.py", "A = 12345\n")
    env = {**os.environ, "GIT_DIR": os.fspath(other), "GIT_WORK_TREE": os.fspath(project)}
    subprocess.run(["git", "add", "src/demo/a.py"], cwd=project, env=env, check=True)
    assert target.exists()
    value = os.fspath(other / "index") if variable == "GIT_INDEX_FILE" else os.fspath(other)
    monkeypatch.setenv(variable, value)
    assert git_names(project) == ""  # silent about a.py
    now = scratch(project)
    assert now != before
    checked = check(project)
    assert not checked.witnessed
    assert checked.digest in (None, now)
    monkeypatch.delenv(variable)
    assert sound(project) == now


@pytest.mark.parametrize("variable", quick.GIT_LOCATION_VARIABLES)
def test_no_witness_is_recorded_with_git_pointed_elsewhere(
    project: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """Set while recording (even to the very same places), the variables make no witness;
    set only while checking, they make quick fall back to lstat, which still answers."""
    (digest,) = vouch(project)
    assert_vouched(project, *VOUCHED)
    values = {
        "GIT_DIR": project / ".git",
        "GIT_WORK_TREE": project,
        "GIT_INDEX_FILE": project / ".git" / "index",
        "GIT_COMMON_DIR": project / ".git",
    }
    monkeypatch.setenv(variable, os.fspath(values[variable]))
    if variable == "GIT_WORK_TREE":  # git wants GIT_DIR with it
        monkeypatch.setenv("GIT_DIR", os.fspath(values["GIT_DIR"]))
    checked = check(project)
    assert not checked.witnessed
    assert checked.digest == digest == scratch(project)
    settle()
    assert full(project) == digest
    assert recorded_witness(project) is None
    assert answering(project) == digest


def test_git_working_on_another_work_tree_is_not_trusted(tmp_path: Path) -> None:
    """``core.worktree`` (the configuration's GIT_WORK_TREE) names another directory: git's
    check must still be of the files the witness vouches for. Here the recorded tree moved away
    (its files keep their inodes and times), and the project's ``.git`` became a link to the
    moved one's, which now names the moved tree as its work tree."""
    files = {**FILES, "src/demo/__init__.py": "# a package\n"}  # nothing left to lstat
    root = make_project(tmp_path / "project", files, untracked={})
    (old,) = vouch(root)
    assert_vouched(root, *VOUCHED, "src/demo/__init__.py")
    assert not witness_of(root).own
    moved = tmp_path / "moved"
    root.rename(moved)
    root.mkdir()
    (root / ".git").symlink_to(moved / ".git")
    shutil.copytree(moved / "dist", root / "dist")
    for relpath in files:
        other = (moved / relpath).read_bytes()
        write(root, relpath, other if relpath == "pyproject.toml" else other + b"#\n")
    (root / "src/demo/alias.py").symlink_to("b.py")
    git(moved, "config", "core.worktree", os.fspath(moved))
    assert git_names(moved) == ""  # git itself looks at the moved tree, where nothing changed
    assert answer(root) != old
    sound(root)


def quick_without_root_powers(root: Path) -> str:
    """The quick answer from another process that, even as root, cannot read what its
    permissions forbid (setpriv drops the capabilities that override them)."""
    script = (
        "import sys; from freshinstall import quick; "
        f"quick.MARGIN_NS = {SHORT_MARGIN_NS}; print(quick.cached_fingerprint(sys.argv[1]))"
    )
    command = [sys.executable, "-c", script, os.fspath(root)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("as root, needs setpriv to drop the override of file permissions")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def noisy_git(directory: Path, noise: int) -> Path:
    """A directory holding a ``git`` that writes ``noise`` bytes of warnings to stderr before
    each ``diff-files``, then runs the real git (for PATH: quick.start_git finds git there)."""
    real = shutil.which("git")
    assert real is not None
    directory.mkdir()
    script = directory / "git"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *diff-files*) head -c {noise} /dev/zero | tr "\\\\0" w >&2;; esac\n'
        f'exec "{real}" "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return directory


@pytest.mark.parametrize("noise", [100, 1 << 20], ids=["a line", "a megabyte"])
def test_git_noise_on_stderr_means_checking_every_file(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noise: int
) -> None:
    """Whatever git writes to stderr, the answer is checked file by file instead (and a full
    pipe never stalls git: the megabyte)."""
    (digest,) = vouch(project)
    shim = noisy_git(tmp_path / "bin", noise)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    checked = check(project)
    assert checked.witnessed
    assert checked.digest == digest
    assert checked.lstat >= VOUCHED  # every file, as without a witness
    same_size_edit(project / "src/demo/a.py")
    assert check(project).digest is None


def test_tracing_does_not_stop_the_witness(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIT_TRACE=1 would write to stderr: it is not passed on to git."""
    (digest,) = vouch(project)
    monkeypatch.setenv("GIT_TRACE", "1")
    monkeypatch.setenv("GIT_TRACE2", "1")
    assert assert_vouched(project, *VOUCHED) == digest


def test_trace2_turned_on_in_the_configuration_stays_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trace2.normalTarget = 2 in git's global configuration writes timestamped lines to
    stderr: they reach neither the VCS state nor the witness's check."""
    config = tmp_path / "gitconfig"
    config.write_text("[trace2]\n\tnormalTarget = 2\n", encoding="utf-8")
    project = make_project(tmp_path / "project", {**FILES, "pyproject.toml": SCM})
    git(project, "tag", "v1.0")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.fspath(config))
    assert "trace2" not in inputs.vcs_state(project)
    assert inputs.vcs_state(project) == inputs.vcs_state(project)
    (digest,) = vouch(project)
    assert assert_vouched(project, *VOUCHED) == digest


def test_a_file_git_cannot_lstat_refuses_the_answer(tmp_path: Path) -> None:
    """git only warns about a tracked file it cannot ``lstat`` (its directory is not
    searchable), and leaves it out of what it names: the warning refuses the answer. (No
    untracked file there, whose absence from the listing would refuse it anyway.)"""
    files = {**FILES, "src/other/d.py": "D = 4\n"}
    project = make_project(tmp_path / "project", files, {"build/x.py": "X = 5\n"})
    (old,) = vouch(project)
    assert_vouched(project, *VOUCHED, "src/other/d.py")
    same_size_edit(project / "src/other/d.py")
    now = scratch(project)
    assert now != old
    other = project / "src/other"  # holds nothing but that file
    other.chmod(0)
    try:
        assert quick_without_root_powers(project) == "None"
    finally:
        other.chmod(0o755)
    assert answer(project) in (None, now)


# --- configuration that weakens git's own check --------------------------------------------------

WEAKENING = {
    "core.trustctime=false": {"core.trustctime": "false"},
    "core.checkStat=minimal": {"core.checkStat": "minimal"},
    "core.fileMode=false": {"core.fileMode": "false"},
    "core.ignoreStat=true": {"core.ignoreStat": "true"},
    "all of them": {
        "core.trustctime": "false",
        "core.checkStat": "minimal",
        "core.fileMode": "false",
        "core.ignoreStat": "true",
    },
}

#: name -> a change git sees only by ctime or the x bit.
STAT_CHANGES: dict[str, Callable[[Path], object]] = {
    "same size, mtime restored": lambda root: same_size_edit(root / "src/demo/b.py"),
    "chmod +x": lambda root: (root / "src/demo/a.py").chmod(0o755),
    "chmod g+x": _group_execute,
}


@pytest.mark.parametrize("config", WEAKENING.values(), ids=WEAKENING)
def test_repository_config_cannot_weaken_the_check(tmp_path: Path, config: dict[str, str]) -> None:
    """The user's configuration tells git to look at less; ``git diff-files`` is run with the
    strict settings anyway, so edits only ctime or the x bit show are still seen. One project
    per change, vouched for with one wait."""
    roots = projects(tmp_path, list(STAT_CHANGES))
    for root in roots.values():
        for key, value in config.items():
            git(root, "config", key, value)
    digests = dict(zip(roots, vouch(*roots.values()), strict=True))
    for name, change in STAT_CHANGES.items():
        root = roots[name]
        assert_vouched(root, "src/demo/a.py", "src/demo/b.py")
        change(root)
        now = scratch(root)
        assert now != digests[name], name
        checked = check(root)
        assert checked.witnessed, name
        assert checked.digest is None, name
    if "core.checkStat" in config or "core.trustctime" in config:  # git alone misses it
        assert git(roots["same size, mtime restored"], "diff-files", "--name-only") == ""


# --- index versions and formats ------------------------------------------------------------------

#: Long names, so that a version 4 index strips more than 127 bytes (a two-byte varint).
LONG = "src/demo/" + "d" * 140 + "/m.py"
SHORT = "src/demo/e.py"


def test_index_version_4_vouches(tmp_path: Path) -> None:
    """Path prefix compression, with a strip count over 127."""
    root = make_project(tmp_path / "project", {**FILES, LONG: "L = 1\n", SHORT: "E = 1\n"})
    git(root, "update-index", "--index-version", "4")
    assert index_bytes(root / ".git/index")[4:8] == struct.pack(">I", 4)
    (before,) = vouch(root)
    assert witness_of(root).vouched == VOUCHED | {LONG, SHORT}
    assert_vouched(root, LONG, SHORT)
    same_size_edit(root / SHORT)
    assert_seen(root, before)


def test_index_version_3_with_intent_to_add(project: Path) -> None:
    """``git add -N`` makes a version 3 index with an extended flag: the intent-to-add file
    keeps its own record, the rest is vouched for, and an edit of either is seen."""
    git(project, "add", "-N", "src/demo/scratch.py")
    assert index_bytes(project / ".git/index")[4:8] == struct.pack(">I", 3)
    (before,) = vouch(project)
    witness = witness_of(project)
    assert "src/demo/scratch.py" in witness.unvouched
    assert "src/demo/scratch.py" in witness.own
    assert_vouched(project, *VOUCHED)
    same_size_edit(project / "src/demo/scratch.py")
    now = scratch(project)
    assert now != before
    checked = check(project)
    assert checked.witnessed
    assert checked.digest is None
    refresh(project)
    assert check(project).digest == now
    same_size_edit(project / "src/demo/a.py")
    assert sound(project) != now
    checked = check(project)
    assert checked.witnessed
    assert checked.digest is None


def test_split_index_gives_no_witness(project: Path) -> None:
    """A split index (the ``link`` extension) is not read: no witness, lstat as before."""
    git(project, "config", "core.splitIndex", "true")
    next_second()  # as vouch(), but split after the refresh, which writes a whole index
    rewrite_index(project)
    git(project, "update-index", "--split-index")
    assert b"link" in index_bytes(project / ".git/index")
    before = refresh(project)
    assert recorded_witness(project) is None
    assert answering(project) == before
    same_size_edit(project / "src/demo/a.py")
    now = sound(project)
    assert now != before
    assert answer(project) is None
    answers_again(project, now)


def test_sparse_checkout_gives_no_wrong_answer(tmp_path: Path) -> None:
    """A cone-mode sparse checkout with a sparse index: files outside the cone are tracked
    but absent, so no answer is recorded; whatever happens, never a wrong one."""
    root = make_project(tmp_path / "project", {**FILES, "docs/x.md": "x\n"})
    git(root, "sparse-checkout", "init", "--cone", "--sparse-index")
    git(root, "sparse-checkout", "set", "src")
    assert not (root / "docs/x.md").exists()
    (before,) = vouch(root)
    assert sound(root) == before
    same_size_edit(root / "src/demo/a.py")
    assert sound(root) != before
    git(root, "sparse-checkout", "disable")
    now = sound(root)
    answers_again(root, now)


# --- where the project and its index are ---------------------------------------------------------


def test_project_in_a_subdirectory(tmp_path: Path) -> None:
    """A monorepo: the witness vouches by paths relative to the project root, a change
    outside the project does not matter, one inside is seen."""
    repo = tmp_path / "repo"
    root = make_project(repo / "pkg", untracked={}, in_git=False)
    write(repo, "other.txt", "other\n")
    write(repo, "lib/x.py", "X = 1\n")
    git(repo, "init", "-q")
    commit_all(repo, "initial")
    for relpath, content in UNTRACKED.items():
        write(root, relpath, content)
    (digest,) = vouch(root)
    witness = witness_of(root)
    assert witness.index_path == os.fspath(repo / ".git" / "index")
    assert witness.vouched == VOUCHED
    assert witness.own.keys() == {"src/demo/__init__.py", "src/demo/scratch.py"}
    assert assert_vouched(root, *VOUCHED) == digest
    write(repo, "other.txt", "changed outside the project\n")
    same_size_edit(repo / "lib/x.py")
    assert assert_vouched(root, *VOUCHED) == digest
    same_size_edit(root / "src/demo/b.py")
    assert_seen(root, digest)


def test_linked_worktree(project: Path, tmp_path: Path) -> None:
    """``git worktree add``: a ``.git`` file names the worktree's own index, and each work
    tree's witness is its own."""
    linked = tmp_path / "linked"
    git(project, "worktree", "add", "-q", "--detach", os.fspath(linked))
    index = quick.index_file(os.fspath(linked))
    assert index is not None
    assert os.path.samefile(index, project / ".git/worktrees/linked/index")
    main_digest, linked_digest = vouch(project, linked)
    assert main_digest != linked_digest  # the untracked input is only in the main one
    assert witness_of(linked).index_path == index
    assert_vouched(linked, *VOUCHED)
    assert_vouched(project, *VOUCHED)
    same_size_edit(project / "src/demo/a.py")  # the main work tree's copy
    assert assert_vouched(linked, *VOUCHED) == linked_digest
    same_size_edit(linked / "src/demo/b.py")
    assert_seen(linked, linked_digest)


def test_git_file_with_a_relative_gitdir(project: Path, tmp_path: Path) -> None:
    """A ``.git`` file naming the git directory relative to the work tree (as a submodule's
    does)."""
    gitdirs = tmp_path / "gitdirs"
    gitdirs.mkdir()
    (project / ".git").rename(gitdirs / "project.git")
    write(project, ".git", "gitdir: ../gitdirs/project.git\n")
    index = quick.index_file(os.fspath(project))
    assert index is not None
    assert os.path.samefile(index, gitdirs / "project.git" / "index")
    (before,) = vouch(project)
    assert witness_of(project).index_path == index
    assert_vouched(project, *VOUCHED)
    same_size_edit(project / "src/demo/c.py")
    assert_seen(project, before)


def test_submodule(project: Path, tmp_path: Path) -> None:
    """A real submodule: its ``.git`` file points into the superproject's .git/modules."""
    outer = tmp_path / "outer"
    outer.mkdir()
    git(outer, "init", "-q")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q",
        os.fspath(project), "sub")  # fmt: skip
    root = outer / "sub"
    index = quick.index_file(os.fspath(root))
    assert index is not None
    assert os.path.samefile(index, outer / ".git/modules/sub/index")
    (before,) = vouch(root)
    assert_vouched(root, *VOUCHED)
    same_size_edit(root / "src/demo/a.py")
    assert_seen(root, before)


# --- untracked inputs ----------------------------------------------------------------------------


#: name -> a change to the untracked inputs, which the witness never vouches for.
UNTRACKED_CHANGES: dict[str, Callable[[Path], object]] = {
    "add": lambda root: write(root, "src/demo/new.py", "N = 1\n"),
    "edit": lambda root: write(root, "src/demo/scratch.py", "S = 44\n"),
    "same size, mtime restored": lambda root: same_size_edit(root / "src/demo/scratch.py"),
    "delete": lambda root: (root / "src/demo/scratch.py").unlink(),
    "rename": lambda root: (root / "src/demo/scratch.py").rename(root / "src/demo/t.py"),
    "ignore it": lambda root: write(root, ".git/info/exclude", "scratch.py\n"),
}


@pytest.mark.parametrize("change", UNTRACKED_CHANGES.values(), ids=UNTRACKED_CHANGES)
def test_a_change_to_untracked_inputs_is_seen(
    project: Path, change: Callable[[Path], object]
) -> None:
    """The index is the same, so only the untracked part is listed again, and untracked files
    are checked against their own records: every change is seen."""
    (before,) = vouch(project)
    assert_vouched(project, *VOUCHED)
    change(project)
    assert_seen(project, before)


def test_an_ignored_file_keeps_the_witness(project: Path) -> None:
    """A new ignored file is no input: the untracked listing is the same, the answer too."""
    (digest,) = vouch(project)
    write(project, "src/demo/debug.log", "log\n")
    write(project, "dist/demo-1.0-py3-none-any.whl", b"PK")
    assert assert_vouched(project, *VOUCHED) == digest


# --- gitindex.read_index on real index files -----------------------------------------------------


def debug_entries(root: Path) -> dict[str, tuple[tuple[int, int], tuple[int, int], int, int, int]]:
    """What ``git ls-files --debug --stage`` says of each entry: ctime, mtime, inode, mode,
    size."""
    found = {}
    lines = git(root, "ls-files", "--debug", "--stage").splitlines()
    for number, line in enumerate(lines):
        if line.startswith(" "):
            continue
        info, path = line.split("\t", 1)
        fields: dict[str, str] = {}
        for text in lines[number + 1 : number + 6]:
            for item in text.strip().split("\t"):
                key, _, value = item.partition(": ")
                fields[key] = value
        ctime = tuple(map(int, fields["ctime"].split(":")))
        mtime = tuple(map(int, fields["mtime"].split(":")))
        assert len(ctime) == len(mtime) == 2
        found[path] = (
            (ctime[0], ctime[1]),
            (mtime[0], mtime[1]),
            int(fields["ino"]),
            int(info.split()[0], 8),
            int(fields["size"]),
        )
    return found


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A repository with the entries an index can hold: a symlink, an executable file, an
    empty file, nested and long paths."""
    files = {**FILES, LONG: "L\n", SHORT: "E\n", "x/y/z": "z\n"}
    root = make_project(tmp_path / "repo", files, untracked={})
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    commit_all(root, "more")
    write(root, "src/demo/scratch.py", "S = 4\n")
    return root


#: An entry's stat data as git stores it: ctime and mtime (s, ns), inode, mode, size.
Stat = tuple[tuple[int, int], tuple[int, int], int, int, int]
STAT = struct.Struct(">10I")


def read_entries(data: bytes) -> tuple[dict[str, Stat], set[str]] | None:
    """``gitindex.read_index``: the stat data of each entry it points at, and the paths it
    marks as not checked by git (no offset)."""
    found = gitindex.read_index(data)
    if found is None:
        return None
    stats: dict[str, Stat] = {}
    unchecked: set[str] = set()
    for name, offset in found.items():
        path = os.fsdecode(name)
        if offset < 0:
            unchecked.add(path)
            continue
        ctime_s, ctime_ns, mtime_s, mtime_ns, _, ino, mode, _, _, size = STAT.unpack_from(
            data, offset
        )
        stats[path] = ((ctime_s, ctime_ns), (mtime_s, mtime_ns), ino, mode, size)
    return stats, unchecked


@pytest.mark.parametrize("version", [2, 3, 4])
def test_read_index_reads_what_git_wrote(repository: Path, version: int) -> None:
    """Every entry, in every version git writes: its stat data exactly as ``git ls-files
    --debug`` shows it."""
    if version == 3:  # git writes version 3 only when an entry has extended flags
        git(repository, "add", "-N", "src/demo/scratch.py")
    else:
        git(repository, "update-index", "--index-version", str(version))
    data = index_bytes(repository / ".git/index")
    assert struct.unpack(">I", data[4:8])[0] == version
    found = read_entries(data)
    assert found is not None
    stats, unchecked = found
    expected = debug_entries(repository)
    intent = {"src/demo/scratch.py"} if version == 3 else set()
    assert unchecked == intent
    assert stats == {path: entry for path, entry in expected.items() if path not in intent}
    assert {LONG, SHORT, "run.sh", "src/demo/alias.py"} <= stats.keys()
    assert stats["run.sh"][3] == 0o100755
    assert stats["src/demo/alias.py"][3] == 0o120000
    info = os.lstat(repository / LONG)
    assert stats[LONG][2:] == (info.st_ino & 0xFFFFFFFF, 0o100644, info.st_size)


def test_read_index_marks_entries_git_does_not_check(repository: Path) -> None:
    """assume-unchanged, skip-worktree, intent-to-add and unmerged entries never vouch."""
    git(repository, "checkout", "-q", "-b", "other")
    write(repository, "x/y/z", "theirs\n")
    git(repository, "commit", "-q", "-m", "theirs", "x/y/z")
    git(repository, "checkout", "-q", "-")
    write(repository, "x/y/z", "ours\n")
    git(repository, "commit", "-q", "-m", "ours", "x/y/z")
    assert git_code(repository, "merge", "-q", "other") != 0  # a conflict in x/y/z
    assert len(git(repository, "ls-files", "--unmerged", "x/y/z").splitlines()) == 3
    git(repository, "update-index", "--assume-unchanged", "src/demo/a.py")
    git(repository, "update-index", "--skip-worktree", "src/demo/b.py")
    git(repository, "add", "-N", "src/demo/scratch.py")
    found = read_entries(index_bytes(repository / ".git/index"))
    assert found is not None
    unchecked = {"src/demo/a.py", "src/demo/b.py", "src/demo/scratch.py", "x/y/z"}
    assert found[1] == unchecked
    assert "src/demo/c.py" in found[0]


def _reseal(body: bytes) -> bytes:
    return body + hashlib.sha1(body).digest()  # noqa: S324 - git's checksum


def read_safely(data: bytes) -> object:
    """``read_index``, with the errors its caller catches reported as "damaged"."""
    try:
        return gitindex.read_index(data)
    except (ValueError, IndexError, struct.error):
        return "damaged"


def test_read_index_refuses_a_damaged_index(repository: Path) -> None:
    """A flipped bit, a zeroed checksum (index.skipHash), any truncation: no entries. A sealed
    index whose contents lie is reported as damaged, never read as entries."""
    data = index_bytes(repository / ".git/index")
    entries = gitindex.read_index(data)
    assert entries is not None
    for offset in (0, 5, 9, 12, 40, len(data) // 2, len(data) - 25, len(data) - 1):
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        assert gitindex.read_index(bytes(flipped)) is None, offset
    assert gitindex.read_index(data[:-20] + bytes(20)) is None
    for length in range(len(data)):
        assert read_safely(data[:length]) in (None, "damaged"), length
    body = data[:-20]
    count = struct.unpack(">I", body[8:12])[0]
    for lie in (count + 1, count - 1, count + 1000):
        forged = body[:8] + struct.pack(">I", lie) + body[12:]
        assert read_safely(_reseal(forged)) == "damaged", lie
    assert read_safely(_reseal(body + b"TREE" + struct.pack(">I", 10**6))) == "damaged"
    assert read_safely(_reseal(body + b"\0\0\0")) == "damaged"
    assert gitindex.read_index(_reseal(body[:4] + struct.pack(">I", 5) + body[8:])) is None
    assert gitindex.read_index(_reseal(b"DIRX" + body[4:])) is None


def test_read_index_refuses_extended_flags_in_version_2(repository: Path) -> None:
    git(repository, "add", "-N", "src/demo/scratch.py")
    body = index_bytes(repository / ".git/index")[:-20]
    assert body[4:8] == struct.pack(">I", 3)
    assert read_safely(_reseal(body[:4] + struct.pack(">I", 2) + body[8:])) == "damaged"


def test_read_index_refuses_split_and_sparse_indexes(repository: Path, tmp_path: Path) -> None:
    git(repository, "update-index", "--split-index")
    assert b"link" in index_bytes(repository / ".git/index")
    assert gitindex.read_index(index_bytes(repository / ".git/index")) is None
    git(repository, "update-index", "--no-split-index")
    assert gitindex.read_index(index_bytes(repository / ".git/index")) is not None
    write(repository, "docs/x.md", "x\n")
    commit_all(repository, "docs")
    git(repository, "sparse-checkout", "init", "--cone", "--sparse-index")
    git(repository, "sparse-checkout", "set", "src")
    assert b"sdir" in index_bytes(repository / ".git/index")
    assert gitindex.read_index(index_bytes(repository / ".git/index")) is None


def test_read_index_refuses_a_sha256_repository(tmp_path: Path) -> None:
    root = tmp_path / "sha256"
    write(root, "a.py", "A = 1\n")
    git(root, "init", "-q", "--object-format=sha256")
    commit_all(root, "initial")
    data = index_bytes(root / ".git/index")
    assert gitindex.read_index(data) is None


def test_read_index_skips_extensions(repository: Path) -> None:
    """The cache tree (TREE) and untracked cache (UNTR) extensions are read past."""
    git(repository, "config", "core.untrackedCache", "true")
    git(repository, "update-index", "--untracked-cache")
    git(repository, "status", "--porcelain")
    data = index_bytes(repository / ".git/index")
    assert b"TREE" in data
    assert b"UNTR" in data
    found = read_entries(data)
    assert found is not None
    assert found == (debug_entries(repository), set())


# --- the property, over random histories ---------------------------------------------------------

OPERATIONS = (
    "edit",
    "same-size",
    "chmod",
    "chmod-g",
    "touch",
    "delete",
    "symlink",
    "untracked",
    "git-add",
    "git-status",
    "refresh-index",
    "assume",
    "record",
)
TARGETS = ("src/demo/a.py", "src/demo/b.py", ".gitignore", "src/demo/alias.py")


def record(root: Path) -> None:
    """A full run that may record a witness; then, when a vouched file's ctime is in this
    second, wait for the next one, as the real margin of 2 s would make sure. With the tests'
    50 ms, a later edit could share that second, which git (without USE_NSEC) cannot tell:
    test_a_vouched_ctime_shares_no_second_with_a_later_edit shows that case on its own."""
    full(root)
    witness = recorded_witness(root)
    # A little behind the wall clock, as the kernel's coarse file clock can be.
    now = time.time_ns() - 20_000_000
    if witness is not None and witness.vouched and now // 10**9 <= witness.newest // 10**9:
        next_second()


def _operate(root: Path, action: str, name: str, content: bytes) -> None:
    path = root / name
    exists = path.exists() and not path.is_symlink()
    if action == "edit":
        if path.is_symlink():
            path.unlink()
        write(root, name, content)
    elif action == "same-size" and exists and path.stat().st_size:
        same_size_edit(path)
    elif action == "chmod" and exists:
        path.chmod(path.stat().st_mode ^ 0o100)
    elif action == "chmod-g" and exists:
        path.chmod(path.stat().st_mode ^ 0o010)
    elif action == "touch" and exists:
        os.utime(path)
    elif action == "delete":
        path.unlink(missing_ok=True)
    elif action == "symlink":
        path.unlink(missing_ok=True)
        path.symlink_to("c.py")
    elif action == "untracked":
        write(root, "src/demo/u.py", content)
    elif action == "git-add":
        git_code(root, "add", "-A", "--", name)
    elif action == "git-status":
        git(root, "status", "--porcelain")
    elif action == "refresh-index":
        git_code(root, "update-index", "-q", "--refresh")
    elif action == "assume":
        flag = "--no-assume-unchanged" if content[0] % 2 else "--assume-unchanged"
        git_code(root, "update-index", flag, "--", name)
    elif action == "record":
        record(root)


@pytest.fixture
def pool(tmp_path: Path) -> list[Path]:
    """Projects whose index vouches, made and vouched for together: one wait for all the
    examples (hypothesis runs them with the same fixture)."""
    roots = [make_project(tmp_path / f"pool{number}") for number in range(20)]
    vouch(*roots)
    return roots


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # shrinking would wait a second per attempt
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(OPERATIONS),
            st.sampled_from(TARGETS),
            st.binary(min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_witness_is_never_wrong(
    pool: list[Path], tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, str, bytes]]
) -> None:
    """From a vouching index, after every step of a random history of edits and git
    commands, the quick answer is None or the from-scratch digest."""
    if pool:
        root = pool.pop()
    else:  # more examples than the pool holds (shrinking): one more wait
        root = make_project(tmp_path_factory.mktemp("more") / "project")
        vouch(root)
    assert check(root).witnessed
    for action, name, content in ops:
        _operate(root, action, name, content)
        sound(root)
    refresh(root)
    if tracked_files_present(root):
        answering(root)
    else:
        assert answer(root) is None
