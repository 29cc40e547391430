#!/usr/bin/env python3
"""SegmentDB: aiostore's append-only segment database against aiodiskdb and plain Python.

One command, ``make bench-segmentdb`` (or ``python benchmarks/bench_segmentdb.py`` from any
Python 3.10+): like ``bench_writers.py``, the script re-executes itself inside the dedicated
venv ``.venv-bench`` at the repository root, creating it on first run. It installs its own
requirements there (``aiodiskdb==0.2.3``, ``aiosqlite``) and aiostore editable, and marks that
with its own stamp file (``.bench-segmentdb-installed-*``), so the two scripts share the venv
without reinstalling each other's packages.

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
import contextlib
import datetime as dt
import hashlib
import importlib
import importlib.metadata
import logging
import os
import platform
import random
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"
WORK = Path(tempfile.gettempdir()) / "aiostore-bench-segmentdb"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## SegmentDB (`make bench-segmentdb` → benchmarks/bench_segmentdb.py)"
COMMAND = "make bench-segmentdb  # or: python benchmarks/bench_segmentdb.py"
REQUIREMENTS = (
    "aiodiskdb==0.2.3",
    "aiosqlite==0.22.1",
)
_STAMP_PREFIX = ".bench-segmentdb-installed-"  # bench_writers.py uses ".bench-installed-"
_REEXEC_MARK = "AIOSTORE_BENCH_SEGMENTDB_REEXEC"

RUNS = 5
KiB = 1024
MB = 1_000_000  # throughput is reported in MB/s (10^6 bytes)
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
HEARTBEAT_S = 0.001

# The targets.
ADD_RATE_TARGET = 300_000  # buffered 1 KiB adds/s
ADD_PEER_TARGET = 10.0  # x aiodiskdb, also when aiodiskdb yields after each add
READ_RATE_TARGET = 100_000  # random cached 1 KiB reads/s, one reader
DURABLE_RATE_TARGET = 50_000  # durable 1 KiB adds/s, 64 tasks
BIG_TARGET = 0.8  # 500 KiB add throughput >= 0.8 x the dd-style baseline
STALL_TARGET_MS = 10.0  # max loop stall for aiostore, every scenario
OPEN_TARGET = 2.0  # open time with 200 sealed segments <= 2 x with 1

SCENARIOS = ("adds", "big", "reads", "durable", "open")

_LEN = struct.Struct("<I")


# --------------------------------------------------------------------------------------------
# the dedicated venv (shared with bench_writers.py; each script keeps its own stamp)
# --------------------------------------------------------------------------------------------
def _venv_python() -> Path:
    return BENCH_VENV / "bin" / "python"


def _stamp() -> Path:
    """A marker whose name changes when the requirements or aiostore's pyproject change."""
    digest = hashlib.sha256()
    digest.update("\n".join(REQUIREMENTS).encode())
    digest.update((ROOT / "pyproject.toml").read_bytes())
    return BENCH_VENV / f"{_STAMP_PREFIX}{digest.hexdigest()[:16]}"


def _in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == BENCH_VENV.resolve()


def ensure_bench_venv() -> None:
    """Create ``.venv-bench`` if needed and install the peers and aiostore into it, once."""
    stamp = _stamp()
    if stamp.exists() and _venv_python().exists():
        return
    if not _venv_python().exists():
        print(f"creating {BENCH_VENV.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    print("installing the SegmentDB benchmark requirements (first run only) ...",
          file=sys.stderr, flush=True)
    pip = [str(_venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *REQUIREMENTS, "-e", str(ROOT)], check=True)
    for old in BENCH_VENV.glob(f"{_STAMP_PREFIX}*"):
        old.unlink()
    stamp.touch()


