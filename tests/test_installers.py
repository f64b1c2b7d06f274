"""Every installer with the same guarantees: no ghosts, dependencies present, skip when fresh."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeProject
from tests.helpers import Result, Sandbox, freshinstall

pytestmark = pytest.mark.slow


def run_json(*args: str | Path) -> dict[str, Any]:
    result = freshinstall("--json", *args)
    assert result.code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def make_venv(path: Path, *, with_pip: bool) -> Path:
    venv.EnvBuilder(with_pip=with_pip).create(path)
    return path


def modules(python: Path, package: str) -> list[str]:
    code = (
        f"import json, pkgutil, {package} as p; "
        "found = pkgutil.walk_packages(p.__path__, p.__name__ + '.'); "
        "print(json.dumps(sorted(m.name for m in found)))"
    )
    out = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout
    names: list[str] = json.loads(out)
    return names


def ghost_story(project: Path, args: list[str], installed_modules: Any) -> None:
    """Install, delete a module, reinstall: the module is gone; then nothing to do."""
    first = run_json(*args, project)
    assert first["installed"]
    assert "stcli.commands.hello" in installed_modules()
    (project / "src/stcli/commands/hello.py").unlink()
    second = run_json(*args, project)
    assert (second["rebuilt"], second["installed"]) == (True, True)
    assert "stcli.commands.hello" not in installed_modules()
    third = run_json(*args, project)
    assert (third["rebuilt"], third["installed"]) == (False, False)


def add_dependency(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("dependencies = []", 'dependencies = ["six"]')
    )


@pytest.mark.parametrize("installer", ["uv-pip", "pip"])
def test_environment_installers_leave_no_ghost_and_install_dependencies(
    make_project: MakeProject, tmp_path: Path, installer: str
) -> None:
    env = make_venv(tmp_path / "env", with_pip=installer == "pip")
    python = env / "bin/python"
    project = make_project("setuptools_cli")
    add_dependency(project)
    args = ["--installer", installer, "--python", str(env)]
    ghost_story(project, args, lambda: modules(python, "stcli"))
    subprocess.run([str(python), "-c", "import six"], check=True)
    assert (env / "bin/stcli").exists()


def test_active_virtual_environment_is_the_default_target(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_venv(tmp_path / "active env", with_pip=False)
    monkeypatch.setenv("VIRTUAL_ENV", str(env))
    data = run_json("--installer", "uv-pip", make_project("setuptools_cli"))
    assert data["target"] == str(env)
    assert "stcli.commands.hello" in modules(env / "bin/python", "stcli")


def test_environment_installer_without_a_target_is_a_clear_error(make_project: MakeProject) -> None:
    result = freshinstall("--installer", "pip", make_project("setuptools_cli"))
    assert result.code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: install failed: --installer pip needs a target environment: pass --python PATH "
        "(an interpreter or a virtual environment) or activate a virtual environment"
    )


def test_pipx_leaves_no_ghost(make_project: MakeProject, tmp_path: Path) -> None:
    project = make_project("setuptools_cli")
    pipx_venv = tmp_path / "pipx/venvs/stcli"

    def installed() -> list[str]:
        return modules(pipx_venv / "bin/python", "stcli")

    ghost_story(project, ["--installer", "pipx"], installed)
    assert (tmp_path / "pipx-bin/stcli").exists()


def test_switching_installer_reinstalls_without_rebuilding_and_both_stay_fresh(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path
) -> None:
    env = make_venv(tmp_path / "env", with_pip=False)
    project = make_project("setuptools_cli")
    tool = run_json(project)
    in_env = run_json("--installer", "uv-pip", "--python", str(env), project)
    assert (in_env["rebuilt"], in_env["installed"]) == (False, True)
    assert in_env["wheel"] == tool["wheel"]
    for args in ([], ["--installer", "uv-pip", "--python", str(env)]):
        again = run_json(*args, project)
        assert (again["rebuilt"], again["installed"]) == (False, False)
    stamp = json.loads((project / "dist/.freshinstall.json").read_text())
    assert sorted(install["installer"] for install in stamp["installs"]) == ["uv-pip", "uv-tool"]


def test_editable_code_edit_needs_no_reinstall_but_a_new_script_does(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli")
    first = run_json("--editable", project)
    assert first["installed"]
    utils = project / "src/stcli/utils.py"
    utils.write_text("def shout(text: str) -> str:\n    return text.upper()\n")
    second = run_json("--editable", project)
    assert (second["rebuilt"], second["installed"]) == (False, False)
    assert sandbox.run_tool("stcli").startswith("STCLI.CLI")  # the edit is live

    hello = project / "src/stcli/commands/hello.py"
    hello.write_text(hello.read_text() + "\n\ndef main() -> None:\n    print(run())\n")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'stcli-hello = "stcli.commands.hello:main"\n')
    third = run_json("--editable", project)
    assert third["installed"]
    assert third["reason"] == "the project metadata changed"
    assert sandbox.run_tool("stcli-hello") == "hello"


def test_configuration_precedence(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_venv(tmp_path / "env", with_pip=False)
    project = make_project("setuptools_cli")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + f'\n[tool.freshinstall]\ninstaller = "uv-pip"\npython = "{env}"\n'
    )
    assert run_json("--dry-run", project)["installer"] == "uv-pip"  # pyproject
    monkeypatch.setenv("FRESHINSTALL_INSTALLER", "pip")
    assert run_json("--dry-run", project)["installer"] == "pip"  # environment beats pyproject
    assert run_json("--dry-run", "--installer", "uv-tool", project)["installer"] == "uv-tool"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('instaler = "pip"', "unknown key tool.freshinstall.instaler"),
        ("editable = 1", "tool.freshinstall.editable must be true or false"),
        ('with = "six"', "tool.freshinstall.with must be a list of strings"),
        (
            'installer = "conda"',
            "tool.freshinstall.installer must be one of uv-tool, uv-pip, pip, pipx",
        ),
    ],
)
def test_bad_configuration_names_key_and_file(
    make_project: MakeProject, table: str, message: str
) -> None:
    project = make_project("setuptools_cli")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"\n[tool.freshinstall]\n{table}\n")
    result: Result = freshinstall("--dry-run", project)
    assert result.code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {pyproject}: ")
    assert message in line


def test_unknown_environment_variable_is_an_error(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRESHINSTALL_INSTALER", "pip")
    result = freshinstall("--dry-run", make_project("setuptools_cli"))
    assert result.code == 1
    assert "unknown environment variable FRESHINSTALL_INSTALER" in result.stderr


def test_config_settings_and_exclude_are_inputs(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    run_json(project)
    with_setting = run_json("--dry-run", "-C", "key=value", project)
    assert with_setting["reason"] == "the source changed since the last build"

    (project / "NOTES.txt").write_text("not part of the build\n")
    assert run_json("--dry-run", project)["reason"] == "the source changed since the last build"
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.freshinstall]\nexclude = ["NOTES.txt"]\n')
    before = freshinstall("fingerprint", project).stdout
    (project / "NOTES.txt").write_text("edited, still excluded\n")
    assert freshinstall("fingerprint", project).stdout == before


def test_python_interpreter_path_as_target(make_project: MakeProject, tmp_path: Path) -> None:
    env = make_venv(tmp_path / "env", with_pip=False)
    data = run_json(
        "--installer", "uv-pip", "--python", str(env / "bin/python"), make_project("setuptools_cli")
    )
    assert data["target"] == str(env)
    assert sys.executable != str(env / "bin/python")


@pytest.mark.parametrize("installer", ["uv-pip", "pip"])
def test_editable_into_an_environment_follows_the_source(
    make_project: MakeProject, tmp_path: Path, installer: str
) -> None:
    env = make_venv(tmp_path / "env", with_pip=installer == "pip")
    project = make_project("setuptools_cli")
    args = ["--editable", "--installer", installer, "--python", str(env)]
    assert run_json(*args, project)["installed"]
    (project / "src/stcli/commands/bye.py").write_text("def run() -> str:\n    return 'bye'\n")
    second = run_json(*args, project)
    assert (second["rebuilt"], second["installed"]) == (False, False)
    assert "stcli.commands.bye" in modules(env / "bin/python", "stcli")


def test_pipx_editable_follows_the_source_and_reinstalls_for_a_new_script(
    make_project: MakeProject, tmp_path: Path
) -> None:
    project = make_project("setuptools_cli")
    args = ["--editable", "--installer", "pipx"]
    first = run_json(*args, project)
    assert first["installed"]
    pipx_python = tmp_path / "pipx/venvs/stcli/bin/python"
    (project / "src/stcli/commands/bye.py").write_text("def run() -> str:\n    return 'bye'\n")
    second = run_json(*args, project)
    assert (second["rebuilt"], second["installed"]) == (False, False)
    assert "stcli.commands.bye" in modules(pipx_python, "stcli")  # live from the source

    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'stcli-bye = "stcli.commands.bye:run"\n')
    third = run_json(*args, project)
    assert third["installed"]
    assert third["reason"] == "the project metadata changed"
    assert (tmp_path / "pipx-bin/stcli-bye").exists()
