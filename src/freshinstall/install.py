"""Installers: put a wheel (or, editable, the project) where the user runs it.

install.py knows nothing about fingerprints or stamps. Each installer says where it installs
(its *target*: the uv tool dir, a virtual environment, the pipx home), installs, and reports
the installed distribution's RECORD file, which the caller uses to notice later removals.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from freshinstall._process import last_line, run
from freshinstall.config import INSTALLERS
from freshinstall.errors import CommandError, InstallError, ToolNotFoundError


@dataclass(frozen=True)
class Request:
    """What to install: ``wheel``, or with ``editable`` the project directory ``source``."""

    project: str
    source: Path
    wheel: Path | None = None

    @property
    def editable(self) -> bool:
        return self.wheel is None

    @property
    def requirement(self) -> str:
        """The wheel as a PEP 508 direct reference: uv and pip would read a plain path holding
        ``#`` or `` ;`` as a URL fragment or an environment marker."""
        if self.wheel is None:
            raise ValueError("an editable request has no wheel")
        return f"{self.project} @ {self.wheel.absolute().as_uri()}"


@dataclass(frozen=True)
class InstallResult:
    """Where it was installed; ``record`` is the installed distribution's RECORD file."""

    installer: str
    target: str
    record: Path
    seconds: float

    @property
    def version(self) -> str:
        return self.record.parent.name.removesuffix(".dist-info").rpartition("-")[2]


@functools.cache
def find_uv() -> str:
    """A ``uv`` on PATH first (the user's own), else the binary of the ``uv`` PyPI package.

    That binary sits beside our interpreter when freshinstall is installed in a virtual
    environment (uv tool, pipx, a venv): looking there first spares importing ``uv``.
    """
    found = shutil.which("uv")
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "uv.exe" if os.name == "nt" else "uv")
    if os.access(beside, os.X_OK):
        return beside
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        raise ToolNotFoundError("uv", "install it with `pip install uv`") from None


