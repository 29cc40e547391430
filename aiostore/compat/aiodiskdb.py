"""``AioDiskDB``: aiodiskdb 0.2.3's API on top of :class:`aiostore.SegmentDB`.

An aiodiskdb user switches by changing one import::

    from aiostore.compat import AioDiskDB, ItemLocation   # was: from aiodiskdb import ...

The adapter only translates: the constructor's megabytes into bytes, aiodiskdb's long-running
``run()`` into ``SegmentDB.start()`` + wait + ``stop()``, aiodiskdb's event callbacks
(``on_write(timestamp, WriteEvent)``, ...) from SegmentDB's single ``DBEvent``. Every read,
write, flush, trim and transaction is the wrapped SegmentDB's (:attr:`AioDiskDB.segmentdb`).

The files are SegmentDB's, not aiodiskdb's: an aiodiskdb directory cannot be opened and
aiodiskdb's stored locations mean nothing here. See ``docs/migrating-from-aiodiskdb.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import os
import stat as stat_mod
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from .._io.base import Buffer, FileSystem, current_fs
from .._io.groupsync import sync_dir
from .._io.offload import run_commit, run_sync
from .._io.ops import step
from .._io.publish import TEMP_NAME
from ..errors import (
    CorruptionError,
    DatabaseClosedError,
    InvalidArgumentError,
    InvalidLocationError,
    InvalidTypeError,
    OverwriteDisabledError,
)
from ..segments import trim
from ..segments.db import SegmentDB, TrimResult
from ..segments.events import DBEvent
from ..segments.format import (
    FLUSH_MARKER_SIZE,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    interrupted_header,
)
from ..segments.identity import check_header, read_header
from ..segments.location import ItemLocation
from ..segments.recovery import list_segments, take_lock
from ..segments.transaction import Transaction

__all__ = ["AioDiskDB", "EventsHandlers", "ItemLocation", "WriteEvent"]

_MB = 1024**2  # aiodiskdb's "MB"
#: aiodiskdb 0.2.3's defaults (aiodiskdb/aiodiskdb.py; its README says 1000 buffer items, the
#: code uses 100)
_FILE_SIZE = 128
_FILE_PREFIX = "data"
_FILE_ZEROS_PADDING = 5
_BUFFER_SIZE = 16
_BUFFER_ITEMS = 100
_FLUSH_INTERVAL = 30
_GENESIS_BYTES = b"\r\xce\x8f7"
_TIMEOUT = 30
_CONCURRENCY = 32
#: aiodiskdb's run loop ticks every 5 ms: flush_interval=0 meant "flush on the next tick"
_ZERO_INTERVAL = 0.005
_MIN_FILE_SIZE = SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE + FLUSH_MARKER_SIZE + 1
_HOOKS = ("on_start", "on_stop", "on_failure", "on_index_drop", "on_write")

#: an aiodiskdb callback: ``async def callback(timestamp: float, *event_data) -> None``
Callback = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class WriteEvent:
    """What one flush made durable; the second argument of ``on_write(timestamp, event)``.

    ``index``, ``position`` and ``size`` are aiodiskdb's fields: the segment and the position
    (a record-header offset, as in :class:`ItemLocation`) of the first item written, and the
    payload bytes written. Equality and hashing use only these three, so
    ``WriteEvent(index, position, size) == event`` matches as it did with aiodiskdb.

    Extra information, left out of equality: one flush may continue into the next segments —
    every item from ``(index, position)`` up to and including ``last`` is durable, ``count``
    items in all.
    """

    index: int
    position: int
    size: int
    #: how many items the flush wrote (not compared)
    count: int = field(default=0, compare=False)
    #: the location of the last item the flush wrote (not compared)
    last: ItemLocation | None = field(default=None, compare=False)


class EventsHandlers:
    """aiodiskdb's event hooks, ``db.events``: assign an ``async def`` callback or ``None``.

    Every callback gets the event's ``time.time()`` first, as in aiodiskdb:

    * ``on_start(timestamp)``, ``on_stop(timestamp)``, ``on_failure(timestamp)``;
    * ``on_index_drop(timestamp, index, size)`` — ``size`` is the payload bytes of the items
      dropped (as aiodiskdb, whose files hold payloads only);
    * ``on_write(timestamp, WriteEvent(index, position, size))``.

    Assigning anything but a coroutine function (or ``None``) raises
    :class:`~aiostore.errors.InvalidTypeError`, a ``TypeError``, as aiodiskdb does; an unknown
    hook name raises ``AttributeError``. Callbacks run as tasks the database does not wait
    for; one that raises is logged (logger ``aiostore.segments``) and changes nothing.
    """

    __slots__ = _HOOKS

    on_start: Callback | None
    on_stop: Callback | None
    on_failure: Callback | None
    on_index_drop: Callback | None
    on_write: Callback | None

    def __init__(self) -> None:
        for name in _HOOKS:
            setattr(self, name, None)

    if not TYPE_CHECKING:  # at runtime only: type checkers keep checking the hook names

        def __setattr__(self, name: str, value: object) -> None:
            if name not in _HOOKS:
                raise AttributeError(f"unknown event hook {name!r}; the hooks are "
                                     f"{', '.join(_HOOKS)}")
            if value is not None and not inspect.iscoroutinefunction(value):
                raise InvalidTypeError(f"{name} must be a coroutine function (async def) or "
                                       f"None, as in aiodiskdb, not {value!r}")
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        hooks = ", ".join(f"{n}={getattr(self, n)!r}" for n in _HOOKS)
        return f"EventsHandlers({hooks})"


class AioDiskDB:
    """aiodiskdb's ``AioDiskDB``, backed by a :class:`~aiostore.SegmentDB` in ``path``.

    ::

        db = AioDiskDB("/var/lib/app/blobs", create_if_not_exists=True)
        task = asyncio.get_running_loop().create_task(db.run())   # as with aiodiskdb
        ...                                   # once db.running (or from events.on_start):
        location = await db.add(b"data")
        assert await db.read(location) == b"data"
        await db.stop()                       # flushes; run() then returns
        await task

    The arguments are aiodiskdb's, in its order and with its defaults. Sizes are in MB
    (``2**20`` bytes, floats allowed) as in aiodiskdb. ``overwrite=True`` enables
    :meth:`rtrim`, :meth:`ltrim`, :meth:`drop_index` and :meth:`destroy_db` (see
    :meth:`enable_overwrite`). ``create_if_not_exists`` creates the directory in :meth:`run`;
    without it the directory must exist (a new database is started in it either way).

    Accepted for compatibility and ignored: ``clean_stale_data`` (opening always recovers),
    ``genesis_bytes`` (segments have their own header; still checked to be 4 bytes),
    ``timeout`` (nothing times out: ``add`` waits for the flush under back-pressure, ``stop``
    for the last flush) and ``concurrency`` (aiostore's worker pool has
    ``AIOSTORE_MAX_THREADS`` threads).

    Bad values raise :class:`~aiostore.errors.InvalidArgumentError` (a ``ValueError``) where
    aiodiskdb raised ``InvalidConfigurationException``.
    """

    def __init__(self, path: str | os.PathLike[str], create_if_not_exists: bool = False,
                 overwrite: bool = False, clean_stale_data: bool = True,
                 file_padding: int = _FILE_ZEROS_PADDING, file_prefix: str = _FILE_PREFIX,
                 max_file_size: float = _FILE_SIZE, max_buffer_items: int = _BUFFER_ITEMS,
                 max_buffer_size: float = _BUFFER_SIZE, flush_interval: float = _FLUSH_INTERVAL,
                 genesis_bytes: bytes = _GENESIS_BYTES, timeout: float = _TIMEOUT,
                 concurrency: int = _CONCURRENCY) -> None:
        if not isinstance(file_prefix, str) or not file_prefix.isalpha():
            raise InvalidArgumentError(f"file_prefix must be an alphabetic string, not "
                                       f"{file_prefix!r}")
        file_mb = _positive_mb("max_file_size", max_file_size)
        buffer_mb = _positive_mb("max_buffer_size", max_buffer_size)
        if file_mb < buffer_mb:
            raise InvalidArgumentError(f"max_file_size ({max_file_size} MB) must be >= "
                                       f"max_buffer_size ({max_buffer_size} MB)")
        file_bytes = int(file_mb * _MB)
        if file_bytes > 2**32:
            raise InvalidArgumentError(f"max_file_size must be at most 4096 (MB), not "
                                       f"{max_file_size!r}")
        if file_bytes < _MIN_FILE_SIZE:
            raise InvalidArgumentError(f"max_file_size={max_file_size!r} MB is {file_bytes} "
                                       f"bytes; a segment file needs at least {_MIN_FILE_SIZE}")
        buffer_bytes = max(1, int(buffer_mb * _MB))
        _count("max_buffer_items", max_buffer_items)
        _count("file_padding", file_padding)
        _count("concurrency", concurrency)
        interval = _seconds("flush_interval", flush_interval)
        _seconds("timeout", timeout)
        if not isinstance(genesis_bytes, (bytes, bytearray)) or len(genesis_bytes) != 4:
            raise InvalidArgumentError(f"genesis_bytes must be 4 bytes, not {genesis_bytes!r}")
        self._db = SegmentDB(path, max_file_size=file_bytes, max_buffer_size=buffer_bytes,
                             max_buffer_items=max_buffer_items,
                             flush_interval=interval or _ZERO_INTERVAL, file_prefix=file_prefix,
                             file_padding=file_padding, create_if_not_exists=True)
        self._fs: FileSystem = current_fs()
        self._create = bool(create_if_not_exists)
        self._overwrite = False
        if overwrite:
            self.enable_overwrite()
        self._events = EventsHandlers()
        self._stopped: asyncio.Event | None = None  # set when the running database stops
        self._run_active = False
        hooks = self._db.events
        hooks.on_start = self._fire_start
        hooks.on_stop = self._fire_stop
        hooks.on_failure = self._fire_failure
        hooks.on_index_drop = self._fire_index_drop
        hooks.on_write = self._fire_write

    # --- properties ------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The database directory (absolute)."""
        return Path(self._db.path)

    @property
    def running(self) -> bool:
        """Whether the database accepts calls: :meth:`run` has started it and it has not
        been stopped."""
        return self._db.running

    @property
    def events(self) -> EventsHandlers:
        """The aiodiskdb-style event hooks (``db.events.on_write = callback``)."""
        return self._events

    @property
    def segmentdb(self) -> SegmentDB:
        """The wrapped :class:`~aiostore.SegmentDB`, for what aiodiskdb did not have
        (``add(..., durable=True)``, ``read_many``, ``scan``, ``stats``,
        ``install_signal_handlers``). Do not reassign its ``events`` hooks: the adapter uses
        them."""
        return self._db

    # --- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        """Start the database and return once it is stopped: ``loop.create_task(db.run())``.

        It opens the directory (recovering from a crash), fires ``on_start``, then waits until
        :meth:`stop`, a stop signal (:meth:`on_stop_signal`) or cancellation. Cancelling the
        task flushes and stops the database cleanly before the cancellation goes through.
        Opening errors are raised from here: :class:`~aiostore.errors.NotFoundError` (the
        directory does not exist and ``create_if_not_exists`` is false),
        :class:`~aiostore.errors.DatabaseLockedError`, :class:`~aiostore.errors.CorruptionError`
        (for example an aiodiskdb directory, which cannot be opened),
        :class:`~aiostore.errors.InvalidArgumentError` if it is already running.
        """
        if self._run_active or self._db.running:
            raise InvalidArgumentError(f"the database at {self._db.path} is already running")
        self._run_active = True
        try:
            stopped = self._stopped = asyncio.Event()
            if not self._create:
                path, fs = self._db.path, self._fs

                def check_directory() -> None:
                    with step("open database directory", path):
                        fs.stat(path)

                await run_sync(check_directory)
            try:
                await self._db.start()
            except CorruptionError as exc:
                raise CorruptionError(f"{exc} (aiodiskdb files cannot be opened by aiostore: "
                                      "see docs/migrating-from-aiodiskdb.md)") from exc
            try:
                await stopped.wait()
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):  # reported by on_failure and the log
                    await self._db.stop()
                raise
        finally:
            self._run_active = False

    async def stop(self) -> bool:
        """Flush, fsync and close the database; return ``True``. :meth:`run` then returns.

        Raises :class:`~aiostore.errors.DatabaseClosedError` if it is not running (aiodiskdb's
        ``NotRunningException``), and :class:`~aiostore.errors.DatabaseFailedError` if an
        earlier flush failed (the database is closed anyway; the error says how many items
        were never written). Cancellation: the stop completes first.
        """
        if not self._db.running:
            raise DatabaseClosedError(f"the database at {self._db.path} is not running")
        try:
            await self._db.stop()
        finally:
            if self._stopped is not None:
                self._stopped.set()
        return True

    def on_stop_signal(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """For ``signal.signal(signal.SIGTERM, db.on_stop_signal)``, as in aiodiskdb.

        Unlike aiodiskdb it does no I/O in the signal handler and does not raise
        ``SystemExit``: it schedules the same clean stop as :meth:`stop` on the event loop
        (thread-safe), after which :meth:`run` returns — end your program there.
        """
        self._db.on_stop_signal(signum, frame)

    # --- writing and reading -----------------------------------------------------------------
    async def add(self, data: Buffer) -> ItemLocation:
        """Append an item; return its location at once (it is readable immediately).

        The item reaches the disk with the next flush (``max_buffer_items`` items or
        ``max_buffer_size`` MB buffered, every ``flush_interval`` seconds, :meth:`flush`,
        :meth:`stop`). Empty items are allowed. Errors as ``SegmentDB.add``.
        """
        return await self._db.add(data)

    async def read(self, location: ItemLocation) -> bytes | None:
        """The item at ``location``, or ``None`` where there is none, as in aiodiskdb.

        ``None`` for a location that names no stored item (never written, trimmed, dropped,
        or not an item's position: what ``SegmentDB.read`` raises
        :class:`~aiostore.errors.InvalidLocationError` for). Damaged data raises
        :class:`~aiostore.errors.CorruptionError`; a location that is not an aiostore
        :class:`ItemLocation` raises :class:`~aiostore.errors.InvalidTypeError`.
        """
        try:
            return await self._db.read(location)
        except InvalidLocationError:
            return None

    async def flush(self) -> None:
        """Write everything added so far and fsync it; return once it is durable."""
        await self._db.flush()

    def transaction(self) -> Transaction:
        """A new transaction: ``tx = await db.transaction()``, ``tx.add(data)``,
        ``locations = await tx.commit()`` — all or nothing, durable when ``commit`` returns.

        ``async with db.transaction() as tx:`` works too. The transaction is
        :class:`aiostore.Transaction`: it must fit in one segment (``max_file_size``), and
        committing an empty one returns ``[]``.
        """
        return self._db.transaction()

    # --- pruning ---------------------------------------------------------------------------
    def enable_overwrite(self) -> None:
        """Allow :meth:`rtrim`, :meth:`ltrim`, :meth:`drop_index` and :meth:`destroy_db`."""
        self._overwrite = True
        self._db.enable_overwrite()

    def disable_overwrite(self) -> None:
        """Refuse :meth:`rtrim`, :meth:`ltrim`, :meth:`drop_index` and :meth:`destroy_db`
        again (:class:`~aiostore.errors.OverwriteDisabledError`)."""
        self._overwrite = False
        self._db.disable_overwrite()

    async def rtrim(self, index: int, trim_from: int, safety_check: Buffer = b"") -> int:
        """Remove the item at position ``trim_from`` of segment ``index`` and everything after
        it in that segment; return the payload bytes removed (the sum of the removed items'
        sizes, as aiodiskdb; ``db.segmentdb.rtrim(...)`` returns the bytes freed on disk,
        framing included). The range removed is read once to count it.

        ``trim_from`` must be an item's ``location.position`` (not an aiodiskdb byte offset;
        ``0`` is not a position: use :meth:`drop_index`). ``safety_check`` must match the
        start of the removed data. The segment is sealed: later adds go to a new segment.
        """
        return _payload(await self._db.rtrim(index, trim_from, safety_check, count=True))

    async def ltrim(self, index: int, trim_to: int, safety_check: Buffer = b"") -> int:
        """Remove everything in segment ``index`` before the item at position ``trim_to``;
        return the payload bytes removed (as aiodiskdb). Other locations stay valid.

        ``trim_to`` must be an item's ``location.position``; ``safety_check`` must match the
        end of the removed data.
        """
        return _payload(await self._db.ltrim(index, trim_to, safety_check, count=True))

    async def drop_index(self, index: int) -> int:
        """Delete segment ``index``; return the payload bytes of its items (as aiodiskdb) and
        fire ``on_index_drop`` with the same size.

        Index numbers are never reused: dropping the segment receiving adds moves later adds
        to a new segment.
        """
        return _payload(await self._db.drop_index(index, count=True))

    async def destroy_db(self) -> bool:
        """Delete the database directory and everything in it; return ``True``.

        A coroutine here (``await db.destroy_db()``): aiodiskdb's was a plain method. As in
        aiodiskdb it is refused while the database runs
        (:class:`~aiostore.errors.InvalidArgumentError`) and unless overwrite is enabled
        (:class:`~aiostore.errors.OverwriteDisabledError`). It also refuses a directory another
        writer holds open (:class:`~aiostore.errors.DatabaseLockedError`) or that is a symbolic
        link. Everything in the directory is removed, aiostore's files or not, like
        ``shutil.rmtree``. Cancellation: once started, the removal completes.
        """
        if self._run_active or self._db.running:
            raise InvalidArgumentError("the database must be stopped before destroying it")
        if not self._overwrite:
            raise OverwriteDisabledError("destroy_db refused: call enable_overwrite() first "
                                         "(or pass overwrite=True)")
        await run_commit(_destroy, self._fs, self._db.path, self._db.file_prefix,
                         self._db.file_padding)
        return True

    # --- events: SegmentDB's DBEvent -> aiodiskdb's callbacks -----------------------------
    def _fire_start(self, event: DBEvent) -> Awaitable[Any] | None:
        hook = self._events.on_start
        return hook(event.timestamp) if hook is not None else None

    def _fire_stop(self, event: DBEvent) -> Awaitable[Any] | None:
        if self._stopped is not None:
            self._stopped.set()  # a stop from anywhere (signal, segmentdb.stop()) ends run()
        hook = self._events.on_stop
        return hook(event.timestamp) if hook is not None else None

    def _fire_failure(self, event: DBEvent) -> Awaitable[Any] | None:
        hook = self._events.on_failure
        return hook(event.timestamp) if hook is not None else None

    def _fire_index_drop(self, event: DBEvent) -> Awaitable[Any] | None:
        hook = self._events.on_index_drop
        size = event.payload if event.payload is not None else event.size  # (uncounted drop)
        return hook(event.timestamp, event.index, size) if hook is not None else None

    def _fire_write(self, event: DBEvent) -> Awaitable[Any] | None:
        hook = self._events.on_write
        first = event.first
        if hook is None or first is None:
            return None
        return hook(event.timestamp, WriteEvent(index=first.index, position=first.position,
                                                size=event.size, count=event.count,
                                                last=event.last))


def _payload(result: TrimResult) -> int:
    """aiodiskdb's figure for a trim: the payload bytes removed (counted by the trim)."""
    assert result.payload_bytes is not None
    return result.payload_bytes


