"""Isolated build environments, made by uv and kept while they hold what a new one would.

A build environment holds the project's build requirements and nothing else, whichever way it
was made, so a reused one gives the same wheel as a new one. Making a new one for every build
costs a `uv venv` and a `uv pip install` (uv finds the interpreter each time), and the backend
is then imported from files uv installed without bytecode, once per hook. Reused, the second
build onwards pays none of that (benchmarks/bench_install.py; docs/performance.md). The build
that makes one has its modules compiled on another core while its hooks run (:func:`compiling`).

Rules, so that reuse never changes a build:

* The key is everything that chooses the environment's contents: the requirements, ``--python``,
  the uv executable, the UV_* variables (index, resolution and interpreter settings) and, when no
  interpreter is given, PATH, which uv searches for one.
* An environment is handed out without a question for an hour after it was made or last
  checked. After that, uv is asked which interpreter it would make it on and how the
  requirements resolve now (:func:`still_current`); the environment is used, and counts as
  checked, only when it is on that interpreter and holds exactly that resolution, name for name
  and version for version. Otherwise (a new release of a backend, another default Python, a
  requirement uv cannot pin by version; on Windows, where the environment's python.exe names
  no interpreter, always) a new environment is made. So a new release reaches builds within
  the hour, as uv's own cached index pages allow (it keeps them as long as the index's
  Cache-Control header says; pypa/pip#13680). When uv cannot answer (offline), or no new
  environment can be made, the kept one is used as it is (:func:`environment`).
* Requirements a backend asks for at build time (``get_requires_for_build_wheel``) are never
  added to a shared environment: the build moves to the environment keyed by all of them.
* An environment is used only once complete (a marker written after the install, whose mtime
  says when it was made or last checked), made and checked under a lock per key, never renamed
  (scripts in it hold absolute paths), and deleted, under its key's lock, once it has gone
  unchecked and unused for a week, or for a day once a newer environment of its key replaced
  it: no build can still be using it, since none gets it an hour after a check, or, used
  unchecked, a day after the use it recorded (USED).
* A cache directory that cannot be written means a throw-away environment in the build's
  scratch directory, as before.

The cache is ``$XDG_CACHE_HOME/freshinstall/build-envs`` (default ``~/.cache/...``); deleting it
is always safe between runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path

from freshinstall._process import last_line, run, run_bytes, start_quiet
from freshinstall.errors import BuildError, CommandError

SCHEME = "freshinstall-buildenv-1"
#: How long after it was made or last checked an environment is handed out without a check.
REUSE_NS = 3600 * 10**9
#: How long after uv could not check it (offline) an environment is handed out without asking
#: again: every build would otherwise wait for uv to give up on the index, 1.2-1.9 s.
RECHECK_NS = 10 * 60 * 10**9
#: How long an environment can go unchecked and unused (a half-made one: since it was made)
#: before it is deleted; one with a newer environment of its key, which replaced it, goes sooner.
DELETE_NS = 7 * 24 * 3600 * 10**9
REPLACED_DELETE_NS = 24 * 3600 * 10**9
#: How recently checked a kept environment must be to be used as it is when uv cannot check it
#: or no new one can be made: a week-old resolution is too old to stand in for today's.
FALLBACK_NS = DELETE_NS - REPLACED_DELETE_NS
#: Written once the environment is complete; its mtime is when it was made or last checked.
COMPLETE = "freshinstall-complete"
#: Beside the marker: the identity of the interpreter the environment was made on.
INTERPRETER = "freshinstall-interpreter"
#: Beside the marker: its mtime is when the environment was last used without a check.
USED = "freshinstall-used"
#: Beside the marker: its mtime is when uv last could not check the environment.
UNCONFIRMED = "freshinstall-unconfirmed"
#: Verdicts of :func:`still_current` on a kept environment.
CURRENT, OUTDATED, MOVED = "current", "outdated", "moved"


class BuildEnv:
    """A virtual environment for one backend (the ``IsolatedEnv`` protocol of pypa/build)."""

    def __init__(self, path: Path, uv: str, *, stream: bool, new: bool = False) -> None:
        self.path = path
        self.uv = uv
        self.stream = stream
        #: Made by this build: its modules have no bytecode yet (see :func:`compiling`).
        self.new = new
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
        return cls(path, uv, stream=stream, new=True)

    @property
    def python_executable(self) -> str:
        return str(self.bin_dir / ("python.exe" if os.name == "nt" else "python"))

    def interpreter(self) -> str:
        """The interpreter uv made the environment on, as uv named it (see chosen_interpreter)."""
        return chosen_interpreter(self.python_executable)

    def make_extra_environ(self) -> dict[str, str]:
        return {
            "PATH": os.pathsep.join([str(self.bin_dir), os.environ.get("PATH", "")]),
            "PYTHONPATH": "",
            "VIRTUAL_ENV": str(self.path),
        }

    def install(self, requirements: Collection[str]) -> None:
        if not requirements:
            return
        argv = [self.uv, "pip", "install", "--python", self.python_executable]
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        try:
            run([*argv, *sorted(requirements)], cwd=self.path, env=env, stream=self.stream)
        except CommandError as error:
            reason = f"could not install the build requirements: {last_line(error.output)}"
            raise BuildError(reason, error.output) from None


def environment(
    requirements: Collection[str],
    scratch: Path,
    *,
    uv: str,
    python: str | None,
    stream: bool,
    note: Callable[[str], None] | None = None,
) -> BuildEnv:
    """An environment holding exactly ``requirements``: from the cache, or made now.

    ``scratch`` is the build's own directory, for a throw-away environment when the cache
    cannot be used. When, after the hour, uv cannot check the kept environment, or no new one
    can be made (offline, say: uv does not fall back on a stale cached index page when the
    index cannot be reached), the kept one is used as it is, and ``note`` is told why: it held
    exactly the resolution of its last check, and a build that fails instead helps no one.
    Only if it was checked within FALLBACK_NS, uv would not choose another interpreter now,
    and the use can be recorded (USED), which keeps other builds from deleting it meanwhile.
    It is not marked checked: after uv could not check it, builds use it for RECHECK_NS
    without asking, then ask again.
    """
    import filelock

    cache = cache_dir()
    key = _key(requirements, uv, python, cache)
    try:
        if cache is None:
            raise FileNotFoundError("no cache directory")
        cache.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(cache / f"{key}.lock")
        lock.acquire()
    except OSError:
        return _throw_away(requirements, scratch, uv=uv, python=python, stream=stream)
    try:
        now = time.time_ns()
        _delete_unused(cache, key, now)
        found = _reusable(cache, key, now)
        kept = None
        if found is not None:
            env = BuildEnv(found, uv, stream=stream)
            if _checked(found) > now - REUSE_NS:
                return env
            kept = env if _checked(found) > now - FALLBACK_NS else None
            # uv could not check it minutes ago: not asked again yet.
            asked_lately = _unconfirmed(found) > now - RECHECK_NS
            if kept is not None and asked_lately and _mark_used(found, now):
                return kept
            try:
                verdict = still_current(env, requirements, python)
            except UnconfirmedError as error:
                reason = f"uv could not check the kept build environment ({error})"
                if kept is not None and _use_kept(kept, reason, now, note, unconfirmed=True):
                    return kept
            else:
                if verdict == CURRENT and _mark_checked(found, now):
                    return env
                if verdict == MOVED:  # another interpreter now: never stands in for it
                    kept = None
        path = cache / f"{key}-{now}"
        try:
            env = _fill(BuildEnv.create(path, uv, python=python, stream=stream), requirements)
            identity = _dumps(_file_identity(env.interpreter()))
            (path / INTERPRETER).write_bytes(identity)
            (path / COMPLETE).write_text(json.dumps(sorted(requirements)) + "\n", "utf-8")
        except (BuildError, OSError) as error:
            # Half made, and no one else can have it.
            shutil.rmtree(path, ignore_errors=True)
            why = error.reason if isinstance(error, BuildError) else error
            reason = f"no new build environment could be made ({why})"
            if kept is not None and _use_kept(kept, reason, now, note):
                return kept
            # The cache's disk may be full where the scratch space is not: make the throw-away
            # environment of old. (A requirement that cannot be installed fails there again,
            # with the same message.)
            return _throw_away(requirements, scratch, uv=uv, python=python, stream=stream)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return env
    finally:
        lock.release()


def _use_kept(
    env: BuildEnv,
    reason: str,
    now: int,
    note: Callable[[str], None] | None,
    *,
    unconfirmed: bool = False,
) -> bool:
    """Record that ``env`` is used unchecked now (and, ``unconfirmed``, that uv could not check
    it), and say why (see :func:`environment`). False if the use cannot be recorded: then it
    must not be used, as another build could delete it meanwhile (see :func:`_delete_unused`)."""
    markers = (USED, UNCONFIRMED) if unconfirmed else (USED,)
    if not all(_touch(env.path / marker, now) for marker in markers):
        return False
    if note is not None:
        hours = (now - _checked(env.path)) // (3600 * 10**9)
        note(f"{reason}; building in the kept one as it was {hours} h ago")
    return True


def _throw_away(
    requirements: Collection[str], scratch: Path, *, uv: str, python: str | None, stream: bool
) -> BuildEnv:
    return _fill(BuildEnv.create(scratch, uv, python=python, stream=stream), requirements)


def cache_dir() -> Path | None:
    """$XDG_CACHE_HOME/freshinstall/build-envs, or under ~/.cache; None without either.

    A relative XDG_CACHE_HOME is ignored, as the XDG base directory spec says.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base, "freshinstall", "build-envs")