def reexec_in_bench_venv(argv: Sequence[str]) -> None:
    """Replace this process by the same script run with the bench venv's interpreter."""
    if os.environ.get(_REEXEC_MARK) == "1":
        raise SystemExit(f"re-executed, but sys.prefix is {sys.prefix}, not {BENCH_VENV}")
    python = str(_venv_python())
    os.environ[_REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, str(Path(__file__).resolve()), *argv])


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------
class Heartbeat:
    """A task that sleeps 1 ms in a loop and records the longest gap: the event-loop stall."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._since = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            self._since = time.perf_counter()
            await asyncio.sleep(HEARTBEAT_S)
            self.max_gap = max(self.max_gap, time.perf_counter() - self._since)

    async def start(self) -> None:
        """Start beating (returns once the first beat is under way)."""
        self._task = asyncio.create_task(self._beat())
        await asyncio.sleep(0)

    async def stop(self) -> float:
        """Stop; the longest gap in seconds, counting one still open (a loop still blocked)."""
        self.max_gap = max(self.max_gap, time.perf_counter() - self._since)
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.max_gap


async def _nothing() -> None:
    return None


@dataclass
class Trial:
    """One prepared run: ``run`` is timed (it may return its own timing, in seconds, to be used
    instead of its wall time), ``close`` is not."""

    run: Callable[[], Awaitable[float | None]]
    close: Callable[[], Awaitable[None]] = _nothing


Prepare = Callable[[Path], Awaitable[Trial]]


@dataclass
class Contender:
    """One thing that is timed: a label, a preparer of a trial in a fresh directory, and how
    many units (items, reads, bytes) one run handles."""

    key: str
    label: str
    scenario: str
    prepare: Prepare
    count: int  # units per run (0: the value is a time)
    unit: str  # "items/s", "reads/s", "MB/s" or "ms"
    runs: list[tuple[float, float]] = field(default_factory=list)  # (seconds, stall seconds)

    @property
    def seconds(self) -> float:
        """Median time of the runs."""
        return statistics.median(s for s, _ in self.runs)

    @property
    def value(self) -> float:
        """The reported value: a rate (higher is better) or milliseconds (lower is better)."""
        if self.unit == "ms":
            return self.seconds * 1e3
        if self.unit == "MB/s":
            return self.count / MB / self.seconds
        return self.count / self.seconds

    @property
    def is_rate(self) -> bool:
        """Whether higher is better."""
        return self.unit != "ms"

    def shown(self) -> str:
        """The value with its unit."""
        if self.unit == "ms":
            return f"{self.value:.2f} ms"
        if self.unit == "MB/s":
            return f"{self.value:,.0f} MB/s"
        return f"{self.value:,.0f} {self.unit}"

    @property
    def stall_ms(self) -> float:
        """Median (over runs) of each run's longest loop stall, in ms."""
        return statistics.median(g for _, g in self.runs) * 1e3

    @property
    def worst_stall_ms(self) -> float:
        """The longest loop stall of any run, in ms."""
        return max(g for _, g in self.runs) * 1e3


async def measure(contender: Contender, directory: Path) -> tuple[float, float]:
    """Run the contender once in ``directory``; (seconds, longest loop stall in seconds)."""
    await asyncio.to_thread(directory.mkdir, parents=True)
    trial = await contender.prepare(directory)
    try:
        heartbeat = Heartbeat()
        await heartbeat.start()
        t0 = time.perf_counter()
        own = await trial.run()
        seconds = time.perf_counter() - t0 if own is None else own
        stall = await heartbeat.stop()
    finally:
        await trial.close()
    # leave nothing for the next contender: write back dirty pages (aiodiskdb never fsyncs)
    # and remove the files, outside the timed region
    await asyncio.to_thread(os.sync)
    await asyncio.to_thread(shutil.rmtree, directory)
    return seconds, stall


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
# the plan
# --------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the result table: aiostore's contender against one peer contender."""

    scenario: str
    ours: str
    peer: str
    peer_label: str


@dataclass
class Scenario:
    """Contenders measured together (interleaved), after an optional one-time setup."""

    key: str
    keys: list[str]
    setup: Callable[[Data], Awaitable[None]] | None = None


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
    ]
    scenarios = [
        Scenario("adds", [k for k, v in c.items() if v.scenario == "adds"]),
        Scenario("big", [k for k, v in c.items() if v.scenario == "big"]),
        Scenario("reads", [k for k, v in c.items() if v.scenario == "reads"], setup_reads),
        Scenario("durable", [k for k, v in c.items() if v.scenario == "durable"]),
        Scenario("open", [k for k, v in c.items() if v.scenario == "open"], setup_open),
    ]
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
    adb, task = await adb_open(d / "aiodiskdb")
    locs = [await adb.add(items[i & 255]) for i in range(200)]
    await adb.flush()
    for loc in locs[:100]:
        await adb.read(loc)
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
    for scenario in plan.scenarios:
        if scenario.setup is not None:
            print(f"  setting up {scenario.key} ...", end="", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            await scenario.setup(plan.data)
            await asyncio.to_thread(os.sync)
            print(f" {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        keys = scenario.keys
        for r in range(runs):
            shift = r % len(keys)
            for key in keys[shift:] + keys[:shift]:
                contender = plan.contenders[key]
                print(f"  round {r + 1}/{runs}  {scenario.key:8} {contender.label} ...",
                      end="", file=sys.stderr, flush=True)
                result = await measure(contender, WORK / f"{key}-{r}")
                contender.runs.append(result)
                print(f" {result[0]:.3f} s, stall {result[1] * 1e3:.1f} ms", file=sys.stderr,
                      flush=True)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def _ratio(ours: Contender, peer: Contender) -> float:
    """aiostore / peer: of the rates (higher is better) or of the times (lower is better)."""
    return ours.value / peer.value


def table_lines(plan: Plan, markdown: bool) -> list[str]:
    """The result table (Markdown or aligned plain text)."""
    header = ["scenario", "aiostore", "peer", "ratio", "loop stall, ms (aiostore / peer)"]
    body: list[list[str]] = []
    for row in plan.rows:
        ours, peer = plan.contenders[row.ours], plan.contenders[row.peer]
        if not (ours.runs and peer.runs):
            continue
        body.append([
            row.scenario,
            ours.shown(),
            f"{peer.shown()} — {row.peer_label}",
            f"{_ratio(ours, peer):.2f}x {'↑' if ours.is_rate else '↓'}",
            f"{ours.stall_ms:.1f} / {peer.stall_ms:.1f}",
        ])
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "| " + " | ".join(["---", "---:", "---", "---:", "---:"]) + " |"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return lines
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i in (0, 2) else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*cells) for cells in body]
    return lines


