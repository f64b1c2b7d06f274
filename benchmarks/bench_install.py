"""How fast is ``freshinstall .`` compared with ``uv tool install --force .``, on this machine?

The script copies ``examples/greet`` into a throw-away sandbox (its own HOME, XDG_* dirs,
UV_TOOL_DIR, UV_TOOL_BIN_DIR and UV_CACHE_DIR, so the real user's tools and caches are never
touched), commits it to a fresh git repository there (a developer's project is a git work
tree), warms the caches up once, and then times whole processes, round by round:

* ``uv tool install --force .``: the anchor, what users type today;
* ``uv tool install --force --reinstall .``: a second anchor, a forced rebuild with uv;
* ``freshinstall --force .``: the changed-tree path (clean build and install) three ways:
  with no build environment kept (the first build ever of a set of build requirements, or after
  a week without one), with the kept environment last checked over an hour ago (the first build
  of each hour: uv resolves the requirements again before the environment is used), and reusing
  the environment as every other build does;
* ``freshinstall .`` when nothing changed: the no-change path;
* ``python -c pass`` and ``python -c "import click"``: the floors of any Python CLI.

Each command runs once per round, in that order (the no-change run must follow a freshinstall
install, since an install by uv invalidates freshinstall's stamp), and every result is the
median of the rounds, printed with its ratio to ``uv tool install --force .`` measured in the
same run. Ratios travel between machines; absolute times do not.

Child processes run without PYTHONDONTWRITEBYTECODE, as users normally have bytecode caching;
the warm-up writes the ``.pyc`` files.

Run it with an interpreter where freshinstall is installed (uv is found as freshinstall finds
it: on PATH, else the ``uv`` package)::

    python benchmarks/bench_install.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freshinstall import buildenv
from freshinstall.errors import FreshinstallError
from freshinstall.install import find_uv

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "greet"
DEFAULT_RUNS = 7
MIN_RUNS = 5
TIMEOUT = 900.0
NO_CHANGE_TARGET = 0.10
CHANGED_TARGET = 1.25

ANCHOR = "uv tool install --force ."
NO_CHANGE = "freshinstall ."
CHANGED = "freshinstall --force ."
#: The same when the kept build environment was last checked over an hour ago.
HOUR_BUILD = "freshinstall --force . (first of the hour)"
#: The same with no build environment kept from an earlier build.
FIRST_BUILD = "freshinstall --force . (new build env)"
#: What is done to freshinstall's kept build environments before a run (untimed).
KEEP, EXPIRE, DELETE = "keep", "expire", "delete"


class BenchmarkError(Exception):
    """A command failed or did not do what the benchmark needs; the numbers would be wrong."""


@dataclass(frozen=True)
class Command:
    """One measured command; ``expect`` must appear in its stdout for a run to count."""

    label: str
    argv: tuple[str, ...]
    expect: str | None = None
    #: KEEP the kept build environments, EXPIRE them (last checked two hours ago) or DELETE them.
    build_envs: str = KEEP


@dataclass(frozen=True)
class Result:
    label: str
    argv: tuple[str, ...]
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass(frozen=True)
class Sandbox:
    root: Path
    project: Path
    env: Mapping[str, str]


def make_sandbox(root: Path) -> Sandbox:
    """Directories and an environment that keep every tool, cache and config inside ``root``."""
    env = {
        name: value
        for name, value in os.environ.items()
        # Inherited UV_*/PIP_*/XDG_* settings would change what is measured or where it goes.
        if not name.startswith(("UV_", "PIP_", "XDG_")) and name != "PYTHONDONTWRITEBYTECODE"
    }
    dirs = {
        "HOME": "home",
        "XDG_CONFIG_HOME": "xdg/config",
        "XDG_DATA_HOME": "xdg/data",
        "XDG_CACHE_HOME": "xdg/cache",
        "XDG_STATE_HOME": "xdg/state",
        "XDG_BIN_HOME": "xdg/bin",
        "XDG_RUNTIME_DIR": "xdg/runtime",
        "UV_TOOL_DIR": "uv/tools",
        "UV_TOOL_BIN_DIR": "uv/bin",
        "UV_CACHE_DIR": "uv/cache",
    }
    for name, relpath in dirs.items():
        path = root / relpath
        path.mkdir(parents=True, mode=0o700)
        env[name] = str(path)
    env.pop("VIRTUAL_ENV", None)
    project = root / "greet"
    shutil.copytree(
        EXAMPLE,
        project,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist"),
    )
    git = shutil.which("git")
    if git is None:
        raise BenchmarkError("git is not on PATH")
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for argv in (
        [git, "-c", "init.defaultBranch=main", "init", "-q"],
        [git, "add", "-A"],
        [git, *identity, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "greet"],
    ):
        _run(argv, project, env)
    return Sandbox(root, project, env)


def _run(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    """Run a command to completion; its output is kept for the error message."""
    completed = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    if completed.returncode != 0:
        raise BenchmarkError(
            f"`{' '.join(argv)}` exited {completed.returncode}\n"
            f"{completed.stdout}{completed.stderr}".rstrip()
        )
    return completed.stdout


def time_once(command: Command, sandbox: Sandbox) -> float:
    """Wall-clock seconds of one whole process, checked to have done the expected thing."""
    kept = Path(sandbox.env["XDG_CACHE_HOME"], "freshinstall", "build-envs")
    if command.build_envs == DELETE:
        shutil.rmtree(kept)
    elif command.build_envs == EXPIRE:
        then = time.time_ns() - 2 * 3600 * 10**9
        for marker in kept.glob(f"*/{buildenv.COMPLETE}"):
            os.utime(marker, ns=(then, then))
    start = time.perf_counter()
    completed = subprocess.run(
        command.argv,
        cwd=sandbox.project,
        env=sandbox.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    seconds = time.perf_counter() - start
    output = f"{completed.stdout}{completed.stderr}".rstrip()
    if completed.returncode != 0:
        raise BenchmarkError(f"`{command.label}` exited {completed.returncode}\n{output}")
    if command.expect is not None and command.expect not in completed.stdout:
        raise BenchmarkError(
            f"`{command.label}` did not print {command.expect!r}, so it did not take the path "
            f"being measured:\n{output}"
        )
    return seconds


def commands(uv: str) -> list[Command]:
    """The measured commands, in the order they run within a round."""
    python = sys.executable
    freshinstall = (python, "-m", "freshinstall")
    return [
        Command("python -c pass", (python, "-c", "pass")),
        Command('python -c "import click"', (python, "-c", "import click")),
        Command(ANCHOR, (uv, "tool", "install", "--force", ".")),
        Command(
            "uv tool install --force --reinstall .",
            (uv, "tool", "install", "--force", "--reinstall", "."),
        ),
        Command(
            FIRST_BUILD, (*freshinstall, "--force", "."), "built and installed", build_envs=DELETE
        ),
        Command(
            HOUR_BUILD, (*freshinstall, "--force", "."), "built and installed", build_envs=EXPIRE
        ),
        Command(CHANGED, (*freshinstall, "--force", "."), expect="built and installed"),
        Command(NO_CHANGE, (*freshinstall, "."), expect="is up to date"),
    ]


def measure(uv: str, sandbox: Sandbox, runs: int) -> list[Result]:
    """Warm up, then ``runs`` rounds of every command."""
    # Populates uv's cache (setuptools for the build environments) and writes the .pyc files.
    _run([uv, "tool", "install", "--force", "."], sandbox.project, sandbox.env)
    _run([sys.executable, "-m", "freshinstall", "."], sandbox.project, sandbox.env)
    todo = commands(uv)
    samples: dict[str, list[float]] = {command.label: [] for command in todo}
    for round_ in range(runs):
        print(f"round {round_ + 1}/{runs}", file=sys.stderr, flush=True)
        for command in todo:
            samples[command.label].append(time_once(command, sandbox))
    return [Result(command.label, command.argv, tuple(samples[command.label])) for command in todo]


def version_of(argv: Sequence[str]) -> str:
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
    except OSError as error:
        return f"unavailable ({error.strerror})"
    return completed.stdout.strip() or completed.stderr.strip()


def machine(uv: str) -> dict[str, Any]:
    git = shutil.which("git") or "git"
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "uv": version_of([uv, "--version"]),
        "uv_path": uv,
        "git": version_of([git, "--version"]),
    }


def report(results: list[Result], info: dict[str, Any], runs: int) -> dict[str, Any]:
    by_label = {result.label: result for result in results}
    anchor = by_label[ANCHOR].median
    no_change = by_label[NO_CHANGE].median / anchor
    # Every changed-tree build: within the hour, the first of an hour, or one that makes its
    # build environment.
    changed_rows = (CHANGED, HOUR_BUILD, FIRST_BUILD)
    slowest = max(changed_rows, key=lambda label: by_label[label].median)
    changed = by_label[slowest].median / anchor
    return {
        "machine": info,
        "runs": runs,
        "bytecode": "children run without PYTHONDONTWRITEBYTECODE",
        "pythondontwritebytecode_in_parent": "PYTHONDONTWRITEBYTECODE" in os.environ,
        "anchor": ANCHOR,
        "results": [
            {
                "command": result.label,
                "argv": list(result.argv),
                "median": result.median,
                "min": min(result.samples),
                "max": max(result.samples),
                "ratio": result.median / anchor,
                "samples": list(result.samples),
            }
            for result in results
        ],
        "no_change": {
            "ratio": no_change,
            "target": NO_CHANGE_TARGET,
            "pass": no_change <= NO_CHANGE_TARGET,
        },
        "changed_tree": {
            "ratio": changed,
            "slowest": slowest,
            "target": CHANGED_TARGET,
            "pass": changed <= CHANGED_TARGET,
        },
    }


def render(data: dict[str, Any]) -> str:
    info = data["machine"]
    inherited = " (set in this environment)" if data["pythondontwritebytecode_in_parent"] else ""
    bytecode_note = (
        f"note:    child processes run without PYTHONDONTWRITEBYTECODE{inherited}, as users "
        "normally have bytecode caching"
    )
    lines = [
        f"machine: {info['platform']}, {info['cpus']} CPUs",
        f"python:  {info['python']} ({info['python_executable']})",
        f"uv:      {info['uv']} ({info['uv_path']})",
        f"git:     {info['git']}",
        "project: examples/greet (setuptools), committed to a fresh git repo in a sandbox",
        bytecode_note,
        f"runs:    median of {data['runs']} whole-process runs per command, interleaved by round",
        "",
    ]
    width = max(len(row["command"]) for row in data["results"])
    lines.append(
        f"{'command':<{width}}  {'median s':>8}  {'min s':>7}  {'max s':>7}  {'x anchor':>8}"
    )
    lines.append("-" * (width + 40))
    lines.extend(
        f"{row['command']:<{width}}  {row['median']:>8.3f}  {row['min']:>7.3f}  "
        f"{row['max']:>7.3f}  {row['ratio']:>7.2f}x"
        for row in data["results"]
    )
    no_change, changed = data["no_change"], data["changed_tree"]
    no_change_line = (
        f"{'PASS' if no_change['pass'] else 'FAIL'}: no-change run {NO_CHANGE} / {ANCHOR} = "
        f"{no_change['ratio']:.3f}x (target ≤ 1/10 = {NO_CHANGE_TARGET:.2f}x)"
    )
    changed_line = (
        f"{'PASS' if changed['pass'] else 'FAIL'}: changed tree, the slowest of the three "
        f"{CHANGED} rows ({changed['slowest']}) / {ANCHOR} = {changed['ratio']:.2f}x "
        f"(target ≤ {CHANGED_TARGET:.2f}x, issue 3)"
    )
    lines += ["", no_change_line, changed_line]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time freshinstall against uv tool install in a sandbox; print ratios."
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        help=f"rounds to measure (default {DEFAULT_RUNS}, at least {MIN_RUNS})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.runs < MIN_RUNS:
        parser.error(f"--runs must be at least {MIN_RUNS}: a median of fewer runs is noise")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not EXAMPLE.is_dir():
        print(f"error: the example project {EXAMPLE} is missing", file=sys.stderr)
        return 1
    try:
        uv = find_uv()
        with tempfile.TemporaryDirectory(
            prefix="freshinstall-bench-", ignore_cleanup_errors=True
        ) as scratch:
            sandbox = make_sandbox(Path(scratch))
            results = measure(uv, sandbox, args.runs)
    except (BenchmarkError, FreshinstallError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as error:
        print(f"error: `{error.cmd}` took longer than {TIMEOUT:.0f}s", file=sys.stderr)
        return 1
    data = report(results, machine(uv), args.runs)
    print(json.dumps(data, sort_keys=True) if args.json else render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