def _fill(env: BuildEnv, requirements: Collection[str]) -> BuildEnv:
    env.install(requirements)
    return env


#: Run by a new environment's interpreter, beside the build's hooks: writes the bytecode of
#: every module in the site-packages directories it is given that has none yet, last file
#: first, until its stdin closes. Python 3.7 or later (older ones have no
#: PycInvalidationMode: the script then compiles nothing). Not niced: it does work the first
#: hook would otherwise do, and at nice 19 the first hook was 0.03 s slower and the second
#: 0.04 s, medians of 9 (benchmarks/bench_first_hook.py, on a VM with other load). os.read
#: and os._exit: a thread blocked in sys.stdin's reader would hold that reader's lock at
#: interpreter shutdown, which Python 3.11 ends with a fatal error.
_COMPILE = """\
import importlib.util, os, py_compile, sys, threading
done = threading.Event()
def watch():
    try:
        os.read(0, 1)
    finally:
        done.set()
threading.Thread(target=watch, daemon=True).start()
paths = []
for site in sys.argv[1:]:
    for directory, subdirectories, names in os.walk(site):
        if done.is_set():
            os._exit(0)
        subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
        paths += [os.path.join(directory, name) for name in names if name.endswith(".py")]
for path in sorted(paths, reverse=True):
    if done.is_set():
        break
    cache = importlib.util.cache_from_source(path)
    if not os.path.exists(cache):
        try:
            py_compile.compile(path, cache, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
        except Exception:
            pass
os._exit(0)
"""


