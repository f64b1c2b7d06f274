"""Isolated build environments, made by uv and kept for an hour per set of build requirements.

A build environment holds the project's build requirements and nothing else, whichever way it
was made, so a reused one gives the same wheel as a new one. Making a new one for every build
costs a `uv venv` and a `uv pip install` (uv finds the interpreter each time), and the backend
is then imported from files uv installed without bytecode, once per hook. Reused, the second
build onwards pays none of that (benchmarks/bench_install.py; docs/performance.md).

Rules, so that reuse never changes a build:

* The key is everything that chooses the environment's contents: the requirements, ``--python``,
  the uv executable, the UV_* variables (index, resolution and interpreter settings) and, when no
  interpreter is given, PATH, which uv searches for one.
* An environment is reused for an hour after it was made; after that a new one resolves the
  requirements again, so a new release of a backend reaches builds within the hour (a new
  environment per build would see it as soon as uv's cached index pages expire, which uv
  keeps as long as the index's Cache-Control header allows; pypa/pip#13680).
* Requirements a backend asks for at build time (``get_requires_for_build_wheel``) are never
  added to a shared environment: the build moves to the environment keyed by all of them.
* An environment is used only once complete (a marker written after the install), made under a
  lock per key, never renamed (scripts in it hold absolute paths), and deleted a day after it was
  made, by which time no build can still be using it (none is handed out after its first hour).
* A cache directory that cannot be written means a throw-away environment in the build's
  scratch directory, as before.

The cache is ``$XDG_CACHE_HOME/freshinstall/build-envs`` (default ``~/.cache/...``); deleting it
is always safe between runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Collection
from pathlib import Path

from freshinstall._process import last_line, run
from freshinstall.errors import BuildError, CommandError

SCHEME = "freshinstall-buildenv-1"
#: How long after it was made an environment is handed to new builds.
REUSE_NS = 3600 * 10**9
#: How long after it was made an environment (or a half-made one) is deleted.
DELETE_NS = 24 * 3600 * 10**9
COMPLETE = "freshinstall-complete"


class BuildEnv:
    """A virtual environment for one backend (the ``IsolatedEnv`` protocol of pypa/build)."""

    def __init__(self, path: Path, uv: str, *, stream: bool) -> None:
        self.path = path
        self._uv = uv
        self._stream = stream
        self.bin_dir = path / ("Scripts" if os.name == "nt" else "bin")

    @classmethod
    def create(cls, path: Path, uv: str, *, python: str | None, stream: bool) -> BuildEnv:
        argv = [uv, "venv", "--no-config", "--quiet", str(path)]
        if python:
            argv[2:2] = ["--python", python]
        try:
            run(argv, cwd=path.parent, stream=stream)
        except CommandError as error:
            raise BuildError(
                f"uv could not create the build environment: {last_line(error.output)}",
                error.output,
            ) from None
        return cls(path, uv, stream=stream)

    @property
    def python_executable(self) -> str:
        return str(self.bin_dir / ("python.exe" if os.name == "nt" else "python"))

    def make_extra_environ(self) -> dict[str, str]:
        return {
            "PATH": os.pathsep.join([str(self.bin_dir), os.environ.get("PATH", "")]),
            "PYTHONPATH": "",
            "VIRTUAL_ENV": str(self.path),
        }

    def install(self, requirements: Collection[str]) -> None:
        if not requirements:
            return
        argv = [self._uv, "pip", "install", "--python", self.python_executable]
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        try:
            run([*argv, *sorted(requirements)], cwd=self.path, env=env, stream=self._stream)
        except CommandError as error:
            reason = f"could not install the build requirements: {last_line(error.output)}"
            raise BuildError(reason, error.output) from None


def environment(
    requirements: Collection[str], scratch: Path, *, uv: str, python: str | None, stream: bool
) -> BuildEnv:
    """An environment holding exactly ``requirements``: from the cache, or made now.

    ``scratch`` is the build's own directory, for a throw-away environment when the cache
    cannot be used.
    """
    import filelock

    key = _key(requirements, uv, python)
    try:
        cache = cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(cache / f"{key}.lock")
        lock.acquire()
    except OSError:
        return _fill(BuildEnv.create(scratch, uv, python=python, stream=stream), requirements)
    try:
        now = time.time_ns()
        _delete_old(cache, now)
        found = _reusable(cache, key, now)
        if found is not None:
            return BuildEnv(found, uv, stream=stream)
        path = cache / f"{key}-{now}"
        try:
            env = _fill(BuildEnv.create(path, uv, python=python, stream=stream), requirements)
            marker = json.dumps(sorted(requirements)) + "\n"
            (path / COMPLETE).write_text(marker, encoding="utf-8")
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # half made, and no one else can have it
            raise
        return env
    finally:
        lock.release()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "freshinstall", "build-envs")


def _fill(env: BuildEnv, requirements: Collection[str]) -> BuildEnv:
    env.install(requirements)
    return env


def _key(requirements: Collection[str], uv: str, python: str | None) -> str:
    variables = sorted((name, value) for name, value in os.environ.items() if name[:3] == "UV_")
    data = [SCHEME, sorted(requirements), selector(python), _file_identity(uv), variables]
    return hashlib.sha256(_dumps(data)).hexdigest()[:32]


def selector(python: str | None) -> list[object]:
    """What decides the interpreter uv picks for ``--python`` (None: uv's default)."""
    names = ["UV_PYTHON", "UV_PYTHON_PREFERENCE", "UV_MANAGED_PYTHON", "UV_NO_MANAGED_PYTHON"]
    names += ["UV_SYSTEM_PYTHON", "UV_PYTHON_INSTALL_DIR"]
    if python is None:  # then uv searches these too
        names += ["PATH", "VIRTUAL_ENV", "CONDA_PREFIX"]
    return [python, [(name, os.environ[name]) for name in names if name in os.environ]]


def interpreter_identity(python: str | None, executable: str) -> str:
    """The interpreter a build ran on: how it was chosen (``--python`` and the variables uv
    reads), its file, and that file's size and mtime, which change when it is replaced."""
    return _dumps([selector(python), executable, _file_identity(executable)]).decode(
        "utf-8", "surrogateescape"
    )


def interpreter_changed(recorded: str, python: str | None) -> bool:
    """Whether a build with ``--python`` now would run on another interpreter than
    ``recorded`` (an :func:`interpreter_identity`; anything unreadable counts as changed)."""
    try:
        _, executable, _ = json.loads(recorded)
    except ValueError:
        return True
    if not isinstance(executable, str):
        return True
    return interpreter_identity(python, executable) != recorded


def _file_identity(path: str) -> list[object]:
    try:
        info = os.stat(path)
    except OSError:
        return [path]
    return [os.path.realpath(path), info.st_size, info.st_mtime_ns]


def _dumps(data: object) -> bytes:
    return json.dumps(data).encode("utf-8", "surrogateescape")


def _created(path: Path) -> int | None:
    """When the environment ``<key>-<ns>`` was made; None for anything else."""
    _, dash, created = path.name.rpartition("-")
    return int(created) if dash and created.isdigit() else None


def _reusable(cache: Path, key: str, now: int) -> Path | None:
    """The newest complete environment of ``key`` made less than REUSE_NS ago, if any."""
    candidates = []
    for path in cache.glob(f"{key}-*"):
        created = _created(path)
        if created is not None and now - REUSE_NS < created <= now:
            candidates.append((created, path))
    for _, path in sorted(candidates, reverse=True):
        env = BuildEnv(path, "", stream=False)
        # The interpreter it links to must still exist (a Python upgraded or removed).
        if (path / COMPLETE).is_file() and os.path.exists(env.python_executable):
            return path
    return None


def _delete_old(cache: Path, now: int) -> None:
    """Environments (complete or not) made more than DELETE_NS ago: no build can be using them."""
    for path in cache.iterdir():
        created = _created(path)
        if created is not None and created < now - DELETE_NS and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