def _positive_mb(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive number of megabytes, not "
                                   f"{value!r}")
    return float(value)


def _count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be an integer >= 1, not {value!r}")


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def _destroy(fs: FileSystem, path: str, prefix: str, padding: int) -> None:
    """Remove the database's own files and then ``path``, holding the writer's lock (blocking).

    Every entry is classified first: the lock file, the trim log (it must parse), segments
    (named like one *and* carrying this database's header) and aiostore temp files of those.
    Anything else — a user's file, a subdirectory, a segment of another database — means
    the directory is not only the database's, and nothing at all is removed: the error names
    what was found."""
    with step("open database directory", path):
        st = fs.stat(path, follow_symlinks=False)
    if stat_mod.S_ISLNK(st.st_mode):
        raise InvalidArgumentError(f"{path} is a symbolic link; destroy_db removes only a "
                                   "real directory")
    lock_name = f"{prefix}.LOCK"
    lock_fd = take_lock(fs, path, prefix)  # DatabaseLockedError if another writer has it open
    try:
        with step("list directory", path):
            names = sorted(fs.listdir(path))
        segments = list_segments(fs, path, prefix)
        trims = trim.load(fs, path, prefix)  # CorruptionError unless it is a trim log
        db_id = uuid.UUID(trims.db_id) if trims.db_id is not None else None
        ours = {lock_name, trim.trim_log_name(prefix)} & set(names)
        foreign: list[str] = []
        newest = max(segments, default=-1)
        for index, name in sorted(segments.items()):
            full = os.path.join(path, name)
            with step("read segment", full):
                fd = fs.open(full, os.O_RDONLY)
                try:
                    head, size = read_header(fs, fd, full), fs.fstat(fd).st_size
                finally:
                    fs.close(fd)
            try:
                db_id = check_header(head, full, index, db_id).db_id
            except CorruptionError:
                if not (index == newest and size <= SEGMENT_HEADER_SIZE
                        and interrupted_header(head, index, db_id)):  # (what recovery would remove)
                    foreign.append(name)
                    continue
            ours.add(name)
        stems = {f".{n}." for n in (*ours, trim.trim_log_name(prefix))}
        for name in names:
            if name in ours:
                continue
            temp = TEMP_NAME.match(name) and any(name.startswith(s) for s in stems)
            ltrim_temp = name.endswith(".ltrim-tmp") and name[:-len(".ltrim-tmp")] in ours
            if temp or ltrim_temp:
                ours.add(name)
            elif name not in segments.values():
                foreign.append(name)
        if foreign:
            raise InvalidArgumentError(
                f"destroy_db refused: {path} holds files that are not this database's "
                f"({', '.join(sorted(foreign)[:10])}{', ...' if len(foreign) > 10 else ''}); "
                "nothing was removed. Move them away (or delete them yourself) first")
        for name in sorted(ours - {lock_name}):
            full = os.path.join(path, name)
            with step("remove file", full):
                fs.unlink(full)
        with step("remove file", os.path.join(path, lock_name)):
            fs.unlink(os.path.join(path, lock_name))
    finally:
        fs.close(lock_fd)
    with step("remove directory", path):
        fs.rmdir(path)
    parent = os.path.dirname(path)
    with step("fsync directory", parent, durability=True):
        sync_dir(fs, parent)
