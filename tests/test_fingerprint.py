"""Which files count and how they are hashed: small trees, in git and as plain directories."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freshinstall import fingerprint, inputs
from freshinstall.errors import FingerprintError
from tests import helpers
from tests.helpers import commit_all, git

BASE = {
    "pyproject.toml": "[project]\nname = 'demo'\nversion = '1.0'\n",
    "src/demo/__init__.py": "",
    "src/demo/cli.py": "print('hello')\n",
}
NON_UTF8_NAME = os.fsdecode(b"caf\xe9.py")

Change = Callable[[Path], object]


def write(
    root: Path, relpath: str, content: str | bytes = "x\n", *, executable: bool = False
) -> Path:
    path = helpers.write(root, relpath, content)
    if executable:
        path.chmod(0o755)
    return path


def make_tree(root: Path, files: Mapping[str, str | bytes] = BASE, *, in_git: bool) -> Path:
    """Write ``files`` under ``root``; in git, commit them so they are tracked."""
    root.mkdir(parents=True, exist_ok=True)
    for relpath, content in files.items():
        write(root, relpath, content)
    if in_git:
        git(root, "init", "-q")
        commit_all(root, "initial")
    return root


def digest(root: Path) -> str:
    return fingerprint.compute(root).digest


def entry(root: Path, relpath: str) -> fingerprint.FileEntry:
    (found,) = (item for item in fingerprint.compute(root).files if item.path == relpath)
    return found


@pytest.fixture(params=[False, True], ids=["plain", "git"])
def in_git(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def tree(tmp_path: Path, in_git: bool) -> Path:
    return make_tree(tmp_path / "project", in_git=in_git)


# --- what changes the digest -------------------------------------------------------------------


def _rename(root: Path) -> None:
    (root / "src/demo/cli.py").rename(root / "src/demo/main.py")


def _move(root: Path) -> None:
    (root / "src/demo/cli.py").rename(root / "src/cli.py")


def _chmod_x(root: Path) -> None:
    (root / "src/demo/cli.py").chmod(0o755)


CHANGES: dict[str, Change] = {
    "add": lambda root: write(root, "src/demo/new.py", "x = 1\n"),
    "add-empty": lambda root: write(root, "src/demo/empty.py", ""),
    "delete": lambda root: (root / "src/demo/cli.py").unlink(),
    "rename": _rename,
    "move": _move,
    "edit": lambda root: write(root, "src/demo/cli.py", "print('bye')\n"),
    "truncate": lambda root: write(root, "src/demo/cli.py", ""),
    "chmod+x": _chmod_x,
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_each_kind_of_change_changes_the_digest(tree: Path, change: Change) -> None:
    before = digest(tree)
    change(tree)
    assert digest(tree) != before


def test_digest_is_stable_run_after_run(tree: Path) -> None:
    assert len({digest(tree) for _ in range(3)}) == 1


def test_touching_does_not_change_the_digest(tree: Path) -> None:
    before = digest(tree)
    for path in tree.rglob("*.py"):
        os.utime(path, (1, 1))
    os.utime(tree / "pyproject.toml")
    assert digest(tree) == before


def test_reverting_an_edit_restores_the_digest(tree: Path) -> None:
    before = digest(tree)
    write(tree, "src/demo/cli.py", "print('bye')\n")
    changed = digest(tree)
    write(tree, "src/demo/cli.py", BASE["src/demo/cli.py"])
    assert changed != before
    assert digest(tree) == before


def test_reverting_the_executable_bit_restores_the_digest(tree: Path) -> None:
    before = digest(tree)
    path = tree / "src/demo/cli.py"
    path.chmod(0o755)
    assert entry(tree, "src/demo/cli.py").kind == "x"
    assert digest(tree) != before
    path.chmod(0o644)
    assert digest(tree) == before


def test_same_size_edit_with_restored_mtime_is_seen(tree: Path) -> None:
    path = tree / "src/demo/cli.py"
    old = path.stat()
    before = digest(tree)
    path.write_text("print('HELLO')\n", encoding="utf-8")
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    new = path.stat()
    assert (new.st_size, new.st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    assert digest(tree) != before


def test_committing_does_not_change_the_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "project", in_git=True)
    write(root, "src/demo/new.py", "x = 1\n")
    before = digest(root)
    git(root, "add", "src/demo/new.py")
    staged = digest(root)
    commit_all(root)
    assert before == staged == digest(root)


def test_extras_are_part_of_the_digest(tree: Path) -> None:
    plain = fingerprint.compute(tree)
    with_extra = fingerprint.compute(tree, {"SOURCE_DATE_EPOCH": "1"})
    other_extra = fingerprint.compute(tree, {"SOURCE_DATE_EPOCH": "2"})
    assert len({plain.digest, with_extra.digest, other_extra.digest}) == 3
    assert with_extra.files == plain.files


def test_combine_does_not_depend_on_entry_order(tree: Path) -> None:
    files = fingerprint.compute(tree).files
    assert fingerprint.combine(reversed(files)).digest == fingerprint.combine(files).digest


# --- what counts -------------------------------------------------------------------------------


def test_gitignored_files_do_not_count(tmp_path: Path, in_git: bool) -> None:
    root = make_tree(
        tmp_path / "project", {**BASE, ".gitignore": "*.log\nsecret/\n"}, in_git=in_git
    )
    before = fingerprint.list_inputs(root), digest(root)
    write(root, "debug.log")
    write(root, "src/demo/trace.log")
    write(root, "secret/key.py")
    assert (fingerprint.list_inputs(root), digest(root)) == before
    write(root, "src/demo/seen.py")
    assert "src/demo/seen.py" in fingerprint.list_inputs(root)


def test_a_git_warning_does_not_mix_into_the_listing(tmp_path: Path) -> None:
    # A tracked .gitignore replaced by a dangling symlink makes git warn on stderr while it
    # lists; the warning must not be read as (part of) a file name.
    root = make_tree(tmp_path / "project", {**BASE, ".gitignore": "*.log\n"}, in_git=True)
    (root / ".gitignore").unlink()
    (root / ".gitignore").symlink_to("nowhere")
    write(root, "0first.py")  # sorts first: the warning used to be glued to its record
    inputs = fingerprint.list_inputs(root)
    assert "0first.py" in inputs
    assert not [path for path in inputs if "warning" in path]


@pytest.mark.parametrize(
    "variable",
    ["GIT_LITERAL_PATHSPECS", "GIT_GLOB_PATHSPECS", "GIT_NOGLOB_PATHSPECS", "GIT_ICASE_PATHSPECS"],
)
def test_pathspec_variables_do_not_change_the_listing(
    tmp_path: Path, in_git: bool, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `git --literal-pathspecs` exports GIT_LITERAL_PATHSPECS=1 to hooks; it would make the
    # listing's ":(exclude)dist" a file name and the listing empty.
    root = make_tree(tmp_path / "project", {**BASE, "Dist/d.py": "d\n"}, in_git=in_git)
    expected = fingerprint.list_inputs(root)
    assert "Dist/d.py" in expected
    monkeypatch.setenv(variable, "1")
    assert fingerprint.list_inputs(root) == expected


def test_a_failed_listing_names_the_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A git that fails once, silently, then works: the message must not be the listing of the
    # second run (made only to word the error).
    root = make_tree(tmp_path / "project", in_git=True)
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    real = shutil.which("git")
    assert real is not None
    marker = tmp_path / "failed-once"
    (fake / "git").write_text(
        f'#!/bin/sh\nif [ ! -e "{marker}" ]; then : > "{marker}"; exit 128; fi\n'
        f'exec "{real}" "$@"\n',
        encoding="utf-8",
    )
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(FingerprintError) as raised:
        fingerprint.list_inputs(root)
    assert str(raised.value).endswith(": git ls-files exited with status 128")


def test_nested_gitignore_and_negations_apply(tmp_path: Path, in_git: bool) -> None:
    files: dict[str, str | bytes] = {
        **BASE,
        ".gitignore": "*.dat\nbuild/\n!src/build/\n",
        "src/.gitignore": "*.tmp\n!keep.tmp\n",
    }
    root = make_tree(tmp_path / "project", files, in_git=in_git)
    for relpath in ("src/a.dat", "src/x.tmp", "src/demo/y.tmp", "src/keep.tmp", "src/build/m.py"):
        write(root, relpath)
    inputs = fingerprint.list_inputs(root)
    assert "src/keep.tmp" in inputs
    assert "src/build/m.py" in inputs
    assert not {"src/a.dat", "src/x.tmp", "src/demo/y.tmp"} & set(inputs)
    before = digest(root)
    write(root, "src/keep.tmp", "changed\n")
    assert digest(root) != before


def test_tracked_file_counts_even_when_gitignored(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "project", {**BASE, ".gitignore": "*.cfg\n"}, in_git=True)
    write(root, "setup.cfg", "[metadata]\n")
    assert "setup.cfg" not in fingerprint.list_inputs(root)
    git(root, "add", "-f", "setup.cfg")
    assert "setup.cfg" in fingerprint.list_inputs(root)
    before = digest(root)
    write(root, "setup.cfg", "[metadata]\nname = demo\n")
    assert digest(root) != before


UNTRACKED_OUTPUTS = {
    "root-build": ("build/lib/demo/cli.py", "build/bdist.linux-x86_64/x"),
    "root-dist": ("dist/demo-1.0.tar.gz", "dist/demo-1.0-py3-none-any.whl"),
    "egg-info": ("src/demo.egg-info/SOURCES.txt", "demo.egg-info/PKG-INFO"),
    "pycache": ("src/demo/__pycache__/cli.cpython-311.pyc", "__pycache__/x.py"),
    "pyc": ("src/demo/stray.pyc", "src/demo/stray.pyo"),
    "tox": (".tox/py311/lib/x.py",),
    "nox": (".nox/tests/bin/python",),
    "mypy": (".mypy_cache/3.11/demo.json",),
    "pytest": (".pytest_cache/v/cache/lastfailed",),
    "ruff": (".ruff_cache/0.5/x",),
    "venv": ("env/pyvenv.cfg", "env/lib/python3.11/site-packages/x.py", "env/bin/python"),
    "nested-venv": ("tools/.venv/pyvenv.cfg", "tools/.venv/lib/site.py"),
}


@pytest.mark.parametrize("paths", UNTRACKED_OUTPUTS.values(), ids=UNTRACKED_OUTPUTS.keys())
def test_untracked_build_outputs_do_not_count(tree: Path, paths: tuple[str, ...]) -> None:
    before = fingerprint.list_inputs(tree), digest(tree)
    for relpath in paths:
        write(tree, relpath, "output\n")
    assert (fingerprint.list_inputs(tree), digest(tree)) == before


def test_a_dist_symlink_does_not_count(tree: Path, tmp_path: Path) -> None:
    """A root `dist` linked to another disk is still freshinstall's output, never an input."""
    before = fingerprint.list_inputs(tree), digest(tree)
    elsewhere = tmp_path / "roomy-disk" / "dist"
    elsewhere.mkdir(parents=True)
    (tree / "dist").symlink_to(elsewhere)
    write(elsewhere, "demo-1.0-py3-none-any.whl", "wheel\n")
    assert (fingerprint.list_inputs(tree), digest(tree)) == before


