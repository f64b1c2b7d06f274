"""freshinstall doctor: every finding made real (plain uv, pip and pipx installs, PATH, leftovers,
an old uv), its exit code, and that its fixes work: after them doctor and status are clean."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from freshinstall.install import find_uv
from tests.conftest import MakeProject
from tests.helpers import Result, Sandbox, freshinstall, uv

pytestmark = pytest.mark.slow


def doctor(project: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = freshinstall("doctor", "--json", *args, project)
    assert result.code in {0, 1}, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["ok"] is (result.code == 0)
    return result.code, data


def findings(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {finding["code"]: finding for finding in data["findings"]}


def on_path(monkeypatch: pytest.MonkeyPatch, *directories: Path) -> None:
    monkeypatch.setenv("PATH", os.pathsep.join([*map(str, directories), os.environ["PATH"]]))


def apply(fix: str, cwd: Path) -> None:
    """Run a fix as the user would type it (never through a shell)."""
    argv = shlex.split(fix)
    if argv[0] == "freshinstall":
        result: Result = freshinstall(*argv[1:], cwd=cwd)
        assert result.code == 0, result.stderr
    else:
        subprocess.run(argv, cwd=cwd, check=True)


def assert_clean(project: Path) -> None:
    code, data = doctor(project)
    assert (code, data["findings"], data["built"]) == (0, [], False)
    assert freshinstall("doctor", project).stdout.splitlines()[-1] == "no problems found"
    assert freshinstall("status", project).code == 0


def test_plain_uv_install_after_deleting_a_module(
    make_project: MakeProject, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path(monkeypatch, sandbox.bin)
    project = make_project("setuptools_cli")
    uv("tool", "install", ".", cwd=project)
    (project / "src/stcli/commands/hello.py").unlink()

    code, data = doctor(project)
    assert (code, data["built"], data["project"]) == (1, True, "stcli")
    found = findings(data)
    assert found.keys() == {"ghost-files", "build-lib", "egg-info"}
    assert found["ghost-files"]["paths"] == ["stcli/commands/hello.py"]
    assert found["ghost-files"]["fix"] == f"freshinstall {project}"
    assert str(sandbox.tools / "stcli") in found["ghost-files"]["message"]
    assert found["build-lib"]["paths"] == ["stcli/commands/hello.py"]
    assert found["build-lib"]["fix"] == f"rm -rf {project}/build/lib"
    assert found["egg-info"]["paths"] == ["src/stcli/commands/hello.py"]
    assert found["egg-info"]["fix"] == f"rm -rf {project}/src/stcli.egg-info"
    (copy,) = data["copies"]
    assert copy["installer"] == "uv tool"
    assert copy["imports"]["stcli"] == str(sandbox.tool_site_packages("stcli") / "stcli")
    assert data["commands"] == {"stcli": str(sandbox.bin / "stcli")}
    text = freshinstall("doctor", ".", cwd=project)
    assert text.code == 1
    assert text.stdout.splitlines()[-1] == "3 problems found"
    (line,) = (line for line in text.stdout.splitlines() if line.startswith("ghost-files: "))
    assert line.endswith(" -- fix: freshinstall .")

    # The problem: a plain reinstall keeps the ghost (setuptools' build/lib still holds it).
    uv("tool", "install", "--force", ".", cwd=project)
    assert "stcli.commands.hello" in sandbox.run_tool("stcli")
    # The fixes doctor printed, in its order, clear every finding.
    for finding in data["findings"]:
        apply(finding["fix"], project)
    assert sandbox.run_tool("stcli") == "stcli.cli stcli.commands stcli.utils"
    assert_clean(project)


def test_pip_install_into_a_venv(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin/python"
    project = make_project("hatch_cli")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", project], check=True
    )
    (project / "hatchcli/alpha.py").write_text("X = 2\n")
    (project / "hatchcli/beta.py").write_text("Y = 1\n")

    code, data = doctor(project, "--python", str(python))
    assert code == 1
    found = findings(data)
    assert found.keys() == {"missing-files", "changed-files"}
    assert found["missing-files"]["paths"] == ["hatchcli/beta.py"]
    assert found["changed-files"]["paths"] == ["hatchcli/alpha.py"]
    # No pip in that environment: the fix installs with uv pip.
    fix = f"freshinstall --installer uv-pip --python {python} {project}"
    assert found["changed-files"]["fix"] == fix
    (copy,) = data["copies"]
    assert copy["installer"] == "environment"
    assert copy["python"] == str(python)
    site = next(venv.glob("lib/python*/site-packages"))
    assert copy["imports"] == {"hatchcli": str(site / "hatchcli")}
    assert data["commands"] == {"hatchcli": None}  # the venv is not active: not a finding

    apply(fix, tmp_path)
    # The active virtual environment is checked without --python.
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    code, data = doctor(project)
    assert (code, data["findings"], len(data["copies"])) == (0, [], 1)


def test_pipx_install_is_stale_and_shadows_the_uv_tool(
    make_project: MakeProject, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pipx_bin = tmp_path / "pipx-bin"
    on_path(monkeypatch, pipx_bin, sandbox.bin)
    project = make_project("setuptools_cli")
    subprocess.run(
        [sys.executable, "-m", "pipx", "install", project], check=True, capture_output=True
    )
    hello = project / "src/stcli/commands/hello.py"
    hello.write_text(hello.read_text() + "\n\ndef main() -> None:\n    print(run())\n")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'stcli-hello = "stcli.commands.hello:main"\n')

    code, data = doctor(project)
    assert code == 1
    found = findings(data)
    assert found.keys() == {"changed-files", "scripts-differ", "build-lib"}
    assert "the pipx copy in " in found["changed-files"]["message"]
    assert found["changed-files"]["fix"] == f"freshinstall --installer pipx {project}"
    assert found["scripts-differ"]["paths"] == ["stcli-hello"]
    # pipx built in the tree: build/lib holds the old hello.py.
    assert "old content in 1 file (stcli/commands/hello.py)" in found["build-lib"]["message"]

    # Installed again with uv tool, the pipx copy earlier on PATH still wins.
    assert freshinstall(project).code == 0
    code, data = doctor(project)
    assert code == 1
    found = findings(data)
    assert found["shadowed"]["paths"] == [str(pipx_bin / "stcli")]
    assert found["shadowed"]["message"].endswith(
        f"which comes before {sandbox.bin / 'stcli'} on PATH"
    )
    assert found["shadowed"]["fix"] == "pipx uninstall stcli"
    assert data["commands"]["stcli-hello"] == str(sandbox.bin / "stcli-hello")

    subprocess.run(
        [sys.executable, "-m", "pipx", "uninstall", "stcli"], check=True, capture_output=True
    )
    shutil.rmtree(project / "build")
    assert_clean(project)


def test_path_uv_wheels_and_interpreter(
    make_project: MakeProject, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = make_project("setuptools_cli")
    assert freshinstall(project).code == 0
    code, data = doctor(project)
    assert code == 1
    assert findings(data)["not-on-path"]["fix"] == "uv tool update-shell"
    on_path(monkeypatch, sandbox.bin)
    assert_clean(project)

    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "stcli").write_text("#!/bin/sh\necho old\n")
    (shadow / "stcli").chmod(0o755)
    fake_uv = tmp_path / "old-uv"
    fake_uv.mkdir()
    (fake_uv / "uv").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "uv 0.11.19 (fake)"; exit 0; fi\n'
        f'exec {shlex.quote(find_uv())} "$@"\n'
    )
    (fake_uv / "uv").chmod(0o755)
    on_path(monkeypatch, shadow, fake_uv)
    wheel = next((project / "dist").glob("*.whl"))
    shutil.copy(wheel, project / "dist/stcli-0.9.0-py3-none-any.whl")
    (project / "dist/other-1.0-py3-none-any.whl").write_bytes(b"someone else's")
    elsewhere = tmp_path / "pythonpath"
    (elsewhere / "stcli").mkdir(parents=True)
    (elsewhere / "stcli/__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(elsewhere))

    code, data = doctor(project)
    assert (code, data["built"]) == (1, False)
    found = findings(data)
    assert found.keys() == {"shadowed", "old-uv", "stale-wheels", "imports-elsewhere"}
    assert found["shadowed"]["paths"] == [str(shadow / "stcli")]
    assert found["shadowed"]["fix"] == f'export PATH="{sandbox.bin}:$PATH"'
    assert found["old-uv"]["message"] == f"uv 0.11.19 ({fake_uv / 'uv'}) is older than 0.11.20"
    assert found["stale-wheels"]["paths"] == ["stcli-0.9.0-py3-none-any.whl"]
    assert found["stale-wheels"]["fix"] == f"rm {project}/dist/stcli-0.9.0-py3-none-any.whl"
    assert found["imports-elsewhere"]["paths"] == [str(elsewhere / "stcli")]
    assert found["imports-elsewhere"]["fix"] == "unset PYTHONPATH"
    assert data["commands"] == {"stcli": str(shadow / "stcli")}

    monkeypatch.delenv("PYTHONPATH")
    (sandbox.tools / "stcli/bin/python").unlink()
    code, data = doctor(project)
    # The stamp vouches for this copy (its RECORD is unchanged): only --force replaces it.
    assert findings(data)["broken-interpreter"]["fix"] == f"freshinstall --force {project}"
    uv("tool", "uninstall", "stcli")
    code, data = doctor(project)
    assert findings(data)["not-installed"]["fix"] == f"freshinstall {project}"
    assert data["copies"] == []


def test_errors_exit_2(make_project: MakeProject, tmp_path: Path) -> None:
    missing = freshinstall("doctor", tmp_path / "nowhere")
    assert (missing.code, missing.stdout) == (2, "")
    assert missing.stderr.splitlines() == [f"error: {tmp_path / 'nowhere'}: no such directory"]
    project = make_project("setuptools_cli")
    bad = freshinstall("doctor", "--python", tmp_path / "nopython", project)
    assert bad.code == 2
    assert bad.stderr.splitlines()[-1].endswith("no such interpreter or virtual environment")
    assert not (project / "dist").exists(), "a bad --python must fail before any build"
