"""decide.decide: every reason to build, install, or do nothing."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from freshinstall import fingerprint, stamp
from freshinstall.decide import UP_TO_DATE, Decision, decide

WHEEL = "demo-1.0-py3-none-any.whl"
CURRENT = "f" * 64
OPTIONS = ("--python", "3.12")


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / WHEEL).write_bytes(b"PK wheel bytes")
    return dist


@pytest.fixture
def key(tmp_path: Path) -> tuple[str, str]:
    return ("uv-tool", str(tmp_path / "tools"))


@pytest.fixture
def record(tmp_path: Path) -> Path:
    path = tmp_path / "tools/demo/lib/demo-1.0.dist-info/RECORD"
    path.parent.mkdir(parents=True)
    path.write_text("demo/__init__.py,,\n", encoding="utf-8")
    return path


@pytest.fixture
def fresh(dist: Path, record: Path, key: tuple[str, str]) -> stamp.Stamp:
    """A stamp that is up to date for KEY."""
    wheel_sha = fingerprint.file_sha256(dist / WHEEL)
    install = stamp.Install(
        installer=key[0],
        target=key[1],
        options=OPTIONS,
        wheel_sha256=wheel_sha,
        record=str(record),
        record_sha256=fingerprint.file_sha256(record),
    )
    return stamp.Stamp(CURRENT, "demo", "1.0", WHEEL, wheel_sha, (install,), "0.1.0")


def test_up_to_date(fresh: stamp.Stamp, dist: Path, key: tuple[str, str]) -> None:
    assert decide(CURRENT, fresh, key, OPTIONS, dist) == Decision(False, False, UP_TO_DATE)


def test_force_builds_and_installs_even_when_up_to_date(
    fresh: stamp.Stamp, dist: Path, key: tuple[str, str]
) -> None:
    assert decide(CURRENT, fresh, key, OPTIONS, dist, force=True) == Decision(True, True, "--force")


def test_no_stamp_builds(dist: Path, key: tuple[str, str]) -> None:
    assert decide(CURRENT, None, key, OPTIONS, dist) == Decision(
        True, True, "never built by freshinstall"
    )


def test_changed_fingerprint_builds(fresh: stamp.Stamp, dist: Path, key: tuple[str, str]) -> None:
    assert decide("0" * 64, fresh, key, OPTIONS, dist) == Decision(
        True, True, "the source changed since the last build"
    )


def test_missing_wheel_builds(fresh: stamp.Stamp, dist: Path, key: tuple[str, str]) -> None:
    (dist / WHEEL).unlink()
    assert decide(CURRENT, fresh, key, OPTIONS, dist) == Decision(
        True, True, f"dist/{WHEEL} is missing"
    )


def test_changed_wheel_builds(fresh: stamp.Stamp, dist: Path, key: tuple[str, str]) -> None:
    (dist / WHEEL).write_bytes(b"PK another wheel")
    assert decide(CURRENT, fresh, key, OPTIONS, dist) == Decision(
        True, True, f"dist/{WHEEL} changed after the build"
    )


@pytest.mark.parametrize("other", ["other-target", "other-installer"])
def test_no_install_for_this_key_installs_without_building(
    fresh: stamp.Stamp, dist: Path, key: tuple[str, str], other: str
) -> None:
    elsewhere = (key[0], "/other-tools") if other == "other-target" else ("pipx", key[1])
    assert decide(CURRENT, fresh, elsewhere, OPTIONS, dist) == Decision(
        False, True, "not installed here yet"
    )


@pytest.mark.parametrize("options", [(), ("--python", "3.13"), ("--python", "3.12", "--with", "x")])
def test_changed_options_reinstall_without_building(
    fresh: stamp.Stamp, dist: Path, options: tuple[str, ...], key: tuple[str, str]
) -> None:
    assert decide(CURRENT, fresh, key, options, dist) == Decision(
        False, True, "the install options changed"
    )


def test_install_of_an_older_wheel_installs_without_building(
    fresh: stamp.Stamp, dist: Path, key: tuple[str, str]
) -> None:
    (old,) = fresh.installs
    stale = fresh.with_install(
        stamp.Install(*key, OPTIONS, "0" * 64, old.record, old.record_sha256)
    )
    assert decide(CURRENT, stale, key, OPTIONS, dist) == Decision(
        False, True, "not installed here yet"
    )


def test_removed_install_reinstalls(
    fresh: stamp.Stamp, dist: Path, record: Path, key: tuple[str, str]
) -> None:
    record.unlink()
    assert decide(CURRENT, fresh, key, OPTIONS, dist) == Decision(
        False, True, "the installed copy was removed"
    )


def test_replaced_install_reinstalls(
    fresh: stamp.Stamp, dist: Path, record: Path, key: tuple[str, str]
) -> None:
    record.write_text("demo/__init__.py,,\nother/x.py,,\n", encoding="utf-8")
    assert decide(CURRENT, fresh, key, OPTIONS, dist) == Decision(
        False, True, "the installed copy was changed by another install"
    )


@pytest.mark.parametrize("where", ["outside", "fifo"])
def test_record_outside_its_target_or_not_a_file_is_never_read(
    fresh: stamp.Stamp, dist: Path, key: tuple[str, str], tmp_path: Path, where: str
) -> None:
    (install,) = fresh.installs
    if where == "outside":
        elsewhere = tmp_path / "elsewhere/RECORD"
        elsewhere.parent.mkdir()
        elsewhere.write_bytes(Path(install.record).read_bytes())
    else:
        elsewhere = Path(key[1]) / "fifo"
        os.mkfifo(elsewhere)  # reading it would block forever
    forged = fresh.with_install(dataclasses.replace(install, record=str(elsewhere)))
    assert decide(CURRENT, forged, key, OPTIONS, dist) == Decision(
        False, True, "the installed copy was removed"
    )