@pytest.mark.parametrize(
    "relpath", ["src/build/x.py", "src/dist/y.py", "pkg/build/lib/z.py", "builder/a.py"]
)
def test_build_and_dist_below_the_root_are_source(tree: Path, relpath: str) -> None:
    before = digest(tree)
    write(tree, relpath)
    assert relpath in fingerprint.list_inputs(tree)
    assert digest(tree) != before


def test_root_build_package_counts(tree: Path) -> None:
    write(tree, "build/__init__.py", "")
    write(tree, "build/main.py", "print(1)\n")
    assert {"build/__init__.py", "build/main.py"} <= set(fingerprint.list_inputs(tree))
    before = digest(tree)
    write(tree, "build/main.py", "print(2)\n")
    assert digest(tree) != before


def test_tracked_file_under_root_build_counts(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "project", {**BASE, "build/KEEP.txt": "keep\n"}, in_git=True)
    write(root, "build/lib/demo/cli.py", "stale\n")
    assert "build/KEEP.txt" in fingerprint.list_inputs(root)
    assert "build/lib/demo/cli.py" not in fingerprint.list_inputs(root)
    before = digest(root)
    write(root, "build/KEEP.txt", "changed\n")
    assert digest(root) != before


def test_unusual_file_names_count(tree: Path) -> None:
    names = ["café.py", "with space.py", "quo\"te'.py", "new\nline.py", "tab\t.py", "-dash.py"]
    for name in names:
        write(tree, f"src/demo/{name}", name)
    inputs = fingerprint.list_inputs(tree)
    assert {f"src/demo/{name}" for name in names} <= set(inputs)
    before = digest(tree)
    write(tree, "src/demo/new\nline.py", "changed")
    assert digest(tree) != before


