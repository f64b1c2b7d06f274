"""``freshinstall clean``: removes what it can prove is a build artefact, and nothing else.

Most stories set the artefacts up by hand (a stamp, wheels, build/, egg-info) and run the real
command; one builds and installs for real, twice, and lets uv and setuptools litter the tree.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from freshinstall import stamp
from tests.conftest import MakeProject
from tests.helpers import Result, commit_all, freshinstall, git, uv

WHEEL = "stcli-1.0.0-py3-none-any.whl"
OLD_WHEEL = "stcli-0.9.0-py3-none-any.whl"
SETUPTOOLS_EGG_INFO = {
    "PKG-INFO": "Metadata-Version: 2.4\nName: stcli\nVersion: 1.0.0\n",
    "SOURCES.txt": "pyproject.toml\nsrc/stcli/cli.py\n",
    "top_level.txt": "stcli\n",
    "dependency_links.txt": "\n",
    "entry_points.txt": "[console_scripts]\nstcli = stcli.cli:main\n",
}


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def stamp_wheels(project: Path, current: bytes, *earlier: tuple[str, bytes]) -> None:
    """Put freshinstall's wheel (and earlier ones it wrote) in dist/, with their stamp."""
    dist = project / "dist"
    write(dist / WHEEL, current)
    for name, data in earlier:
        write(dist / name, data)
    stamp.write(
        dist,
        stamp.Stamp(
            fingerprint="0" * 64,
            project="stcli",
            version="1.0.0",
            wheel=WHEEL,
            wheel_sha256=hashlib.sha256(current).hexdigest(),
            wheels=tuple((name, hashlib.sha256(data).hexdigest()) for name, data in earlier),
        ),
    )
    write(dist / stamp.LOCKNAME, b"")


def setuptools_litter(project: Path) -> None:
    """What an in-tree setuptools build leaves: build/lib, build/bdist.*, src/NAME.egg-info."""
    write(project / "build/lib/stcli/cli.py", "print('old')\n")
    write(project / "build/lib/stcli/ghost.py", "")
    (project / "build/bdist.linux-x86_64").mkdir()
    for name, text in SETUPTOOLS_EGG_INFO.items():
        write(project / "src/stcli.egg-info" / name, text)


def clean(project: Path, *args: str) -> Result:
    result = freshinstall("clean", *args, project)
    assert result.code == 0, result
    assert "Traceback" not in result.stderr
    return result


def listed(result: Result, project: Path) -> set[str]:
    return {Path(line).relative_to(project).as_posix() for line in result.stdout.splitlines()}


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git/" not in path.relative_to(root).as_posix() + "/"
    }


ARTEFACTS = {
    f"dist/{WHEEL}",
    f"dist/{OLD_WHEEL}",
    "dist/.freshinstall.json",
    "build",
    "src/stcli.egg-info",
}


