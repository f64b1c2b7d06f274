"""The quick answer of ``freshinstall fingerprint`` (quick.py): None, or the from-scratch digest.

Every test checks the one property that matters, ``quick.cached_fingerprint(root)`` is either
None or exactly the digest a run without any cache computes, and, where the answer can be
re-checked, that a full cached run on a settled tree makes it answer (the fast path is used).
Real git repositories and real files throughout; only the racy margin is shortened to 50 ms (as
in test_statcache.py), so "settled" takes a 0.1 s sleep instead of seconds.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freshinstall import config, fingerprint, inputs, launch, quick, statcache
from freshinstall.config import Settings
from freshinstall.fingerprint import Fingerprint
from freshinstall.project import load_project
from tests.helpers import SHORT_MARGIN_NS as MARGIN_NS
from tests.helpers import commit_all, git, proc_stat, settle, write

STATIC = "[project]\nname = 'demo'\nversion = '1.0'\n"
SCM = """\
[build-system]
requires = ["setuptools", "setuptools-scm"]
build-backend = "setuptools.build_meta"

[project]
name = "demo"
dynamic = ["version"]

[tool.setuptools_scm]
"""
#: Committed files of the test project (plus a committed symlink, src/demo/alias.py -> a.py).
FILES: Mapping[str, str | bytes] = {
    "pyproject.toml": STATIC,
    ".gitignore": "*.log\n",
    "src/demo/__init__.py": "",
    "src/demo/a.py": "A = 1\n",
    "src/demo/b.py": "B = 2\n",
    "src/demo/c.py": "C = 3\n",
}
#: Files left untracked: an input, and a build output (a root build/ without __init__.py).
UNTRACKED: Mapping[str, str | bytes] = {
    "src/demo/scratch.py": "S = 4\n",
    "build/x.py": "X = 5\n",
}
NON_UTF8_NAME = os.fsdecode(b"caf\xe9.py")


# --- helpers -----------------------------------------------------------------------------------


def make_project(
    root: Path,
    files: Mapping[str, str | bytes] = FILES,
    untracked: Mapping[str, str | bytes] = UNTRACKED,
    *,
    in_git: bool = True,
) -> Path:
    """Write ``files`` and commit them (with ``in_git``), then write ``untracked``."""
    for relpath, content in files.items():
        write(root, relpath, content)
    (root / "src/demo/alias.py").symlink_to("a.py")
    if in_git:
        git(root, "init", "-q")
        commit_all(root, "initial")
    for relpath, content in untracked.items():
        write(root, relpath, content)
    return root


def answer(root: Path) -> str | None:
    """What the quick path says."""
    return quick.cached_fingerprint(os.fspath(root))


def scratch(root: Path) -> str:
    """The digest computed from scratch: no cache is read or written."""
    project = load_project(root)
    return inputs.fingerprint_project(project, config.load(project), use_cache=False)[1].digest


def full(root: Path) -> str:
    """A full cached run, as ``freshinstall fingerprint`` makes it when the quick path refuses:
    it refreshes the stat cache and records the answer."""
    project = load_project(root)
    result: Fingerprint = inputs.fingerprint_project(
        project, config.load(project), create_dist=True
    )[1]
    return result.digest


def refresh(root: Path) -> str:
    """Settle, then a full cached run: afterwards the quick path can answer."""
    settle()
    return full(root)


def sound(root: Path) -> str:
    """Assert the property (the quick answer is None or the from-scratch digest); that digest."""
    now = scratch(root)
    assert answer(root) in (None, now)
    return now


def answering(root: Path) -> str:
    """Assert that the quick path answers, with the from-scratch digest; that digest."""
    now = scratch(root)
    assert answer(root) == now
    return now


def warm(root: Path) -> str:
    """A full run on the settled tree, then the quick path answers."""
    refresh(root)
    return answering(root)


def cache_file(root: Path) -> Path:
    return root / "dist" / quick.FILENAME


def same_size_edit(path: Path) -> None:
    """Rewrite ``path`` in place with other bytes of the same size and put its mtime back
    (as ``cp -p`` or ``rsync -a`` would): only ctime still shows the edit."""
    old = path.stat()
    data = path.read_bytes()
    with path.open("r+b") as file:
        file.write(bytes(byte ^ 1 for byte in data[:1]))
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    new = path.stat()
    assert (new.st_size, new.st_mtime_ns, new.st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino)
    assert path.read_bytes() != data


def child_pids() -> set[int]:
    """This process's children, zombies included, from /proc (nothing is reaped)."""
    pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    return {pid for pid in pids if proc_stat(pid)[1:2] == [str(os.getpid())]}