@contextlib.contextmanager
def compiling(env: BuildEnv, environ: Mapping[str, str]) -> Iterator[None]:
    """Compile a new environment's modules on another core while the build runs in it.

    uv installs the backend without bytecode, so the first hook in a new environment compiles
    every module it imports, one after the other. A second interpreter compiling the
    environment's modules from the other end of the list meets the hook part of the way: the
    first hook of setuptools took 0.50-0.63 s with it and 0.82-0.87 s without, medians of seven
    in two runs of benchmarks/bench_first_hook.py; compiling exactly the hook's modules in the
    reverse of their import order saved only about 0.05 s more (docs/performance.md).

    It writes the files import would write (the cache path, optimization level and timestamp
    invalidation of the same interpreter under the same ``environ``), each atomically, as import
    does, and stops after the file at hand when the build is done with it. Not for an
    environment the build did not make (compiled by its earlier builds), nor when
    PYTHONDONTWRITEBYTECODE asks for no bytecode, nor for a relative PYTHONPYCACHEPREFIX (the
    helper runs elsewhere than the hooks), nor with a single CPU to run on, where it would only
    take turns with the build. It runs in a session of its own, so that Ctrl-C, which reaches
    the build, cannot cut a file short; the closed pipe stops it. Nothing it does can fail the
    build.
    """
    sites = [str(site) for site in _site_dirs(env.path)]
    prefix = environ.get("PYTHONPYCACHEPREFIX")
    if (
        not (env.new and sites)
        or environ.get("PYTHONDONTWRITEBYTECODE")
        or (prefix and not os.path.isabs(prefix))
        or _one_cpu()
    ):
        yield
        return
    argv = [env.python_executable, "-c", _COMPILE, *sites]
    helper = start_quiet(argv, cwd=env.path, env=environ, stream=env.stream)
    if helper is None:
        yield
        return
    try:
        yield
    finally:
        if helper.stdin is not None:
            with contextlib.suppress(OSError):
                helper.stdin.close()  # it stops after the file at hand
        helper.wait()