def test_non_utf8_file_name_counts(tmp_path: Path, in_git: bool) -> None:
    root = make_tree(
        tmp_path / "project", {**BASE, f"src/demo/{NON_UTF8_NAME}": "x\n"}, in_git=in_git
    )
    before = digest(root)
    assert f"src/demo/{NON_UTF8_NAME}" in fingerprint.list_inputs(root)
    write(root, f"src/demo/{NON_UTF8_NAME}", "y\n")
    assert digest(root) != before


def test_fifo_is_skipped_without_blocking(tree: Path) -> None:
    before = digest(tree)
    os.mkfifo(tree / "src/demo/pipe")
    assert all(item.path != "src/demo/pipe" for item in fingerprint.compute(tree).files)
    assert digest(tree) == before


# --- symlinks ----------------------------------------------------------------------------------


def test_symlink_is_hashed_as_its_target_text(tree: Path) -> None:
    link = tree / "src/demo/alias.py"
    link.symlink_to("cli.py")
    found = entry(tree, "src/demo/alias.py")
    assert found.kind == "l"
    assert found.digest == hashlib.sha256(b"cli.py").hexdigest()
    before = digest(tree)
    link.unlink()
    link.symlink_to("__init__.py")
    assert digest(tree) != before


def test_symlink_and_copy_of_the_same_content_differ(tmp_path: Path) -> None:
    linked = make_tree(tmp_path / "a", {**BASE, "target": "cli.py"}, in_git=False)
    copied = make_tree(tmp_path / "b", {**BASE, "target": "cli.py"}, in_git=False)
    (linked / "link").symlink_to("target")
    write(copied, "link", "target")
    assert digest(linked) != digest(copied)