@pytest.fixture(autouse=True)
def short_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quick, "MARGIN_NS", MARGIN_NS)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small static-version project in git: committed files, a symlink, untracked files."""
    return make_project(tmp_path / "project")


@pytest.fixture
def scm_project(tmp_path: Path) -> Path:
    """The same project versioned from git (setuptools-scm)."""
    return make_project(tmp_path / "project", {**FILES, "pyproject.toml": SCM})


@pytest.fixture
def no_leftover_children() -> Iterator[None]:
    """Fail when the test leaves a child process behind (a git, or a forked checker)."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc to list child processes")
    before = child_pids()
    yield
    assert child_pids() <= before


# --- the fast path is used ---------------------------------------------------------------------


def test_one_run_makes_a_settled_project_answer(project: Path) -> None:
    """git's listing leaves the root dist/ out, so the run that creates dist/ and writes its
    cache there records an answer that holds; it is the true digest."""
    settle()
    first = full(project)
    assert cache_file(project).is_file()
    assert answer(project) == first == scratch(project)
    assert launch.fingerprint_text(project, no_cache=True, as_json=False) == first


def test_files_written_into_dist_keep_the_answer(project: Path) -> None:
    """A wheel or a stamp written into dist/ (as an install does) changes nothing recorded."""
    digest = refresh(project)
    write(project, "dist/demo-1.0-py3-none-any.whl", b"PK")
    write(project, "dist/.freshinstall.json", "{}")
    assert answer(project) == digest == scratch(project)


def test_fresh_files_are_never_vouched_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files changed within the margin before the recording run are not trusted from that
    cache, even once they are old: only a later run can make the answer usable.

    A longer margin here (0.4 s), so that a loaded machine cannot stretch the time between
    writing the files (the untracked ones last) and the run's start beyond it.
    """
    margin = 400_000_000
    monkeypatch.setattr(quick, "MARGIN_NS", margin)
    root = make_project(tmp_path / "project", {**FILES, ".gitignore": "*.log\ndist/\n"})
    full(root)
    assert answer(root) is None  # the files are racy for that run
    time.sleep(2 * margin / 1e9)
    assert answer(root) is None  # still: the trust is anchored at the recording run's start
    full(root)
    assert answering(root)


def test_cli_prints_the_quick_answer_without_the_full_computation(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``freshinstall fingerprint PATH`` prints the recorded digest and never computes it."""
    digest = warm(project)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the full computation ran")

    monkeypatch.setattr(inputs, "fingerprint_project", forbidden)
    assert launch.main(["fingerprint", str(project)]) == 0
    assert capsys.readouterr().out == digest + "\n"
    assert launch.main(["fingerprint", "-v", str(project)]) == 0
    assert capsys.readouterr().out == digest + "\n"


