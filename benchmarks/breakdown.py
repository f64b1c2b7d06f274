"""Where the time of a no-change ``freshinstall fingerprint`` goes, part by part, on this machine.

Two kinds of figure, each the median of ``--runs``:

* start-up: whole ``python -c "import ..."`` processes minus ``python -c pass``, for the modules
  of each quick path (see freshinstall/launch.py), all of the click command line, and click;
* the work, in this process, on the project TREE (a tree of benchmarks/bench_fingerprint.py's,
  e.g. ``--workdir /tmp/fpbench`` then ``/tmp/fpbench/tree-10000``, with its stat cache warm):
  one ``lstat`` per input (the floor of any per-file check), listing the inputs with git, the
  stat-cache pass (lstat, compare, load the cache), and combining the digest.

    python benchmarks/breakdown.py TREE [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from freshinstall import fingerprint, statcache

IMPORTS = {
    "fingerprint quick path": "freshinstall.launch, freshinstall.inputs, freshinstall.config",
    "plain install quick path": "freshinstall.launch, freshinstall.core, freshinstall.output",
    "click command line": "freshinstall.cli",
    "click alone": "click",
}


def median_ms(work: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def process(code: str) -> Callable[[], object]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    argv = [sys.executable, "-c", code]
    return lambda: subprocess.run(argv, env=env, check=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args(argv)
    root = args.tree.resolve()

    floor = median_ms(process("pass"), args.runs)
    print(f"python -c pass: {floor:.1f} ms")
    for label, modules in IMPORTS.items():
        spent = median_ms(process(f"import {modules}"), args.runs) - floor
        print(f"imports, {label}: {spent:.1f} ms")

    paths = fingerprint.list_inputs(root)
    prefix = os.path.join(root, "")
    entries = statcache.hash_files(root, paths, root / "dist")
    parts: dict[str, Callable[[], object]] = {
        f"lstat of the {len(paths):,} inputs": lambda: [os.lstat(prefix + path) for path in paths],
        "listing the inputs (git ls-files and filtering)": lambda: fingerprint.list_inputs(root),
        "stat-cache pass (load, lstat, compare)": lambda: statcache.hash_files(
            root, paths, root / "dist"
        ),
        "loading the stat cache alone": lambda: statcache.load(root / "dist"),
        "combining the digest": lambda: fingerprint.combine(entries),
    }
    for label, work in parts.items():
        print(f"{label}: {median_ms(work, args.runs):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
