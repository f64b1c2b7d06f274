"""Reliability: killed and interrupted runs, failed installs, bad stamps, unwritable dist/, bad uv.

Every test runs freshinstall as a real process on a real project. Runs that must be caught in the
middle of a build use a project whose in-tree PEP 517 backend (``backend-path = ["."]``) is
setuptools, except that ``build_wheel`` first writes a marker file and then waits, for as long
as an environment variable says or until a release file appears. The tests poll for the marker,
so they act while the build is known to be under way, without fixed sleeps.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from freshinstall import buildenv
from tests.conftest import MakeProject
from tests.helpers import (
    Result,
    Sandbox,
    first_on_path,
    freshinstall,
    kill_groups,
    start_group,
    uv,
)

pytestmark = pytest.mark.slow

STCLI_MODULES = "stcli.cli stcli.commands stcli.commands.hello stcli.utils"

#: The prefix of the environment variables the slow backend of the main project reads. Not
#: FRESHINSTALL_*: freshinstall rejects unknown variables of its own; and nothing it fingerprints.
MAIN = "SLOW_BACKEND_"
#: The same for the slow dependency installed with ``--with`` (built by uv during the install).
DEP = "SLOW_DEPENDENCY_"

SLOW_BACKEND = '''\
"""setuptools, except that build_wheel announces itself and can be made to wait."""

import os
import time
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403

PREFIX = {prefix!r}


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    marker = os.environ.get(PREFIX + "MARKER")
    if marker:
        Path(marker + ".part").write_text(str(os.getpid()))
        os.replace(marker + ".part", marker)
    release = os.environ.get(PREFIX + "RELEASE")
    deadline = time.monotonic() + float(os.environ.get(PREFIX + "SLEEP") or 0)
    while time.monotonic() < deadline and not (release and os.path.exists(release)):
        time.sleep(0.05)
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
'''

SLOW_BUILD_SYSTEM = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "slow_backend"
backend-path = ["."]
"""

Launch = Callable[..., subprocess.Popen[str]]


# -- fixtures and helpers -----------------------------------------------------------------------


def slow_project(make_project: MakeProject, dest: str, *, name: str = "stcli") -> Path:
    """tests/packages/setuptools_cli with the slow in-tree backend (and optionally renamed)."""
    project = make_project("setuptools_cli", dest=dest)
    (project / "slow_backend.py").write_text(SLOW_BACKEND.format(prefix=MAIN))
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    _, _, rest = text.partition("[project]")
    rest = rest.replace('name = "stcli"', f'name = "{name}"')
    rest = rest.replace('stcli = "stcli.cli:main"', f'{name} = "stcli.cli:main"')
    pyproject.write_text(f"{SLOW_BUILD_SYSTEM}\n[project]{rest}")
    return project


def slow_dependency(root: Path) -> str:
    """A tiny local project whose build (by uv, during ``uv tool install --with``) can wait."""
    root.mkdir()
    (root / "slow_backend.py").write_text(SLOW_BACKEND.format(prefix=DEP))
    (root / "slowdep.py").write_text("X = 1\n")
    (root / "pyproject.toml").write_text(
        f'{SLOW_BUILD_SYSTEM}\n[project]\nname = "slowdep"\nversion = "1.0"\n\n'
        '[tool.setuptools]\npy-modules = ["slowdep"]\n'
    )
    return f"slowdep @ {root.as_uri()}"


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start freshinstall in its own process group; whatever is left of it is killed at the end.

    Each run gets its own TMPDIR under tmp_path, so the scratch directories of killed runs stay
    inside the test's directory (and can be inspected).
    """
    started: list[subprocess.Popen[str]] = []

    def start(
        *args: str | os.PathLike[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        scratch = tmp_path / f"scratch-{len(started)}"
        scratch.mkdir()
        process = start_group(
            [sys.executable, "-m", "freshinstall", *(os.fspath(arg) for arg in args)],
            {**os.environ, "TMPDIR": str(scratch), **(env or {})},
        )
        started.append(process)
        return process

    yield start
    kill_groups(started)


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Poll until ``path`` exists; fail early if ``process`` ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"freshinstall exited {process.returncode} first:\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name} did not appear within {timeout}s")
        time.sleep(0.05)


def finish(process: subprocess.Popen[str], timeout: float = 60) -> Result:
    out, err = process.communicate(timeout=timeout)
    return Result(process.returncode, out, err)


def install_json(project: Path, *args: str) -> dict[str, Any]:
    result = freshinstall("--json", *args, project, timeout=120)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def current_fingerprint(project: Path) -> str:
    result = freshinstall("fingerprint", project)
    assert result.code == 0, result.stderr
    return result.stdout.strip()


def read_stamp(project: Path) -> dict[str, Any] | None:
    path = project / "dist" / ".freshinstall.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def shout_upper(project: Path) -> None:
    """Change what the installed tool prints: its module list in capitals."""
    (project / "src/stcli/utils.py").write_text(
        "def shout(text: str) -> str:\n    return text.upper()\n"
    )


def the_error_line(result: Result) -> str:
    """Honest failure: no traceback, exactly one ``error:`` line, and it is the last line."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert lines[-1] == errors[0], result.stderr
    return errors[0]


def assert_no_claim_for(project: Path, fingerprint: str) -> None:
    """No stamp in dist/ says that ``fingerprint`` was installed anywhere."""
    stamp = read_stamp(project)
    assert stamp is None or stamp["fingerprint"] != fingerprint or not stamp["installs"], stamp