@dataclass
class Installer:
    """What every installer shares: the options that shape an install, and how to run it."""

    name: ClassVar[str] = "installer"
    #: The environment variables the target is resolved from.
    locator_variables: ClassVar[tuple[str, ...]] = ()
    #: Whether those variables (and --python) decide the target alone, so that a target
    #: stamped from the same locator is where the install goes (see :meth:`assume_target`).
    located_by_variables: ClassVar[bool] = False
    #: Whether a wheel is first installed without forcing the reinstall of the project, then
    #: checked against the wheel and installed again, forced, only if it differs (see install).
    forces_on_demand: ClassVar[bool] = False

    python: str | None = None
    with_: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    editable: bool = False
    stream: bool = False
    _target: str | None = field(default=None, init=False, repr=False)

    @property
    def options(self) -> tuple[str, ...]:
        """The options that shape the install; stamped, so that changing them reinstalls."""
        options: list[str] = []
        if self.python:
            options += ["--python", self.python]
        for requirement in self.with_:
            options += ["--with", requirement]
        if self.editable:
            options.append("--editable")
        return (*options, *self.extra_args)

    def locator(self) -> str:
        """The settings the target is resolved from; while they are unchanged, a stamped
        target is reused without asking the installer (which costs a subprocess)."""
        values = [f"{name}={os.environ.get(name, '')}" for name in self.locator_variables]
        values.append(f"python={self.python or ''}")
        values.append(f"cwd={os.getcwd()}")
        return "\n".join(values)

    def target(self) -> str:
        if self._target is None:
            self._target = self.resolve_target()
        return self._target

    def assume_target(self, target: str) -> None:
        """Take ``target``, stamped for the same :meth:`locator`, as the answer of
        :meth:`resolve_target`, when the locator decides it alone (uv-tool's). Not for pipx,
        whose home also depends on whether ``~/.local/pipx`` exists, nor for an environment
        chosen by a bare ``--python`` name, which PATH decides."""
        if self.located_by_variables:
            self._target = target

    def resolve_target(self) -> str:  # pragma: no cover - every installer defines it
        raise NotImplementedError

    def install(self, request: Request) -> InstallResult:
        """Install, and report the installed RECORD.

        With ``forces_on_demand``, a wheel is installed without ``--reinstall-package``, which
        makes uv treat every cache entry not tied to a package as stale, so that it queries
        again each interpreter on PATH (uv-cache's ``Cache::freshness``): 0.27-0.35 s against
        0.03-0.04 s for a ``uv tool install`` of a small wheel on the benchmark machine
        (docs/how-it-works.md, "Installing the wheel"). uv reinstalls the project anyway when
        the wheel file's timestamp differs from the one it recorded at the last install. That
        it did, and from this very wheel, is checked (:func:`installed_from`); if not (a file
        system whose timestamps are too coarse to tell two builds apart, say), the install runs
        again, forced, and is checked again. A wheel with files that go out of site-packages
        (``.data/`` scripts, headers, data), which the check cannot vouch for, is installed
        forced straight away.
        """
        start = time.monotonic()
        wheel = request.wheel
        files = wheel_files(wheel) if wheel is not None and self.forces_on_demand else None
        if wheel is None or files is None:
            self.run_install(request, force=True)
            record = self._wheel_record(request, wheel) or self._record(request)
            return InstallResult(self.name, self.target(), record, time.monotonic() - start)
        self.run_install(request, force=False)
        found = self._wheel_record(request, wheel)
        if found is None or not installed_from(found, wheel, files=files):
            self.run_install(request, force=True)
            found = self._wheel_record(request, wheel) or self._record(request)
            # Forced, uv installs from the wheel itself: a file of its own in the .dist-info
            # directory that we do not know of is no reason to stop.
            if not installed_from(found, wheel, strict=False, files=files):
                raise InstallError(
                    f"{self.name} installed {request.project}, but not the files of "
                    f"{wheel.name}: its RECORD ({found}) lists others"
                )
        return InstallResult(self.name, self.target(), found, time.monotonic() - start)

    def _wheel_record(self, request: Request, wheel: Path | None) -> Path | None:
        """The installed RECORD of ``wheel``'s own ``.dist-info`` directory (not a leftover of
        another version beside it), if installed."""
        found = self.find_installed_record(request.project)
        if found is None or wheel is None:
            return found
        own = found.parent.parent / wheel_dist_info(wheel) / "RECORD"
        return own if own.is_file() else None

    def _record(self, request: Request) -> Path:
        record = self.find_installed_record(request.project)
        if record is None:
            raise InstallError(
                f"{self.name} reported success but {request.project} is not in {self.target()}"
            )
        return record

    def run_install(self, request: Request, *, force: bool) -> None:  # pragma: no cover
        """Run the installer; ``force``: reinstall the project even if uv thinks it current."""
        raise NotImplementedError

    def find_installed_record(self, project: str) -> Path | None:  # pragma: no cover
        raise NotImplementedError

    def _run(self, argv: list[str], what: str) -> None:
        try:
            run(argv, stream=self.stream)
        except CommandError as error:
            raise InstallError(f"{what}: {last_line(error.output)}", error.output) from None


