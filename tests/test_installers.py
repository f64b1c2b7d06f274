"""Every installer with the same guarantees: no ghosts, dependencies present, skip when fresh."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

from freshinstall.install import Installer, Request, find_record
from tests.conftest import MakeProject
from tests.helpers import Result, Sandbox, first_on_path, freshinstall

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


# -- uv installs a new wheel without --reinstall-package; it is forced only when needed ---------

#: A uv that logs its arguments and, as told by the file MODE, installs a wheel only when forced
#: (``stale``: as if it took its cached copy of an older wheel of the same path) or never.
UV_LOGGING = """\
#!{python}
import os, sys
args = sys.argv[1:]
with open({log!r}, "a", encoding="utf-8") as log:
    log.write(" ".join(args) + "\\n")
mode = open({mode!r}, encoding="utf-8").read().strip() if os.path.exists({mode!r}) else ""
wheel = any(arg.endswith(".whl") for arg in args) and args[1:2] == ["install"]
if wheel and (mode == "never" or (mode == "stale" and "--reinstall-package" not in args)):
    sys.exit(0)
os.execv({uv!r}, [{uv!r}, *args])
"""


def logging_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Put UV_LOGGING first on PATH; return its log and its mode file."""
    from freshinstall.install import find_uv

    log, mode = tmp_path / "uv.log", tmp_path / "uv.mode"
    script = UV_LOGGING.format(python=sys.executable, log=str(log), mode=str(mode), uv=find_uv())
    first_on_path(monkeypatch, tmp_path / "logging-uv", "uv", script)
    return log, mode


def output_of(script: Path) -> str:
    return subprocess.run([script], capture_output=True, text=True, check=True).stdout


def wheel_installs(log: Path) -> list[str]:
    """The logged installs of a wheel: "forced" or "plain", in order; the log is then emptied."""
    lines = log.read_text(encoding="utf-8").splitlines()
    log.write_text("", encoding="utf-8")
    installs = [line for line in lines if ".whl" in line and " install " in f" {line} "]
    return ["forced" if "--reinstall-package" in line else "plain" for line in installs]


def test_a_stamped_target_is_installed_into_without_asking_uv_again(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, _ = logging_uv(tmp_path, monkeypatch)
    project = make_project("setuptools_cli")
    cli = project / "src" / "stcli" / "cli.py"

    def rebuilt_asking_for_the_target(text: str) -> bool:
        cli.write_text(cli.read_text() + f"\n# {text}\n", encoding="utf-8")
        log.write_text("", encoding="utf-8")
        assert run_json(project)["installed"]
        return "tool dir" in log.read_text(encoding="utf-8")

    assert rebuilt_asking_for_the_target("first")  # nothing stamped yet
    assert not rebuilt_asking_for_the_target("second")  # stamped, from the same settings
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("UV_TOOL_DIR", str(elsewhere))
    assert rebuilt_asking_for_the_target("third")  # another UV_TOOL_DIR: asked again
    assert (elsewhere / "stcli").is_dir()


@pytest.mark.parametrize(
    ("name", "target"),
    [("uv-tool", "stamped"), ("uv-pip", "asked"), ("pip", "asked"), ("pipx", "asked")],
)
def test_only_a_target_the_locator_decides_alone_is_taken_from_the_stamp(
    monkeypatch: pytest.MonkeyPatch, name: str, target: str
) -> None:
    # pipx's home also depends on whether ~/.local/pipx exists; a bare --python on PATH.
    from freshinstall.install import make_installer

    installer = make_installer(name, python=None if name in ("uv-tool", "pipx") else "python3")
    monkeypatch.setattr(installer, "resolve_target", lambda: "asked")
    installer.assume_target("stamped")
    assert installer.target() == target


@pytest.mark.parametrize("installer", ["uv-tool", "uv-pip"])
def test_uv_installs_a_new_wheel_unforced_and_is_forced_only_when_it_did_not(
    make_project: MakeProject,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    installer: str,
) -> None:
    log, mode = logging_uv(tmp_path, monkeypatch)
    project = make_project("setuptools_cli")
    args: list[str | Path] = ["--installer", installer]
    if installer == "uv-pip":
        env = make_venv(tmp_path / "env", with_pip=False)
        args += ["--python", env]
    stcli = env / "bin" / "stcli" if installer == "uv-pip" else sandbox.bin / "stcli"
    cli = project / "src" / "stcli" / "cli.py"

    assert run_json(*args, project)["installed"]
    assert wheel_installs(log) == ["plain"]  # a new wheel: uv installs it, nothing forced
    cli.write_text(cli.read_text().replace("def main", "def other"), encoding="utf-8")
    cli.write_text(cli.read_text() + "\n\ndef main():\n    print('second')\n", encoding="utf-8")
    assert run_json(*args, project)["installed"]
    assert wheel_installs(log) == ["plain"]
    assert output_of(stcli) == "second\n"

    # uv keeps what it had installed: the check of the RECORD sees it, and forces the install.
    mode.write_text("stale", encoding="utf-8")
    cli.write_text(cli.read_text().replace("second", "third"), encoding="utf-8")
    assert run_json(*args, project)["installed"]
    assert wheel_installs(log) == ["plain", "forced"]
    assert output_of(stcli) == "third\n"

    # Only a module deleted: every file of the new wheel is in the old RECORD, hash for hash,
    # but the old RECORD holds one more.
    hello = Path("stcli", "commands", "hello.py")
    site = (
        next(env.glob("lib/python*/site-packages"))
        if installer == "uv-pip"
        else sandbox.tool_site_packages("stcli")
    )
    assert (site / hello).exists()
    (project / "src" / hello).unlink()
    assert run_json(*args, project)["installed"]
    assert wheel_installs(log) == ["plain", "forced"]
    assert not (site / hello).exists()
    assert (site / "stcli" / "cli.py").exists()

    # Not even forced: a one-line error, and the stamp claims no install of the new wheel.
    mode.write_text("never", encoding="utf-8")
    cli.write_text(cli.read_text().replace("third", "fourth"), encoding="utf-8")
    result = freshinstall(*args, project)
    assert result.code == 1
    assert wheel_installs(log) == ["plain", "forced"]
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"error: install failed: {installer} installed stcli, but not the files of "
            "stcli-1.0.0-py3-none-any.whl"
        )
    )
    assert "Traceback" not in result.stderr
    assert freshinstall("status", *args, project).code != 0


