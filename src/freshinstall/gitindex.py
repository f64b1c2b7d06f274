"""git's index as a witness for the no-change answer (quick.py): which tracked files it vouches for.

With nothing changed, most of ``freshinstall fingerprint``'s time is one ``lstat`` per input from
Python. git does the same check in C on several threads: ``git diff-files`` compares each index
entry's stat data (mtime and ctime, inode, size, uid, gid, the owner's executable bit) with the
file's, and names every file that differs. So where an index entry holds exactly the stat data
our own record has for a file, git's silence about that file means that it still has that stat
data, which is all our stat cache ever asks.

Except for the times' fractions: a git built without USE_NSEC (Debian's 2.39, for one) compares
whole seconds only. So a file is vouched for only when its ctime is in an earlier second than
the index file's mtime: an edit after the index was written sets a ctime in that second or a
later one, which git tells apart, as long as the clock does not step back. (Our own ``lstat``
check compares nanoseconds.) The files vouched for must also be settled, by the stat cache's
own rule, checked again with the reading run's reference time.

The blob ids in the index are never used: they hash content after clean filters and eol
conversion, not the bytes we hash. Nor is git's word taken where git would look at content
rather than stat data, or not look at all. An entry vouches for a file only when:

* it matches our record of the same run field for field (size, mtime, ctime, inode, kind), and
  the record is settled (older than the run by quick.MARGIN_NS, the stat cache's own rule);
* its mtime and ctime are in an earlier second than the index file's mtime. For the mtime,
  that keeps it from being racy to git (git re-reads racy entries and compares content after
  conversion, which can hide a change of line endings); for the ctime, see below;
* it is not empty (git's "smudged" racy entries have size 0), not ``assume-unchanged``, not
  ``skip-worktree``, not ``intent-to-add``, not unmerged.

quick.py then uses the witness only while the index file is the very same one (same inode, size,
times and checksum) and no GIT_DIR / GIT_INDEX_FILE / ... points git elsewhere, and runs
``git diff-files`` on the same work tree (whatever core.worktree says), with the configuration
that makes its check strict (quick.DIFF_FILES), refusing if git complains at all (a file it
cannot ``lstat`` is only a warning to it). Every other input, untracked or not vouched for,
keeps its own record in the witness and is checked with ``lstat`` as before.

The index format is git's gitformat-index(5), versions 2 to 4. An index this module does not
fully understand (a split or sparse index, SHA-256 object names, no checksum) gives no witness.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import sys
from collections.abc import Mapping

from freshinstall import quick

#: An entry's stat data: ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size (32 bits each).
_STAT = struct.Struct(">10I")
#: Where an entry's flags are (after the stat data and a SHA-1 object name), and its name.
_FLAGS, _NAME = 60, 62
_EXTENDED = 0x4000
#: Entries git does not check by their stat data: assume-unchanged, skip-worktree,
#: intent-to-add; and unmerged ones (a stage). The second mask is for the extended flags.
_UNCHECKED, _UNCHECKED_EXTENDED = 0x8000 | 0x3000, 0x4000 | 0x2000
#: Extensions that change what the entries mean: split index, sparse index.
_REFUSED_EXTENSIONS = (b"link", b"sdir")
_CHECKSUM = 20
#: Extended flags came with version 3; version 4 compresses the paths.
_EXTENDED_FLAGS, _COMPRESSED_PATHS = 3, 4
#: git's mode for each st_mode our records hold: only the owner's x bit counts for git.
_GIT_MODES: dict[str, int] = {}


def witness(
    root: str,
    work_tree: str,
    identity: str | None,
    records: Mapping[str, str],
    settled_before: int,
    previous: bytes = b"",
) -> bytes:
    """quick.py's witness field for the answer of a run that recorded ``records`` of the
    project at ``root``, in the git work tree ``work_tree``, after listing its files from the
    index whose quick.index_identity was ``identity``; ``settled_before`` is the time before
    which its records are settled. Empty when the index cannot vouch for anything.

    ``previous`` is the answer recorded with these very records, if the caller has one: when
    its witness was made from the same index file, it still holds, and is kept as it is (it
    costs about 50 ms to make for 10,000 files).
    """
    index_file = quick.index_file(work_tree)
    if identity is None or index_file is None or not quick.witness_possible(work_tree):
        return b""
    kept, fields = quick.recorded_witness(previous)
    same_file = fields and fields[0] == os.fsencode(index_file)
    if same_file and quick.index_identity_of(fields) == identity:
        return kept
    try:
        with open(index_file, "rb") as file:
            info = os.fstat(file.fileno())
            data = file.read()
        entries = read_index(data)
    except (OSError, ValueError, IndexError, struct.error):
        return b""
    # The very index the listing was made from, and one this module understands.
    checksum = data[-_CHECKSUM:]
    if quick.index_identity(info, checksum) != identity or entries is None:
        return b""
    inside = os.path.relpath(root, work_tree)
    prefix = "" if inside == "." else inside.replace(os.sep, "/") + "/"
    vouched, newest = _vouched(data, entries, records, prefix, info, settled_before)
    chosen = set(vouched)
    own = "".join(f"{path}\0{record}\0" for path, record in records.items() if path not in chosen)
    names = "".join(f"\0{path}" for path in vouched) + "\0"
    signature = quick.file_signature(info)
    return quick.make_witness(
        index_file, signature, checksum, os.fsencode(names), own.encode(), newest
    )


def _vouched(
    data: bytes,
    entries: Mapping[bytes, int],
    records: Mapping[str, str],
    prefix: str,
    index: os.stat_result,
    settled_before: int,
) -> tuple[list[str], int]:
    """The paths of ``records`` whose index entry vouches for them (see the module docstring),
    and the newest mtime or ctime among them."""
    unpack, get, modes = _STAT.unpack_from, entries.get, _GIT_MODES
    encoding = sys.getfilesystemencoding()
    vouched: list[str] = []
    newest, index_seconds = 0, index.st_mtime_ns // 1_000_000_000
    end = -quick.DIGEST_LENGTH - 1
    for path, record in records.items():
        offset = get((prefix + path).encode(encoding, "surrogateescape"), -1)
        if offset < 0:
            continue  # untracked, or not checked by stat data
        ctime_s, ctime_ns, mtime_s, mtime_ns, _, ino, mode, _, _, size = unpack(data, offset)
        mtime = mtime_s * 1_000_000_000 + mtime_ns
        ctime = ctime_s * 1_000_000_000 + ctime_ns
        # A record is "SIZE MTIME CTIME INODE MODE DIGEST". Fields wider than the index's 32
        # bits never match: such files are checked with lstat.
        signature = f"{size} {mtime} {ctime} {ino} "
        if (
            record.startswith(signature)
            and size
            and mtime_s < index_seconds
            and ctime_s < index_seconds
            and mtime < settled_before
            and ctime < settled_before
        ):
            st_mode = record[len(signature) : end]
            if (modes.get(st_mode) or _git_mode(st_mode)) == mode:
                vouched.append(path)
                newest = max(newest, mtime, ctime)
    return vouched, newest


def _git_mode(st_mode: str) -> int:
    mode = _GIT_MODES.get(st_mode)
    if mode is None:
        number = int(st_mode)
        if stat.S_ISREG(number):
            mode = 0o100755 if number & stat.S_IXUSR else 0o100644
        else:
            mode = 0o120000 if stat.S_ISLNK(number) else 0
        _GIT_MODES[st_mode] = mode
    return mode


def read_index(data: bytes) -> dict[bytes, int] | None:
    """Where each path's entry starts in a git index file's bytes, -1 for one git does not
    check by its stat data; None for an index this module does not fully understand.
    ValueError, IndexError or struct.error when it is damaged."""
    if len(data) < 12 + _CHECKSUM or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack_from(">II", data, 4)
    body, checksum = data[:-_CHECKSUM], data[-_CHECKSUM:]
    # A SHA-256 repository's index ends with a 32-byte checksum, and index.skipHash writes none.
    if version not in (2, _EXTENDED_FLAGS, _COMPRESSED_PATHS):
        return None
    if hashlib.sha1(body).digest() != checksum:  # noqa: S324 - git's checksum, not security
        return None
    entries: dict[bytes, int] = {}
    offset, name, find = 12, b"", data.index
    for _ in range(count):
        flags = data[offset + _FLAGS] << 8 | data[offset + _FLAGS + 1]
        start = offset + _NAME
        extended = 0
        if flags & _EXTENDED:
            if version < _EXTENDED_FLAGS:
                raise ValueError("extended flags in a version 2 index")
            extended = data[start] << 8 | data[start + 1]
            start += 2
        if version == _COMPRESSED_PATHS:  # the previous name, less N bytes, plus a suffix
            strip, start = _varint(data, start)
            end = find(b"\0", start)
            name = name[: len(name) - strip] + data[start:end]
            following = end + 1
        else:  # NUL-padded to a multiple of 8 bytes from the start of the entry
            end = find(b"\0", start)
            name = data[start:end]
            following = offset + (end - offset + 8) // 8 * 8
        unchecked = flags & _UNCHECKED or extended & _UNCHECKED_EXTENDED or name in entries
        entries[name] = -1 if unchecked else offset  # an unmerged path has several entries
        offset = following
    if offset > len(body):
        raise ValueError("damaged index")
    while offset + 8 <= len(body):
        signature, length = struct.unpack_from(">4sI", data, offset)
        if signature in _REFUSED_EXTENSIONS:
            return None
        offset += 8 + length
    if offset != len(body):
        raise ValueError("damaged index")
    return entries


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    """git's offset encoding (OFS_DELTA in gitformat-pack(5)): the number and the next offset."""
    byte = data[offset]
    number = byte & 0x7F
    offset += 1
    while byte & 0x80:
        byte = data[offset]
        number = ((number + 1) << 7) | (byte & 0x7F)
        offset += 1
    return number, offset
