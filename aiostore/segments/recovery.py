"""Opening a segment directory: the lock, the segment list, and recovery of the last segment.

Everything here is blocking and runs in one worker hop. Only the *last* segment is read: sealed
segments were fsynced when the next one was created, so open time does not grow with their
number.

Recovery of the last segment (LevelDB's log-reader policy, sharpened by flush markers):

* records are verified from the header on; at the first bad one (bad magic, checksum, or cut
  off) the rest of the file is searched for valid records;
* every flush ends with a flush marker, and flushes are sequential (each one's fdatasync
  returns before the next is written). The damaged flush's own marker proves nothing (it was
  written in the same ``pwritev``), but a *second* valid marker after the damage belongs to a
  later flush, which proves the damaged bytes had been made durable: that is corruption in
  the middle. It is reported (never silently skipped) and the records after it are kept. (A
  clean stop appends one extra marker, so the last flush before it is covered too);
* otherwise the damage belongs to the last, incomplete flush — a torn tail, which was never
  acknowledged as durable — and the file is truncated there. What was dropped is reported.
"""

from __future__ import annotations

import errno
import os
import uuid
from dataclasses import dataclass, field

from .._io.base import FileSystem
from .._io.groupsync import sync_dir
from .._io.ops import ensure_dirs, step
from ..errors import CorruptionError, DatabaseLockedError, NotFoundError
from .format import (
    FLAG_FLUSH,
    FORMAT_VERSION,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    BadRecord,
    SegmentHeader,
    check_record,
    find_next_record,
)


@dataclass
class Damage:
    """A damaged byte range in a segment."""

    index: int
    start: int
    end: int
    reason: str


@dataclass
class OpenState:
    """What opening found; handed back to the event loop."""

    db_id: uuid.UUID
    indices: list[int]
    last: int
    end: int  # valid end of the last segment
    lock_fd: int | None
    write_fd: int | None
    dropped: list[str] = field(default_factory=list)  # torn tails and removed empty segments
    damage: list[Damage] = field(default_factory=list)


def segment_name(prefix: str, padding: int, index: int) -> str:
    """``data00042.dat`` for prefix "data", padding 5, index 42."""
    return f"{prefix}{index:0{padding}d}.dat"


def list_segments(fs: FileSystem, path: str, prefix: str) -> dict[int, str]:
    """Segment indices found in ``path`` -> file name. Other files are ignored."""
    with step("list directory", path):
        names = fs.listdir(path)
    found: dict[int, str] = {}
    skip = len(prefix)
    for name in names:
        if name.endswith(".dat") and name.startswith(prefix):
            digits = name[skip:-4]
            if digits.isdigit() and digits.isascii():
                found[int(digits)] = name
    return found


def take_lock(fs: FileSystem, path: str, prefix: str) -> int:
    """Open and lock ``path/<prefix>.LOCK`` (a kernel lock: released when the process dies)."""
    lock_path = os.path.join(path, f"{prefix}.LOCK")
    with step("open lock file", lock_path):
        fd = fs.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fs.lock(fd, exclusive=True, blocking=False)
    except BlockingIOError:
        fs.close(fd)
        raise DatabaseLockedError(
            f"{path} is open for writing by another SegmentDB (in this or another process); "
            "open it with read_only=True to read alongside") from None
    except OSError as exc:
        fs.close(fd)
        with step("lock", lock_path):
            raise exc
    return fd