def make_wheel(path: Path, record: str, *, unlisted: tuple[str, ...] = ()) -> Path:
    """A wheel holding the files its ``record`` lists (directories as directory entries),
    and the ``unlisted`` files it does not."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for line in record.splitlines():
            name = line.partition(",")[0]
            if name != "demo-1.0.dist-info/RECORD":
                archive.writestr(name, "" if name.endswith("/") else name)
        for name in unlisted:
            archive.writestr(name, name)
        archive.writestr("demo-1.0.dist-info/RECORD", record)
    return path


WHEEL_RECORD = """\
demo/__init__.py,sha256=AAA,1
demo-1.0.data/purelib/extra.py,sha256=BBB,2
demo-1.0.data/platlib/native.so,sha256=CCC,3
demo-1.0.dist-info/METADATA,sha256=MMM,4
demo-1.0.dist-info/RECORD,,
"""

INSTALLED_RECORD = """\
demo/__init__.py,sha256=AAA,1
extra.py,sha256=BBB,2
native.so,sha256=CCC,3
demo-1.0.dist-info/METADATA,sha256=MMM,4
demo-1.0.dist-info/RECORD,,
demo-1.0.dist-info/INSTALLER,sha256=YYY,2
demo-1.0.dist-info/uv_cache.json,sha256=ZZZ,9
demo/__pycache__/__init__.cpython-311.pyc,,
../../../bin/demo,sha256=XXX,9
"""


def test_the_files_of_a_wheel_are_named_as_an_installed_record_names_them(tmp_path: Path) -> None:
    from freshinstall.install import wheel_files

    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", WHEEL_RECORD)
    assert wheel_files(wheel) == {
        "demo/__init__.py": "sha256=AAA",
        "extra.py": "sha256=BBB",
        "native.so": "sha256=CCC",
        "demo-1.0.dist-info/METADATA": "sha256=MMM",
    }
    for elsewhere in ["scripts/demo", "data/share/demo.txt", "headers/demo.h"]:
        other = tmp_path / "other" / "demo-1.0-py3-none-any.whl"
        other.parent.mkdir(exist_ok=True)
        make_wheel(other, f"{WHEEL_RECORD}demo-1.0.data/{elsewhere},sha256=DDD,4\n")
        assert wheel_files(other) is None, elsewhere  # installed forced: no RECORD can vouch


@pytest.mark.parametrize(
    ("change", "same"),
    [
        (lambda text: text, True),
        (lambda text: text.replace("sha256=BBB", "sha256=OLD"), False),  # old content
        (lambda text: text + "demo/gone.py,sha256=GGG,5\n", False),  # a deleted module stayed
        (lambda text: text.replace("extra.py,sha256=BBB,2\n", ""), False),  # a file missing
        (lambda text: text + "demo-1.0.dist-info/uv_build.json,sha256=NEW,2\n", True),
        (lambda text: text.replace("demo/__init__", "demo\\__init__"), True),  # Windows, old uv
        (lambda text: text.replace("demo/__init__", "/demo/__init__"), True),  # read as uv does
        (lambda text: text.replace("native.so", '"native.so"'), True),  # CSV quoting
        (lambda text: text + "demo-1.0.dist-info/pip_thing.txt,sha256=P,1\n", False),
        (lambda text: text + "demo-1.0.dist-info/licenses/OLD,sha256=L,1\n", False),
    ],
    ids=[
        "same",
        "old-content",
        "deleted-stays",
        "missing",
        "installer-file",
        "backslash",
        "leading-slash",
        "quoted",
        "unknown-dist-info-file",
        "stale-license",
    ],
)
def test_an_installed_record_must_hold_exactly_the_files_of_the_wheel(
    tmp_path: Path, change: Any, same: bool
) -> None:
    from freshinstall.install import installed_from

    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", WHEEL_RECORD)
    installed = tmp_path / "RECORD"
    installed.write_text(change(INSTALLED_RECORD), encoding="utf-8")
    assert installed_from(installed, wheel) is same


def test_an_unreadable_installed_record_is_no_match(tmp_path: Path) -> None:
    from freshinstall.install import installed_from

    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", WHEEL_RECORD)
    installed = tmp_path / "RECORD"
    installed.write_bytes(b"\xff\xfe not utf-8")
    assert not installed_from(installed, wheel)
    assert not installed_from(tmp_path / "missing", wheel)


def test_after_a_forced_install_an_unknown_installer_file_is_let_pass(tmp_path: Path) -> None:
    from freshinstall.install import installed_from

    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", WHEEL_RECORD)
    installed = tmp_path / "RECORD"
    installed.write_text(INSTALLED_RECORD + "demo-1.0.dist-info/pip_thing.txt,sha256=P,1\n")
    assert not installed_from(installed, wheel)  # enough to force the install
    assert installed_from(installed, wheel, strict=False)  # not to stop after it
    installed.write_text(INSTALLED_RECORD + "demo/gone.py,sha256=G,1\n")
    assert not installed_from(installed, wheel, strict=False)


def test_bytecode_directories_and_unlisted_files_of_a_wheel_are_its_files(tmp_path: Path) -> None:
    from freshinstall.install import installed_from, wheel_files

    record = WHEEL_RECORD + "demo/__pycache__/x.cpython-311.pyc,sha256=PYC,9\ndemo/sub/,,\n"
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", record, unlisted=("demo/x.py",))
    files = wheel_files(wheel)
    assert files is not None
    assert files["demo/__pycache__/x.cpython-311.pyc"] == "sha256=PYC"
    assert files["demo/x.py"] == ""  # installers list it without a hash
    assert "demo/sub/" not in files
    installed = tmp_path / "RECORD"
    shipped = "demo/__pycache__/x.cpython-311.pyc,sha256=PYC,9\ndemo/x.py,,8\n"
    installed.write_text(INSTALLED_RECORD + shipped, encoding="utf-8")
    assert installed_from(installed, wheel)
    installed.write_text(INSTALLED_RECORD, encoding="utf-8")  # the shipped bytecode is missing
    assert not installed_from(installed, wheel)


class ScriptedInstaller(Installer):
    """An installer whose installs write the RECORDs a test gives, one per call, into SITE."""

    name = "scripted"
    forces_on_demand = True
    site: Path
    records: list[dict[str, str]]
    calls: list[bool]

    def resolve_target(self) -> str:
        return str(self.site)

    def run_install(self, request: Request, *, force: bool) -> None:  # noqa: ARG002
        self.calls.append(force)
        for dist_info, text in self.records.pop(0).items():
            (self.site / dist_info).mkdir(parents=True, exist_ok=True)
            (self.site / dist_info / "RECORD").write_text(text, encoding="utf-8")

    def find_installed_record(self, project: str) -> Path | None:
        return find_record([self.site], project)


def scripted(tmp_path: Path, *records: dict[str, str]) -> ScriptedInstaller:
    installer = ScriptedInstaller()
    installer.site, installer.records, installer.calls = tmp_path / "site", list(records), []
    return installer


@pytest.mark.parametrize(
    ("extra", "calls"),
    [("", [False]), ("demo-1.0.data/scripts/demo,sha256=DDD,4\n", [True])],
    ids=["plain", "with-scripts"],  # a wheel with .data scripts is installed forced at once
)
def test_the_record_of_the_wheels_own_dist_info_is_checked_and_reported(
    tmp_path: Path, extra: str, calls: list[bool]
) -> None:
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", WHEEL_RECORD + extra)
    leftover = {"Demo-0.9.dist-info": "demo/__init__.py,sha256=OLD,1\n"}  # sorts first
    installer = scripted(tmp_path, {**leftover, "demo-1.0.dist-info": INSTALLED_RECORD})
    result = installer.install(Request("demo", tmp_path, wheel))
    assert installer.calls == calls
    assert result.record == installer.site / "demo-1.0.dist-info" / "RECORD"


def test_an_unknown_installer_file_costs_a_forced_install_not_an_error(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", WHEEL_RECORD)
    unknown = INSTALLED_RECORD + "demo-1.0.dist-info/new_installer_file,sha256=N,1\n"
    installer = scripted(tmp_path, {"demo-1.0.dist-info": unknown}, {"demo-1.0.dist-info": unknown})
    installer.install(Request("demo", tmp_path, wheel))
    assert installer.calls == [False, True]


def test_site_packages_of_cpython_pypy_and_windows_environments(tmp_path: Path) -> None:
    from freshinstall.install import venv_site_dirs

    for layout in ["lib/python3.11/site-packages", "lib/pypy3.10/site-packages"]:
        (tmp_path / layout.split("/")[1] / layout).mkdir(parents=True)
        env = tmp_path / layout.split("/")[1]
        assert env / layout in venv_site_dirs(env)
    assert venv_site_dirs(tmp_path / "win")[0] == tmp_path / "win" / "Lib" / "site-packages"
