"""``SegmentDB``: the append-only segment database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
import warnings
import weakref
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from itertools import accumulate, repeat
from time import perf_counter
from types import FrameType, TracebackType
from typing import Any, ClassVar, TypeVar, cast

from .._io.base import Buffer, FileSystem, current_fs
from .._io.offload import run_commit, run_sync
from .._io.ops import step
from ..errors import (
    CorruptionError,
    DatabaseClosedError,
    DatabaseFailedError,
    InvalidArgumentError,
    InvalidLocationError,
    InvalidTypeError,
    NotFoundError,
    OverwriteDisabledError,
    storage_error,
)
from . import trim
from .events import DBEvent, Events
from .format import (
    FLAG_FLUSH,
    FLAG_ITEM,
    FLAG_TX_COMMIT,
    FLAG_TX_ITEM,
    FLUSH_MARKER_SIZE,
    ITEM_FLAGS,
    RECORD_HEADER,
    RECORD_HEADER_SIZE,
    RECORD_MAGIC,
    SEGMENT_HEADER_SIZE,
    TX_COMMIT,
    TX_COMMIT_SIZE,
    BadRecord,
    SegmentHeader,
    frame_records,
    iter_records,
    record_crc,
    record_header,
)
from .identity import check_header, read_header
from .location import ItemLocation
from .recovery import OpenState, create_segment, open_directory, segment_name
from .transaction import Transaction
from .trim_check import Removed, check_trim

__all__ = ["DBStats", "SegmentDB", "TrimResult"]

T = TypeVar("T")

_MiB = 1 << 20
_READ_FDS = 128  # cached read descriptors (LRU)
_SCAN_CHUNK = 4 * _MiB
#: seconds of page-cache reads served inline per event-loop iteration, all readers together;
#: then a reader yields (see _LoopBudget)
_READ_BUDGET = 0.001
#: buffered adds between two yields to the loop for a producer that awaits nothing else
_ADD_YIELD_EVERY = 256
_MARKER = record_header(b"", FLAG_FLUSH)

_Key = tuple[int, int]  # (index, position)
_new_location = tuple.__new__  # ItemLocation(i, p, s) without its Python-level __new__


class _TxBlock:
    """A committing transaction in the buffer: one entry, keyed by its first item's position.

    Placing it is O(1) on the loop, and until its flush completes its items are invisible:
    ``_from_ram`` finds no ``bytes`` for them. The flush's worker hop frames the items and
    computes their locations."""

    __slots__ = ("first", "items", "locations", "payload")

    def __init__(self, first: _Key, items: list[bytes], payload: int) -> None:
        self.first = first
        self.items = items
        self.payload = payload  # payload bytes
        self.locations: list[ItemLocation] | None = None

    def compute_locations(self) -> list[ItemLocation]:
        """The items' locations (computed once, by whoever asks first)."""
        if self.locations is None:
            index, first = self.first
            sizes = [len(item) for item in self.items]
            positions = accumulate((RECORD_HEADER_SIZE + n for n in sizes[:-1]), initial=first)
            # ItemLocation(...) without its Python-level __new__: a tenth of the cost
            self.locations = list(map(tuple.__new__, repeat(ItemLocation),
                                      zip(repeat(index), positions, sizes)))
        return self.locations


_Entry = bytes | _TxBlock  # a buffered item, or a whole transaction


class TrimResult(int):
    """What :meth:`SegmentDB.rtrim`, :meth:`~SegmentDB.ltrim` and
    :meth:`~SegmentDB.drop_index` removed.

    Its value, as an ``int``, is the bytes freed on disk — payloads and framing (record
    headers, flush markers, transaction commit records) — as these methods always returned.
    With ``count=True``, :attr:`payload_bytes` is the sum of the removed items' sizes (what
    aiodiskdb's trims return) and :attr:`items` their number; otherwise both are None."""

    items: int | None
    payload_bytes: int | None

    def __new__(cls, freed: int, items: int | None = None, payload_bytes: int | None = None
                ) -> TrimResult:
        """``freed`` bytes on disk, ``items`` items of ``payload_bytes`` bytes in all."""
        self = super().__new__(cls, freed)
        self.items = items
        self.payload_bytes = payload_bytes
        return self

    def __repr__(self) -> str:
        return (f"TrimResult({int(self)}, items={self.items}, "
                f"payload_bytes={self.payload_bytes})")


@dataclass(frozen=True)
class DBStats:
    """Space accounting of a :class:`SegmentDB` (from :meth:`SegmentDB.stats`)."""

    #: segment files in the database (dropped ones excluded)
    segments: int
    #: the index of the segment receiving adds
    current_index: int
    #: bytes of segment files that hold data (headers and framing included; trimmed ranges,
    #: dropped segments and punched holes excluded)
    live_bytes: int
    #: bytes removed by ``rtrim``, ``ltrim`` and ``drop_index`` over the database's life
    trimmed_bytes: int
    #: items added but not yet flushed to disk, and their payload bytes
    items_buffered: int
    bytes_buffered: int
    #: segments removed by ``drop_index``
    dropped_segments: int


class _Writer:
    """The appending side; only touched inside flush hops (one at a time)."""

    def __init__(self, fs: FileSystem, path: str, prefix: str, padding: int, state: OpenState):
        self.fs = fs
        self.path = path
        self.prefix = prefix
        self.padding = padding
        self.db_id = state.db_id
        self.index = state.last
        self.fd = state.write_fd

    def write(self, groups: list[tuple[int, int, list[Buffer]]]) -> None:
        """Append each (index, position, buffers) group; seal/create segments; fdatasync once.

        Blocking. On return everything is durable: older segments were fsynced when sealed,
        the last one is fdatasynced, and a new segment's name was made durable at creation.
        """
        fs = self.fs
        for index, position, buffers in groups:
            if index != self.index:
                self._roll(index)
            assert self.fd is not None
            name = os.path.join(self.path, segment_name(self.prefix, self.padding, index))
            with step("write", name):
                fs.pwritev(self.fd, buffers, position)
        assert self.fd is not None
        name = os.path.join(self.path, segment_name(self.prefix, self.padding, self.index))
        with step("fdatasync", name, durability=True):
            fs.fdatasync(self.fd)
        self._check_still_there(name)

    def _check_still_there(self, name: str) -> None:
        """Raise unless the file open for appending is still the one at its path.

        Bytes written into a file that was removed or replaced meanwhile are durable in an
        inode nobody can reach: the flush must not report them as stored. (One ``fstat`` and
        one ``stat`` per flush, not per item.)"""
        fs = self.fs
        assert self.fd is not None
        with step("fstat segment", name):
            mine = fs.fstat(self.fd)
        try:
            with step("stat segment", name):
                there = fs.stat(name)
            moved = (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino)
        except NotFoundError:
            moved = True
        if moved or mine.st_nlink == 0:
            raise CorruptionError(
                f"{name} was removed or replaced while the database had it open: the items "
                "just written went into a file that is no longer at that path, so they are "
                "not stored. Reopen the database to recover from what is on disk")

    def _roll(self, index: int) -> None:
        assert index > self.index
        if self.fd is not None:  # (None: the segment was dropped by drop_index)
            old = os.path.join(self.path, segment_name(self.prefix, self.padding, self.index))
            with step("seal segment (fsync)", old, durability=True):
                self.fs.fsync(self.fd)
            self._check_still_there(old)
            fd, self.fd = self.fd, None
            self.fs.close(fd)
        self.fd = create_segment(self.fs, self.path,
                                 segment_name(self.prefix, self.padding, index),
                                 SegmentHeader(index=index, db_id=self.db_id))
        self.index = index

    def reopen(self) -> None:
        """Open the current segment again (after it was replaced by a rewrite)."""
        self.close()
        name = os.path.join(self.path, segment_name(self.prefix, self.padding, self.index))
        with step("open segment", name):
            self.fd = self.fs.open(name, os.O_RDWR)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            self.fs.close(fd)


