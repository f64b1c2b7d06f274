"""Installed copies of a project: where uv tool, pipx and Python environments keep them, and
what they hold, in the same form as a wheel so that ``doctor`` can compare the two.

A copy is looked up by the project's canonical name, without installing anything:

- uv tool: ``$(uv tool dir)/NAME``; uv is asked, so UV_TOOL_DIR and XDG_DATA_HOME apply exactly as
  uv applies them.
- pipx: ``PIPX_HOME/venvs/NAME``. Without PIPX_HOME, pipx (``pipx/paths.py``) uses the legacy
  ``~/.local/pipx`` when that exists, else the platform's user data dir: ``$XDG_DATA_HOME/pipx``
  or ``~/.local/share/pipx`` (``~/Library/Application Support/pipx`` on macOS).
- an environment: the one of ``--python`` (an interpreter or a virtual environment directory),
  else the active ``VIRTUAL_ENV``; that interpreter is asked for its site and scripts dirs, so
  a ``pip install --user`` copy is found too.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from freshinstall import fingerprint
from freshinstall._process import last_line, run
from freshinstall.errors import CommandError, FreshinstallError, ToolNotFoundError
from freshinstall.install import console_scripts, dist_infos, venv_site_dirs

#: Asks an interpreter where it installs: (site dir, scripts dir) pairs, user site last.
_SCHEMES = """
import json, os, site, sys, sysconfig
pairs = [(sysconfig.get_path(k), sysconfig.get_path("scripts")) for k in ("purelib", "platlib")]
if site.ENABLE_USER_SITE:
    framework = sys.platform == "darwin" and getattr(sys, "_framework", "")
    scheme = "osx_framework_user" if framework else os.name + "_user"
    pairs.append((site.getusersitepackages(), sysconfig.get_path("scripts", scheme)))
print(json.dumps({"python": sys.executable, "pairs": pairs}))
"""


class InstalledError(FreshinstallError):
    """An installed copy or an interpreter could not be inspected."""


@dataclass(frozen=True)
class Contents:
    """What a distribution holds: the files it puts in site-packages and its console scripts."""

    name: str
    version: str
    #: path relative to site-packages -> sha256 of the bytes
    files: Mapping[str, str]
    #: console script name -> entry point ("package.module:function")
    scripts: Mapping[str, str]

    @property
    def top_level(self) -> list[str]:
        """The importable top-level names (``pkg`` for ``pkg/x.py``, ``mod`` for ``mod.py``)."""
        names = {path.split("/", 1)[0].split(".", 1)[0] for path in self.files}
        return sorted(name for name in names if name.isidentifier())


@dataclass(frozen=True)
class Copy:
    """One installed copy of the distribution: its ``*.dist-info`` and the places around it."""

    installer: str
    dist_info: Path
    #: where its console scripts go, and the interpreter that runs them
    scripts_dir: Path
    python: Path

    @property
    def site_packages(self) -> Path:
        return self.dist_info.parent

    @property
    def label(self) -> str:
        """``the uv tool copy in ENV`` (an environment copy: its site-packages directory)."""
        where = self.site_packages if self.installer == "environment" else self.scripts_dir.parent
        return f"the {self.installer} copy in {where}"

    @property
    def has_pip(self) -> bool:
        return (self.site_packages / "pip").is_dir()

    @property
    def editable(self) -> bool:
        """Installed with ``-e``: its code is the source tree, only its metadata can go stale."""
        try:
            data = json.loads((self.dist_info / "direct_url.json").read_bytes())
        except (OSError, ValueError):
            return False
        info = data.get("dir_info") if isinstance(data, dict) else None
        return isinstance(info, dict) and info.get("editable") is True

    def contents(self) -> Contents:
        """The files its RECORD lists (hashed as they are on disk now) and its console scripts.

        Only files inside site-packages count: scripts and data files (``../../bin/x``), the
        ``*.dist-info`` and byte-code caches differ between installers by design. A listed file
        that is gone from disk is left out, so it shows up as missing.
        """
        try:
            record = (self.dist_info / "RECORD").read_text(encoding="utf-8")
        except OSError as error:
            raise InstalledError(f"cannot read {self.dist_info}/RECORD: {error.strerror}") from None
        files = {}
        for row in csv.reader(io.StringIO(record)):
            path = row[0] if row else ""
            if not _is_package_file(path):
                continue
            try:
                files[path] = fingerprint.file_sha256(self.site_packages / path)
            except OSError:
                continue
        name, _, version = self.dist_info.name.removesuffix(".dist-info").rpartition("-")
        return Contents(name, version, files, self.scripts)

    @property
    def scripts(self) -> dict[str, str]:
        """Its console scripts, as its entry_points.txt declares them."""
        return console_scripts(self._read("entry_points.txt"))

    def _read(self, name: str) -> str:
        try:
            return (self.dist_info / name).read_text(encoding="utf-8")
        except OSError:
            return ""


def wheel_contents(wheel: Path) -> Contents:
    """What ``wheel`` installs into site-packages, hashed, and its console scripts."""
    files = {}
    entry_points = ""
    try:
        with zipfile.ZipFile(wheel) as archive:
            dist_info = next(n.split("/", 1)[0] for n in archive.namelist() if ".dist-info/" in n)
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if info.filename == f"{dist_info}/entry_points.txt":
                    entry_points = archive.read(info).decode("utf-8")
                path = _installed_path(info.filename)
                if path is not None and _is_package_file(path):
                    files[path] = hashlib.sha256(archive.read(info)).hexdigest()
    except (OSError, zipfile.BadZipFile, StopIteration) as error:
        raise InstalledError(f"{wheel.name} is not a readable wheel: {error}") from None
    name, _, version = dist_info.removesuffix(".dist-info").rpartition("-")
    return Contents(name, version, files, console_scripts(entry_points))


def _installed_path(name: str) -> str | None:
    """Where a wheel member lands, relative to site-packages (None: elsewhere)."""
    top, _, rest = name.partition("/")
    if top.endswith(".data"):
        scheme, _, inner = rest.partition("/")
        return inner if scheme in {"purelib", "platlib"} else None
    return name


def _is_package_file(path: str) -> bool:
    parts = path.split("/")
    return not (
        not path
        or path.startswith(("/", "../"))
        or parts[0].endswith(".dist-info")
        or "__pycache__" in parts
        or path.endswith((".pyc", ".pyo"))
    )


def find_copies(name: str, *, interpreter: Path | None, uv: str | None) -> list[Copy]:
    """Every installed copy of ``name``: in the environment of ``interpreter`` (see
    :func:`environment_interpreter`), in uv's tool dir (when ``uv`` is given), in pipx's home."""
    from packaging.utils import canonicalize_name

    wanted = canonicalize_name(name)
    copies: list[Copy] = []
    if interpreter is not None:
        copies += _in_interpreter(interpreter, wanted)
    places = [("pipx", pipx_home() / "venvs" / wanted)]
    if uv is not None:
        places.insert(0, ("uv tool", uv_tool_dir(uv) / wanted))
    for installer, env in places:
        found = _venv_copy(installer, env, wanted)
        if found is not None:
            copies.append(found)
    unique: dict[Path, Copy] = {}
    for copy in copies:
        unique.setdefault(copy.dist_info.resolve(), copy)
    return list(unique.values())


def uv_tool_dir(uv: str) -> Path:
    """uv's tool directory, as uv resolves it."""
    try:
        return Path(run([uv, "tool", "dir"]).strip())
    except CommandError as error:
        raise InstalledError(f"`uv tool dir` failed: {last_line(error.output)}") from None


