"""How fast is ``freshinstall fingerprint`` compared with git on the same tree, on this machine?

For each size (default 1,000 and 10,000 files; add 100,000 with ``--sizes``) the script writes a
project of text-like files averaging 8 KiB (uniform 0-16 KiB: 10,000 files ~ 80 MB, 100,000 ~
800 MB, plus half as much again in .git), commits it to a fresh git repository, and times
whole processes, round by round, interleaved:

* nothing changed: ``freshinstall fingerprint`` (stat cache warm) vs ``git status --porcelain``;
* cold: ``freshinstall fingerprint --no-cache`` vs ``git add -A`` into an empty index
  (``GIT_INDEX_FILE`` pointing at a fresh temporary file). Both read every file from the page
  cache: "cold" means no stat cache, not a cold disk;
* first run: ``freshinstall fingerprint`` with no cache yet (hashes everything, writes the cache);
* peak memory (ru_maxrss from ``wait4``) of ``freshinstall fingerprint --no-cache`` with a
  sparse 1 GiB file added to the smallest tree.

Every figure is the median of ``--runs`` rounds; every freshinstall run must print the same
digest, and the no-change runs must leave the cache untouched. Child processes run without
PYTHONDONTWRITEBYTECODE (users normally have bytecode caching), with HOME in the sandbox and
GIT_CONFIG_NOSYSTEM=1, so neither tool sees the user's git configuration.

    python benchmarks/bench_fingerprint.py [--sizes 1000,10000,100000] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freshinstall import quick

DEFAULT_SIZES = "1000,10000"
DEFAULT_RUNS, MIN_RUNS = 7, 5
AVERAGE_SIZE = 8 * 1024
BIG_FILE = 1 << 30
NO_CHANGE_TARGET, NO_CHANGE_AT, COLD_TARGET, MEMORY_TARGET_MB = 2.0, 10_000, 1.5, 60.0

NO_CHANGE, GIT_STATUS = "freshinstall fingerprint", "git status --porcelain"
COLD, GIT_ADD = "freshinstall fingerprint --no-cache", "git add -A (empty index)"
FIRST, BIG = "freshinstall fingerprint (no cache yet)", f"{COLD} (+1 GiB file)"
FLOOR, START = "python -c pass (floor)", "freshinstall --version (start-up)"

Hook = Callable[[], None]
GNU_TIME = next((path for path in ("/usr/bin/time",) if os.access(path, os.X_OK)), None)


class BenchmarkError(Exception):
    """A command failed or did something other than what is measured."""


@dataclass(frozen=True)
class Command:
    label: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    #: Run untimed before and after each timed run: set up, and check it did what is measured.
    before: Hook | None = None
    after: Hook | None = None


def run_child(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB and output of one process.

    The peak RSS comes from GNU time when installed: a process's ru_maxrss also counts the RSS of
    the process that forked it (its memory at the fork), so from Python it would never read
    below this script's own ~30 MB; GNU time is a small C program. Without it, wait4 is used.
    """
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        wrapper = (GNU_TIME, "-f", "%M", "-o", rss.name) if GNU_TIME else ()
        start = time.perf_counter()
        child = subprocess.Popen(
            (*wrapper, *argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
        peak = (
            int(rss.read().split()[-1]) if GNU_TIME and child.returncode == 0 else usage.ru_maxrss
        )
    if child.returncode != 0:
        raise BenchmarkError(f"`{' '.join(argv)}` exited {child.returncode}\n{output}")
    return seconds, peak, output


def make_tree(root: Path, files: int, env: Mapping[str, str]) -> int:
    """A committed project of ``files`` files; returns its size in bytes. Reused when complete."""
    marker = root / ".git" / "bench-complete"
    if marker.is_file():
        return int(marker.read_text(encoding="ascii"))
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(files)
    words = [
        bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz_", k=rng.randint(2, 9))) for _ in "w" * 4000
    ]
    text = b" ".join(rng.choices(words, k=60_000)).replace(b"_ ", b"\n")  # ~350 KB of "code"
    (root / "src").mkdir(parents=True)
    (root / "pyproject.toml").write_bytes(b"[project]\nname = 'bench'\nversion = '1.0'\n")
    (root / ".gitignore").write_bytes(b"/dist/\n")
    total = 0
    for index in range(files - 2):
        size = rng.randint(0, 2 * AVERAGE_SIZE)
        offset = rng.randrange(len(text) - size)
        directory = root / "src" / "bench" / f"pkg{index // 100:04d}"
        directory.mkdir(parents=True, exist_ok=True)
        content = f"# module {index}\n".encode() + text[offset : offset + size]
        (directory / f"mod{index % 100:02d}.py").write_bytes(content[:size])
        total += size
    identity = ("-c", "user.name=bench", "-c", "user.email=bench@example.invalid")
    run_child(("git", "-c", "init.defaultBranch=main", "init", "-q"), root, env)
    run_child(("git", "add", "-A"), root, env)
    run_child(("git", *identity, "-c", "commit.gpgsign=false", "commit", "-qm", "tree"), root, env)
    marker.write_text(str(total), encoding="ascii")
    return total


def measure(root: Path, commands: Sequence[Command], runs: int, digest: str) -> dict[str, Any]:
    """``runs`` rounds of every command, in order; a summary per command."""
    samples: dict[str, list[tuple[float, int]]] = {command.label: [] for command in commands}
    for round_ in range(runs):
        print(f"  round {round_ + 1}/{runs}", file=sys.stderr, flush=True)
        for command in commands:
            if command.before is not None:
                command.before()
            seconds, rss, output = run_child(command.argv, root, command.env)
            if command.after is not None:
                command.after()
            if command.label.startswith("freshinstall f") and output.strip() != digest:
                raise BenchmarkError(f"`{command.label}` printed {output.strip()!r}, not {digest}")
            samples[command.label].append((seconds, rss))
    return {
        label: {
            "median_s": statistics.median(seconds for seconds, _ in values),
            "min_s": min(seconds for seconds, _ in values),
            "max_s": max(seconds for seconds, _ in values),
            "samples_s": [seconds for seconds, _ in values],
            "peak_rss_mb": max(rss for _, rss in values) * 1024 / 1e6,
        }
        for label, values in samples.items()
    }


def bench_size(work: Path, files: int, runs: int, env: Mapping[str, str]) -> dict[str, Any]:
    root = work / f"tree-{files}"
    print(f"{files} files: preparing {root}", file=sys.stderr, flush=True)
    total = make_tree(root, files, env)
    shutil.rmtree(root / "dist", ignore_errors=True)
    # Files changed within the racy margin are never trusted by the cache: let them age first.
    newest = os.lstat(root / ".git" / "index").st_mtime_ns
    time.sleep(max(0.0, (newest + quick.MARGIN_NS - time.time_ns()) / 1e9 + 0.1))
    fresh = (*freshinstall_argv(), "fingerprint")
    cache, index = root / "dist" / quick.FILENAME, work / f"index-{files}"
    digest = run_child((*fresh, "--no-cache"), root, env)[2].strip()
    # Warm up: git refreshes its index (a user's git status would), then the run that records
    # the answer writes the cache and .pyc files.
    for argv in (("git", "status", "--porcelain"), ("git", "status", "--porcelain"), fresh):
        run_child(argv, root, env)
    seen: list[tuple[int, int]] = []

    def unchanged() -> None:
        if seen.pop() != _identity(cache):
            raise BenchmarkError(f"`{NO_CHANGE}` rewrote its cache: not the no-change path")

    def written() -> None:
        _identity(cache)

    commands = [
        Command(NO_CHANGE, fresh, env, lambda: seen.append(_identity(cache)), unchanged),
        Command(GIT_STATUS, ("git", "status", "--porcelain"), env),
        Command(COLD, (*fresh, "--no-cache"), env),
        Command(
            GIT_ADD,
            ("git", "add", "-A"),
            {**env, "GIT_INDEX_FILE": str(index)},
            lambda: index.unlink(missing_ok=True),
        ),
        Command(FIRST, fresh, env, lambda: cache.unlink(missing_ok=True), written),
        Command(FLOOR, (sys.executable, "-c", "pass"), env),
        Command(START, (*freshinstall_argv(), "--version"), env),
    ]
    results = measure(root, commands, runs, digest)
    index.unlink(missing_ok=True)
    return {"files": files, "bytes": total, "results": results}


def _identity(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise BenchmarkError(f"{path} was not written: the stat cache is not in use") from None
    return info.st_ino, info.st_mtime_ns


def bench_memory(work: Path, files: int, runs: int, env: Mapping[str, str]) -> dict[str, Any]:
    root = work / f"tree-{files}"
    print(f"memory: a sparse 1 GiB file in {root}", file=sys.stderr, flush=True)
    big = root / "big.bin"
    with big.open("wb") as file:
        file.truncate(BIG_FILE)
    try:
        digest = run_child((*freshinstall_argv(), "fingerprint", "--no-cache"), root, env)[2]
        command = Command(BIG, (*freshinstall_argv(), "fingerprint", "--no-cache"), env)
        return measure(root, [command], runs, digest.strip())
    finally:
        big.unlink()


def freshinstall_argv() -> tuple[str, ...]:
    script = Path(sys.executable).with_name("freshinstall")
    return (str(script),) if script.is_file() else (sys.executable, "-m", "freshinstall")


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    return {
        "platform": f"{platform.platform()}, {cpu}, {os.cpu_count()} CPUs",
        "python": f"{platform.python_version()} ({sys.executable})",
        "git": git.stdout.strip(),
        "command": " ".join(freshinstall_argv()),
        "rss": f"{GNU_TIME} -f %M" if GNU_TIME else "wait4 (includes this script's RSS)",
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])


def verdicts(sizes: list[dict[str, Any]], memory: dict[str, Any] | None) -> list[str]:
    lines = []
    for size in sizes:
        files, results = size["files"], size["results"]
        ratio = results[NO_CHANGE]["median_s"] / results[GIT_STATUS]["median_s"]
        target = f"(target <= {NO_CHANGE_TARGET}x at {NO_CHANGE_AT:,})"
        passed = "PASS" if ratio <= NO_CHANGE_TARGET else "FAIL"
        lines.append(
            f"{passed if files == NO_CHANGE_AT else 'info'}: nothing changed, {files:,} files: "
            f"{NO_CHANGE} / {GIT_STATUS} = {ratio:.2f}x {target}"
        )
        ratio = results[COLD]["median_s"] / results[GIT_ADD]["median_s"]
        lines.append(
            f"{'PASS' if ratio <= COLD_TARGET else 'FAIL'}: cold, {files:,} files: "
            f"{COLD} / {GIT_ADD} = {ratio:.2f}x (target <= {COLD_TARGET}x)"
        )
    if memory is not None:
        peak = memory[BIG]["peak_rss_mb"]
        lines.append(
            f"{'PASS' if peak < MEMORY_TARGET_MB else 'FAIL'}: peak memory with a 1 GiB file: "
            f"{peak:.1f} MB (target < {MEMORY_TARGET_MB:.0f} MB)"
        )
    return lines


def render(data: dict[str, Any]) -> str:
    info, sizes = data["machine"], data["sizes"]
    bytecode = "set" if data["pythondontwritebytecode_in_parent"] else "not set"
    lines = [
        f"machine: {info['platform']}",
        f"python:  {info['python']}",
        f"git:     {info['git']}",
        f"command: {info['command']}; peak RSS from {info['rss']}",
        f"load:    {data['load_before']} before, {data['load_after']} after (1/5/15-min averages)",
        f"note:    children run without PYTHONDONTWRITEBYTECODE ({bytecode} here), as users",
        "         have bytecode caching; HOME in a sandbox and GIT_CONFIG_NOSYSTEM=1",
        f"trees:   text-like files, {AVERAGE_SIZE // 1024} KiB on average (0-16 KiB), committed",
        f"runs:    median of {data['runs']} whole-process runs per command, interleaved by round",
    ]
    for size in sizes:
        lines += ["", f"== {size['files']:,} files, {size['bytes'] / 1e6:.0f} MB ==", *_table(size)]
    if len(sizes) > 1:
        head = "".join(f"{size['files']:>9,}" for size in sizes)
        lines += [
            "",
            "== growth: median ms by number of files ==",
            f"{'command':<41}{head}  growth",
        ]
        for label in sizes[0]["results"]:
            medians = [size["results"][label]["median_s"] * 1000 for size in sizes]
            cells = "".join(f"{median:>9.0f}" for median in medians)
            lines.append(f"{label:<41}{cells}  {medians[-1] / medians[0]:>5.1f}x")
    if data["memory"] is not None:
        lines += ["", f"== {sizes[0]['files']:,} files plus a sparse 1 GiB file =="]
        lines += _table({"results": data["memory"]})
    return "\n".join([*lines, "", *data["verdicts"]])


def _table(size: dict[str, Any]) -> list[str]:
    rows = [f"{'command':<41}{'median ms':>10}{'min':>8}{'max':>8}{'peak RSS MB':>13}"]
    for label, result in size["results"].items():
        times = "".join(
            f"{result[key] * 1000:>{width}.1f}"
            for key, width in (("median_s", 10), ("min_s", 8), ("max_s", 8))
        )
        rows.append(f"{label:<41}{times}{result['peak_rss_mb']:>13.1f}")
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time freshinstall fingerprint against git.")
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"file counts, comma-separated (default {DEFAULT_SIZES}; 100000 needs ~1.4 GB disk)",
    )
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="rounds (at least 5)")
    parser.add_argument("--workdir", type=Path, help="keep the generated trees here, for reuse")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1 GiB measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.runs < MIN_RUNS:
        parser.error(f"--runs must be at least {MIN_RUNS}: a median of fewer runs is noise")
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error("--sizes takes comma-separated integers, e.g. 1000,10000")
    if args.sizes[0] < 10:
        parser.error("--sizes: at least 10 files")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = loadavg()
    with tempfile.TemporaryDirectory(prefix="freshinstall-bench-") as scratch:
        work = (args.workdir or Path(scratch)).resolve()
        (Path(scratch) / "home").mkdir()
        env = {
            name: value
            for name, value in os.environ.items()
            if name != "PYTHONDONTWRITEBYTECODE" and not name.startswith(("GIT_", "FRESHINSTALL_"))
        }
        env.update(HOME=str(Path(scratch) / "home"), GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
        try:
            sizes = [bench_size(work, files, args.runs, env) for files in args.sizes]
            memory = None if args.no_memory else bench_memory(work, args.sizes[0], args.runs, env)
        except BenchmarkError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    data = {
        "machine": machine(),
        "runs": args.runs,
        "load_before": load_before,
        "load_after": loadavg(),
        "pythondontwritebytecode_in_parent": "PYTHONDONTWRITEBYTECODE" in os.environ,
        "sizes": sizes,
        "memory": memory,
        "verdicts": verdicts(sizes, memory),
    }
    print(json.dumps(data, sort_keys=True) if args.json else render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