def contender_lines(plan: Plan) -> list[str]:
    """Every contender's median, runs and stall (Markdown)."""
    lines = ["| contender | scenario | median | runs (s) | stall median / worst, ms |",
             "| --- | --- | ---: | --- | ---: |"]
    for c in plan.contenders.values():
        if not c.runs:
            continue
        runs = ", ".join(f"{s:.4f}" for s, _ in c.runs)
        lines.append(f"| {c.label} | {c.scenario} | {c.shown()} | {runs} | "
                     f"{c.stall_ms:.1f} / {c.worst_stall_ms:.1f} |")
    return lines


def target_lines(plan: Plan) -> list[str]:
    """The issue's targets, each PASS or FAIL (SKIP when its scenario did not run)."""
    c = plan.contenders

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    def ran(*keys: str) -> bool:
        return all(c[k].runs for k in keys)

    lines: list[str] = []
    if ran("a_add"):
        rate = c["a_add"].value
        lines.append(f"{verdict(rate >= ADD_RATE_TARGET)}  buffered 1 KiB adds: {rate:,.0f}/s "
                     f"(target >= {ADD_RATE_TARGET:,}/s)")
    if ran("a_add", "d_add", "d_add_y"):
        vs_adb = _ratio(c["a_add"], c["d_add"])
        vs_adb_y = _ratio(c["a_add"], c["d_add_y"])
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
        big = _ratio(c["a_big"], c["p_dd"])
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
    if ran("a_open1", "a_open200"):
        opening = _ratio(c["a_open200"], c["a_open1"])
        lines.append(f"{verdict(opening <= OPEN_TARGET)}  open time, {MANY_SEGMENTS} vs 1 sealed "
                     f"segments: {opening:.2f}x ({c['a_open200'].value:.2f} vs "
                     f"{c['a_open1'].value:.2f} ms) (target <= {OPEN_TARGET:.0f}x)")
    return lines


