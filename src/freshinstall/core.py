"""One freshinstall run: fingerprint, compare with the stamp, build and install only if needed.

The data flows one way: fingerprint -> stamp -> build -> install -> stamp. The stamp is read
without the lock (it is always replaced atomically), so the no-change path takes no lock and
imports nothing heavy; any work happens under the project's lock, after checking again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from freshinstall import buildenv, config, fingerprint, inputs, stamp
from freshinstall.config import Settings
from freshinstall.decide import Decision, decide_for
from freshinstall.errors import ProjectError, StampError
from freshinstall.install import Installer, Request, find_uv, make_installer
from freshinstall.project import Project, load_project


class Reporter(Protocol):
    """Where progress goes (the CLI prints it on stderr)."""

    def start(self, phase: str) -> None:
        """A long phase (build, install) begins; its ``step()`` follows when it ends."""

    def step(self, phase: str, detail: str, seconds: float) -> None: ...

    def note(self, message: str) -> None: ...


@dataclass(frozen=True)
class Options:
    """What the user asked for on the command line; None means "not given" (see config.py)."""

    path: Path = Path()
    installer: str | None = None
    python: str | None = None
    with_: tuple[str, ...] | None = None
    editable: bool | None = None
    config_settings: Mapping[str, str | list[str]] | None = None
    force: bool = False
    dry_run: bool = False
    stream: bool = False

    def overrides(self) -> dict[str, object]:
        return {
            "installer": self.installer,
            "python": self.python,
            "with_": self.with_,
            "editable": self.editable,
            "config_settings": self.config_settings,
        }


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
    #: What the run found necessary (with --dry-run: what it would have done).
    needs_build: bool = False
    needs_install: bool = False

    @property
    def up_to_date(self) -> bool:
        return not (self.needs_build or self.needs_install)


def installer_for(settings: Settings, *, stream: bool = False) -> Installer:
    """The installer the settings choose, with their options."""
    return make_installer(
        settings.installer,
        python=settings.python,
        with_=settings.with_,
        extra_args=settings.installer_args,
        editable=settings.editable,
        stream=stream,
    )


def describe(outcome: Outcome) -> str:
    """The one result line printed on stdout."""
    name = outcome.project or "the project"
    label = f"{name} {outcome.version}" if outcome.version else name
    where = f"({outcome.installer} in {outcome.target})"
    if outcome.up_to_date:
        return f"{label} is up to date {where}"
    if outcome.dry_run:
        action = "build and install" if outcome.needs_build else "install"
        return f"would {action} {name} {where}: {outcome.reason}"
    done = "built and installed" if outcome.rebuilt else "installed"
    return f"{label} {done} {where}: {outcome.reason}"


def resolve_target(installer: Installer, previous: stamp.Stamp | None) -> str:
    """Where ``installer`` installs: the stamped target while the settings it was resolved
    from are unchanged (no subprocess; for uv-tool, the install then looks for its RECORD
    there without asking again), else the installer's answer."""
    stamped = previous.target_for(installer.name, installer.locator()) if previous else None
    if not stamped:
        return installer.target()
    installer.assume_target(stamped)
    return stamped


