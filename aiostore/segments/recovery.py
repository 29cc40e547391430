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
  acknowledged as durable — and the file is truncated there. What was dropped is reported;
* transaction records at the end that no commit record follows belong to a transaction whose
  commit never completed: they are truncated too (all or nothing).

The trim log (:mod:`.trim`) is read first: its last operation is redone (idempotent), dropped
segments are ignored, and an ltrimmed last segment is verified from its first live record.
"""

from __future__ import annotations

import errno
import os
import uuid
from dataclasses import dataclass, field

from .._io.base import FileSystem
from .._io.groupsync import sync_dir
from .._io.ops import ensure_dirs, step
from ..errors import DatabaseLockedError, NotFoundError
from . import trim
from .format import (
    FLAG_FLUSH,
    FLAG_TX_COMMIT,
    FLAG_TX_ITEM,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    BadRecord,
    SegmentHeader,
    check_record,
    find_next_record,
    interrupted_header,
)
from .identity import check_header, read_header


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
    trims: trim.TrimState = field(default_factory=trim.TrimState)


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
    trims = trim.load(fs, path, prefix)
    segments = list_segments(fs, path, prefix)
    db_id = uuid.UUID(trims.db_id) if trims.db_id is not None else None
    if trims.last is not None and not read_only:  # finish the last trim if a crash cut it
        op = trims.last
        full = os.path.join(path, segment_name(prefix, padding, op.index))
        if op.index in segments:  # still ours? (a trim never touches a file it cannot prove)
            check_header(_read_head(fs, full)[0], full, op.index, db_id)
        if op.kind == "drop" or op.index in segments:
            trim.apply(fs, path, full, op)
    for index in trims.dropped:
        segments.pop(index, None)
    dropped: list[str] = []
    # A crash while a segment was being created (before its header was fsynced) leaves a file
    # holding a prefix of its header, or zeros: it holds no acknowledged item and is removed.
    # Only the newest segment can be in that state, and only a file that is exactly that is
    # removed: anything else named like a segment is not ours to delete (CorruptionError).
    removed = False
    while segments:
        last = max(segments)
        full = os.path.join(path, segments[last])
        head, size = _read_head(fs, full)
        if SegmentHeader.parse(head) is not None:
            check_header(head, full, last, db_id)
            break
        owner = db_id
        if owner is None and len(segments) > 1:  # the first segment tells whose it would be
            first = SegmentHeader.parse(_read_head(fs, os.path.join(path, segments[min(
                segments)]))[0])
            owner = first.db_id if first is not None else None
        if removed or size > SEGMENT_HEADER_SIZE or not interrupted_header(head, last, owner):
            check_header(head, full, last, db_id)  # raises, naming the file
        if read_only:  # the writer is creating it right now: not there yet
            del segments[last]
            continue
        with step("remove incomplete segment", full):
            fs.unlink(full)
            sync_dir(fs, path)
        dropped.append(f"removed {segments[last]}: created but never written ({size} bytes: "
                       "an interrupted segment creation)")
        del segments[last]
        removed = True
    known = trims.db_id is not None  # every segment was dropped, but the database exists
    if not segments and (read_only or not (create or known)):
        if known:  # a reader of a database whose segments were all dropped: empty
            return OpenState(uuid.UUID(trims.db_id), [], trims.sealed_below,
                             SEGMENT_HEADER_SIZE, lock_fd, None, dropped, trims=trims)
        raise NotFoundError(errno.ENOENT, "no segment files: not a SegmentDB", path)
    if not segments or (max(segments) < trims.sealed_below and not read_only):
        # a new database, or the last segment was sealed by a trim: start a new one
        db_id = uuid.UUID(trims.db_id) if known else uuid.uuid4()
        if segments:
            _check_db_ids(fs, path, segments, db_id, -1)
        index = max(trims.sealed_below, max(segments, default=-1) + 1)
        header = SegmentHeader(index=index, db_id=db_id)
        fd = create_segment(fs, path, segment_name(prefix, padding, index), header)
        return OpenState(header.db_id, sorted([*segments, index]), index, SEGMENT_HEADER_SIZE,
                         lock_fd, fd, dropped, trims=trims)
    last = max(segments)
    full = os.path.join(path, segments[last])
    flags = os.O_RDONLY if read_only else os.O_RDWR
    with step("open segment", full):
        fd = fs.open(full, flags)
    try:
        with step("read segment", full):
            data = fs.read_file(full)
        last_header = check_header(data, full, last, db_id)
        end, damage, torn = scan_tail(data, last, trims.starts.get(last, SEGMENT_HEADER_SIZE))
        if last < trims.sealed_below:  # read-only, sealed by a trim: nothing in flight there
            end, torn = len(data), None
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
                     None if read_only else fd, dropped, damage, trims)


def _read_head(fs: FileSystem, full: str) -> tuple[bytes, int]:
    """The first bytes of a segment file (a header's worth) and the file's size."""
    with step("read segment", full):
        fd = fs.open(full, os.O_RDONLY)
        try:
            return read_header(fs, fd, full), fs.fstat(fd).st_size
        finally:
            fs.close(fd)


def _check_db_ids(fs: FileSystem, path: str, segments: dict[int, str], db_id: uuid.UUID,
                  last: int) -> None:
    """The first segment must belong to the same database as the last (cheap: one header);
    ``last`` is the index whose header was already checked (-1: none)."""
    first = min(segments)
    if first == last:
        return
    full = os.path.join(path, segments[first])
    check_header(_read_head(fs, full)[0], full, first, db_id)


def scan_tail(data: bytes, index: int, start: int = SEGMENT_HEADER_SIZE
              ) -> tuple[int, list[Damage], str | None]:
    """Verify every record from ``start`` on: (valid end, damage in the middle, torn reason).

    The valid end excludes a transaction whose commit record is missing."""
    at = start
    end = at
    damage: list[Damage] = []
    torn: str | None = None
    tx_start: int | None = None  # first record of a transaction not committed (yet)
    tx_items = 0
    while at < len(data):
        try:
            rec = check_record(data, at, at)
        except BadRecord as exc:
            nxt = find_next_record(data, at + 1, 0)
            if nxt is None or _flush_markers_after(data, nxt) < 2:
                torn = exc.reason
                break
            damage.append(Damage(index, at, nxt, exc.reason))
            at = nxt
            continue
        if rec.flags == FLAG_TX_ITEM:
            if tx_start is None:
                tx_start, tx_items = at, 0
            tx_items += 1
        elif rec.flags == FLAG_TX_COMMIT:
            tx_start = None
        at += RECORD_HEADER_SIZE + len(rec.payload)
        end = at
    if tx_start is not None:
        end = tx_start
        what = f"an uncommitted transaction ({tx_items} items)"
        torn = what if torn is None else f"{torn}, after {what}"
    return end, damage, torn


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
