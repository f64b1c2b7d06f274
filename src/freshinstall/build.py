"""The clean PEP 517 build: a copy of exactly the fingerprinted files, an isolated environment.

Building from a fresh copy is what makes the wheel trustworthy: setuptools' ``build/lib`` and a
stale ``*.egg-info/SOURCES.txt`` never exist there, so nothing the user deleted can ride along,
and the build writes nothing into the user's tree. See docs/how-it-works.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from freshinstall import buildenv, fingerprint
from freshinstall._process import last_line, run
from freshinstall.errors import BuildError, CommandError

if TYPE_CHECKING:
    from build import ProjectBuilder

#: Each build's scratch directory in $TMPDIR, the lock its build holds in it, and the marker
#: saying the lock is held (see :func:`remove_abandoned_scratch`).
SCRATCH_PREFIX = "freshinstall-build-"
LOCK = ".lock"
OWNED = ".owned"


@dataclass(frozen=True)
class BuildResult:
    """A wheel in dist/ and the fingerprint of exactly the files it was built from."""

    wheel: Path
    sha256: str
    name: str
    version: str
    fingerprint: fingerprint.Fingerprint
    seconds: float
    #: The interpreter the backend ran on (as uv named it), and whether the wheel is for it alone.
    interpreter: str
    platform_specific: bool


def build_wheel(
    root: Path,
    paths: Iterable[str],
    dist_dir: Path,
    *,
    uv: str,
    python: str | None = None,
    config_settings: Mapping[str, str | list[str]] | None = None,
    extras: Mapping[str, str] | None = None,
    stream: bool = False,
    note: Callable[[str], None] | None = None,
) -> BuildResult:
    """Copy ``paths`` out of ``root``, build a wheel from the copy, move it into ``dist_dir``.

    ``note`` hears what the user should know but that does not stop the build."""
    start = time.monotonic()
    remove_abandoned_scratch()
    # ignore_cleanup_errors: another run's remove_abandoned_scratch() may, in a rare race,
    # re-create the lock file here while this directory is being removed; the wheel is already
    # in dist/ by then, and the leftover (without .owned) only costs disk.
    with (
        tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, ignore_cleanup_errors=True) as scratch,
        _owned(Path(scratch)),
    ):
        workdir = Path(scratch)
        source = _prepare_source(root, workdir)
        snap = fingerprint.snapshot(root, paths, source, extras)
        settings = dict(config_settings or {})
        built, interpreter = _run_backend(
            source, workdir, settings, uv=uv, python=python, stream=stream, note=note
        )
        wheel, sha256 = _publish(built, dist_dir)
    from packaging.utils import parse_wheel_filename

    name, version, _, tags = parse_wheel_filename(wheel.name)
    specific = any(tag.abi != "none" or tag.platform != "any" for tag in tags)
    seconds = time.monotonic() - start
    return BuildResult(wheel, sha256, str(name), str(version), snap, seconds, interpreter, specific)


@contextlib.contextmanager
def _owned(scratch: Path) -> Iterator[None]:
    """Hold ``scratch``'s lock while the build runs, and mark the directory ``.owned``.

    The marker is created only once the lock is held and removed before it is released, so a
    directory with the marker and a free lock is one whose build died (see
    :func:`remove_abandoned_scratch`).
    """
    import filelock

    lock = filelock.FileLock(scratch / LOCK)
    lock.acquire()
    try:
        (scratch / OWNED).touch()
        yield
    finally:
        (scratch / OWNED).unlink(missing_ok=True)
        lock.release()


def remove_abandoned_scratch() -> None:
    """Remove the scratch directories that killed builds left in $TMPDIR; never raises.

    A build killed with SIGKILL (or by a crash or power loss) cannot remove its scratch
    directory, a copy of the project and sometimes a whole build environment, so it would stay
    forever. A live build holds the flock lock in its directory; the OS releases such a lock
    when its process dies, so a lock we can take proves the owner is gone. The ``.owned``
    marker closes the window between creating the lock file and locking it: a directory
    without it is being made or removed, or is not a build's, and is left alone. Errors are
    ignored: this only saves disk.
    """
    import filelock

    tmp = tempfile.gettempdir()
    try:
        names = [name for name in os.listdir(tmp) if name.startswith(SCRATCH_PREFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(tmp, name)
        owned = os.path.join(path, OWNED)
        try:
            info = os.lstat(path)  # a symlink is not followed: it is never a build's
        except OSError:
            continue
        ours = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
        if not (ours and os.path.exists(owned)):
            continue
        lock = filelock.FileLock(os.path.join(path, LOCK))
        try:
            lock.acquire(timeout=0)
        except (filelock.Timeout, OSError):
            continue  # its build is alive, or the lock cannot be had: leave it
        try:
            if os.path.exists(owned):  # else its build just ended and is removing it
                _remove_marked_last(path)
        finally:
            with contextlib.suppress(OSError):
                lock.release()


def _remove_marked_last(path: str) -> None:
    """Remove the directory ``path``, its ``.owned`` marker last: a removal cut short leaves a
    directory that is still marked, so the next build removes the rest."""
    try:
        for name in os.listdir(path):
            if name not in (OWNED, LOCK):
                child = os.path.join(path, name)
                if os.path.isdir(child) and not os.path.islink(child):
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    os.unlink(child)
        if set(os.listdir(path)) - {OWNED, LOCK}:
            return  # something could not be removed: stay marked, for the next build
    except OSError:
        return
    for name in (LOCK, OWNED):
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(path, name))
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _prepare_source(root: Path, workdir: Path) -> Path:
    """Where the copy goes; inside a git work tree, the copy gets a git directory of its own.

    Version plugins (setuptools-scm, hatch-vcs, ...) then read the same commits, tags, branch
    and dirty state as in the user's tree, and the project keeps its place relative to the work
    tree root (for ``root = ".."`` settings). The copy's git directory is a linked-worktree
    style directory (HEAD, index, commondir) in our scratch space: git commands in the build,
    such as ``git describe --dirty``, refresh that index, never the user's.
    """
    src = workdir / "src"
    top = fingerprint.find_git_dir(root)
    if top is None:
        src.mkdir(parents=True)
        return src
    git_dir = _resolve_git_dir(top / ".git")
    common = git_dir
    with contextlib.suppress(OSError):
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    private = workdir / "git"
    private.mkdir()
    for name in ("HEAD", "index"):
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(git_dir / name, private / name)
    (private / "commondir").write_text(f"{common}\n", encoding="utf-8")
    target = src / root.relative_to(top)
    target.mkdir(parents=True, exist_ok=True)
    (src / ".git").write_text(f"gitdir: {private}\n", encoding="utf-8")
    return target


def _resolve_git_dir(dot_git: Path) -> Path:
    if dot_git.is_file():  # a worktree or submodule: ".git" holds "gitdir: <path>"
        text = dot_git.read_text(encoding="utf-8").strip()
        if text.startswith("gitdir:"):
            return (dot_git.parent / text.removeprefix("gitdir:").strip()).resolve()
    return dot_git.resolve()


def _run_backend(
    source: Path,
    workdir: Path,
    config_settings: dict[str, str | list[str]],
    *,
    uv: str,
    python: str | None,
    stream: bool,
    note: Callable[[str], None] | None = None,
) -> tuple[Path, str]:
    """Run the backend's hooks in an environment of its build requirements.

    Returns the wheel's path and the interpreter the backend ran on (see chosen_interpreter).
    """
    import build

    def runner(
        cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        run(cmd, cwd=cwd, env={**os.environ, **(extra_environ or {})}, stream=stream)

    def environment(requirements: set[str], scratch: str) -> ProjectBuilder:
        env = buildenv.environment(
            requirements, workdir / scratch, uv=uv, python=python, stream=stream, note=note
        )
        # Until the build is done (or moves to another environment): see buildenv.compiling.
        compiling.close()
        compiling.enter_context(buildenv.compiling(env, {**os.environ, **env.make_extra_environ()}))
        return build.ProjectBuilder.from_isolated_env(env, source, runner=runner)

    try:
        with contextlib.ExitStack() as compiling:
            requires = build.ProjectBuilder(source, runner=runner).build_system_requires
            builder = environment(requires, "env")
            with _backend_errors(builder):
                more = builder.get_requires_for_build("wheel", config_settings) - requires
            if more:  # never added to a shared environment: one with all of them
                builder = environment(requires | more, "env-more")
            with _backend_errors(builder):
                wheel = Path(builder.build("wheel", workdir / "out", config_settings))
    except build.BuildException as error:
        raise BuildError(str(error)) from None
    return wheel, buildenv.chosen_interpreter(builder.python_executable)


@contextlib.contextmanager
def _backend_errors(builder: ProjectBuilder) -> Iterator[None]:
    import build

    try:
        yield
    except build.BuildBackendException as error:
        cause = error.exception
        output = cause.output if isinstance(cause, CommandError) else ""
        backend = builder._backend  # noqa: SLF001 - build exposes no public name for it
        detail = last_line(output) or str(cause) or str(error)
        raise BuildError(f"{backend} reported: {detail}", output) from None


def _publish(built: Path, dist_dir: Path) -> tuple[Path, str]:
    """Move the wheel into dist/, replacing only a wheel of the very same file name."""
    digest = hashlib.sha256()
    try:
        dist_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".freshinstall-", suffix=".whl.tmp", dir=dist_dir)
        try:
            os.fchmod(fd, fingerprint.new_file_mode())
            with os.fdopen(fd, "wb") as writer, built.open("rb") as reader:
                while chunk := reader.read(fingerprint.CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
                writer.flush()
                os.fsync(writer.fileno())
            final = dist_dir / built.name
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as error:
        raise BuildError(f"cannot write the wheel to {dist_dir}: {error.strerror}") from None
    return final, digest.hexdigest()
