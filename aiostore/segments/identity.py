"""Proving that a segment file is this database's own before anything reads or changes it.

A file named like a segment (``data00042.dat``) may have been put there by someone else: an
aiodiskdb folder, a copy from another database, a user's file. Every step that trusts a segment
— recovery, a trim, the first read through a new descriptor — checks its header here: aiostore's
magic and checksum, the index its name says, and the database id of the others. Blocking; runs
inside the caller's worker hop.
"""

from __future__ import annotations

import uuid

from .._io.base import FileSystem
from .._io.ops import step
from ..errors import CorruptionError
from .format import FORMAT_VERSION, SEGMENT_HEADER_SIZE, SegmentHeader

__all__ = ["check_header", "read_header"]


def read_header(fs: FileSystem, fd: int, path: str) -> bytes:
    """The first bytes of the segment open at ``fd`` (up to a header's worth)."""
    with step("read segment header", path):
        return fs.pread(fd, SEGMENT_HEADER_SIZE, 0)


def check_header(head: bytes, path: str, index: int, db_id: uuid.UUID | None) -> SegmentHeader:
    """The parsed header of segment ``index`` at ``path``, or :class:`CorruptionError` naming
    the file when it is not an aiostore segment, has another index, or (``db_id`` given)
    belongs to another database."""
    header = SegmentHeader.parse(head)
    if header is None:
        raise CorruptionError(f"{path} is not an aiostore segment (no valid segment header); "
                              "it was left as it is")
    if header.version != FORMAT_VERSION:
        raise CorruptionError(f"{path} has format version {header.version}; this aiostore "
                              f"reads version {FORMAT_VERSION}")
    if header.index != index:
        raise CorruptionError(f"{path} says it is segment {header.index}, not {index}")
    if db_id is not None and header.db_id != db_id:
        raise CorruptionError(f"{path} belongs to another database ({header.db_id}, not "
                              f"{db_id}); it was left as it is")
    return header
