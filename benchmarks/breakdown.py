"""Where the time of a no-change ``freshinstall fingerprint`` goes, part by part, on this machine.

Two kinds of figure, each the median of ``--runs``:

* start-up: whole ``python -c "import ..."`` processes minus ``python -c pass``, for the modules
  of the no-change answer (freshinstall/quick.py), of the full computation and of the install
  quick path (see freshinstall/launch.py), all of the click command line, and click;
* the work, in this process, on the project TREE (a tree of benchmarks/bench_fingerprint.py's,
  e.g. ``--workdir /tmp/fpbench`` then ``/tmp/fpbench/tree-10000``, after one
  ``freshinstall fingerprint`` there): one ``lstat`` per input (the floor of any per-file
  check), each step of the no-change answer (with the witness of git's index, and the steps
  it saves when there is none), the steps of the full computation, and hashing every input in
  one process and with a forked child.

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

from freshinstall import fingerprint, gitindex, quick, statcache

IMPORTS = {
    "fingerprint, no-change answer": "freshinstall.launch, freshinstall.quick",
    "fingerprint, full computation": (
        "freshinstall.launch, freshinstall.inputs, freshinstall.config"
    ),
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
    cache_dir = os.fspath(root / "dist")
    loaded = quick.read_cache(cache_dir)
    if loaded is None or not loaded[1] or quick.cached_fingerprint(os.fspath(root)) is None:
        print(f"error: no answer recorded in {cache_dir}: run `freshinstall fingerprint` there")
        return 1
    records, _, trusted_before = loaded

    env, where = quick.git_env(), os.fspath(root)

    def git(*args: str) -> bytes:
        return quick.git_output(*quick.start_git(where, args, env))

    def stat_cache_pass() -> list[fingerprint.FileEntry]:
        # Without save(): the module's hash_files would rewrite the cache without the answer.
        return statcache.StatCache(root / "dist").hash_files(root, paths)

    listing = fingerprint.listed_inputs(root)
    started = time.time_ns()
    work_tree = listing.work_tree or where
    todo = [(path, prefix + path, os.lstat(prefix + path)) for path in paths]
    entries = stat_cache_pass()
    cache = statcache.StatCache(root / "dist")
    cache.hash_files(root, paths)
    parts: dict[str, Callable[[], object]] = {
        f"lstat of the {len(paths):,} inputs": lambda: [os.lstat(prefix + path) for path in paths],
        "no-change answer, whole (one process)": lambda: quick.cached_fingerprint(where),
        "  reading the answer": lambda: quick.read_cache_file(cache_dir),
        "  git ls-files --others (its own process)": lambda: git(*quick.OTHERS),
        "  git diff-files (its own process)": lambda: git(
            f"--work-tree={work_tree}", *quick.DIFF_FILES
        ),
        "  without a witness: reading every record": lambda: quick.read_cache(cache_dir),
        "  without a witness: stat checks (one process)": lambda: quick.unchanged(
            prefix, records, trusted_before
        ),
        "  without a witness: git ls-files (its own process)": lambda: git(*quick.LS_FILES),
        "full computation: listing (git ls-files and filtering)": lambda: fingerprint.list_inputs(
            root
        ),
        "full computation: stat-cache pass (load, lstat, compare)": stat_cache_pass,
        "full computation: the witness (reading git's index)": lambda: gitindex.witness(
            where, work_tree, listing.index_identity, cache.records, started - quick.MARGIN_NS
        ),
        "full computation: combining the digest": lambda: fingerprint.combine(entries),
        "hashing every input, one process": lambda: statcache.hash_in_one_process(todo),
        "hashing every input, with a forked child": lambda: statcache.hash_many(todo),
    }
    for label, work in parts.items():
        print(f"{label}: {median_ms(work, args.runs):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
