"""SegmentDB pruning: rtrim, ltrim, drop_index, the trim log, stats — and crashes mid-trim."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path

import pytest

from aiostore import DBEvent, ItemLocation, SegmentDB, errors
from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem, SimulatedCrash
from aiostore._io.posix import PosixFileSystem
from aiostore.segments.format import SEGMENT_HEADER_SIZE

pytestmark = pytest.mark.asyncio


async def _fill(db: SegmentDB, n: int, prefix: bytes = b"item") -> list[ItemLocation]:
    locs = [await db.add(b"%s-%04d" % (prefix, i)) for i in range(n)]
    await db.flush()
    return locs


async def _all(db: SegmentDB) -> list[bytes]:
    return [data async for _, data in db.scan()]


async def _readable(db: SegmentDB, locs: list[ItemLocation]) -> list[bool]:
    out = []
    for loc in locs:
        try:
            await db.read(loc)
            out.append(True)
        except errors.InvalidLocationError:
            out.append(False)
    return out


async def test_pruning_is_refused_unless_overwrite_is_enabled(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        locs = await _fill(db, 10)
        for call in (db.rtrim(0, locs[5].position), db.ltrim(0, locs[5].position),
                     db.drop_index(0)):
            with pytest.raises(errors.OverwriteDisabledError, match="enable_overwrite"):
                await call
        db.enable_overwrite()
        db.disable_overwrite()
        with pytest.raises(errors.OverwriteDisabledError):
            await db.rtrim(0, locs[5].position)
        assert await _all(db) == [b"item-%04d" % i for i in range(10)]
    assert not (tmp_path / "data.TRIMS").exists()


async def test_rtrim_removes_the_item_and_everything_after_it(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        db.enable_overwrite()
        locs = await _fill(db, 20)
        seg = tmp_path / "data00000.dat"
        size = seg.stat().st_size
        freed = await db.rtrim(locs[12].index, locs[12].position, safety_check=b"item-0012it")
        assert freed == size - locs[12].position == size - seg.stat().st_size
        assert await _readable(db, locs) == [True] * 12 + [False] * 8
        with pytest.raises(errors.InvalidLocationError, match="trimmed"):
            await db.read(locs[15])
        new = await db.add(b"after")  # the trimmed segment is sealed: positions never reused
        assert new == ItemLocation(1, SEGMENT_HEADER_SIZE, 5)
        assert await _all(db) == [b"item-%04d" % i for i in range(12)] + [b"after"]
    async with SegmentDB(tmp_path) as db:
        assert await _readable(db, locs) == [True] * 12 + [False] * 8
        assert await _all(db) == [b"item-%04d" % i for i in range(12)] + [b"after"]
        assert (await db.add(b"more")).index == 1


async def test_rtrim_of_the_current_segment_survives_a_restart_without_adds(
        tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        db.enable_overwrite()
        locs = await _fill(db, 5)
        await db.rtrim(0, locs[2].position)
    async with SegmentDB(tmp_path) as db:  # the next segment is created at open
        assert (await db.add(b"x")).index == 1
        assert await _all(db) == [b"item-0000", b"item-0001", b"x"]
        assert await _readable(db, locs) == [True, True, False, False, False]


async def test_trims_accept_only_item_positions_and_matching_checks(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        db.enable_overwrite()
        locs = await _fill(db, 10)
        seg = tmp_path / "data00000.dat"
        before = seg.read_bytes()
        for position in (0, 5, SEGMENT_HEADER_SIZE + 1, locs[3].position + 3, 10**9):
            with pytest.raises(errors.InvalidLocationError):
                await db.rtrim(0, position)
            with pytest.raises(errors.InvalidLocationError):
                await db.ltrim(0, position, safety_check=b"x")
        with pytest.raises(errors.SafetyCheckError):
            await db.rtrim(0, locs[3].position, safety_check=b"item-0004")
        with pytest.raises(errors.SafetyCheckError):
            await db.ltrim(0, locs[3].position, safety_check=b"0003")
        with pytest.raises(errors.InvalidLocationError):
            await db.drop_index(7)
        with pytest.raises(errors.InvalidTypeError):
            await db.rtrim(0, "32")  # type: ignore[arg-type]
        with pytest.raises(errors.InvalidTypeError):
            await db.rtrim(0, locs[3].position, safety_check="item")  # type: ignore[arg-type]
        assert seg.read_bytes() == before
        assert await _all(db) == [b"item-%04d" % i for i in range(10)]
    assert not (tmp_path / "data.TRIMS").exists()


async def test_ltrim_frees_the_space_and_keeps_every_location(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        db.enable_overwrite()
        locs = [await db.add(bytes([i % 251]) * 4096) for i in range(512)]  # 2 MiB
        await db.flush()
        seg = tmp_path / "data00000.dat"
        blocks = seg.stat().st_blocks
        freed = await db.ltrim(0, locs[256].position,
                               safety_check=bytes([255 % 251]) * 10)
        assert freed == locs[256].position - SEGMENT_HEADER_SIZE
        assert seg.stat().st_blocks < blocks * 0.6  # a hole was punched
        assert await _readable(db, locs) == [False] * 256 + [True] * 256
        assert await db.read(locs[300]) == bytes([300 % 251]) * 4096
        await db.add(b"tail")  # the current segment keeps growing after an ltrim
        assert len(await _all(db)) == 257
        stats = await db.stats()
        assert stats.trimmed_bytes == freed
        assert stats.live_bytes == seg.stat().st_size - freed
    async with SegmentDB(tmp_path) as db:
        assert await db.read(locs[511]) == bytes([511 % 251]) * 4096
        assert len(await _all(db)) == 257
        db.enable_overwrite()
        with pytest.raises(errors.InvalidLocationError):
            await db.ltrim(0, locs[100].position)  # already trimmed


class _NoHoles(PosixFileSystem):
    """A file system without FALLOC_FL_PUNCH_HOLE (the crash-safe rewrite path)."""

    def punch_hole(self, fd: int, offset: int, length: int) -> bool:
        return False


async def test_ltrim_without_hole_punching_rewrites_the_segment(tmp_path: Path) -> None:
    with use_fs(_NoHoles()):
        async with SegmentDB(tmp_path) as db:
            db.enable_overwrite()
            locs = await _fill(db, 50)
            inode = (tmp_path / "data00000.dat").stat().st_ino
            await db.ltrim(0, locs[20].position)
            assert (tmp_path / "data00000.dat").stat().st_ino != inode  # replaced
            assert await _readable(db, locs) == [False] * 20 + [True] * 30
            more = await db.add(b"appended", durable=True)  # the writer follows the new file
            assert await db.read(more) == b"appended"
        async with SegmentDB(tmp_path) as db:
            assert await _all(db) == [b"item-%04d" % i for i in range(20, 50)] + [b"appended"]
    assert [name for name in os.listdir(tmp_path) if "tmp" in name] == []


async def test_drop_index_never_reuses_the_number(tmp_path: Path) -> None:
    drops: list[DBEvent] = []
    async with SegmentDB(tmp_path, max_file_size=1024) as db:
        db.enable_overwrite()
        db.events.on_index_drop = drops.append
        locs = await _fill(db, 160)
        last = locs[-1].index
        assert last >= 3
        size = (tmp_path / "data00001.dat").stat().st_size
        assert await db.drop_index(1) == size
        assert not (tmp_path / "data00001.dat").exists()
        assert drops and drops[0].index == 1 and drops[0].size == size
        assert not any(loc.index == 1 for loc, ok in
                       zip(locs, await _readable(db, locs), strict=True) if ok)
        await db.drop_index(last)  # the current segment
        new = await db.add(b"new")
        assert new.index == last + 1
        with pytest.raises(errors.InvalidLocationError, match="dropped"):
            await db.drop_index(1)
        stats = await db.stats()
        assert stats.dropped_segments == 2 and stats.current_index == last + 1
    async with SegmentDB(tmp_path, max_file_size=1024) as db:
        assert (await db.add(b"newer")).index == last + 1
        with pytest.raises(errors.InvalidLocationError, match="dropped"):
            await db.read(locs[-1])
        got = await _all(db)
        assert got[-2:] == [b"new", b"newer"]
        assert all(not d.startswith(b"item") or int(d[5:]) not in
                   {i for i, loc in enumerate(locs) if loc.index in (1, last)} for d in got)


async def test_dropping_every_segment_leaves_a_usable_database(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        db.enable_overwrite()
        await _fill(db, 3)
        await db.drop_index(0)
    assert not (tmp_path / "data00000.dat").exists()
    async with SegmentDB(tmp_path, read_only=True) as reader:
        assert await _all(reader) == []
    async with SegmentDB(tmp_path, create_if_not_exists=False) as db:
        assert (await db.add(b"fresh")).index == 1


async def test_adds_racing_trims_are_never_lost(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path, max_file_size=8192, max_buffer_items=16) as db:
        db.enable_overwrite()
        old = await _fill(db, 200, b"old")
        acked: list[tuple[ItemLocation, bytes]] = []

        async def adder(n: int) -> None:
            for i in range(300):
                data = b"new-%d-%d" % (n, i)
                acked.append((await db.add(data, durable=(i % 40 == 0)), data))
                if i % 7 == 0:
                    await asyncio.sleep(0)

        async def trimmer() -> None:
            await db.ltrim(old[10].index, old[10].position)
            await db.rtrim(old[30].index, old[30].position)
            await db.drop_index(old[100].index)
            cur = db._index  # the segment receiving adds right now
            live = [loc for loc, _ in acked if loc.index == cur]
            if live:
                await db.rtrim(cur, live[-1].position)

        await asyncio.gather(adder(0), trimmer(), adder(1))
        trimmed = await db.stats()
        assert trimmed.trimmed_bytes > 0
        # every add is readable unless the current-segment rtrim removed it (it was added
        # before the rtrim started, at or after its position)
        ok = await _readable(db, [loc for loc, _ in acked])
        survivors = [item for item, alive in zip(acked, ok, strict=True) if alive]
        for loc, data in survivors:
            assert await db.read(loc) == data
        lost = [loc for (loc, _), alive in zip(acked, ok, strict=True) if not alive]
        assert len({loc.index for loc in lost}) <= 1  # only the current-segment rtrim
    async with SegmentDB(tmp_path) as db:
        for loc, data in survivors:
            assert await db.read(loc) == data


async def test_a_corrupt_trim_log_refuses_to_open(tmp_path: Path) -> None:
    async with SegmentDB(tmp_path) as db:
        db.enable_overwrite()
        locs = await _fill(db, 3)
        await db.ltrim(0, locs[1].position)
    (tmp_path / "data.TRIMS").write_text("{not json")
    with pytest.raises(errors.CorruptionError, match="trim log"):
        await SegmentDB(tmp_path).start()


# --- crashes at every step -------------------------------------------------------------------

async def _trim_workload(root: Path, fs: FaultyFileSystem, kind: str, done: list[str]) -> None:
    with use_fs(fs):
        db = SegmentDB(root / "db", max_file_size=700)
        try:
            await db.start()
            db.enable_overwrite()
            locs = [await db.add(b"i%02d-" % i + b"z" * 30) for i in range(30)]
            await db.flush()
            done.append("filled")
            mid = [loc for loc in locs if loc.index == 1]
            if kind == "rtrim":
                await db.rtrim(1, mid[3].position)
            elif kind == "ltrim":
                await db.ltrim(1, mid[3].position)
            elif kind == "drop":
                await db.drop_index(1)
            else:  # the current segment
                await db.rtrim(locs[-1].index, locs[-1].position)
            done.append("trimmed")
            await db.add(b"after", durable=True)
            done.append("after")
            await db.stop()
        except (SimulatedCrash, errors.DatabaseFailedError):
            with contextlib.suppress(errors.DatabaseFailedError):
                await db.stop()
            raise


@pytest.mark.parametrize("kind", ["rtrim", "ltrim", "drop", "rtrim-current"])
async def test_crash_at_every_step_of_a_trim_recovers_before_or_after(
        tmp_path: Path, kind: str) -> None:
    probe = FaultyFileSystem(tmp_path)
    await _trim_workload(tmp_path, probe, kind, [])
    total = probe.mutations
    async with SegmentDB(tmp_path / "db", max_file_size=700, read_only=True) as db:
        after = [d for d in await _all(db) if d != b"after"]
    shutil.rmtree(tmp_path / "db")
    outcomes = set()
    for k in range(1, total + 1):
        done: list[str] = []
        fs = FaultyFileSystem(tmp_path, crash_at=k)
        with contextlib.suppress(SimulatedCrash, errors.DatabaseFailedError):
            await _trim_workload(tmp_path, fs, kind, done)
        fs.crash()
        if "filled" not in done:
            shutil.rmtree(tmp_path / "db", ignore_errors=True)
            continue
        before = [b"i%02d-" % i + b"z" * 30 for i in range(30)]
        async with SegmentDB(tmp_path / "db", max_file_size=700) as db:
            got = await _all(db)
            again = [d async for _, d in db.scan()]
        assert got == again
        if b"after" in got:
            got.remove(b"after")
        else:
            assert "after" not in done, f"crash at {k}: a durable add was lost"
        assert got in (before, after), f"crash at {k}: neither before nor after the {kind}"
        if "trimmed" in done:
            assert got == after, f"crash at {k}: an acknowledged {kind} was undone"
        outcomes.add("after" if got == after else "before")
        shutil.rmtree(tmp_path / "db")
    assert outcomes == {"before", "after"}


async def test_stop_waits_for_a_trim_in_progress(faulty: FaultyFileSystem) -> None:
    from tests.conftest import Gate, wait_until

    root = Path(faulty.root)
    db = SegmentDB(root / "db")
    await db.start()
    db.enable_overwrite()
    locs = await _fill(db, 10)
    gate = Gate(faulty, "fsync")  # the trim's fsync of the segment, after its log is durable
    trim_task = asyncio.create_task(db.rtrim(0, locs[5].position))
    await wait_until(gate.entered.is_set)
    stop_task = asyncio.create_task(db.stop())
    await asyncio.sleep(0.01)
    assert not stop_task.done()
    gate.release.set()
    assert await trim_task > 0
    await stop_task
    async with SegmentDB(root / "db") as again:
        assert await _all(again) == [b"item-%04d" % i for i in range(5)]