def _one_cpu() -> bool:
    """Whether this process may run on a single CPU only."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) == 1
    return (os.cpu_count() or 1) == 1


def _site_dirs(path: Path) -> list[Path]:
    from freshinstall.install import venv_site_dirs

    return [site for site in venv_site_dirs(path) if site.is_dir()]


def _key(requirements: Collection[str], uv: str, python: str | None, cache: Path | None) -> str:
    variables = sorted((name, value) for name, value in os.environ.items() if name[:3] == "UV_")
    data = [SCHEME, sorted(requirements), selector(python), _file_identity(uv), variables]
    data.append(_uv_configuration(cache))
    return hashlib.sha256(_dumps(data)).hexdigest()[:32]


def _uv_configuration(cache: Path | None) -> list[object]:
    """The uv.toml and pyproject.toml files `uv pip install` reads in the cache (which runs it
    in the environment's directory, below ``cache``), with a hash of each: an index URL set
    there changes what an environment holds. UV_CONFIG_FILE is among the UV_* variables."""
    config_home = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config_home):
        config_home = os.path.join(os.path.expanduser("~"), ".config")
    dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    candidates = [os.path.join(config_home, "uv", "uv.toml"), "/etc/uv/uv.toml"]
    candidates += [os.path.join(path, "uv", "uv.toml") for path in dirs.split(os.pathsep) if path]
    for directory in (cache, *cache.parents) if cache is not None else ():
        candidates += [str(directory / "uv.toml"), str(directory / "pyproject.toml")]
    return [[path, digest] for path in candidates if (digest := _file_sha256(path))]


def _file_sha256(path: str) -> str:
    """The sha256 of a small file; empty when it cannot be read (most candidates are absent)."""
    try:
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except OSError:
        return ""


def selector(python: str | None) -> list[object]:
    """What decides the interpreter uv picks for ``--python`` (None: uv's default)."""
    names = ["UV_PYTHON", "UV_PYTHON_PREFERENCE", "UV_MANAGED_PYTHON", "UV_NO_MANAGED_PYTHON"]
    names += ["UV_SYSTEM_PYTHON", "UV_PYTHON_INSTALL_DIR"]
    if python is None:  # then uv searches these too
        names += ["VIRTUAL_ENV", "CONDA_PREFIX"]
    if python is None or os.sep not in python:  # a version or a bare name: found on PATH
        names.append("PATH")
    return [python, [(name, os.environ[name]) for name in names if name in os.environ]]


def chosen_interpreter(python_executable: str) -> str:
    """The interpreter a virtual environment's ``python`` links to, as uv named it.

    Not resolved further: when that name is itself a link (``/usr/bin/python3``, a pyenv
    shim's target), re-pointing it to another Python shows in its real path, which
    :func:`interpreter_identity` records.
    """
    try:
        target = os.readlink(python_executable)
    except OSError:
        return python_executable
    return os.path.join(os.path.dirname(python_executable), target)


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
        data = json.loads(recorded)
    except (ValueError, RecursionError):
        return True
    match data:
        case [_, str(executable), _]:
            return interpreter_identity(python, executable) != recorded
        case _:
            return True


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


def _key_of(path: Path) -> str:
    """The key of the environment ``<key>-<ns>``."""
    return path.name.rpartition("-")[0]


def _mark_checked(path: Path, now: int) -> bool:
    """Record that the environment ``path`` was checked ``now``. False if that cannot be
    written: then it must not be handed out, as its old check time would let another build
    delete it while this one uses it."""
    try:
        os.utime(path / COMPLETE, ns=(now, now))
    except OSError:
        return False
    return True


def _mark_used(path: Path, now: int) -> bool:
    """Record that the environment ``path`` is used unchecked ``now``; False if that cannot be
    written (then it must not be used: see :func:`_use_kept`)."""
    return _touch(path / USED, now)


def _touch(path: Path, now: int) -> bool:
    try:
        path.touch()
        os.utime(path, ns=(now, now))
    except OSError:
        return False
    return True


def _used(path: Path) -> int:
    """When the environment ``path`` was last used without a check (0: never)."""
    return _mtime(path / USED)


def _unconfirmed(path: Path) -> int:
    """When uv last could not check the environment ``path`` (0: never)."""
    return _mtime(path / UNCONFIRMED)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _checked(path: Path) -> int:
    """When the environment ``path`` was made or last found to hold its resolution (0: never,
    it is not complete)."""
    return _mtime(path / COMPLETE)


def _reusable(cache: Path, key: str, now: int) -> Path | None:
    """The newest complete environment of ``key`` made on the interpreter it would be made on
    now, if any (made before ``now``: a clock set back does not hand out a newer one)."""
    candidates = []
    for path in cache.glob(f"{key}-*"):
        created = _created(path)
        if created is not None and created <= now:
            candidates.append((created, path))
    for _, path in sorted(candidates, reverse=True):
        # The interpreter it was made on must be the very same file still: not removed,
        # upgraded in place, or a link re-pointed to another Python.
        identity = _dumps(_file_identity(BuildEnv(path, "", stream=False).interpreter()))
        try:
            if (path / COMPLETE).is_file() and (path / INTERPRETER).read_bytes() == identity:
                return path
        except OSError:
            continue
    return None


def _delete_unused(cache: Path, key: str, now: int) -> None:
    """Delete the environments (complete or not) unchecked and unused (USED) for DELETE_NS, or
    for REPLACED_DELETE_NS when a newer environment of their key exists: none has been handed
    out for a day, so no build can be using them. Each is deleted under its key's lock, checked
    again there, so that a build checking it at that moment keeps it; ``key``'s lock is
    already held. The marker goes first: a deletion cut short never leaves an environment that
    looks complete. Never raises."""
    import filelock

    try:
        paths = [(path, created) for path in cache.iterdir() if (created := _created(path))]
    except OSError:
        return
    newest: dict[str, int] = {}  # of the complete ones: a half-made one replaces nothing
    for path, created in paths:
        if _checked(path):
            newest[_key_of(path)] = max(newest.get(_key_of(path), 0), created)

    def unused(path: Path, created: int) -> bool:
        replaced = created < newest.get(_key_of(path), 0)
        cutoff = now - (REPLACED_DELETE_NS if replaced else DELETE_NS)
        return max(created, _checked(path), _used(path)) < cutoff

    for path, created in paths:
        if not path.is_dir() or not unused(path, created):
            continue
        owner = _key_of(path)
        lock = None if owner == key else filelock.FileLock(cache / f"{owner}.lock")
        try:
            if lock is not None:
                lock.acquire(timeout=0)
        except (filelock.Timeout, OSError):
            continue  # a build holds it: it may be checking this one
        try:
            if unused(path, created):
                with contextlib.suppress(OSError):
                    (path / COMPLETE).unlink(missing_ok=True)
                shutil.rmtree(path, ignore_errors=True)
        finally:
            if lock is not None:
                with contextlib.suppress(OSError):
                    lock.release()


class UnconfirmedError(Exception):
    """uv could not say whether a kept environment is current (offline, say); the reason."""


def still_current(env: BuildEnv, requirements: Collection[str], python: str | None) -> str:
    """Whether ``env`` holds exactly what a new environment of ``requirements`` would get now:
    CURRENT, OUTDATED, or MOVED (uv would choose another interpreter); UnconfirmedError when
    uv cannot answer.

    Two questions to uv, at once:

    * which interpreter ``uv venv`` would choose now (``uv python find --system``, as ``uv venv``
      requires one, from the same directory): it must be the one ``env`` was made on, so that
      ``pyenv global`` or a new Python earlier on PATH reaches builds within the hour;
    * how the requirements resolve now, for that interpreter, with the settings the install
      would use (``uv pip compile``, run where ``uv pip install`` runs): the result must be the
      distributions installed in ``env``, name for name and version for version. A new
      release, or a dependency a backend dropped, means no.

    So does anything that cannot be compared: a requirement pinned to a URL or a path, an
    unreadable environment. uv failing (offline, say) is :class:`UnconfirmedError`, unless the
    interpreter alone says MOVED. The questions are asked with one retry of a failed request
    (UV_HTTP_RETRIES=1, unless set): with uv's default of three, an unreachable index took 6-10
    s to give up on, with one 1.2-1.9 s, and builds ask again RECHECK_NS later anyway.
    """
    from concurrent.futures import ThreadPoolExecutor

    variables = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    variables.setdefault("UV_HTTP_RETRIES", "1")
    find = [env.uv, "python", "find", "--system", "--no-config", *([python] if python else [])]
    compile_ = [env.uv, "pip", "compile", "-", "--python", env.python_executable]
    compile_ += ["--no-header", "--no-annotate", "--quiet", "--color", "never"]
    stdin = "".join(f"{requirement}\n" for requirement in sorted(requirements)).encode()

    def ask(argv: list[str], cwd: Path, stdin: bytes | None = None) -> str:
        try:
            output = run_bytes(
                argv, cwd=cwd, env=variables, stream=env.stream, stdin=stdin, capture=True
            )
        except CommandError as error:
            raise UnconfirmedError(f"uv {argv[1]} {argv[2]}: {last_line(error.output)}") from None
        except OSError as error:
            raise UnconfirmedError(f"uv {argv[1]} {argv[2]}: {error}") from None
        return os.fsdecode(output)

    with ThreadPoolExecutor(1) as pool:
        chosen = pool.submit(ask, find, env.path.parent)
        try:
            resolved, unresolved = ask(compile_, env.path, stdin), None
        except UnconfirmedError as error:
            resolved, unresolved = "", error
        found = chosen.result()
    if os.path.realpath(found.strip()) != os.path.realpath(env.interpreter()):
        return MOVED
    if unresolved is not None:
        raise unresolved
    pins = _pins(resolved.splitlines())
    return CURRENT if pins is not None and pins == _installed(env.path) else OUTDATED


def _pins(lines: Iterable[str]) -> dict[str, str] | None:
    """``name==version`` lines as {canonical name: normalized version}; None for anything else."""
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    pins: dict[str, str] = {}
    for line in filter(None, (line.strip().removesuffix("\\").strip() for line in lines)):
        if line.startswith(("#", "--hash=")):  # a comment; a hash (uv.toml's generate-hashes)
            continue
        name, equals, version = line.partition("==")  # "name @ url", "--index-url ...": no
        name = name.partition("[")[0]  # the extras kept by no-strip-extras
        if not (equals and name):
            return None
        try:
            pins[canonicalize_name(name)] = str(Version(version))  # "1 ; marker": invalid
        except InvalidVersion:
            return None
    return pins


def _installed(path: Path) -> dict[str, str] | None:
    """The distributions installed in the environment at ``path``, as :func:`_pins` gives them
    (from the ``<name>-<version>.dist-info`` directories uv writes); None if unreadable."""
    found = _site_dirs(path)
    if len(found) != 1:
        return None
    try:
        names = [name for name in os.listdir(found[0]) if name.endswith(".dist-info")]
    except OSError:
        return None
    return _pins(name.removesuffix(".dist-info").replace("-", "==", 1) for name in names)