class UvToolInstaller(Installer):
    """``uv tool install``: one isolated environment per tool, its scripts on uv's bin dir."""

    name = "uv-tool"
    forces_on_demand = True
    # uv's documented rule: UV_TOOL_DIR, else $XDG_DATA_HOME/uv/tools, else
    # ~/.local/share/uv/tools (%APPDATA%\uv\data\tools on Windows).
    locator_variables = ("UV_TOOL_DIR", "XDG_DATA_HOME", "HOME", "APPDATA")
    located_by_variables = True

    def resolve_target(self) -> str:
        try:
            return run([find_uv(), "tool", "dir"]).strip()
        except CommandError as error:
            raise InstallError(
                f"`uv tool dir` failed: {last_line(error.output)}", error.output
            ) from None

    def run_install(self, request: Request, *, force: bool) -> None:
        if request.wheel is not None and not wheel_console_scripts(request.wheel):
            raise InstallError(
                f"{request.project} declares no console scripts, so `uv tool install` has nothing "
                "to install; use --installer uv-pip to install it into an environment"
            )
        argv = [find_uv(), "tool", "install", "--force"]
        if force:
            argv += ["--reinstall-package", request.project]
        if self.python:
            argv += ["--python", self.python]
        for requirement in self.with_:
            argv += ["--with", requirement]
        argv += self.extra_args
        argv += ["--editable", str(request.source)] if request.editable else [request.requirement]
        self._run(argv, "uv tool install")

    def find_installed_record(self, project: str) -> Path | None:
        return find_record(venv_site_dirs(Path(self.target()) / canonical(project)), project)


