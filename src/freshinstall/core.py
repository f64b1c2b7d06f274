"""One freshinstall run: fingerprint, compare with the stamp, build and install only if needed.

The data flows one way: fingerprint -> stamp -> build -> install -> stamp. The stamp is read
without the lock (it is always replaced atomically), so the no-change path takes no lock and
imports nothing heavy; any work happens under the project's lock, after checking again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from freshinstall import fingerprint, inputs, stamp
from freshinstall.errors import StampError
from freshinstall.install import UvToolInstaller, find_uv
from freshinstall.project import Project, load_project


class Reporter(Protocol):
    """Where progress goes (the CLI prints it on stderr)."""

    def step(self, phase: str, detail: str, seconds: float) -> None: ...

    def note(self, message: str) -> None: ...


@dataclass(frozen=True)
class Options:
    """What the user asked for; the defaults are ``freshinstall .``."""

    path: Path = Path()
    python: str | None = None
    with_: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    stream: bool = False


@dataclass(frozen=True)
class Decision:
    build: bool
    install: bool
    reason: str


@dataclass(frozen=True)
class Outcome:
    """The result of a run, as printed and as ``--json``."""

    project: str | None
    version: str | None
    fingerprint: str
    rebuilt: bool
    installed: bool
    wheel: str | None
    reason: str
    installer: str
    target: str
    dry_run: bool
    seconds: float

    @property
    def up_to_date(self) -> bool:
        return not (self.rebuilt or self.installed) and self.reason == UP_TO_DATE


UP_TO_DATE = "up to date"


def decide(
    current: str,
    previous: stamp.Stamp | None,
    key: tuple[str, str],
    options: tuple[str, ...],
    dist_dir: Path,
    *,
    force: bool = False,
) -> Decision:
    """Whether to build and whether to install, and why, in the user's words."""
    if force:
        return Decision(build=True, install=True, reason="--force")
    if previous is None:
        return Decision(build=True, install=True, reason="never built by freshinstall")
    if previous.fingerprint != current:
        return Decision(build=True, install=True, reason="the source changed since the last build")
    wheel = dist_dir / previous.wheel
    try:
        intact = fingerprint.file_sha256(wheel) == previous.wheel_sha256
    except OSError:
        return Decision(build=True, install=True, reason=f"dist/{previous.wheel} is missing")
    if not intact:
        return Decision(
            build=True, install=True, reason=f"dist/{previous.wheel} changed after the build"
        )
    install = previous.install_for(key)
    if install is None or install.wheel_sha256 != previous.wheel_sha256:
        return Decision(build=False, install=True, reason="not installed here yet")
    if install.options != options:
        return Decision(build=False, install=True, reason="the install options changed")
    try:
        record = fingerprint.file_sha256(Path(install.record))
    except OSError:
        return Decision(build=False, install=True, reason="the installed copy was removed")
    if record != install.record_sha256:
        return Decision(
            build=False, install=True, reason="the installed copy was changed by another install"
        )
    return Decision(build=False, install=False, reason=UP_TO_DATE)


def fingerprint_project(project: Project) -> tuple[list[str], fingerprint.Fingerprint]:
    """The input files of ``project`` and the fingerprint of them plus its non-file inputs."""
    paths = fingerprint.list_inputs(project.root)
    extras = inputs.extras(project.root, project.pyproject)
    entries = (fingerprint.hash_entry(project.root, path) for path in paths)
    return paths, fingerprint.combine(entries, extras)


