"""Test isolation: every test gets its own HOME, uv tool dir, bin dir and pipx home.

Only the uv cache is shared (one per test run, across xdist workers), so build backends and
dependencies are downloaded once. No test may touch the real user's tools, HOME or PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import PACKAGES, Sandbox, commit_all, git

#: Variables that would change how uv, pip or git behave for the tests.
_STRIPPED_PREFIXES = (
    "UV_",
    "PIP_",
    "PIPX_",
    "GIT_",
    "VIRTUAL_ENV",
    "FRESHINSTALL_",
    "SETUPTOOLS_SCM_",
    "XDG_",
)

MakeProject = Callable[..., Path]


@pytest.fixture(scope="session")
def shared_uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for the whole run, shared by the xdist workers (uv locks it itself)."""
    configured = os.environ.get("FRESHINSTALL_TEST_UV_CACHE")
    if configured:
        return Path(configured)
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    return root / "uv-cache"


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_uv_cache: Path) -> Sandbox:
    for name in list(os.environ):
        if name.startswith(_STRIPPED_PREFIXES):
            monkeypatch.delenv(name)
    box = Sandbox(tmp_path / "home", tmp_path / "tools", tmp_path / "bin", shared_uv_cache)
    box.home.mkdir()
    monkeypatch.setenv("HOME", str(box.home))
    monkeypatch.setenv("UV_TOOL_DIR", str(box.tools))
    monkeypatch.setenv("UV_TOOL_BIN_DIR", str(box.bin))
    monkeypatch.setenv("UV_CACHE_DIR", str(box.cache))
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.setenv("UV_NO_PROGRESS", "1")
    monkeypatch.setenv("PIPX_HOME", str(tmp_path / "pipx"))
    monkeypatch.setenv("PIPX_BIN_DIR", str(tmp_path / "pipx-bin"))
    monkeypatch.setenv("XDG_DATA_HOME", str(box.home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(box.home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(box.home / ".cache"))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "freshinstall tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@freshinstall.invalid")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return box


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Copy a fixture project from tests/packages into the test's temp dir, optionally in git."""

    def make(name: str, *, in_git: bool = False, dest: str | None = None) -> Path:
        target = tmp_path / (dest or name)
        shutil.copytree(PACKAGES / name, target)
        if in_git:
            git(target, "init", "-q")
            commit_all(target, "initial")
        return target

    return make


def _mount_small_fs(mount: Path, image: Path) -> str | None:
    """Mount a small file system at ``mount``: None when it worked, else why it could not."""
    if shutil.which("mount") is None:
        return "no `mount` command"
    tmpfs = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if tmpfs.returncode == 0:
        return None
    # No tmpfs (not root, or a container without the capability): a loop-mounted image.
    for argv in (
        ["truncate", "-s", "1M", str(image)],
        ["mkfs.ext4", "-q", "-F", str(image)],
        ["mount", "-o", "loop", str(image), str(mount)],
    ):
        if shutil.which(argv[0]) is None:
            return f"tmpfs: {tmpfs.stderr.strip()}; and no `{argv[0]}` for a loop image"
        step = subprocess.run(argv, capture_output=True, text=True, check=False)
        if step.returncode != 0:
            return f"tmpfs: {tmpfs.stderr.strip()}; {argv[0]}: {step.stderr.strip()}"
    return None


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A file system of a few hundred KiB, made for the test and unmounted after it."""
    mount = tmp_path / "small-fs"
    mount.mkdir()
    problem = _mount_small_fs(mount, tmp_path / "small-fs.img")
    if problem is not None:
        pytest.skip(f"cannot make a small file system for the disk-full test: {problem}")
    try:
        yield mount
    finally:
        umount = subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        if umount.returncode != 0:  # still busy: detach it anyway, never leave it mounted
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
