"""Build environments kept between builds: reused only while they hold exactly what a new one would.

Real builds with setuptools and uv; the cache is the sandbox's $XDG_CACHE_HOME.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from freshinstall import _process, buildenv
from tests.conftest import MakeProject
from tests.helpers import Sandbox, first_on_path, freshinstall

pytestmark = pytest.mark.slow

HOUR_NS = 3600 * 10**9
WEEK_NS = 7 * 24 * HOUR_NS

#: An in-tree backend that asks, at build time, for one more requirement than it declares.
ASKING_BACKEND = """\
from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403


def get_requires_for_build_wheel(config_settings=None):
    return [*_setuptools.get_requires_for_build_wheel(config_settings), "packaging"]
"""


def envs(sandbox: Sandbox) -> list[Path]:
    """The environments in the cache, oldest first."""
    cache = sandbox.home / ".cache" / "freshinstall" / "build-envs"
    found = [path for path in cache.iterdir() if path.is_dir()] if cache.is_dir() else []
    return sorted(found, key=lambda path: int(path.name.rpartition("-")[2]))


def installed(project: Path, *args: str) -> None:
    result = freshinstall("--force", *args, project, timeout=300)
    assert result.code == 0, result.stderr


def built_once(make_project: MakeProject, sandbox: Sandbox) -> tuple[Path, Path]:
    """The setuptools project, built and installed once, and its one build environment."""
    project = make_project("setuptools_cli")
    installed(project)
    (env,) = envs(sandbox)
    return project, env


def age(env: Path, nanoseconds: int) -> Path:
    """Make ``env`` look ``nanoseconds`` older (the creation time is in its name)."""
    key, _, created = env.name.rpartition("-")
    older = env.with_name(f"{key}-{int(created) - nanoseconds}")
    env.rename(older)
    return older


def test_the_second_build_reuses_the_environment(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project, first = built_once(make_project, sandbox)
    assert json.loads((first / buildenv.COMPLETE).read_text()) == ["setuptools>=64"]
    marker = (first / buildenv.COMPLETE).stat().st_mtime_ns

    edit(project, "second")
    installed(project)
    assert envs(sandbox) == [first]
    assert (first / buildenv.COMPLETE).stat().st_mtime_ns == marker
    assert sandbox.run_tool("stcli") == "second"


def test_other_build_requirements_get_their_own_environment(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli")
    installed(project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"setuptools>=64"', '"setuptools>=64", "wheel"')
    )
    installed(project)
    contents = [json.loads((env / buildenv.COMPLETE).read_text()) for env in envs(sandbox)]
    assert contents == [["setuptools>=64"], ["setuptools>=64", "wheel"]]


def set_checked(env: Path, nanoseconds_ago: int) -> int:
    """Make ``env`` look last checked ``nanoseconds_ago`` (its marker's mtime); returns when."""
    when = time.time_ns() - nanoseconds_ago
    os.utime(env / buildenv.COMPLETE, ns=(when, when))
    return when


def edit(project: Path, text: str) -> None:
    (project / "src" / "stcli" / "cli.py").write_text(
        f"def main():\n    print({text!r})\n", encoding="utf-8"
    )


def built_an_hour_ago(make_project: MakeProject, sandbox: Sandbox) -> tuple[Path, Path, int]:
    """A project built once, its environment last checked over an hour ago, and when."""
    project, env = built_once(make_project, sandbox)
    return project, env, set_checked(env, HOUR_NS + 10**9)


def pretend_older_setuptools(env: Path) -> None:
    """Make ``env`` look as if made before the setuptools release uv resolves today."""
    (dist_info,) = env.glob("lib/python*/site-packages/setuptools-*.dist-info")
    dist_info.rename(dist_info.with_name("setuptools-64.0.0.dist-info"))


def test_an_environment_unchecked_for_an_hour_is_reused_if_it_holds_what_uv_resolves(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project, first, stale = built_an_hour_ago(make_project, sandbox)
    edit(project, "second")
    installed(project)
    assert envs(sandbox) == [first]
    assert (first / buildenv.COMPLETE).stat().st_mtime_ns > stale + HOUR_NS  # checked now
    assert sandbox.run_tool("stcli") == "second"


def test_an_environment_that_no_longer_holds_what_uv_resolves_is_replaced_after_the_hour(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project, first = built_once(make_project, sandbox)
    pretend_older_setuptools(first)
    edit(project, "within the hour")
    installed(project)
    assert envs(sandbox) == [first]  # within the hour: handed out without a question

    stale = set_checked(first, HOUR_NS + 10**9)
    edit(project, "after the hour")
    installed(project)
    assert envs(sandbox)[0] == first  # kept: a build may still be using it
    assert (first / buildenv.COMPLETE).stat().st_mtime_ns == stale
    (second,) = envs(sandbox)[1:]
    assert list(second.glob("lib/python*/site-packages/setuptools-*.dist-info")) != []
    assert not list(second.glob("lib/python*/site-packages/setuptools-64.0.0.dist-info"))
    assert sandbox.run_tool("stcli") == "after the hour"


#: A uv that answers one command of its own (``{command}``: what sys.argv[1:3] must be) and
#: passes every other to the real uv.
UV_WRAPPER = """\
#!{python}
import os, sys
if sys.argv[1:3] == {command!r}:
    {answer}
os.execv({uv!r}, [{uv!r}, *sys.argv[1:]])
"""


def wrap_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, answer: str) -> None:
    """Put a uv first on PATH that answers ``command`` (``pip compile``...) with ``answer``."""
    from freshinstall.install import find_uv

    script = UV_WRAPPER.format(
        python=sys.executable, command=command.split(), answer=answer, uv=find_uv()
    )
    first_on_path(monkeypatch, tmp_path / "wrapper", "uv", script)


UNCHECKED = "uv could not check the kept build environment"


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("pip compile", 'sys.exit("error: no network today")'),
        ("python find", 'sys.exit("error: no interpreter found")'),
    ],
    ids=["offline", "no-interpreter"],
)
def test_an_environment_uv_cannot_check_after_the_hour_is_used_as_it_is_and_said_so(
    make_project: MakeProject,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    answer: str,
) -> None:
    wrap_uv(tmp_path, monkeypatch, command, answer)
    project, first, stale = built_an_hour_ago(make_project, sandbox)
    edit(project, "second")
    result = freshinstall(project)
    assert result.code == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if UNCHECKED in line]
    assert answer.split('"')[1] in line
    assert line.endswith("building in the kept one as it was 1 h ago")
    assert envs(sandbox) == [first]
    assert (first / buildenv.COMPLETE).stat().st_mtime_ns == stale  # not checked
    assert sandbox.run_tool("stcli") == "second"

    # For ten minutes it is handed out without asking uv again; then uv is asked again.
    edit(project, "within ten minutes")
    result = freshinstall(project)
    assert result.code == 0, result.stderr
    assert UNCHECKED not in result.stderr
    assert sandbox.run_tool("stcli") == "within ten minutes"
    later = time.time_ns() - buildenv.RECHECK_NS - 10**9
    os.utime(first / buildenv.UNCONFIRMED, ns=(later, later))
    edit(project, "after ten minutes")
    result = freshinstall(project)
    assert result.code == 0, result.stderr
    assert UNCHECKED in result.stderr
    assert envs(sandbox) == [first]
    assert sandbox.run_tool("stcli") == "after ten minutes"

    # Unchecked for more than FALLBACK_NS: it may be deleted soon, so a new one is made.
    set_checked(first, buildenv.FALLBACK_NS + HOUR_NS)
    edit(project, "third")
    result = freshinstall(project)
    assert result.code == 0, result.stderr
    assert UNCHECKED not in result.stderr
    assert len(envs(sandbox)) == 2
    assert sandbox.run_tool("stcli") == "third"


