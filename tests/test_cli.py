"""The command line as a user meets it: exit codes, one-line errors, help, version, dry runs.

Every test runs freshinstall in a subprocess and never builds or installs anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from freshinstall import __version__, fingerprint, stamp
from tests.conftest import MakeProject
from tests.helpers import Result, Sandbox, freshinstall, uv

#: A directory name a shell would mangle if it were ever interpolated into a command line.
AWKWARD = "my dir 'single' \"double\" $(touch pwned) `touch pwned2` ;&|"


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.code == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    for fragment in fragments:
        assert fragment in line
    assert result.stdout == ""
    return line


def pyproject(tmp_path: Path, text: str, name: str = "project") -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "pyproject.toml").write_text(text, encoding="utf-8")
    return root


# --- bad input: one line, exit 1, no traceback -------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert_one_line_error(freshinstall(missing), str(missing), "no such directory")


def test_file_instead_of_directory(tmp_path: Path) -> None:
    file = tmp_path / "pyproject.toml"
    file.write_text("[project]\nname = 'x'\n", encoding="utf-8")
    assert_one_line_error(freshinstall(file), str(file), "not a directory")


def test_directory_that_is_not_a_project(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(
        freshinstall(empty), str(empty.resolve()), "no pyproject.toml or setup.py"
    )


def test_malformed_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    root = pyproject(tmp_path, '[project]\nname = "demo"\nversion = \n')
    line = assert_one_line_error(freshinstall(root), str(root.resolve() / "pyproject.toml"))
    assert "invalid TOML" in line
    assert "line 3" in line


def test_pyproject_that_is_not_utf8(tmp_path: Path) -> None:
    root = pyproject(tmp_path, "")
    (root / "pyproject.toml").write_bytes(b'[project]\nname = "caf\xe9"\nversion = "1"\n')
    for args in ([str(root)], ["fingerprint", str(root)]):
        line = assert_one_line_error(freshinstall(*args), str(root.resolve() / "pyproject.toml"))
        assert "invalid TOML" in line
        assert "utf-8" in line


def test_project_without_a_name(tmp_path: Path) -> None:
    root = pyproject(tmp_path, '[project]\nversion = "1.0"\n')
    assert_one_line_error(freshinstall(root), "pyproject.toml", "[project] has no name")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[project]\nname = 1\nversion = "1"\n', "[project].name must be a string"),
        ('project = "demo"\n', "[project] must be a table"),
        ('build-system = 1\n[project]\nname = "d"\n', "[build-system] must be a table"),
        ('[build-system]\nrequires = "setuptools"\n', "requires must be a list of strings"),
        ("[tool.other]\nx = 1\n", "no [project] or [build-system] table"),
    ],
    ids=["name-int", "project-string", "build-system-int", "requires-string", "no-tables"],
)
def test_malformed_metadata(tmp_path: Path, text: str, message: str) -> None:
    assert_one_line_error(freshinstall(pyproject(tmp_path, text)), message)


@pytest.mark.parametrize("dynamic", ["5", "true"])
def test_project_dynamic_that_is_not_a_list(tmp_path: Path, dynamic: str) -> None:
    root = pyproject(tmp_path, f"[project]\ndynamic = {dynamic}\n")
    assert_one_line_error(freshinstall(root), "pyproject.toml")


def test_awkward_paths_are_printed_verbatim_and_never_run(tmp_path: Path) -> None:
    missing = tmp_path / AWKWARD
    assert_one_line_error(freshinstall(missing, cwd=tmp_path), f"error: {missing}: ")
    empty = tmp_path / f"{AWKWARD} empty"
    empty.mkdir()
    assert_one_line_error(freshinstall(empty, cwd=tmp_path), str(empty.resolve()))
    root = pyproject(tmp_path, "[project\n", name=f"{AWKWARD} toml")
    assert_one_line_error(freshinstall(root, cwd=tmp_path), str(root.resolve() / "pyproject.toml"))
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


def test_json_error_writes_nothing_on_stdout(tmp_path: Path) -> None:
    assert_one_line_error(freshinstall("--json", tmp_path / "nope"), "no such directory")


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    result = freshinstall("-v", tmp_path / "nope")
    assert result.code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: ")


# --- help, version, usage errors ---------------------------------------------------------------


def test_version() -> None:
    result = freshinstall("--version")
    assert result.code == 0
    assert __version__ in result.stdout
    assert "freshinstall" in result.stdout


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(flag: str) -> None:
    result = freshinstall(flag)
    assert result.code == 0
    assert "install" in result.stdout
    assert "Usage:" in result.stdout


def test_install_help() -> None:
    result = freshinstall("install", "--help")
    assert result.code == 0
    assert "--dry-run" in result.stdout
    assert "--force" in result.stdout


@pytest.mark.parametrize("args", [("--no-such-option",), ("install", "--bogus"), (".", "-Z")])
def test_unknown_option_is_a_usage_error(args: tuple[str, ...]) -> None:
    result = freshinstall(*args)
    assert result.code == 2
    assert "Traceback" not in result.stderr
    assert "No such option" in result.stderr


# --- dry run (needs uv for `uv tool dir` only) -------------------------------------------------


def test_dry_run_of_a_project_never_built(make_project: MakeProject, sandbox: Sandbox) -> None:
    project = make_project("setuptools_cli")
    result = freshinstall("--dry-run", project)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == (
        f"would build and install stcli (uv-tool in {sandbox.tools}): never built by freshinstall"
    )
    assert "Traceback" not in result.stderr
    assert not (project / "dist").exists()
    assert not (project / "build").exists()


def test_dry_run_json_is_one_object(make_project: MakeProject) -> None:
    project = make_project("setuptools_cli", in_git=True)
    result = freshinstall("--dry-run", "--json", project)
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dry_run"] is True
    assert data["rebuilt"] is False
    assert data["installed"] is False
    assert data["reason"] == "never built by freshinstall"
    assert data["project"] == "stcli"
    assert not (project / "dist").exists()


def _stamp_for(project: Path, *, wheel: str, record: str) -> None:
    """A stamp whose fingerprint matches ``project``, so that decide() reads further."""
    probe = freshinstall("--dry-run", "--json", project)
    assert probe.code == 0, probe.stderr
    current = json.loads(probe.stdout)["fingerprint"]
    dist = project / "dist"
    dist.mkdir()
    wheel_sha = "0" * 64
    if "\0" not in wheel:
        (dist / wheel).write_bytes(b"PK")
        wheel_sha = fingerprint.file_sha256(dist / wheel)
    target = uv("tool", "dir").strip()
    install = stamp.Install("uv-tool", target, (), wheel_sha, record, "0" * 64)
    stamp.write(dist, stamp.Stamp(current, "nocli", "1.0", wheel, wheel_sha, (install,)))
    check = freshinstall("--dry-run", "--json", project)
    assert "source changed" not in check.stdout, "the stamp must match the tree"


@pytest.mark.parametrize(
    ("wheel", "record"),
    [("x\0-1.0-py3-none-any.whl", "/RECORD"), ("x-1.0-py3-none-any.whl", "/REC\0ORD")],
    ids=["wheel", "record"],
)
def test_stamp_with_a_nul_byte_never_gives_a_traceback(
    make_project: MakeProject, wheel: str, record: str
) -> None:
    project = make_project("nocli")
    _stamp_for(project, wheel=wheel, record=record)
    result = freshinstall("--dry-run", project)
    assert "Traceback" not in result.stderr
    assert result.code == 0
    assert result.stdout.startswith("would ")


def test_deeply_nested_stamp_never_gives_a_traceback(make_project: MakeProject) -> None:
    project = make_project("nocli")
    (project / "dist").mkdir()
    (project / "dist" / stamp.FILENAME).write_text("[" * 100_000, encoding="utf-8")
    result = freshinstall("--dry-run", project)
    assert "Traceback" not in result.stderr
    assert result.code == 0
    assert result.stdout.startswith("would build and install")


def test_invalid_stamp_is_ignored_with_a_note(make_project: MakeProject) -> None:
    project = make_project("nocli")
    (project / "dist").mkdir()
    (project / "dist" / stamp.FILENAME).write_text("{not json", encoding="utf-8")
    result = freshinstall("--dry-run", project)
    assert result.code == 0, result.stderr
    assert "note: ignoring the stamp" in result.stderr
    assert result.stdout.startswith("would build and install")


# --- `fingerprint` answers without click, and exactly as the click command does ------------------


def _click_path(*args: str, cwd: Path | None = None) -> Result:
    """The same command line through click, skipping launch's quick paths."""
    code = "import sys; from freshinstall.cli import main; sys.exit(main(sys.argv[1:]))"
    completed = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


