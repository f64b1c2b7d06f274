"""The console script: the two commonest command lines answer without importing click.

Scripts, editor hooks, Makefiles and CI run ``freshinstall .`` and ``freshinstall fingerprint``
before every step, and when nothing changed start-up is most of their cost: importing click
takes longer than the whole no-change check of a small project (benchmarks/bench_install.py
and benchmarks/bench_fingerprint.py print both). So two plain forms are recognised here:

* ``freshinstall [PATH]``: install, with no option at all;
* ``freshinstall fingerprint [--no-cache] [--json] [-v] [PATH]``.

Everything else, ``--help``, any option and shell completion included, goes to click
(:func:`freshinstall.cli.main`), which also formats the errors of both quick paths. Before
anything else, ``freshinstall fingerprint [PATH]`` asks :mod:`freshinstall.quick` whether the
recorded answer still holds, with nothing but ``os`` and ``zlib`` imported.
"""

from __future__ import annotations

import gc
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

#: The flags of `fingerprint` that the quick path takes, and the parameter each one sets.
_FLAGS = {"--no-cache": "no_cache", "--json": "as_json", "-v": "verbose", "--verbose": "verbose"}
#: The commands of freshinstall.cli (a test keeps the two in step): any other first word of a
#: command line is the PATH of `install`.
COMMANDS = frozenset({"install", "fingerprint", "status", "doctor", "watch", "clean"})


def run() -> None:
    """The console script: runs the command line, then ends the process with its exit code.

    It ends the process even for a caller that catches SystemExit (see :func:`_skip_teardown`);
    code that runs freshinstall in its own process and goes on calls :func:`main` instead.
    """
    import atexit

    _Exit.ends = True
    # Registered before the command runs, so that it runs after every exit handler the
    # command registers. Not when a handler came first (from sitecustomize, or coverage's
    # process start-up), which it would cut short; nor where atexit cannot tell; nor in
    # Python's development mode, whose teardown reports files left open.
    registered = getattr(atexit, "_ncallbacks", None)
    if registered is not None and registered() == 0 and not sys.flags.dev_mode:
        atexit.register(_skip_teardown, os.getpid())
    code = main(sys.argv[1:])
    _Exit.code = code
    sys.exit(code)


class _Exit:
    #: The exit code main() returned; None while it runs, or when it raised.
    code: int | None = None
    #: Whether the process ends once main() returns: in the console script (run).
    ends = False


def _skip_teardown(pid: int) -> None:
    """End the process, once main() has returned and every other exit handler has run.

    What is left of Python's exit then is the interpreter's teardown: clearing every module,
    and full garbage collections over every object the imports made. That does nothing a
    command needs: each closes what it opens, non-daemon threads have been joined, and the
    atexit handlers (weakref.finalize's, which removes forgotten temporary directories,
    among them) have run. Yet it took a quarter to a third of ``freshinstall fingerprint
    --no-cache`` on a small project (docs/performance.md, "Exiting"). So the output is
    flushed and the process ends with os._exit. Not after an exception escaped main(), which
    Python reports as always; not when the flush fails (a closed pipe, a full disk), which
    Python reports too; not in a forked child, which exits its own way (quick.fork).
    """
    if _Exit.code is None or os.getpid() != pid:
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):  # a closed pipe or stream: Python says so, as usual
        return
    os._exit(_Exit.code)


def main(argv: Sequence[str]) -> int:
    """Exit code of ``freshinstall ARGV``."""
    from freshinstall.quick import restore_sigchld

    restore_sigchld()  # else a failed build or install could read as a success
    quick = _quick(argv)
    if quick is None:
        from freshinstall.cli import main as cli_main

        return cli_main(argv)
    answer, verbose = quick
    try:
        _print(answer())
    except (Exception, KeyboardInterrupt) as error:
        from freshinstall.errors import FreshinstallError  # not before: it costs ms to import

        if not isinstance(error, (FreshinstallError, OSError, KeyboardInterrupt)):
            raise
        from freshinstall.cli import report

        return report(error, verbose=verbose)
    return 0


def _quick(argv: Sequence[str]) -> tuple[Callable[[], str], bool] | None:
    """For a plain command line, what to run for its stdout and whether -v was given; None
    for any other (click parses it and says what to do)."""
    if "_FRESHINSTALL_COMPLETE" in os.environ:
        return None
    if not argv or (len(argv) == 1 and _is_path(argv[0]) and argv[0] not in COMMANDS):
        target = argv[0] if argv else "."
        return (lambda: install_text(target)), False
    if argv[0] != "fingerprint":
        return None
    flags = dict.fromkeys(_FLAGS.values(), False)
    paths = []
    for arg in argv[1:]:
        if arg in _FLAGS:
            flags[_FLAGS[arg]] = True
        elif _is_path(arg):
            paths.append(arg)
        else:
            return None  # --help, --, an unknown option, an empty PATH
    if len(paths) > 1:
        return None
    target = paths[0] if paths else "."
    no_cache, as_json = flags["no_cache"], flags["as_json"]
    return (lambda: fingerprint_text(target, no_cache=no_cache, as_json=as_json)), flags["verbose"]


def _is_path(arg: str) -> bool:
    return bool(arg) and not arg.startswith("-")


def _print(text: str) -> None:
    """``text`` on stdout as click.echo writes it: nothing when stdout is closed, and
    characters the stream cannot encode replaced rather than failing after the work is done.
    A broken pipe is an OSError, reported as click's path reports it."""
    stream = sys.stdout
    if stream is None:
        return
    try:
        stream.write(text + "\n")
    except UnicodeEncodeError:
        encoding = stream.encoding or "utf-8"
        stream.buffer.write((text + "\n").encode(encoding, "replace"))
    stream.flush()


def install_text(path: str | Path) -> str:
    """Install ``path`` with the default options; the result line (see cli.install_command)."""
    from pathlib import Path

    from freshinstall.core import Options, describe, freshen
    from freshinstall.output import StderrReporter

    with StderrReporter(quiet=False) as reporter:
        return describe(freshen(Options(path=Path(path)), reporter))


def fingerprint_text(path: str | Path, *, no_cache: bool, as_json: bool) -> str:
    """What ``freshinstall fingerprint`` prints: the digest, or one JSON object."""
    if not (no_cache or as_json):
        from freshinstall.quick import cached_fingerprint

        answer = cached_fingerprint(os.fspath(path))
        if answer is not None:
            return answer
    early = None
    collecting = gc.isenabled()
    try:
        if no_cache:  # the inputs are listed and hashed while the rest is imported: early.py
            from freshinstall import early as early_module

            # No garbage collections in this computation, the child's included: the imports
            # make many objects, each collection visits them all (and writes to the pages the
            # two processes share), and the computation makes next to no cyclic garbage. 13%
            # faster at 1,000 files (docs/performance.md, "Exiting").
            gc.disable()
            early = early_module.start(os.fspath(path))
        from freshinstall import config
        from freshinstall.inputs import fingerprint_project
        from freshinstall.project import load_project

        project = load_project(path)
        settings = config.load(project)
        _, result = fingerprint_project(
            project, settings, use_cache=not no_cache, create_dist=True, early=early
        )
    finally:
        try:
            if early is not None:
                early.close()
        finally:
            # Back on for a library caller. Not in the console script, about to end: the
            # first allocation after gc.enable() set off a full collection (4 ms at 1,000 files).
            if collecting and not _Exit.ends:
                gc.enable()
    if not as_json:
        return result.digest
    import json

    summary = {"fingerprint": result.digest, "files": len(result.files)}
    return json.dumps({**summary, "extras": sorted(result.extras)})
