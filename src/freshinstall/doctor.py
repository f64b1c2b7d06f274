"""``freshinstall doctor``: why an installed copy of the project runs old code, a line a finding.

It works on any installed copy (uv tool, pipx, an environment), also one installed without
freshinstall, and compares it with a fresh build of the current source. The reference is a real
build, not a mapping of source files to installed files: which files land in a wheel, and where,
is the backend's business (src layouts, package-dir tables, hatch's and poetry's include rules,
package data, generated version files), and a guess would be wrong for some projects, which is
the worst property a diagnosis can have. A build costs what ``uv tool install .`` costs (about 5 s
for the setuptools test fixture here, half of it starting setuptools twice), so doctor builds
only when it must: when the stamp says the wheel in dist/ was built from exactly the current
source (the same check ``freshinstall .`` makes), that wheel is the reference and nothing is
built (doctor then takes about 0.5 s).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from freshinstall import config, core, decide, fingerprint, inputs, leftovers, stamp, which
from freshinstall._process import run
from freshinstall.config import Settings
from freshinstall.errors import CommandError, ToolNotFoundError
from freshinstall.findings import Finding, count, names, reinstall
from freshinstall.installed import (
    Contents,
    Copy,
    environment_interpreter,
    find_copies,
    wheel_contents,
)
from freshinstall.project import Project, load_project

#: uv releases before this one keyed their build cache of a directory on the timestamps of
#: pyproject.toml, setup.py and setup.cfg only (uv issues 9492, 17261, 19541).
FIXED_UV = "0.11.20"


@dataclass(frozen=True)
class CopyInfo:
    """An installed copy as doctor saw it: what it is, what it runs on, where it imports from."""

    installer: str
    location: str
    version: str
    editable: bool
    python: str
    python_version: str
    #: top-level name -> where the copy's interpreter imports it from ("": nowhere)
    imports: Mapping[str, str]


@dataclass(frozen=True)
class Report:
    project: str
    version: str
    #: the wheel the copies were compared with, and whether doctor built it for that
    reference: str
    built: bool
    copies: tuple[CopyInfo, ...]
    #: console script -> the executable a shell runs for it (None: not on PATH)
    commands: Mapping[str, str | None]
    findings: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": not self.findings}

    def lines(self) -> list[str]:
        how = "a fresh build" if self.built else "the stamped build of the current source"
        out = [f"{self.project} {self.version}: compared with {how} ({self.reference})"]
        for copy in self.copies:
            imports = ", ".join(
                f"{name} from {path or '(nowhere)'}" for name, path in copy.imports.items()
            )
            out.append(
                f"  {copy.installer} {copy.version}: {copy.location}; runs on {copy.python}"
                + (f" ({copy.python_version})" if copy.python_version else "")
                + (f"; imports {imports}" if imports else "")
                + ("; editable" if copy.editable else "")
            )
        out += [
            f"  `{command}` runs {runs or '(not on PATH)'}"
            for command, runs in self.commands.items()
        ]
        out += [finding.line() for finding in self.findings]
        out.append(
            f"{count(self.findings, 'problem')} found" if self.findings else "no problems found"
        )
        return out


def diagnose(path: Path, *, python: str | None, reporter: core.Reporter) -> Report:
    """Check every installed copy of the project at ``path``, what runs it, and the tree."""
    project = load_project(path)
    settings = config.load(project)
    interpreter = environment_interpreter(python)  # a bad --python fails before any build
    paths, current = inputs.fingerprint_project(project, settings)
    previous = None
    with contextlib.suppress(stamp.StampInvalidError):
        previous = stamp.read(project.dist_dir)
    with _reference(project, paths, current, settings, previous, reporter) as (wheel, built):
        fresh = wheel_contents(wheel)
        reference = wheel.name
    given = os.fspath(path)
    findings = leftovers.find(project.root, paths, fresh, reference, given)
    uv = _uv()
    findings += _old_uv(uv)
    copies = find_copies(fresh.name, interpreter=interpreter, uv=uv)
    if not copies:
        where = "with uv tool or pipx" + (f", or for {interpreter}" if interpreter else "")
        findings.append(
            Finding(
                "not-installed",
                f"{fresh.name} is not installed {where}",
                "there is no installed copy to run",
                shlex.join(["freshinstall", given]),
            )
        )
    infos = []
    for copy in copies:
        fix = reinstall(copy, settings.installer, given, force=_stamped(copy, previous))
        installed = copy.contents()
        findings += _compare(copy, installed, fresh, fix)
        info, problems = _inspect(copy, installed, fresh, fix)
        infos.append(info)
        findings += problems
    commands: dict[str, str | None] = {}
    for script in fresh.scripts:
        commands[script], problems = which.check_command(
            script, copies, settings.installer, fresh.name
        )
        findings += problems
    return Report(
        fresh.name, fresh.version, reference, built, tuple(infos), commands, tuple(findings)
    )


def _stamped(copy: Copy, previous: stamp.Stamp | None) -> bool:
    """Whether the stamp vouches for ``copy`` (its RECORD is the one stamped, unchanged): then
    ``freshinstall`` finds nothing to do and only ``--force`` replaces it."""
    record = copy.dist_info / "RECORD"
    claims = {(i.record, i.record_sha256) for i in previous.installs} if previous else set()
    try:
        return (str(record), fingerprint.file_sha256(record)) in claims
    except OSError:
        return False


@contextlib.contextmanager
def _reference(
    project: Project,
    paths: list[str],
    current: fingerprint.Fingerprint,
    settings: Settings,
    previous: stamp.Stamp | None,
    reporter: core.Reporter,
) -> Iterator[tuple[Path, bool]]:
    """The stamped wheel when it is a build of exactly the current source, else a fresh build."""
    # decide() builds unless the stamped fingerprint is the current one and the wheel intact.
    if previous is not None and previous.wheel:
        decision = decide.decide(
            current.digest,
            previous,
            ("", ""),
            (),
            project.dist_dir,
            python=settings.python,
            links_out=current.links_out,
        )
        if not decision.build:
            yield project.dist_dir / previous.wheel, False
            return
    from freshinstall.build import build_wheel
    from freshinstall.install import find_uv

    with tempfile.TemporaryDirectory(prefix="freshinstall-doctor-") as scratch:
        reporter.start("build")
        built = build_wheel(
            project.root,
            paths,
            Path(scratch),
            uv=find_uv(),
            python=settings.python,
            config_settings=settings.config_settings,
            extras=current.extras,
            note=reporter.note,
        )
        reporter.step("build", f"{built.wheel.name}, to compare with", built.seconds)
        yield built.wheel, True


def _compare(copy: Copy, installed: Contents, fresh: Contents, fix: str) -> Iterator[Finding]:
    """Files, version and console scripts of ``copy`` against the fresh build."""
    if not copy.editable:  # an editable copy's code is the source tree itself
        ghosts = sorted(installed.files.keys() - fresh.files.keys())
        missing = sorted(fresh.files.keys() - installed.files.keys())
        both = installed.files.keys() & fresh.files.keys()
        changed = sorted(p for p in both if installed.files[p] != fresh.files[p])
        for code, found, what, why in (
            (
                "ghost-files",
                ghosts,
                "holds {} that a fresh build does not",
                "code deleted or renamed in the source is still installed and importable",
            ),
            (
                "missing-files",
                missing,
                "lacks {} of a fresh build",
                "code added to the source is not installed",
            ),
            (
                "changed-files",
                changed,
                "holds old content in {}",
                "the tool runs old code",
            ),
        ):
            if found:
                message = f"{copy.label} {what.format(count(found))}: {names(found)}"
                yield Finding(code, message, why, fix, tuple(found))
    if _version(installed.version) != _version(fresh.version):
        yield Finding(
            "old-version",
            f"{copy.label} is version {installed.version}; the source builds {fresh.version}",
            "the installed metadata (version, dependencies) is not the current one",
            fix,
        )
    if installed.scripts != fresh.scripts:
        old, new = installed.scripts, fresh.scripts
        differences = [f"lacks {name}" for name in sorted(new.keys() - old.keys())]
        differences += [f"still has {name}" for name in sorted(old.keys() - new.keys())]
        differences += [
            f"runs {old[name]} for {name}, not {new[name]}"
            for name in sorted(old.keys() & new.keys())
            if old[name] != new[name]
        ]
        yield Finding(
            "scripts-differ",
            f"{copy.label} has other console scripts than the source declares: "
            + "; ".join(differences),
            "commands were added, removed or pointed elsewhere since it was installed",
            fix,
            tuple(sorted(n for n in old.keys() | new.keys() if old.get(n) != new.get(n))),
        )


def _inspect(
    copy: Copy, installed: Contents, fresh: Contents, fix: str
) -> tuple[CopyInfo, list[Finding]]:
    """Run the interpreter the copy's scripts name and see where it imports the package from."""
    python = copy.python
    if fresh.scripts:
        python = which.script_interpreter(copy.scripts_dir / next(iter(fresh.scripts))) or python
    location = str(copy.site_packages)
    try:
        answer = which.probe(python, fresh.top_level, copy.scripts_dir)
    except which.ProbeError as error:
        info = CopyInfo(
            copy.installer, location, installed.version, copy.editable, str(python), "", {}
        )
        return info, [
            Finding("broken-interpreter", f"{copy.label}: {error}", "the tool cannot start", fix)
        ]
    info = CopyInfo(
        copy.installer,
        location,
        installed.version,
        copy.editable,
        answer.python,
        answer.version,
        answer.imports,
    )
    problems = []
    entries = [Path(entry) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    for name, where in answer.imports.items():
        if copy.editable or not where or which.is_inside(Path(where), copy.site_packages):
            continue
        from_pythonpath = any(which.is_inside(Path(where), entry) for entry in entries)
        problems.append(
            Finding(
                "imports-elsewhere",
                f"{answer.python} imports {name} from {where}, not from {copy.label}",
                "the tool runs that code, not the installed copy"
                + (" (PYTHONPATH puts it first)" if from_pythonpath else ""),
                "unset PYTHONPATH" if from_pythonpath else fix,
                (where,),
            )
        )
    return info, problems


def _uv() -> str | None:
    from freshinstall.install import find_uv

    try:
        return find_uv()
    except ToolNotFoundError:
        return None


def _old_uv(uv: str | None) -> list[Finding]:
    """A uv that reinstalls a cached, stale wheel after source edits."""
    if uv is None:
        return []
    try:
        words = run([uv, "--version"]).split()
    except (CommandError, ToolNotFoundError):
        return []
    version = _version(words[1]) if len(words) > 1 and words[0] == "uv" else None
    if version is None or version >= _version(FIXED_UV):
        return []
    beside = Path(uv).parent / "python"
    fix = f"{beside} -m pip install -U uv" if beside.exists() else "uv self update"
    why = "its build cache ignored source edits: `uv tool install --force .` reinstalled old code"
    return [Finding("old-uv", f"uv {words[1]} ({uv}) is older than {FIXED_UV}", why, fix)]


def _version(text: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None
