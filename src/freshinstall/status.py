"""``freshinstall status``: is the installed tool fresh, and if not, exactly why.

It asks the question ``freshinstall .`` asks before doing anything (``decide.decide``, for the same
settings and the same target), so the two can never disagree; it never builds or installs. A
changed source is explained file by file with the manifest the last build left beside the stamp.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from freshinstall import config, core, decide, editable, fingerprint, inputs, stamp
from freshinstall.project import load_project


@dataclass(frozen=True)
class Reason:
    """One reason the install is stale; ``paths`` are the files it is about."""

    code: str
    message: str
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Status:
    project: str | None
    version: str | None
    fresh: bool
    #: what ``freshinstall`` would do: build (and install), or install only
    build: bool
    install: bool
    installer: str
    target: str
    #: the current fingerprint, and the one of the installed build
    fingerprint: str
    installed_fingerprint: str | None
    reasons: tuple[Reason, ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        name = self.project or "the project"
        label = f"{name} {self.version}" if self.version else name
        where = f"({self.installer} in {self.target})"
        if self.fresh:
            return [f"{label} is up to date {where}"]
        action = "build and install" if self.build else "install"
        out = [f"{label} is stale {where}; `freshinstall` would {action} it:"]
        for reason in self.reasons:
            verb = _VERBS.get(reason.code)
            if verb:
                out += [f"  {verb:<8} {path}" for path in reason.paths]
            else:
                out.append(f"  {reason.message}")
        return out


_VERBS = {"files-added": "added", "files-removed": "removed", "files-changed": "changed"}


def check(options: core.Options) -> Status:
    """Compare the source, the stamp, the wheel and the installed copy; change nothing."""
    project = load_project(options.path)
    settings = config.load(project, options.overrides())
    installer = core.installer_for(settings)
    _, current = inputs.fingerprint_project(project, settings)
    if settings.editable:
        current = editable.metadata_fingerprint(project, current)
    try:
        previous, invalid = stamp.read(project.dist_dir), ""
    except stamp.StampInvalidError as error:
        previous, invalid = None, str(error)
    target = core.resolve_target(installer, previous)
    key = (installer.name, target)

    def decide_at(digest: str) -> decide.Decision:
        dist = project.dist_dir
        return decide.decide_for(
            settings, digest, previous, key, installer.options, dist, links_out=current.links_out
        )

    decision = decide_at(current.digest)
    reasons: list[Reason] = []
    if previous is None:
        note = f" (the stamp is not valid: {invalid})" if invalid else ""
        hint = "; `freshinstall doctor` checks a copy installed without it"
        reasons.append(Reason("never-built", f"{decision.reason}{note}{hint}"))
    elif not settings.editable and previous.fingerprint != current.digest:
        manifest = stamp.read_manifest(project.dist_dir)
        reasons += source_changes(manifest, previous.fingerprint, current)
        # decide() stops at the first reason; asked as if the source were unchanged, it tells
        # what a rebuild alone would not explain (a missing wheel, a removed install).
        rest = decide_at(previous.fingerprint)
        if rest.reason != decide.UP_TO_DATE:
            reasons.append(_other(rest))
    elif decision.reason != decide.UP_TO_DATE:
        reasons.append(_other(decision))
    return Status(
        project=previous.project if previous else project.name,
        version=(previous.version or None) if previous else None,
        fresh=not reasons,
        build=decision.build,
        install=decision.install,
        installer=installer.name,
        target=target,
        fingerprint=current.digest,
        installed_fingerprint=previous.fingerprint if previous else None,
        reasons=tuple(reasons),
    )


def _other(decision: decide.Decision) -> Reason:
    """A reason that is not about the source files: the wheel in dist/, or the install."""
    code = decision.code or ("wheel-changed" if decision.build else "install-changed")
    return Reason(code, decision.reason)


def source_changes(
    manifest: stamp.Manifest | None, stamped: str, current: fingerprint.Fingerprint
) -> list[Reason]:
    """What changed between the installed build (``stamped`` fingerprint) and the source now."""
    if manifest is None or manifest.fingerprint != stamped:
        message = "the source changed since the last build (no file list was kept for that build)"
        return [Reason("source-changed", message)]
    now = core.manifest_of(current)
    before, after = manifest.files, now.files
    common = before.keys() & after.keys()
    reasons = [
        Reason(code, f"{_files(paths)} {verb} since the installed build", tuple(paths))
        for code, verb, paths in (
            ("files-added", "added", sorted(after.keys() - before.keys())),
            ("files-removed", "removed", sorted(before.keys() - after.keys())),
            ("files-changed", "changed", sorted(p for p in common if before[p] != after[p])),
        )
        if paths
    ]
    reasons += _extras(manifest.extras, now.extras)
    if not reasons:  # same files, same inputs: the hashing itself changed
        reasons.append(Reason("source-changed", "the fingerprint scheme changed (a new release)"))
    return reasons


def _extras(before: Mapping[str, str], after: Mapping[str, str]) -> Iterator[Reason]:
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key == "vcs":
            was, now = (old or "").split("\n", 1)[0], (new or "").split("\n", 1)[0]
            detail = f"{was} -> {now}" if was != now else "uncommitted changes to tracked files"
            yield Reason("vcs-changed", f"the version-control state changed ({detail})")
        elif key.startswith("env:"):
            variable = key.removeprefix("env:")
            yield Reason("env-changed", f"{variable} changed ({_shown(old)} -> {_shown(new)})")
        else:
            yield Reason("input-changed", f"the build input {key} changed")


def _files(paths: list[str]) -> str:
    return f"{len(paths)} file{'s' if len(paths) != 1 else ''}"


def _shown(value: str | None) -> str:
    return "unset" if value is None else repr(value)
