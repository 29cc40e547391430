"""Read-only inspection of a segment database's files, for ``db info`` and ``db verify``.

What :class:`~aiostore.SegmentDB` does not tell through its API — who holds the writer lock,
the trimmed ranges, what a writer's recovery would do with the last segment, and every
record's checksum checked without stopping at the first bad one — is read here from the
documented file format (``docs/segmentdb.md``, "The file format"), with the pure framing
helpers of :mod:`aiostore.segments.format`. Nothing here takes the lock, writes or truncates:
files are only opened ``O_RDONLY`` and read with ``pread``, through aiostore's I/O core.

Everything here is blocking; the commands run it in the worker pool.
"""

from __future__ import annotations

import json
import os
import stat as stat_mod
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._io.base import FileSystem
from .._io.ops import step
from ..errors import NotFoundError
from ..segments.format import (
    FLAG_FLUSH,
    FLAG_TX_COMMIT,
    FLAG_TX_ITEM,
    ITEM_FLAGS,
    RECORD_HEADER,
    RECORD_HEADER_SIZE,
    RECORD_MAGIC,
    RECORD_MAGIC_BYTES,
    SEGMENT_HEADER_SIZE,
    SegmentHeader,
    crc32c,
    interrupted_header,
    record_crc,
)
from ..segments.location import ItemLocation
from .errors import CliError

__all__ = ["Layout", "LockHolder", "Problem", "SegmentReport", "TrimInfo", "open_layout",
           "walk_segment"]

_WINDOW = 4 << 20
_FLAGS_LENGTH = struct.Struct("<HI")  # what a record's CRC32C covers before the payload
Progress = Callable[[int], None]


@dataclass
class LockHolder:
    """Who holds ``{prefix}.LOCK``: read from ``/proc/locks`` (Linux), never by locking."""

    #: True: a writer has the database open; False: none; None: cannot tell here
    held: bool | None
    pid: int | None = None
    command: str | None = None


@dataclass
class TrimInfo:
    """The trim log (``{prefix}.TRIMS``, JSON), as far as inspection needs it."""

    starts: dict[int, int] = field(default_factory=dict)  # ltrimmed: first live position
    ends: dict[int, int] = field(default_factory=dict)  # rtrimmed: end
    dropped: set[int] = field(default_factory=set)
    trimmed_bytes: int = 0
    operations: int = 0
    db_id: str | None = None
    error: str | None = None


@dataclass
class Layout:
    """A database directory as found: its segment files, trim log and lock."""

    path: str
    prefix: str
    padding: int
    segments: dict[int, str]
    trims: TrimInfo
    lock: LockHolder

    def segment_path(self, index: int) -> str:
        """The file of segment ``index``."""
        return os.path.join(self.path, self.segments[index])


@dataclass
class Problem:
    """A damaged byte range of a segment (or a segment file that is not one)."""

    index: int
    start: int
    end: int
    reason: str
    #: the item whose record fails its checksum, when the record's header is intact (its
    #: length leads exactly to the next valid record); None when the header itself is damaged
    location: ItemLocation | None = None

    def as_dict(self) -> dict[str, Any]:
        """For JSON output."""
        return {"segment": self.index, "start": self.start, "end": self.end,
                "reason": self.reason,
                "location": None if self.location is None else
                ":".join(str(n) for n in self.location)}


@dataclass
class SegmentReport:
    """What walking one segment found."""

    index: int
    name: str
    size: int
    start: int  # first live position (after an ltrim)
    items: int = 0
    payload_bytes: int = 0
    flushes: int = 0
    transactions: int = 0
    #: damage: bad records a writer would never drop (exit 1 for verify)
    problems: list[Problem] = field(default_factory=list)
    #: the last segment only: bytes at the end that a writer's recovery drops — a torn last
    #: flush or an uncommitted transaction, never acknowledged (or, with a writer running,
    #: a flush in progress); a note, not damage
    tail: Problem | None = None
    #: the segment file is not one of this database's (bad header, wrong index or id)
    header_error: str | None = None
    #: a note (an interrupted segment creation, a dropped segment whose file remains)
    note: str | None = None


class NotADatabaseError(CliError):
    """The path is not a segment database."""