def freshen(options: Options, reporter: Reporter) -> Outcome:
    """Make the installed tool match the source tree at ``options.path``."""
    start = time.monotonic()
    project = load_project(options.path)
    installer = UvToolInstaller(python=options.python, with_=options.with_, stream=options.stream)

    paths, current = fingerprint_project(project)
    reporter.step(
        "fingerprint", f"{current.short} ({len(current.files)} files)", time.monotonic() - start
    )

    previous = _read_stamp(project, reporter)
    locator = installer.locator()
    target = (previous and previous.target_for(installer.name, locator)) or installer.target()
    key = (installer.name, target)
    decision = decide(
        current.digest, previous, key, installer.options, project.dist_dir, force=options.force
    )

    def outcome(previous: stamp.Stamp | None, decision: Decision, *, done: bool) -> Outcome:
        return Outcome(
            project=previous.project if previous else project.name,
            version=previous.version if previous else None,
            fingerprint=previous.fingerprint if done and previous else current.digest,
            rebuilt=done and decision.build,
            installed=done and decision.install,
            wheel=previous.wheel if previous else None,
            reason=decision.reason,
            installer=installer.name,
            target=target,
            dry_run=options.dry_run,
            seconds=time.monotonic() - start,
        )

    if not (decision.build or decision.install) or options.dry_run:
        return outcome(previous, decision, done=False)

    with _project_lock(project, reporter):
        # Another run may have done the work while we waited for the lock.
        previous = _read_stamp(project, reporter)
        decision = decide(
            current.digest, previous, key, installer.options, project.dist_dir, force=options.force
        )
        if not (decision.build or decision.install):
            return outcome(previous, decision, done=False)
        if decision.build:
            from freshinstall.build import build_wheel

            built = build_wheel(
                project.root,
                paths,
                project.dist_dir,
                uv=find_uv(),
                python=options.python,
                extras=current.extras,
                stream=options.stream,
            )
            reporter.step("build", built.wheel.name, built.seconds)
            stamp.write_manifest(project.dist_dir, manifest_of(built.fingerprint))
            kept = previous.installs if previous and previous.wheel_sha256 == built.sha256 else ()
            base = stamp.Stamp(
                fingerprint=built.fingerprint.digest,
                project=built.name,
                version=built.version,
                wheel=built.wheel.name,
                wheel_sha256=built.sha256,
                installs=kept,
            )
        elif previous is not None:  # decide() builds whenever there is no stamp
            base = previous
        else:  # pragma: no cover
            raise AssertionError(decision)
        if previous is not None and previous.install_for(key) is not None:
            # Withdraw the claim before touching the install: an interrupted install must never
            # be reported as up to date.
            stamp.write(project.dist_dir, previous.without_install(key))
        result = installer.install(project.dist_dir / base.wheel, base.project)
        reporter.step("install", f"{installer.name} -> {result.target}", result.seconds)
        final = base.with_install(
            stamp.Install(
                installer=installer.name,
                target=result.target,
                options=installer.options,
                wheel_sha256=base.wheel_sha256,
                record=str(result.record),
                record_sha256=fingerprint.file_sha256(result.record),
                locator=locator,
            )
        )
        from freshinstall import __version__

        final = dataclasses.replace(final, freshinstall=__version__)
        stamp.write(project.dist_dir, final)
        return outcome(final, decision, done=True)


def manifest_of(print_: fingerprint.Fingerprint) -> stamp.Manifest:
    files = {entry.path: f"{entry.kind}:{entry.digest}" for entry in print_.files}
    return stamp.Manifest(print_.digest, files, dict(print_.extras))


def _read_stamp(project: Project, reporter: Reporter) -> stamp.Stamp | None:
    try:
        return stamp.read(project.dist_dir)
    except stamp.StampInvalidError as error:
        reporter.note(f"ignoring the stamp: {error}")
        return None


@contextmanager
def _project_lock(project: Project, reporter: Reporter) -> Iterator[None]:
    """Serialise runs on one project; a lock left by a killed process is released by the OS."""
    import filelock

    path = project.dist_dir / stamp.LOCKNAME
    stamp.make_dist_dir(project.dist_dir)
    try:
        lock = filelock.FileLock(path)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            reporter.note("waiting for another freshinstall run on this project to finish")
            lock.acquire()
    except OSError as error:
        raise StampError(f"cannot create the lock {path}: {error.strerror}") from None
    try:
        yield
    finally:
        lock.release()