def freshen(options: Options, reporter: Reporter) -> Outcome:
    """Make the installed tool match the source tree at ``options.path``."""
    start = time.monotonic()
    project = load_project(options.path)
    settings = config.load(project, options.overrides())
    installer = installer_for(settings, stream=options.stream)

    paths, current = inputs.fingerprint_project(project, settings, create_dist=not options.dry_run)
    if settings.editable:
        from freshinstall.editable import metadata_fingerprint

        current = metadata_fingerprint(project, current)
    reporter.step(
        "fingerprint", f"{current.short} ({len(current.files)} files)", time.monotonic() - start
    )

    previous = _read_stamp(project, reporter)
    locator = installer.locator()
    target = resolve_target(installer, previous)
    key = (installer.name, target)

    def check(previous: stamp.Stamp | None) -> Decision:
        return decide_for(
            settings,
            current.digest,
            previous,
            key,
            installer.options,
            project.dist_dir,
            force=options.force,
            links_out=current.links_out,
        )

    def outcome(previous: stamp.Stamp | None, decision: Decision, *, done: bool) -> Outcome:
        install = previous.install_for(key) if previous else None
        return Outcome(
            project=previous.project if previous else project.name,
            version=previous.version if previous else None,
            fingerprint=current.digest,
            rebuilt=done and decision.build,
            installed=done and decision.install,
            wheel=None if install and install.editable else previous.wheel if previous else None,
            reason=decision.reason,
            installer=installer.name,
            target=target,
            dry_run=options.dry_run,
            seconds=time.monotonic() - start,
            needs_build=decision.build,
            needs_install=decision.install,
        )

    decision = check(previous)
    if not (decision.build or decision.install) or options.dry_run:
        return outcome(previous, decision, done=False)

    with _project_lock(project, reporter):
        # Another run may have done the work while we waited for the lock.
        previous = _read_stamp(project, reporter)
        decision = check(previous)
        if not (decision.build or decision.install):
            return outcome(previous, decision, done=False)
        if decision.build:
            base = _build(
                project, paths, current, settings, previous, reporter, stream=options.stream
            )
            current = current.replace(digest=base.fingerprint)
        elif previous is not None:
            base = previous
        else:  # editable, never stamped
            name = project.name
            if name is None:
                raise ProjectError(f"{project.root}: --editable needs a static [project].name")
            base = stamp.Stamp(fingerprint="", project=name, version="", wheel="", wheel_sha256="")
        if previous is not None and previous.install_for(key) is not None:
            # Withdraw the claim before touching the install: an interrupted install must never
            # be reported as up to date.
            stamp.write(project.dist_dir, previous.without_install(key))
        wheel = None if settings.editable else project.dist_dir / base.wheel
        reporter.start("install")
        result = installer.install(Request(base.project, project.root, wheel))
        reporter.step("install", f"{installer.name} in {result.target}", result.seconds)
        final = base.with_install(
            stamp.Install(
                installer=installer.name,
                target=result.target,
                options=installer.options,
                wheel_sha256="" if settings.editable else base.wheel_sha256,
                record=str(result.record),
                record_sha256=fingerprint.file_sha256(result.record),
                locator=locator,
                editable=settings.editable,
                metadata=current.digest if settings.editable else "",
            )
        )
        from freshinstall import __version__

        final = dataclasses.replace(
            final, version=final.version or result.version, freshinstall=__version__
        )
        stamp.write(project.dist_dir, final)
        done = outcome(final, decision, done=True)
        return dataclasses.replace(done, version=result.version)


def _build(
    project: Project,
    paths: list[str],
    current: fingerprint.Fingerprint,
    settings: Settings,
    previous: stamp.Stamp | None,
    reporter: Reporter,
    *,
    stream: bool,
) -> stamp.Stamp:
    """Build a wheel into dist/ and return the stamp describing it (installs kept only when the
    new wheel is byte-identical to the one they installed)."""
    from freshinstall.build import build_wheel

    reporter.start("build")
    built = build_wheel(
        project.root,
        paths,
        project.dist_dir,
        uv=find_uv(),
        python=settings.python,
        config_settings=settings.config_settings,
        extras=current.extras,
        stream=stream,
        note=reporter.note,
    )
    reporter.step("build", built.wheel.name, built.seconds)
    stamp.write_manifest(project.dist_dir, manifest_of(built.fingerprint))
    kept = previous.installs if previous and previous.wheel_sha256 == built.sha256 else ()
    return stamp.Stamp(
        fingerprint=built.fingerprint.digest,
        project=built.name,
        version=built.version,
        wheel=built.wheel.name,
        wheel_sha256=built.sha256,
        installs=kept,
        wheels=stamp.earlier_wheels(previous, project.dist_dir, built.wheel.name),
        interpreter=(
            buildenv.interpreter_identity(settings.python, built.interpreter)
            if built.platform_specific
            else ""
        ),
    )


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