def assert_trusted_wheel_is_whole(project: Path) -> None:
    """A wheel the stamp vouches for (by its sha256) is a complete, readable zip."""
    stamp = read_stamp(project)
    if stamp is None:
        return
    wheel = project / "dist" / stamp["wheel"]
    if wheel.exists() and hashlib.sha256(wheel.read_bytes()).hexdigest() == stamp["wheel_sha256"]:
        with zipfile.ZipFile(wheel) as archive:
            assert archive.testzip() is None


def assert_not_up_to_date(project: Path, *args: str) -> None:
    dry = freshinstall("--dry-run", "--json", *args, project)
    assert dry.code == 0, dry.stderr
    assert json.loads(dry.stdout)["reason"] != "up to date"


def leftover_tmp_files(project: Path) -> list[str]:
    return sorted(path.name for path in (project / "dist").glob("*.tmp"))


# -- 1. a lock left by a killed run -------------------------------------------------------------


def test_lock_left_by_a_killed_run_does_not_block_the_next_run(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, launch: Launch
) -> None:
    import filelock

    project = slow_project(make_project, "slow")
    marker = tmp_path / "building"
    first = launch(project, env={f"{MAIN}SLEEP": "600", f"{MAIN}MARKER": str(marker)})
    wait_for(marker, first)
    lock = project / "dist" / ".freshinstall.lock"
    with pytest.raises(filelock.Timeout):  # the run really holds the lock while it builds
        filelock.FileLock(lock).acquire(timeout=0)

    # Kill only freshinstall itself: its backend lives on, and must not keep the lock alive.
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    backend = int(marker.read_text())
    os.kill(backend, 0)  # still running, an orphan holding whatever it inherited
    assert lock.exists()

    result = freshinstall("--json", project, timeout=60)  # a blocked run would time out
    assert result.code == 0, result.stderr
    assert "waiting for another freshinstall run" not in result.stderr
    assert json.loads(result.stdout)["rebuilt"] is True
    assert sandbox.run_tool("stcli") == STCLI_MODULES


# -- 2. different projects do not wait for each other ------------------------------------------


def test_two_projects_build_at_the_same_time(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, launch: Launch
) -> None:
    # Each build waits up to SLEEP seconds, or until `release` exists. The release is created
    # only once both builds are under way at the same moment, so if one project waited for the
    # other the second marker could not appear before the first build's SLEEP ran out.
    sleep = 45.0
    release = tmp_path / "release"
    projects = {
        "stcli": slow_project(make_project, "one"),
        "stcli2": slow_project(make_project, "two", name="stcli2"),
    }
    start = time.monotonic()
    runs = {
        name: launch(
            "--json",
            project,
            env={
                f"{MAIN}SLEEP": str(sleep),
                f"{MAIN}RELEASE": str(release),
                f"{MAIN}MARKER": str(tmp_path / f"building-{name}"),
            },
        )
        for name, project in projects.items()
    }
    for name, process in runs.items():
        wait_for(tmp_path / f"building-{name}", process, timeout=sleep - 5)
    assert all(process.poll() is None for process in runs.values())
    release.touch()
    results = {name: finish(process) for name, process in runs.items()}
    wall = time.monotonic() - start

    for name, result in results.items():
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)["rebuilt"] is True
        assert sandbox.run_tool(name) == STCLI_MODULES
    assert wall < sleep  # neither build ran out its SLEEP: far less than the sum of the two


# -- 3. interrupted builds and installs ---------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "whole_group"),
    [
        pytest.param(signal.SIGKILL, True, id="sigkill-group"),
        pytest.param(signal.SIGKILL, False, id="sigkill-process"),
        pytest.param(signal.SIGINT, False, id="sigint-process"),
        pytest.param(signal.SIGINT, True, id="sigint-group-like-ctrl-c"),
    ],
)
def test_interrupted_build_is_redone_by_the_next_run(
    make_project: MakeProject,
    sandbox: Sandbox,
    tmp_path: Path,
    launch: Launch,
    signum: signal.Signals,
    whole_group: bool,
) -> None:
    project = slow_project(make_project, "slow")
    install_json(project)
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    shout_upper(project)
    changed = current_fingerprint(project)

    marker = tmp_path / "building"
    run = launch(project, env={f"{MAIN}SLEEP": "600", f"{MAIN}MARKER": str(marker)})
    wait_for(marker, run)
    if whole_group:
        os.killpg(run.pid, signum)
    else:
        os.kill(run.pid, signum)
    interrupted = finish(run, timeout=30)

    if signum == signal.SIGINT:
        assert interrupted.code == 130, interrupted
        assert the_error_line(interrupted) == "error: interrupted"
        assert interrupted.stdout == ""
        # A clean interruption also removes its scratch directory.
        assert list((tmp_path / "scratch-0").iterdir()) == []
    else:
        assert interrupted.code == -signal.SIGKILL
    # The previous install keeps working, and nothing claims the new source is installed.
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    assert_no_claim_for(project, changed)
    assert_trusted_wheel_is_whole(project)
    assert leftover_tmp_files(project) == []
    assert_not_up_to_date(project)

    data = install_json(project)
    assert (data["rebuilt"], data["installed"]) == (True, True)
    assert sandbox.run_tool("stcli") == STCLI_MODULES.upper()
    assert install_json(project)["reason"] == "up to date"


