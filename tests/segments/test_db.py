"""SegmentDB: adds, reads, flush policy, rollover, group commit, locking, lifecycle, events."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import aiostore
from aiostore import DBEvent, ItemLocation, SegmentDB, errors
from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem
from aiostore.segments.format import FLUSH_MARKER_SIZE, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE
from tests.conftest import Gate, wait_until

pytestmark = pytest.mark.asyncio


async def test_add_read_before_and_after_flush(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        locs = [await db.add(b"item%d" % i) for i in range(100)]
        assert locs[0] == ItemLocation(0, SEGMENT_HEADER_SIZE, 5)
        assert locs[1].position == SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE + 5
        assert await db.read(locs[7]) == b"item7"  # from RAM
        await db.flush()
        assert await db.read(locs[7]) == b"item7"  # from disk
        assert await db.read_many(locs[::10]) == [b"item%d" % i for i in range(0, 100, 10)]
        assert await db.add(bytearray(b"ba")) and await db.add(memoryview(b"mv"))
    assert (tmp_path / "data00000.dat").exists()
    async with SegmentDB(tmp_path) as db:
        assert await db.read(locs[99]) == b"item99"
        assert await db.read_many([locs[0], locs[50]]) == [b"item0", b"item50"]


async def test_location_serialises() -> None:
    loc = ItemLocation(3, 4096, 17)
    assert ItemLocation.from_bytes(loc.to_bytes()) == loc
    assert len(loc.to_bytes()) == 16
    index, position, size = loc
    assert (index, position, size) == (3, 4096, 17)
    with pytest.raises(errors.InvalidArgumentError):
        ItemLocation.from_bytes(b"short")


async def test_durable_add_survives_a_crash(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path)
    with use_fs(fs):
        db = await SegmentDB(tmp_path / "db")
        buffered = await db.add(b"only buffered")
        durable = await db.add(b"acknowledged", durable=True)
        after = await db.add(b"after the fsync")
        fs.crash()  # power loss: the flusher never runs again
    db._state = "stopped"  # the simulated machine is gone; do not touch it further
    async with SegmentDB(tmp_path / "db") as db2:
        assert await db2.read(durable) == b"acknowledged"
        assert await db2.read(buffered) == b"only buffered"  # flushed with the durable one
        with pytest.raises(errors.InvalidLocationError):
            await db2.read(after)


async def test_group_commit_shares_one_fdatasync(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path)
    with use_fs(fs):
        async with SegmentDB(tmp_path / "db") as db:
            gate = Gate(fs, "fdatasync")
            first = asyncio.ensure_future(db.add(b"first", durable=True))
            await asyncio.to_thread(gate.entered.wait)
            others = [asyncio.ensure_future(db.add(b"x%d" % i, durable=True))
                      for i in range(63)]
            await asyncio.sleep(0)
            syncs_before = fs.calls["fdatasync"]
            gate.release.set()
            await asyncio.gather(first, *others)
            assert fs.calls["fdatasync"] - syncs_before == 1  # 63 adds, one more fdatasync
            locs = [o.result() for o in others]
        fs.crash()
    async with SegmentDB(tmp_path / "db") as db2:
        assert await db2.read_many(locs) == [b"x%d" % i for i in range(63)]


async def test_flush_by_item_count_size_and_interval(tmp_path: Path) -> None:
    for options, n, size in [({"max_buffer_items": 10}, 10, 1),
                             ({"max_buffer_size": 4096}, 4, 1024),
                             ({"flush_interval": 0.01}, 1, 1)]:
        written = asyncio.Event()
        async with SegmentDB(tmp_path / str(n), **options) as db:  # type: ignore[arg-type]
            db.events.on_write = lambda e, written=written: written.set()
            for _ in range(n):
                await db.add(b"x" * size)
            await asyncio.wait_for(written.wait(), 10)


async def test_rollover_and_exactly_full_segment(tmp_path: Path) -> None:
    item = 100
    per_record = RECORD_HEADER_SIZE + item
    # room for exactly 5 records and the flush marker
    size = SEGMENT_HEADER_SIZE + 5 * per_record + FLUSH_MARKER_SIZE
    async with SegmentDB(tmp_path, max_file_size=size) as db:
        locs = [await db.add(bytes([i]) * item) for i in range(12)]
    assert [loc.index for loc in locs] == [0] * 5 + [1] * 5 + [2] * 2
    assert (tmp_path / "data00000.dat").stat().st_size == size  # filled to the byte
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".dat")) == [
        "data00000.dat", "data00001.dat", "data00002.dat"]
    async with SegmentDB(tmp_path, max_file_size=size) as db:
        assert await db.read_many(locs) == [bytes([i]) * item for i in range(12)]
        more = await db.add(b"z" * item)
        assert more.index == 2
        assert await db.read(more) == b"z" * item


async def test_file_prefix_and_padding(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path, file_prefix="blk", file_padding=3,
                         max_file_size=1024) as db:
        for _ in range(20):
            await db.add(b"y" * 200)
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith(".dat"))
    assert names[0] == "blk000.dat" and len(names) > 3


async def test_bad_input_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path, max_file_size=4096) as db:
        loc = await db.add(b"keep")
        with pytest.raises(errors.InvalidTypeError) as info:
            await db.add("text")  # type: ignore[arg-type]
        assert isinstance(info.value, TypeError)
        with pytest.raises(errors.InvalidArgumentError, match="does not fit"):
            await db.add(b"x" * 5000)
        with pytest.raises(errors.InvalidTypeError):
            await db.read((0, 32, 4))  # type: ignore[arg-type]
        assert await db.read(loc) == b"keep"
    with pytest.raises(errors.DatabaseClosedError):
        await db.add(b"late")
    with pytest.raises(errors.DatabaseClosedError):
        await db.read(loc)
    for bad in [{"max_file_size": 10}, {"max_buffer_items": 0}, {"flush_interval": 0},
                {"max_buffer_size": -1}, {"file_prefix": ""}, {"file_padding": True}]:
        with pytest.raises(errors.InvalidArgumentError):
            SegmentDB(tmp_path, **bad)  # type: ignore[arg-type]
    async with SegmentDB(tmp_path, max_file_size=4096) as db:
        assert await db.read(loc) == b"keep"


async def test_wrong_and_stale_locations(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        loc = await db.add(b"abcdef")
        second = await db.add(b"second")
        await db.flush()
        for wrong in [ItemLocation(0, loc.position, 5),  # wrong size
                      ItemLocation(0, loc.position + 1, 6),  # not a record boundary
                      ItemLocation(0, 4, 6),  # inside the header
                      ItemLocation(7, loc.position, 6),  # no such segment
                      ItemLocation(0, 10_000, 6)]:  # never written
            with pytest.raises(errors.InvalidLocationError):
                await db.read(wrong)
        assert await db.read(second) == b"second"
    # a flipped payload byte: the checksum catches it
    path = tmp_path / "data00000.dat"
    raw = bytearray(path.read_bytes())
    raw[loc.position + RECORD_HEADER_SIZE] ^= 0xFF
    path.write_bytes(bytes(raw))
    async with SegmentDB(tmp_path) as db:
        with pytest.raises(errors.CorruptionError):
            await db.read(loc)
        assert await db.read(second) == b"second"


async def test_second_writer_is_locked_out(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        loc = await db.add(b"x", durable=True)
        with pytest.raises(errors.DatabaseLockedError, match="read_only"):
            await SegmentDB(tmp_path).start()
        code = ("import asyncio, sys, aiostore\n"
                "async def main():\n"
                "    try:\n"
                "        await aiostore.SegmentDB(sys.argv[1]).start()\n"
                "    except aiostore.errors.DatabaseLockedError:\n"
                "        print('locked')\n"
                "asyncio.run(main())\n")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                             text=True, timeout=60)
        assert out.stdout.strip() == "locked", out.stderr
        async with SegmentDB(tmp_path, read_only=True) as reader:
            assert await reader.read(loc) == b"x"
            with pytest.raises(errors.InvalidArgumentError, match="read_only"):
                await reader.add(b"no")
        assert await db.read(loc) == b"x"
    async with SegmentDB(tmp_path) as again:  # released by stop()
        assert await again.read(loc) == b"x"
    assert sorted(os.listdir(tmp_path)) == ["data.LOCK", "data00000.dat"]  # no stale lock file


async def test_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    code = ("import asyncio, sys, aiostore\n"
            "async def main():\n"
            "    db = await aiostore.SegmentDB(sys.argv[1])\n"
            "    await db.add(b'x', durable=True)\n"
            "    print('ready', flush=True)\n"
            "    await asyncio.sleep(3600)\n"
            "asyncio.run(main())\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    with pytest.raises(errors.DatabaseLockedError):
        await SegmentDB(tmp_path).start()
    proc.kill()
    proc.wait()
    proc.stdout.close()
    async with SegmentDB(tmp_path) as db:
        assert await db.read(ItemLocation(0, SEGMENT_HEADER_SIZE, 1)) == b"x"


async def test_unrelated_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "data.dat").write_text("not a segment name")
    (tmp_path / "sub").mkdir()
    async with SegmentDB(tmp_path) as db:
        loc = await db.add(b"ok")
    async with SegmentDB(tmp_path) as db:
        assert await db.read(loc) == b"ok"
    assert (tmp_path / "notes.txt").read_text() == "hello"


async def test_foreign_segment_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data00000.dat").write_bytes(b"garbage that is not a header, long enough" * 2)
    with pytest.raises(errors.CorruptionError, match="not an aiostore segment"):
        await SegmentDB(tmp_path).start()
    assert (tmp_path / "data00000.dat").read_bytes().startswith(b"garbage")


async def test_missing_directory_without_create(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFoundError):
        await SegmentDB(tmp_path / "absent", create_if_not_exists=False).start()
    assert not (tmp_path / "absent").exists()


async def test_stopped_db_restarts(tmp_path: Path) -> None:
    db = SegmentDB(tmp_path)
    await db.start()
    a = await db.add(b"a")
    await db.stop()
    await db.stop()  # idempotent
    await db.start()
    b = await db.add(b"b")
    assert await db.read_many([a, b]) == [b"a", b"b"]
    await db.stop()


async def test_adds_racing_stop_lose_nothing(tmp_path: Path) -> None:
    db = await SegmentDB(tmp_path, max_buffer_items=50)
    acked: list[tuple[ItemLocation, bytes]] = []
    refused = 0

    async def producer(p: int) -> None:
        nonlocal refused
        for i in range(100_000):
            data = b"%d-%d" % (p, i)
            try:
                acked.append((await db.add(data), data))
            except errors.DatabaseClosedError:
                refused += 1
                return
            if i % 7 == 0:
                await asyncio.sleep(0)

    tasks = [asyncio.ensure_future(producer(p)) for p in range(8)]
    await wait_until(lambda: len(acked) >= 2000)
    await db.stop()
    await asyncio.gather(*tasks)
    assert refused == 8
    async with SegmentDB(tmp_path) as db2:
        got = await db2.read_many([loc for loc, _ in acked])
    assert got == [data for _, data in acked]


async def test_cancelled_durable_add_does_not_wedge_the_db(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path)
    with use_fs(fs):
        async with SegmentDB(tmp_path / "db") as db:
            gate = Gate(fs, "fdatasync")
            waiting = asyncio.ensure_future(db.add(b"w", durable=True))
            await asyncio.to_thread(gate.entered.wait)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            gate.release.set()
            loc = await db.add(b"after", durable=True)
            await asyncio.wait_for(db.flush(), 10)
            assert await db.read(loc) == b"after"
        assert not db.running


async def test_many_readers_beside_a_writer(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path, max_buffer_items=100) as db:
        locs = [await db.add(b"r%d" % i) for i in range(2000)]
        await db.flush()
        stop = False
        reads = 0

        async def reader(k: int) -> None:
            nonlocal reads
            i = k
            while not stop:
                loc = locs[i % len(locs)]
                assert await db.read(loc) == b"r%d" % (i % len(locs))
                reads += 1
                i += 7

        readers = [asyncio.ensure_future(reader(k)) for k in range(32)]
        new = [await db.add(b"w%d" % i, durable=(i % 100 == 0)) for i in range(3000)]
        stop = True
        await asyncio.gather(*readers)
        assert reads > 0
        assert await db.read_many(new[::300]) == [b"w%d" % i for i in range(0, 3000, 300)]


async def test_fsync_failure_poisons_until_reopened(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path)
    failures: list[DBEvent] = []
    with use_fs(fs):
        db = await SegmentDB(tmp_path / "db")
        db.events.on_failure = failures.append
        kept = await db.add(b"kept", durable=True)
        fs.fail("fdatasync")
        with pytest.raises(errors.DatabaseFailedError):
            await db.add(b"lost", durable=True)
        with pytest.raises(errors.DatabaseFailedError, match="reopen"):
            await db.add(b"refused")
        assert failures and failures[0].error is not None
        assert fs.calls["fdatasync"] == 2  # never retried
        with pytest.raises(errors.DatabaseFailedError, match="1 items were never written"):
            await db.stop()
        assert not db.running
    async with SegmentDB(tmp_path / "db") as db2:
        assert await db2.read(kept) == b"kept"
        assert await db2.read(await db2.add(b"fresh")) == b"fresh"


async def test_events_fire_with_details(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                        ) -> None:
    seen: list[DBEvent] = []
    async_seen: list[DBEvent] = []

    async def async_hook(event: DBEvent) -> None:
        async_seen.append(event)

    def broken(event: DBEvent) -> None:
        raise RuntimeError("hook bug")

    db = SegmentDB(tmp_path)
    db.events.on_start = seen.append
    db.events.on_write = async_hook
    db.events.on_stop = broken
    await db.start()
    a = await db.add(b"aa")
    b = await db.add(b"bbb")
    await db.flush()
    with caplog.at_level(logging.ERROR, logger="aiostore.segments"):
        await db.stop()
    await asyncio.sleep(0)
    assert seen[0].kind == "start" and seen[0].timestamp > 0
    write = async_seen[0]
    assert (write.kind, write.first, write.last, write.count, write.size) == (
        "write", a, b, 2, 5)
    assert "persisted 2 items" in write.description
    assert "hook bug" in caplog.text  # logged, and the stop still completed
    assert not db.running


async def test_scan_in_order_from_a_start(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path, max_file_size=2048) as db:
        locs = [await db.add(b"s%03d" % i) for i in range(300)]
        await db.flush()
        tail = [await db.add(b"t%d" % i) for i in range(3)]  # buffered, still scanned
        items = [(loc, data) async for loc, data in db.scan()]
        assert [loc for loc, _ in items] == locs + tail
        assert items[5][1] == b"s005"
        resumed = [loc async for loc, _ in db.scan(start=locs[150])]
        assert resumed == locs[150:] + tail


async def test_on_stop_signal_schedules_a_clean_stop(tmp_path: Path) -> None:
    db = await SegmentDB(tmp_path)
    stopped = asyncio.Event()
    db.events.on_stop = lambda e: stopped.set()
    loc = await db.add(b"buffered")
    db.on_stop_signal(15, None)
    await asyncio.wait_for(stopped.wait(), 10)
    assert not db.running
    async with SegmentDB(tmp_path) as db2:
        assert await db2.read(loc) == b"buffered"


async def test_awaitable_and_leak_warning(tmp_path: Path) -> None:
    db = await aiostore.SegmentDB(tmp_path)
    assert db.running
    await db.stop()


async def test_one_signal_stops_every_database_and_handlers_go_away(tmp_path: Path) -> None:
    import signal as sig

    loop = asyncio.get_running_loop()
    a = await SegmentDB(tmp_path / "a")
    b = await SegmentDB(tmp_path / "b")
    stopped: list[str] = []
    a.events.on_stop = lambda e: stopped.append("a")
    b.events.on_stop = lambda e: stopped.append("b")
    la = await a.add(b"in a")
    lb = await b.add(b"in b")
    a.install_signal_handlers([sig.SIGUSR1], exit=False)
    b.install_signal_handlers([sig.SIGUSR1], exit=False)
    os.kill(os.getpid(), sig.SIGUSR1)
    from aiostore.segments import db as db_module

    await wait_until(lambda: len(stopped) == 2 and not db_module._signal_tasks)
    assert sorted(stopped) == ["a", "b"]
    assert not loop.remove_signal_handler(sig.SIGUSR1)  # already removed at stop
    async with SegmentDB(tmp_path / "a") as a2, SegmentDB(tmp_path / "b") as b2:
        assert await a2.read(la) == b"in a"
        assert await b2.read(lb) == b"in b"


async def test_no_blocking_call_on_the_loop(tmp_path: Path) -> None:
    """Every file-system call runs in a worker, except the page-cache-only RWF_NOWAIT read."""
    import threading

    from tests.atomic.test_off_loop import ThreadCheckingFS

    fs = ThreadCheckingFS(threading.get_ident())
    with use_fs(fs):
        async with SegmentDB(tmp_path, max_file_size=4096, max_buffer_items=10) as db:
            locs = [await db.add(b"%d" % i * 50, durable=(i % 10 == 0)) for i in range(100)]
            await db.flush()
            assert len(await db.read_many(locs)) == 100
            for loc in locs[::7]:
                await db.read(loc)
            _ = [x async for x in db.scan()]
    assert fs.calls > 50
    assert set(fs.on_loop) <= {"pread_nowait"}
