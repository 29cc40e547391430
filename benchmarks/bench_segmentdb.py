#!/usr/bin/env python3
"""SegmentDB: aiostore's append-only segment database against aiodiskdb and plain Python.

One command, ``make bench-segmentdb`` (or ``python benchmarks/bench_segmentdb.py`` from any
Python 3.10+): like ``bench_writers.py``, the script re-executes itself inside the dedicated
venv ``.venv-bench`` at the repository root, creating it on first run. It installs its own
requirements there (``aiodiskdb==0.2.3``, ``aiosqlite``) and aiostore editable, and marks that
with its own stamp file (``.bench-segmentdb-installed-*``), so the scripts share the venv
without reinstalling each other's packages. The venv, the measurement loop and the report
plumbing are shared with the other benchmarks: see ``_harness.py``.

The peer is ``aiodiskdb`` 0.2.3 (the library SegmentDB's API is modelled on): ``AioDiskDB(path,
create_if_not_exists=True)``, running as a task (``create_task(db.run())``, ready once
``db.running``), ``await db.add(bytes)`` -> ``ItemLocation``, ``await db.read(loc)``,
``await db.flush()``, ``await db.stop()``. Read from its source (0.2.3), what matters here:

* ``add`` appends to its buffer with ``buffer.data += data`` (a ``bytes`` copy of the whole
  buffer per add: quadratic in the buffer size), and never yields. Its flusher is its ``run()``
  task, which polls every 5 ms; so a producer that never yields grows the buffer up to
  ``max_buffer_size`` (16 MiB) without a flush, with the loop blocked all along. Its back-to-back
  contender is therefore capped (see ``ADB_ADDS``); the other adds ``sleep(0)`` after each add.
* a flush writes a checkpoint file and reads the whole current data file (``_hash_file``) on the
  event loop, then appends the buffer in its thread pool with ``open(..., "ab").write()``: it
  never fsyncs anything (so it has no durable mode: durable adds are compared with SQLite).
* ``read`` of flushed data opens the file, reads the header, seeks and reads, in its pool.
* ``stop()`` polls every 100 ms (outside the timed regions here).

Every scenario runs ``--runs`` times (default 5: the machines are shared, and a run of these
scenarios takes milliseconds), contenders interleaved round by round (the order rotates) so that
disk and CPU noise hit all of them alike; the table shows medians. A heartbeat
task (``sleep(0.001)`` in a loop) runs during every measurement and records the longest gap:
the event-loop stall. Opening, closing and populating happen outside the timed regions. Files go
to a fresh directory under the system temp directory (``--dir`` to choose another), removed at
the end. Results are printed and written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import logging
import os
import random
import shutil
import sqlite3
import statistics
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import _harness
from _harness import Contender, Prepare, Row, Scenario, Trial

NAME = "segmentdb"  # .venv-bench/.bench-segmentdb-installed-*, $TMPDIR/aiostore-bench-segmentdb
WORK = _harness.work_dir(NAME)
SECTION = "## SegmentDB (`make bench-segmentdb` → benchmarks/bench_segmentdb.py)"
COMMAND = "make bench-segmentdb  # or: python benchmarks/bench_segmentdb.py"
REQUIREMENTS = (
    "aiodiskdb==0.2.3",
    "aiosqlite==0.22.1",
)

RUNS = 5
KiB = 1024
ITEM = KiB  # the small item
ADDS = 20_000  # scenario 1: buffered adds per run
ADB_ADDS = 2_000  # aiodiskdb back-to-back: ~1 s here; 20,000 would take minutes (quadratic)
BIG = 500 * KiB  # scenario 2: the large item
BIG_ADDS = 400  # 400 x 500 KiB = 204.8 MB
DD_CHUNK = 1 << 20
READ_ITEMS = 20_000  # scenario 3: items on disk
READS = 20_000  # random reads per run
READERS = 32
BATCH = 100  # read_many batch
DURABLE_TASKS = 64  # scenario 4
DURABLE_PER_TASK = 100  # 6,400 durable adds per run
FSYNC_EACH = 500  # the fsync-per-item baseline (rate extrapolated)
SEGMENT_SIZE = 256 * KiB  # scenario 5
MANY_SEGMENTS = 200
OPENS = 11  # opens per run; the run's value is their median
TX_ITEMS = 10_000  # scenario 6: one transaction of 10,000 x 1 KiB
TRIM_SEGMENT = 128 << 20  # scenario 7: ltrim of the first half of a full 128 MiB segment
ADB_TRIM_ITEM = 1 << 20  # aiodiskdb's 128 MiB file is built from 1 MiB items (faster setup)

# The targets.
ADD_RATE_TARGET = 300_000  # buffered 1 KiB adds/s
ADD_PEER_TARGET = 10.0  # x aiodiskdb, also when aiodiskdb yields after each add
READ_RATE_TARGET = 100_000  # random cached 1 KiB reads/s, one reader
DURABLE_RATE_TARGET = 50_000  # durable 1 KiB adds/s, 64 tasks
BIG_TARGET = 0.8  # 500 KiB add throughput >= 0.8 x the dd-style baseline
STALL_TARGET_MS = 10.0  # max loop stall for aiostore, every scenario
OPEN_TARGET = 2.0  # open time with 200 sealed segments <= 2 x with 1
TX_RATE_TARGET = 100_000  # items/s of a 10,000-item transaction (add + commit)
LTRIM_TARGET_MS = 50.0  # ltrim of half a 128 MiB segment

SCENARIOS = ("adds", "big", "reads", "durable", "open", "tx", "ltrim")

_LEN = struct.Struct("<I")


# --------------------------------------------------------------------------------------------
# the peers
# --------------------------------------------------------------------------------------------
def _aiodiskdb() -> Any:
    """The aiodiskdb module (untyped, installed only in the bench venv)."""
    return importlib.import_module("aiodiskdb")


async def adb_open(path: Path, **options: Any) -> tuple[Any, asyncio.Task[Any]]:
    """An ``AioDiskDB`` on ``path``, its ``run()`` task started, once it reports ``running``."""
    db = _aiodiskdb().AioDiskDB(str(path), create_if_not_exists=True, **options)
    task = asyncio.create_task(db.run())
    while not db.running:
        if task.done():
            task.result()
            raise RuntimeError("aiodiskdb stopped while starting")
        await asyncio.sleep(0)
    return db, task


async def adb_close(db: Any, task: asyncio.Task[Any]) -> None:
    """Stop an ``AioDiskDB`` (it flushes its buffer) and wait for its task."""
    await db.stop()
    await task


def segment_file(directory: Path, index: int) -> Path:
    """The path of SegmentDB segment ``index`` (default prefix and padding)."""
    return directory / f"data{index:05d}.dat"


def make_items(n: int, size: int, seed: int) -> list[bytes]:
    """``n`` distinct random items of ``size`` bytes."""
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(n)]


@dataclass
class Data:
    """What the scenarios share: the items, and what their setups built."""

    items: list[bytes]  # 256 distinct 1 KiB items, cycled
    blob: bytes  # BIG_ADDS * BIG random bytes, contiguous (the dd-style baseline writes it)
    bigs: list[bytes]  # the same bytes as BIG_ADDS distinct 500 KiB items
    work: Path
    order: list[int] = field(default_factory=list)  # random read order (item numbers)
    aio_locs: list[Any] = field(default_factory=list)  # aiostore.ItemLocation
    adb_locs: list[Any] = field(default_factory=list)  # aiodiskdb.ItemLocation

    @property
    def reads_aio(self) -> Path:
        """The populated SegmentDB of scenario 3."""
        return self.work / "setup-reads-aiostore"

    @property
    def reads_adb(self) -> Path:
        """The populated aiodiskdb of scenario 3."""
        return self.work / "setup-reads-aiodiskdb"

    def open_dir(self, who: str, segments: int) -> Path:
        """The databases of scenario 5: ``who`` is "aiostore" or "aiodiskdb"."""
        return self.work / f"setup-open-{who}-{segments}"

    def trim_dir(self, who: str) -> Path:
        """The template databases of scenario 7 (copied for each run)."""
        return self.work / f"setup-ltrim-{who}"


# --------------------------------------------------------------------------------------------
# scenario 1: buffered 1 KiB adds
# --------------------------------------------------------------------------------------------
def aio_adds(data: Data, n: int, yield_each: bool) -> Prepare:
    """``n`` back-to-back ``await db.add(1 KiB)`` on a fresh SegmentDB (default options)."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        db = aiostore.SegmentDB(d / "db")
        await db.start()
        items = data.items

        async def run() -> None:
            add = db.add
            if yield_each:
                for i in range(n):
                    await add(items[i & 255])
                    await asyncio.sleep(0)
            else:
                for i in range(n):
                    await add(items[i & 255])

        return Trial(run, db.stop)
    return prepare