def test_install_killed_half_way_is_redone_by_the_next_run(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, launch: Launch
) -> None:
    # The install step is made slow by a `--with` requirement that uv must build itself, with
    # the slow backend: when its marker appears, freshinstall's build is over and
    # `uv tool install` is running.
    project = make_project("setuptools_cli")
    requirement = slow_dependency(tmp_path / "slowdep")
    install_json(project)
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    shout_upper(project)
    changed = current_fingerprint(project)

    marker = tmp_path / "installing"
    run = launch(
        "--with",
        requirement,
        project,
        env={f"{DEP}SLEEP": "600", f"{DEP}MARKER": str(marker)},
    )
    wait_for(marker, run)
    os.killpg(run.pid, signal.SIGKILL)  # freshinstall, uv and the dependency's build
    assert finish(run, timeout=30).code == -signal.SIGKILL

    assert_no_claim_for(project, changed)
    stamp = read_stamp(project)
    assert stamp is not None
    assert stamp["installs"] == []  # the claim was withdrawn before uv touched the install
    assert_trusted_wheel_is_whole(project)
    assert leftover_tmp_files(project) == []
    assert_not_up_to_date(project, "--with", requirement)

    data = install_json(project, "--with", requirement)
    assert data["installed"] is True
    assert sandbox.run_tool("stcli") == STCLI_MODULES.upper()
    assert install_json(project, "--with", requirement)["reason"] == "up to date"


# -- 4. a failed install leaves no stamp claiming it --------------------------------------------


@pytest.mark.parametrize("source_changed", [True, False], ids=["source-changed", "same-source"])
def test_failed_install_claims_nothing_and_keeps_the_previous_install(
    make_project: MakeProject, sandbox: Sandbox, source_changed: bool
) -> None:
    missing = "freshinstall-no-such-package-xyz"
    project = make_project("setuptools_cli")
    install_json(project)
    if source_changed:
        shout_upper(project)
    fingerprint = current_fingerprint(project)

    result = freshinstall("--with", missing, project, timeout=120)
    assert result.code == 1, result
    # uv's own output (itself starting with "error:") is replayed first, then the reason.
    assert "Traceback" not in result.stderr, result.stderr
    *replayed, line = result.stderr.rstrip("\n").splitlines()
    assert line.startswith("error: install failed: uv tool install: "), result.stderr
    assert missing in "\n".join(replayed)
    assert result.stdout == ""

    stamp = read_stamp(project)
    assert stamp is not None
    assert not any(missing in install["options"] for install in stamp["installs"])
    if source_changed:
        assert_no_claim_for(project, fingerprint)
    assert sandbox.run_tool("stcli") == STCLI_MODULES  # the previous install still works
    assert_not_up_to_date(project, "--with", missing)

    data = install_json(project)
    assert data["installed"] is True
    expected = STCLI_MODULES.upper() if source_changed else STCLI_MODULES
    assert sandbox.run_tool("stcli") == expected


# -- 5. dist/ cannot be written -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["regular-file", "dangling-symlink"])
def test_unwritable_dist_is_one_clean_error(
    make_project: MakeProject, tmp_path: Path, kind: str
) -> None:
    # Tests run as root, where a read-only mode does not stop writes: use a `dist` that no
    # directory can be made at instead.
    project = make_project("setuptools_cli")
    dist = project / "dist"
    if kind == "regular-file":
        dist.write_bytes(b"not a directory\n")
    else:
        dist.symlink_to(tmp_path / "nowhere" / "dist")

    result = freshinstall(project, timeout=120)
    assert result.code == 1, result
    assert the_error_line(result).startswith("error: ")
    assert result.stdout == ""
    if kind == "regular-file":
        assert dist.is_file()
        assert dist.read_bytes() == b"not a directory\n"
    else:
        assert dist.is_symlink()
        assert not (tmp_path / "nowhere").exists()


