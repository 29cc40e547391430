"""aiostore.compat.AioDiskDB: aiodiskdb 0.2.3's API (constructor in MB, run/stop, add/read,
transactions, trims, events with aiodiskdb's callback signatures, destroy_db) over SegmentDB."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import aiostore
from aiostore import SegmentDB, errors
from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem
from aiostore.compat import AioDiskDB, EventsHandlers, ItemLocation, WriteEvent
from aiostore.segments.format import SEGMENT_HEADER_SIZE

pytestmark = pytest.mark.asyncio

MiB = 1024**2


async def start(db: AioDiskDB) -> asyncio.Task[None]:
    """Run ``db`` the aiodiskdb way (``create_task(db.run())``) and wait for ``on_start``."""
    started: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    user = db.events.on_start

    async def on_start(timestamp: float) -> None:
        if not started.done():
            started.set_result(timestamp)
        if user is not None:
            await user(timestamp)

    db.events.on_start = on_start
    task = asyncio.create_task(db.run())
    waiting: set[asyncio.Future[Any]] = {started, task}
    done, _ = await asyncio.wait(waiting, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # run() failed: raise its error
        pytest.fail("run() returned before the database started")
    assert started in done, "the database did not start within 10 s"
    db.events.on_start = user
    return task


async def stop(db: AioDiskDB, task: asyncio.Task[None]) -> None:
    assert await db.stop() is True
    await asyncio.wait_for(task, 10)  # run() returns once stopped


# --- constructor -------------------------------------------------------------------------------
async def test_constructor_takes_aiodiskdb_arguments_with_sizes_in_mb(tmp_path: Path) -> None:
    # aiodiskdb's positional order: path, create_if_not_exists, overwrite, clean_stale_data,
    # file_padding, file_prefix, max_file_size, max_buffer_items, max_buffer_size,
    # flush_interval, genesis_bytes, timeout, concurrency
    db = AioDiskDB(str(tmp_path / "db"), True, False, False, 7, "blocks", 2, 50, 0.5, 10,
                   b"abcd", 5, 4)
    inner = db.segmentdb
    assert (inner.max_file_size, inner.max_buffer_size) == (2 * MiB, MiB // 2)
    assert (inner.max_buffer_items, inner.flush_interval) == (50, 10.0)
    assert (inner.file_prefix, inner.file_padding) == ("blocks", 7)
    assert db.path == tmp_path / "db"
    assert not db.running

    defaults = AioDiskDB(tmp_path).segmentdb  # aiodiskdb 0.2.3's defaults
    assert (defaults.max_file_size, defaults.max_buffer_size) == (128 * MiB, 16 * MiB)
    assert (defaults.max_buffer_items, defaults.flush_interval) == (100, 30.0)
    assert (defaults.file_prefix, defaults.file_padding) == ("data", 5)

    # flush_interval=0 meant "on the next tick" of aiodiskdb's 5 ms loop
    assert AioDiskDB(tmp_path, flush_interval=0).segmentdb.flush_interval == 0.005
    assert AioDiskDB(tmp_path, max_file_size=0.25,
                     max_buffer_size=0.125).segmentdb.max_file_size == MiB // 4


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"file_prefix": "data1"}, "file_prefix"),
    ({"file_prefix": ""}, "file_prefix"),
    ({"max_file_size": 0}, "max_file_size"),
    ({"max_file_size": -1}, "max_file_size"),
    ({"max_file_size": "128"}, "max_file_size"),
    ({"max_file_size": math.nan}, "max_file_size"),
    ({"max_buffer_size": 0}, "max_buffer_size"),
    ({"max_buffer_size": True}, "max_buffer_size"),
    ({"max_file_size": 1, "max_buffer_size": 2}, "max_file_size .* >= max_buffer_size"),
    ({"max_file_size": 4097}, "at most 4096"),
    ({"max_file_size": 1e-6, "max_buffer_size": 1e-6}, "needs at least"),
    ({"genesis_bytes": b"abc"}, "genesis_bytes"),
    ({"max_buffer_items": 0}, "max_buffer_items"),
    ({"max_buffer_items": 1.5}, "max_buffer_items"),
    ({"file_padding": 0}, "file_padding"),
    ({"concurrency": 0}, "concurrency"),
    ({"timeout": -1}, "timeout"),
    ({"flush_interval": -1}, "flush_interval"),
    ({"flush_interval": math.inf}, "flush_interval"),
])
async def test_bad_values_raise_invalid_argument(tmp_path: Path, kwargs: dict[str, Any],
                                                 match: str) -> None:
    with pytest.raises(errors.InvalidArgumentError, match=match) as info:
        AioDiskDB(tmp_path, **kwargs)
    assert isinstance(info.value, ValueError)
    assert os.listdir(tmp_path) == []  # the constructor touches nothing


async def test_bad_path_type_raises_invalid_type() -> None:
    with pytest.raises(errors.InvalidTypeError):
        AioDiskDB(42)  # type: ignore[arg-type]


# --- lifecycle ---------------------------------------------------------------------------------
async def test_run_as_a_task_and_stop(tmp_path: Path) -> None:
    db = AioDiskDB(tmp_path / "db", create_if_not_exists=True)
    with pytest.raises(errors.DatabaseClosedError):
        await db.add(b"too early")
    with pytest.raises(errors.DatabaseClosedError):
        await db.stop()  # aiodiskdb's NotRunningException
    task = await start(db)
    assert db.running
    with pytest.raises(errors.InvalidArgumentError, match="already running"):
        await db.run()
    loc = await db.add(b"kept")  # buffered: flush_interval is 30 s
    await stop(db, task)
    assert not db.running and task.done()
    with pytest.raises(errors.DatabaseClosedError):
        await db.add(b"too late")
    with pytest.raises(errors.DatabaseClosedError):
        await db.stop()

    task = await start(db)  # a stopped database runs again
    assert await db.read(loc) == b"kept"  # stop() flushed it
    await stop(db, task)


async def test_directory_must_exist_unless_create_if_not_exists(tmp_path: Path) -> None:
    missing = AioDiskDB(tmp_path / "missing")
    with pytest.raises(errors.NotFoundError) as info:
        await missing.run()
    assert isinstance(info.value, FileNotFoundError)
    assert not (tmp_path / "missing").exists() and not missing.running

    (tmp_path / "empty").mkdir()  # as in aiodiskdb: an existing directory gets a new database
    db = AioDiskDB(tmp_path / "empty")
    task = await start(db)
    assert await db.read(await db.add(b"x")) == b"x"
    await stop(db, task)


async def test_cancelling_run_flushes_and_stops(tmp_path: Path) -> None:
    db = AioDiskDB(tmp_path, flush_interval=3600)
    task = await start(db)
    loc = await db.add(b"buffered when cancelled")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not db.running
    async with SegmentDB(tmp_path, read_only=True) as reader:
        assert await reader.read(loc) == b"buffered when cancelled"


async def test_on_stop_signal_stops_cleanly_and_run_returns(tmp_path: Path) -> None:
    db = AioDiskDB(tmp_path, flush_interval=3600)
    task = await start(db)
    loc = await db.add(b"buffered when the signal came")
    db.on_stop_signal(signal.SIGTERM, None)  # what signal.signal(SIGTERM, ...) calls
    await asyncio.wait_for(task, 10)  # no SystemExit: run() just returns
    assert not db.running
    async with SegmentDB(tmp_path, read_only=True) as reader:
        assert await reader.read(loc) == b"buffered when the signal came"


async def test_an_aiodiskdb_directory_is_refused_untouched(tmp_path: Path) -> None:
    # an aiodiskdb 0.2.3 file: genesis bytes, trim offset u32, 16 reserved bytes, raw items
    old = tmp_path / "data00000.dat"
    old.write_bytes(b"\r\xce\x8f7" + bytes(4) + bytes(16) + b"cafebabedeadbeef")
    before = old.read_bytes()
    db = AioDiskDB(tmp_path)
    with pytest.raises(errors.CorruptionError, match="migrating-from-aiodiskdb"):
        await db.run()
    assert old.read_bytes() == before and not db.running


# --- writing and reading -----------------------------------------------------------------------
async def test_add_read_flush(tmp_path: Path) -> None:
    db = AioDiskDB(tmp_path)
    task = await start(db)
    locs = [await db.add(b"item %d" % i) for i in range(10)]
    assert locs[0] == ItemLocation(0, SEGMENT_HEADER_SIZE, 6)
    assert await db.read(locs[3]) == b"item 3"  # from RAM
    await db.flush()
    assert await db.read(locs[3]) == b"item 3"  # from disk
    # aiodiskdb returned None where there is no item; aiostore never returns wrong bytes
    assert await db.read(ItemLocation(0, 10**6, 3)) is None
    assert await db.read(ItemLocation(5, SEGMENT_HEADER_SIZE, 3)) is None
    assert await db.read(ItemLocation(locs[3].index, locs[3].position + 1, 6)) is None
    with pytest.raises(errors.InvalidTypeError):
        await db.read((0, 32, 6))  # type: ignore[arg-type]
    await stop(db, task)
    async with SegmentDB(tmp_path) as inner:
        assert await inner.read_many(locs) == [b"item %d" % i for i in range(10)]


async def test_item_location_is_aiostores(tmp_path: Path) -> None:
    assert ItemLocation is aiostore.ItemLocation
    loc = ItemLocation(index=0, position=80, size=1024333)  # aiodiskdb's keyword form
    assert len(loc.serialize()) == 16  # aiodiskdb's was 12 bytes: not interchangeable
    assert ItemLocation.deserialize(loc.serialize()) == loc


async def test_transaction_the_aiodiskdb_way(tmp_path: Path) -> None:
    db = AioDiskDB(tmp_path, flush_interval=3600)
    with pytest.raises(errors.DatabaseClosedError):
        await db.transaction()
    task = await start(db)
    transaction = await db.transaction()
    for item in (b"cafe", b"babe", b"deadbeef"):
        transaction.add(item)
    locations = await transaction.commit()
    assert [await db.read(loc) for loc in locations] == [b"cafe", b"babe", b"deadbeef"]
    with pytest.raises(errors.TransactionClosedError):
        await transaction.commit()
    async with db.transaction() as tx:  # aiostore's style works too
        tx.add(b"more")
    assert await db.read(tx.locations[0]) == b"more"
    await stop(db, task)
    async with SegmentDB(tmp_path, read_only=True) as reader:  # commit made them durable
        assert [data async for _, data in reader.scan()] == [b"cafe", b"babe", b"deadbeef",
                                                             b"more"]


# --- pruning -----------------------------------------------------------------------------------
async def _fill(db: AioDiskDB, n: int) -> list[ItemLocation]:
    locs = [await db.add(b"item-%04d" % i) for i in range(n)]
    await db.flush()
    return locs


async def test_pruning_is_refused_without_overwrite(tmp_path: Path) -> None:
    db = AioDiskDB(tmp_path)
    task = await start(db)
    locs = await _fill(db, 10)
    for call in (db.rtrim(0, locs[5].position), db.ltrim(0, locs[5].position),
                 db.drop_index(0)):
        with pytest.raises(errors.OverwriteDisabledError, match="enable_overwrite"):
            await call
    db.enable_overwrite()
    db.disable_overwrite()
    with pytest.raises(errors.OverwriteDisabledError):
        await db.rtrim(0, locs[5].position)
    assert [await db.read(loc) for loc in locs] == [b"item-%04d" % i for i in range(10)]
    await stop(db, task)


async def test_rtrim_ltrim_drop_index_with_overwrite(tmp_path: Path) -> None:
    dropped: asyncio.Future[tuple[float, int, int]] = asyncio.get_running_loop().create_future()

    async def on_index_drop(timestamp: float, index: int, size: int) -> None:
        dropped.set_result((timestamp, index, size))

    db = AioDiskDB(tmp_path, overwrite=True)
    db.events.on_index_drop = on_index_drop
    task = await start(db)
    locs = await _fill(db, 10)

    # rtrim takes an item's position (aiodiskdb's byte offsets, 0 included, are refused)
    with pytest.raises(errors.InvalidLocationError, match=r"segment header.*drop_index") as exc:
        await db.rtrim(0, 0)
    assert "trimmed already" not in str(exc.value)
    with pytest.raises(errors.SafetyCheckError):
        await db.rtrim(0, locs[6].position, safety_check=b"item-0007")
    # like aiodiskdb: the payload bytes removed (4 items of 9 bytes), not the framed bytes
    assert await db.rtrim(0, locs[6].position, safety_check=b"item-0006") == 4 * 9
    assert [await db.read(loc) is not None for loc in locs] == [True] * 6 + [False] * 4
    more = await _fill(db, 5)
    assert {loc.index for loc in more} == {1}  # the rtrimmed segment was sealed

    assert await db.ltrim(1, more[2].position, safety_check=b"0001") == 2 * 9
    assert [await db.read(loc) for loc in more] == [None, None, b"item-0002", b"item-0003",
                                                   b"item-0004"]

    size = await db.drop_index(0)
    assert size == 6 * 9  # the six items left in segment 0
    timestamp, index, event_size = await asyncio.wait_for(dropped, 10)
    assert (index, event_size) == (0, size) and timestamp > 0
    assert await db.read(locs[0]) is None
    with pytest.raises(errors.InvalidLocationError):
        await db.drop_index(0)  # gone; its number is never reused
    await stop(db, task)


# --- events ------------------------------------------------------------------------------------
async def test_events_have_aiodiskdb_signatures(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    got: dict[str, asyncio.Future[tuple[Any, ...]]] = {
        name: loop.create_future() for name in ("start", "stop", "write")}

    def recorder(name: str) -> Any:
        async def callback(*args: Any) -> None:
            if not got[name].done():
                got[name].set_result(args)
        return callback

    db = AioDiskDB(tmp_path, flush_interval=3600)
    db.events.on_start = recorder("start")
    db.events.on_stop = recorder("stop")
    db.events.on_write = recorder("write")
    assert isinstance(db.events, EventsHandlers)
    task = await start(db)
    (started_at,) = await asyncio.wait_for(got["start"], 10)
    assert isinstance(started_at, float)

    locs = [await db.add(b"x" * n) for n in (10, 20, 30)]
    await db.flush()
    written_at, event = await asyncio.wait_for(got["write"], 10)
    assert isinstance(written_at, float)
    # aiodiskdb's three-field form compares equal; the extra fields are there, not compared
    assert event == WriteEvent(0, locs[0].position, 60)
    assert event == WriteEvent(index=0, position=locs[0].position, size=60)
    assert hash(event) == hash(WriteEvent(0, locs[0].position, 60))
    assert event != WriteEvent(0, locs[0].position, 61)
    assert (event.count, event.last) == (3, locs[-1])

    await stop(db, task)
    (stopped_at,) = await asyncio.wait_for(got["stop"], 10)
    assert isinstance(stopped_at, float)


async def test_on_failure_gets_the_timestamp(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path)
    failed: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    async def on_failure(*args: Any) -> None:
        if not failed.done():
            failed.set_result(args)

    with use_fs(fs):
        db = AioDiskDB(tmp_path / "db", create_if_not_exists=True)
        db.events.on_failure = on_failure
        task = await start(db)
        fs.fail("fdatasync")
        await db.add(b"never written")
        with pytest.raises(errors.DatabaseFailedError):
            await db.flush()
        (timestamp,) = await asyncio.wait_for(failed, 10)
        assert isinstance(timestamp, float)
        with pytest.raises(errors.DatabaseFailedError, match="never written"):
            await db.stop()  # the database is closed anyway, and run() returns
        await asyncio.wait_for(task, 10)
        assert not db.running


async def test_callbacks_must_be_coroutine_functions(tmp_path: Path) -> None:
    db = AioDiskDB(tmp_path)

    def plain(timestamp: float) -> None:
        pass  # pragma: no cover

    async def coroutine_function(timestamp: float) -> None:
        pass  # pragma: no cover

    for name in ("on_start", "on_stop", "on_failure", "on_index_drop", "on_write"):
        for bad in (plain, lambda *args: None, coroutine_function(0.0), "callback"):
            with pytest.raises(TypeError, match=name) as info:
                setattr(db.events, name, bad)
            assert isinstance(info.value, errors.InvalidTypeError)
            if asyncio.iscoroutine(bad):
                bad.close()
        setattr(db.events, name, coroutine_function)
        assert getattr(db.events, name) is coroutine_function
        setattr(db.events, name, None)
    with pytest.raises(AttributeError, match="on_strat"):
        db.events.on_strat = coroutine_function  # type: ignore[attr-defined]


# --- destroy_db --------------------------------------------------------------------------------
async def test_destroy_db(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db = AioDiskDB(path, create_if_not_exists=True)
    task = await start(db)
    await _fill(db, 3)
    db.enable_overwrite()
    with pytest.raises(errors.InvalidArgumentError, match="stopped"):
        await db.destroy_db()  # refused while running
    await stop(db, task)
    db.disable_overwrite()
    with pytest.raises(errors.OverwriteDisabledError):
        await db.destroy_db()
    assert (path / "data00000.dat").exists()

    # unlike aiodiskdb's shutil.rmtree, files that are not the database's are never removed:
    # the whole call is refused and nothing at all is deleted
    (path / "sub").mkdir()
    (path / "sub" / "notes.txt").write_text("someone's notes")
    (path / "data00007.dat").write_bytes(b"not a segment of this database")
    before = sorted(p.name for p in path.iterdir())
    db.enable_overwrite()
    with pytest.raises(errors.InvalidArgumentError, match=r"data00007.dat, sub\); nothing"):
        await db.destroy_db()
    assert sorted(p.name for p in path.iterdir()) == before
    assert (path / "sub" / "notes.txt").read_text() == "someone's notes"
    shutil.rmtree(path / "sub")
    (path / "data00007.dat").unlink()
    fs = FaultyFileSystem(tmp_path)
    with use_fs(fs):
        db = AioDiskDB(path, overwrite=True)  # the I/O goes through the file system in force
        assert await db.destroy_db() is True
        fs.crash()  # the removal was made durable
    assert not path.exists() and fs.calls["rmdir"] == 1 and fs.calls["fsync_dir"] >= 1
    assert os.listdir(tmp_path) == []
    with pytest.raises(errors.NotFoundError):
        await AioDiskDB(path, overwrite=True).destroy_db()


async def test_destroy_db_refuses_a_directory_in_use_or_a_symlink(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path / "db") as writer:
        await writer.add(b"in use")
        with pytest.raises(errors.DatabaseLockedError):
            await AioDiskDB(tmp_path / "db", overwrite=True).destroy_db()
    assert (tmp_path / "db" / "data00000.dat").exists()
    (tmp_path / "link").symlink_to(tmp_path / "db")
    with pytest.raises(errors.InvalidArgumentError, match="symbolic link"):
        await AioDiskDB(tmp_path / "link", overwrite=True).destroy_db()
    assert (tmp_path / "db" / "data00000.dat").exists()


# --- packaging ---------------------------------------------------------------------------------
async def test_compat_is_not_imported_by_aiostore() -> None:
    code = "import sys, aiostore; print('aiostore.compat' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


async def test_every_public_name_is_documented() -> None:
    import inspect

    import aiostore.compat as compat

    for name in compat.__all__:
        obj = getattr(compat, name)
        assert inspect.getdoc(obj), name
        for member, value in vars(obj).items():
            if not member.startswith("_") and (callable(value) or isinstance(value, property)):
                assert inspect.getdoc(value), f"{name}.{member}"