def machine() -> str:
    """nproc, kernel, CPU, file system of the work directory, versions."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    fstype = "?"
    with contextlib.suppress(OSError):
        best = ""
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            if str(WORK).startswith(mount) and len(mount) > len(best):
                best, fstype = mount, f"{parts[2]} ({parts[0]}, {parts[3]})"
    versions = ", ".join(f"{pkg} {importlib.metadata.version(pkg)}" for pkg in
                         ("aiostore", "aiodiskdb", "aiosqlite", "crc32c"))
    return (f"nproc {os.cpu_count()}, Linux {platform.release()}, {cpu}; file system {fstype}; "
            f"Python {platform.python_version()}; {versions}, SQLite {sqlite3.sqlite_version}")


def aiostore_tree() -> tuple[str, str]:
    """Which aiostore was measured: (what to print, an identity of aiostore/'s content).

    The package is edited between commits, so this is the commit plus, when aiostore/ differs
    from it, a fingerprint of the difference; the identity changes only when aiostore/ does
    (not when unrelated files are committed).
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True).stdout
    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        tree = git("rev-parse", "HEAD:aiostore").strip()
        diff = git("diff", "HEAD", "--", "aiostore")
        untracked = git("ls-files", "--others", "--exclude-standard", "--", "aiostore").split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", "unknown"
    if not diff and not untracked:
        return head, tree
    digest = hashlib.sha256(diff.encode())
    for name in sorted(untracked):
        with contextlib.suppress(OSError):
            digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    fingerprint = digest.hexdigest()[:10]
    return (f"{head} + uncommitted changes to aiostore/ (fingerprint {fingerprint})",
            f"{tree}+{fingerprint}")


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
"""


def report(plan: Plan, runs: int, started: dt.datetime, elapsed: float, write_docs: bool,
           tree: tuple[str, str], load: str) -> None:
    """Print the table and targets; write the Markdown section into docs/benchmarks.md.

    ``tree`` is :func:`aiostore_tree` taken when the run started (before aiostore was imported),
    ``load`` the 1-minute load average then and at the end (the machines are shared: the
    plain-Python baselines show how fast the CPU was).
    """
    measured, identity = tree
    now = aiostore_tree()
    if now[1] != identity:
        measured += f"; aiostore/ changed during the run (now: {now[0]})"
    print()
    for line in table_lines(plan, markdown=False):
        print(line)
    print("\nratio = aiostore / peer: ↑ rates (higher is better), ↓ times (lower is better)\n")
    for line in target_lines(plan):
        print(line)
    print(f"\n{machine()}\nload average {load}\naiostore: {measured}\ntotal {elapsed:.0f} s")
    if not write_docs:
        return
    section = "\n".join([
        SECTION,
        "",
        "```sh",
        COMMAND,
        "```",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC, aiostore at {measured}, {elapsed:.0f} s in all.",
        f"Machine: {machine()}; load average {load}.",
        "",
        *table_lines(plan, markdown=True),
        "",
        "Targets (from the issue):",
        "",
        "```text",
        *target_lines(plan),
        "```",
        "",
        NOTES.format(runs=runs, adb_adds=min(ADB_ADDS, plan.adds), adds=plan.adds,
                     big_adds=BIG_ADDS, read_items=READ_ITEMS, reads=READS, batch=BATCH,
                     tasks=DURABLE_TASKS, per_task=DURABLE_PER_TASK, opens=OPENS),
        "<details><summary>Every contender</summary>",
        "",
        *contender_lines(plan),
        "",
        "</details>",
        "",
    ])
    replace_section(DOCS, section)
    print(f"wrote {DOCS.relative_to(ROOT)}")


def replace_section(doc: Path, section: str) -> None:
    """Replace this script's section (up to the next ``## `` heading) in ``doc``, or append it."""
    text = doc.read_text() if doc.exists() else (
        "# Benchmarks\n\nMeasured against the peers aiostore replaces. Each section is written by "
        "its benchmark script; see [benchmarks/README.md](../benchmarks/README.md).\n")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        head = "\n".join(lines[:start]).rstrip("\n")
        tail = "\n".join(lines[end:])
        new = (head + "\n\n" if head else "") + section + ("\n" + tail if tail else "")
    doc.write_text(new.rstrip("\n") + "\n")


# --------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options (the defaults are the published configuration)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per contender (median)")
    parser.add_argument("--adds", type=int, default=ADDS,
                        help="buffered 1 KiB adds per run (scenario 1)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=None,
                        help="run only this scenario (repeatable; implies --no-docs)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to write (default: the system temp directory)")
    parser.add_argument("--no-docs", action="store_true",
                        help="do not update docs/benchmarks.md (implied by non-default sizes)")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` if needed, then measure and report."""
    global WORK
    args = parse_args(argv)
    if args.dir is not None:
        WORK = args.dir.resolve() / "aiostore-bench-segmentdb"
    if not _in_bench_venv():
        ensure_bench_venv()
        reexec_in_bench_venv(argv)
    ensure_bench_venv()  # run with .venv-bench/bin/python directly: install if never done
    os.environ.pop(_REEXEC_MARK, None)
    logging.getLogger("aiodiskdb").setLevel(logging.ERROR)  # "Aiodiskdb is stopped" warnings
    default = (args.runs, args.adds, args.only) == (RUNS, ADDS, None)
    write_docs = default and not args.no_docs
    started = dt.datetime.now(dt.timezone.utc)
    tree = aiostore_tree()
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    try:
        plan = build_plan(args.adds)
        if args.only:
            plan.scenarios = [sc for sc in plan.scenarios if sc.key in args.only]
        print(f"{args.runs} runs; work directory {WORK}", file=sys.stderr, flush=True)
        asyncio.run(run_plan(plan, args.runs))
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    load = f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    report(plan, args.runs, started, time.perf_counter() - t0, write_docs, tree, load)


if __name__ == "__main__":
    main(sys.argv[1:])