def test_dry_run_lists_the_artefacts_and_removes_nothing(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    stamp_wheels(project, b"wheel 1.0", (OLD_WHEEL, b"wheel 0.9"))
    setuptools_litter(project)
    before = tree(project)

    result = clean(project, "--dry-run")
    assert listed(result, project) == ARTEFACTS
    assert result.stderr.splitlines()[-1] == "would remove 5 paths"
    assert tree(project) == before


def test_removes_the_provable_artefacts_and_keeps_everything_else(
    make_project: MakeProject,
) -> None:
    project = make_project("setuptools_cli", in_git=True)
    stamp_wheels(project, b"wheel 1.0", (OLD_WHEEL, b"wheel 0.9"))
    setuptools_litter(project)
    foreign = {
        "dist/stcli-0.8.0-py3-none-any.whl": b"a wheel the user built",  # never stamped
        "dist/other-2.0-py3-none-any.whl": b"another project's wheel",
        "dist/stcli-1.0.0.tar.gz": b"an sdist",
        "dist/NOTES.txt": b"notes",
    }
    for name, data in foreign.items():
        write(project / name, data)
    source = tree(project)
    for path in list(source):
        if path.startswith(("dist/", "build/", "src/stcli.egg-info/")):
            del source[path]

    result = clean(project, "-v")
    assert listed(result, project) == ARTEFACTS
    assert result.stderr.splitlines()[-1] == "removed 5 paths"
    after = tree(project)
    assert after == {**source, **foreign, f"dist/{stamp.LOCKNAME}": b""}
    assert (project / "dist").is_dir()
    assert f"kept {project}/dist/NOTES.txt: not written by freshinstall" in result.stderr

    second = clean(project)
    assert second.stdout == ""
    assert second.stderr.splitlines()[-1] == "nothing to clean"


def test_a_wheel_changed_after_the_build_is_not_ours_any_more(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    stamp_wheels(project, b"wheel 1.0", (OLD_WHEEL, b"wheel 0.9"))
    write(project / "dist" / WHEEL, b"rebuilt by the user")
    write(project / "dist" / OLD_WHEEL, b"copied from somewhere")
    clean(project)
    assert (project / "dist" / WHEEL).read_bytes() == b"rebuilt by the user"
    assert (project / "dist" / OLD_WHEEL).read_bytes() == b"copied from somewhere"
    assert not (project / "dist/.freshinstall.json").exists()


def test_a_symlinked_wheel_is_kept(make_project: MakeProject, tmp_path: Path) -> None:
    project = make_project("setuptools_cli")
    stamp_wheels(project, b"wheel 1.0")
    elsewhere = write(tmp_path / "elsewhere.whl", b"wheel 1.0")
    (project / "dist" / WHEEL).unlink()
    (project / "dist" / WHEEL).symlink_to(elsewhere)
    clean(project)
    assert (project / "dist" / WHEEL).is_symlink()
    assert elsewhere.read_bytes() == b"wheel 1.0"


def test_tracked_files_are_never_removed(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    stamp_wheels(project, b"wheel 1.0")
    setuptools_litter(project)
    git(project, "init", "-q")
    # Everything looks like an artefact, but all of it is committed.
    git(project, "add", "-f", "dist", "build", "src")
    commit_all(project, "commit the artefacts")
    before = tree(project)

    result = clean(project, "-v")
    assert result.stdout == ""
    assert tree(project) == before
    assert f"kept {project}/build: tracked by git" in result.stderr
    assert f"kept {project}/dist/{WHEEL}: tracked by git" in result.stderr


def test_a_single_tracked_file_keeps_build(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli", in_git=True)
    setuptools_litter(project)
    git(project, "add", "build/lib/stcli/ghost.py")
    git(project, "commit", "-q", "-m", "track one file under build/")
    assert listed(clean(project, "--dry-run"), project) == {"src/stcli.egg-info"}


def test_a_build_package_is_never_removed(make_project: MakeProject) -> None:
    project = make_project("flat_build")  # build/__init__.py: a package called build
    (project / "build/lib").mkdir()
    before = tree(project)
    result = clean(project, "-v")
    assert result.stdout == ""
    assert tree(project) == before
    assert (project / "build/lib").is_dir()
    assert "which setuptools does not write" in result.stderr


@pytest.mark.parametrize(
    ("where", "content"),
    [
        ("build/lib/x.py", None),  # fine alone ...
        ("build/KEEP.txt", "mine"),  # ... but not with a file setuptools never writes
        ("build/data", "not a directory"),
    ],
)
def test_build_is_removed_only_when_it_is_setuptools_output(
    make_project: MakeProject, where: str, content: str | None
) -> None:
    project = make_project("setuptools_cli")
    write(project / "build/lib/x.py", "")
    if content is not None:
        write(project / where, content)
    expected = {"build"} if content is None else set()
    assert listed(clean(project, "--dry-run"), project) == expected


@pytest.mark.parametrize(
    ("change", "removed"),
    [
        ({}, True),
        ({"requires.txt": "click\n", "not-zip-safe": "\n"}, True),
        ({"notes.md": "mine"}, False),  # a file egg_info never writes
        ({"PKG-INFO": "Metadata-Version: 2.4\nName: other\n"}, False),  # another project
    ],
)
def test_egg_info_is_removed_only_when_it_is_ours(
    make_project: MakeProject, change: dict[str, str], removed: bool
) -> None:
    project = make_project("setuptools_cli")
    for name, text in {**SETUPTOOLS_EGG_INFO, **change}.items():
        write(project / "src/stcli.egg-info" / name, text)
    write(project / "other.egg-info/PKG-INFO", "Metadata-Version: 2.4\nName: other\n")
    expected = {"src/stcli.egg-info"} if removed else set()
    assert listed(clean(project, "--dry-run"), project) == expected


def test_not_a_project_is_an_error(tmp_path: Path) -> None:
    result = freshinstall("clean", tmp_path)
    assert result.code == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.splitlines()) == 1


def test_stamps_without_a_wheel_history_still_parse(tmp_path: Path) -> None:
    old = stamp.Stamp("0" * 64, "stcli", "1.0.0", WHEEL, "1" * 64)
    stamp.write(tmp_path, old)
    data = json.loads((tmp_path / stamp.FILENAME).read_text())
    del data["wheels"]
    (tmp_path / stamp.FILENAME).write_text(json.dumps(data))
    assert stamp.read(tmp_path) == old


def test_the_stamp_remembers_the_wheels_freshinstall_replaced(tmp_path: Path) -> None:
    write(tmp_path / WHEEL, b"1.0")
    write(tmp_path / OLD_WHEEL, b"0.9")
    previous = stamp.Stamp("0" * 64, "stcli", "0.9.0", OLD_WHEEL, "9" * 64, wheels=((WHEEL, "a"),))
    # The wheel being replaced by a new one of the same name is not an "earlier" wheel.
    assert stamp.earlier_wheels(previous, tmp_path, WHEEL) == ((OLD_WHEEL, "9" * 64),)
    (tmp_path / OLD_WHEEL).unlink()
    assert stamp.earlier_wheels(previous, tmp_path, "stcli-1.1.0-py3-none-any.whl") == (
        (WHEEL, "a"),
    )
    stamped = stamp.Stamp("0" * 64, "stcli", "1.0.0", WHEEL, "1" * 64, wheels=((OLD_WHEEL, "b"),))
    stamp.write(tmp_path, stamped)
    assert stamp.read(tmp_path) == stamped
    bad = (tmp_path / stamp.FILENAME).read_text().replace(OLD_WHEEL, "../evil.whl")
    (tmp_path / stamp.FILENAME).write_text(bad)
    with pytest.raises(stamp.StampInvalidError):
        stamp.read(tmp_path)


@pytest.mark.slow
def test_after_real_builds_clean_removes_both_wheels_and_the_setuptools_litter(
    make_project: MakeProject,
) -> None:
    project = make_project("setuptools_cli", in_git=True)
    assert freshinstall(project).code == 0
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "1.0.0"', 'version = "1.1.0"'))
    git(project, "commit", "-q", "-am", "1.1.0")
    assert freshinstall(project).code == 0
    uv("tool", "install", "--force", ".", cwd=project)  # setuptools builds in the tree
    assert (project / "build/lib/stcli/cli.py").is_file()
    write(project / "dist/stcli-0.1.0-py3-none-any.whl", b"the user's")

    expected = {
        "dist/stcli-1.0.0-py3-none-any.whl",
        "dist/stcli-1.1.0-py3-none-any.whl",
        "dist/.freshinstall.json",
        "build",
        "src/stcli.egg-info",
    }
    dry = listed(clean(project, "--dry-run"), project)
    assert expected <= dry
    assert dry - expected <= {"dist/.freshinstall-manifest.json", "dist/.freshinstall-cache"}
    assert listed(clean(project), project) == dry
    assert sorted(os.listdir(project / "dist")) == [
        stamp.LOCKNAME,
        "stcli-0.1.0-py3-none-any.whl",
    ]
    assert git(project, "status", "--porcelain") == "?? dist/\n"
    assert freshinstall(project).code == 0  # and the next run simply builds again