def _outside_file(outside: Path) -> str:
    return str(outside / "secret.txt")


def _outside_dir(outside: Path) -> str:
    return str(outside)


def _own_dir(outside: Path) -> str:
    return "."


@pytest.mark.parametrize(
    ("in_git", "target"),
    [
        pytest.param(False, _outside_file, id="plain-file"),
        pytest.param(True, _outside_file, id="git-file"),
        pytest.param(False, _outside_dir, id="plain-dir"),
        pytest.param(True, _outside_dir, id="git-dir"),
        pytest.param(False, _own_dir, id="plain-dot"),
        pytest.param(True, _own_dir, id="git-dot"),
    ],
)
def test_symlink_is_never_followed(
    tmp_path: Path, in_git: bool, target: Callable[[Path], str]
) -> None:
    outside = tmp_path / "outside"
    write(outside, "secret.txt", "one\n")
    root = tmp_path / "project"
    root.mkdir()
    (root / "link").symlink_to(target(outside))
    make_tree(root, in_git=in_git)
    assert fingerprint.list_inputs(root) == sorted([*BASE, "link"])
    assert entry(root, "link").kind == "l"
    before = digest(root)
    write(outside, "secret.txt", "two\n")
    write(outside, "more.txt", "three\n")
    assert digest(root) == before


