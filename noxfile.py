"""Development sessions: `nox` runs lint, typing, the tests, the docs and the release checks,
as CI does."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typing", "tests", "docs", "build"]

PYTHON = ["3.11"]
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"
#: The release tools, pinned like the linters.
BUILD = "build[uv]==1.6.1"
TWINE = "twine==7.0.0"
CHECK_WHEEL_CONTENTS = "check-wheel-contents==0.6.3"
#: What the sdist holds besides PKG-INFO: the tracked files under these, as
#: [tool.hatch.build.targets.sdist] includes them, and what hatchling always adds (the project
#: files and .gitignore).
SDIST_ROOTS = (
    ".gitignore",
    "src/",
    "tests/",
    "docs/",
    "benchmarks/",
    "examples/",
    "CHANGELOG.md",
    "LICENSE",
    "README.md",
    "mkdocs.yml",
    "noxfile.py",
    "pyproject.toml",
)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite: real builds, real uv/pip/pipx, in temporary sandboxes."""
    session.install(".[test]")
    # Four workers on two cores: most of a test's time is spent waiting on uv and the backends.
    session.run("pytest", "-n", "4", "--dist", "worksteal", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(RUFF)
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict over src, tests, benchmarks and this file."""
    session.install(MYPY, ".[test]", "nox")
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with `mkdocs build --strict` (a warning fails)."""
    session.install("-r", "docs/requirements.txt", ".")
    # NO_MKDOCS_2_WARNING: Material prints a banner about MkDocs 2.0 on every build otherwise.
    session.run("mkdocs", "build", "--strict", "--clean", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Build the sdist, then the wheel from it, from a copy of the files git knows, and check.

    Checks: `twine check --strict` (metadata, README rendering), `check-wheel-contents`, the
    exact file lists of both archives, and that the installed `freshinstall --version` is the
    version the wheel is named for. `nox -s build -- DIR` keeps the archives in DIR.
    """
    session.install(BUILD, TWINE, CHECK_WHEEL_CONTENTS)
    tracked = _tracked_files()
    with tempfile.TemporaryDirectory(prefix="freshinstall-release-") as scratch:
        tree = Path(scratch) / "tree"
        for path in tracked:
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, tree / path, follow_symlinks=False)
        dist = Path(session.posargs[0] if session.posargs else Path(scratch) / "dist").resolve()
        session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(dist), str(tree))
        (sdist,) = dist.glob("freshinstall-*.tar.gz")
        (wheel,) = dist.glob("freshinstall-*.whl")
        session.run("twine", "check", "--strict", str(sdist), str(wheel))
        session.run("check-wheel-contents", str(wheel))
        version = wheel.name.split("-")[1]
        problems = [*_check_wheel(wheel, version, tracked), *_check_sdist(sdist, version, tracked)]
        if problems:
            session.error("; ".join(problems))
        session.install(str(wheel))
        shown = session.run("freshinstall", "--version", silent=True)
        if shown is None or shown.strip() != f"freshinstall, version {version}":
            session.error(f"`freshinstall --version` says {shown!r}; the wheel is {version}")
        session.log(f"{sdist.name} and {wheel.name} are complete and hold only what they should")


def _tracked_files() -> list[str]:
    """The files git tracks or would add (untracked, not ignored), as in the work tree: in CI's
    fresh clone, exactly the tracked files; never build outputs, caches or site/."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(path for path in listed.split("\0") if path and Path(path).exists())


def _check_wheel(wheel: Path, version: str, tracked: list[str]) -> list[str]:
    """The wheel holds the package's modules, py.typed and its metadata, nothing else."""
    info = f"freshinstall-{version}.dist-info"
    expected = {
        str(PurePosixPath(path).relative_to("src"))
        for path in tracked
        if path.startswith("src/freshinstall/")
    } | {f"{info}/{name}" for name in ("METADATA", "WHEEL", "RECORD", "entry_points.txt")}
    expected.add(f"{info}/licenses/LICENSE")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"{info}/METADATA").decode()
    problems = _compare(wheel.name, names, expected)
    if odd := sorted(
        name
        for name in names
        if not name.startswith(info) and not name.endswith((".py", "/py.typed"))
    ):
        problems.append(f"{wheel.name} holds files that are neither modules nor py.typed: {odd}")
    if f"\nVersion: {version}\n" not in metadata:
        problems.append(f"{wheel.name}: METADATA does not say version {version}")
    return problems


def _check_sdist(sdist: Path, version: str, tracked: list[str]) -> list[str]:
    """The sdist holds the tracked files under SDIST_ROOTS and PKG-INFO, nothing else."""
    top = f"freshinstall-{version}"
    expected = {path for path in tracked if path.startswith(SDIST_ROOTS)} | {"PKG-INFO"}
    with tarfile.open(sdist) as archive:
        names = {
            str(PurePosixPath(member.name).relative_to(top))
            for member in archive.getmembers()
            if not member.isdir()
        }
    return _compare(sdist.name, names, expected)


def _compare(archive: str, names: set[str], expected: set[str]) -> list[str]:
    problems = []
    if extra := sorted(names - expected):
        problems.append(f"{archive} holds unexpected files: {', '.join(extra)}")
    if missing := sorted(expected - names):
        problems.append(f"{archive} lacks files: {', '.join(missing)}")
    return problems
