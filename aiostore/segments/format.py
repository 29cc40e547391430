"""The segment file format: a fixed header, then framed records (LevelDB-style).

::

    segment file  data00042.dat
    +--------------------------------------------------------------------+
    | header (32 B): magic "ASEG" | version u16 | flags u16 | index u32   |
    |                db id (16 B, uuid4) | crc32c of the 28 bytes before |
    +--------------------------------------------------------------------+
    | record: magic u16 0x5EA1 | flags u16 | length u32 | crc32c u32     |  12 B header
    |         payload (length bytes)                                     |
    +--------------------------------------------------------------------+
    | record ...                                                         |

All integers little-endian. A record's CRC32C covers its flags, its length and its payload, so a
corrupt length is caught as surely as a corrupt payload. The record magic lets recovery find the
next record after a damaged one (to tell a torn tail from damage in the middle). An item's
location is (segment index, offset of its record header, payload size).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import crc32c as _crc32c

SEGMENT_MAGIC = b"ASEG"
FORMAT_VERSION = 1
SEGMENT_HEADER = struct.Struct("<4sHHI16s")
SEGMENT_HEADER_SIZE = SEGMENT_HEADER.size + 4  # + crc
RECORD_MAGIC = 0x5EA1
RECORD_MAGIC_BYTES = struct.pack("<H", RECORD_MAGIC)
RECORD_HEADER = struct.Struct("<HHII")  # magic, flags, length, crc
RECORD_HEADER_SIZE = RECORD_HEADER.size
_FLAGS_LENGTH = struct.Struct("<HI")
_U32 = struct.Struct("<I")

#: Record flags. 0 is a plain item; a FLUSH marker (no payload) ends every flush, so recovery
#: can tell a torn last flush (damage with no marker after it: truncated) from damage to data
#: that a later, completed flush proves was durable (reported as corruption).
#: A transaction is written contiguously as TX_ITEM records followed by one TX_COMMIT record
#: (payload: item count and position of the first item); recovery drops TX_ITEMs at the tail
#: of the last segment that no TX_COMMIT follows, so a transaction is all or nothing.
FLAG_ITEM = 0
FLAG_FLUSH = 1
FLAG_TX_ITEM = 2
FLAG_TX_COMMIT = 3
ITEM_FLAGS = (FLAG_ITEM, FLAG_TX_ITEM)
FLUSH_MARKER_SIZE = RECORD_HEADER_SIZE
TX_COMMIT = struct.Struct("<II")  # item count, position of the transaction's first record
TX_COMMIT_SIZE = RECORD_HEADER_SIZE + TX_COMMIT.size


def crc32c(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """CRC32C (Castagnoli), hardware accelerated (SSE4.2 / ARMv8) by the ``crc32c`` package."""
    return int(_crc32c.crc32c(data, start))


_PREFIX_CRC: dict[int, int] = {}  # (length << 16 | flags) -> CRC32C of the (flags, length) prefix


def record_crc(flags: int, payload: bytes | bytearray | memoryview) -> int:
    """The checksum stored in a record header (the prefix's CRC is cached per length)."""
    n = len(payload)
    key = n << 16 | flags  # (flags is a u16)
    pre = _PREFIX_CRC.get(key)
    if pre is None:
        if len(_PREFIX_CRC) >= 4096:
            _PREFIX_CRC.clear()
        pre = _PREFIX_CRC[key] = _crc32c.crc32c(_FLAGS_LENGTH.pack(flags, n))
    return int(_crc32c.crc32c(payload, pre))


def frame_records(items: Iterable[bytes], flags: int, out: list[bytes]) -> int:
    """Append each item's 12-byte header and the item to ``out``; return their payload bytes.

    The hot loop of every flush: the CRC of the (flags, length) prefix is computed once per
    distinct length, so an item costs one hardware CRC32C call and one ``struct.pack``."""
    pack = RECORD_HEADER.pack
    crc = _crc32c.crc32c
    prefix = _FLAGS_LENGTH.pack
    cache: dict[int, int] = {}
    append = out.append
    total = 0
    for item in items:
        n = len(item)
        pre = cache.get(n)
        if pre is None:
            pre = cache[n] = crc(prefix(flags, n))
        append(pack(RECORD_MAGIC, flags, n, crc(item, pre)))
        append(item)
        total += n
    return total


def record_header(payload: bytes | bytearray | memoryview, flags: int = FLAG_ITEM) -> bytes:
    """The 12-byte header that precedes ``payload`` on disk."""
    return RECORD_HEADER.pack(RECORD_MAGIC, flags, len(payload), record_crc(flags, payload))


@dataclass(frozen=True)
class SegmentHeader:
    """The parsed header of a segment file."""

    index: int
    db_id: uuid.UUID
    version: int = FORMAT_VERSION

    def to_bytes(self) -> bytes:
        """The 32 header bytes."""
        head = SEGMENT_HEADER.pack(SEGMENT_MAGIC, self.version, 0, self.index, self.db_id.bytes)
        return head + _U32.pack(crc32c(head))

    @classmethod
    def parse(cls, data: bytes) -> SegmentHeader | None:
        """The header in ``data``, or None if it is not a valid aiostore segment header."""
        if len(data) < SEGMENT_HEADER_SIZE:
            return None
        head = data[:SEGMENT_HEADER.size]
        magic, version, _flags, index, raw_id = SEGMENT_HEADER.unpack(head)
        (crc,) = _U32.unpack_from(data, SEGMENT_HEADER.size)
        if magic != SEGMENT_MAGIC or crc != crc32c(head):
            return None
        return cls(index=index, db_id=uuid.UUID(bytes=raw_id), version=version)


def interrupted_header(data: bytes, index: int, db_id: uuid.UUID | None = None) -> bool:
    """Whether ``data`` — a whole segment file shorter than its header, or one whose bytes are
    all zero — is what a crash can leave of creating segment ``index``: the header is written
    by one ``write`` and fsynced before anything else, so such a file holds nothing but a
    prefix of that header (or zeros, where the size reached the disk and the data did not).

    Anything else (other bytes, or more of them; with ``db_id``, another database's id) was
    not written by aiostore's creation of this segment, and must never be removed as if it
    were."""
    if len(data) > SEGMENT_HEADER_SIZE:
        return False
    if not data.strip(b"\0"):
        return True
    if len(data) == SEGMENT_HEADER_SIZE:
        return False  # a whole header that does not verify: not an interrupted creation
    # magic, version, flags and index are known, and the database id when ``db_id`` is given;
    # the checksum is not (it is the last field: a prefix that reaches it is whole but for it)
    known = SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0, index,
                                db_id.bytes if db_id is not None else bytes(16))
    upto = SEGMENT_HEADER.size if db_id is not None else 12
    return data[:upto] == known[:min(len(data), upto)]


