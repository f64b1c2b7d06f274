"""The stamp in dist/: what was built from which fingerprint, and where it was installed.

The stamp is data only: parsed with ``json``, validated field by field, and rewritten
atomically (temporary file, fsync, rename), so a reader never sees half a stamp.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freshinstall.errors import FreshinstallError, StampError
from freshinstall.fingerprint import new_file_mode

FILENAME = ".freshinstall.json"
MANIFEST = ".freshinstall-manifest.json"
LOCKNAME = ".freshinstall.lock"
SCHEMA = 1


class StampInvalidError(FreshinstallError):
    """The stamp exists but is not one freshinstall wrote (corrupt, edited, or too old)."""


@dataclass(frozen=True)
class Install:
    """One installation of the stamped wheel: an installer and the place it installed into."""

    installer: str
    target: str
    options: tuple[str, ...]
    wheel_sha256: str
    #: The installed distribution's RECORD file and its hash: if either changes, the install
    #: was removed or replaced behind our back.
    record: str
    record_sha256: str
    #: What the target was resolved from (see ``Installer.locator``); while it is
    #: unchanged the stamped target is reused without asking the installer again.
    locator: str = ""
    #: An editable install: it follows the source, and is redone only when ``metadata``
    #: (the fingerprint of what shapes its metadata) changes.
    editable: bool = False
    metadata: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """Where the install lives; one install per place (options are its properties)."""
        return (self.installer, self.target)


@dataclass(frozen=True)
class Stamp:
    fingerprint: str
    project: str
    version: str
    wheel: str
    wheel_sha256: str
    installs: tuple[Install, ...] = ()
    freshinstall: str = ""
    #: Earlier wheels freshinstall wrote into dist/ that were still there at the last build, as
    #: (file name, sha256): ``clean`` may remove them while their hash still matches.
    wheels: tuple[tuple[str, str], ...] = ()
    #: For a wheel built for one interpreter (a platform or ABI tag), the identity of that
    #: interpreter (buildenv.interpreter_identity); empty for a pure wheel.
    interpreter: str = ""

    def target_for(self, installer: str, locator: str) -> str | None:
        """The target stamped for ``installer`` when it was resolved from the same ``locator``."""
        for install in self.installs:
            if install.installer == installer and locator and install.locator == locator:
                return install.target
        return None

    def install_for(self, key: tuple[str, str]) -> Install | None:
        return next((install for install in self.installs if install.key == key), None)

    def with_install(self, install: Install) -> Stamp:
        others = tuple(other for other in self.installs if other.key != install.key)
        return dataclasses.replace(self, installs=(*others, install))

    def without_install(self, key: tuple[str, str]) -> Stamp:
        return dataclasses.replace(self, installs=tuple(i for i in self.installs if i.key != key))


def read(dist_dir: Path) -> Stamp | None:
    """The stamp in ``dist_dir``; None when there is none; StampInvalidError when it is bad."""
    path = dist_dir / FILENAME
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StampInvalidError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
        return _from_json(data)
    except (ValueError, TypeError, KeyError, RecursionError) as error:
        raise StampInvalidError(f"{path} is not a valid stamp ({error})") from None


@dataclass(frozen=True)
class Manifest:
    """What the last build was made from, file by file: ``status`` explains changes with it.

    Kept beside the stamp, not in it, so that the no-change path never parses it.
    """

    fingerprint: str
    #: relative path -> "kind:sha256" (kind is f, x or l, as in the fingerprint)
    files: dict[str, str]
    extras: dict[str, str]


def write_manifest(dist_dir: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically."""
    data = {"schema": SCHEMA, **dataclasses.asdict(manifest)}
    _write_atomically(dist_dir, MANIFEST, json.dumps(data, sort_keys=True) + "\n")


def read_manifest(dist_dir: Path) -> Manifest | None:
    """The manifest in ``dist_dir``, or None when it is missing or not one freshinstall wrote."""
    try:
        data = json.loads((dist_dir / MANIFEST).read_bytes())
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            return None
        files, extras = data["files"], data["extras"]
        for table in (files, extras):
            if not isinstance(table, dict) or not all(
                isinstance(key, str) and isinstance(value, str) for key, value in table.items()
            ):
                return None
        return Manifest(_str(data, "fingerprint"), files, extras)
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None


def write(dist_dir: Path, stamp: Stamp) -> None:
    """Replace the stamp atomically: readers see the old stamp or the new one, never a mix."""
    text = json.dumps(_to_json(stamp), indent=2, sort_keys=True) + "\n"
    _write_atomically(dist_dir, FILENAME, text)