def test_offline_after_the_hour_the_kept_environment_builds(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import socket

    # A uv cache of the test's own (set before the first build: it is part of the key), whose
    # index pages can be thrown away: uv answers from a page still fresh without asking.
    uv_cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    project, first, _ = built_an_hour_ago(make_project, sandbox)
    for pages in uv_cache.glob("simple-v*"):
        shutil.rmtree(pages)
    # No index can be reached: every connection goes to a port bound but not listening.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
            monkeypatch.setenv(name, proxy)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        edit(project, "offline")
        result = freshinstall(project, timeout=120)
    assert result.code == 0, result.stderr
    assert UNCHECKED in result.stderr
    assert envs(sandbox) == [first]
    assert sandbox.run_tool("stcli") == "offline"


#: A uv that names another interpreter than the one an environment was made on, and cannot
#: resolve anything (``pyenv global`` changed, and the network went).
UV_MOVED_AND_OFFLINE = """\
#!{python}
import os, sys
if sys.argv[1:3] == ["python", "find"] and os.path.exists({switch!r}):
    print("/usr/local/bin/python3.99")
    sys.exit()
if sys.argv[1:3] == ["pip", "compile"] and os.path.exists({switch!r}):
    sys.exit("error: no network today")
if sys.argv[1:3] == ["pip", "install"] and os.path.exists({switch!r} + "-install"):
    sys.exit("error: no network today")
if sys.argv[1:3] == ["pip", "compile"]:
    with open({log!r}, "a", encoding="utf-8") as log:
        log.write(os.environ.get("UV_HTTP_RETRIES", "unset") + "\\n")
os.execv({uv!r}, [{uv!r}, *sys.argv[1:]])
"""


def moved_and_offline_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Put UV_MOVED_AND_OFFLINE first on PATH; return its switch file and its log."""
    from freshinstall.install import find_uv

    switch, log = tmp_path / "moved", tmp_path / "retries.log"
    script = UV_MOVED_AND_OFFLINE.format(
        python=sys.executable, uv=find_uv(), switch=str(switch), log=str(log)
    )
    first_on_path(monkeypatch, tmp_path / "wrapper", "uv", script)
    return switch, log


def test_an_environment_on_another_interpreter_is_never_used_unchecked(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch, _ = moved_and_offline_uv(tmp_path, monkeypatch)
    project, _, _ = built_an_hour_ago(make_project, sandbox)
    switch.touch()
    edit(project, "second")
    result = freshinstall(project)
    assert result.code == 0, result.stderr
    assert UNCHECKED not in result.stderr
    assert len(envs(sandbox)) == 2  # made by the real uv
    assert sandbox.run_tool("stcli") == "second"

    # Nor when no new one can be made: the build fails, in one line.
    for env in envs(sandbox):
        set_checked(env, HOUR_NS + 10**9)
    Path(f"{switch}-install").touch()
    edit(project, "third")
    result = freshinstall(project)
    assert result.code == 1
    assert "no network today" in result.stderr.strip().splitlines()[-1]
    assert "note:" not in result.stderr
    assert sandbox.run_tool("stcli") == "second"


@pytest.mark.parametrize("configured", [None, "5"])
def test_the_hourly_check_retries_a_failed_request_once_unless_told(
    make_project: MakeProject,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    configured: str | None,
) -> None:
    _, log = moved_and_offline_uv(tmp_path, monkeypatch)
    if configured is not None:
        monkeypatch.setenv("UV_HTTP_RETRIES", configured)
    project, _, _ = built_an_hour_ago(make_project, sandbox)
    edit(project, "second")
    installed(project)
    assert log.read_text(encoding="utf-8").split() == [configured or "1"]


#: A uv that, once the file {switch} exists, finds the kept environment outdated (it resolves
#: setuptools to another version) but cannot install anything, as when a new release is out
#: and the network then goes.
UV_OUTDATED_THEN_OFFLINE = """\
#!{python}
import os, sys
if os.path.exists({switch!r}) and sys.argv[1:3] == ["pip", "compile"]:
    print("setuptools==1.0")
    sys.exit()
if os.path.exists({switch!r}) and sys.argv[1:3] == ["pip", "install"]:
    sys.exit("error: no network today")
os.execv({uv!r}, [{uv!r}, *sys.argv[1:]])
"""


def test_when_no_new_environment_can_be_made_the_kept_one_builds(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from freshinstall.install import find_uv

    # The same uv throughout: the uv executable is part of an environment's key.
    switch = tmp_path / "offline"
    script = UV_OUTDATED_THEN_OFFLINE.format(
        python=sys.executable, uv=find_uv(), switch=str(switch)
    )
    first_on_path(monkeypatch, tmp_path / "wrapper", "uv", script)
    project, first, stale = built_an_hour_ago(make_project, sandbox)
    switch.touch()
    edit(project, "second")
    result = freshinstall(project)
    assert result.code == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "no new build environment" in line]
    assert "no network today" in line
    assert envs(sandbox) == [first]  # the half-made new one is gone
    assert (first / buildenv.COMPLETE).stat().st_mtime_ns == stale
    assert sandbox.run_tool("stcli") == "second"

    # Without a kept environment checked recently enough, the build fails as it did: one line.
    set_checked(first, buildenv.FALLBACK_NS + HOUR_NS)
    edit(project, "third")
    result = freshinstall(project)
    assert result.code == 1
    assert "no network today" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_an_environment_unused_for_a_week_is_deleted_unless_a_build_holds_its_key(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    import filelock

    _, old = built_once(make_project, sandbox)
    old = age(old, WEEK_NS + HOUR_NS)
    set_checked(old, WEEK_NS + HOUR_NS)
    other = make_project("setuptools_cli", dest="other")  # another key: another environment
    pyproject = other / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"setuptools>=64"', '"setuptools>=64", "wheel"')
    )
    key = old.name.rpartition("-")[0]
    with filelock.FileLock(old.parent / f"{key}.lock"):  # a build is checking it right now
        installed(other)
        assert old in envs(sandbox)
    edit(other, "again")
    installed(other)
    assert old not in envs(sandbox)
    assert len(envs(sandbox)) == 1


def test_an_environment_checked_within_the_week_is_kept(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project, first = built_once(make_project, sandbox)
    first = age(first, WEEK_NS + HOUR_NS)  # made more than a week ago, checked since
    set_checked(first, 2 * HOUR_NS)
    edit(project, "second")
    installed(project)
    assert envs(sandbox) == [first]


def test_a_half_made_environment_is_never_used(make_project: MakeProject, sandbox: Sandbox) -> None:
    project, first = built_once(make_project, sandbox)
    (first / buildenv.COMPLETE).unlink()  # as if killed before the install finished
    installed(project)
    assert len(envs(sandbox)) == 2
    assert not (first / buildenv.COMPLETE).exists()


def with_backend(project: Path, module: str, source: str) -> Path:
    """``project`` built by the in-tree backend ``module`` (in ``_backend``), of ``source``."""
    (project / "_backend").mkdir()
    (project / "_backend" / f"{module}.py").write_text(source, encoding="utf-8")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'build-backend = "setuptools.build_meta"',
            f'build-backend = "{module}"\nbackend-path = ["_backend"]',
        )
    )
    return project


def test_requirements_asked_for_at_build_time_never_enter_the_shared_environment(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = with_backend(make_project("setuptools_cli"), "asking", ASKING_BACKEND)
    installed(project)
    by_contents = {
        tuple(json.loads((env / buildenv.COMPLETE).read_text())): env for env in envs(sandbox)
    }
    assert sorted(by_contents) == [("packaging", "setuptools>=64"), ("setuptools>=64",)]
    static = by_contents[("setuptools>=64",)]
    assert not list(static.glob("lib/python*/site-packages/packaging"))
    assert "stcli.cli" in sandbox.run_tool("stcli")


def test_an_unusable_cache_means_a_throw_away_environment(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_directory = tmp_path / "cache-file"
    not_a_directory.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_directory))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    project = make_project("setuptools_cli")
    installed(project)
    assert "stcli.cli" in sandbox.run_tool("stcli")
    assert not_a_directory.read_text(encoding="utf-8") == ""
    assert os.listdir(scratch) == []  # the throw-away environment went with the build


# -- the interpreter, for wheels built for one ---------------------------------------------------

PLATFORM_SETUP = """\
from setuptools import setup
from setuptools.dist import Distribution


class ForOneInterpreter(Distribution):
    def has_ext_modules(self):  # tags the wheel cpXY-cpXY-<platform>, as a C extension would
        return True


setup(distclass=ForOneInterpreter)
"""


def make_platform_project(make_project: MakeProject) -> Path:
    project = make_project("setuptools_cli")
    (project / "setup.py").write_text(PLATFORM_SETUP, encoding="utf-8")
    return project


def stamp_of(project: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((project / "dist" / ".freshinstall.json").read_text())
    return data


def test_a_platform_wheel_is_rebuilt_when_the_interpreter_choice_changes(
    make_project: MakeProject, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_platform_project(make_project)
    installed(project)
    first = stamp_of(project)
    assert "-none-any" not in str(first["wheel"])
    assert first["interpreter"]

    again = freshinstall(project)
    assert again.code == 0
    assert "up to date" in again.stdout

    # uv would now choose the interpreter by UV_PYTHON: freshinstall cannot tell it is the same
    # one without asking, so it builds again, and is then up to date with the new choice.
    monkeypatch.setenv("UV_PYTHON", sys.executable)
    status = freshinstall("status", project)
    assert status.code == 1
    assert "built for another interpreter" in status.stdout
    rebuilt = freshinstall("--json", project)
    assert rebuilt.code == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["rebuilt"] is True
    assert freshinstall("status", project).code == 0
    assert "stcli.cli" in sandbox.run_tool("stcli")


def test_a_pure_wheel_ignores_the_interpreter_choice(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project("setuptools_cli")
    installed(project)
    assert stamp_of(project)["interpreter"] == ""
    monkeypatch.setenv("UV_PYTHON", sys.executable)
    result = freshinstall(project)
    assert result.code == 0
    assert "up to date" in result.stdout


def test_a_recorded_interpreter_that_is_gone_or_unreadable_means_a_rebuild(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("", encoding="utf-8")
    recorded = buildenv.interpreter_identity(None, str(python))
    assert not buildenv.interpreter_changed(recorded, None)
    assert buildenv.interpreter_changed(recorded, "3.11")  # another --python
    python.write_text("replaced", encoding="utf-8")
    assert buildenv.interpreter_changed(recorded, None)
    assert buildenv.interpreter_changed("not json", None)
    assert buildenv.interpreter_changed("[1, 2, 3]", None)


@pytest.mark.parametrize("recorded", ["1", "null", '"x"', "[1, 2]", "[1, 2, 3]", "[" * 100_000])
def test_a_crafted_interpreter_record_means_a_rebuild_never_a_crash(recorded: str) -> None:
    assert buildenv.interpreter_changed(recorded, None)


def test_an_interpreter_link_pointed_at_another_python_is_a_change(tmp_path: Path) -> None:
    first, second = tmp_path / "python3.11", tmp_path / "python3.12"
    first.write_text("one", encoding="utf-8")
    second.write_text("two", encoding="utf-8")
    link = tmp_path / "python3"
    link.symlink_to(first)
    recorded = buildenv.interpreter_identity(str(link), str(link))
    assert not buildenv.interpreter_changed(recorded, str(link))
    link.unlink()
    link.symlink_to(second)  # an alternatives / Homebrew / pyenv switch: same name, other file
    assert buildenv.interpreter_changed(recorded, str(link))


def test_a_kept_environment_is_reused_only_on_the_very_interpreter_it_was_made_on(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "python3.11", tmp_path / "python3.12"
    first.write_text("one", encoding="utf-8")
    second.write_text("two", encoding="utf-8")
    link = tmp_path / "python3"
    link.symlink_to(first)
    cache, now = tmp_path / "cache", time.time_ns()
    env = cache / f"key-{now - 10**9}"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(link)  # as uv makes it: to the name it chose
    identity = buildenv._dumps(buildenv._file_identity(str(link)))
    (env / buildenv.INTERPRETER).write_bytes(identity)
    (env / buildenv.COMPLETE).write_text("[]\n", encoding="utf-8")
    assert buildenv._reusable(cache, "key", now) == env
    link.unlink()
    link.symlink_to(second)
    assert buildenv._reusable(cache, "key", now) is None


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", "/home/someone")
    assert buildenv.cache_dir() == Path("/home/someone/.cache/freshinstall/build-envs")


def test_uv_configuration_files_are_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    cache = tmp_path / "cache" / "freshinstall" / "build-envs"
    before = buildenv._key(["setuptools"], "uv", None, cache)
    (tmp_path / "config" / "uv").mkdir(parents=True)
    (tmp_path / "config" / "uv" / "uv.toml").write_text("[pip]\nindex-url = 'x'\n")
    user = buildenv._key(["setuptools"], "uv", None, cache)
    cache.mkdir(parents=True)
    (tmp_path / "cache" / "uv.toml").write_text("[pip]\nindex-url = 'y'\n")
    above = buildenv._key(["setuptools"], "uv", None, cache)
    assert len({before, user, above}) == 3


def test_a_full_cache_disk_falls_back_to_a_throw_away_environment(
    make_project: MakeProject,
    sandbox: Sandbox,
    small_fs: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(small_fs))  # a few hundred KiB: no room for an env
    project = make_project("setuptools_cli")
    installed(project)
    assert "stcli.cli" in sandbox.run_tool("stcli")
    assert not list((small_fs / "freshinstall" / "build-envs").glob("*-*"))  # none half made


def test_only_pins_by_name_and_version_can_be_compared() -> None:
    assert buildenv._pins(["Trove_Classifiers==2026.01.0", "", "  setuptools==84.2.1  "]) == {
        "trove-classifiers": "2026.1.0",
        "setuptools": "84.2.1",
    }
    assert buildenv._pins([]) == {}
    # uv.toml's generate-hashes and no-strip-extras change the output, not the pins:
    hashed = ["setuptools==84.2.1 \\", "    --hash=sha256:0123", "pkg[extra]==1.0", "# note"]
    assert buildenv._pins(hashed) == {"setuptools": "84.2.1", "pkg": "1.0"}
    for line in [
        "mybackend @ https://example.invalid/mybackend-1.0-py3-none-any.whl",
        "mybackend @ file:///somewhere",
        "--index-url https://example.invalid/simple",
        "setuptools==84.2.1 ; python_version < '4'",
        "setuptools>=64",
        "==1.0",
    ]:
        assert buildenv._pins(["packaging==26.0", line]) is None, line


@pytest.mark.parametrize(
    "site", ["lib/python3.11/site-packages", "lib/pypy3.10/site-packages", "Lib/site-packages"]
)
def test_what_an_environment_holds_is_read_from_its_dist_info_names(
    tmp_path: Path, site: str
) -> None:
    packages = tmp_path / "env" / site
    for name in [
        "zope.interface-7.0.dist-info",
        "Trove_Classifiers-2026.1.0.dist-info",
        "local_thing-1.0+abc.dist-info",
        "setuptools",
    ]:
        (packages / name).mkdir(parents=True)
    assert buildenv._installed(tmp_path / "env") == {
        "zope-interface": "7.0",
        "trove-classifiers": "2026.1.0",
        "local-thing": "1.0+abc",
    }
    assert buildenv._installed(tmp_path / "nothing") is None


def test_a_replaced_environment_goes_after_a_day_unchecked_the_newest_after_a_week(
    tmp_path: Path,
) -> None:
    cache, now = tmp_path / "cache", time.time_ns()

    def environment(name: str, checked_ago: int) -> Path:
        path = cache / name
        path.mkdir(parents=True)
        (path / buildenv.COMPLETE).write_text("[]\n", encoding="utf-8")
        os.utime(path / buildenv.COMPLETE, ns=(now - checked_ago,) * 2)
        return path

    day = 24 * HOUR_NS
    environment(f"key-{now - 4 * day}", day + HOUR_NS)  # replaced, unchecked for a day: goes
    # Replaced and unchecked for days, but used as it was (offline) an hour ago: stays.
    replaced_recently_used = environment(f"key-{now - 3 * day}", 2 * day)
    (replaced_recently_used / buildenv.USED).touch()
    os.utime(replaced_recently_used / buildenv.USED, ns=(now - HOUR_NS,) * 2)
    replaced_recently_checked = environment(f"key-{now - 2 * day}", day - HOUR_NS)
    newest = environment(f"key-{now - day}", 6 * day)
    alone = environment(f"other-{now - 9 * day}", 6 * day)
    environment(f"third-{now - 9 * day}", WEEK_NS + HOUR_NS)  # unchecked for a week: goes
    not_replaced = environment(f"fourth-{now - 3 * day}", 2 * day)
    half_made = cache / f"fourth-{now - HOUR_NS}"  # killed while being made: replaces nothing
    half_made.mkdir()
    buildenv._delete_unused(cache, "key", now)
    kept = sorted(path for path in cache.iterdir() if path.is_dir())
    expected = [replaced_recently_used, replaced_recently_checked, newest, alone]
    assert kept == sorted([*expected, not_replaced, half_made])


def test_an_environment_whose_check_cannot_be_recorded_is_not_handed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from freshinstall.install import find_uv

    def make(scratch: str) -> Path:
        (tmp_path / scratch).mkdir()
        env = buildenv.environment(
            ["setuptools>=64"], tmp_path / scratch, uv=find_uv(), python=None, stream=False
        )
        return env.path

    first = make("one")
    set_checked(first, HOUR_NS + 10**9)

    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # Handed out with its old check time, another build could delete it while this one uses it.
    monkeypatch.setattr(os, "utime", read_only)
    second = make("two")
    assert second != first
    assert (second / buildenv.COMPLETE).is_file()


#: An in-tree backend whose first hook, before importing setuptools, waits until setuptools has
#: bytecode in the environment: only a process beside the hook can have written it. It records
#: the file and its inode, which import would change by writing the file anew.
WAITING_BACKEND = """\
import importlib.util, os, time


def _wait_for_bytecode():
    cache = importlib.util.cache_from_source(importlib.util.find_spec("setuptools").origin)
    deadline = time.monotonic() + 60
    while not os.path.exists(cache):
        if time.monotonic() > deadline:
            raise RuntimeError("no bytecode was written beside the hook")
        time.sleep(0.02)
    with open(os.environ["SEEN_BYTECODE"], "w", encoding="utf-8") as seen:
        seen.write(f"{cache}\\n{os.stat(cache).st_ino}\\n")


def get_requires_for_build_wheel(config_settings=None):
    _wait_for_bytecode()
    from setuptools import build_meta

    return build_meta.get_requires_for_build_wheel(config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    from setuptools import build_meta

    return build_meta.build_wheel(wheel_directory, config_settings, metadata_directory)
"""


def pyc_header(cache: Path) -> tuple[int, int, int]:
    """The flags, source mtime and source size of a .pyc file (PEP 552)."""
    data = cache.read_bytes()[4:16]
    flags, mtime, size = (int.from_bytes(data[at : at + 4], "little") for at in (0, 4, 8))
    return flags, mtime, size


def test_a_new_environment_is_compiled_beside_the_first_hook_as_import_would(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    # py_compile's default would then be hash-checked files, which import never writes.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "315532800")
    seen = tmp_path / "seen"
    monkeypatch.setenv("SEEN_BYTECODE", str(seen))
    project = with_backend(make_project("setuptools_cli"), "waiting", WAITING_BACKEND)
    first = freshinstall("--force", "-v", project, timeout=300)
    assert first.code == 0, first.stderr
    assert "py_compile" in first.stderr  # the helper's command line, shown with -v
    name, inode = seen.read_text(encoding="utf-8").splitlines()
    cache = Path(name)
    assert cache.stat().st_ino == int(inode)  # the hook's import took the file as it was
    flags, _, _ = pyc_header(cache)
    assert flags == 0  # timestamp-based, as import writes it

    again = freshinstall("--force", "-v", project, timeout=300)
    assert again.code == 0, again.stderr
    assert "py_compile" not in again.stderr  # a kept environment was compiled by its first build
    assert "stcli.cli" in sandbox.run_tool("stcli")


def made_venv(path: Path, modules: int) -> tuple[buildenv.BuildEnv, Path]:
    """A virtual environment of this Python whose site-packages holds ``modules`` modules."""

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    (site,) = path.glob("lib/python*/site-packages")
    for number in range(modules):
        (site / f"module{number}.py").write_text(f"VALUE = {number}\n", encoding="utf-8")
    return buildenv.BuildEnv(path, "uv", stream=True, new=True), site


def writing_bytecode() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def test_the_compiler_writes_what_import_takes_as_it_is(tmp_path: Path) -> None:

    env, site = made_venv(tmp_path / "env", 20)
    (site / "package").mkdir()
    (site / "package" / "__init__.py").write_text("", encoding="utf-8")
    (site / "package" / "inner.py").write_text("VALUE = 'inner'\n", encoding="utf-8")
    environ = {**writing_bytecode(), "SOURCE_DATE_EPOCH": "315532800"}
    expected = [*site.glob("*.py"), *site.glob("package/*.py")]
    with buildenv.compiling(env, environ):
        deadline = time.monotonic() + 120
        while not all(Path(importlib.util.cache_from_source(path)).exists() for path in expected):
            assert time.monotonic() < deadline, "the compiler did not finish"
            time.sleep(0.02)
    caches = {path: Path(importlib.util.cache_from_source(path)) for path in expected}
    for path, cache in caches.items():
        info = path.stat()
        assert pyc_header(cache) == (0, int(info.st_mtime) & 0xFFFFFFFF, info.st_size)
    inodes = {cache: cache.stat().st_ino for cache in caches.values()}
    script = "import package.inner, module0, module19"
    subprocess.run([env.python_executable, "-c", script], env=environ, check=True)
    assert {cache: cache.stat().st_ino for cache in caches.values()} == inodes


def started_compilers(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The compilers buildenv.compiling starts from now on."""
    started: list[subprocess.Popen[bytes]] = []
    real = _process.start_quiet

    def start(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes] | None:
        process = real(*args, **kwargs)
        if process is not None:
            started.append(process)
        return process

    monkeypatch.setattr(buildenv, "start_quiet", start)
    return started


@pytest.mark.parametrize("failing", [False, True])
def test_the_compiler_has_stopped_when_the_build_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: bool
) -> None:
    started = started_compilers(monkeypatch)
    env, site = made_venv(tmp_path / "env", 2000)
    with contextlib.suppress(KeyError), buildenv.compiling(env, writing_bytecode()):
        if failing:
            raise KeyError("the build failed")
    (compiler,) = started
    assert compiler.returncode == 0  # ended, and waited for, before the build goes on
    assert len(list(site.glob("__pycache__/*.pyc"))) < 2000  # stopped, not finished


@pytest.mark.parametrize(
    "case", ["kept environment", "no bytecode", "relative pycache prefix", "one cpu"]
)
def test_no_compiler_for_a_kept_environment_without_bytecode_or_a_second_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    started = started_compilers(monkeypatch)
    env, _ = made_venv(tmp_path / "env", 1)
    environ = writing_bytecode()
    if case == "kept environment":
        env.new = False
    elif case == "no bytecode":
        environ["PYTHONDONTWRITEBYTECODE"] = "1"
    elif case == "relative pycache prefix":  # relative to the hooks' directory, not the helper's
        environ["PYTHONPYCACHEPREFIX"] = "pycache"
    else:
        monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0}, raising=False)
        monkeypatch.setattr(os, "cpu_count", lambda: 1)
    with buildenv.compiling(env, environ):
        pass
    assert started == []
