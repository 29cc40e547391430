"""Recovery: torn tails, bit flips and truncation at every offset, crashes at every step."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from aiostore import DBEvent, ItemLocation, SegmentDB, errors
from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem, SimulatedCrash
from aiostore.segments.format import RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE

pytestmark = pytest.mark.asyncio


async def _build(path: Path) -> list[tuple[ItemLocation, bytes]]:
    """A small one-segment database written in three flushes, stopped cleanly."""
    items: list[tuple[ItemLocation, bytes]] = []
    async with SegmentDB(path) as db:
        for batch in ([b"alpha", b"bravo"], [b"charlie", b"delta"], [b"echo"]):
            for data in batch:
                items.append((await db.add(data), data))
            await db.flush()
    return items


async def _readback(path: Path, items: list[tuple[ItemLocation, bytes]],
                    failures: list[DBEvent]) -> list[str]:
    """Open ``path`` and read every item: 'ok', 'corrupt' or 'invalid' — never wrong bytes."""
    outcome = []
    db = SegmentDB(path)
    db.events.on_failure = failures.append
    async with db:
        for loc, data in items:
            try:
                got = await db.read(loc)
            except errors.CorruptionError:
                outcome.append("corrupt")
                continue
            except errors.InvalidLocationError:
                outcome.append("invalid")
                continue
            assert got == data, f"wrong bytes returned for {loc}"
            outcome.append("ok")
    return outcome


async def test_torn_tail_is_truncated_and_reported(tmp_path: Path) -> None:
    items = await _build(tmp_path)
    seg = tmp_path / "data00000.dat"
    size = seg.stat().st_size
    with seg.open("ab") as f:  # a writer that died mid-record
        f.write(b"\xa1\x5e\x00\x00\xff\x00\x00\x00partial")
    failures: list[DBEvent] = []
    assert await _readback(tmp_path, items, failures) == ["ok"] * 5
    assert any("torn tail" in e.description for e in failures)
    assert seg.stat().st_size == size  # cut back exactly to the last complete record


async def test_bit_flip_at_every_offset(tmp_path: Path) -> None:
    good = tmp_path / "good"
    items = await _build(good)
    raw = (good / "data00000.dat").read_bytes()
    ends = [loc.position + RECORD_HEADER_SIZE + loc.size for loc, _ in items]
    work = tmp_path / "work"
    for offset in range(len(raw)):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(good, work)
        flipped = bytearray(raw)
        flipped[offset] ^= 0x04
        (work / "data00000.dat").write_bytes(bytes(flipped))
        failures: list[DBEvent] = []
        if offset < SEGMENT_HEADER_SIZE:
            with pytest.raises(errors.CorruptionError, match="header"):
                await SegmentDB(work).start()
            continue
        outcome = await _readback(work, items, failures)
        for (loc, _), end, result in zip(items, ends, outcome, strict=True):
            if end <= offset:
                assert result == "ok", f"flip at {offset} broke an earlier item at {loc}"
        hit = [i for i, (loc, _) in enumerate(items) if loc.position <= offset < ends[i]]
        if hit:  # damage to an item is reported, never silent
            assert outcome[hit[0]] != "ok"
            assert failures, f"flip at {offset} went unreported"


async def test_truncation_at_every_offset(tmp_path: Path) -> None:
    good = tmp_path / "good"
    items = await _build(good)
    raw = (good / "data00000.dat").read_bytes()
    ends = [loc.position + RECORD_HEADER_SIZE + loc.size for loc, _ in items]
    work = tmp_path / "work"
    for length in range(len(raw)):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(good, work)
        (work / "data00000.dat").write_bytes(raw[:length])
        outcome = await _readback(work, items, [])
        assert outcome == ["ok" if end <= length else "invalid" for end in ends], length


async def test_damage_in_the_middle_is_kept_and_reported(tmp_path: Path) -> None:
    items = await _build(tmp_path)
    seg = tmp_path / "data00000.dat"
    raw = bytearray(seg.read_bytes())
    bravo = items[1][0]
    raw[bravo.position + RECORD_HEADER_SIZE] ^= 0xFF  # flushed, and later flushes followed
    seg.write_bytes(bytes(raw))
    failures: list[DBEvent] = []
    assert await _readback(tmp_path, items, failures) == ["ok", "corrupt", "ok", "ok", "ok"]
    assert any("corruption in segment 0" in e.description for e in failures)
    async with SegmentDB(tmp_path) as db:
        with pytest.raises(errors.CorruptionError):
            _ = [x async for x in db.scan()]


async def _durable_workload(root: Path, fs: FaultyFileSystem,
                            acked: list[tuple[ItemLocation, bytes]]) -> None:
    with use_fs(fs):
        db = SegmentDB(root / "db", max_file_size=400, max_buffer_items=3)
        try:
            await db.start()
            for i in range(14):
                data = b"item-%02d-" % i + b"x" * (i * 7 % 60)
                acked.append((await db.add(data, durable=(i % 2 == 0)), data))
                if i % 2 == 0:
                    acked_durable.append(len(acked))
            await db.stop()
        except (SimulatedCrash, errors.DatabaseFailedError):
            with contextlib.suppress(errors.DatabaseFailedError):
                await db.stop()
            raise


acked_durable: list[int] = []


async def test_crash_at_every_step_keeps_every_durable_item(tmp_path: Path) -> None:
    probe = FaultyFileSystem(tmp_path)
    await _durable_workload(tmp_path, probe, [])
    total = probe.mutations
    assert total > 30
    shutil.rmtree(tmp_path / "db")
    for k in range(1, total + 1):
        acked: list[tuple[ItemLocation, bytes]] = []
        acked_durable.clear()
        fs = FaultyFileSystem(tmp_path, crash_at=k)
        with contextlib.suppress(SimulatedCrash, errors.DatabaseFailedError):
            await _durable_workload(tmp_path, fs, acked)  # may complete: crash while closing
        fs.crash()
        durable_upto = acked_durable[-1] if acked_durable else 0
        if (tmp_path / "db").exists():
            async with SegmentDB(tmp_path / "db", max_file_size=400) as db:
                for n, (loc, data) in enumerate(acked, 1):
                    try:
                        got = await db.read(loc)
                    except errors.InvalidLocationError:
                        assert n > durable_upto, f"crash at {k}: durable item {n} lost"
                        continue
                    assert got == data, f"crash at {k}: wrong bytes at {loc}"
                scanned = [loc async for loc, _ in db.scan()]  # scan must not raise
                assert len(scanned) >= durable_upto
        else:
            assert durable_upto == 0
        shutil.rmtree(tmp_path / "db", ignore_errors=True)