def create_segment(fs: FileSystem, path: str, name: str, header: SegmentHeader) -> int:
    """Create a segment file with its header, durable (file and name); returns an O_RDWR fd."""
    full = os.path.join(path, name)
    with step("create segment", full):
        fd = fs.open(full, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with step("write segment header", full):
            fs.write(fd, header.to_bytes())
        with step("fsync segment", full, durability=True):
            fs.fsync(fd)
        with step("fsync directory", path, durability=True):
            sync_dir(fs, path)
    except BaseException:
        fs.close(fd)
        raise
    return fd


def open_directory(fs: FileSystem, path: str, *, prefix: str, padding: int, create: bool,
                   read_only: bool) -> OpenState:
    """Lock (unless read-only), list, recover the last segment, and open it for appending."""
    try:
        with step("open database directory", path):
            fs.stat(path)
    except NotFoundError:
        if not create or read_only:
            raise
        ensure_dirs(fs, path, durable=True)
    lock_fd = None if read_only else take_lock(fs, path, prefix)
    try:
        return _open_locked(fs, path, prefix, padding, create, read_only, lock_fd)
    except BaseException:
        if lock_fd is not None:
            fs.close(lock_fd)
        raise


def _open_locked(fs: FileSystem, path: str, prefix: str, padding: int, create: bool,
                 read_only: bool, lock_fd: int | None) -> OpenState:
    segments = list_segments(fs, path, prefix)
    dropped: list[str] = []
    # a segment whose creation never became durable (crash before its header was synced) holds
    # no acknowledged item: remove it
    while segments:
        last = max(segments)
        full = os.path.join(path, segments[last])
        with step("read segment", full):
            head = _read_head(fs, full)
        header = SegmentHeader.parse(head)
        if header is not None:
            if header.version != FORMAT_VERSION:
                raise CorruptionError(f"{full} has format version {header.version}; this "
                                      f"aiostore reads version {FORMAT_VERSION}")
            break
        being_created = len(head) < SEGMENT_HEADER_SIZE or not head.strip(b"\0")
        if being_created and read_only:  # the writer is creating it right now: not there yet
            del segments[last]
            continue
        if being_created:
            with step("remove incomplete segment", full):
                fs.unlink(full)
                sync_dir(fs, path)
            dropped.append(f"removed {segments[last]}: created but never written ({len(head)} "
                           "bytes)")
            del segments[last]
            continue
        raise CorruptionError(f"{full} is not an aiostore segment (bad header)")
    if not segments:
        if read_only or not create:
            raise NotFoundError(errno.ENOENT, "no segment files: not a SegmentDB", path)
        header = SegmentHeader(index=0, db_id=uuid.uuid4())
        fd = create_segment(fs, path, segment_name(prefix, padding, 0), header)
        return OpenState(header.db_id, [0], 0, SEGMENT_HEADER_SIZE, lock_fd, fd, dropped)
    last = max(segments)
    full = os.path.join(path, segments[last])
    flags = os.O_RDONLY if read_only else os.O_RDWR
    with step("open segment", full):
        fd = fs.open(full, flags)
    try:
        with step("read segment", full):
            data = fs.read_file(full)
        last_header = SegmentHeader.parse(data)
        assert last_header is not None
        if last_header.index != last:
            raise CorruptionError(f"{full} says it is segment {last_header.index}, not {last}")
        end, damage, torn = scan_tail(data, last)
        if torn is not None and not read_only:
            with step("truncate torn tail", full):
                fs.ftruncate(fd, end)
            with step("fsync segment", full, durability=True):
                fs.fsync(fd)
            dropped.append(f"{segments[last]}: dropped a torn tail of {len(data) - end} bytes at "
                           f"offset {end} ({torn}); it was never acknowledged as durable")
        _check_db_ids(fs, path, segments, last_header.db_id, last)
    except BaseException:
        fs.close(fd)
        raise
    return OpenState(last_header.db_id, sorted(segments), last, end, lock_fd,
                     None if read_only else fd, dropped, damage)


def _read_head(fs: FileSystem, full: str) -> bytes:
    fd = fs.open(full, os.O_RDONLY)
    try:
        return fs.pread(fd, SEGMENT_HEADER_SIZE, 0)
    finally:
        fs.close(fd)


def _check_db_ids(fs: FileSystem, path: str, segments: dict[int, str], db_id: uuid.UUID,
                  last: int) -> None:
    """The first segment must belong to the same database as the last (cheap: one header)."""
    first = min(segments)
    if first == last:
        return
    full = os.path.join(path, segments[first])
    with step("read segment", full):
        first_header = SegmentHeader.parse(_read_head(fs, full))
    if first_header is None or first_header.db_id != db_id:
        raise CorruptionError(f"{full} belongs to another database (or has a bad header)")


def scan_tail(data: bytes, index: int) -> tuple[int, list[Damage], str | None]:
    """Verify every record after the header: (valid end, damage in the middle, torn reason)."""
    at = SEGMENT_HEADER_SIZE
    end = at
    damage: list[Damage] = []
    while at < len(data):
        try:
            rec = check_record(data, at, at)
        except BadRecord as exc:
            nxt = find_next_record(data, at + 1, 0)
            if nxt is None or _flush_markers_after(data, nxt) < 2:
                return end, damage, exc.reason
            damage.append(Damage(index, at, nxt, exc.reason))
            at = nxt
            continue
        at += RECORD_HEADER_SIZE + len(rec.payload)
        end = at
    return end, damage, None


def _flush_markers_after(data: bytes, at: int) -> int:
    """How many valid flush markers follow ``at`` (through further damage); stops at 2."""
    count = 0
    pos: int | None = at
    while pos is not None and pos < len(data) and count < 2:
        try:
            rec = check_record(data, pos, pos)
        except BadRecord:
            pos = find_next_record(data, pos + 1, 0)
            continue
        if rec.flags == FLAG_FLUSH:
            count += 1
        pos += RECORD_HEADER_SIZE + len(rec.payload)
    return count