def adb_adds(data: Data, n: int, yield_each: bool) -> Prepare:
    """``n`` ``await db.add(1 KiB)`` on a fresh aiodiskdb (default options)."""
    async def prepare(d: Path) -> Trial:
        db, task = await adb_open(d / "db")
        items = data.items

        async def run() -> None:
            add = db.add
            if yield_each:
                for i in range(n):
                    await add(items[i & 255])
                    await asyncio.sleep(0)
            else:
                for i in range(n):
                    await add(items[i & 255])

        return Trial(run, lambda: adb_close(db, task))
    return prepare


def _open_append(path: Path) -> BinaryIO:
    """A buffered binary file for appending (closed by its trial)."""
    return open(path, "ab")


def plain_appends(data: Data, n: int) -> Prepare:
    """Plain Python: a length prefix and the item, ``f.write`` to a buffered file, on the loop
    (no checksum, no fsync; the flush of the last buffer is not timed)."""
    async def prepare(d: Path) -> Trial:
        f = await asyncio.to_thread(_open_append, d / "log")
        items = data.items

        async def run() -> None:
            write, pack = f.write, _LEN.pack
            for i in range(n):
                item = items[i & 255]
                write(pack(len(item)))
                write(item)

        async def close() -> None:
            await asyncio.to_thread(f.close)

        return Trial(run, close)
    return prepare


# --------------------------------------------------------------------------------------------
# scenario 2: 500 KiB adds
# --------------------------------------------------------------------------------------------
def aio_big(data: Data) -> Prepare:
    """``BIG_ADDS`` x ``await db.add(500 KiB)``, then ``await db.flush()`` (durable)."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        db = aiostore.SegmentDB(d / "db")
        await db.start()

        async def run() -> None:
            for item in data.bigs:
                await db.add(item)
            await db.flush()

        return Trial(run, db.stop)
    return prepare


def adb_big(data: Data) -> Prepare:
    """``BIG_ADDS`` x ``await db.add(500 KiB)``, then ``await db.flush()`` (it never fsyncs)."""
    async def prepare(d: Path) -> Trial:
        db, task = await adb_open(d / "db")

        async def run() -> None:
            for item in data.bigs:
                await db.add(item)
            await db.flush()

        return Trial(run, lambda: adb_close(db, task))
    return prepare


def dd_write(path: Path, data: bytes) -> None:
    """``dd``-style: ``data`` in ``os.write`` calls of ``DD_CHUNK`` (1 MiB) bytes, then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        at = 0
        while at < len(view):
            at += os.write(fd, view[at:at + DD_CHUNK])
        os.fsync(fd)
    finally:
        os.close(fd)


