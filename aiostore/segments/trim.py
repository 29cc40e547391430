"""The trim log: what ``rtrim``, ``ltrim`` and ``drop_index`` removed, recorded before any
segment changes (write-ahead).

One small JSON file per database, ``{prefix}.TRIMS``, replaced atomically and durably (temp
sibling, fsync, rename, directory fsync: :func:`aiostore._io.publish.publish`). It holds the
whole trim state — ranges, so it stays small — and the last operation. A trim is:

1. validate (read the record at the position, the safety check) — an error changes nothing;
2. publish the new state: from here on the trim has happened, logically;
3. the physical step (truncate, punch a hole, unlink), then fsync.

Opening the database redoes the last operation's physical step (each is idempotent), so a
crash between 2 and 3 recovers to "after", and a crash before 2 to "before". Everything here is
blocking and runs inside one worker hop.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

from .._io.base import FileSystem
from .._io.groupsync import sync_dir
from .._io.ops import step
from .._io.publish import publish
from ..errors import CorruptionError, NotFoundError
from .format import SEGMENT_HEADER_SIZE

TRIM_LOG_VERSION = 1
_COPY_CHUNK = 8 << 20


def trim_log_name(prefix: str) -> str:
    """``data.TRIMS`` for prefix "data"."""
    return f"{prefix}.TRIMS"


@dataclass(frozen=True)
class TrimOp:
    """One trim: ``kind`` is "rtrim", "ltrim" or "drop"."""

    kind: str
    index: int
    position: int = 0


@dataclass(frozen=True)
class TrimState:
    """The durable trim state of a database (an immutable value: each trim makes a new one)."""

    #: ltrimmed segments: index -> first live position
    starts: dict[int, int] = field(default_factory=dict)
    #: rtrimmed segments: index -> end (the segment is sealed there)
    ends: dict[int, int] = field(default_factory=dict)
    dropped: frozenset[int] = frozenset()
    #: no segment below this index is ever appended to again (an rtrim or drop of the current
    #: segment moves the writer on), so positions in a trimmed segment are never reused
    sealed_below: int = 0
    trimmed_bytes: int = 0
    ops: int = 0
    last: TrimOp | None = None
    db_id: str | None = None

    def refusal(self, index: int, position: int, end: int) -> str | None:
        """Why the record at ``position``..``end`` of segment ``index`` was trimmed, or None."""
        if index in self.dropped:
            return f"segment {index} was dropped"
        start = self.starts.get(index)
        if start is not None and position < start:
            return f"segment {index} was trimmed before position {start}"
        stop = self.ends.get(index)
        if stop is not None and end > stop:
            return f"segment {index} was trimmed from position {stop}"
        return None

    def after(self, op: TrimOp, freed: int, current: int, db_id: str) -> TrimState:
        """The state once ``op`` (freeing ``freed`` bytes) is applied; ``current`` is the index
        of the segment receiving adds."""
        starts, ends, dropped = dict(self.starts), dict(self.ends), set(self.dropped)
        sealed = self.sealed_below
        if op.kind == "ltrim":
            starts[op.index] = op.position
        elif op.kind == "rtrim":
            ends[op.index] = min(op.position, ends.get(op.index, op.position))
        else:
            dropped.add(op.index)
            starts.pop(op.index, None)
            ends.pop(op.index, None)
        if op.kind != "ltrim" and op.index >= current:
            sealed = max(sealed, op.index + 1)
        return replace(self, starts=starts, ends=ends, dropped=frozenset(dropped),
                       sealed_below=sealed, trimmed_bytes=self.trimmed_bytes + freed,
                       ops=self.ops + 1, last=op, db_id=db_id)

    def to_bytes(self) -> bytes:
        """The JSON document stored in the trim log."""
        doc: dict[str, Any] = {
            "version": TRIM_LOG_VERSION,
            "db_id": self.db_id,
            "ops": self.ops,
            "sealed_below": self.sealed_below,
            "trimmed_bytes": self.trimmed_bytes,
            "starts": {str(k): v for k, v in sorted(self.starts.items())},
            "ends": {str(k): v for k, v in sorted(self.ends.items())},
            "dropped": _ranges(self.dropped),
            "last": None if self.last is None else
            [self.last.kind, self.last.index, self.last.position],
        }
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> TrimState:
        """Parse a trim log; :class:`CorruptionError` if it is not one this version reads."""
        try:
            doc = json.loads(data)
            if doc["version"] != TRIM_LOG_VERSION:
                raise CorruptionError(f"{where} has version {doc['version']}; this aiostore "
                                      f"reads version {TRIM_LOG_VERSION}")
            last = doc["last"]
            dropped = {i for a, b in doc["dropped"] for i in range(int(a), int(b) + 1)}
            return cls(starts={int(k): int(v) for k, v in doc["starts"].items()},
                       ends={int(k): int(v) for k, v in doc["ends"].items()},
                       dropped=frozenset(dropped), sealed_below=int(doc["sealed_below"]),
                       trimmed_bytes=int(doc["trimmed_bytes"]), ops=int(doc["ops"]),
                       last=None if last is None else TrimOp(str(last[0]), int(last[1]),
                                                             int(last[2])),
                       db_id=doc["db_id"])
        except CorruptionError:
            raise
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise CorruptionError(f"{where} is not a valid trim log: {exc}") from None


def _ranges(indices: frozenset[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in sorted(indices):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def load(fs: FileSystem, path: str, prefix: str) -> TrimState:
    """The trim state of the database in ``path`` (empty if nothing was ever trimmed)."""
    full = os.path.join(path, trim_log_name(prefix))
    try:
        with step("read trim log", full):
            data = fs.read_file(full)
    except NotFoundError:
        return TrimState()
    return TrimState.from_bytes(data, full)


def save(fs: FileSystem, path: str, prefix: str, state: TrimState) -> None:
    """Replace the trim log with ``state``, durably (the write-ahead step of every trim)."""
    publish(fs, os.path.join(path, trim_log_name(prefix)), [state.to_bytes()], overwrite=True,
            durable=True, mode=None)


def apply(fs: FileSystem, path: str, segment: str, op: TrimOp, fd: int | None = None) -> bool:
    """The physical step of ``op`` on the file ``segment`` (idempotent; made durable).

    ``fd`` is an open read-write descriptor of the segment, if the caller has one. Returns
    True when an ``ltrim`` had to rewrite the file (no hole punching on this file system):
    descriptors opened before then refer to the old file.
    """
    if op.kind == "drop":
        with contextlib.suppress(NotFoundError), step("drop segment", segment):
            fs.unlink(segment)
        with step("fsync directory", path, durability=True):
            sync_dir(fs, path)
        return False
    own = fd is None
    if fd is None:
        try:
            with step("open segment", segment):
                fd = fs.open(segment, os.O_RDWR)
        except NotFoundError:
            return False  # dropped meanwhile: nothing left to trim
    try:
        if op.kind == "rtrim":
            with step("truncate segment", segment):
                if fs.fstat(fd).st_size > op.position:
                    fs.ftruncate(fd, op.position)
            with step("fsync segment", segment, durability=True):
                fs.fsync(fd)
            return False
        with step("punch hole", segment):
            punched = fs.punch_hole(fd, SEGMENT_HEADER_SIZE, op.position - SEGMENT_HEADER_SIZE)
        if punched:
            with step("fsync segment", segment, durability=True):
                fs.fsync(fd)
            return False
        _rewrite_sparse(fs, path, segment, fd, op.position)
        return True
    finally:
        if own:
            fs.close(fd)


def _rewrite_sparse(fs: FileSystem, path: str, segment: str, fd: int, start: int) -> None:
    """ltrim without hole punching: copy the header and the live data (at the same offsets,
    leaving a gap the file system need not allocate) to a new file, fsync it, and rename it
    over the segment. Crash-safe: the old file stays whole until the rename."""
    tmp = segment + ".ltrim-tmp"
    with contextlib.suppress(NotFoundError), step("remove stale temp", tmp):
        fs.unlink(tmp)
    with step("create", tmp):
        out = fs.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with step("copy segment", segment):
            fs.pwritev(out, [fs.pread(fd, SEGMENT_HEADER_SIZE, 0)], 0)
            size = fs.fstat(fd).st_size
            at = start
            while at < size:
                chunk = fs.pread(fd, min(_COPY_CHUNK, size - at), at)
                if not chunk:
                    break
                fs.pwritev(out, [chunk], at)
                at += len(chunk)
        with step("fsync", tmp, durability=True):
            fs.fsync(out)
    finally:
        fs.close(out)
    with step("rename", segment):
        fs.replace(tmp, segment)
    with step("fsync directory", path, durability=True):
        sync_dir(fs, path)