def open_layout(fs: FileSystem, path: str, prefix: str) -> Layout:
    """The database at ``path``; :class:`~aiostore.errors.NotFoundError` when ``path`` does
    not exist, :class:`NotADatabaseError` when it is no directory or holds no segment."""
    path = os.path.abspath(path)
    with step("stat", path):
        st = fs.stat(path)
    if not stat_mod.S_ISDIR(st.st_mode):
        raise NotADatabaseError(f"not a database: {path} is a file (a SegmentDB is a "
                                "directory of segment files)")
    with step("list directory", path):
        names = fs.listdir(path)
    segments: dict[int, str] = {}
    widths: list[int] = []
    for name in names:
        if name.startswith(prefix) and name.endswith(".dat"):
            digits = name[len(prefix):-4]
            if digits.isdigit() and digits.isascii():
                segments[int(digits)] = name
                widths.append(len(digits))
    trims = _read_trims(fs, path, prefix)
    if not segments and trims.db_id is None:
        raise NotADatabaseError(f"not a database: {path} holds no segment files "
                                f"({prefix}NNNNN.dat)")
    return Layout(path, prefix, min(widths, default=5), segments, trims,
                  _lock_holder(fs, os.path.join(path, f"{prefix}.LOCK")))


def _read_trims(fs: FileSystem, path: str, prefix: str) -> TrimInfo:
    full = os.path.join(path, f"{prefix}.TRIMS")
    try:
        with step("read trim log", full):
            data = fs.read_file(full)
    except NotFoundError:
        return TrimInfo()
    try:
        doc = json.loads(data)
        dropped = {i for a, b in doc["dropped"] for i in range(int(a), int(b) + 1)}
        return TrimInfo(starts={int(k): int(v) for k, v in doc["starts"].items()},
                        ends={int(k): int(v) for k, v in doc["ends"].items()},
                        dropped=dropped, trimmed_bytes=int(doc["trimmed_bytes"]),
                        operations=int(doc["ops"]), db_id=doc.get("db_id"))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        return TrimInfo(error=f"{full} is not a valid trim log: {exc}")


def _lock_holder(fs: FileSystem, lock_path: str) -> LockHolder:
    """Find the ``flock`` on ``lock_path`` in ``/proc/locks`` (without locking anything)."""
    try:
        with step("stat", lock_path):
            st = fs.stat(lock_path)
    except NotFoundError:
        return LockHolder(False)
    try:
        with step("read", "/proc/locks"):
            table = fs.read_file("/proc/locks").decode("ascii", "replace")
    except OSError:
        return LockHolder(None)  # not Linux, or no /proc
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in table.splitlines():
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:56789 0 EOF" (waiters carry a "->")
        if len(parts) < 6 or "->" in parts or parts[1] != "FLOCK":
            continue
        try:
            major, minor, inode = parts[5].split(":")
            found = (int(major, 16), int(minor, 16), int(inode))
            pid = int(parts[4])
        except ValueError:
            continue
        if found == want:
            return LockHolder(True, pid, _command(fs, pid))
    return LockHolder(False)


def _command(fs: FileSystem, pid: int) -> str | None:
    try:
        with step("read", f"/proc/{pid}/cmdline"):
            raw = fs.read_file(f"/proc/{pid}/cmdline")
    except OSError:
        return None
    return " ".join(p.decode("utf-8", "replace") for p in raw.split(b"\0") if p) or None


class _Window:
    """Sequential reads of one file through a window of ``_WINDOW`` bytes."""

    def __init__(self, fs: FileSystem, fd: int, path: str, size: int) -> None:
        self.fs, self.fd, self.path, self.size = fs, fd, path, size
        self.base = 0
        self.buf = memoryview(b"")

    def get(self, pos: int, n: int) -> memoryview:
        """Up to ``n`` bytes at ``pos`` (``n`` at most the window; fewer at the end)."""
        end = min(pos + n, self.size)
        if not (self.base <= pos and end <= self.base + len(self.buf)):
            with step("read segment", self.path):
                self.buf = memoryview(self.fs.pread(self.fd, max(_WINDOW, n), pos))
            self.base = pos
        return self.buf[pos - self.base:end - self.base]

    def crc(self, pos: int, n: int, start: int) -> int:
        """CRC32C of ``n`` bytes at ``pos``, continuing from ``start`` (in window steps)."""
        value = start
        while n > 0:
            take = min(n, _WINDOW)
            chunk = self.get(pos, take)
            if len(chunk) < take:
                raise EOFError
            value = crc32c(chunk, value)
            pos, n = pos + take, n - take
        return value


