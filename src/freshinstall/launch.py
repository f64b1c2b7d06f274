"""The console script: ``freshinstall fingerprint`` answers without loading the rest of the tool.

Scripts, editor hooks and CI run ``fingerprint`` before every step, and there start-up is most of
its cost: importing click and the install machinery takes longer than fingerprinting 10,000
unchanged files (benchmarks/bench_fingerprint.py prints both). So the plain forms of that one
command, ``fingerprint [--no-cache] [--json] [-v] [PATH]``, are recognised here; everything else,
``--help``, an option this does not know and shell completion included, goes to click
(:func:`freshinstall.cli.main`), which also formats any error.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

#: The flags of `fingerprint` that the quick path takes, and the parameter each one sets.
_FLAGS = {"--no-cache": "no_cache", "--json": "as_json", "-v": "verbose", "--verbose": "verbose"}


def run() -> None:
    """The console script."""
    sys.exit(main(sys.argv[1:]))


def main(argv: Sequence[str]) -> int:
    """Exit code of ``freshinstall ARGV``."""
    quick = _plain_fingerprint(argv)
    if quick is None:
        from freshinstall.cli import main as cli_main

        return cli_main(argv)
    path, flags = quick
    from freshinstall.errors import FreshinstallError

    try:
        text = fingerprint_text(path, no_cache=flags["no_cache"], as_json=flags["as_json"])
    except (FreshinstallError, OSError, KeyboardInterrupt) as error:
        from freshinstall.cli import report

        return report(error, verbose=flags["verbose"])
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return 0


def _plain_fingerprint(argv: Sequence[str]) -> tuple[Path, dict[str, bool]] | None:
    """``(PATH, flags)`` when ``argv`` is a plain `fingerprint` command line, else None."""
    if not argv or argv[0] != "fingerprint" or "_FRESHINSTALL_COMPLETE" in os.environ:
        return None
    flags = dict.fromkeys(_FLAGS.values(), False)
    paths = []
    for arg in argv[1:]:
        if arg in _FLAGS:
            flags[_FLAGS[arg]] = True
        elif arg and not arg.startswith("-"):
            paths.append(arg)
        else:
            return None  # --help, --, an unknown option, an empty PATH: click says what to do
    if len(paths) > 1:
        return None
    return Path(paths[0] if paths else "."), flags


def fingerprint_text(path: Path, *, no_cache: bool, as_json: bool) -> str:
    """What ``freshinstall fingerprint`` prints: the digest, or one JSON object."""
    from freshinstall import config
    from freshinstall.inputs import fingerprint_project
    from freshinstall.project import load_project

    project = load_project(path)
    _, result = fingerprint_project(project, config.load(project), use_cache=not no_cache)
    if not as_json:
        return result.digest
    summary = {"fingerprint": result.digest, "files": len(result.files)}
    return json.dumps({**summary, "extras": sorted(result.extras)})
