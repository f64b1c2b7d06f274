"""freshinstall status: up to date (0) or stale (1) and exactly why, 2 on error; it never builds
or installs. The stale states are made for real: edited trees, tampered wheels, tools removed or
replaced behind freshinstall's back, new commits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from freshinstall import fingerprint, stamp
from freshinstall.status import source_changes
from tests.conftest import MakeProject
from tests.helpers import Sandbox, commit_all, freshinstall, git, uv

slow = pytest.mark.slow


def status(project: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = freshinstall("status", "--json", *args, project)
    assert result.code in {0, 1}, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["fresh"] is (result.code == 0)
    return result.code, data


def reasons(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {reason["code"]: reason for reason in data["reasons"]}


def install(project: Path, *args: str) -> None:
    result = freshinstall(*args, project)
    assert result.code == 0, result.stderr


def untouched(project: Path, sandbox: Sandbox) -> dict[str, int]:
    """mtimes of everything a build or an install would rewrite (not the stat cache)."""
    dist = project / "dist"
    places = [*dist.glob("*.whl"), dist / stamp.FILENAME, dist / stamp.MANIFEST]
    places += sandbox.tools.rglob("RECORD")
    return {str(path): path.stat().st_mtime_ns for path in places}


@slow
def test_each_changed_file_is_named_and_nothing_is_built(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli")
    install(project)
    code, data = status(project)
    assert (code, data["reasons"], data["installer"]) == (0, [], "uv-tool")
    fresh = freshinstall("status", project)
    assert (fresh.code, fresh.stdout.strip()) == (
        0,
        f"stcli 1.0.0 is up to date (uv-tool in {sandbox.tools})",
    )
    before = untouched(project, sandbox)

    (project / "src/stcli/commands/hello.py").unlink()
    (project / "src/stcli/commands/bye.py").write_text("def run() -> str:\n    return 'bye'\n")
    (project / "src/stcli/utils.py").write_text(
        "def shout(text: str) -> str:\n    return text.upper()\n"
    )
    code, data = status(project)
    assert code == 1
    found = reasons(data)
    assert found.keys() == {"files-added", "files-removed", "files-changed"}
    assert found["files-removed"]["paths"] == ["src/stcli/commands/hello.py"]
    assert found["files-added"]["paths"] == ["src/stcli/commands/bye.py"]
    assert found["files-changed"]["paths"] == ["src/stcli/utils.py"]
    assert (data["build"], data["install"]) == (True, True)
    assert data["installed_fingerprint"] != data["fingerprint"]
    text = freshinstall("status", project)
    assert text.code == 1
    assert "  removed  src/stcli/commands/hello.py" in text.stdout.splitlines()
    assert "  added    src/stcli/commands/bye.py" in text.stdout.splitlines()
    assert "  changed  src/stcli/utils.py" in text.stdout.splitlines()
    assert untouched(project, sandbox) == before, "status must never build or install"
    assert not (project / "build").exists()

    install(project)
    assert status(project)[0] == 0
    # Without the manifest of the installed build, status still knows, but not file by file.
    (project / "dist" / stamp.MANIFEST).unlink()
    (project / "src/stcli/utils.py").write_text("def shout(text: str) -> str:\n    return text\n")
    code, data = status(project)
    assert (code, list(reasons(data))) == (1, ["source-changed"])


@slow
def test_wheel_and_install_changed_behind_our_back(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli")
    install(project)

    code, data = status(project, "--with", "six")
    assert code == 1
    assert reasons(data)["install-changed"]["message"] == "the install options changed"

    wheel = next((project / "dist").glob("*.whl"))
    original = wheel.read_bytes()
    wheel.write_bytes(original + b"\0")
    code, data = status(project)
    assert (code, data["build"]) == (1, True)
    assert reasons(data)["wheel-changed"]["message"] == f"dist/{wheel.name} changed after the build"
    wheel.write_bytes(original)
    assert status(project)[0] == 0

    uv("tool", "uninstall", "stcli")
    code, data = status(project)
    assert (code, data["build"], data["install"]) == (1, False, True)
    assert reasons(data)["install-changed"]["message"] == "the installed copy was removed"
    assert "would install it" in freshinstall("status", project).stdout

    # A plain install over ours (another build, another RECORD) is noticed too.
    install(project)
    uv("tool", "install", "--force", ".", cwd=project)
    code, data = status(project)
    assert code == 1
    message = reasons(data)["install-changed"]["message"]
    assert message == "the installed copy was changed by another install"
    install(project)
    assert status(project)[0] == 0


@slow
def test_new_commit_and_backend_variable_are_named(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project("scm_cli", in_git=True)
    git(project, "tag", "v1.2.3")
    install(project)
    assert status(project)[0] == 0
    commit_all(project, "an empty commit")
    monkeypatch.setenv("SETUPTOOLS_SCM_PRETEND_VERSION", "9.0.0")
    code, data = status(project)
    assert code == 1
    found = reasons(data)
    assert found.keys() == {"vcs-changed", "env-changed"}
    assert found["vcs-changed"]["message"].startswith(
        "the version-control state changed (v1.2.3-0-g"
    )
    assert (
        found["env-changed"]["message"]
        == "SETUPTOOLS_SCM_PRETEND_VERSION changed (unset -> '9.0.0')"
    )


def test_never_built_and_invalid_stamp_are_stale(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    code, data = status(project)
    assert code == 1
    (reason,) = data["reasons"]
    assert reason["code"] == "never-built"
    assert reason["message"].startswith("never built by freshinstall; `freshinstall doctor` checks")
    (project / "dist").mkdir()
    (project / "dist" / stamp.FILENAME).write_text("{not json")
    code, data = status(project)
    assert code == 1
    assert "the stamp is not valid" in reasons(data)["never-built"]["message"]
    assert not (project / "build").exists()


def test_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    for args in ((), ("--json",)):
        result = freshinstall("status", *args, tmp_path / "nowhere")
        assert result.code == 2
        assert result.stdout == ""
        assert result.stderr.splitlines() == [f"error: {tmp_path / 'nowhere'}: no such directory"]


def entry(path: str, content: str) -> fingerprint.FileEntry:
    return fingerprint.FileEntry(path, "f", content)


def test_source_changes_compares_files_and_other_inputs() -> None:
    before = fingerprint.combine(
        [entry("a.py", "1"), entry("b.py", "2")], {"vcs": "v1-0-gabc\n", "env:PBR_VERSION": "1"}
    )
    after = fingerprint.combine(
        [entry("a.py", "1"), entry("b.py", "3"), entry("c.py", "4")],
        {"vcs": "v1-0-gabc\n M a.py", "config-settings": "{}"},
    )
    manifest = stamp.Manifest(
        before.digest, {e.path: f"{e.kind}:{e.digest}" for e in before.files}, dict(before.extras)
    )
    found = {r.code: r for r in source_changes(manifest, before.digest, after)}
    assert found["files-added"].paths == ("c.py",)
    assert found["files-changed"].paths == ("b.py",)
    assert "files-removed" not in found
    assert found["vcs-changed"].message.endswith("(uncommitted changes to tracked files)")
    assert found["env-changed"].message == "PBR_VERSION changed ('1' -> unset)"
    assert found["input-changed"].message == "the build input config-settings changed"
    # A manifest of another build than the installed one explains nothing file by file.
    assert [r.code for r in source_changes(manifest, "other", after)] == ["source-changed"]
    same = source_changes(manifest, before.digest, before)
    assert [r.message for r in same] == ["the fingerprint scheme changed (a new release)"]