def pipx_home() -> Path:
    """Where pipx keeps its environments, by pipx's own rule (see the module docstring)."""
    configured = os.environ.get("PIPX_HOME")
    if configured:
        return Path(configured).expanduser().absolute()
    legacy = Path.home() / ".local" / "pipx"
    if legacy.exists():
        return legacy
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "pipx"
    data = os.environ.get("XDG_DATA_HOME", "").strip()
    return (Path(data) if data else Path.home() / ".local" / "share") / "pipx"


def environment_interpreter(python: str | None) -> Path | None:
    """The interpreter of the environment to look in: ``python`` (an interpreter, or a virtual
    environment directory), else the active VIRTUAL_ENV's; None when neither is given."""
    given = python or os.environ.get("VIRTUAL_ENV")
    if not given:
        return None
    path = Path(given)
    if path.is_dir():
        path = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    elif os.sep not in given:
        import shutil

        path = Path(shutil.which(given) or given)
    if not path.is_file():
        raise InstalledError(f"{given}: no such interpreter or virtual environment")
    return path


def _in_interpreter(python: Path, wanted: str) -> list[Copy]:
    try:
        data = json.loads(run([python, "-c", _SCHEMES]).strip().splitlines()[-1])
    except ToolNotFoundError:
        raise InstalledError(f"{python}: no such interpreter") from None
    except CommandError as error:
        raise InstalledError(f"{python} does not run: {last_line(error.output)}") from None
    return [
        Copy("environment", dist_info, Path(scripts), Path(data["python"]))
        for site, scripts in data["pairs"]
        for dist_info in dist_infos(Path(site), wanted)
    ]


def _venv_copy(installer: str, env: Path, wanted: str) -> Copy | None:
    bin_dir = env / ("Scripts" if os.name == "nt" else "bin")
    for site in venv_site_dirs(env):
        for dist_info in dist_infos(site, wanted):
            return Copy(installer, dist_info, bin_dir, bin_dir / "python")
    return None
