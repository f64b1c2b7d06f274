"""One freshinstall run: fingerprint, compare with the stamp, build and install only if needed.

The data flows one way: fingerprint -> stamp -> build -> install -> stamp. The stamp is read
without the lock (it is always replaced atomically), so the no-change path takes no lock and
imports nothing heavy; any work happens under the project's lock, after checking again.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from freshinstall import config, editable, fingerprint, inputs, stamp, statcache
from freshinstall.config import Settings
from freshinstall.errors import ProjectError, StampError
from freshinstall.install import Installer, Request, find_uv, make_installer
from freshinstall.project import Project, load_project


class Reporter(Protocol):
    """Where progress goes (the CLI prints it on stderr)."""

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
    if install is None or install.editable or install.wheel_sha256 != previous.wheel_sha256:
        return Decision(build=False, install=True, reason="not installed here yet")
    if install.options != options:
        return Decision(build=False, install=True, reason="the install options changed")
    problem = _record_problem(install)
    return Decision(build=False, install=problem is not None, reason=problem or UP_TO_DATE)


def decide_editable(
    metadata: str,
    previous: stamp.Stamp | None,
    key: tuple[str, str],
    options: tuple[str, ...],
    *,
    force: bool = False,
) -> Decision:
    """For an editable install: reinstall only when what shapes the metadata changed."""
    install = previous.install_for(key) if previous else None
    if force:
        reason = "--force"
    elif install is None or not install.editable:
        reason = "not installed here in editable mode yet"
    elif install.metadata != metadata:
        reason = "the project metadata changed"
    elif install.options != options:
        reason = "the install options changed"
    else:
        reason = _record_problem(install) or UP_TO_DATE
    return Decision(build=False, install=reason != UP_TO_DATE, reason=reason)


def _record_problem(install: stamp.Install) -> str | None:
    record_path = Path(install.record)
    # The stamp is data: read the RECORD only where an install put it (inside its target),
    # and only if it is a plain file, so a crafted stamp cannot make us read anything else.
    if not _is_inside(record_path, Path(install.target)) or not record_path.is_file():
        return "the installed copy was removed"
    try:
        record = fingerprint.file_sha256(record_path)
    except OSError:
        return "the installed copy was removed"
    if record != install.record_sha256:
        return "the installed copy was changed by another install"
    return None


def decide_for(
    settings: Settings,
    current: str,
    previous: stamp.Stamp | None,
    key: tuple[str, str],
    options: tuple[str, ...],
    dist_dir: Path,
    *,
    force: bool = False,
) -> Decision:
    """decide(), or decide_editable() when the settings ask for an editable install."""
    if settings.editable:
        return decide_editable(current, previous, key, options, force=force)
    return decide(current, previous, key, options, dist_dir, force=force)


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


def resolve_target(installer: Installer, previous: stamp.Stamp | None) -> str:
    """Where ``installer`` installs: the stamped target while the settings it was resolved
    from are unchanged (no subprocess), else the installer's answer."""
    stamped = previous.target_for(installer.name, installer.locator()) if previous else None
    return stamped or installer.target()


def load_settings(project: Project, overrides: Mapping[str, object] | None = None) -> Settings:
    """The run's settings: command line > FRESHINSTALL_* > [tool.freshinstall] > defaults."""
    path = project.root / "pyproject.toml"
    return config.resolve(path, project.pyproject, os.environ, overrides or {})


def _is_inside(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except (OSError, ValueError):
        return False


def fingerprint_project(
    project: Project, settings: Settings | None = None, *, use_cache: bool = True
) -> tuple[list[str], fingerprint.Fingerprint]:
    """The input files of ``project`` and the fingerprint of them plus its non-file inputs.

    ``settings`` adds the configured include/exclude patterns and the build's own inputs:
    the backend's config settings.
    ``use_cache=False`` reads every file and neither reads nor writes the stat cache.
    """
    settings = settings or Settings()
    paths = select(project.root, fingerprint.list_inputs(project.root), settings)
    extras = inputs.extras(project.root, project.pyproject)
    if settings.config_settings:
        extras["config-settings"] = json.dumps(settings.config_settings, sort_keys=True)
    cache_dir = project.dist_dir if use_cache else None
    entries = statcache.hash_files(project.root, paths, cache_dir)
    return paths, fingerprint.combine(entries, extras)


def select(root: Path, paths: list[str], settings: Settings) -> list[str]:
    """Apply ``include`` (globs of extra files, even ignored ones) and ``exclude`` patterns."""
    if not (settings.include or settings.exclude):
        return paths
    chosen = set(paths)
    for pattern in settings.include:
        chosen.update(
            found.relative_to(root).as_posix() for found in root.glob(pattern) if found.is_file()
        )
    if settings.exclude:
        chosen = {
            path
            for path in chosen
            if not any(fnmatch.fnmatchcase(path, pat) for pat in settings.exclude)
        }
    return sorted(chosen, key=os.fsencode)


def freshen(options: Options, reporter: Reporter) -> Outcome:
    """Make the installed tool match the source tree at ``options.path``."""
    start = time.monotonic()
    project = load_project(options.path)
    settings = load_settings(project, options.overrides())
    installer = installer_for(settings, stream=options.stream)

    paths, current = fingerprint_project(project, settings)
    if settings.editable:
        current = editable.metadata_fingerprint(project, current)
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
            current = dataclasses.replace(current, digest=base.fingerprint)
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
        result = installer.install(Request(base.project, project.root, wheel))
        reporter.step("install", f"{installer.name} -> {result.target}", result.seconds)
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

    built = build_wheel(
        project.root,
        paths,
        project.dist_dir,
        uv=find_uv(),
        python=settings.python,
        config_settings=settings.config_settings,
        extras=current.extras,
        stream=stream,
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
