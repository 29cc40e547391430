"""``ItemLocation``: where an item lives, as a small immutable value."""

from __future__ import annotations

import struct

from ..errors import InvalidArgumentError

_PACKED = struct.Struct("<IQI")


class ItemLocation(tuple[int, int, int]):
    """The address of an item: segment ``index``, ``position`` of its record, payload ``size``.

    Valid from the moment :meth:`SegmentDB.add` returns (reads are served from RAM until the
    item is flushed) and for as long as the item is not trimmed. An immutable 3-tuple —
    hashable, ordered (by index, then position), unpackable (``index, position, size = loc``)
    — that serialises to 16 bytes with :meth:`to_bytes` so it can be stored elsewhere.
    """

    __slots__ = ()

    def __new__(cls, index: int, position: int, size: int) -> ItemLocation:
        return tuple.__new__(cls, (index, position, size))

    @property
    def index(self) -> int:  # type: ignore[override]
        """The segment number (``data00042.dat`` is 42)."""
        return self[0]

    @property
    def position(self) -> int:
        """The offset of the item's record header in the segment file."""
        return self[1]

    @property
    def size(self) -> int:
        """The item's size in bytes."""
        return self[2]

    def __repr__(self) -> str:
        return f"ItemLocation(index={self[0]}, position={self[1]}, size={self[2]})"

    def __getnewargs__(self) -> tuple[int, int, int]:
        return (self[0], self[1], self[2])

    def to_bytes(self) -> bytes:
        """16 bytes: index u32, position u64, size u32 (little-endian)."""
        return _PACKED.pack(self.index, self.position, self.size)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> ItemLocation:
        """The location serialised by :meth:`to_bytes`."""
        if len(data) != _PACKED.size:
            raise InvalidArgumentError(
                f"a serialised ItemLocation is {_PACKED.size} bytes, not {len(data)}")
        index, position, size = _PACKED.unpack(data)
        return cls(index, position, size)

    def serialize(self) -> bytes:
        """Alias of :meth:`to_bytes` (aiodiskdb's name)."""
        return self.to_bytes()

    @classmethod
    def deserialize(cls, data: bytes | bytearray | memoryview) -> ItemLocation:
        """Alias of :meth:`from_bytes` (aiodiskdb's name)."""
        return cls.from_bytes(data)
