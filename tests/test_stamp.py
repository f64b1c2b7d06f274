"""The stamp file: round trip, strict validation, atomic replacement, and its install list."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from freshinstall import stamp
from freshinstall.errors import StampError

INSTALL = stamp.Install(
    installer="uv-tool",
    target="/home/me/.local/share/uv/tools",
    options=("--python", "3.12"),
    wheel_sha256="a" * 64,
    record="/home/me/.local/share/uv/tools/demo/RECORD",
    record_sha256="b" * 64,
)
STAMP = stamp.Stamp(
    fingerprint="f" * 64,
    project="demo",
    version="1.0",
    wheel="demo-1.0-py3-none-any.whl",
    wheel_sha256="a" * 64,
    installs=(INSTALL,),
    freshinstall="0.1.0",
)

Mutation = Callable[[dict[str, Any]], object]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def stamp_data() -> dict[str, Any]:
    data: dict[str, Any] = stamp._to_json(STAMP)
    return data


def write_raw(dist: Path, text: str | bytes) -> None:
    dist.mkdir(parents=True, exist_ok=True)
    path = dist / stamp.FILENAME
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)


# --- round trip --------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    stamp.write(tmp_path / "dist", STAMP)
    assert stamp.read(tmp_path / "dist") == STAMP


def test_round_trip_without_installs(tmp_path: Path) -> None:
    bare = stamp.Stamp("f" * 64, "demo", "1.0", "demo-1.0-py3-none-any.whl", "a" * 64)
    stamp.write(tmp_path / "dist", bare)
    assert stamp.read(tmp_path / "dist") == bare


def test_written_stamp_is_plain_json_with_a_schema(tmp_path: Path) -> None:
    stamp.write(tmp_path, STAMP)
    data = json.loads((tmp_path / stamp.FILENAME).read_text(encoding="utf-8"))
    assert data["schema"] == stamp.SCHEMA
    assert data["installs"][0]["options"] == ["--python", "3.12"]
    assert data["wheel"] == STAMP.wheel


def test_rewrite_replaces_the_stamp(tmp_path: Path) -> None:
    stamp.write(tmp_path, STAMP)
    newer = STAMP.without_install(INSTALL.key)
    stamp.write(tmp_path, newer)
    assert stamp.read(tmp_path) == newer


def test_read_returns_none_when_missing(tmp_path: Path) -> None:
    assert stamp.read(tmp_path / "dist") is None
    (tmp_path / "dist").mkdir()
    assert stamp.read(tmp_path / "dist") is None


# --- invalid stamps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "not json",
        '{"schema": 1,',
        b"\xff\xfe\x00{",
        json.dumps(stamp._to_json(STAMP))[:40],
    ],
    ids=["empty", "brace", "words", "truncated", "binary", "half-written"],
)
def test_corrupt_json_is_invalid(tmp_path: Path, text: str | bytes) -> None:
    write_raw(tmp_path, text)
    with pytest.raises(stamp.StampInvalidError, match=r"\.freshinstall\.json"):
        stamp.read(tmp_path)


def test_deeply_nested_json_is_invalid(tmp_path: Path) -> None:
    write_raw(tmp_path, "[" * 100_000)
    with pytest.raises(stamp.StampInvalidError):
        stamp.read(tmp_path)


def test_a_directory_in_place_of_the_stamp_is_invalid(tmp_path: Path) -> None:
    (tmp_path / stamp.FILENAME).mkdir()
    with pytest.raises(stamp.StampInvalidError, match="cannot read"):
        stamp.read(tmp_path)


def _drop(key: str) -> Mutation:
    return lambda data: data.pop(key)


def _set(key: str, value: object) -> Mutation:
    return lambda data: data.update({key: value})


def _set_install(key: str, value: object) -> Mutation:
    return lambda data: data["installs"][0].update({key: value})


SCHEMA_ERRORS: dict[str, Mutation] = {
    "no-schema": _drop("schema"),
    "schema-2": _set("schema", 2),
    "schema-0": _set("schema", 0),
    "schema-string": _set("schema", "1"),
    "schema-null": _set("schema", None),
}
TYPE_ERRORS: dict[str, Mutation] = {
    "fingerprint-int": _set("fingerprint", 1),
    "project-null": _set("project", None),
    "version-list": _set("version", ["1.0"]),
    "wheel-missing": _drop("wheel"),
    "wheel_sha256-int": _set("wheel_sha256", 0),
    "freshinstall-missing": _drop("freshinstall"),
    "installs-missing": _drop("installs"),
    "installs-dict": _set("installs", {}),
    "installs-item-string": _set("installs", ["uv-tool"]),
    "install-target-int": _set_install("target", 3),
    "install-options-string": _set_install("options", "--python 3.12"),
    "install-options-ints": _set_install("options", [1, 2]),
    "install-record-missing": lambda data: data["installs"][0].pop("record"),
}
BAD_WHEELS = {
    "slash": "sub/demo-1.0-py3-none-any.whl",
    "parent": "../demo-1.0-py3-none-any.whl",
    "absolute": "/srv/demo-1.0-py3-none-any.whl",
    "not-a-wheel": "demo-1.0.tar.gz",
    "empty": "",
}


@pytest.mark.parametrize(
    "mutate",
    [*SCHEMA_ERRORS.values(), *TYPE_ERRORS.values()],
    ids=[*SCHEMA_ERRORS, *TYPE_ERRORS],
)
def test_wrong_schema_or_types_are_invalid(tmp_path: Path, mutate: Mutation) -> None:
    data = stamp_data()
    mutate(data)
    write_raw(tmp_path, json.dumps(data))
    with pytest.raises(stamp.StampInvalidError):
        stamp.read(tmp_path)


@pytest.mark.parametrize("top", ["[]", "null", '"stamp"', "1", "true"])
def test_a_stamp_that_is_not_an_object_is_invalid(tmp_path: Path, top: str) -> None:
    write_raw(tmp_path, top)
    with pytest.raises(stamp.StampInvalidError, match="unknown schema"):
        stamp.read(tmp_path)


@pytest.mark.parametrize("wheel", BAD_WHEELS.values(), ids=BAD_WHEELS.keys())
def test_a_wheel_that_is_not_a_file_name_in_dist_is_invalid(tmp_path: Path, wheel: str) -> None:
    data = stamp_data()
    data["wheel"] = wheel
    write_raw(tmp_path, json.dumps(data))
    with pytest.raises(stamp.StampInvalidError, match="not a wheel file name"):
        stamp.read(tmp_path)


def test_a_wheel_name_with_a_nul_byte_is_invalid(tmp_path: Path) -> None:
    data = stamp_data()
    data["wheel"] = "demo\x00-1.0-py3-none-any.whl"
    write_raw(tmp_path, json.dumps(data))
    with pytest.raises(stamp.StampInvalidError):
        stamp.read(tmp_path)


# --- atomic write ------------------------------------------------------------------------------


def test_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    for _ in range(3):
        stamp.write(dist, STAMP)
    assert os.listdir(dist) == [stamp.FILENAME]


def test_write_creates_missing_dist(tmp_path: Path) -> None:
    stamp.write(tmp_path / "a" / "dist", STAMP)
    assert stamp.read(tmp_path / "a" / "dist") == STAMP


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_write_gives_the_umask_mode_not_mkstemp_0600(tmp_path: Path, mask: int, mode: int) -> None:
    with umask(mask):
        stamp.write(tmp_path, STAMP)
    assert stat.S_IMODE((tmp_path / stamp.FILENAME).stat().st_mode) == mode


def test_failed_write_keeps_the_old_stamp_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "dist"
    stamp.write(dist, STAMP)
    before = (dist / stamp.FILENAME).read_bytes()

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StampError, match="Input/output error"):
        stamp.write(dist, STAMP.without_install(INSTALL.key))
    monkeypatch.undo()
    assert os.listdir(dist) == [stamp.FILENAME]
    assert (dist / stamp.FILENAME).read_bytes() == before


def test_write_over_a_directory_is_a_stamp_error(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / stamp.FILENAME).mkdir(parents=True)
    with pytest.raises(StampError, match=r"cannot write .*freshinstall.json|is not a directory"):
        stamp.write(dist, STAMP)
    assert os.listdir(dist) == [stamp.FILENAME]


def test_write_where_dist_is_a_file_is_a_stamp_error(tmp_path: Path) -> None:
    (tmp_path / "dist").write_text("not a directory", encoding="utf-8")
    with pytest.raises(StampError, match=r"cannot write .*freshinstall.json|is not a directory"):
        stamp.write(tmp_path / "dist", STAMP)


# --- the install list --------------------------------------------------------------------------


def _install(
    target: str, options: tuple[str, ...] = (), record_sha256: str = "c" * 64
) -> stamp.Install:
    return stamp.Install("uv-tool", target, options, "a" * 64, f"{target}/RECORD", record_sha256)


def test_an_install_is_keyed_by_installer_and_target_not_options() -> None:
    assert INSTALL.key == ("uv-tool", INSTALL.target)
    assert _install(INSTALL.target, ()).key == INSTALL.key


def test_install_for_finds_the_install_with_that_key() -> None:
    assert STAMP.install_for(INSTALL.key) == INSTALL
    assert STAMP.install_for(("pipx", INSTALL.target)) is None
    assert STAMP.install_for(("uv-tool", "/elsewhere")) is None


def test_with_install_adds_and_replaces_by_key() -> None:
    other = _install("/elsewhere")
    both = STAMP.with_install(other)
    assert both.installs == (INSTALL, other)
    # Other options in the same place replace the install: one install per place.
    replacement = _install(INSTALL.target, ("--with", "rich"), record_sha256="d" * 64)
    replaced = both.with_install(replacement)
    assert replaced.installs == (other, replacement)
    assert replaced.install_for(INSTALL.key) == replacement
    assert STAMP.installs == (INSTALL,), "stamps are immutable"


def test_without_install_removes_only_that_key() -> None:
    other = _install("/elsewhere")
    both = STAMP.with_install(other)
    assert both.without_install(INSTALL.key).installs == (other,)
    assert both.without_install(("uv-tool", "/nowhere")).installs == both.installs
    assert both.installs == (INSTALL, other)