def test_symlink_loops_and_dangling_links_do_not_crash(tree: Path) -> None:
    (tree / "a").symlink_to("b")
    (tree / "b").symlink_to("a")
    (tree / "self").symlink_to("self")
    (tree / "dangling").symlink_to("does/not/exist")
    kinds = {item.path: item.kind for item in fingerprint.compute(tree).files}
    assert {kinds[name] for name in ("a", "b", "self", "dangling")} == {"l"}


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_raises_fingerprint_error(tree: Path) -> None:
    path = tree / "src/demo/cli.py"
    path.chmod(0)
    try:
        with pytest.raises(FingerprintError, match=r"src/demo/cli\.py"):
            fingerprint.compute(tree)
    finally:
        path.chmod(0o644)


def test_read_error_is_translated_with_the_path(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refuse(file: str, flags: int, *args: Any, **kwargs: Any) -> int:
        if file.endswith("cli.py"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), file)
        return real_open(file, flags, *args, **kwargs)

    # Refuses at the system call the hashing makes: the way root can still see a denied read.
    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(FingerprintError, match=r"cannot read src/demo/cli\.py: Permission denied"):
        fingerprint.compute(tree)


# --- git and plain agree -----------------------------------------------------------------------


def test_git_tree_and_plain_copy_agree(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        **BASE,
        ".gitignore": "*.log\n",
        "src/.gitignore": "*.tmp\n!keep.tmp\n",
        "src/demo/data.bin": bytes(range(256)),
        "docs/index.md": "# demo\n",
    }
    in_git = make_tree(tmp_path / "git", files, in_git=True)
    # Left untracked, so that git's listing of untracked files is compared too.
    write(in_git, "scripts/run.sh", "#!/bin/sh\n", executable=True)
    (in_git / "src/demo/alias.py").symlink_to("cli.py")
    for relpath in ("src/new.py", "src/keep.tmp", "src/x.tmp", "a.log", "dist/old.whl"):
        write(in_git, relpath)
    write(in_git, "src/demo/__pycache__/cli.cpython-311.pyc", b"\0")
    plain = tmp_path / "plain"
    shutil.copytree(in_git, plain, symlinks=True, ignore=shutil.ignore_patterns(".git"))

    git_results = {(tuple(fingerprint.list_inputs(in_git)), digest(in_git)) for _ in range(3)}
    plain_results = {(tuple(fingerprint.list_inputs(plain)), digest(plain)) for _ in range(3)}
    assert len(git_results) == 1
    assert git_results == plain_results
    inputs = fingerprint.list_inputs(plain)
    assert "src/keep.tmp" in inputs
    assert "a.log" not in inputs
    assert fingerprint.compute(in_git).files == fingerprint.compute(plain).files


# --- snapshot ----------------------------------------------------------------------------------