@dataclass(frozen=True)
class Record:
    """A record found while scanning a segment."""

    offset: int  # of its header, in the file
    flags: int
    payload: memoryview


class BadRecord(Exception):
    """A record header or checksum does not verify at ``offset``."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"bad record at offset {offset}: {reason}")
        self.offset = offset
        self.reason = reason


def check_record(buf: bytes | memoryview, at: int, file_offset: int) -> Record:
    """Parse and verify the record whose header starts at ``buf[at]``; raise :class:`BadRecord`.

    ``file_offset`` is where ``buf[at]`` lies in the file (for messages and the result).
    """
    if len(buf) - at < RECORD_HEADER_SIZE:
        raise BadRecord(file_offset, "truncated header")
    magic, flags, length, crc = RECORD_HEADER.unpack_from(buf, at)
    if magic != RECORD_MAGIC:
        raise BadRecord(file_offset, "no record header")
    start = at + RECORD_HEADER_SIZE
    if len(buf) - start < length:
        raise BadRecord(file_offset, f"truncated payload ({len(buf) - start} of {length} bytes)")
    payload = memoryview(buf)[start:start + length]
    if record_crc(flags, payload) != crc:
        raise BadRecord(file_offset, "checksum mismatch")
    return Record(file_offset, flags, payload)


def iter_records(buf: bytes, base: int) -> Iterator[Record]:
    """Every valid record of ``buf`` (which starts at file offset ``base``) up to the first bad
    one, which is raised as :class:`BadRecord` — unless it is merely cut off by the end of
    ``buf`` (then iteration just stops: the caller reads more)."""
    at = 0
    while at < len(buf):
        try:
            rec = check_record(buf, at, base + at)
        except BadRecord as exc:
            if exc.reason.startswith("truncated"):
                return
            raise
        yield rec
        at += RECORD_HEADER_SIZE + len(rec.payload)


def find_next_record(buf: bytes, start: int, base: int) -> int | None:
    """Offset (in ``buf``) of the first valid record at or after ``start``, or None."""
    at = start
    while True:
        at = buf.find(RECORD_MAGIC_BYTES, at)
        if at < 0:
            return None
        try:
            check_record(buf, at, base + at)
            return at
        except BadRecord:
            at += 1
