"""SegmentDB transactions: scoped, all or nothing (also across crashes), never blocking adds."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

import pytest

from aiostore import DBEvent, ItemLocation, SegmentDB, Transaction, errors
from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem, SimulatedCrash
from aiostore.segments.format import (
    FLAG_TX_ITEM,
    FLUSH_MARKER_SIZE,
    RECORD_HEADER_SIZE,
    TX_COMMIT_SIZE,
    record_header,
)
from tests.conftest import Gate, wait_until

pytestmark = pytest.mark.asyncio


async def _all(db: SegmentDB) -> list[bytes]:
    return [data async for _, data in db.scan()]


async def test_scoped_commit_is_contiguous_readable_and_durable(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        before = await db.add(b"before")
        async with db.transaction() as tx:
            tx.add(b"cafe")
            tx.add(bytearray(b"babe"))
            assert len(tx) == 2 and tx.state == "open"
        assert tx.state == "committed"
        locs = tx.locations
        assert [loc.size for loc in locs] == [4, 4]
        assert locs[0].position == before.position + RECORD_HEADER_SIZE + 6
        assert locs[1].position == locs[0].position + RECORD_HEADER_SIZE + 4
        assert await db.read_many(locs) == [b"cafe", b"babe"]
        after = await db.add(b"after")
        assert after.position == locs[1].position + RECORD_HEADER_SIZE + 4 + TX_COMMIT_SIZE \
            + FLUSH_MARKER_SIZE  # the commit's flush ended with a marker
        assert await _all(db) == [b"before", b"cafe", b"babe", b"after"]
    async with SegmentDB(tmp_path) as db:  # committed means on disk
        assert await db.read_many(locs) == [b"cafe", b"babe"]
        assert await _all(db) == [b"before", b"cafe", b"babe", b"after"]


async def test_aiodiskdb_style_commit_returns_locations(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        tx = await db.transaction()
        assert isinstance(tx, Transaction)
        tx.add(b"deadbeef")
        locs = await tx.commit()
        assert locs == tx.locations and await db.read(locs[0]) == b"deadbeef"
        with pytest.raises(errors.TransactionClosedError):
            tx.add(b"more")
        with pytest.raises(errors.TransactionClosedError):
            await tx.commit()
        assert await db.transaction().commit() == []  # empty: nothing written
        stats = await db.stats()
        assert stats.items_buffered == 0


async def test_exception_or_cancellation_in_the_block_writes_nothing(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        await db.add(b"kept")
        await db.flush()
        size = (tmp_path / "data00000.dat").stat().st_size
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                tx.add(b"lost")
                raise RuntimeError("boom")
        assert tx.state == "discarded"
        entered = asyncio.Event()

        async def cancelled_block() -> None:
            async with db.transaction() as tx2:
                tx2.add(b"lost too")
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(cancelled_block())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await db.flush()
        assert await _all(db) == [b"kept"]
        assert (tmp_path / "data00000.dat").stat().st_size == size


async def test_items_are_invisible_until_the_commit_returns(faulty: FaultyFileSystem) -> None:
    root = Path(faulty.root)
    async with SegmentDB(root / "db") as db:
        await db.add(b"visible")
        await db.flush()
        gate = Gate(faulty, "fdatasync")
        tx = db.transaction()
        tx.add(b"a")
        tx.add(b"b")
        commit = asyncio.create_task(tx.commit())
        await wait_until(gate.entered.is_set)  # the commit's flush is waiting in fdatasync
        assert tx.locations  # placed ...
        assert await _all(db) == [b"visible"]  # ... but not visible
        for loc in tx.locations:
            with pytest.raises(errors.InvalidLocationError):
                await db.read(loc)
        with pytest.raises(errors.InvalidLocationError):
            await db.read_many(tx.locations)
        late = await db.add(b"late")  # adds are not held up by a commit in progress
        assert late.position > tx.locations[-1].position
        gate.release.set()
        await commit
        assert await _all(db) == [b"visible", b"a", b"b", b"late"]


async def test_a_transaction_must_fit_one_segment(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path, max_file_size=1000) as db:
        tx = db.transaction()
        tx.add(b"x" * 400)
        tx.add(b"y" * 400)
        with pytest.raises(errors.InvalidArgumentError, match="fit in one segment"):
            tx.add(b"z" * 400)
        assert len(tx) == 2  # still usable without the refused item
        first = await db.add(b"w" * 300)
        locs = await tx.commit()  # rolls to a new segment rather than splitting
        assert first.index == 0 and {loc.index for loc in locs} == {1}
        with pytest.raises(errors.InvalidTypeError):
            db.transaction().add("text")  # type: ignore[arg-type]


async def test_adds_racing_a_commit_are_all_kept(tmp_path: Path) -> None:
    acked: list[tuple[ItemLocation, bytes]] = []

    async def adder(n: int) -> None:
        for i in range(200):
            data = b"add-%d-%d" % (n, i)
            acked.append((await db.add(data, durable=(i % 50 == 0)), data))

    async with SegmentDB(tmp_path, max_buffer_items=64, max_file_size=64 * 1024) as db:
        async def committer(n: int) -> list[ItemLocation]:
            async with db.transaction() as tx:
                for i in range(300):
                    tx.add(b"tx-%d-%d" % (n, i))
            return tx.locations

        results = await asyncio.gather(adder(0), committer(0), adder(1), committer(1), adder(2))
        txs = [r for r in results if r]
    async with SegmentDB(tmp_path) as db:
        for loc, data in acked:
            assert await db.read(loc) == data
        for n, locs in enumerate(txs):
            assert await db.read_many(locs) == [b"tx-%d-%d" % (n, i) for i in range(300)]
            assert len({loc.index for loc in locs}) == 1  # contiguous in one segment
            positions = [loc.position for loc in locs]
            assert positions == sorted(positions)
            assert positions[-1] - positions[0] == sum(
                RECORD_HEADER_SIZE + loc.size for loc in locs[:-1])
        assert len(await _all(db)) == len(acked) + 600


async def test_cancelled_commit_completes_durably(faulty: FaultyFileSystem) -> None:
    root = Path(faulty.root)
    async with SegmentDB(root / "db") as db:
        gate = Gate(faulty, "fdatasync")
        tx = db.transaction()
        tx.add(b"one")
        task = asyncio.create_task(tx.commit())
        await wait_until(gate.entered.is_set)
        task.cancel()
        gate.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await db.flush()
        assert await db.read(tx.locations[0]) == b"one"


async def test_a_reader_never_sees_a_transaction_without_its_commit(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        await db.add(b"durable", durable=True)
    seg = tmp_path / "data00000.dat"
    size = seg.stat().st_size
    with seg.open("ab") as f:  # a writer died after writing two of its transaction's items
        for data in (b"tx1", b"tx2"):
            f.write(record_header(data, FLAG_TX_ITEM) + data)
    async with SegmentDB(tmp_path, read_only=True) as reader:
        assert await _all(reader) == [b"durable"]
    failures: list[DBEvent] = []
    db = SegmentDB(tmp_path)
    db.events.on_failure = failures.append
    async with db:
        assert seg.stat().st_size == size  # recovery cut the transaction off
        assert await _all(db) == [b"durable"]
    assert any("uncommitted transaction (2 items)" in e.description for e in failures)


async def _tx_workload(root: Path, fs: FaultyFileSystem, done: list[str]) -> None:
    with use_fs(fs):
        db = SegmentDB(root / "db", max_file_size=600, max_buffer_items=4)
        try:
            await db.start()
            await db.add(b"base-1", durable=True)
            done.append("base")
            for n in range(3):
                async with db.transaction() as tx:
                    for i in range(4):
                        tx.add(b"t%d-%d-" % (n, i) + b"p" * 40)
                done.append(f"tx{n}")
                await db.add(b"plain-%d" % n)
            await db.stop()
        except (SimulatedCrash, errors.DatabaseFailedError):
            with contextlib.suppress(errors.DatabaseFailedError):
                await db.stop()
            raise


async def test_crash_at_every_step_of_commits_keeps_all_or_nothing(tmp_path: Path) -> None:
    probe = FaultyFileSystem(tmp_path)
    await _tx_workload(tmp_path, probe, [])
    total = probe.mutations
    assert total > 20
    shutil.rmtree(tmp_path / "db")
    for k in range(1, total + 1):
        done: list[str] = []
        fs = FaultyFileSystem(tmp_path, crash_at=k)
        with contextlib.suppress(SimulatedCrash, errors.DatabaseFailedError):
            await _tx_workload(tmp_path, fs, done)
        fs.crash()
        if not (tmp_path / "db").exists():
            assert not done
            continue
        async with SegmentDB(tmp_path / "db", max_file_size=600) as db:
            items = await _all(db)
        for n in range(3):
            mine = [d for d in items if d.startswith(b"t%d-" % n)]
            assert len(mine) in (0, 4), f"crash at {k}: transaction {n} kept {len(mine)} of 4"
            if f"tx{n}" in done:
                assert len(mine) == 4, f"crash at {k}: committed transaction {n} lost"
        if "base" in done:
            assert items[0] == b"base-1"
        shutil.rmtree(tmp_path / "db")


async def test_transaction_on_a_stopped_or_read_only_db(tmp_path: Path) -> None:
    db = SegmentDB(tmp_path)
    with pytest.raises(errors.DatabaseClosedError):
        db.transaction()
    async with db:
        tx = db.transaction()
        tx.add(b"x")
    with pytest.raises(errors.DatabaseClosedError):
        await tx.commit()
    assert tx.state == "open"  # nothing was placed: still open
    tx.discard()
    async with SegmentDB(tmp_path, read_only=True) as reader:
        with pytest.raises(errors.InvalidArgumentError):
            reader.transaction()