def test_snapshot_copies_exactly_the_inputs(tree: Path, tmp_path: Path) -> None:
    write(tree, "scripts/run.sh", "#!/bin/sh\n", executable=True)
    (tree / "src/demo/alias.py").symlink_to("cli.py")
    write(tree, ".gitignore", "*.log\n")
    write(tree, "debug.log")
    write(tree, "build/lib/demo/cli.py", "stale\n")
    paths = fingerprint.list_inputs(tree)
    dest = tmp_path / "snapshot"

    result = fingerprint.snapshot(tree, paths, dest)

    assert result.digest == digest(tree)
    copied = sorted(
        os.path.relpath(os.path.join(directory, name), dest)
        for directory, dirnames, filenames in os.walk(dest)
        for name in [
            *filenames,
            *(d for d in dirnames if os.path.islink(os.path.join(directory, d))),
        ]
    )
    assert copied == paths
    for relpath in paths:
        source, copy = tree / relpath, dest / relpath
        if source.is_symlink():
            assert os.readlink(copy) == os.readlink(source)
        else:
            assert copy.read_bytes() == source.read_bytes()
    assert (dest / "src/demo/alias.py").is_symlink()
    assert os.stat(dest / "scripts/run.sh").st_mode & stat.S_IXUSR
    assert not os.stat(dest / "src/demo/cli.py").st_mode & stat.S_IXUSR
    assert digest(dest) == result.digest


def test_snapshot_skips_files_that_vanished(tree: Path, tmp_path: Path) -> None:
    paths = [*fingerprint.list_inputs(tree), "src/demo/gone.py"]
    result = fingerprint.snapshot(tree, paths, tmp_path / "snapshot")
    assert result.digest == digest(tree)
    assert not (tmp_path / "snapshot/src/demo/gone.py").exists()


# --- property: the digest changes exactly when the content map does --------------------------

NAMES = ("a.py", "b.txt", "pkg/c.py", "pkg/sub/d.py", "e")
ContentMap = dict[str, tuple[bytes, bool]]
Op = tuple[str, str, bytes]


def _apply(root: Path, state: ContentMap, op: Op) -> None:
    action, name, content = op
    path = root / name
    if action == "write":
        executable = state.get(name, (b"", False))[1]
        write(root, name, content, executable=executable)
        state[name] = (content, executable)
    elif name in state and action == "delete":
        path.unlink()
        del state[name]
    elif name in state and action == "chmod":
        data, executable = state[name]
        path.chmod(0o644 if executable else 0o755)
        state[name] = (data, not executable)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """One git work tree per test; each hypothesis example gets a fresh directory inside it."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    return root


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    initial=st.dictionaries(st.sampled_from(NAMES), st.binary(max_size=8)),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["write", "delete", "chmod"]),
            st.sampled_from(NAMES),
            st.binary(max_size=8),
        ),
        min_size=1,
        max_size=8,
    ),
    in_git=st.booleans(),
)
def test_digest_changes_iff_content_changes(
    repo: Path, initial: dict[str, bytes], ops: list[Op], in_git: bool
) -> None:
    with tempfile.TemporaryDirectory(dir=repo if in_git else None) as scratch:
        root = make_tree(Path(scratch), initial, in_git=False)
        if in_git:
            git(root, "add", "-A", ".")  # tracked, so that deleting a tracked file is covered
            assert fingerprint.find_git_dir(root) == repo
        state: ContentMap = {name: (content, False) for name, content in initial.items()}
        before_state, before = dict(state), digest(root)
        for op in ops:
            _apply(root, state, op)
        assert (digest(root) != before) == (state != before_state)


def test_links_out_of_the_project_are_listed_relative_ones_included(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "project", in_git=False)
    outside = tmp_path / "outside.py"
    outside.write_text("X = 1\n", encoding="utf-8")
    links = {
        "src/demo/absolute.py": str(outside),
        # As `ln -sr` writes it: enough `..` to climb to /, which resolves from a build copy too.
        "src/demo/climbing.py": "../" * len(outside.parents) + str(outside).lstrip("/"),
        "src/demo/sibling.py": "../../../outside.py",
        "src/demo/inside.py": "cli.py",
        "src/demo/up_and_in.py": "../../pyproject.toml",
    }
    for relpath, target in links.items():
        (root / relpath).symlink_to(target)
    files = fingerprint.compute(root).files
    found = inputs.links_out(root, files)
    assert {item.split(" -> ")[0] for item in found} == {
        "src/demo/absolute.py",
        "src/demo/climbing.py",
        "src/demo/sibling.py",
    }