def test_stamp_that_cannot_be_replaced_is_one_clean_error(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    blocker = project / "dist" / ".freshinstall.json"
    blocker.mkdir(parents=True)  # a directory where the stamp goes: the rename must fail
    (blocker / "keep").write_text("mine\n")

    result = freshinstall(project, timeout=120)
    assert result.code == 1, result
    assert "stamp" in the_error_line(result)
    assert (blocker / "keep").read_text() == "mine\n"
    assert sorted(p.name for p in blocker.iterdir()) == ["keep"]
    assert leftover_tmp_files(project) == []
    assert_not_up_to_date(project)


# -- 6. the source changes while the build runs -------------------------------------------------


@pytest.mark.parametrize("change", ["edit", "delete"])
def test_source_changed_during_the_build_is_rebuilt_next_time(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, launch: Launch, change: str
) -> None:
    project = slow_project(make_project, "slow")
    before = current_fingerprint(project)
    marker, release = tmp_path / "building", tmp_path / "release"
    run = launch(
        "--json",
        project,
        env={
            f"{MAIN}SLEEP": "60",
            f"{MAIN}MARKER": str(marker),
            f"{MAIN}RELEASE": str(release),
        },
    )
    wait_for(marker, run)
    if change == "edit":
        shout_upper(project)
        expected = STCLI_MODULES.upper()
    else:
        (project / "src/stcli/commands/hello.py").unlink()
        expected = "stcli.cli stcli.commands stcli.utils"
    after = current_fingerprint(project)
    assert after != before
    release.touch()
    result = finish(run)
    assert result.code == 0, result.stderr

    # The stamp describes what was built (the tree as it was copied), not the tree as it is now.
    stamp = read_stamp(project)
    assert stamp is not None
    assert stamp["fingerprint"] == before
    assert json.loads(result.stdout)["fingerprint"] == before
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    assert_not_up_to_date(project)

    data = install_json(project)
    assert (data["rebuilt"], data["installed"]) == (True, True)
    assert data["fingerprint"] == after
    assert sandbox.run_tool("stcli") == expected


# -- 7. corrupt and hand-edited stamps ----------------------------------------------------------


def _garbage(stamp: bytes) -> bytes:
    return b"\x00\xff\xfe{garbage\x80\n" * 3


def _truncated(stamp: bytes) -> bytes:
    return stamp[: len(stamp) // 2]


def _edited_fingerprint(stamp: bytes) -> bytes:
    data = json.loads(stamp)
    data["fingerprint"] = "0" * 64
    return json.dumps(data, indent=2).encode()


def _not_an_object(stamp: bytes) -> bytes:
    return b'["schema", 1]\n'


@pytest.mark.parametrize(
    "spoil", [_garbage, _truncated, _edited_fingerprint, _not_an_object], ids=lambda f: f.__name__
)
def test_bad_stamp_means_a_rebuild_not_a_crash(
    make_project: MakeProject, sandbox: Sandbox, spoil: Callable[[bytes], bytes]
) -> None:
    project = make_project("setuptools_cli")
    first = install_json(project)
    path = project / "dist" / ".freshinstall.json"
    path.write_bytes(spoil(path.read_bytes()))

    result = freshinstall("--json", project, timeout=120)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert (data["rebuilt"], data["installed"]) == (True, True)
    stamp = read_stamp(project)
    assert stamp is not None
    assert stamp["fingerprint"] == first["fingerprint"]
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    assert install_json(project)["reason"] == "up to date"


# -- 8. uv failing ------------------------------------------------------------------------------

FAKE_UV = """\
#!/bin/sh
case "$1 $2" in
  {pattern}*)
    echo "fake-uv: refusing to run '$1 $2'" >&2
    echo "fake-uv: $1 is broken" >&2
    exit 1;;
esac
exec {real} "$@"
"""


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        pytest.param("", "install failed", id="every-command"),
        pytest.param("venv ", "build failed", id="uv-venv"),
        pytest.param("pip install", "build failed", id="uv-pip-install"),
        pytest.param("tool install", "install failed", id="uv-tool-install"),
    ],
)
def test_failing_uv_is_one_clean_error(
    make_project: MakeProject,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pattern: str,
    reason: str,
) -> None:
    from freshinstall.install import find_uv

    script = FAKE_UV.format(pattern=shlex.quote(pattern), real=shlex.quote(find_uv()))
    first_on_path(monkeypatch, tmp_path / "fake-bin", "uv", script)
    project = make_project("setuptools_cli")

    result = freshinstall(project, timeout=120)
    assert result.code == 1, result
    line = the_error_line(result)
    assert line.startswith(f"error: {reason}: "), line
    assert "is broken" in line
    assert "fake-uv: refusing to run" in result.stderr  # uv's output, replayed
    stamp = read_stamp(project)
    assert stamp is None or stamp["installs"] == []
    assert not (sandbox.bin / "stcli").exists()


# -- 9. a full disk -----------------------------------------------------------------------------


