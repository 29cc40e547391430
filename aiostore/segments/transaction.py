"""``Transaction``: items added together, all or nothing, invisible until committed."""

from __future__ import annotations

import warnings
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._io.base import Buffer
from ..errors import InvalidArgumentError, InvalidTypeError, TransactionClosedError
from .format import FLUSH_MARKER_SIZE, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, TX_COMMIT_SIZE
from .location import ItemLocation

if TYPE_CHECKING:
    from .db import SegmentDB, _TxBlock

__all__ = ["Transaction"]


class Transaction:
    """A group of items written all or nothing; get one from :meth:`SegmentDB.transaction`.

    ::

        async with db.transaction() as tx:      # commits on a clean exit
            tx.add(b"cafe")
            tx.add(b"babe")
        locations = tx.locations

        tx = await db.transaction()             # aiodiskdb style
        tx.add(b"deadbeef")
        locations = await tx.commit()           # durable when it returns

    Items are held in memory until :meth:`commit`, which places them contiguously in one
    segment followed by a commit record, in one flush, and returns once that flush is
    fsynced. Until then they are invisible to ``read``, ``read_many`` and ``scan``; after a
    crash at any point, recovery keeps all of them or none. Adds from other tasks are never
    held up by a transaction: they are ordered before or after it.
    """

    def __init__(self, db: SegmentDB) -> None:
        self._db = db
        self._items: list[bytes] = []
        self._bytes = 0  # framed size of the items
        self._limit = db.max_file_size - SEGMENT_HEADER_SIZE - TX_COMMIT_SIZE - FLUSH_MARKER_SIZE
        self._state = "open"
        self._block: _TxBlock | None = None  # set by the commit once the items are placed

    @property
    def locations(self) -> list[ItemLocation]:
        """The items' locations, in add order, once :meth:`commit` placed them (else ``[]``)."""
        return [] if self._block is None else list(self._block.compute_locations())

    @property
    def state(self) -> str:
        """``"open"``, ``"committing"``, ``"committed"`` or ``"discarded"``."""
        return self._state

    def __len__(self) -> int:
        return len(self._items)

    def add(self, data: Buffer) -> None:
        """Add an item (bytes-like; copied). Nothing is written before :meth:`commit`.

        Raises :class:`~aiostore.errors.InvalidTypeError` for data that is not bytes-like,
        :class:`~aiostore.errors.InvalidArgumentError` when the transaction would no longer
        fit in one segment (the item is not added; the transaction stays usable), and
        :class:`~aiostore.errors.TransactionClosedError` once committed or discarded.
        """
        if self._state != "open":
            self._check_open()
        if type(data) is bytes:
            item = data
        elif isinstance(data, (bytes, bytearray, memoryview)):
            item = bytes(data)
        else:
            raise InvalidTypeError(f"items must be bytes-like, not {type(data).__name__}")
        need = self._bytes + RECORD_HEADER_SIZE + len(item)
        if need > self._limit:
            raise InvalidArgumentError(
                f"a transaction must fit in one segment: with this item of {len(item)} bytes "
                f"it would need {need} of the {self._limit} bytes a segment of max_file_size="
                f"{self._db.max_file_size} has for it")
        self._items.append(item)
        self._bytes = need

    async def commit(self) -> list[ItemLocation]:
        """Write every item, all or nothing; return their locations once durable (fsynced).

        An empty transaction writes nothing and returns ``[]``. Adds by other tasks are not
        blocked; an ``rtrim``/``ltrim``/``drop_index`` in progress is waited for.

        Errors: :class:`~aiostore.errors.TransactionClosedError` if already committed or
        discarded; :class:`~aiostore.errors.DatabaseClosedError`,
        :class:`~aiostore.errors.DatabaseFailedError` (nothing was acknowledged: after a
        failed flush recovery keeps the transaction whole or drops it whole).

        Cancellation: before the items are placed (while a trim is waited for) nothing is
        written and the transaction stays open; once placed, the commit completes durably in
        the background and :attr:`locations` holds the locations.
        """
        self._check_open()
        self._state = "committing"
        try:
            await self._db._commit(self)  # sets self._block once the items are placed
        except BaseException:
            if self._block is None:  # nothing placed: still open
                self._state = "open"
            raise
        self._items = []
        self._state = "committed"
        return self.locations

    def discard(self) -> None:
        """Drop the items; nothing is written. Calling it again, or after commit, is a no-op."""
        if self._state == "open":
            self._items = []
            self._state = "discarded"

    rollback = discard

    def _check_open(self) -> None:
        if self._state != "open":
            raise TransactionClosedError(f"the transaction is {self._state}; start a new one")

    def __await__(self) -> Generator[Any, None, Transaction]:
        # ``tx = await db.transaction()``: a transaction needs no I/O to begin
        self._db._check_writable()
        return self
        yield  # pragma: no cover - makes this a generator

    async def __aenter__(self) -> Transaction:
        self._db._check_writable()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Commit on a clean exit; on an exception or cancellation in the block, discard."""
        if exc_type is None and self._state == "open":
            await self.commit()
        else:
            self.discard()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "open" and getattr(self, "_items", None):
            warnings.warn(f"a transaction with {len(self._items)} items was neither committed "
                          "nor discarded; its items were not written", ResourceWarning,
                          stacklevel=1)