def dd_baseline(data: Data) -> Prepare:
    """The same bytes as ``aio_big`` in 1 MiB ``os.write`` calls + fsync, one worker thread."""
    async def prepare(d: Path) -> Trial:
        async def run() -> None:
            await asyncio.to_thread(dd_write, d / "dd", data.blob)
        return Trial(run)
    return prepare


# --------------------------------------------------------------------------------------------
# scenario 3: random reads of flushed 1 KiB items
# --------------------------------------------------------------------------------------------
async def setup_reads(data: Data) -> None:
    """Write ``READ_ITEMS`` items into a SegmentDB and an aiodiskdb, flushed; warm the cache."""
    import aiostore

    async with aiostore.SegmentDB(data.reads_aio) as db:
        data.aio_locs = [await db.add(data.items[i & 255]) for i in range(READ_ITEMS)]
        await db.flush()
    db2, task = await adb_open(data.reads_adb)
    locs: list[Any] = []
    for start in range(0, READ_ITEMS, 100):  # small flushes: its adds copy the whole buffer
        for i in range(start, min(start + 100, READ_ITEMS)):
            locs.append(await db2.add(data.items[i & 255]))
        await db2.flush()
    await adb_close(db2, task)
    data.adb_locs = locs
    rng = random.Random(3)
    data.order = [rng.randrange(READ_ITEMS) for _ in range(READS)]

    def warm() -> None:  # the page cache holds both databases
        for directory in (data.reads_aio, data.reads_adb):
            for path in directory.iterdir():
                if path.is_file():
                    path.read_bytes()
    await asyncio.to_thread(warm)


def _split(order: list[int], parts: int) -> list[list[int]]:
    return [order[k::parts] for k in range(parts)]


def aio_reads(data: Data, readers: int) -> Prepare:
    """``READS`` random ``await db.read(loc)`` from ``readers`` tasks, on the populated DB."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        db = aiostore.SegmentDB(data.reads_aio)
        await db.start()
        locs = data.aio_locs
        for i in data.order[:20]:  # check, and open the read descriptors
            assert await db.read(locs[i]) == data.items[i & 255]

        async def reader(part: list[int]) -> None:
            read = db.read
            for i in part:
                await read(locs[i])

        async def run() -> None:
            if readers == 1:
                await reader(data.order)
            else:
                await asyncio.gather(*(reader(p) for p in _split(data.order, readers)))

        return Trial(run, db.stop)
    return prepare


def aio_read_many(data: Data) -> Prepare:
    """``READS`` random reads as ``await db.read_many(batch of BATCH)``, one task."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        db = aiostore.SegmentDB(data.reads_aio)
        await db.start()
        locs = data.aio_locs
        batches = [[locs[i] for i in data.order[k:k + BATCH]]
                   for k in range(0, len(data.order), BATCH)]
        got = await db.read_many(batches[0])
        assert got == [data.items[i & 255] for i in data.order[:BATCH]]

        async def run() -> None:
            for batch in batches:
                await db.read_many(batch)

        return Trial(run, db.stop)
    return prepare


def adb_reads(data: Data, readers: int) -> Prepare:
    """``READS`` random ``await db.read(loc)`` from ``readers`` tasks, on the populated
    aiodiskdb."""
    async def prepare(d: Path) -> Trial:
        db, task = await adb_open(data.reads_adb)
        locs = data.adb_locs
        for i in data.order[:20]:
            assert await db.read(locs[i]) == data.items[i & 255]

        async def reader(part: list[int]) -> None:
            read = db.read
            for i in part:
                await read(locs[i])

        async def run() -> None:
            if readers == 1:
                await reader(data.order)
            else:
                await asyncio.gather(*(reader(p) for p in _split(data.order, readers)))

        return Trial(run, lambda: adb_close(db, task))
    return prepare


def pread_baseline(data: Data) -> Prepare:
    """Plain ``os.pread`` of each record (header + item) from the SegmentDB file, on the loop:
    no checks, no checksum."""
    from aiostore.segments.format import RECORD_HEADER_SIZE

    async def prepare(d: Path) -> Trial:
        fds: dict[int, int] = {}
        for index in {loc.index for loc in data.aio_locs}:
            fds[index] = os.open(segment_file(data.reads_aio, index), os.O_RDONLY | os.O_CLOEXEC)
        spots = [(fds[loc.index], RECORD_HEADER_SIZE + loc.size, loc.position)
                 for loc in data.aio_locs]

        async def run() -> None:
            pread = os.pread
            for i in data.order:
                fd, n, at = spots[i]
                pread(fd, n, at)
            return None

        async def close() -> None:
            for fd in fds.values():
                os.close(fd)

        return Trial(run, close)
    return prepare


# --------------------------------------------------------------------------------------------
# scenario 4: durable 1 KiB adds from 64 tasks
# --------------------------------------------------------------------------------------------
def aio_durable(data: Data) -> Prepare:
    """``DURABLE_TASKS`` tasks, each ``DURABLE_PER_TASK`` x ``await db.add(1 KiB,
    durable=True)`` (group commit)."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        db = aiostore.SegmentDB(d / "db")
        await db.start()

        async def task(k: int) -> None:
            for i in range(DURABLE_PER_TASK):
                await db.add(data.items[(k + i) & 255], durable=True)

        async def run() -> None:
            await asyncio.gather(*(task(k) for k in range(DURABLE_TASKS)))

        return Trial(run, db.stop)
    return prepare


def sqlite_durable(data: Data) -> Prepare:
    """SQLite through aiosqlite (one shared connection), WAL, ``synchronous=FULL``: the same
    tasks, each inserting one row and committing, ``DURABLE_PER_TASK`` times."""
    aiosqlite: Any = importlib.import_module("aiosqlite")

    async def prepare(d: Path) -> Trial:
        conn = await aiosqlite.connect(str(d / "db.sqlite"))
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        await conn.commit()

        async def task(k: int) -> None:
            for i in range(DURABLE_PER_TASK):
                await conn.execute("INSERT INTO items (data) VALUES (?)",
                                   (data.items[(k + i) & 255],))
                await conn.commit()

        async def run() -> None:
            await asyncio.gather(*(task(k) for k in range(DURABLE_TASKS)))
            return None

        async def close() -> None:
            await conn.close()

        return Trial(run, close)
    return prepare


def fsync_each(path: Path, items: list[bytes], n: int) -> None:
    """Append ``n`` items, ``os.write`` + ``os.fdatasync`` each."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        for i in range(n):
            os.write(fd, items[i & 255])
            os.fdatasync(fd)
    finally:
        os.close(fd)