class _LoopBudget:
    """How long the event loop has been busy with inline reads in its current iteration.

    A read served from the page cache never suspends, so busy readers must yield now and
    then. Counting reads per task does not bound the stall (32 readers each doing N reads per
    turn stall the loop 32 times longer than one), and yielding often costs a loop iteration
    each time. Instead the first check in an iteration starts a window and schedules a
    callback that closes it at the next iteration; readers yield once the window is older
    than ``_READ_BUDGET``. One instance per event loop, shared by every database on it.
    """

    __slots__ = ("_close", "loop", "open", "start")
    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBudget]] = \
        weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.open = False
        self.start = 0.0
        self._close = self.close

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _LoopBudget:
        """The budget of ``loop``."""
        budget = cls._by_loop.get(loop)
        if budget is None:
            budget = cls._by_loop[loop] = cls(loop)
        return budget

    def close(self) -> None:
        self.open = False

    def spent(self) -> bool:
        """Whether this iteration's reading budget is used up (then yield)."""
        now = perf_counter()
        if not self.open:
            self.open = True
            self.start = now
            self.loop.call_soon(self._close)
            return False
        return now - self.start > _READ_BUDGET


class SegmentDB:
    """An append-only database of byte items in numbered segment files, for asyncio services.

    ::

        async with aiostore.SegmentDB("/var/lib/app/log") as db:
            loc = await db.add(b"event")               # buffered: returns at once
            loc = await db.add(b"event", durable=True)  # returns once fsynced (group commit)
            assert await db.read(loc) == b"event"

    Items are appended to ``{file_prefix}{index:0{file_padding}d}.dat`` files of at most
    ``max_file_size`` bytes, each record framed with its length and a CRC32C (see
    ``docs/segmentdb.md``). :meth:`add` returns an :class:`ItemLocation` at once; the item is
    readable immediately (from RAM) and reaches the disk with the next flush, which happens when
    ``max_buffer_items`` items or ``max_buffer_size`` bytes are buffered, every
    ``flush_interval`` seconds, on :meth:`flush`, on ``add(..., durable=True)`` and on
    :meth:`stop`. A flush is one worker hop: every buffered record in one ``pwritev``, then one
    ``fdatasync`` — shared by every durable add and flush waiting for it (group commit).

    One writer per directory (a kernel lock on ``LOCK``; a second opener gets
    :class:`~aiostore.errors.DatabaseLockedError`); any number of ``read_only=True`` readers
    beside it. Opening recovers the last segment only: a torn tail (an incomplete last flush)
    is truncated and reported; damage in the middle is reported and raised on read.

    The object is an async context manager (start/stop) and awaitable
    (``db = await SegmentDB(path)`` starts it). Asyncio (and uvloop) only.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_file_size: int = 128 * _MiB,
                 max_buffer_size: int = 16 * _MiB, max_buffer_items: int = 1000,
                 flush_interval: float = 1.0, file_prefix: str = "data", file_padding: int = 5,
                 create_if_not_exists: bool = True, read_only: bool = False) -> None:
        try:
            self.path = os.path.abspath(os.fspath(path))
        except TypeError:
            raise InvalidTypeError(f"path must be str or os.PathLike, not "
                                   f"{type(path).__name__}") from None
        _positive_int("max_file_size", max_file_size,
                      minimum=SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE + FLUSH_MARKER_SIZE + 1)
        if max_file_size > 2**32:
            raise InvalidArgumentError("max_file_size must be at most 4 GiB")
        _positive_int("max_buffer_size", max_buffer_size)
        _positive_int("max_buffer_items", max_buffer_items)
        _positive_int("file_padding", file_padding)
        if isinstance(flush_interval, bool) or not isinstance(flush_interval, (int, float)) \
                or not flush_interval > 0:
            raise InvalidArgumentError(f"flush_interval must be a positive number of seconds, "
                                       f"not {flush_interval!r}")
        if not isinstance(file_prefix, str) or not file_prefix or os.sep in file_prefix:
            raise InvalidArgumentError(f"file_prefix must be a non-empty file name prefix, not "
                                       f"{file_prefix!r}")
        self.max_file_size = max_file_size
        self.max_buffer_size = max_buffer_size
        self.max_buffer_items = max_buffer_items
        self.flush_interval = float(flush_interval)
        self.file_prefix = file_prefix
        self.file_padding = file_padding
        self.create_if_not_exists = create_if_not_exists
        self.read_only = read_only
        #: the event hooks: ``db.events.on_write = callback`` (see :class:`Events`)
        self.events = Events()
        self._fs = current_fs()
        self._state = "new"
        self._failed: BaseException | None = None
        self._lost = 0  # items dropped by a failed flush (reported at stop)
        self._budget: _LoopBudget | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._flush_wanted = False
        self._stop_task: asyncio.Task[None] | None = None
        self._lock_fd: int | None = None
        self._writer: _Writer | None = None
        self._read_fds: OrderedDict[int, int] = OrderedDict()
        # Read descriptors are closed only when no worker can still be using them: a number
        # closed under a running pread is reused by the next open, and the pread then reads
        # another file. Evicted ones wait in _closing until no read hop runs; _fd_epoch
        # changes whenever cached descriptors are invalidated (a trim replaced or removed a
        # file, stop), so a descriptor opened across that change is not cached.
        self._closing: list[int] = []
        self._reads_in_flight = 0
        self._reads_idle: asyncio.Future[None] | None = None
        self._fd_epoch = 0
        self._db_id: uuid.UUID | None = None
        self._indices: set[int] = set()
        self._overwrite = False
        self._trims = trim.TrimState()
        self._trim_lock = asyncio.Lock()
        self._gate: asyncio.Future[None] | None = None  # set while a trim runs: writers wait
        self._reset_counters(0, SEGMENT_HEADER_SIZE)

    def _reset_counters(self, index: int, end: int) -> None:
        self._index = index  # segment receiving new adds
        self._end = end  # where the next record goes in it (flushed + buffered)
        self._flushed_ends: dict[int, int] = {index: end}  # durable end of recent segments
        self._pending: dict[_Key, _Entry] = {}
        self._pending_bytes = 0
        self._inflight: dict[_Key, _Entry] = {}
        self._seq = 0  # items added
        self._flushed_seq = 0  # items durable
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the database accepts calls (started and not stopped)."""
        return self._state == "running"

    async def start(self) -> None:
        """Open the directory (creating it if allowed), recover, and start the flusher.

        Raises :class:`~aiostore.errors.DatabaseLockedError` if another writer holds it,
        :class:`~aiostore.errors.CorruptionError` for a foreign or broken segment header,
        :class:`~aiostore.errors.NotFoundError` when it does not exist and may not be created.
        Cancellation: the opening hop completes, then the database is closed again.
        """
        if self._state in ("running", "stopping"):
            raise InvalidArgumentError("the SegmentDB is already running")
        self._loop = asyncio.get_running_loop()
        self._budget = _LoopBudget.of(self._loop)
        fs = self._fs
        opened: list[OpenState] = []

        def open_it() -> OpenState:
            state = open_directory(fs, self.path, prefix=self.file_prefix,
                                   padding=self.file_padding, create=self.create_if_not_exists,
                                   read_only=self.read_only)
            opened.append(state)
            return state

        try:
            state = await run_commit(open_it)
        except asyncio.CancelledError:
            if opened:  # opened after all: close it again, then let the cancellation through
                await _uncancellable(run_commit(_close_state, fs, opened[0]))
            raise
        self._lock_fd = state.lock_fd
        self._db_id = state.db_id
        self._indices = set(state.indices)
        self._trims = state.trims
        self._reset_counters(state.last, state.end)
        self._failed = None
        if not self.read_only:
            self._writer = _Writer(fs, self.path, self.file_prefix, self.file_padding, state)
            self._flusher = asyncio.create_task(self._interval_loop(),
                                                name=f"flush timer {self.path}")
        self._state = "running"
        for line in state.dropped:
            self.events.fire(DBEvent("failure", f"recovery: {line}"))
        for d in state.damage:
            self.events.fire(DBEvent("failure", f"corruption in segment {d.index}, bytes "
                                     f"{d.start}..{d.end}: {d.reason}; the items there are "
                                     "unreadable, the rest is kept", index=d.index))
        self.events.fire(DBEvent("start", f"started {self.path} at segment {self._index}, "
                                 f"offset {self._end}"))

    async def stop(self) -> None:
        """Flush everything buffered, make it durable, close files and release the lock.

        Adds made before ``stop()`` was called are all flushed; adds after it raise
        :class:`~aiostore.errors.DatabaseClosedError`. A stopped database can be started again.
        If a flush failed (now or earlier), the database is still closed and then
        :class:`~aiostore.errors.DatabaseFailedError` says how many items were never written.
        Cancellation: the stop runs to completion first (it is shielded).
        """
        if self._state == "running":
            self._state = "stopping"
            self._stop_task = asyncio.ensure_future(self._stop())
        if self._state == "stopping" and self._stop_task is not None:
            await _uncancellable(self._stop_task)

    async def _stop(self) -> None:
        try:
            async with self._trim_lock:  # a trim in progress finishes first
                pass
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(BaseException):
                    await self._flusher
            if self._writer is not None:
                await self._drain()
            if self._failed is not None:
                self._lost += _count(self._pending.values())
                self._pending = {}
            elif self._flushed_seq and self._writer is not None:
                await self._seal_last_flush()
        finally:
            _unregister_signals(self)
            self._fd_epoch += 1
            await self._reads_done()  # (read hops are short: they are never abandoned)
            fds = list(self._read_fds.values()) + self._closing
            self._read_fds.clear()
            self._closing = []
            writer, self._writer = self._writer, None
            lock_fd, self._lock_fd = self._lock_fd, None

            def close_all() -> None:  # best effort: a failing close must not wedge stop()
                for fd in fds:
                    with contextlib.suppress(Exception):
                        self._fs.close(fd)
                if writer is not None:
                    with contextlib.suppress(Exception):
                        writer.close()
                if lock_fd is not None:
                    with contextlib.suppress(Exception):
                        self._fs.close(lock_fd)

            await run_commit(close_all)
            self._fail_waiters(DatabaseClosedError("the SegmentDB was stopped"))
            self._state = "stopped"
            lost, self._lost = self._lost, 0
            failed = self._failed
            detail = (f"; {lost} items were never written (a flush failed)" if lost else "")
            self.events.fire(DBEvent("stop", f"stopped {self.path}{detail}"))
        if lost:
            raise DatabaseFailedError(f"stopped, but {lost} items were never written: {failed}"
                                      ) from failed

    async def __aenter__(self) -> SegmentDB:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def __await__(self) -> Generator[Any, None, SegmentDB]:
        async def _started() -> SegmentDB:
            await self.start()
            return self
        return _started().__await__()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "running":
            warnings.warn(f"SegmentDB {self.path!r} was never stopped; buffered items may be "
                          "lost", ResourceWarning, stacklevel=1)

    def _check_running(self) -> None:
        if self._state != "running":
            raise DatabaseClosedError(f"the SegmentDB at {self.path} is not running "
                                      f"({self._state}); call start() first")

    def _check_writable(self) -> None:
        self._check_running()
        if self.read_only:
            raise InvalidArgumentError("the SegmentDB was opened with read_only=True")
        if self._failed is not None:
            raise DatabaseFailedError(f"an earlier write failed ({self._failed}); reopen the "
                                      "SegmentDB to recover") from self._failed

    # --- writing -----------------------------------------------------------------------------
    async def add(self, data: Buffer, *, durable: bool = False) -> ItemLocation:
        """Append one item; returns its location at once (readable immediately).

        With ``durable=True`` it returns once the item is fsynced; concurrent durable adds
        share one flush and one fdatasync (group commit). When more than ``max_buffer_size``
        bytes wait for a flush, ``add`` waits for the flush in progress (back-pressure).

        Errors: :class:`~aiostore.errors.InvalidTypeError` for data that is not bytes-like,
        :class:`~aiostore.errors.InvalidArgumentError` for an item larger than a segment,
        :class:`~aiostore.errors.DatabaseClosedError`, and
        :class:`~aiostore.errors.DatabaseFailedError` after a failed write — nothing is added.

        Cancellation: the item is added as soon as ``add`` is called (it returns its location
        without waiting unless ``durable`` or under back-pressure); cancelling a durable add
        stops the wait, not the write.
        """
        if self._state != "running" or self._failed is not None or self.read_only:
            self._check_writable()
        if type(data) is bytes:
            item = data
        elif isinstance(data, (bytes, bytearray, memoryview)):
            item = bytes(data)  # the caller may reuse its buffer
        else:
            raise InvalidTypeError(f"items must be bytes-like, not {type(data).__name__}")
        if self._gate is not None:
            await self._pass_gate()
        size = len(item)
        need = RECORD_HEADER_SIZE + size
        end = self._end
        if end + need + FLUSH_MARKER_SIZE > self.max_file_size:
            if need + FLUSH_MARKER_SIZE + SEGMENT_HEADER_SIZE > self.max_file_size:
                raise InvalidArgumentError(
                    f"an item of {size} bytes does not fit in a segment of max_file_size="
                    f"{self.max_file_size} bytes")
            self._index += 1
            end = SEGMENT_HEADER_SIZE
            self._flushed_ends[self._index] = end
        index = self._index
        self._end = end + need
        self._pending[(index, end)] = item
        self._pending_bytes += need
        self._seq += 1
        if self._pending_bytes >= self.max_buffer_size or \
                len(self._pending) >= self.max_buffer_items:
            task = self._flush_task
            if task is None or task.done():
                self._kick()  # (a running flush chains into the next one by itself)
            elif self._pending_bytes >= self.max_buffer_size:
                # back-pressure: at most one buffer in flight and one filling
                await asyncio.shield(task)
        if self._seq % _ADD_YIELD_EVERY == 0 and not durable:
            # a producer that never awaits anything else still lets the loop (and the flush
            # it kicked off) run every _ADD_YIELD_EVERY adds
            await asyncio.sleep(0)
        if durable:
            await self._flush_upto(self._seq)
        return _new_location(ItemLocation, (index, end, size))

    async def flush(self) -> None:
        """Return once everything added so far is written and fsynced (joins a running flush).

        Cancellation: stops the wait; the flush itself completes.
        """
        self._check_writable()
        if self._seq > self._flushed_seq:
            await self._flush_upto(self._seq)

    async def _flush_upto(self, seq: int) -> None:
        self._kick(force=True)
        await self._wait_seq(seq)

    def _flushing(self) -> bool:
        return self._flush_task is not None and not self._flush_task.done()

    def _kick(self, *, force: bool = False) -> None:
        """Start a flush now unless one runs (it will chain into the next one)."""
        if force:
            self._flush_wanted = True
        if not self._flushing() and self._pending and self._failed is None:
            assert self._loop is not None
            self._flush_task = self._loop.create_task(self._flush_chain())

    async def _flush_chain(self) -> None:
        """Flush, and flush again while more is due: thresholds reached, someone waiting for
        durability, or stopping. Otherwise the interval timer picks the rest up later."""
        while self._pending and self._failed is None:
            self._flush_wanted = False
            await self._flush_once()
            due = (self._flush_wanted or self._waiters or self._state != "running"
                   or self._pending_bytes >= self.max_buffer_size
                   or len(self._pending) >= self.max_buffer_items)
            if not due:
                return

    async def _wait_seq(self, seq: int) -> None:
        if self._flushed_seq >= seq:
            return
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((seq, fut))
        await fut

    def _release_waiters(self) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= self._flushed_seq:
            _, fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _fail_waiters(self, exc: BaseException) -> None:
        while self._waiters:
            _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)

    async def _interval_loop(self) -> None:
        """Flush whatever is buffered every ``flush_interval`` seconds."""
        while self._state == "running" and self._failed is None:
            await asyncio.sleep(self.flush_interval)
            self._kick(force=True)

    async def _drain(self) -> None:
        """Flush until nothing is buffered (or a flush failed)."""
        while True:
            self._kick(force=True)
            task = self._flush_task
            if task is None or task.done():
                if not self._pending or self._failed is not None:
                    return
                continue
            with contextlib.suppress(BaseException):
                await task

    async def _flush_once(self) -> None:
        batch = self._pending
        self._inflight = batch
        self._pending = {}
        self._pending_bytes = 0
        upto = self._seq
        if batch:  # the flush marker after the last record of the current segment
            last_index = next(reversed(batch))[0]
            if last_index == self._index:
                self._end += FLUSH_MARKER_SIZE
        assert self._writer is not None
        writer = self._writer

        def frame_and_write() -> tuple[list[tuple[int, int]], int, int, ItemLocation,
                                       ItemLocation]:
            # framing (CRC32C per record) runs here, not on the loop: a big batch would
            # otherwise stall the loop for milliseconds
            groups, count, size = self._frame(batch)
            writer.write(groups)
            return ([(index, position + sum(len(b) for b in buffers))
                     for index, position, buffers in groups], count, size,
                    _location(first_key, batch[first_key], first=True),
                    _location(last_key, batch[last_key], first=False))

        first_key = next(iter(batch))
        last_key = next(reversed(batch))
        try:
            ends, count, size, first, last = await run_commit(frame_and_write)
        except BaseException as exc:
            self._inflight = {}
            lost = _count(batch.values())
            self._lost += lost
            self._failed = exc
            err = DatabaseFailedError(f"flushing {lost} items failed: {exc}; the "
                                      "SegmentDB refuses writes until it is reopened")
            err.__cause__ = exc
            self._fail_waiters(err)
            self.events.fire(DBEvent("failure", str(err), error=exc))
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
            return
        self._flushed_seq = upto
        for index, end in ends:
            self._flushed_ends[index] = end
            self._indices.add(index)
        for index in [i for i in self._flushed_ends if i < self._index - 1]:
            del self._flushed_ends[index]
        self._inflight = {}
        self._release_waiters()
        self.events.fire(DBEvent(
            "write", f"persisted {count} items: segment {first.index} offset {first.position} "
            f"to segment {last.index} offset {last.position}",
            first=first, last=last, count=count, size=size))

    async def _seal_last_flush(self) -> None:
        """A clean stop appends one more flush marker: it proves the last flush complete, so
        recovery treats damage there as corruption, not as a torn tail."""
        assert self._writer is not None
        try:
            await run_commit(self._writer.write, [(self._index, self._end, [_MARKER])])
        except OSError as exc:
            self.events.fire(DBEvent("failure", f"writing the stop marker failed: {exc}",
                                     error=exc))
            return
        self._end += FLUSH_MARKER_SIZE
        self._flushed_ends[self._index] = self._end

    @staticmethod
    def _frame(batch: dict[_Key, _Entry]) -> tuple[list[tuple[int, int, list[Buffer]]], int, int]:
        """Group the batch per segment into (index, first position, [hdr, payload, ...]); a
        transaction's items are framed as TX_ITEMs followed by its commit record. Also returns
        the number of items and their payload bytes.

        Runs in the flush's worker hop (the batch is no longer touched by the loop).
        """
        groups: list[tuple[int, int, list[Buffer]]] = []
        current = -1
        buffers: list[bytes] = []
        run: list[bytes] = []  # consecutive plain items, framed together
        count = size = 0
        for key, data in batch.items():
            index = key[0]
            if run and (index != current or type(data) is not bytes):
                size += frame_records(run, FLAG_ITEM, buffers)
                count += len(run)
                run = []
            if index != current:
                if buffers:
                    buffers.append(_MARKER)
                buffers = []
                groups.append((index, key[1], cast(list[Buffer], buffers)))
                current = index
            if type(data) is bytes:
                run.append(data)
                continue
            assert isinstance(data, _TxBlock)
            frame_records(data.items, FLAG_TX_ITEM, buffers)
            commit = TX_COMMIT.pack(len(data.items), key[1])
            buffers.append(record_header(commit, FLAG_TX_COMMIT))
            buffers.append(commit)
            data.compute_locations()
            count += len(data.items)
            size += data.payload
        if run:
            size += frame_records(run, FLAG_ITEM, buffers)
            count += len(run)
        if buffers:
            buffers.append(_MARKER)
        return groups, count, size

    # --- transactions ------------------------------------------------------------------------
    def transaction(self) -> Transaction:
        """A new :class:`~aiostore.Transaction`: ``async with db.transaction() as tx:`` commits
        on a clean exit and discards on an exception or cancellation; ``tx = await
        db.transaction()`` then ``await tx.commit()`` is aiodiskdb's style. Nothing is written
        until the commit."""
        self._check_writable()
        return Transaction(self)

    async def _commit(self, tx: Transaction) -> None:
        """Place ``tx``'s items contiguously in the buffer (one synchronous step: no other add
        lands between them), then wait until the flush that writes them is durable."""
        self._check_writable()
        if self._gate is not None:
            await self._pass_gate()
        items = tx._items
        if not items:
            return
        need = tx._bytes + TX_COMMIT_SIZE
        end = self._end
        if end + need + FLUSH_MARKER_SIZE > self.max_file_size:
            self._index += 1
            end = SEGMENT_HEADER_SIZE
            self._flushed_ends[self._index] = end
        key = (self._index, end)
        block = _TxBlock(key, items, tx._bytes - RECORD_HEADER_SIZE * len(items))
        self._pending[key] = block  # one entry: O(1) on the loop however many items
        self._end = end + need
        self._pending_bytes += need
        self._seq += len(items)
        tx._block = block
        await self._flush_upto(self._seq)

    # --- pruning -----------------------------------------------------------------------------
    def enable_overwrite(self) -> None:
        """Allow :meth:`rtrim`, :meth:`ltrim` and :meth:`drop_index` (off by default)."""
        self._overwrite = True

    def disable_overwrite(self) -> None:
        """Refuse :meth:`rtrim`, :meth:`ltrim` and :meth:`drop_index` again (the default)."""
        self._overwrite = False

    async def rtrim(self, index: int, position: int, safety_check: Buffer = b"", *,
                    count: bool = False) -> TrimResult:
        """Remove the item at ``position`` of segment ``index`` and everything after it in that
        segment; return a :class:`TrimResult`: the bytes freed on disk (an ``int``); with
        ``count=True`` also the number of items removed and their payload bytes (it then reads
        the whole range removed: time in proportion to its size).

        ``position`` must be an item's position (``loc.position``); ``safety_check``, if given,
        must equal the first bytes of the data removed (the items' payloads, in order). The
        segment is truncated and sealed: if it was the one receiving adds, later adds go to a
        new segment, so positions are never reused and a trimmed location raises
        :class:`~aiostore.errors.InvalidLocationError` for good.

        The trim is recorded durably before the file changes (write-ahead): after a crash the
        database is as before the call or as after it. Everything added before the call is
        flushed first; adds and commits made meanwhile wait; reads do not.

        Errors: :class:`~aiostore.errors.OverwriteDisabledError` unless
        :meth:`enable_overwrite` was called; :class:`~aiostore.errors.InvalidLocationError`
        for a position that is not an item of a live segment;
        :class:`~aiostore.errors.SafetyCheckError` — each before anything changes.

        Cancellation: while it waits for earlier adds to flush, nothing changes; once the trim
        has started, it completes, and then the cancellation is raised.
        """
        return await self._trim(trim.TrimOp("rtrim", index, position), safety_check, count)

    async def ltrim(self, index: int, position: int, safety_check: Buffer = b"", *,
                    count: bool = False) -> TrimResult:
        """Remove everything before the item at ``position`` of segment ``index``; return a
        :class:`TrimResult` (bytes freed on disk; with ``count=True`` the items and payload
        bytes removed, and every record before ``position`` is walked).

        Locations do not move: the space is freed by punching a hole in the file
        (``fallocate(FALLOC_FL_PUNCH_HOLE)``), or, where the file system cannot, by rewriting
        the segment sparsely into a new file that replaces it atomically. ``safety_check``, if
        given, must equal the last bytes of the data removed (the end of the payload of the
        item just before ``position``). Durability, concurrency, errors and cancellation as
        for :meth:`rtrim`.
        """
        return await self._trim(trim.TrimOp("ltrim", index, position), safety_check, count)

    async def drop_index(self, index: int, *, count: bool = False) -> TrimResult:
        """Delete segment ``index`` whole; return a :class:`TrimResult` (bytes freed on disk;
        with ``count=True`` the items and payload bytes removed, read from the file first).
        Fires ``on_index_drop``.

        The file must carry this database's segment header: a foreign file at that name raises
        :class:`~aiostore.errors.CorruptionError` naming it and is left as it is (so is any
        segment a trim would change).

        The index number is never used again, so no old location can ever return new data:
        dropping the segment receiving adds moves later adds to a new segment. Durability,
        concurrency, errors and cancellation as for :meth:`rtrim`.
        """
        return await self._trim(trim.TrimOp("drop", index), b"", count)

    async def _trim(self, op: trim.TrimOp, safety_check: Buffer, count: bool) -> TrimResult:
        self._check_writable()
        for name, value in (("index", op.index), ("position", op.position)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidTypeError(f"{name} must be an int, not {type(value).__name__}")
        if not isinstance(safety_check, (bytes, bytearray, memoryview)):
            raise InvalidTypeError(f"safety_check must be bytes-like, not "
                                   f"{type(safety_check).__name__}")
        check = bytes(safety_check)
        if not self._overwrite:
            raise OverwriteDisabledError(f"{op.kind} refused: call enable_overwrite() first")
        async with self._trim_lock:
            self._check_writable()
            assert self._loop is not None
            gate = self._gate = self._loop.create_future()
            try:
                if self._seq > self._flushed_seq:
                    await self._flush_upto(self._seq)  # everything added so far is on disk
                if op.index not in self._indices:
                    why = self._trims.refusal(op.index, SEGMENT_HEADER_SIZE, 0)
                    raise InvalidLocationError(why or f"there is no segment {op.index}")
                if op.kind != "drop" and op.position < SEGMENT_HEADER_SIZE:
                    raise InvalidLocationError(
                        f"position {op.position} of segment {op.index} is inside the segment "
                        f"header, not an item's position (items start at {SEGMENT_HEADER_SIZE}"
                        "; use drop_index to remove a whole segment)")
                if op.kind != "drop" and \
                        op.position < self._trims.starts.get(op.index, SEGMENT_HEADER_SIZE):
                    raise InvalidLocationError(f"position {op.position} of segment {op.index} "
                                               "was trimmed already")
                result: TrimResult = await _uncancellable(self._trim_hop(op, check, count))
                return result
            finally:
                self._gate = None
                gate.set_result(None)

    async def _trim_hop(self, op: trim.TrimOp, check: bytes, count: bool) -> TrimResult:
        """Validate, log and apply ``op`` in one worker hop, then update the state on the loop.
        Runs to completion once started (the caller shields it)."""
        fs, writer = self._fs, self._writer
        assert writer is not None
        path = self._segment_path(op.index)
        current = self._index
        state = self._trims
        db_id = str(writer.db_id)

        def hop() -> tuple[trim.TrimState, Removed, bool]:
            with step("open segment", path):
                fd = fs.open(path, os.O_RDWR)
            try:
                check_header(read_header(fs, fd, path), path, op.index, writer.db_id)
                with step("fstat segment", path):
                    size = fs.fstat(fd).st_size
                start = state.starts.get(op.index, SEGMENT_HEADER_SIZE)
                removed = check_trim(fs, fd, path, op, check, start, size, count=count)
                if op.kind == "ltrim" and op.position == start:
                    return state, removed, False  # nothing before it: nothing to do
                new = state.after(op, removed.freed, current, db_id)
                trim.save(fs, self.path, self.file_prefix, new)  # write-ahead
                if op.kind == "drop":
                    fs.close(fd)
                    fd = -1
                replaced = trim.apply(fs, self.path, path, op, None if fd < 0 else fd)
                if writer.index == op.index and op.kind == "drop":
                    writer.close()  # sealed and gone: the next flush starts a new segment
                elif replaced and writer.index == op.index:
                    writer.reopen()
                return new, removed, replaced
            finally:
                if fd >= 0:
                    fs.close(fd)

        new, removed, replaced = await run_commit(hop)
        freed = removed.freed
        self._trims = new
        if replaced or op.kind == "drop":  # cached descriptors name the old file
            self._fd_epoch += 1
            fd = self._read_fds.pop(op.index, None)
            if fd is not None:
                self._closing.append(fd)
        if op.kind == "drop":
            self._indices.discard(op.index)
        if op.kind != "ltrim" and op.index >= self._index:  # seal it: adds go to a new one
            self._flushed_ends[op.index] = op.position if op.kind == "rtrim" else \
                SEGMENT_HEADER_SIZE
            self._index = op.index + 1
            self._end = SEGMENT_HEADER_SIZE
            self._flushed_ends[self._index] = self._end
        if op.kind == "drop":
            self.events.fire(DBEvent("index_drop", f"dropped segment {op.index} "
                                     f"({freed} bytes)", index=op.index, size=freed,
                                     count=removed.items or 0, payload=removed.payload_bytes))
        return TrimResult(freed, removed.items, removed.payload_bytes)

    async def _pass_gate(self) -> None:
        """Wait while a trim runs (adds and commits are ordered after it)."""
        while self._gate is not None:
            await asyncio.shield(self._gate)
        self._check_writable()

    async def stats(self) -> DBStats:
        """Space accounting: segments, live and trimmed bytes, what is buffered (one hop)."""
        self._check_running()
        fs = self._fs
        indices = sorted(self._indices)
        paths = [self._segment_path(i) for i in indices]
        starts = self._trims.starts

        def sizes() -> int:
            total = 0
            for index, name in zip(indices, paths, strict=True):
                try:
                    with step("stat segment", name):
                        size = fs.stat(name).st_size
                except NotFoundError:
                    continue
                total += size - (starts.get(index, SEGMENT_HEADER_SIZE) - SEGMENT_HEADER_SIZE)
            return total

        live = await run_sync(sizes)
        buffered = [*self._pending.values(), *self._inflight.values()]
        return DBStats(segments=len(indices), current_index=self._index, live_bytes=live,
                       trimmed_bytes=self._trims.trimmed_bytes,
                       items_buffered=_count(buffered),
                       bytes_buffered=sum(len(b) if isinstance(b, bytes) else b.payload
                                          for b in buffered),
                       dropped_segments=len(self._trims.dropped))

    # --- reading -----------------------------------------------------------------------------
    async def read(self, location: ItemLocation) -> bytes:
        """The item at ``location``: from RAM if not yet flushed, else from disk.

        A page-cache hit is served on the event loop (``RWF_NOWAIT``); anything else is read
        in the worker pool. The record's length and CRC32C are verified: a wrong or stale
        location raises :class:`~aiostore.errors.InvalidLocationError`, damaged data
        :class:`~aiostore.errors.CorruptionError` — never wrong bytes.
        Cancellation: safe at any point.
        """
        if self._state != "running":
            self._check_running()
        data = self._from_ram(location)
        if data is not None:
            return data
        index, position, size = location
        self._check_on_disk(location)
        fd = self._read_fds.get(index)
        if fd is None:
            fd = await self._open_read_fd(index)
        else:
            self._read_fds.move_to_end(index)
        n = RECORD_HEADER_SIZE + size
        try:
            raw = self._fs.pread_nowait(fd, n, position)
        except OSError as exc:  # (the path is only worked out for the message)
            raise storage_error(exc, "read", self._segment_path(index)) from exc
        if raw is None:
            raw = await self._read_hop(self._pread, fd, n, location)
        else:
            assert self._budget is not None
            if self._budget.spent():
                await asyncio.sleep(0)  # readers served from the page cache still yield
        return self._decode(location, raw)

    def _from_ram(self, location: ItemLocation) -> bytes | None:
        """The item if it is still buffered or being flushed; None if it must come from disk."""
        if type(location) is not ItemLocation:
            self._key(location)  # InvalidTypeError unless an ItemLocation (subclass)
        key = (location[0], location[1])
        data = self._pending.get(key)
        if data is None and self._inflight:
            data = self._inflight.get(key)
        if data is None:
            return None  # (an item of a committing transaction: not flushed, so refused)
        if type(data) is not bytes:
            raise InvalidLocationError(f"{location} was never written (its transaction has not "
                                       "committed yet)")
        if len(data) != location[2]:
            raise InvalidLocationError(f"{location}: the item there has {len(data)} bytes")
        return data

    def _segment_path(self, index: int) -> str:
        return os.path.join(self.path, segment_name(self.file_prefix, self.file_padding, index))

    def _pread(self, fd: int, n: int, location: ItemLocation) -> bytes:
        with step("read", self._segment_path(location.index)):
            return self._fs.pread(fd, n, location.position)

    async def read_many(self, locations: Iterable[ItemLocation]) -> list[bytes]:
        """The items at ``locations``, in order; disk misses are read in one worker hop."""
        self._check_running()
        locs = list(locations)
        out: list[bytes | None] = []
        misses: list[tuple[int, ItemLocation]] = []
        for i, loc in enumerate(locs):
            data = self._from_ram(loc)
            if data is not None:
                out.append(data)
                continue
            self._check_on_disk(loc)
            fd = self._read_fds.get(loc.index)
            raw = None
            if fd is not None:
                raw = self._fs.pread_nowait(fd, RECORD_HEADER_SIZE + loc.size, loc.position)
            if raw is None:
                misses.append((i, loc))
                out.append(None)
            else:
                out.append(self._decode(loc, raw))
                assert self._budget is not None
                if self._budget.spent():
                    await asyncio.sleep(0)
        if misses:
            wanted = {loc.index for _, loc in misses} - set(self._read_fds)
            if len(wanted) <= _READ_FDS // 2:  # keep them: later reads take the inline path
                for index in wanted:
                    await self._open_read_fd(index)
                still = []
                for i, loc in misses:
                    # (opening one may have evicted another: that item is then still a miss)
                    fd = self._read_fds.get(loc.index)
                    raw = None if fd is None else self._fs.pread_nowait(
                        fd, RECORD_HEADER_SIZE + loc.size, loc.position)
                    if raw is None:
                        still.append((i, loc))
                    else:
                        out[i] = self._decode(loc, raw)
                misses = still
        if misses:
            cached = {loc.index: self._read_fds[loc.index] for _, loc in misses
                      if loc.index in self._read_fds}
            fs = self._fs

            def read_all() -> list[bytes]:
                own: dict[int, int] = {}
                try:
                    result = []
                    for _, loc in misses:
                        fd = cached.get(loc.index)
                        if fd is None:
                            fd = own.get(loc.index)
                        if fd is None:
                            fd = own[loc.index] = self._open_segment(loc.index)
                        result.append(self._pread(fd, RECORD_HEADER_SIZE + loc.size, loc))
                    return result
                finally:
                    for fd in own.values():
                        fs.close(fd)

            raws = await self._read_hop(read_all)
            for (i, loc), raw in zip(misses, raws, strict=True):
                out[i] = self._decode(loc, raw)
        return [d for d in out if d is not None]

    def _key(self, location: object) -> _Key:
        if not isinstance(location, ItemLocation):
            raise InvalidTypeError(f"expected an ItemLocation, not {type(location).__name__}")
        return (location.index, location.position)

    def _check_on_disk(self, loc: ItemLocation) -> None:
        index, position, size = loc
        if position < SEGMENT_HEADER_SIZE or size < 0 or index < 0 or index > self._index:
            raise InvalidLocationError(f"{loc} is outside the database")
        stop = position + RECORD_HEADER_SIZE + size
        if self._trims.ops:
            why = self._trims.refusal(index, position, stop)
            if why is not None:
                raise InvalidLocationError(f"{loc}: {why}")
        end = self._flushed_ends.get(index)
        if end is not None and stop > end and not self.read_only:
            raise InvalidLocationError(f"{loc} was never written")

    def _open_segment(self, index: int) -> int:
        """Open segment ``index`` for reading, proving first that it is this database's own
        (blocking)."""
        name = self._segment_path(index)
        try:
            with step("open segment", name):
                fd = self._fs.open(name, os.O_RDONLY)
        except NotFoundError:
            raise InvalidLocationError(f"segment {index} does not exist") from None
        try:
            check_header(read_header(self._fs, fd, name), name, index, self._db_id)
        except BaseException:
            self._fs.close(fd)
            raise
        return fd

    async def _read_hop(self, fn: Callable[..., T], *args: object) -> T:
        """Run a read that uses cached descriptors in the pool. It is counted while the worker
        runs — a cancelled caller waits for the pread to return (microseconds) — so no
        descriptor it uses is closed under it."""
        self._reads_in_flight += 1
        try:
            return await run_commit(fn, *args)
        finally:
            self._reads_in_flight -= 1
            if not self._reads_in_flight:
                idle, self._reads_idle = self._reads_idle, None
                if idle is not None and not idle.done():
                    idle.set_result(None)

    async def _open_hop(self, index: int) -> int:
        """Open segment ``index`` in the pool. Cancellation: a descriptor opened anyway is
        queued for closing, never leaked."""
        opened: list[int] = []

        def open_it() -> int:
            fd = self._open_segment(index)
            opened.append(fd)
            return fd

        try:
            return await run_commit(open_it)
        except asyncio.CancelledError:
            if opened:
                if self._state == "stopped":
                    self._fs.close(opened[0])  # (a read-only descriptor: closing never waits)
                else:
                    self._closing.append(opened[0])
            raise

    async def _reads_done(self) -> None:
        """Wait until no read hop runs."""
        while self._reads_in_flight:
            if self._reads_idle is None:
                assert self._loop is not None
                self._reads_idle = self._loop.create_future()
            await asyncio.shield(self._reads_idle)

    async def _open_read_fd(self, index: int) -> int:
        """A cached read descriptor of segment ``index`` (opened and cached if need be)."""
        fs = self._fs
        while True:
            epoch = self._fd_epoch
            fd = await self._open_hop(index)
            if self._state != "running" or epoch != self._fd_epoch:
                # stopped, or a trim replaced files meanwhile: this descriptor may name the
                # old file, and a stopped database keeps none
                await _uncancellable(run_commit(fs.close, fd))
                self._check_running()
                continue
            old = self._read_fds.get(index)
            if old is not None:  # opened concurrently: keep one
                await _uncancellable(run_commit(fs.close, fd))
                return old
            self._read_fds[index] = fd
            break
        if len(self._read_fds) > _READ_FDS:
            _, evicted = self._read_fds.popitem(last=False)
            self._closing.append(evicted)
        if self._closing and not self._reads_in_flight:  # nobody can still be using them
            closing, self._closing = self._closing, []
            await _uncancellable(run_commit(lambda: [fs.close(f) for f in closing]))
        return fd

    def _decode(self, loc: ItemLocation, raw: bytes) -> bytes:
        size = loc[2]
        if len(raw) < RECORD_HEADER_SIZE + size:
            raise InvalidLocationError(f"{loc} is past the end of segment {loc.index}")
        magic, flags, length, crc = RECORD_HEADER.unpack_from(raw)
        if magic != RECORD_MAGIC or length != size or flags not in ITEM_FLAGS:
            raise InvalidLocationError(f"{loc} does not point at an item of {size} bytes")
        payload = raw[RECORD_HEADER_SIZE:]
        if record_crc(flags, payload) != crc:
            raise CorruptionError(f"the item at {loc} fails its checksum")
        return payload

    async def scan(self, start: ItemLocation | None = None
                   ) -> AsyncIterator[tuple[ItemLocation, bytes]]:
        """Every item in order, as ``(location, data)``: from disk, then the unflushed ones.

        Items added while the scan runs are included up to the moment it reaches the end.
        ``start`` resumes at that location (included). Damaged data raises
        :class:`~aiostore.errors.CorruptionError` (never skipped silently).
        Cancellation: safe at any point.
        """
        self._check_running()
        if start is not None:
            self._key(start)
        index = start.index if start is not None else min(self._indices, default=0)
        offset = start.position if start is not None else SEGMENT_HEADER_SIZE
        while True:
            if index not in self._indices and index < self._index:
                index, offset = index + 1, SEGMENT_HEADER_SIZE  # dropped (or never created)
                continue
            end = self._flushed_ends.get(index) if not self.read_only else None
            if index in self._indices:
                offset = max(offset, self._trims.starts.get(index, SEGMENT_HEADER_SIZE))
            if index in self._indices and (index < self._index or end is None or offset < end):
                cursor = [offset]
                async for loc, data in self._scan_segment(index, cursor, end):
                    yield loc, data
                offset = cursor[0]
                if index < self._index or end is None:
                    if index >= self._index:
                        break
                    index, offset = index + 1, SEGMENT_HEADER_SIZE
                    continue
                if offset < self._flushed_ends.get(index, offset):
                    continue  # a flush landed while we read: read it too
                offset = max(offset, end)
            # caught up with the disk: what is in RAM now, taken in the same loop step
            ram = list(self._inflight.items()) + list(self._pending.items())
            for key, entry in ram:  # (committing transactions are not visible yet)
                if key >= (index, offset) and isinstance(entry, bytes):
                    yield ItemLocation(key[0], key[1], len(entry)), entry
            break

    async def _scan_segment(self, index: int, cursor: list[int], end: int | None
                            ) -> AsyncIterator[tuple[ItemLocation, bytes]]:
        """Items of one segment from ``cursor[0]`` to ``end`` (or EOF); ``cursor[0]`` follows
        the bytes consumed (markers included), except that it stays at the first item of a
        transaction whose commit record was not reached yet. Such items are held back — and
        dropped at the end of the newest segment (a commit in flight, seen by a reader), but
        yielded at the end of an older one (an rtrim cut the transaction short)."""
        name = self._segment_path(index)
        offset = cursor[0]
        fs = self._fs
        held: list[tuple[ItemLocation, bytes]] = []
        fd = await self._open_hop(index)
        try:
            want = _SCAN_CHUNK
            while True:
                limit = want if end is None else min(want, end - offset)
                if limit <= 0:
                    break

                def read_chunk(at: int = offset, n: int = limit) -> bytes:
                    with step("read segment", name):
                        return fs.pread(fd, n, at)

                buf = await run_sync(read_chunk)
                if not buf:
                    break
                consumed = 0
                try:
                    for rec in iter_records(buf, offset):
                        consumed = rec.offset - offset + RECORD_HEADER_SIZE + len(rec.payload)
                        if rec.flags == FLAG_ITEM:
                            for item in held:  # (only after an rtrim inside a transaction)
                                yield item
                            held.clear()
                            yield (ItemLocation(index, rec.offset, len(rec.payload)),
                                   bytes(rec.payload))
                        elif rec.flags == FLAG_TX_ITEM:
                            held.append((ItemLocation(index, rec.offset, len(rec.payload)),
                                         bytes(rec.payload)))
                        elif rec.flags == FLAG_TX_COMMIT:
                            for item in held:
                                yield item
                            held.clear()
                except BadRecord as exc:
                    raise CorruptionError(f"segment {index}: {exc}") from None
                if consumed:
                    offset += consumed
                    cursor[0] = held[0][0].position if held else offset
                    want = _SCAN_CHUNK
                    continue
                if len(buf) < limit:
                    if end is not None and offset < end:
                        raise CorruptionError(f"segment {index}: cut off at offset {offset}")
                    break  # the end of a segment being written
                if len(buf) >= RECORD_HEADER_SIZE:  # a record larger than the window
                    _, _, length, _ = RECORD_HEADER.unpack_from(buf)
                    want = RECORD_HEADER_SIZE + length
                    if want <= len(buf):
                        raise CorruptionError(f"segment {index}: bad record at {offset}")
                    continue
                break
            if held and index < self._index:
                for item in held:
                    yield item
                cursor[0] = offset
        finally:
            await run_sync(fs.close, fd)

    # --- signals -----------------------------------------------------------------------------
    def install_signal_handlers(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
                                *, exit: bool = True) -> None:
        """On SIGTERM/SIGINT: flush, stop cleanly, then (``exit=True``) die of the signal.

        Uses ``loop.add_signal_handler``: the handler only schedules :meth:`stop` on the loop,
        never file I/O inside a signal handler. Several databases on one loop may install
        handlers: a signal stops them all. With ``exit=True`` the signal's previous disposition
        is set to its default and the signal re-raised once every database stopped (the process ends
        "terminated by SIGTERM", as without a handler); with ``exit=False`` the databases just
        stop. The handlers are removed when the database stops.
        """
        self._check_running()
        assert self._loop is not None
        _register_signals(self._loop, self, tuple(signals), exit)

    def on_stop_signal(self, signum: int, frame: FrameType | None = None) -> None:
        """For ``signal.signal(SIGTERM, db.on_stop_signal)``, as in aiodiskdb: only schedules
        the same clean stop on the event loop (thread-safe); no I/O in the handler, and the
        process is not ended (the application decides what happens next)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._schedule_stop)

    def _schedule_stop(self) -> None:
        if self._state == "running" and self._loop is not None:
            task = self._loop.create_task(self.stop())
            self.events._tasks.add(task)
            task.add_done_callback(self.events._tasks.discard)


_SignalKey = tuple[asyncio.AbstractEventLoop, int]
_signal_dbs: dict[_SignalKey, tuple[set[SegmentDB], bool]] = {}


def _register_signals(loop: asyncio.AbstractEventLoop, db: SegmentDB,
                      signals: tuple[int, ...], exit: bool) -> None:
    for sig in signals:
        key = (loop, sig)
        if key not in _signal_dbs:
            _signal_dbs[key] = (set(), exit)
            loop.add_signal_handler(sig, _on_signal, loop, sig)
        dbs, was_exit = _signal_dbs[key]
        dbs.add(db)
        _signal_dbs[key] = (dbs, was_exit or exit)


def _unregister_signals(db: SegmentDB) -> None:
    for key, (dbs, _) in list(_signal_dbs.items()):
        dbs.discard(db)
        if not dbs and not _signal_stopping.get(key):
            del _signal_dbs[key]
            with contextlib.suppress(Exception):
                key[0].remove_signal_handler(key[1])


_signal_stopping: dict[_SignalKey, bool] = {}


def _on_signal(loop: asyncio.AbstractEventLoop, sig: int) -> None:
    key = (loop, sig)
    if _signal_stopping.get(key) or key not in _signal_dbs:
        return
    _signal_stopping[key] = True
    dbs, exit = _signal_dbs[key]

    async def stop_all() -> None:
        try:
            await asyncio.gather(*(db.stop() for db in list(dbs)), return_exceptions=True)
        finally:
            _signal_stopping.pop(key, None)
            _signal_dbs.pop(key, None)
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        if exit:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)

    task = loop.create_task(stop_all())
    _signal_tasks.add(task)
    task.add_done_callback(_signal_tasks.discard)


_signal_tasks: set[asyncio.Task[None]] = set()


async def _uncancellable(aw: Awaitable[Any]) -> Any:
    """Await ``aw`` to the end even if cancelled meanwhile; then re-raise the cancellation."""
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


def _close_state(fs: FileSystem, state: OpenState) -> None:
    for fd in (state.write_fd, state.lock_fd):
        if fd is not None:
            with contextlib.suppress(OSError):
                fs.close(fd)


def _positive_int(name: str, value: object, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, not {value!r}")



def _count(entries: Iterable[_Entry]) -> int:
    """Items in a buffer (a transaction counts its items)."""
    return sum(1 if isinstance(v, bytes) else len(v.items) for v in entries)


def _location(key: _Key, entry: _Entry, *, first: bool) -> ItemLocation:
    """The first or last item location of a buffer entry (worker side: blocks are framed)."""
    if isinstance(entry, bytes):
        return ItemLocation(key[0], key[1], len(entry))
    locations = entry.compute_locations()
    return locations[0] if first else locations[-1]