def _record_at(win: _Window, pos: int, end: int, verify: bool) -> tuple[int, int] | str:
    """``(flags, length)`` of a valid record at ``pos`` (checksum checked when ``verify``),
    or why there is none."""
    head = win.get(pos, RECORD_HEADER_SIZE)
    if len(head) < RECORD_HEADER_SIZE or pos + RECORD_HEADER_SIZE > end:
        return "truncated header"
    magic, flags, length, crc = RECORD_HEADER.unpack(head)
    if magic != RECORD_MAGIC:
        return "no record header"
    stop = pos + RECORD_HEADER_SIZE + length
    if stop > end:
        return f"truncated payload ({max(0, end - pos - RECORD_HEADER_SIZE)} of {length} bytes)"
    if not verify:
        return flags, length
    if length <= _WINDOW:
        payload = win.get(pos + RECORD_HEADER_SIZE, length)
        good = record_crc(flags, payload) == crc
    else:  # a large item: the checksum is computed window by window
        good = win.crc(pos + RECORD_HEADER_SIZE, length,
                       crc32c(_FLAGS_LENGTH.pack(flags, length))) == crc
    return (flags, length) if good else "checksum mismatch"


def _next_record(win: _Window, pos: int, end: int) -> int | None:
    """The offset of the first valid record (checksum checked) at or after ``pos``."""
    at = pos
    while at < end:
        chunk = bytes(win.get(at, _WINDOW))  # (a copy: checking a candidate moves the window)
        found = chunk.find(RECORD_MAGIC_BYTES)
        while found >= 0:
            if not isinstance(_record_at(win, at + found, end, True), str):
                return at + found
            found = chunk.find(RECORD_MAGIC_BYTES, found + 1)
        if len(chunk) <= 1:
            return None
        at += len(chunk) - 1  # (the magic may straddle two windows)
    return None


def _markers_after(win: _Window, pos: int, end: int) -> int:
    """Valid flush markers from ``pos`` on, through further damage (stops at 2)."""
    count = 0
    at: int | None = pos
    while at is not None and at < end and count < 2:
        rec = _record_at(win, at, end, True)
        if isinstance(rec, str):
            at = _next_record(win, at + 1, end)
            continue
        flags, length = rec
        count += flags == FLAG_FLUSH
        at += RECORD_HEADER_SIZE + length
    return count


