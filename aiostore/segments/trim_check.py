"""Validating a trim before it changes anything, and measuring what it removes.

A trim names a position; before the trim log is written this module proves, by walking the
records of the range the trim removes, that the position is an item's and that the optional
``safety_check`` matches the data removed, and it counts what is removed: bytes on disk,
items and their payload bytes (what aiodiskdb reports). Blocking; runs inside the trim's one
worker hop. It reads segments and never writes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .._io.base import FileSystem
from .._io.ops import step
from ..errors import CorruptionError, InvalidLocationError, SafetyCheckError
from . import trim
from .format import (
    ITEM_FLAGS,
    RECORD_HEADER,
    RECORD_HEADER_SIZE,
    RECORD_MAGIC,
    SEGMENT_HEADER_SIZE,
    BadRecord,
    Record,
    check_record,
    iter_records,
    record_crc,
)

__all__ = ["Removed", "check_trim"]

_CHUNK = 4 << 20


@dataclass(frozen=True)
class Removed:
    """What a trim takes away: bytes on disk (framing included), items, their payload bytes."""

    freed: int
    items: int
    payload_bytes: int


def check_trim(fs: FileSystem, fd: int, path: str, op: trim.TrimOp, check: bytes, start: int,
               size: int) -> Removed:
    """Verify ``op`` against the segment open at ``fd`` (live from ``start``, ``size`` bytes
    long) and measure what it removes; raise before anything changes.

    ``rtrim``/``ltrim``: ``op.position`` must be an intact item's position (an ``ltrim`` walks
    every record before it, which proves it is a record boundary); ``check`` must equal the
    first (``rtrim``) or last (``ltrim``) payload bytes removed. ``drop``: nothing to verify.
    Damaged records in the range removed end the count there; they do not stop the trim
    (removing damage is a legitimate use) unless ``check`` cannot be verified through them."""
    pos = op.position
    where = f"position {pos} of segment {op.index}"
    if op.kind == "drop":
        items, payload, _ = _measure(fs, fd, path, op.index, start, size, b"", strict=False)
        return Removed(size - (start - SEGMENT_HEADER_SIZE), items, payload)
    with step("read segment", path):
        head = fs.pread(fd, RECORD_HEADER_SIZE, pos) if pos >= SEGMENT_HEADER_SIZE else b""
    if len(head) < RECORD_HEADER_SIZE:
        raise InvalidLocationError(f"{where} is not an item: past the end of the segment")
    magic, flags, length, crc = RECORD_HEADER.unpack(head)
    if magic != RECORD_MAGIC or flags not in ITEM_FLAGS:
        raise InvalidLocationError(f"{where} is not the position of an item")
    with step("read segment", path):
        body = fs.pread(fd, length, pos + RECORD_HEADER_SIZE)
    if len(body) != length or record_crc(flags, body) != crc:
        raise InvalidLocationError(f"{where} is not the position of an intact item")
    if op.kind == "rtrim":
        items, removed, first = _measure(fs, fd, path, op.index, pos, size, check, strict=False)
        if first != check:
            raise SafetyCheckError(f"rtrim of {where}: safety_check does not match the start "
                                   f"of the data it would remove ({first[:16]!r}...)")
        return Removed(size - pos, items, removed)
    items, removed, last = _measure(fs, fd, path, op.index, start, pos, check, strict=True,
                                    tail=True)
    if check and last != check:
        raise SafetyCheckError(f"ltrim of {where}: safety_check does not match the end of "
                               f"the data it would remove (...{last[-16:]!r})")
    return Removed(pos - start, items, removed)


def _measure(fs: FileSystem, fd: int, path: str, index: int, begin: int, end: int, check: bytes,
             *, strict: bool, tail: bool = False) -> tuple[int, int, bytes]:
    """Items and payload bytes in ``[begin, end)``, and the first (or, ``tail``, last)
    ``len(check)`` payload bytes there. Counting stops at the first damaged record. ``strict``:
    a range that does not end on a record boundary is an error, and so is damage when there is
    a ``check`` to verify."""
    items = payload = 0
    want = len(check)
    got = b""
    try:
        for rec in _records(fs, fd, path, begin, end):
            if rec.flags in ITEM_FLAGS:
                items += 1
                payload += len(rec.payload)
                if want and tail:
                    got = (got + bytes(rec.payload))[-want:]
                elif len(got) < want:
                    got += bytes(rec.payload[:want - len(got)])
    except BadRecord as exc:
        if strict and exc.reason == "not a record boundary":
            raise InvalidLocationError(f"position {end} of segment {index} is not a record "
                                       "boundary") from None
        if strict and want:  # the check cannot be verified through damage
            raise CorruptionError(f"segment {index} ({path}): {exc}") from None
    return items, payload, got


def _records(fs: FileSystem, fd: int, path: str, begin: int, end: int) -> Iterator[Record]:
    """The records of ``[begin, end)``, read in chunks; :class:`BadRecord` at damage, or when
    the last record does not end exactly at ``end``."""
    at = begin
    while at < end:
        with step("read segment", path):
            buf = fs.pread(fd, min(_CHUNK, end - at), at)
        consumed = 0
        for rec in iter_records(buf, at):
            consumed = rec.offset - at + RECORD_HEADER_SIZE + len(rec.payload)
            yield rec
        if consumed:
            at += consumed
            continue
        # a record cut off by the chunk (larger than it), or by ``end``: read it whole
        if len(buf) < RECORD_HEADER_SIZE:
            raise BadRecord(at, "not a record boundary")
        _, _, length, _ = RECORD_HEADER.unpack_from(buf)
        need = RECORD_HEADER_SIZE + length
        if at + need > end:
            raise BadRecord(at, "not a record boundary")
        with step("read segment", path):
            whole = fs.pread(fd, need, at)
        yield check_record(whole, 0, at)
        at += need
