"""Validating a trim before it changes anything, and measuring what it removes.

A trim names a position; before the trim log is written this module proves that the position
is an intact item's and that the optional ``safety_check`` matches the data removed, and
measures what is removed: bytes on disk always, and — on request, since it reads the whole
range removed — the items and their payload bytes (what aiodiskdb reports). Blocking; runs
inside the trim's one worker hop. It reads segments and never writes them.
"""

from __future__ import annotations

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
    record_crc,
)

__all__ = ["Removed", "check_trim"]

_CHUNK = 4 << 20


@dataclass(frozen=True)
class Removed:
    """What a trim takes away: bytes on disk (framing included); items and their payload bytes
    when they were counted (None otherwise)."""

    freed: int
    items: int | None = None
    payload_bytes: int | None = None


def check_trim(fs: FileSystem, fd: int, path: str, op: trim.TrimOp, check: bytes, start: int,
               size: int, *, count: bool) -> Removed:
    """Verify ``op`` against the segment open at ``fd`` (live from ``start``, ``size`` bytes
    long) and measure what it removes (``count``: the items and payload bytes too); raise
    before anything changes.

    ``rtrim``/``ltrim``: ``op.position`` must be an intact item's position; ``check`` must
    equal the first (``rtrim``) or last (``ltrim``) payload bytes removed. An ``ltrim`` with a
    check or a count walks every record before the position, which also proves it is a record
    boundary. ``drop``: nothing to verify. A count stops at a damaged record (removing damage
    is a legitimate use); a check that cannot be verified through damage is an error."""
    pos = op.position
    where = f"position {pos} of segment {op.index}"
    if op.kind == "drop":
        if not count:
            return Removed(size - (start - SEGMENT_HEADER_SIZE))
        items, payload, _ = _walk(fs, fd, path, op.index, start, size, 0, strict=False)
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
        if not count and not check:
            return Removed(size - pos)
        items, payload, first = _walk(fs, fd, path, op.index, pos, size, len(check),
                                      strict=False, enough=not count)
        if first != check:
            raise SafetyCheckError(f"rtrim of {where}: safety_check does not match the start "
                                   f"of the data it would remove ({first[:16]!r}...)")
        return Removed(size - pos, items, payload) if count else Removed(size - pos)
    if not count and not check:
        return Removed(pos - start)
    items, payload, last = _walk(fs, fd, path, op.index, start, pos, -len(check), strict=True)
    if check and last != check:
        raise SafetyCheckError(f"ltrim of {where}: safety_check does not match the end of "
                               f"the data it would remove (...{last[-16:]!r})")
    return Removed(pos - start, items, payload) if count else Removed(pos - start)


def _walk(fs: FileSystem, fd: int, path: str, index: int, begin: int, end: int, keep: int, *,
          strict: bool, enough: bool = False) -> tuple[int, int, bytes]:
    """Walk the records of ``[begin, end)`` by their headers: the items, their payload bytes,
    and the first ``keep`` (or, negative, the last ``-keep``) payload bytes. ``enough``: stop
    once the first ``keep`` bytes are in hand.

    It strides from header to header (the magic checked at each; checksums are not: a
    count needs none, and a safety check compares the bytes themselves), reading 4 MiB at a
    time. A bad header ends the walk; ``strict``: a range that does not end on a record
    boundary is :class:`InvalidLocationError`, and a bad header with ``keep`` to verify
    :class:`CorruptionError`."""
    unpack = RECORD_HEADER.unpack_from
    items = payload = 0
    got = bytearray()
    at = begin
    want = _CHUNK
    try:
        while at < end:
            with step("read segment", path):
                buf = fs.pread(fd, min(want, end - at), at)
            n = len(buf)
            i = 0
            while i + RECORD_HEADER_SIZE <= n:
                magic, flags, length, _ = unpack(buf, i)
                if magic != RECORD_MAGIC:
                    raise BadRecord(at + i, "no record header")
                stop = i + RECORD_HEADER_SIZE + length
                if stop > n:
                    break
                if flags in ITEM_FLAGS:
                    items += 1
                    payload += length
                    if keep < 0:
                        got += buf[stop - min(length, -keep):stop]
                        del got[:max(0, len(got) + keep)]
                    elif len(got) < keep:
                        got += buf[i + RECORD_HEADER_SIZE:min(stop, i + RECORD_HEADER_SIZE
                                                             + keep - len(got))]
                        if enough and len(got) >= keep:
                            return items, payload, bytes(got)
                i = stop
            if i:
                at += i
                want = _CHUNK
                continue
            # no whole record in the chunk: one larger than it (read it whole), or cut off
            need = RECORD_HEADER_SIZE + (unpack(buf, 0)[2] if n >= RECORD_HEADER_SIZE else 0)
            if n < RECORD_HEADER_SIZE or at + need > end or need <= n:
                raise BadRecord(at, "not a record boundary")
            want = need
    except BadRecord as exc:
        if strict and exc.reason == "not a record boundary":
            raise InvalidLocationError(f"position {end} of segment {index} is not a record "
                                       "boundary") from None
        if strict and keep:  # the check cannot be verified through damage
            raise CorruptionError(f"segment {index} ({path}): {exc}") from None
    return items, payload, bytes(got)
