"""How much does compiling a new build environment beside its first hook save?

uv installs a backend without bytecode, so the first hook run in a new build environment
compiles every module it imports (freshinstall.buildenv.compiling). This script makes a new
environment for ``examples/greet``'s build requirements, round after round, exactly as a build
does (buildenv.BuildEnv.create, then its install), and times the two hooks of a wheel build
through pyproject-hooks, as pypa/build calls them: once with the compiler running beside them,
once without, alternating. It prints the medians and their ratio.

Everything goes into a throw-away directory, uv's cache included (setuptools is downloaded once
per run of the script), so the real user's caches are never touched::

    python benchmarks/bench_first_hook.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pyproject_hooks import BuildBackendHookCaller

from freshinstall import buildenv
from freshinstall._process import run
from freshinstall.install import find_uv

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "greet"
REQUIREMENTS = ["setuptools>=64"]
BACKEND = "setuptools.build_meta"


def time_hooks(root: Path, uv: str, *, compile_beside: bool) -> tuple[float, float]:
    """Seconds of the first and the second hook in a new environment."""
    for name in ("env", "out", "src"):
        shutil.rmtree(root / name, ignore_errors=True)
    env = buildenv.BuildEnv.create(root / "env", uv, python=None, stream=False)
    env.install(REQUIREMENTS)
    source = root / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info"))
    environ = {**os.environ, **env.make_extra_environ()}
    environ.pop("PYTHONDONTWRITEBYTECODE", None)

    def runner(
        cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        run(cmd, cwd=cwd, env={**environ, **(extra_environ or {})})

    hooks = BuildBackendHookCaller(
        str(source), BACKEND, python_executable=env.python_executable, runner=runner
    )
    compiler = buildenv.compiling(env, environ) if compile_beside else contextlib.nullcontext()
    with compiler:
        start = time.perf_counter()
        hooks.get_requires_for_build_wheel()
        first = time.perf_counter() - start
        start = time.perf_counter()
        hooks.build_wheel(str(root / "out"))
    # With the wait for the compiler to stop, which a build pays too.
    second = time.perf_counter() - start
    return first, second


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds (default 7)")
    args = parser.parse_args(argv)
    uv = find_uv()
    samples: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="bench-first-hook-") as scratch:
        root = Path(scratch)
        os.environ["UV_CACHE_DIR"] = str(root / "uv-cache")
        time_hooks(root, uv, compile_beside=False)  # warm-up: downloads setuptools
        for round_ in range(args.runs):
            print(f"round {round_ + 1}/{args.runs}", file=sys.stderr, flush=True)
            for compile_beside in (False, True):
                samples[compile_beside].append(time_hooks(root, uv, compile_beside=compile_beside))
    print(f"backend: {BACKEND} ({', '.join(REQUIREMENTS)}), project: examples/greet")
    print(f"runs:    median of {args.runs}, a new environment each time, alternating\n")
    print(f"{'':<26}{'first hook s':>14}{'second hook s':>15}")
    medians = {}
    for compile_beside, label in ((False, "without the compiler"), (True, "with the compiler")):
        first = statistics.median(sample[0] for sample in samples[compile_beside])
        second = statistics.median(sample[1] for sample in samples[compile_beside])
        medians[compile_beside] = first + second
        print(f"{label:<26}{first:>14.3f}{second:>15.3f}")
    print(f"\nboth hooks, with / without: {medians[True] / medians[False]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