def test_cli_falls_back_and_records_the_new_answer(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an edit the CLI computes (once), and its run makes the next one quick again."""
    before = warm(project)
    write(project, "src/demo/a.py", "A = 11\n")
    settle()
    expected = scratch(project)
    calls: list[object] = []
    real = inputs.fingerprint_project

    def counted(*args: object, **kwargs: object) -> tuple[list[str], Fingerprint]:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(inputs, "fingerprint_project", counted)
    assert launch.main(["fingerprint", str(project)]) == 0
    assert capsys.readouterr().out.strip() == expected != before
    assert len(calls) == 1
    assert launch.main(["fingerprint", str(project)]) == 0
    assert capsys.readouterr().out.strip() == expected
    assert len(calls) == 1  # the second run was answered quickly


def test_no_cache_and_json_do_not_ask_the_quick_path(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--no-cache and --json always compute; neither consults the recorded answer."""
    digest = warm(project)

    def forbidden(path: str) -> None:
        raise AssertionError(path)

    monkeypatch.setattr(quick, "cached_fingerprint", forbidden)
    assert launch.main(["fingerprint", "--no-cache", str(project)]) == 0
    assert capsys.readouterr().out == digest + "\n"
    assert launch.main(["fingerprint", "--json", str(project)]) == 0
    assert f'"fingerprint": "{digest}"' in capsys.readouterr().out


# --- changes: never the old digest, and answering again after a run ----------------------------

#: A change to the settled project; it may set variables through the MonkeyPatch.
Change = Callable[[Path, pytest.MonkeyPatch], object]


def _edit(root: Path, _: pytest.MonkeyPatch) -> None:
    write(root, "src/demo/a.py", "A = 100\n")


def _same_size_edit(root: Path, _: pytest.MonkeyPatch) -> None:
    same_size_edit(root / "src/demo/b.py")


def _retarget(root: Path, _: pytest.MonkeyPatch) -> None:
    link = root / "src/demo/alias.py"
    link.unlink()
    link.symlink_to("c.py")  # same length as "a.py"


def _copy_in_place(root: Path, _: pytest.MonkeyPatch) -> None:
    """Replace a file by a copy of itself (a new inode, same bytes): the digest stays."""
    path = root / "src/demo/c.py"
    shutil.copy2(path, root / "c.tmp")
    os.replace(root / "c.tmp", path)


def _global_ignore(root: Path, _: pytest.MonkeyPatch) -> None:
    """Ignore a file through the user's git config: nothing in the project changes."""
    write(Path(os.environ["XDG_CONFIG_HOME"]), "git/ignore", "scratch.py\n")


def _setenv(name: str, value: str) -> Change:
    def change(_: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(name, value)

    return change


#: name -> (change, whether it changes the digest, whether the quick path still answers).
CHANGES: dict[str, tuple[Change, bool, bool]] = {
    "edit": (_edit, True, False),
    "same size, mtime restored": (_same_size_edit, True, False),
    "add an untracked file": (lambda root, _: write(root, "src/demo/new.py"), True, False),
    "add an ignored file": (lambda root, _: write(root, "src/demo/debug.log"), False, True),
    "delete an untracked file": (
        lambda root, _: (root / "src/demo/scratch.py").unlink(),
        True,
        False,
    ),
    "rename an untracked file": (
        lambda root, _: (root / "src/demo/scratch.py").rename(root / "src/demo/z.py"),
        True,
        False,
    ),
    "git mv": (lambda root, _: git(root, "mv", "src/demo/a.py", "src/demo/z.py"), True, False),
    "chmod +x": (lambda root, _: (root / "src/demo/a.py").chmod(0o755), True, False),
    "retarget a symlink": (_retarget, True, False),
    "replace by an identical copy": (_copy_in_place, False, False),
    ".gitignore ignores a file": (
        lambda root, _: write(root, ".gitignore", "*.log\nscratch.py\n"),
        True,
        False,
    ),
    ".git/info/exclude ignores a file": (
        lambda root, _: write(root, ".git/info/exclude", "scratch.py\n"),
        True,
        False,
    ),
    "global excludes file ignores a file": (_global_ignore, True, False),
    "git add of an unchanged file": (
        lambda root, _: git(root, "add", "src/demo/a.py"),
        False,
        True,
    ),
    "git add of an untracked file": (
        lambda root, _: git(root, "add", "src/demo/scratch.py"),
        False,
        False,
    ),
    "git commit without changes": (
        lambda root, _: git(root, "commit", "-q", "--allow-empty", "-m", "empty"),
        False,
        True,
    ),
    "SOURCE_DATE_EPOCH": (_setenv("SOURCE_DATE_EPOCH", "1"), True, False),
    "SETUPTOOLS_SCM_PRETEND_VERSION": (
        _setenv("SETUPTOOLS_SCM_PRETEND_VERSION", "9.9"),
        True,
        False,
    ),
    "FRESHINSTALL_EXCLUDE": (_setenv("FRESHINSTALL_EXCLUDE", "src/demo/b.py"), True, False),
    "FRESHINSTALL_CONFIG_SETTINGS": (
        _setenv("FRESHINSTALL_CONFIG_SETTINGS", "key=value"),
        True,
        False,
    ),
    "FRESHINSTALL_WATCH_POLL (not an input)": (
        _setenv("FRESHINSTALL_WATCH_POLL", "1"),
        False,
        False,
    ),
    "edit pyproject.toml": (
        lambda root, _: write(root, "pyproject.toml", STATIC + "description = 'd'\n"),
        True,
        False,
    ),
    "exclude in pyproject.toml": (
        lambda root, _: write(
            root, "pyproject.toml", STATIC + "\n[tool.freshinstall]\nexclude = ['*/b.py']\n"
        ),
        True,
        False,
    ),
    "root build/__init__.py": (lambda root, _: write(root, "build/__init__.py", ""), True, False),
    "add setup.py": (lambda root, _: write(root, "setup.py", "import setuptools\n"), True, False),
}


@pytest.mark.parametrize(
    ("change", "changes_digest", "still_answers"), CHANGES.values(), ids=CHANGES
)
def test_a_change_never_gets_the_old_digest(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Change,
    changes_digest: bool,
    still_answers: bool,
) -> None:
    """After the change the answer is None or the new digest (so never the old one when the
    content changed); a settled full run then makes it answer the new digest."""
    before = warm(project)
    change(project, monkeypatch)
    now = sound(project)
    assert (now != before) == changes_digest
    if still_answers:  # nothing the answer depends on changed: it is still used
        assert answer(project) == now
    refresh(project)
    assert answering(project) == now


def test_a_deleted_tracked_file_is_never_vouched_for(project: Path) -> None:
    """git still lists a deleted tracked file, so no run records an answer without it (it
    has no stat record): when it comes back with other bytes, no stale digest is returned."""
    before = warm(project)
    path = project / "src/demo/b.py"
    path.unlink()
    deleted = sound(project)
    assert deleted != before
    assert answer(project) is None
    refresh(project)
    assert answer(project) is None  # the refusal: a tracked input has no record
    assert full(project) == deleted
    write(project, "src/demo/b.py", "B = 222\n")
    recreated = sound(project)
    assert recreated not in (before, deleted)
    assert answer(project) is None
    refresh(project)
    assert answering(project) == recreated


def test_a_tracked_file_renamed_and_back(project: Path) -> None:
    """A plain ``mv`` of a tracked file leaves git listing the old name (deleted): no answer
    until it is back, and then only the original digest."""
    before = warm(project)
    (project / "src/demo/a.py").rename(project / "src/demo/z.py")
    moved = sound(project)
    assert moved != before
    refresh(project)
    assert answer(project) is None
    (project / "src/demo/z.py").rename(project / "src/demo/a.py")
    assert sound(project) == before
    refresh(project)
    assert answering(project) == before


def test_a_deleted_tracked_file_answers_again_once_removed_from_git(project: Path) -> None:
    """After ``git rm`` the file is no longer listed, so the answer holds again."""
    warm(project)
    (project / "src/demo/b.py").unlink()
    refresh(project)
    assert answer(project) is None
    git(project, "rm", "-q", "--cached", "src/demo/b.py")
    refresh(project)
    gone = answering(project)
    write(project, "src/demo/b.py", "B = 2\n")  # back, untracked: listed again
    assert answer(project) is None
    assert scratch(project) != gone


def test_a_change_outside_the_project_root_is_seen(tmp_path: Path) -> None:
    """A project in a subdirectory of a repository: the repository's own .gitignore (not an
    input of the project) can change the inputs, and only the listing shows it."""
    repo = tmp_path / "repo"
    root = make_project(repo / "pkg", untracked={}, in_git=False)
    write(repo, ".gitignore", "*.log\n")
    git(repo, "init", "-q")
    commit_all(repo, "initial")
    for relpath, content in UNTRACKED.items():
        write(root, relpath, content)
    before = warm(root)
    write(repo, ".gitignore", "*.log\nscratch.py\n")
    now = sound(root)
    assert now != before
    assert answer(root) is None
    refresh(root)
    assert answering(root) == now


def test_a_root_given_through_a_symlink(project: Path, tmp_path: Path) -> None:
    """The root is resolved the same way by both paths: a link to the project answers."""
    link = tmp_path / "link"
    link.symlink_to(project)
    digest = warm(link)
    assert answer(project) == digest == scratch(project)


def test_moving_the_project_refuses(project: Path, tmp_path: Path) -> None:
    """The root is part of the answer: a moved tree (same stat data) is computed again."""
    digest = warm(project)
    moved = tmp_path / "moved"
    project.rename(moved)
    assert answer(moved) is None
    assert refresh(moved) == digest
    assert answering(moved) == digest


# --- projects versioned from git ---------------------------------------------------------------


def test_vcs_project_answers_when_nothing_changed(scm_project: Path) -> None:
    """The quick path re-runs git describe/status and answers when they are unchanged."""
    digest = warm(scm_project)
    assert answer(scm_project) == digest


@pytest.mark.parametrize(
    "args",
    [
        ("commit", "-q", "--allow-empty", "-m", "empty"),
        ("tag", "v1.0"),
        ("tag", "-a", "-m", "annotated", "v2.0"),
    ],
    ids=["empty commit", "tag", "annotated tag"],
)
def test_vcs_state_change_never_gets_the_old_digest(
    scm_project: Path, args: tuple[str, ...]
) -> None:
    """A new commit or tag changes the version, so the digest: quick must not return the old."""
    before = warm(scm_project)
    git(scm_project, *args)
    now = sound(scm_project)
    assert now != before
    assert answer(scm_project) != before
    refresh(scm_project)
    assert answering(scm_project) == now


def test_vcs_staged_edit_never_gets_the_old_digest(scm_project: Path) -> None:
    """Staging and committing an edit made before the answer was recorded (the file's stat
    data is trusted all along) changes git status and describe: never the old digest."""
    write(scm_project, "src/demo/a.py", "A = 7\n")
    dirty = warm(scm_project)
    git(scm_project, "add", "src/demo/a.py")
    staged = sound(scm_project)
    assert staged != dirty
    refresh(scm_project)
    assert answering(scm_project) == staged
    git(scm_project, "commit", "-q", "-m", "edit")
    committed = sound(scm_project)
    assert committed != staged
    refresh(scm_project)
    assert answering(scm_project) == committed


# --- where no answer is recorded or accepted ---------------------------------------------------


def test_outside_git_never_answers(tmp_path: Path) -> None:
    """A plain directory: the listing cannot be re-checked, so no answer is recorded."""
    root = make_project(tmp_path / "plain", in_git=False)
    for _ in range(3):
        refresh(root)
        assert cache_file(root).is_file()
        assert answer(root) is None
    assert quick.read_cache(os.fspath(root / "dist")) is not None
    assert scratch(root) == full(root)


def test_include_patterns_never_answer(tmp_path: Path) -> None:
    """``include`` globs the file system, which the answer does not cover."""
    pyproject = STATIC + "\n[tool.freshinstall]\ninclude = ['*.log']\n"
    root = make_project(tmp_path / "project", {**FILES, "pyproject.toml": pyproject})
    write(root, "debug.log", "1\n")
    refresh(root)
    refresh(root)
    assert answer(root) is None
    write(root, "debug.log", "2\n")  # an ignored file that counts: only globbing sees it
    assert answer(root) is None
    assert scratch(root) == refresh(root)


def test_include_from_the_environment_never_answers(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FRESHINSTALL_INCLUDE is ``include`` too: the recorded answer is dropped, not used."""
    warm(project)
    monkeypatch.setenv("FRESHINSTALL_INCLUDE", "*.log")
    write(project, "x.log", "1\n")
    sound(project)
    refresh(project)
    refresh(project)
    assert answer(project) is None


@pytest.mark.parametrize(
    "other",
    [Settings(exclude=("src/demo/b.py",)), Settings(config_settings={"key": "value"})],
    ids=["--exclude", "--config-setting"],
)
def test_a_run_with_other_settings_drops_the_answer(project: Path, other: Settings) -> None:
    """A run whose settings came from the command line (as ``install --exclude`` makes) has
    another digest: it records no answer, and removes the one that was there."""
    digest = warm(project)
    settle()
    loaded = load_project(project)
    assert inputs.fingerprint_project(loaded, other)[1].digest != digest
    assert answer(project) is None
    assert full(project) == digest  # ... until the next plain run
    assert answering(project) == digest


def test_embedded_repository_never_answers(project: Path) -> None:
    """An untracked nested repository is listed as a directory and walked: no answer."""
    nested = write(project, "vendor/lib/x.py").parent
    git(nested, "init", "-q")
    refresh(project)
    refresh(project)
    assert answer(project) is None
    write(project, "vendor/lib/x.py", "changed\n")
    assert answer(project) is None
    assert sound(project) == refresh(project)


def _positions(data: bytes) -> dict[str, int]:
    """Offsets into a cache file: its header, its answer and its records."""
    header_end = data.index(b"\n")
    answer_length = int(data[:header_end].split(b" ")[3])
    return {
        "magic": 0,
        "header numbers": len(b" ".join(data[:header_end].split(b" ")[:4])) - 1,
        "answer crc": len(b" ".join(data[:header_end].split(b" ")[:5])) - 1,
        "records crc": header_end - 1,
        "answer lengths": header_end + 2,
        "answer listing": header_end + 1 + answer_length // 2,
        "answer digest": header_end + answer_length,
        "a record path": header_end + 1 + answer_length,
        "a record digest": len(data) - 2,
    }


@pytest.mark.parametrize(
    "where",
    [
        "magic",
        "header numbers",
        "answer crc",
        "answer lengths",
        "answer listing",
        "answer digest",
    ],
)
def test_a_damaged_cache_is_refused(project: Path, where: str) -> None:
    """One flipped bit anywhere in the header or the answer makes the answer refused."""
    warm(project)
    flip(project, where)
    assert answer(project) is None


@pytest.mark.parametrize("where", ["records crc", "a record path", "a record digest"])
def test_damaged_records_are_never_trusted(project: Path, where: str) -> None:
    """One flipped bit in the records: the stat cache refuses them all. The answer needs
    them only for the files git's index does not vouch for: here it vouches for all, so
    the answer stands, and it is right."""
    digest = warm(project)
    flip(project, where)
    assert quick.read_cache(os.fspath(project / "dist")) is None
    assert answer(project) == digest


def flip(project: Path, where: str) -> None:
    cache = cache_file(project)
    data = bytearray(cache.read_bytes())
    data[_positions(bytes(data))[where]] ^= 0x01
    cache.write_bytes(bytes(data))


def test_a_truncated_cache_is_refused(project: Path) -> None:
    """Cut in the header or the answer: refused. Cut in the records: those are refused, and
    the answer stands on the index's word (see test_damaged_records_are_never_trusted)."""
    digest = warm(project)
    cache = cache_file(project)
    data = cache.read_bytes()
    for length in (0, 10, _positions(data)["answer listing"], _positions(data)["answer digest"]):
        cache.write_bytes(data[:length])
        assert answer(project) is None
    cache.write_bytes(data[:-1])
    assert quick.read_cache(os.fspath(project / "dist")) is None
    assert answer(project) == digest


def test_a_cache_without_an_answer_is_refused(project: Path) -> None:
    """statcache.hash_files records no answer, and its rewrite drops the one that was there."""
    warm(project)
    paths = fingerprint.list_inputs(project)
    settle()
    statcache.hash_files(project, paths, project / "dist")
    assert quick.read_cache(os.fspath(project / "dist")) is not None
    assert answer(project) is None


def test_a_fresh_cache_from_hash_files_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project")
    settle()
    paths = fingerprint.list_inputs(root)
    for _ in range(2):
        statcache.hash_files(root, paths, root / "dist")
        assert answer(root) is None


def test_no_cache_never_writes_the_cache(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--no-cache creates no dist/, and leaves an existing cache untouched."""
    settle()
    assert launch.main(["fingerprint", "--no-cache", str(project)]) == 0
    digest = capsys.readouterr().out.strip()
    assert not (project / "dist").exists()
    assert warm(project) == digest
    before = cache_file(project).read_bytes(), cache_file(project).stat().st_mtime_ns
    write(project, "src/demo/a.py", "A = 3\n")
    settle()
    assert launch.main(["fingerprint", "--no-cache", str(project)]) == 0
    assert capsys.readouterr().out.strip() != digest
    after = cache_file(project).read_bytes(), cache_file(project).stat().st_mtime_ns
    assert after == before
    assert answer(project) is None


@pytest.mark.usefixtures("no_leftover_children")
def test_refusals_leave_no_child_processes(project: Path) -> None:
    """The git processes the quick path starts are reaped on every way out."""
    assert answer(project) is None  # no cache: git was started, then killed
    warm(project)
    assert answer(project) is not None
    write(project, "src/demo/a.py", "A = 4\n")
    assert answer(project) is None  # refused while git was still listing
    assert answer(project / "nowhere") is None


# --- names that are not UTF-8 ------------------------------------------------------------------


def test_non_utf8_name_makes_no_answer(project: Path) -> None:
    """Such a file has no stat record (the cache is UTF-8), so no answer is ever recorded:
    an edit to it can never be answered with a stale digest."""
    path = write(project, NON_UTF8_NAME, "x = 1\n")
    before = scratch(project)
    refresh(project)
    refresh(project)
    assert answer(project) is None
    write(project, NON_UTF8_NAME, "x = 2\n")
    now = sound(project)
    assert now != before
    assert answer(project) is None
    same_size_edit(path)
    assert sound(project) != now
    assert answer(project) is None


def test_tracked_non_utf8_name_makes_no_answer(project: Path) -> None:
    path = write(project, NON_UTF8_NAME, "x = 1\n")
    commit_all(project, "non-UTF-8 name")
    before = sound(project)
    refresh(project)
    refresh(project)
    assert answer(project) is None
    same_size_edit(path)
    assert sound(project) != before
    assert answer(project) is None


def test_excluded_non_utf8_name_allows_the_answer(tmp_path: Path) -> None:
    """A file that is not an input needs no record: the answer is recorded, and stays right
    when that file changes (the digest does not)."""
    pyproject = STATIC + "\n[tool.freshinstall]\nexclude = ['caf*']\n"
    root = make_project(tmp_path / "project", {**FILES, "pyproject.toml": pyproject})
    write(root, NON_UTF8_NAME, "x = 1\n")
    digest = warm(root)
    write(root, NON_UTF8_NAME, "x = 22\n")
    assert answering(root) == digest


# --- the forked check of large trees ------------------------------------------------------------


@pytest.fixture
def forking(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every tree "large" and allow the fork (pytest has threads, but the child only
    calls lstat and os._exit); the pids of the children forked since (spied, not faked)."""
    monkeypatch.setattr(quick, "can_fork", lambda: True)
    monkeypatch.setattr(quick, "FORK_MIN_FILES", 1)
    forked: list[int] = []
    real = os.fork

    def spy() -> int:
        pid = real()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", spy)
    return forked


def halves(root: Path) -> tuple[list[str], list[str]]:
    """The paths the parent and the child check, in the order of the cache file."""
    cache = quick.read_cache(os.fspath(root / "dist"))
    assert cache is not None
    parts = cache[0]
    half = len(parts) // 4 * 2
    return parts[:half:2], parts[half::2]


@pytest.mark.usefixtures("no_leftover_children")
def test_forked_check_answers_an_unchanged_tree(project: Path, forking: list[int]) -> None:
    """In two processes the unchanged tree still gets exactly the from-scratch digest."""
    digest = warm(project)
    parent, child = halves(project)
    assert parent
    assert child
    forking.clear()
    assert answer(project) == digest
    assert len(forking) == 1  # the child checked its half


@pytest.mark.usefixtures("no_leftover_children")
@pytest.mark.parametrize("half", ["parent", "child"])
@pytest.mark.parametrize("how", ["same-size edit", "delete"])
def test_forked_check_refuses_a_change_in_either_half(
    project: Path, forking: list[int], half: str, how: str
) -> None:
    """A change in the half the child checks is refused as surely as one in the parent's."""
    digest = warm(project)
    parent, child = halves(project)
    # A file of that half with bytes to change (each half has four files; at most three of
    # them are pyproject.toml, the empty __init__.py and the symlink).
    files = parent if half == "parent" else child
    editable = [
        path
        for path in files
        if path != "pyproject.toml"
        and not (project / path).is_symlink()
        and (project / path).stat().st_size
    ]
    target = project / editable[0]
    if how == "delete":
        target.unlink()
    else:
        same_size_edit(target)
    now = scratch(project)
    assert now != digest
    forking.clear()
    assert answer(project) is None
    assert len(forking) == 1
    refresh(project)
    if how == "delete" and git(project, "ls-files", target.relative_to(project).as_posix()):
        assert answer(project) is None  # a deleted tracked file: never vouched for
    else:
        assert answer(project) == now


# --- the property, over random sequences of operations -----------------------------------------

NAMES = ("src/demo/a.py", "src/demo/b.py", "src/demo/new.py", "notes.txt", "x.log")
OPERATIONS = (
    "edit",
    "same-size",
    "delete",
    "chmod",
    "git-add",
    "commit",
    "settle",
    "full",
    "cli",
)


def _apply(root: Path, action: str, name: str, content: bytes) -> None:
    path = root / name
    if action == "edit":
        write(root, name, content)
    elif action == "same-size" and path.exists() and path.stat().st_size:
        same_size_edit(path)
    elif action == "delete":
        path.unlink(missing_ok=True)
    elif action == "chmod" and path.exists():
        path.chmod(path.stat().st_mode ^ 0o100)
    elif action == "git-add" and not name.endswith(".log"):
        if path.exists() or git(root, "ls-files", "--", name):
            git(root, "add", "-A", "--", name)
    elif action == "commit":
        git(root, "commit", "-q", "--allow-empty", "-m", "step")
    elif action == "settle":
        settle()
    elif action == "full":
        full(root)
    elif action == "cli":
        assert launch.fingerprint_text(root, no_cache=False, as_json=False) == scratch(root)


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(OPERATIONS),
            st.sampled_from(NAMES),
            st.binary(min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_quick_is_always_none_or_the_from_scratch_digest(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, str, bytes]]
) -> None:
    """After every step of a random history the quick answer is None or the true digest;
    at the end, a settled full run makes it answer (unless a tracked file is missing)."""
    root = make_project(tmp_path_factory.mktemp("prop"), untracked={"notes.txt": "n\n"})
    warm(root)
    for action, name, content in ops:
        _apply(root, action, name, content)
        sound(root)
    refresh(root)
    full(root)
    tracked = git(root, "ls-files", "-z").split("\0")
    if all(os.path.lexists(root / path) for path in tracked if path):
        answering(root)
    else:
        assert answer(root) is None