@pytest.mark.parametrize(
    "flags", [(), ("--json",), ("--no-cache",), ("--json", "-v", "--no-cache")]
)
def test_quick_fingerprint_prints_what_the_click_command_prints(
    make_project: MakeProject, flags: tuple[str, ...]
) -> None:
    root = make_project("setuptools_cli")
    quick = freshinstall("fingerprint", *flags, root)
    assert quick.code == 0, quick
    assert quick == _click_path("fingerprint", *flags, str(root))


@pytest.mark.parametrize("args", [("nope",), ("-v", "nope"), ("--json", "nope")])
def test_quick_fingerprint_errors_like_the_click_command(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    quick = freshinstall("fingerprint", *args, cwd=tmp_path)
    assert quick.code == 1
    assert quick.stderr.splitlines()[-1] == "error: nope: no such directory"
    assert ("Traceback" in quick.stderr) == ("-v" in args)
    clicked = _click_path("fingerprint", *args, cwd=tmp_path)
    assert quick.stdout == clicked.stdout == ""
    assert quick.stderr.splitlines()[-1] == clicked.stderr.splitlines()[-1]


def test_quick_fingerprint_never_imports_click(make_project: MakeProject) -> None:
    root = make_project("setuptools_cli")
    code = (
        "import sys; from freshinstall.launch import main; code = main(sys.argv[1:]); "
        "assert 'click' not in sys.modules, 'click imported'; "
        "assert 'freshinstall.core' not in sys.modules, 'core imported'"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, "fingerprint", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stdout.strip()) == 64


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (("fingerprint", "--help"), 0, "--no-cache"),
        (("fingerprint", "--bogus"), 2, "No such option"),
        (("fingerprint", "a", "b"), 2, "unexpected extra argument"),
    ],
)
def test_other_fingerprint_command_lines_go_to_click(
    tmp_path: Path, args: tuple[str, ...], code: int, expected: str
) -> None:
    result = freshinstall(*args, cwd=tmp_path)
    assert result.code == code, result
    assert expected in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_the_quick_paths_know_every_command() -> None:
    from freshinstall import cli, launch

    assert set(cli.cli.commands) == launch.COMMANDS