def fill_up(fs: Path) -> Path:
    """Write a file until ``fs`` has no byte left; return it (delete it to free the space)."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    assert not _can_write_a_byte(fs / "probe")
    return filler


def _can_write_a_byte(path: Path) -> bool:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x")
        os.fsync(fd)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        return False
    finally:
        os.close(fd)
        path.unlink()
    return True


@pytest.mark.parametrize("blocked", ["wheel", "stamp"])
def test_full_disk_is_one_clean_error_and_corrupts_nothing(
    make_project: MakeProject, sandbox: Sandbox, small_fs: Path, blocked: str
) -> None:
    project = make_project("setuptools_cli")
    (small_fs / "dist").mkdir()
    (project / "dist").symlink_to(small_fs / "dist")
    install_json(project)
    stamp_path = project / "dist" / ".freshinstall.json"
    before = stamp_path.read_bytes()
    if blocked == "wheel":
        # New source: the build (in TMPDIR, on a roomy disk) works; its wheel cannot be written.
        shout_upper(project)
        args: tuple[str, ...] = ()
    else:
        # Only an install option changes: no build; the first write is the stamp's, withdrawing
        # the claim for this tool before uv touches it.
        args = ("--python", sys.executable)
    filler = fill_up(small_fs)

    result = freshinstall(*args, project, timeout=120)
    assert result.code == 1, result
    line = the_error_line(result)
    assert "No space left on device" in line, line
    assert (".freshinstall.json" if blocked == "stamp" else "wheel") in line, line
    assert result.stdout == ""
    assert stamp_path.read_bytes() == before  # the previous stamp, whole
    assert_trusted_wheel_is_whole(project)
    assert leftover_tmp_files(project) == []
    assert sorted(p.name for p in small_fs.iterdir()) == ["dist", "filler"]
    assert sandbox.run_tool("stcli") == STCLI_MODULES  # the previous install still works

    if blocked == "wheel":
        assert_not_up_to_date(project)
        filler.unlink()
        data = install_json(project)
        assert (data["rebuilt"], data["installed"]) == (True, True)
        assert sandbox.run_tool("stcli") == STCLI_MODULES.upper()
    else:
        # Nothing was installed, so the untouched stamp still tells the truth, disk full or not.
        assert install_json(project)["reason"] == "up to date"
        filler.unlink()
        data = install_json(project, *args)
        assert (data["rebuilt"], data["installed"]) == (False, True)
        assert sandbox.run_tool("stcli") == STCLI_MODULES


# -- 10. very long paths and names a shell would mangle ----------------------------------------

#: Spaces, both quotes, command substitutions and shell operators; not " ;" or "#" (see below).
ODD = "odd 'single' \"double\" $(touch pwned) `touch pwned2` &|"


def assert_nothing_ran(*places: Path) -> None:
    for place in places:
        assert not (place / "pwned").exists()
        assert not (place / "pwned2").exists()


def test_long_and_awkward_paths_build_install_and_rebuild(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path
) -> None:
    project = make_project("setuptools_cli", dest=f"project {ODD}")
    package = project / "src" / "stcli"
    odd_dir = package / f"dir {ODD}"
    odd_dir.mkdir()
    (odd_dir / "__init__.py").touch()
    odd_module = odd_dir / f"mod {ODD}.py"
    odd_module.write_text('WHO = "odd"\n')
    deep = package
    for level in range(5):
        deep /= f"level{level}_" + "d" * 200
        deep.mkdir()
        (deep / "__init__.py").touch()
    long_module = deep / ("m" * 200 + ".py")
    long_module.write_text('WHO = "long"\n')
    assert len(os.fsencode(long_module.relative_to(project))) > 1000
    assert max(len(os.fsencode(part)) for part in long_module.parts) <= 255

    data = install_json(project)
    assert (data["rebuilt"], data["installed"]) == (True, True)
    site = sandbox.tool_site_packages("stcli")
    installed_long = site / long_module.relative_to(project / "src")
    installed_odd = site / odd_module.relative_to(project / "src")
    assert installed_long.read_text() == 'WHO = "long"\n'
    assert installed_odd.read_text() == 'WHO = "odd"\n'
    assert f"stcli.dir {ODD}.mod {ODD}" in sandbox.run_tool("stcli")

    long_module.write_text('WHO = "longer"\n')
    data = install_json(project)
    assert (data["rebuilt"], data["installed"]) == (True, True)
    assert installed_long.read_text() == 'WHO = "longer"\n'
    assert install_json(project)["reason"] == "up to date"

    odd_module.write_text('WHO = "odder"\n')
    assert_not_up_to_date(project)
    assert_nothing_ran(tmp_path, project, Path.cwd())


def test_project_path_with_a_hash_or_a_spaced_semicolon_installs(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli", dest="project #2 ; x")
    # The anchor: plain uv installs this project from inside it.
    uv("tool", "install", "--force", ".", cwd=project)
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    uv("tool", "uninstall", "stcli")

    result = freshinstall("--json", project, timeout=120)
    assert result.code == 0, result.stderr
    assert sandbox.run_tool("stcli") == STCLI_MODULES


# -- 11. no shell, anywhere ---------------------------------------------------------------------

SOURCES = sorted((Path(__file__).parents[1] / "src" / "freshinstall").glob("*.py"))

#: Calls that always go through a shell.
SHELL_FUNCTIONS = frozenset(
    {
        "os.system",
        "os.popen",
        "subprocess.getoutput",
        "subprocess.getstatusoutput",
        "asyncio.create_subprocess_shell",
    }
)


def _dotted_name(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def shell_uses(source: str, filename: str) -> list[str]:
    """Every call through a shell in ``source``: a shell function, or ``shell=`` not False."""
    tree = ast.parse(source, filename=filename)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({alias.asname or alias.name: alias.name for alias in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module:
            aliases.update(
                {alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names}
            )
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = f"{filename}:{node.lineno}"
        name = _dotted_name(node.func, aliases)
        if name in SHELL_FUNCTIONS:
            found.append(f"{where}: {name}()")
        for keyword in node.keywords:
            value = keyword.value
            if keyword.arg == "shell" and not (
                isinstance(value, ast.Constant) and value.value is False
            ):
                found.append(f"{where}: shell={ast.unparse(value)}")
            if keyword.arg is None and (name or "").startswith("subprocess."):
                # **options could smuggle shell=True into a subprocess call
                found.append(f"{where}: **{ast.unparse(value)}")
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "import subprocess\nsubprocess.run('ls', shell=True)\n",
        "import subprocess as sp\nsp.Popen(argv, shell=flag)\n",
        "from subprocess import check_output\ncheck_output(c, **options)\n",
        "import os\nos.system('ls')\n",
        "from os import popen as p\np('ls')\n",
        "import subprocess\nsubprocess.getoutput('ls')\n",
    ],
)
def test_the_shell_scan_finds_shell_calls(snippet: str) -> None:
    assert shell_uses(snippet, "example.py")


def test_no_source_file_runs_a_shell() -> None:
    assert len(SOURCES) > 10  # the scan really sees the package
    found = [use for path in SOURCES for use in shell_uses(path.read_text("utf-8"), path.name)]
    assert found == []


def test_only_the_process_helper_imports_subprocess() -> None:
    importers = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if "subprocess" in names or "asyncio" in names:
                importers.append(path.name)
    assert sorted(set(importers)) == ["_process.py"]


# -- 12. the stamp is data: it never sends freshinstall outside dist/ --------------------------


def test_crafted_stamp_paths_are_rejected_and_touch_nothing_outside(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path
) -> None:
    project = make_project("setuptools_cli")
    install_json(project)
    stamp_path = project / "dist" / ".freshinstall.json"
    good = json.loads(stamp_path.read_text())
    # A wheel outside dist/ with exactly the stamped name and hash: the most tempting target.
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / good["wheel"]
    shutil.copyfile(project / "dist" / good["wheel"], victim)
    victim_bytes = victim.read_bytes()
    escapes = {
        "parent": f"../../outside/{good['wheel']}",
        "absolute": str(victim),
        "etc-passwd": "../../../../../../../../etc/passwd",
    }
    for how, path in escapes.items():
        for field in ("wheel", "wheels"):
            crafted = dict(good)
            if field == "wheel":
                crafted["wheel"] = path
            else:
                crafted["wheels"] = [[path, good["wheel_sha256"]]]
            stamp_path.write_text(json.dumps(crafted))

            dry = freshinstall("--dry-run", "--json", project)
            assert dry.code == 0, (how, field, dry.stderr)
            assert "note: ignoring the stamp" in dry.stderr, (how, field)
            assert json.loads(dry.stdout)["reason"] == "never built by freshinstall"
            cleaned = freshinstall("clean", project)  # removes provable artefacts only
            assert cleaned.code == 0, (how, field, cleaned.stderr)
            assert "Traceback" not in cleaned.stderr
            assert victim.read_bytes() == victim_bytes, (how, field)
            assert (project / "dist" / good["wheel"]).exists()  # not provably ours any more

    stamp_path.write_text(json.dumps(dict(good, wheel=escapes["parent"])))
    data = install_json(project)
    assert (data["rebuilt"], data["installed"]) == (True, True)
    assert json.loads(stamp_path.read_text())["wheel"] == good["wheel"]
    assert victim.read_bytes() == victim_bytes
    assert sorted(p.name for p in outside.iterdir()) == [good["wheel"]]
    assert sandbox.run_tool("stcli") == STCLI_MODULES


def fifo_opened(fifo: Path, process: subprocess.Popen[str], timeout: float = 30) -> bool:
    """Whether ``process`` opens ``fifo`` for reading before it ends (it blocks until we look)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO:  # ENXIO: nobody has it open for reading
                raise
            time.sleep(0.02)
            continue
        os.close(writer)  # the reader now sees end of file and carries on
        return True
    return False