def walk_segment(fs: FileSystem, layout: Layout, index: int, *, last: bool, verify: bool,
                 db_id: str | None = None, progress: Progress | None = None) -> SegmentReport:
    """Walk every record of segment ``index``: count items, and with ``verify`` check every
    checksum. Damage is recorded and the walk goes on after it (from the next valid record).
    ``last``: the segment a writer appends to — damage at its end that fewer than two flush
    markers follow is a torn tail (what recovery drops), not damage. ``db_id``: the id every
    segment must carry. ``progress(n)`` is told of bytes walked."""
    path = layout.segment_path(index)
    name = layout.segments[index]
    tick = progress or (lambda n: None)
    with step("open segment", path):
        fd = fs.open(path, os.O_RDONLY)
    try:
        with step("stat segment", path):
            size = fs.fstat(fd).st_size
        start = max(SEGMENT_HEADER_SIZE, layout.trims.starts.get(index, SEGMENT_HEADER_SIZE))
        report = SegmentReport(index, name, size, start)
        win = _Window(fs, fd, path, size)
        head = bytes(win.get(0, SEGMENT_HEADER_SIZE))
        if index in layout.trims.dropped:
            report.note = "dropped by drop_index (the file is removed when a writer opens)"
            tick(size)
            return report
        header = SegmentHeader.parse(head)
        if header is None:
            if last and interrupted_header(head, index) and size <= SEGMENT_HEADER_SIZE:
                report.note = "being created (or its creation was interrupted): no data yet"
            else:
                report.header_error = f"{name} is not an aiostore segment (no valid header)"
            tick(size)
            return report
        if header.index != index:
            report.header_error = f"{name} says it is segment {header.index}, not {index}"
        elif db_id is not None and str(header.db_id) != db_id:
            report.header_error = (f"{name} belongs to another database ({header.db_id}, not "
                                   f"{db_id})")
        if report.header_error is not None:
            tick(size)
            return report
        end = size
        pos = start
        tick(pos)
        tx_start: int | None = None
        tx_items = 0
        while pos < end:
            rec = _record_at(win, pos, end, verify)
            if isinstance(rec, str):
                nxt = _next_record(win, pos + 1, end)
                if last and (nxt is None or _markers_after(win, nxt, end) < 2):
                    report.tail = Problem(index, pos, end, rec)
                    tick(end - pos)
                    pos = end
                    break
                report.problems.append(Problem(index, pos, end if nxt is None else nxt, rec,
                                               _damaged_item(win, index, pos, nxt, end)))
                stop = end if nxt is None else nxt
                tick(stop - pos)
                pos = stop
                continue
            flags, length = rec
            if flags in ITEM_FLAGS:
                report.items += 1
                report.payload_bytes += length
                if flags == FLAG_TX_ITEM and tx_start is None:
                    tx_start, tx_items = pos, 0
                tx_items += flags == FLAG_TX_ITEM
            elif flags == FLAG_FLUSH:
                report.flushes += 1
            elif flags == FLAG_TX_COMMIT:
                report.transactions += 1
                tx_start = None
            step_size = RECORD_HEADER_SIZE + length
            pos += step_size
            tick(step_size)
        if last and tx_start is not None and report.tail is None:
            report.items -= tx_items  # (never visible to readers)
            report.tail = Problem(index, tx_start, pos,
                                  f"an uncommitted transaction ({tx_items} items)")
        return report
    finally:
        fs.close(fd)


def _damaged_item(win: _Window, index: int, pos: int, nxt: int | None,
                  end: int) -> ItemLocation | None:
    """The item at ``pos`` when its header is intact and its length leads exactly to the next
    valid record (or the end): then only its payload (or checksum) is damaged."""
    head = win.get(pos, RECORD_HEADER_SIZE)
    if len(head) < RECORD_HEADER_SIZE:
        return None
    magic, flags, length, _ = RECORD_HEADER.unpack(head)
    if magic != RECORD_MAGIC or flags not in ITEM_FLAGS:
        return None
    if pos + RECORD_HEADER_SIZE + length != (end if nxt is None else nxt):
        return None
    return ItemLocation(index, pos, length)


def database_id(fs: FileSystem, layout: Layout) -> str | None:
    """The database's id: from the trim log, else the first segment with a valid header."""
    if layout.trims.db_id is not None:
        return layout.trims.db_id
    for index in sorted(layout.segments):
        path = layout.segment_path(index)
        with step("open segment", path):
            fd = fs.open(path, os.O_RDONLY)
        try:
            with step("read segment header", path):
                header = SegmentHeader.parse(fs.pread(fd, SEGMENT_HEADER_SIZE, 0))
        finally:
            fs.close(fd)
        if header is not None and header.index == index:
            return str(header.db_id)
    return None


def record_problem(fs: FileSystem, layout: Layout, index: int, position: int) -> str | None:
    """Why no valid record starts at ``position`` of segment ``index`` (None: one does)."""
    if index not in layout.segments or index in layout.trims.dropped:
        return f"there is no segment {index}"
    start = layout.trims.starts.get(index, SEGMENT_HEADER_SIZE)
    if position < start:
        return (f"position {position} of segment {index} is before its first record "
                f"({start})")
    path = layout.segment_path(index)
    with step("open segment", path):
        fd = fs.open(path, os.O_RDONLY)
    try:
        with step("stat segment", path):
            size = fs.fstat(fd).st_size
        if position >= size:
            return f"position {position} is past the end of segment {index} ({size} bytes)"
        rec = _record_at(_Window(fs, fd, path, size), position, size, True)
    finally:
        fs.close(fd)
    if isinstance(rec, str):
        return f"no record starts at {index}:{position} ({rec})"
    return None