@pytest.mark.parametrize("where", ["nope", "file", "empty"])
def test_quick_install_errors_like_the_click_command(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    quick = freshinstall(where, cwd=tmp_path)
    clicked = _click_path(where, cwd=tmp_path)
    assert quick.code == clicked.code == 1
    assert quick.stdout == clicked.stdout == ""
    assert quick.stderr == clicked.stderr
    assert quick.stderr.count("\n") == 1


@pytest.mark.slow
def test_quick_install_up_to_date_matches_click_and_never_imports_click(
    make_project: MakeProject, sandbox: Sandbox
) -> None:
    root = make_project("setuptools_cli")
    first = freshinstall(root)
    assert first.code == 0, first.stderr
    assert "built and installed" in first.stdout
    quick, clicked = freshinstall(root), _click_path(str(root))
    assert quick.code == clicked.code == 0
    assert quick.stdout == clicked.stdout
    assert "is up to date" in quick.stdout
    code = (
        "import sys; from freshinstall.launch import main; code = main(sys.argv[1:]); "
        "assert code == 0; assert 'click' not in sys.modules, 'click imported'"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "is up to date" in completed.stdout


@pytest.mark.parametrize(("closed", "command"), [(1, "fingerprint"), (2, "fingerprint"), (2, "")])
def test_a_closed_stdout_or_stderr_is_no_crash(
    make_project: MakeProject, closed: int, command: str
) -> None:
    """As with click: output to a closed stream (`>&-`, `2>&-`) is skipped, never a traceback."""
    root = make_project("setuptools_cli")
    args = [command, str(root)] if command else ["--dry-run", str(root)]
    code = (
        "import os, sys; os.close(int(sys.argv[1])); "
        "os.execv(sys.executable, [sys.executable, '-m', 'freshinstall', *sys.argv[2:]])"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, str(closed), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed
    assert "Traceback" not in completed.stderr + completed.stdout


# --- exiting: the interpreter's teardown is skipped, nothing else -------------------------------

#: Runs ``freshinstall ARGV[2:]`` through launch.run, logging to ARGV[1] which exit handlers
#: and finalizers ran: "atexit" for one the command registers, "teardown" for an object that
#: only the interpreter's teardown finalizes. With ``EARLIER`` in the environment, a handler
#: is registered before run(), as coverage's start-up does; with ``RAISE``, main() raises;
#: with ``UNFLUSHED``, that text is written to stdout after main() and never flushed by it,
#: and with ``FULL`` as well, to a full disk.
EXIT_PROBE = """\
import atexit, os, sys
from freshinstall import launch

def note(word, open=open, path=sys.argv[1]):  # bound now: the teardown clears builtins
    with open(path, "a") as log:
        log.write(word + "\\n")

if atexit._ncallbacks():
    note("registered before the probe")
class Teardown:
    def __del__(self):
        note("teardown")

kept = Teardown()
if "EARLIER" in os.environ:
    atexit.register(note, "earlier")
real = launch.main

def main(argv):
    atexit.register(note, "atexit")
    if "RAISE" in os.environ:
        raise RuntimeError("a bug")
    code = real(argv)
    if "FULL" in os.environ:  # stdout now goes to a full disk
        os.dup2(os.open("/dev/full", os.O_WRONLY), 1)
    sys.stdout.write(os.environ.get("UNFLUSHED", ""))
    return code

launch.main = main
sys.argv = ["freshinstall", *sys.argv[2:]]
launch.run()
"""


def exit_probe(
    tmp_path: Path, *args: str, python: tuple[str, ...] = (), **env: str
) -> tuple[Result, list[str]]:
    """Run EXIT_PROBE with ``args`` (and ``python`` options): its result, and what it logged.
    Its stdout is buffered (a pipe, and no PYTHONUNBUFFERED), as a user's would be."""
    log = tmp_path / "exit.log"
    log.unlink(missing_ok=True)
    completed = subprocess.run(
        [sys.executable, *python, "-c", EXIT_PROBE, str(log), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, **env},
    )
    result = Result(completed.returncode, completed.stdout, completed.stderr)
    ran = log.read_text().splitlines() if log.exists() else []
    if "registered before the probe" in ran:
        pytest.skip("an exit handler is registered at start-up here (coverage?)")
    return result, ran


def test_the_exit_runs_the_handlers_then_skips_the_teardown(
    make_project: MakeProject, tmp_path: Path
) -> None:
    """The output is flushed and the exit code kept (launch._skip_teardown), after the exit
    handlers the command registered; the interpreter's teardown, which only frees memory,
    is skipped."""
    root = make_project("setuptools_cli")
    printed, ran = exit_probe(tmp_path, "fingerprint", "--no-cache", str(root))
    assert printed.code == 0, printed
    assert printed.stdout == freshinstall("fingerprint", "--no-cache", root).stdout
    assert len(printed.stdout) == 65
    assert ran == ["atexit"]

    failed, ran = exit_probe(tmp_path, "fingerprint", str(tmp_path / "missing"))
    assert_one_line_error(failed, "missing")
    assert ran == ["atexit"]

    # The quick path and click's alike.
    helped, ran = exit_probe(tmp_path, "fingerprint", "--help")
    assert helped.code == 0, helped
    assert "Usage: freshinstall fingerprint" in helped.stdout
    assert ran == ["atexit"]


def test_an_earlier_exit_handler_keeps_the_usual_exit(
    make_project: MakeProject, tmp_path: Path
) -> None:
    """A handler registered before the command started (coverage's, a sitecustomize's) is
    never cut short: then Python exits as usual, teardown included."""
    root = make_project("setuptools_cli")
    printed, ran = exit_probe(tmp_path, "fingerprint", str(root), EARLIER="1")
    assert printed.code == 0, printed
    assert len(printed.stdout) == 65
    assert ran == ["atexit", "earlier", "teardown"]


def test_an_exception_out_of_main_keeps_the_usual_exit(tmp_path: Path) -> None:
    """A bug is reported by Python as always: a traceback, exit code 1, then the teardown."""
    crashed, ran = exit_probe(tmp_path, "fingerprint", str(tmp_path), RAISE="1")
    assert crashed.code == 1
    assert crashed.stderr.splitlines()[-1] == "RuntimeError: a bug"
    assert ran == ["atexit", "teardown"]


def test_the_exit_flushes_what_is_left_to_write(make_project: MakeProject, tmp_path: Path) -> None:
    """What is still in stdout's buffer when main() returns is written; when it cannot be
    (a full disk), Python reports it and exits with 120 as it always did, teardown included."""
    root = make_project("setuptools_cli")
    printed, ran = exit_probe(tmp_path, "fingerprint", str(root), UNFLUSHED="left over\n")
    assert printed.code == 0, printed
    assert printed.stdout.splitlines()[1:] == ["left over"]
    assert ran == ["atexit"]

    failed, ran = exit_probe(tmp_path, "fingerprint", str(root), UNFLUSHED="x", FULL="1")
    assert failed.code == 120, failed
    assert "No space left on device" in failed.stderr
    assert ran == ["atexit", "teardown"]


def test_development_mode_keeps_the_usual_exit(make_project: MakeProject, tmp_path: Path) -> None:
    """With ``-X dev``, the teardown runs: it is where Python reports files left open."""
    root = make_project("setuptools_cli")
    printed, ran = exit_probe(tmp_path, "fingerprint", str(root), python=("-X", "dev"))
    assert printed.code == 0, printed
    assert ran == ["atexit", "teardown"]