def make_dist_dir(dist_dir: Path) -> None:
    """Create dist/ if needed; a clear error when something else has that name."""
    if os.path.lexists(dist_dir) and not dist_dir.is_dir():
        raise StampError(
            f"{dist_dir} is not a directory; freshinstall keeps its wheel and stamp there"
        )
    try:
        dist_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StampError(f"cannot create {dist_dir}: {error.strerror}") from None


def _write_atomically(dist_dir: Path, name: str, text: str | bytes) -> None:
    import tempfile

    make_dist_dir(dist_dir)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".freshinstall-", suffix=".tmp", dir=dist_dir)
        try:
            os.fchmod(fd, new_file_mode())
            with os.fdopen(fd, "wb") as file:
                file.write(text.encode() if isinstance(text, str) else text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, dist_dir / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(dist_dir)
    except OSError as error:
        raise StampError(f"cannot write {dist_dir / name}: {error.strerror}") from None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _to_json(stamp: Stamp) -> dict[str, Any]:
    data = dataclasses.asdict(stamp)
    data["schema"] = SCHEMA
    data["installs"] = [
        dict(dataclasses.asdict(i), options=list(i.options)) for i in stamp.installs
    ]
    return data


def _from_json(data: Any) -> Stamp:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(
            f"unknown schema {data.get('schema') if isinstance(data, dict) else None!r}"
        )
    installs = tuple(
        Install(
            installer=_str(item, "installer"),
            target=_str(item, "target"),
            options=tuple(_str_list(item, "options")),
            wheel_sha256=_str(item, "wheel_sha256"),
            record=_str(item, "record"),
            record_sha256=_str(item, "record_sha256"),
            locator=_str(item, "locator") if "locator" in item else "",
            editable=_bool(item, "editable") if "editable" in item else False,
            metadata=_str(item, "metadata") if "metadata" in item else "",
        )
        for item in _list(data, "installs")
    )
    wheel = _str(data, "wheel")
    built = (wheel, _str(data, "wheel_sha256"), _str(data, "fingerprint"))
    if built == ("", "", ""):
        pass  # no build recorded yet: only editable installs
    elif "/" in wheel or os.sep in wheel or not wheel.endswith(".whl"):
        raise ValueError(f"wheel {wheel!r} is not a wheel file name")
    return Stamp(
        fingerprint=_str(data, "fingerprint"),
        project=_str(data, "project"),
        version=_str(data, "version"),
        wheel=wheel,
        wheel_sha256=_str(data, "wheel_sha256"),
        installs=installs,
        freshinstall=_str(data, "freshinstall"),
        wheels=tuple(map(_wheel_pair, _list(data, "wheels") if "wheels" in data else [])),
        interpreter=_str(data, "interpreter") if "interpreter" in data else "",
    )


def earlier_wheels(
    previous: Stamp | None, dist_dir: Path, current: str
) -> tuple[tuple[str, str], ...]:
    """The wheels freshinstall wrote before ``current`` that are still in ``dist_dir``."""
    if previous is None:
        return ()
    written = dict(previous.wheels)
    if previous.wheel:
        written[previous.wheel] = previous.wheel_sha256
    return tuple(
        (name, sha256)
        for name, sha256 in written.items()
        if name != current and os.path.lexists(dist_dir / name)
    )


def _wheel_pair(item: Any) -> tuple[str, str]:
    match item:
        case [str(name), str(sha256)]:
            pass
        case _:
            raise TypeError("'wheels' must hold [file name, sha256] pairs")
    if "/" in name or os.sep in name or "\0" in name or not name.endswith(".whl"):
        raise ValueError(f"wheel {name!r} is not a wheel file name")
    return name, sha256


def _str(data: Any, key: str) -> str:
    if not isinstance(data, dict) or not isinstance(data.get(key), str):
        raise TypeError(f"{key!r} must be a string")
    value: str = data[key]
    if "\0" in value:
        raise ValueError(f"{key!r} holds a NUL character")
    return value


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise TypeError(f"{key!r} must be true or false")
    return value


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise TypeError(f"{key!r} must be a list")
    return value


def _str_list(data: Any, key: str) -> list[str]:
    value = _list(data, key)
    if not all(isinstance(item, str) and "\0" not in item for item in value):
        raise TypeError(f"{key!r} must be a list of strings")
    return value
