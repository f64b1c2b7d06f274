"""End-to-end stories with real builds, real uv and real backends, each in its own sandbox.

Each story first shows the problem without freshinstall where there is one, then that
freshinstall fixes it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeProject
from tests.helpers import Sandbox, commit_all, freshinstall, git, uv

pytestmark = pytest.mark.slow

STCLI_MODULES = "stcli.cli stcli.commands stcli.commands.hello stcli.utils"


def install_json(project: Path, *args: str) -> dict[str, Any]:
    result = freshinstall("--json", *args, project)
    assert result.code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def installed_files(sandbox: Sandbox, tool: str, package: str) -> set[str]:
    root = sandbox.tool_site_packages(tool) / package
    return {p.relative_to(root).as_posix() for p in root.rglob("*.py")}


def test_deleted_module_stays_with_plain_uv_but_not_with_freshinstall(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli")
    uv("tool", "install", "--force", ".", cwd=project)
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    (project / "src/stcli/commands/hello.py").unlink()

    # The problem: setuptools' build/lib still holds hello.py, so uv installs it again.
    uv("tool", "install", "--force", ".", cwd=project)
    assert "stcli.commands.hello" in sandbox.run_tool("stcli")
    assert (project / "build/lib/stcli/commands/hello.py").exists()

    # The fix.
    data = install_json(project)
    assert (data["rebuilt"], data["installed"]) == (True, True)
    assert sandbox.run_tool("stcli") == "stcli.cli stcli.commands stcli.utils"
    assert "commands/hello.py" not in installed_files(sandbox, "stcli", "stcli")


def test_added_subcommand_module_is_installed(make_project: MakeProject, sandbox: Sandbox) -> None:
    project = make_project("setuptools_cli")
    install_json(project)
    (project / "src/stcli/commands/bye.py").write_text("def run() -> str:\n    return 'bye'\n")
    assert install_json(project)["rebuilt"]
    assert (
        sandbox.run_tool("stcli")
        == "stcli.cli stcli.commands stcli.commands.bye stcli.commands.hello stcli.utils"
    )


def test_moved_module_leaves_no_copy_behind(make_project: MakeProject, sandbox: Sandbox) -> None:
    project = make_project("setuptools_cli", in_git=True)
    install_json(project)
    package = project / "src/stcli"
    (package / "helpers").mkdir()
    (package / "helpers/__init__.py").write_text("")
    git(project, "mv", "src/stcli/utils.py", "src/stcli/helpers/utils.py")
    cli = package / "cli.py"
    cli.write_text(cli.read_text().replace("from stcli.utils", "from stcli.helpers.utils"))
    assert install_json(project)["rebuilt"]
    assert (
        sandbox.run_tool("stcli")
        == "stcli.cli stcli.commands stcli.commands.hello stcli.helpers stcli.helpers.utils"
    )
    assert "utils.py" not in installed_files(sandbox, "stcli", "stcli")


def test_changed_dependency_is_installed(make_project: MakeProject, sandbox: Sandbox) -> None:
    project = make_project("setuptools_cli")
    install_json(project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("dependencies = []", 'dependencies = ["six"]')
    )
    assert install_json(project)["rebuilt"]
    assert (sandbox.tool_site_packages("stcli") / "six.py").exists()


def test_added_console_script_appears(make_project: MakeProject, sandbox: Sandbox) -> None:
    project = make_project("setuptools_cli")
    install_json(project)
    hello = project / "src/stcli/commands/hello.py"
    hello.write_text(hello.read_text() + "\n\ndef main() -> None:\n    print(run())\n")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'stcli-hello = "stcli.commands.hello:main"\n')
    assert install_json(project)["rebuilt"]
    assert sandbox.run_tool("stcli-hello") == "hello"


def test_second_run_neither_builds_nor_installs(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path
) -> None:
    # A path with spaces, quotes and $(...) must be passed through untouched everywhere.
    project = make_project("setuptools_cli", dest="we ird $(echo x) 'q'")
    first = install_json(project)
    wheel = project / "dist" / first["wheel"]
    record = sandbox.tool_site_packages("stcli") / "stcli-1.0.0.dist-info/RECORD"
    before = (wheel.stat().st_mtime_ns, record.stat().st_mtime_ns)
    (project / "src/stcli/cli.py").touch()  # mtime only: not a change

    second = install_json(project)
    assert (second["rebuilt"], second["installed"]) == (False, False)
    assert second["fingerprint"] == first["fingerprint"]
    assert (wheel.stat().st_mtime_ns, record.stat().st_mtime_ns) == before
    plain = freshinstall(project)
    assert plain.code == 0
    assert "is up to date" in plain.stdout


def test_json_output_is_one_object_with_the_documented_keys(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    data = install_json(project)
    assert {
        "project",
        "version",
        "fingerprint",
        "rebuilt",
        "installed",
        "wheel",
        "seconds",
    } <= data.keys()
    assert (data["project"], data["version"], data["wheel"]) == (
        "stcli",
        "1.0.0",
        "stcli-1.0.0-py3-none-any.whl",
    )
    assert len(data["fingerprint"]) == 64


@pytest.mark.parametrize(
    ("fixture", "tool"),
    [
        ("hatch_cli", "hatchcli"),
        ("flit_cli", "flitcli"),
        ("pdm_cli", "pdmcli"),
        ("poetry_cli", "poetrycli"),
    ],
)
def test_add_and_delete_with_every_backend(
    make_project: MakeProject, sandbox: Sandbox, fixture: str, tool: str
) -> None:
    project = make_project(fixture)
    install_json(project)
    assert sandbox.run_tool(tool) == "alpha"
    (project / tool / "beta.py").write_text("Y = 2\n")
    (project / tool / "alpha.py").unlink()
    assert install_json(project)["rebuilt"]
    assert sandbox.run_tool(tool) == "beta"
    assert installed_files(sandbox, tool, tool) == {"__init__.py", "beta.py"}


def test_uninstalled_tool_is_reinstalled_without_rebuilding(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli")
    install_json(project)
    uv("tool", "uninstall", "stcli")
    data = install_json(project)
    assert (data["rebuilt"], data["installed"]) == (False, True)
    assert sandbox.run_tool("stcli") == STCLI_MODULES


def test_tampered_wheel_is_rebuilt(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    wheel = project / "dist" / install_json(project)["wheel"]
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    assert install_json(project)["rebuilt"]


def test_force_rebuilds_and_dry_run_changes_nothing(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli")
    dry = freshinstall("--dry-run", project)
    assert dry.code == 0
    assert dry.stdout.startswith("would build and install stcli")
    assert not (project / "dist").exists()
    assert not sandbox.tools.exists()
    install_json(project)
    forced = install_json(project, "--force")
    assert (forced["rebuilt"], forced["installed"]) == (True, True)


def test_failed_build_keeps_previous_install_and_stamp(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli")
    install_json(project)
    stamp = (project / "dist/.freshinstall.json").read_bytes()
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.setuptools]\npackages = ["nowhere"]\n')

    result = freshinstall(project)
    assert result.code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: build failed: setuptools.build_meta reported:")
    assert "nowhere" in result.stderr
    assert "Traceback" not in last
    assert (project / "dist/.freshinstall.json").read_bytes() == stamp
    assert sandbox.run_tool("stcli") == STCLI_MODULES


def test_backend_exception_is_reported_with_its_message(make_project: MakeProject) -> None:
    project = make_project("broken_setup")
    result = freshinstall(project)
    assert result.code == 1
    assert "setup.py refuses to build (a test fixture)" in result.stderr.strip().splitlines()[-1]
    assert not (project / "dist/.freshinstall.json").exists()


def test_project_without_console_scripts_suggests_uv_pip(make_project: MakeProject) -> None:
    result = freshinstall(make_project("nocli"))
    assert result.code == 1
    assert "declares no console scripts" in result.stderr
    assert "--installer uv-pip" in result.stderr


def test_legacy_setup_py_project_builds(make_project: MakeProject, sandbox: Sandbox) -> None:
    project = make_project("legacy_setup_py")
    install_json(project)
    assert sandbox.run_tool("legacy") == "legacy"


def test_version_from_git_tag_is_used(make_project: MakeProject, sandbox: Sandbox) -> None:
    project = make_project("scm_cli", in_git=True)
    git(project, "tag", "v1.2.3")
    index = project / ".git/index"
    before = index.stat().st_mtime_ns
    data = install_json(project)
    assert data["version"] == "1.2.3"
    assert sandbox.run_tool("scmcli") == "1.2.3"
    assert index.stat().st_mtime_ns == before, "the build must not rewrite the user's git index"


def test_flat_package_called_build_survives_and_is_installed(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("flat_build")
    before = {p: p.read_bytes() for p in (project / "build").iterdir()}
    install_json(project)
    install_json(project, "--force")
    assert {p: p.read_bytes() for p in (project / "build").iterdir()} == before
    assert sandbox.run_tool("flatbuild") == "flat build package"


def test_tracked_file_under_build_and_foreign_dist_files_survive(make_project: MakeProject) -> None:
    project = make_project("tracked_build", in_git=True)
    keep = project / "build/KEEP.txt"
    original = keep.read_bytes()
    foreign = {
        "tbuild-0.9.0-py3-none-any.whl": b"an older release the user keeps",
        "tbuild-0.9.0.tar.gz": b"an older sdist",
        "other-2.0-py3-none-any.whl": b"someone else's wheel",
        "notes.txt": b"user notes",
    }
    (project / "dist").mkdir()
    for name, content in foreign.items():
        (project / "dist" / name).write_bytes(content)
    commit_all(project, "keep dist files")  # tracked or not, they are the user's
    uv("tool", "install", "--force", ".", cwd=project)

    install_json(project)
    keep.write_bytes(original + b"edited\n")  # a tracked file under build/ is source
    assert install_json(project)["rebuilt"]
    shutil.rmtree(project / "src/tbuild.egg-info", ignore_errors=True)
    assert keep.read_bytes() == original + b"edited\n"
    for name, content in foreign.items():
        assert (project / "dist" / name).read_bytes() == content


def test_with_and_python_are_passed_to_uv(make_project: MakeProject, sandbox: Sandbox) -> None:
    project = make_project("setuptools_cli")
    data = install_json(project, "--with", "six", "--python", sys.executable)
    assert data["installed"]
    assert (sandbox.tool_site_packages("stcli") / "six.py").exists()
    # The same options again: nothing to do. Different options: another target, reinstall only.
    again = install_json(project, "--with", "six", "--python", sys.executable)
    assert (again["rebuilt"], again["installed"]) == (False, False)
    plain = install_json(project)
    assert (plain["rebuilt"], plain["installed"]) == (False, True)
    assert not (sandbox.tool_site_packages("stcli") / "six.py").exists()
    # The tool dir holds one install: asking for six again must put it back.
    back = install_json(project, "--with", "six", "--python", sys.executable)
    assert (back["rebuilt"], back["installed"]) == (False, True)
    assert (sandbox.tool_site_packages("stcli") / "six.py").exists()


def test_verbose_streams_backend_output_and_quiet_prints_nothing(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    verbose = freshinstall("-v", project)
    assert verbose.code == 0
    assert "$ " in verbose.stderr  # every command is echoed
    assert "running bdist_wheel" in verbose.stderr  # setuptools' own output, streamed
    assert "running bdist_wheel" not in verbose.stdout
    quiet = freshinstall("-q", "--force", project)
    assert (quiet.code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_vcs_version_rebuilds_after_commit_and_tag_static_version_does_not(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    scm = make_project("scm_cli", in_git=True)
    git(scm, "tag", "v1.2.3")
    assert install_json(scm)["version"] == "1.2.3"
    commit_all(scm, "an empty commit")
    after_commit = install_json(scm)
    assert after_commit["rebuilt"]
    assert after_commit["version"].startswith("1.2.4.dev1+g")
    git(scm, "tag", "v2.0.0")
    assert install_json(scm)["version"] == "2.0.0"
    assert sandbox.run_tool("scmcli") == "2.0.0"

    static = make_project("setuptools_cli", in_git=True)
    install_json(static)
    commit_all(static, "an empty commit")
    git(static, "tag", "v9.9.9")
    assert install_json(static)["rebuilt"] is False


def test_pretend_version_variable_is_an_input(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    scm = make_project("scm_cli", in_git=True)
    monkeypatch.setenv("SETUPTOOLS_SCM_PRETEND_VERSION", "5.0.0")
    assert install_json(scm)["version"] == "5.0.0"
    monkeypatch.setenv("SETUPTOOLS_SCM_PRETEND_VERSION", "5.0.1")
    assert install_json(scm)["version"] == "5.0.1"


def test_changed_tool_dir_installs_there(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = make_project("setuptools_cli")
    install_json(project)
    other = tmp_path / "other tools"
    monkeypatch.setenv("UV_TOOL_DIR", str(other))
    data = install_json(project)
    assert (data["rebuilt"], data["installed"], data["target"]) == (False, True, str(other))
    assert (other / "stcli").is_dir()
    assert install_json(project)["installed"] is False
