"""Files SegmentDB cannot prove it wrote: never removed or written into as if they were its own.

Issue 11: a data file removed or replaced while the database runs must fail the flush (never an
acknowledgement of bytes in an unreachable inode); trims and reads check a segment's header
before trusting it; trims report what they removed in both aiostore's and aiodiskdb's terms.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from aiostore import DBEvent, SegmentDB, TrimResult, errors
from aiostore.segments.format import (
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    SegmentHeader,
    record_header,
)

pytestmark = pytest.mark.asyncio


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.parametrize("how", ["removed", "replaced", "renamed away"])
async def test_a_flush_into_a_file_no_longer_at_its_path_fails_the_database(
        tmp_path: Path, how: str) -> None:
    failures: list[DBEvent] = []
    db = await SegmentDB(tmp_path)
    db.events.on_failure = failures.append
    try:
        first = await db.add(b"acknowledged", durable=True)
        seg = tmp_path / "data00000.dat"
        if how == "removed":
            seg.unlink()
        elif how == "replaced":  # what a restore from a copy, or rsync, does
            shutil.copyfile(seg, tmp_path / "copy")
            os.replace(tmp_path / "copy", seg)
        else:
            os.rename(seg, tmp_path / "elsewhere.dat")
        with pytest.raises(errors.DatabaseFailedError, match="no longer at that path"):
            await db.add(b"lost", durable=True)
        assert failures and "no longer at that path" in failures[-1].description
        with pytest.raises(errors.DatabaseFailedError):  # nothing more is acknowledged
            await db.add(b"more")
        with pytest.raises(errors.DatabaseFailedError):
            await db.flush()
        if how == "replaced":  # what is still readable keeps reading
            assert await db.read(first) == b"acknowledged"
    finally:
        with pytest.raises(errors.DatabaseFailedError):
            await db.stop()


async def test_a_flush_that_rolls_over_notices_the_sealed_segment_was_replaced(
        tmp_path: Path) -> None:
    db = await SegmentDB(tmp_path, max_file_size=4096)
    try:
        await db.add(b"x" * 100, durable=True)
        seg = tmp_path / "data00000.dat"
        shutil.copyfile(seg, tmp_path / "copy")
        os.replace(tmp_path / "copy", seg)
        for _ in range(40):  # fills segment 0 and rolls over to segment 1 in one flush
            await db.add(b"y" * 100)
        with pytest.raises(errors.DatabaseFailedError, match=r"data00000\.dat was removed or "
                                                             "replaced"):
            await db.flush()
    finally:
        with pytest.raises(errors.DatabaseFailedError):
            await db.stop()


async def test_a_foreign_file_at_a_segment_name_is_neither_dropped_nor_trimmed(
        tmp_path: Path) -> None:
    async with SegmentDB(tmp_path, max_file_size=4096) as db:
        db.enable_overwrite()
        locs = [await db.add(b"item %d" % i + b"." * 200) for i in range(40)]
        await db.flush()
        assert locs[-1].index >= 2
        foreign = tmp_path / "data00001.dat"
        foreign.write_bytes(b"not aiostore's, but someone's precious data" * 20)
        before = _files(tmp_path)
        victim = next(loc for loc in locs if loc.index == 1)
        for call in (db.drop_index(1), db.rtrim(1, victim.position),
                     db.ltrim(1, victim.position)):
            with pytest.raises(errors.CorruptionError, match=r"data00001\.dat is not an aiostore"):
                await call
        with pytest.raises(errors.CorruptionError, match=r"data00001\.dat"):
            await db.read(victim)
        with pytest.raises(errors.CorruptionError, match=r"data00001\.dat"):
            await db.read_many([victim])
        assert _files(tmp_path) == before
        assert await db.read(locs[0]) == b"item 0" + b"." * 200


async def test_a_segment_of_another_database_is_refused_by_name(tmp_path: Path) -> None:
    other = tmp_path / "other"
    async with SegmentDB(other, max_file_size=4096) as db:
        for i in range(40):
            await db.add(b"other %d" % i + b"." * 200)
    mine = tmp_path / "mine"
    async with SegmentDB(mine, max_file_size=4096) as db:
        db.enable_overwrite()
        locs = [await db.add(b"mine %d" % i + b"." * 200) for i in range(40)]
        await db.flush()
        shutil.copyfile(other / "data00001.dat", mine / "data00001.dat")
        before = _files(mine)
        with pytest.raises(errors.CorruptionError, match="belongs to another database"):
            await db.drop_index(1)
        with pytest.raises(errors.CorruptionError, match="belongs to another database"):
            await db.read(next(loc for loc in locs if loc.index == 1))
        assert _files(mine) == before


async def test_trims_report_bytes_on_disk_and_payload_bytes(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        db.enable_overwrite()
        locs = [await db.add(b"abcdef") for _ in range(10)]
        async with db.transaction() as tx:
            tx.add(b"in a transaction")
        await db.flush()
        dropped: list[DBEvent] = []
        db.events.on_index_drop = dropped.append

        size = (tmp_path / "data00000.dat").stat().st_size
        cut = await db.rtrim(0, locs[8].position, count=True)  # 2 items, then the transaction
        assert isinstance(cut, TrimResult) and isinstance(cut, int)
        assert (cut.items, cut.payload_bytes) == (3, 6 + 6 + 16)
        assert cut == size - locs[8].position  # on-disk bytes: framing and markers included

        head = await db.ltrim(0, locs[3].position, count=True)
        assert (int(head), head.items, head.payload_bytes) == (
            locs[3].position - SEGMENT_HEADER_SIZE, 3, 18)

        gone = await db.drop_index(0, count=True)
        assert (gone.items, gone.payload_bytes) == (5, 30)
        assert dropped[-1].count == 5 and dropped[-1].payload == 30
        assert dropped[-1].size == int(gone)
        assert repr(gone).startswith("TrimResult(")


async def test_trims_count_only_when_asked(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path, max_file_size=4096) as db:
        db.enable_overwrite()
        locs = [await db.add(b"%03d" % i + b"." * 300) for i in range(30)]
        await db.flush()
        dropped: list[DBEvent] = []
        db.events.on_index_drop = dropped.append
        quick = await db.rtrim(0, locs[5].position)
        assert quick > 0 and (quick.items, quick.payload_bytes) == (None, None)
        big = [loc for loc in locs if loc.index == 1]
        checked = await db.rtrim(1, big[1].position, safety_check=b"%03d" % locs.index(big[1]),
                                 count=True)
        assert (checked.items, checked.payload_bytes) == (len(big) - 1, 303 * (len(big) - 1))
        await db.drop_index(2)
        assert dropped[-1].payload is None and dropped[-1].size > 0


async def test_ltrim_proves_its_position_is_a_record_boundary(tmp_path: Path) -> None:
    # an item whose payload is itself a valid framed record: a position inside it looks like
    # an item, and only walking the records from the start tells it is not one
    inner = b"fake"
    payload = b"pad" + record_header(inner) + inner + b"tail"
    async with SegmentDB(tmp_path) as db:
        db.enable_overwrite()
        loc = await db.add(payload)
        after = await db.add(b"after")
        await db.flush()
        fake = loc.position + RECORD_HEADER_SIZE + 3
        with pytest.raises(errors.InvalidLocationError, match="not a record boundary"):
            await db.ltrim(0, fake, count=True)
        with pytest.raises(errors.InvalidLocationError, match="not a record boundary"):
            await db.ltrim(0, fake, safety_check=b"tail")
        assert await db.read(loc) == payload
        assert (await db.ltrim(0, after.position, count=True)).payload_bytes == len(payload)


async def test_a_header_prefix_of_another_database_is_not_an_interrupted_creation(
        tmp_path: Path) -> None:
    async with SegmentDB(tmp_path, max_file_size=4096) as db:
        for i in range(30):
            await db.add(b"item %d" % i + b"." * 200)
        newest = db._index
        db_id = db._db_id
    assert db_id is not None
    stranger = SegmentHeader(index=newest + 1, db_id=uuid.uuid4()).to_bytes()[:24]
    (tmp_path / f"data{newest + 1:05d}.dat").write_bytes(stranger)
    before = _files(tmp_path)
    with pytest.raises(errors.CorruptionError, match=rf"data{newest + 1:05d}\.dat"):
        await SegmentDB(tmp_path, max_file_size=4096).start()
    assert _files(tmp_path) == before
    # the same prefix with this database's id is what a crash leaves: removed, and it opens
    mine = SegmentHeader(index=newest + 1, db_id=db_id).to_bytes()[:24]
    (tmp_path / f"data{newest + 1:05d}.dat").write_bytes(mine)
    async with SegmentDB(tmp_path, max_file_size=4096) as db:
        assert len([x async for x in db.scan()]) == 30
    assert not (tmp_path / f"data{newest + 1:05d}.dat").exists()