class _EnvironmentInstaller(Installer):
    """Installers into one existing environment: ``--python`` or the active virtual environment."""

    locator_variables = ("VIRTUAL_ENV",)

    @functools.cached_property
    def interpreter(self) -> str:
        """The target environment's interpreter; never the system one by accident."""
        if self.python:
            path = Path(self.python)
            if path.is_dir():
                candidate = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
                if not candidate.exists():
                    raise InstallError(
                        f"{self.python} is a directory but not a virtual environment"
                    )
                return str(candidate)
            found = shutil.which(self.python)
            if found is None:
                raise InstallError(f"--python {self.python}: no such interpreter")
            return found
        venv = os.environ.get("VIRTUAL_ENV")
        if venv:
            return str(Path(venv) / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
        raise InstallError(
            f"--installer {self.name} needs a target environment: pass --python PATH (an "
            "interpreter or a virtual environment) or activate a virtual environment"
        )

    def resolve_target(self) -> str:
        return self._ask(["import sys", "print(sys.prefix)"])

    def find_installed_record(self, project: str) -> Path | None:
        site = self._ask(["import sysconfig", "print(sysconfig.get_paths()['purelib'])"])
        return find_record([Path(site)], project)

    def _ask(self, lines: list[str]) -> str:
        try:
            return run([self.interpreter, "-c", "; ".join(lines)]).strip()
        except CommandError as error:
            raise InstallError(
                f"{self.interpreter} failed: {last_line(error.output)}", error.output
            ) from None


class UvPipInstaller(_EnvironmentInstaller):
    """``uv pip install`` into an environment; only the project itself is reinstalled."""

    name = "uv-pip"
    forces_on_demand = True

    def run_install(self, request: Request, *, force: bool) -> None:
        argv = [find_uv(), "pip", "install", "--python", self.interpreter]
        if force:
            argv += ["--reinstall-package", request.project]
        argv += self.extra_args
        argv += ["--editable", str(request.source)] if request.editable else [request.requirement]
        self._run([*argv, *self.with_], "uv pip install")


class PipInstaller(_EnvironmentInstaller):
    """``pip install`` into an environment.

    pip skips a wheel whose name and version are already installed, and ``--force-reinstall``
    alone would reinstall every dependency too. So: one plain install that brings missing or
    changed dependencies (the project itself is skipped when its version is unchanged), then
    ``--force-reinstall --no-deps`` for the project alone: always forced, whatever ``force``.
    """

    name = "pip"

    def run_install(self, request: Request, *, force: bool) -> None:  # noqa: ARG002 - see above
        pip = [self.interpreter, "-m", "pip"]
        try:
            run([*pip, "--version"])
        except CommandError:
            raise InstallError(
                f"pip is not installed in the environment of {self.interpreter}; "
                "use --installer uv-pip"
            ) from None
        if request.editable:  # pip always reinstalls editable requirements
            self._run(
                [*pip, "install", *self.extra_args, "-e", str(request.source), *self.with_],
                "pip install",
            )
            return
        wheel = request.requirement
        self._run([*pip, "install", *self.extra_args, wheel, *self.with_], "pip install")
        self._run(
            [*pip, "install", "--force-reinstall", "--no-deps", *self.extra_args, wheel],
            "pip install",
        )


class PipxInstaller(Installer):
    """``pipx install --force``: pipx recreates the tool's environment from the wheel (so
    ``force`` changes nothing)."""

    name = "pipx"
    locator_variables = ("PIPX_HOME", "XDG_DATA_HOME", "HOME")

    @functools.cached_property
    def pipx(self) -> list[str]:
        found = shutil.which("pipx")
        if found:
            return [found]
        import importlib.util

        if importlib.util.find_spec("pipx") is not None:
            return [sys.executable, "-m", "pipx"]
        raise ToolNotFoundError("pipx", "install it with `pip install pipx`")

    def resolve_target(self) -> str:
        try:
            return run([*self.pipx, "environment", "--value", "PIPX_HOME"]).strip()
        except CommandError as error:
            raise InstallError(
                f"pipx environment: {last_line(error.output)}", error.output
            ) from None

    def run_install(self, request: Request, *, force: bool) -> None:  # noqa: ARG002 - see above
        argv = [*self.pipx, "install", "--force"]
        if self.python:
            argv += ["--python", self.python]
        for requirement in self.with_:
            argv += ["--preinstall", requirement]
        argv += self.extra_args
        argv += ["--editable", str(request.source)] if request.editable else [str(request.wheel)]
        self._run(argv, "pipx install")

    def find_installed_record(self, project: str) -> Path | None:
        env = Path(self.target()) / "venvs" / canonical(project)
        return find_record(venv_site_dirs(env), project)


def make_installer(
    name: str,
    *,
    python: str | None = None,
    with_: tuple[str, ...] = (),
    extra_args: tuple[str, ...] = (),
    editable: bool = False,
    stream: bool = False,
) -> Installer:
    """The installer called ``name`` (one of INSTALLERS)."""
    classes: dict[str, type[Installer]] = {
        "uv-tool": UvToolInstaller,
        "uv-pip": UvPipInstaller,
        "pip": PipInstaller,
        "pipx": PipxInstaller,
    }
    if name not in classes:
        raise InstallError(f"unknown installer {name!r}; choose one of {', '.join(INSTALLERS)}")
    return classes[name](
        python=python, with_=with_, extra_args=extra_args, editable=editable, stream=stream
    )


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def venv_site_dirs(env: Path) -> list[Path]:
    """Candidate site-packages directories of the virtual environment at ``env``."""
    return [env / "Lib" / "site-packages", *sorted(env.glob("lib/*/site-packages"))]  # PyPy too


def dist_infos(site: Path, project: str) -> Iterator[Path]:
    """``project``'s ``*.dist-info`` directories (with a RECORD) in the directory ``site``."""
    try:
        entries = sorted(site.iterdir())
    except OSError:
        return
    wanted = canonical(project)
    for entry in entries:
        name = entry.name.removesuffix(".dist-info").rpartition("-")[0]
        is_dist_info = entry.name.endswith(".dist-info") and (entry / "RECORD").is_file()
        if is_dist_info and canonical(name) == wanted:
            yield entry


def find_record(sites: Iterable[Path], project: str) -> Path | None:
    """The RECORD of ``project`` in the first of ``sites`` that holds it."""
    for site in sites:
        for dist_info in dist_infos(site, project):
            return dist_info / "RECORD"
    return None


def console_scripts(entry_points: str) -> dict[str, str]:
    """``[console_scripts]`` of an entry_points.txt: name -> entry point ({} when unreadable)."""
    import configparser

    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(entry_points)
    except configparser.Error:
        return {}
    if not parser.has_section("console_scripts"):
        return {}
    return {name: value.strip() for name, value in parser["console_scripts"].items()}


def wheel_dist_info(wheel: Path) -> str:
    """The ``NAME-VERSION.dist-info`` directory name inside a wheel."""
    import zipfile

    try:
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                top, _, rest = name.partition("/")
                if top.endswith(".dist-info") and rest == "RECORD":
                    return top
    except (OSError, zipfile.BadZipFile) as error:
        raise InstallError(f"{wheel.name} is not a readable wheel: {error}") from None
    raise InstallError(f"{wheel.name} has no .dist-info/RECORD")


def wheel_console_scripts(wheel: Path) -> list[str]:
    """The console script names a wheel declares in its entry_points.txt."""
    import zipfile

    dist_info = wheel_dist_info(wheel)
    with zipfile.ZipFile(wheel) as archive:
        try:
            text = archive.read(f"{dist_info}/entry_points.txt").decode("utf-8")
        except KeyError:
            return []
    return list(console_scripts(text))


def wheel_files(wheel: Path) -> dict[str, str] | None:
    """The files ``wheel`` installs into site-packages, as an installed RECORD names them, with
    the hash its RECORD gives (``sha256=...``; empty for a file it does not list, as
    installers then write it); its RECORD itself left out. None when it has files that go
    elsewhere (``.data/`` scripts, headers, data): an installed RECORD names those by where
    they went, and rewrites scripts, so it cannot vouch for them."""
    import zipfile

    dist_info = wheel_dist_info(wheel)
    data = f"{dist_info.removesuffix('.dist-info')}.data/"
    try:
        with zipfile.ZipFile(wheel) as archive:
            text = archive.read(f"{dist_info}/RECORD").decode("utf-8")
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    except (OSError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as error:
        raise InstallError(f"cannot read the RECORD of {wheel.name}: {error}") from None
    hashes = dict(_record_rows(text))
    files = {}
    for name in names:
        if name == f"{dist_info}/RECORD":
            continue
        digest = hashes.get(name, "")
        scheme, _, moved = name.removeprefix(data).partition("/")
        if name.startswith(data) and scheme not in ("purelib", "platlib"):
            return None
        files[moved if name.startswith(data) else name] = digest
    return files


#: What installers write into a ``.dist-info`` directory themselves: PEP 376, PEP 610 and uv's
#: ``uv_*.json`` (uv_cache.json).
INSTALLER_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


def installed_from(
    record: Path, wheel: Path, *, strict: bool = True, files: dict[str, str] | None = None
) -> bool:
    """Whether the installed ``record`` holds exactly the files of ``wheel`` (see wheel_files;
    ``files`` when already read), each with the wheel's hash, and nothing else but what
    installers add: files out of site-packages (``../``: console scripts), bytecode
    (``__pycache__``) and their own files in the ``.dist-info`` directory (INSTALLER_FILES,
    ``uv_*.json``). So a file the wheel no longer has, still installed, is a difference. Not
    ``strict``: any other file in the ``.dist-info`` directory is let pass too (an installer's
    file we do not know of)."""
    expected = files if files is not None else wheel_files(wheel)
    try:
        text = record.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if expected is None:
        return False
    dist_info = f"{wheel_dist_info(wheel)}/"
    installed = {}
    for name, digest in _record_rows(text):
        own = name.removeprefix(dist_info)  # the file's name if in the .dist-info directory
        installers = own in INSTALLER_FILES or (own.startswith("uv_") and own.endswith(".json"))
        added = (
            name.startswith("../")
            or "__pycache__" in name.split("/")
            or (name.startswith(dist_info) and "/" not in own and (installers or not strict))
        )
        if name in expected or not added:
            installed[name] = digest
    return installed == expected


def _record_rows(text: str) -> Iterator[tuple[str, str]]:
    """(path, hash) of each row of a RECORD file's ``text``, its path with ``/`` separators and
    no leading ``/`` or ``./``, as uv reads them (uv wrote ``\\`` in some rows on Windows
    before astral-sh/uv#17339)."""
    import csv
    import io

    for row in csv.reader(io.StringIO(text, newline="")):
        if row:
            path = row[0].replace("\\", "/").removeprefix("./").lstrip("/")
            yield path, row[1] if row[1:] else ""