def test_stamp_record_outside_the_install_target_is_never_read(
    make_project: MakeProject, tmp_path: Path, launch: Launch
) -> None:
    project = make_project("setuptools_cli")
    install_json(project)
    stamp_path = project / "dist" / ".freshinstall.json"
    good = json.loads(stamp_path.read_text())
    fifo = tmp_path / "outside" / "RECORD"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    opened = {}
    for how, record in {"absolute": str(fifo), "dot-dot": "../outside/RECORD"}.items():
        install = dict(good["installs"][0], record=record)
        stamp_path.write_text(json.dumps(dict(good, installs=[install])))
        # Relative records are taken from the working directory: run in the project.
        run = subprocess.Popen(
            [sys.executable, "-m", "freshinstall", "--dry-run", "--json", "."],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            opened[how] = fifo_opened(fifo, run)
            out, err = run.communicate(timeout=30)
        finally:
            run.kill()
            run.wait()
        assert run.returncode == 0, err
        assert json.loads(out)["reason"] != "up to date"
    assert opened == {"absolute": False, "dot-dot": False}


# -- 13. symlinks that leave the tree -----------------------------------------------------------


def outside_tree(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    for relpath in ("secret.py", "pkgdir/inner.py", "reldir/inner.py"):
        (outside / relpath).parent.mkdir(parents=True, exist_ok=True)
        (outside / relpath).write_text(f'FROM = "outside/{relpath}"\n')
    return outside


def wheel_files(project: Path) -> dict[str, bytes]:
    stamp = read_stamp(project)
    assert stamp is not None
    with zipfile.ZipFile(project / "dist" / stamp["wheel"]) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_links_out_of_the_tree_compared_with_plain_uv(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path
) -> None:
    outside = outside_tree(tmp_path)
    before = {path: path.read_bytes() for path in outside.rglob("*.py")}
    project = make_project("setuptools_cli")
    package = project / "src" / "stcli"
    (package / "abs_file.py").symlink_to(outside / "secret.py")
    (package / "abs_dir").symlink_to(outside / "pkgdir")
    (package / "rel_dir").symlink_to(Path("../../..") / "outside" / "reldir")
    assert (package / "rel_dir" / "inner.py").exists()  # it resolves, in the user's tree
    plain = tmp_path / "plain"
    shutil.copytree(project, plain, symlinks=True)

    install_json(project)
    files = wheel_files(project)
    # freshinstall copies links as links. setuptools then follows an absolute link, which
    # points at the same place from the copy; a relative one dangles in the copy, and
    # setuptools leaves a dangling directory out.
    assert files["stcli/abs_file.py"] == before[outside / "secret.py"]
    assert files["stcli/abs_dir/inner.py"] == before[outside / "pkgdir/inner.py"]
    assert not any(name.startswith("stcli/rel_dir") for name in files)
    assert all((package / name).is_symlink() for name in ("abs_file.py", "abs_dir", "rel_dir"))
    assert {path: path.read_bytes() for path in outside.rglob("*.py")} == before

    # The anchor: plain uv (an in-tree setuptools build) follows all three links.
    uv("tool", "install", "--force", "--reinstall", ".", cwd=plain)
    site = sandbox.tool_site_packages("stcli") / "stcli"
    for installed, source in {
        "abs_file.py": "secret.py",
        "abs_dir/inner.py": "pkgdir/inner.py",
        "rel_dir/inner.py": "reldir/inner.py",
    }.items():
        assert (site / installed).read_bytes() == before[outside / source]


def test_relative_link_to_a_file_out_of_the_tree_fails_the_build_cleanly(
    make_project: MakeProject, tmp_path: Path
) -> None:
    outside = outside_tree(tmp_path)
    project = make_project("setuptools_cli")
    (project / "src" / "stcli" / "rel_file.py").symlink_to(Path("../../../outside/secret.py"))

    result = freshinstall(project, timeout=120)
    assert result.code == 1, result
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: build failed: setuptools.build_meta reported:"), line
    assert "src/stcli/rel_file.py" in line
    assert read_stamp(project) is None
    assert (outside / "secret.py").read_text() == 'FROM = "outside/secret.py"\n'


def test_editing_the_target_of_an_absolute_link_out_of_the_tree_rebuilds(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path
) -> None:
    outside = outside_tree(tmp_path)
    project = make_project("setuptools_cli")
    (project / "src" / "stcli" / "abs_file.py").symlink_to(outside / "secret.py")
    install_json(project)
    installed = sandbox.tool_site_packages("stcli") / "stcli" / "abs_file.py"
    assert installed.read_text() == 'FROM = "outside/secret.py"\n'

    (outside / "secret.py").write_text('FROM = "edited"\n')
    data = install_json(project)
    assert data["rebuilt"] is True, data["reason"]
    assert installed.read_text() == 'FROM = "edited"\n'

    # The fingerprint cannot see that content, so no run claims to be up to date: each builds,
    # and status says why.
    data = install_json(project)
    assert data["rebuilt"] is True
    assert "src/stcli/abs_file.py -> " in data["reason"], data["reason"]
    status = freshinstall("status", "--json", project)
    assert status.code == 1
    (reason,) = json.loads(status.stdout)["reasons"]
    assert reason["code"] == "link-out", reason


# -- 14. more failures: build requirements, pip, where project code runs -------------------------


def test_missing_build_dependency_keeps_the_previous_install_and_stamp(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    missing = "freshinstall-no-such-build-dependency-xyz"
    project = make_project("setuptools_cli")
    install_json(project)
    stamp_path = project / "dist" / ".freshinstall.json"
    before = stamp_path.read_bytes()
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('["setuptools>=64"]', f'["setuptools>=64", "{missing}"]')
    )

    result = freshinstall(project, timeout=120)
    assert result.code == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    *replayed, line = result.stderr.rstrip("\n").splitlines()
    assert line.startswith("error: build failed: could not install the build requirements"), line
    assert missing in "\n".join(replayed)  # uv's own explanation, replayed
    assert result.stdout == ""
    assert stamp_path.read_bytes() == before
    assert sandbox.run_tool("stcli") == STCLI_MODULES


def test_pip_missing_from_the_target_environment_is_one_clean_error(
    make_project: MakeProject, tmp_path: Path
) -> None:
    venv = tmp_path / "venv-without-pip"
    uv("venv", "--quiet", str(venv))  # uv seeds no pip
    project = make_project("setuptools_cli")

    result = freshinstall("--installer", "pip", "--python", venv, project, timeout=120)
    assert result.code == 1, result
    line = the_error_line(result)
    assert "pip is not installed" in line, line
    assert "--installer uv-pip" in line
    stamp = read_stamp(project)
    assert stamp is None or stamp["installs"] == []


def test_no_uv_anywhere_is_one_clean_error(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path
) -> None:
    # An environment with freshinstall's other dependencies but not the uv package, and a PATH
    # with git alone: no uv to be found anywhere.
    venv = tmp_path / "venv-without-uv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    requirements = ["build", "click", "filelock", "packaging", "pyproject-hooks"]
    uv("pip", "install", "--quiet", "--python", str(python), *requirements)
    bin_dir = tmp_path / "bin-with-git-only"
    bin_dir.mkdir()
    git_path = shutil.which("git")
    assert git_path is not None
    (bin_dir / "git").symlink_to(git_path)
    project = make_project("setuptools_cli")
    source = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PATH": str(bin_dir), "PYTHONPATH": str(source)}

    completed = subprocess.run(
        [str(python), "-m", "freshinstall", str(project)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    result = Result(completed.returncode, completed.stdout, completed.stderr)
    assert result.code == 1, result
    line = the_error_line(result)
    assert "uv" in line, line
    assert "pip install uv" in line, line
    assert result.stdout == ""
    assert read_stamp(project) is None
    assert not (sandbox.bin / "stcli").exists()


RECORDS_WHERE_IT_RUNS = """\
import os
import sys

if os.environ.get("PROJECT_CODE_LOG"):
    with open(os.environ["PROJECT_CODE_LOG"], "a") as log:
        log.write(sys.prefix + "\\0" + os.getcwd() + "\\n")
"""


def test_project_code_runs_only_in_the_isolated_build_environment(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project("legacy_setup_py")
    setup = project / "setup.py"
    setup.write_text(RECORDS_WHERE_IT_RUNS + setup.read_text())
    log = tmp_path / "setup-py-ran-in"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("PROJECT_CODE_LOG", str(log))
    monkeypatch.setenv("TMPDIR", str(scratch))

    install_json(project)
    assert sandbox.run_tool("legacy") == "legacy"
    for args in (("--dry-run",), ("fingerprint",), ("status",), ()):
        result = freshinstall(*args, project)
        assert result.code == 0, (args, result.stderr)

    runs = [line.split("\0") for line in log.read_text().splitlines()]
    assert runs  # setup.py ran: for the build, and only there
    envs = (sandbox.home / ".cache" / "freshinstall" / "build-envs").resolve()
    for prefix, cwd in runs:
        # In a build environment of freshinstall's (kept in its cache, holding only the build
        # requirements), on a copy of the source in the build's scratch directory.
        assert Path(prefix).resolve().parent == envs, prefix
        assert (Path(prefix) / buildenv.COMPLETE).is_file(), prefix
        workdir = Path(cwd).resolve()
        assert workdir.is_relative_to(scratch.resolve()), cwd
        assert any(part.startswith("freshinstall-build-") for part in workdir.parts), cwd


# -- 15. Ctrl-C during the install --------------------------------------------------------------


def test_ctrl_c_during_the_install_exits_130_and_claims_nothing(
    make_project: MakeProject, sandbox: Sandbox, tmp_path: Path, launch: Launch
) -> None:
    # As in test_install_killed_half_way_is_redone_by_the_next_run: the marker of the slow
    # `--with` dependency means freshinstall's build is over and `uv tool install` is running.
    project = make_project("setuptools_cli")
    requirement = slow_dependency(tmp_path / "slowdep")
    install_json(project)
    shout_upper(project)
    changed = current_fingerprint(project)

    marker = tmp_path / "installing"
    run = launch(
        "--with", requirement, project, env={f"{DEP}SLEEP": "600", f"{DEP}MARKER": str(marker)}
    )
    wait_for(marker, run)
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    interrupted = finish(run, timeout=60)

    assert interrupted.code == 130, interrupted
    assert the_error_line(interrupted) == "error: interrupted"
    assert interrupted.stdout == ""
    assert_no_claim_for(project, changed)
    stamp = read_stamp(project)
    assert stamp is not None
    assert stamp["installs"] == []
    assert_trusted_wheel_is_whole(project)
    assert leftover_tmp_files(project) == []
    assert_not_up_to_date(project, "--with", requirement)

    data = install_json(project, "--with", requirement)
    assert data["installed"] is True
    assert sandbox.run_tool("stcli") == STCLI_MODULES.upper()


# -- 16. symlink loops and undecodable names in a real build ------------------------------------


def test_symlink_loops_and_non_utf8_names_do_not_stop_a_build(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    project = make_project("setuptools_cli")
    (project / "loop-a").symlink_to("loop-b")
    (project / "loop-b").symlink_to("loop-a")
    (project / "src" / "stcli" / "self").symlink_to("self")
    undecodable = os.path.join(os.fsencode(project), b"notes-\xff.txt")
    with open(undecodable, "wb") as file:
        file.write(b"one\n")

    data = install_json(project)
    assert (data["rebuilt"], data["installed"]) == (True, True)
    assert sandbox.run_tool("stcli") == STCLI_MODULES
    assert install_json(project)["reason"] == "up to date"
    with open(undecodable, "wb") as file:
        file.write(b"two\n")  # an input like any other
    assert_not_up_to_date(project)


# -- killed at any moment: fingerprinting, building, installing, writing the stamp ---------------


def test_killed_at_any_moment_never_leaves_a_false_up_to_date(
    make_project: MakeProject, sandbox: Sandbox, launch: Launch
) -> None:
    """SIGKILL a run after delays that sweep its whole length (fingerprint, build, install,
    stamp write), with a new source each time. Whatever moment the kill hit, a later check
    never says "up to date" unless the installed tool runs the current source, a stamp is
    always valid JSON, and the next complete run installs the current source."""
    project = make_project("setuptools_cli")
    utils = project / "src/stcli/utils.py"
    install_json(project)
    for round_, delay in enumerate([0.0, 0.1, 0.3, 0.6, 1.0, 1.4, 1.8, 2.2, 2.6, 3.2]):
        utils.write_text(f"def shout(text: str) -> str:\n    return text + ' v{round_}'\n")
        process = launch(project)
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        read_stamp(project)  # parses, or there is none: never half a stamp
        assert_trusted_wheel_is_whole(project)
        dry = freshinstall("--dry-run", "--json", project)
        assert dry.code == 0, dry.stderr
        if json.loads(dry.stdout)["reason"] == "up to date":
            assert sandbox.run_tool("stcli").endswith(f" v{round_}"), f"round {round_}, {delay}s"
    final = install_json(project)
    assert final["fingerprint"] == current_fingerprint(project)
    assert sandbox.run_tool("stcli").endswith(" v9")
    assert install_json(project)["installed"] is False


# --- SIGCHLD inherited as ignored ---------------------------------------------------------------

#: Starts freshinstall the way a parent that ignores SIGCHLD would (exec keeps that setting):
#: the kernel then reaps children itself, and their exit status is lost unless freshinstall
#: restores the default.
_SIGCHLD_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'freshinstall', *sys.argv[1:]])"
)


def freshinstall_sigchld_ignored(*args: str | os.PathLike[str]) -> Result:
    completed = subprocess.run(
        [sys.executable, "-c", _SIGCHLD_IGNORED, *(os.fspath(arg) for arg in args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def test_sigchld_ignored_fingerprint_is_the_same(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli")
    expected = current_fingerprint(project)  # also records the no-change answer
    for args in (["fingerprint"], ["fingerprint", "--no-cache"]):
        result = freshinstall_sigchld_ignored(*args, project)
        assert (result.code, result.stdout.strip()) == (0, expected), result.stderr
    (project / "src" / "stcli" / "cli.py").write_text("print('changed')\n", encoding="utf-8")
    changed = freshinstall_sigchld_ignored("fingerprint", project)
    assert changed.code == 0, changed.stderr
    assert changed.stdout.strip() not in ("", expected)


def test_sigchld_ignored_failed_build_is_still_a_failure(make_project: MakeProject) -> None:
    # Without the exit status, subprocess reports 0 for a child the kernel reaped: a failed
    # build must still fail, not install a wheel that was never built.
    project = make_project("broken_setup")
    result = freshinstall_sigchld_ignored(project)
    assert result.code == 1, result
    assert "setup.py refuses to build" in result.stderr.strip().splitlines()[-1]
    assert read_stamp(project) is None


def test_sigchld_is_restored_before_anything_runs(tmp_path: Path) -> None:
    # Even where no git runs (a plain directory listed by walking, say), the later children
    # (build, installer) must report their exit status: the console script restores SIGCHLD
    # first thing.
    code = (
        "import signal; signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        "from freshinstall import launch\n"
        "launch.main(['--version'])\n"
        "print(signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.splitlines()[-1] == "True"