def fsync_groups(path: Path, items: list[bytes], groups: int, size: int) -> None:
    """Append ``groups`` groups of ``size`` items, one ``os.write`` + ``os.fdatasync`` each."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        for g in range(groups):
            os.write(fd, b"".join(items[(g * size + i) & 255] for i in range(size)))
            os.fdatasync(fd)
    finally:
        os.close(fd)


def fsync_each_baseline(data: Data) -> Prepare:
    """Plain Python, one worker thread: ``FSYNC_EACH`` x (write 1 KiB + fdatasync)."""
    async def prepare(d: Path) -> Trial:
        async def run() -> None:
            await asyncio.to_thread(fsync_each, d / "log", data.items, FSYNC_EACH)
        return Trial(run)
    return prepare


def group_baseline(data: Data) -> Prepare:
    """Plain Python, one worker thread: the ideal group commit of 64 writers, i.e.
    ``DURABLE_PER_TASK`` x (write 64 x 1 KiB + fdatasync)."""
    async def prepare(d: Path) -> Trial:
        async def run() -> None:
            await asyncio.to_thread(fsync_groups, d / "log", data.items, DURABLE_PER_TASK,
                                    DURABLE_TASKS)
        return Trial(run)
    return prepare


# --------------------------------------------------------------------------------------------
# scenario 5: open time
# --------------------------------------------------------------------------------------------
async def setup_open(data: Data) -> None:
    """SegmentDBs and aiodiskdbs of 256 KiB files: 1 and ``MANY_SEGMENTS`` sealed + the last."""
    import aiostore

    for sealed in (1, MANY_SEGMENTS):
        async with aiostore.SegmentDB(data.open_dir("aiostore", sealed),
                                      max_file_size=SEGMENT_SIZE) as db:
            i = 0
            while (await db.add(data.items[i & 255])).index < sealed:
                i += 1
        assert len(list(data.open_dir("aiostore", sealed).glob("*.dat"))) == sealed + 1
        # aiodiskdb: one transaction (its adds would copy the whole buffer each time); it
        # starts a new file when the next item does not fit
        mib = SEGMENT_SIZE / (1 << 20)
        adb, task = await adb_open(data.open_dir("aiodiskdb", sealed), max_file_size=mib,
                                   max_buffer_size=mib)
        tx = await adb.transaction()
        for k in range(sealed * (SEGMENT_SIZE // ITEM) + 1):
            tx.add(data.items[k & 255])
        await tx.commit()
        await adb_close(adb, task)
        assert len(list(data.open_dir("aiodiskdb", sealed).glob("*.dat"))) == sealed + 1


def aio_open(data: Data, sealed: int) -> Prepare:
    """``OPENS`` x ``await db.start()`` (timed; the median is the run's value) and ``stop()``."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        async def run() -> float:
            times = []
            for _ in range(OPENS):
                db = aiostore.SegmentDB(data.open_dir("aiostore", sealed),
                                        max_file_size=SEGMENT_SIZE)
                t0 = time.perf_counter()
                await db.start()
                times.append(time.perf_counter() - t0)
                await db.stop()
            return statistics.median(times)
        return Trial(run)
    return prepare


def adb_open_time(data: Data, sealed: int) -> Prepare:
    """``OPENS`` x (``AioDiskDB(...)``, ``create_task(db.run())``, until ``db.running``; timed)
    and ``stop()``."""
    mib = SEGMENT_SIZE / (1 << 20)

    async def prepare(d: Path) -> Trial:
        async def run() -> float:
            times = []
            for _ in range(OPENS):
                t0 = time.perf_counter()
                db, task = await adb_open(data.open_dir("aiodiskdb", sealed), max_file_size=mib,
                                          max_buffer_size=mib)
                times.append(time.perf_counter() - t0)
                await adb_close(db, task)
            return statistics.median(times)
        return Trial(run)
    return prepare


# --------------------------------------------------------------------------------------------
# scenario 6: one 10,000 x 1 KiB transaction
# --------------------------------------------------------------------------------------------
def aio_tx(data: Data) -> Prepare:
    """``async with db.transaction() as tx:`` ``TX_ITEMS`` x ``tx.add(1 KiB)`` (commit on exit:
    durable), on a fresh SegmentDB."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        db = aiostore.SegmentDB(d / "db")
        await db.start()
        items = data.items

        async def run() -> None:
            async with db.transaction() as tx:
                for i in range(TX_ITEMS):
                    tx.add(items[i & 255])
            assert len(tx.locations) == TX_ITEMS

        return Trial(run, db.stop)
    return prepare


def adb_tx(data: Data) -> Prepare:
    """``tx = await db.transaction()``, ``TX_ITEMS`` x ``tx.add(1 KiB)``, ``await tx.commit()``
    on a fresh aiodiskdb (its commit never fsyncs)."""
    async def prepare(d: Path) -> Trial:
        db, task = await adb_open(d / "db")
        items = data.items

        async def run() -> None:
            tx = await db.transaction()
            for i in range(TX_ITEMS):
                tx.add(items[i & 255])
            await tx.commit()

        return Trial(run, lambda: adb_close(db, task))
    return prepare


# --------------------------------------------------------------------------------------------
# scenario 7: ltrim of the first half of a 128 MiB segment
# --------------------------------------------------------------------------------------------
async def setup_ltrim(data: Data) -> None:
    """Template databases with one full 128 MiB segment/file (plus an empty next one)."""
    import aiostore

    async with aiostore.SegmentDB(data.trim_dir("aiostore")) as db:
        i = 0
        while (await db.add(data.items[i & 255])).index == 0:
            i += 1
    adb, task = await adb_open(data.trim_dir("aiodiskdb"), max_file_size=TRIM_SEGMENT >> 20)
    # 127 MiB: aiodiskdb cannot reopen a file filled exactly to its limit (its run loop then
    # flushes before it is running, and fails)
    for _ in range(TRIM_SEGMENT // ADB_TRIM_ITEM - 1):
        await adb.add(data.blob[:ADB_TRIM_ITEM])
        await adb.flush()
    await adb_close(adb, task)


async def _copy_template(src: Path, dst: Path) -> None:
    """Copy a template database and write it back (untimed: the trim must not pay for it)."""
    await asyncio.to_thread(shutil.copytree, src, dst)
    await asyncio.to_thread(os.sync)


def aio_ltrim(data: Data) -> Prepare:
    """``await db.ltrim(0, p)`` where ``p`` is the item nearest the middle of the full 128 MiB
    segment 0 (hole punching; the trim is logged durably first)."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        await _copy_template(data.trim_dir("aiostore"), d / "db")
        db = aiostore.SegmentDB(d / "db")
        await db.start()
        db.enable_overwrite()
        middle = None
        async for loc, _ in db.scan():
            if loc.position >= TRIM_SEGMENT // 2:
                middle = loc
                break
        assert middle is not None and middle.index == 0

        async def run() -> None:
            await db.ltrim(0, middle.position)

        return Trial(run, db.stop)
    return prepare


def adb_ltrim(data: Data) -> Prepare:
    """``await db.ltrim(0, 64 MiB)`` on aiodiskdb's full 128 MiB file (it rewrites the file)."""
    async def prepare(d: Path) -> Trial:
        await _copy_template(data.trim_dir("aiodiskdb"), d / "db")
        db, task = await adb_open(d / "db", overwrite=True, max_file_size=TRIM_SEGMENT >> 20)

        async def run() -> None:
            await db.ltrim(0, TRIM_SEGMENT // 2)

        return Trial(run, lambda: adb_close(db, task))
    return prepare


# --------------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """Everything to run: the contenders, the scenarios, the table rows."""

    contenders: dict[str, Contender]
    scenarios: list[Scenario]
    rows: list[Row]
    data: Data
    adds: int


def build_plan(adds: int) -> Plan:
    """The contenders, scenarios and table layout."""
    items = make_items(256, ITEM, seed=1)
    blob = random.Random(2).randbytes(BIG_ADDS * BIG)
    bigs = [blob[k * BIG:(k + 1) * BIG] for k in range(BIG_ADDS)]
    data = Data(items, blob, bigs, WORK)
    adb_adds_n = min(ADB_ADDS, adds)
    c: dict[str, Contender] = {}

    def add(key: str, label: str, scenario: str, prepare: Prepare, count: int,
            unit: str) -> None:
        c[key] = Contender(key, label, scenario, prepare, count, unit)

    add("a_add", "aiostore add, back-to-back", "adds", aio_adds(data, adds, False), adds,
        "items/s")
    add("a_add_y", "aiostore add + sleep(0)", "adds", aio_adds(data, adds, True), adds,
        "items/s")
    add("d_add", f"aiodiskdb add, back-to-back ({adb_adds_n:,} adds)", "adds",
        adb_adds(data, adb_adds_n, False), adb_adds_n, "items/s")
    add("d_add_y", "aiodiskdb add + sleep(0)", "adds", adb_adds(data, adds, True), adds,
        "items/s")
    add("p_add", "plain Python f.write (length + item)", "adds", plain_appends(data, adds),
        adds, "items/s")

    big_bytes = BIG_ADDS * BIG
    add("a_big", "aiostore add + flush()", "big", aio_big(data), big_bytes, "MB/s")
    add("d_big", "aiodiskdb add + flush() (no fsync)", "big", adb_big(data), big_bytes, "MB/s")
    add("p_dd", "dd-style os.write 1 MiB + fsync", "big", dd_baseline(data), big_bytes, "MB/s")

    add("a_read", "aiostore read, 1 reader", "reads", aio_reads(data, 1), READS, "reads/s")
    add("a_read32", f"aiostore read, {READERS} readers", "reads", aio_reads(data, READERS),
        READS, "reads/s")
    add("a_many", f"aiostore read_many({BATCH})", "reads", aio_read_many(data), READS,
        "reads/s")
    add("d_read", "aiodiskdb read, 1 reader", "reads", adb_reads(data, 1), READS, "reads/s")
    add("d_read32", f"aiodiskdb read, {READERS} readers", "reads", adb_reads(data, READERS),
        READS, "reads/s")
    add("p_pread", "plain os.pread on the loop", "reads", pread_baseline(data), READS,
        "reads/s")

    n_durable = DURABLE_TASKS * DURABLE_PER_TASK
    add("a_dur", f"aiostore add(durable=True), {DURABLE_TASKS} tasks", "durable",
        aio_durable(data), n_durable, "items/s")
    add("s_dur", f"aiosqlite WAL synchronous=FULL, {DURABLE_TASKS} tasks", "durable",
        sqlite_durable(data), n_durable, "items/s")
    add("p_fsync", f"write + fdatasync per item ({FSYNC_EACH} items)", "durable",
        fsync_each_baseline(data), FSYNC_EACH, "items/s")
    add("p_group", f"write {DURABLE_TASKS} items + fdatasync", "durable", group_baseline(data),
        n_durable, "items/s")

    add("a_open1", "aiostore start(), 1 sealed segment", "open", aio_open(data, 1), 0, "ms")
    add("a_open200", f"aiostore start(), {MANY_SEGMENTS} sealed segments", "open",
        aio_open(data, MANY_SEGMENTS), 0, "ms")
    add("d_open1", "aiodiskdb run() until running, 1 full file", "open",
        adb_open_time(data, 1), 0, "ms")
    add("d_open200", f"aiodiskdb run() until running, {MANY_SEGMENTS} full files", "open",
        adb_open_time(data, MANY_SEGMENTS), 0, "ms")

    add("a_tx", f"aiostore transaction, {TX_ITEMS:,} x tx.add + commit", "tx", aio_tx(data),
        TX_ITEMS, "items/s")
    add("d_tx", f"aiodiskdb transaction, {TX_ITEMS:,} x tx.add + commit (no fsync)", "tx",
        adb_tx(data), TX_ITEMS, "items/s")
    add("a_ltrim", "aiostore ltrim, half of a 128 MiB segment", "ltrim", aio_ltrim(data), 0,
        "ms")
    add("d_ltrim", "aiodiskdb ltrim, half of a 128 MiB file", "ltrim", adb_ltrim(data), 0,
        "ms")

    s_add = f"{adds:,} x 1 KiB add, back-to-back"
    s_add_y = f"{adds:,} x 1 KiB add, sleep(0) after each"
    s_big = f"{BIG_ADDS} x 500 KiB add + flush()"
    s_read = f"{READS:,} random cached 1 KiB reads, 1 reader"
    s_read32 = f"{READS:,} random cached 1 KiB reads, {READERS} readers"
    s_many = f"{READS:,} random cached 1 KiB reads, read_many({BATCH})"
    s_dur = f"{n_durable:,} durable 1 KiB adds, {DURABLE_TASKS} tasks"
    s_open1 = "open (256 KiB segments), 1 sealed"
    s_open200 = f"open (256 KiB segments), {MANY_SEGMENTS} sealed"
    rows = [
        Row(s_add, "a_add", "d_add", f"aiodiskdb, back-to-back (capped at {adb_adds_n:,} adds; "
            "loop blocked throughout)"),
        Row(s_add, "a_add", "d_add_y", "aiodiskdb, sleep(0) after each add"),
        Row(s_add, "a_add", "p_add", "plain Python: length + item f.write, buffered file"),
        Row(s_add_y, "a_add_y", "d_add_y", "aiodiskdb, sleep(0) after each add"),
        Row(s_big, "a_big", "p_dd", "dd-style: os.write 1 MiB chunks + fsync (target)"),
        Row(s_big, "a_big", "d_big", "aiodiskdb add + flush() (never fsyncs)"),
        Row(s_read, "a_read", "d_read", "aiodiskdb"),
        Row(s_read, "a_read", "p_pread", "plain os.pread on the loop (no checks)"),
        Row(s_read32, "a_read32", "d_read32", f"aiodiskdb, {READERS} readers"),
        Row(s_read32, "a_read32", "p_pread", "plain os.pread on the loop, 1 reader"),
        Row(s_many, "a_many", "p_pread", "plain os.pread on the loop, 1 reader"),
        Row(s_dur, "a_dur", "s_dur", "SQLite (aiosqlite, WAL, synchronous=FULL, one "
            "connection), insert + commit"),
        Row(s_dur, "a_dur", "p_group", f"plain Python, one thread: write {DURABLE_TASKS} "
            "items + fdatasync (ideal group commit)"),
        Row(s_dur, "a_dur", "p_fsync", f"plain Python: write + fdatasync per item "
            f"({FSYNC_EACH} items)"),
        Row(s_open1, "a_open1", "d_open1", "aiodiskdb, 1 full file + the last"),
        Row(s_open200, "a_open200", "d_open200",
            f"aiodiskdb, {MANY_SEGMENTS} full files + the last"),
        Row(s_open200, "a_open200", "a_open1", "aiostore, 1 sealed segment (target)"),
        Row(f"one {TX_ITEMS:,} x 1 KiB transaction (add + durable commit)", "a_tx", "d_tx",
            "aiodiskdb transaction (never fsyncs)"),
        Row("ltrim of the first half of a full 128 MiB segment", "a_ltrim", "d_ltrim",
            "aiodiskdb ltrim (copies the rest to a new file)"),
    ]
    scenarios = _harness.group_scenarios(c, {"reads": lambda: setup_reads(data),
                                             "open": lambda: setup_open(data),
                                             "ltrim": lambda: setup_ltrim(data)})
    assert tuple(sc.key for sc in scenarios) == SCENARIOS
    return Plan(c, scenarios, rows, data, adds)


async def warm_up(plan: Plan) -> None:
    """Import, thread-pool and first-call costs, paid before anything is timed."""
    import aiostore

    aiosqlite: Any = importlib.import_module("aiosqlite")
    d = WORK / "warmup"
    d.mkdir(parents=True)
    items = plan.data.items
    async with aiostore.SegmentDB(d / "aiostore") as db:
        locs = [await db.add(items[i & 255]) for i in range(2000)]
        await asyncio.gather(*(db.add(items[i], durable=True) for i in range(64)))
        await db.read_many(locs[:100])
        for loc in locs[:100]:
            await db.read(loc)
        async with db.transaction() as atx:
            for i in range(100):
                atx.add(items[i])
    adb, task = await adb_open(d / "aiodiskdb")
    locs = [await adb.add(items[i & 255]) for i in range(200)]
    await adb.flush()
    for loc in locs[:100]:
        await adb.read(loc)
    dtx = await adb.transaction()
    for i in range(100):
        dtx.add(items[i])
    await dtx.commit()
    await adb_close(adb, task)
    async with aiosqlite.connect(str(d / "db.sqlite")) as conn:
        await conn.execute("CREATE TABLE t (x BLOB)")
        await conn.execute("INSERT INTO t VALUES (?)", (items[0],))
        await conn.commit()
    await asyncio.to_thread(fsync_each, d / "log", items, 20)
    # the first ~200 MB a process writes through the page cache are several times slower on
    # these VMs (first touch of guest memory): pay that here, not in the first 500 KiB run
    await asyncio.to_thread(dd_write, d / "dd", plan.data.blob)
    await asyncio.to_thread(dd_write, d / "dd2", plan.data.blob)
    await asyncio.to_thread(os.sync)
    await asyncio.to_thread(shutil.rmtree, d)


async def run_plan(plan: Plan, runs: int) -> None:
    """Every scenario: its setup, then ``runs`` rounds of each contender, order rotating."""
    await warm_up(plan)
    await _harness.run_scenarios(plan.scenarios, plan.contenders, runs, WORK)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def target_lines(plan: Plan) -> list[str]:
    """The issue's targets, each PASS or FAIL (SKIP when its scenario did not run)."""
    c = plan.contenders
    verdict, ratio = _harness.verdict, _harness.ratio

    def ran(*keys: str) -> bool:
        return all(c[k].runs for k in keys)

    lines: list[str] = []
    if ran("a_add"):
        rate = c["a_add"].value
        lines.append(f"{verdict(rate >= ADD_RATE_TARGET)}  buffered 1 KiB adds: {rate:,.0f}/s "
                     f"(target >= {ADD_RATE_TARGET:,}/s)")
    if ran("a_add", "d_add", "d_add_y"):
        vs_adb = ratio(c["a_add"], c["d_add"])
        vs_adb_y = ratio(c["a_add"], c["d_add_y"])
        lines.append(f"{verdict(min(vs_adb, vs_adb_y) >= ADD_PEER_TARGET)}  buffered 1 KiB adds "
                     f"vs aiodiskdb: {vs_adb:.1f}x back-to-back, {vs_adb_y:.1f}x when aiodiskdb "
                     f"yields after each add (target >= {ADD_PEER_TARGET:.0f}x both)")
    if ran("a_read"):
        rate = c["a_read"].value
        lines.append(f"{verdict(rate >= READ_RATE_TARGET)}  random cached 1 KiB reads, one "
                     f"reader: {rate:,.0f}/s (target >= {READ_RATE_TARGET:,}/s)")
    if ran("a_dur"):
        rate = c["a_dur"].value
        lines.append(f"{verdict(rate >= DURABLE_RATE_TARGET)}  durable group commit, "
                     f"{DURABLE_TASKS} tasks: {rate:,.0f} items/s "
                     f"(target >= {DURABLE_RATE_TARGET:,}/s)")
    if ran("a_big", "p_dd"):
        big = ratio(c["a_big"], c["p_dd"])
        lines.append(f"{verdict(big >= BIG_TARGET)}  500 KiB adds + flush: {big:.2f}x the "
                     f"dd-style baseline's throughput (target >= {BIG_TARGET}x)")
    ours = [v for v in c.values() if v.key.startswith("a_") and v.runs]
    if ours:
        worst = max(ours, key=lambda v: v.stall_ms)
        per_scenario = ", ".join(
            f"{sc.key} {max(c[k].stall_ms for k in sc.keys if k.startswith('a_')):.1f}"
            for sc in plan.scenarios)
        lines.append(f"{verdict(worst.stall_ms < STALL_TARGET_MS)}  max loop stall for aiostore: "
                     f"{worst.stall_ms:.1f} ms ({worst.label}); per scenario, ms: {per_scenario} "
                     f"(medians of runs; target < {STALL_TARGET_MS:.0f} ms in every one)")
    if ran("a_tx"):
        rate = c["a_tx"].value
        lines.append(f"{verdict(rate >= TX_RATE_TARGET and c['a_tx'].stall_ms < STALL_TARGET_MS)}"
                     f"  {TX_ITEMS:,}-item transaction: {rate:,.0f} items/s, loop stall "
                     f"{c['a_tx'].stall_ms:.1f} ms (target >= {TX_RATE_TARGET:,}/s and "
                     f"< {STALL_TARGET_MS:.0f} ms)")
    if ran("a_ltrim"):
        ms = c["a_ltrim"].value
        lines.append(f"{verdict(ms < LTRIM_TARGET_MS)}  ltrim of half a 128 MiB segment: "
                     f"{ms:.1f} ms (target < {LTRIM_TARGET_MS:.0f} ms)")
    if ran("a_open1", "a_open200"):
        opening = ratio(c["a_open200"], c["a_open1"])
        lines.append(f"{verdict(opening <= OPEN_TARGET)}  open time, {MANY_SEGMENTS} vs 1 sealed "
                     f"segments: {opening:.2f}x ({c['a_open200'].value:.2f} vs "
                     f"{c['a_open1'].value:.2f} ms) (target <= {OPEN_TARGET:.0f}x)")
    return lines


NOTES = """\
How to read it:

* Ratios are aiostore / peer: for rates (↑) higher is better; for times (↓) lower is better.
  Every value is the median of {runs} runs; the contenders of a scenario run interleaved, round by
  round (the disk is a shared virtual one; the individual runs are listed below). Loop stall: the
  longest gap seen by a heartbeat task doing `await asyncio.sleep(0.001)` in a loop (the sleep
  itself is 1 ms), median over the runs. Opening, closing (`stop()`, which flushes) and
  populating are outside the timed regions; after each run `sync` writes back dirty pages,
  untimed too, so aiodiskdb (which never fsyncs) is not charged for its write-back.
* Both databases use their default options (aiostore: flush every 1,000 items / 16 MiB / 1 s;
  aiodiskdb: 100 items / 16 MiB / 30 s, 128 MiB files), on the same disk, in fresh directories.
  Items are 256 distinct random 1 KiB values, cycled.
* Adds, back-to-back: `for ...: await db.add(item)`, the time until the last add returns
  (aiostore's flusher writes in its worker thread meanwhile; its `add` yields to the loop once
  every 1,000 adds, so the flusher can start). aiodiskdb's `add` copies
  its whole buffer (`buffer.data += data`) and never yields, so its flusher never runs and the
  loop is blocked throughout: it is capped at {adb_adds:,} adds (about 1 s here; the cost per add
  grows with the buffer, so its rate for {adds:,} would be lower still). "sleep(0) after each add"
  lets its 5 ms flusher run (and costs aiostore the same asyncio round trip).
* 500 KiB: {big_adds} distinct random items (204.8 MB in all, MB = 10^6 bytes; distinct so that
  they are not cache-hot), then `flush()`, which for aiostore returns once everything is
  fdatasynced; aiodiskdb's flush writes without any fsync. dd-style: the same bytes, contiguous
  in RAM, in 1 MiB `os.write` calls and one `fsync`, in one worker thread. Before the first
  scenario, 400 MB are written and synced, untimed: on these VMs the first few hundred MB a
  process writes through the page cache are several times slower.
* Reads: {read_items:,} items written and flushed once (outside the runs), the files read once to
  warm the page cache; each run reopens the database and reads {reads:,} random locations (the
  same sequence for all). aiostore serves page-cache hits on the loop (`preadv(RWF_NOWAIT)`) and
  checks the record's length and CRC32C: such a read never suspends, so a reader's loop is one
  long loop stall, and 32 readers run one after the other. aiodiskdb does an `open`/`seek`/`read`
  per item in its thread pool; `os.pread` reads the same records from aiostore's file, on the
  loop, without any check. `read_many` reads batches of {batch} locations.
* Durable: {tasks} tasks, each awaiting {per_task} adds one after another (aiostore: group commit,
  one `pwritev` + `fdatasync` per flush). aiodiskdb has no durable mode; SQLite through aiosqlite
  shares one connection (its single thread), so concurrent commits also group. The plain-Python
  lines are the physical bounds: an fdatasync per item, and one fdatasync per {tasks} items.
* Open: `start()` until it returns (aiostore) / `AioDiskDB(...)` + `run()` until `running`
  (aiodiskdb, which polls every 5 ms); page cache warm; median of {opens} opens per run. The
  databases have 256 KiB segments/files, full of 1 KiB items, plus a last one holding one item.
* Transaction: one transaction of {tx_items:,} x 1 KiB items on a fresh database, from the first
  `tx.add` until the commit returns (aiostore: durable, one flush and one fdatasync; aiodiskdb:
  its commit writes a checkpoint file and the data, without fsync).
* ltrim: a copy of a database whose segment 0 is a full 128 MiB file (aiostore: 1 KiB items;
  aiodiskdb: 127 x 1 MiB items, as it cannot reopen a file filled to its limit) is written back
  (`sync`) before the run; the timed call removes the first half (aiostore: at the first item at
  or after 64 MiB; aiodiskdb: at 64 MiB). aiostore logs the trim durably, punches a hole and
  fsyncs; aiodiskdb copies the second half into a new file and renames it over the old one (no
  fsync).
"""


def report(plan: Plan, runs: int, started: dt.datetime, elapsed: float, write_docs: bool,
           tree: tuple[str, str], load: str) -> None:
    """Print the table and targets; write the Markdown section into docs/benchmarks.md."""
    _harness.report(
        SECTION, COMMAND, plan.contenders, plan.rows, target_lines(plan), machine(),
        started=started, elapsed=elapsed, tree=tree, load=load, write_docs=write_docs,
        digits=4,
        notes=lambda: NOTES.format(
            runs=runs, adb_adds=min(ADB_ADDS, plan.adds), adds=plan.adds, big_adds=BIG_ADDS,
            read_items=READ_ITEMS, reads=READS, batch=BATCH, tasks=DURABLE_TASKS,
            per_task=DURABLE_PER_TASK, opens=OPENS, tx_items=TX_ITEMS))


def machine() -> str:
    """nproc, kernel, CPU, file system of the work directory, versions."""
    return _harness.machine(WORK, ("aiostore", "aiodiskdb", "aiosqlite", "crc32c"),
                            also=[f"SQLite {sqlite3.sqlite_version}"])


# --------------------------------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser) -> None:
    """This script's options (the defaults are the published configuration)."""
    parser.add_argument("--adds", type=int, default=ADDS,
                        help="buffered 1 KiB adds per run (scenario 1)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=None,
                        help="run only this scenario (repeatable; implies --no-docs)")


def main(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` if needed, then measure and report."""
    global WORK
    args = _harness.parse_args(argv, __doc__, RUNS, add_options)
    WORK = _harness.work_dir(NAME, args.dir)
    _harness.enter_bench_venv(__file__, NAME, REQUIREMENTS, argv)
    logging.getLogger("aiodiskdb").setLevel(logging.ERROR)  # "Aiodiskdb is stopped" warnings
    default = (args.runs, args.adds, args.only) == (RUNS, ADDS, None)
    write_docs = default and not args.no_docs
    started = dt.datetime.now(dt.timezone.utc)
    tree = _harness.aiostore_tree()
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    with _harness.fresh_dir(WORK):
        plan = build_plan(args.adds)
        if args.only:
            plan.scenarios = [sc for sc in plan.scenarios if sc.key in args.only]
        _harness.progress(f"{args.runs} runs; work directory {WORK}")
        asyncio.run(run_plan(plan, args.runs))
    load = f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    report(plan, args.runs, started, time.perf_counter() - t0, write_docs, tree, load)


if __name__ == "__main__":
    main(sys.argv[1:])

