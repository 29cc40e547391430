"""Issue 11: a seeded SIGKILL loop with a full read-back after every reopen.

Each cycle starts a writer process on the same SegmentDB (small segments, so there are many),
which runs durable adds and transactions and prints every acknowledged location with the id of
its item only once the await returned. The test waits for a random number of
acknowledgements, kills the writer with SIGKILL, drops parts of the page cache of random
segment files (memory pressure: whole files dropped and random runs of pages brought back, and
random ranges dropped), then a fresh reader process opens the database and reads back EVERY
location acknowledged so far — one by one with ``read`` in random order, then with
``read_many`` in random chunks, the page cache perturbed again between the two — and checks
each item byte for byte.

The reported failure: after many kill/reopen cycles, reads of intact items failed with
``InvalidLocationError: ... is past the end of segment N``. ``RWF_NOWAIT`` reads stop at the
first page that is not cached, and the short result of ``pread_nowait`` was trusted. A record
whose first page is cached and a later one is not is exactly what the perturbation produces.

``AIOSTORE_KILL_LOOP_CYCLES`` (default 32) sets the number of kills,
``AIOSTORE_KILL_LOOP_SEED`` (default 11) the seed of everything the test chooses.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import signal
import sys
from pathlib import Path

import pytest

from aiostore import ItemLocation, SegmentDB

pytestmark = pytest.mark.asyncio

CYCLES = int(os.environ.get("AIOSTORE_KILL_LOOP_CYCLES", "32"))
SEED = int(os.environ.get("AIOSTORE_KILL_LOOP_SEED", "11"))
MAX_FILE_SIZE = 256 * 1024
ROOT = Path(__file__).resolve().parents[2]  # the subprocesses import this module from here
PAGE = os.sysconf("SC_PAGE_SIZE")
IDS_PER_CYCLE = 10**7  # writer n numbers its items from n * IDS_PER_CYCLE: ids never repeat
SEGMENT = re.compile(r"data\d{5}\.dat")
TIMEOUT = 120.0  # per wait on a subprocess: a hang fails the test instead of blocking it

needs_fadvise = pytest.mark.skipif(
    not hasattr(os, "posix_fadvise") or not hasattr(os, "RWF_NOWAIT"),
    reason="needs posix_fadvise and RWF_NOWAIT (Linux)")


def item(i: int) -> bytes:
    """Item ``i``, deterministic from its id: ``b"<i>:"`` then a pattern from sha256(i).

    Sizes run from a few bytes to about four pages, so many records cross page boundaries."""
    digest = hashlib.sha256(b"%d" % i).digest()
    kind = digest[0] % 4
    n = int.from_bytes(digest[1:4], "little")
    size = (n % 200, 200 + n % 2000, 2000 + n % 6000, 8000 + n % 8000)[kind]
    return b"%d:" % i + (digest * (size // 32 + 1))[:size]


def perturb_page_cache(directory: Path, rng: random.Random) -> None:
    """Drop parts of the page cache of random segment files (models memory pressure).

    Half of the chosen files are dropped whole and random runs of their pages read back one
    page at a time (``POSIX_FADV_RANDOM``: no read-ahead), leaving holes; the others get
    ``POSIX_FADV_DONTNEED`` on random ranges (which only drops whole folios: with large
    folios a small range may leave the file cached, hence the first way)."""
    segments = sorted(p for p in directory.iterdir() if SEGMENT.fullmatch(p.name))
    for path in rng.sample(segments, k=max(1, (len(segments) * 3) // 4)):
        fd = os.open(path, os.O_RDONLY)
        try:
            pages = -(-os.fstat(fd).st_size // PAGE)
            if rng.random() < 0.5:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
                page = 0
                while page < pages:
                    run = rng.randint(1, 6)
                    if rng.random() < 0.5:
                        for p in range(page, min(page + run, pages)):
                            os.pread(fd, PAGE, p * PAGE)
                    page += run
            else:
                for _ in range(rng.randint(1, 1 + pages // 4)):
                    start = rng.randrange(pages)
                    os.posix_fadvise(fd, start * PAGE, rng.randint(1, 8) * PAGE,
                                     os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def parse_acks(text: str) -> list[tuple[ItemLocation, int]]:
    """``(location, id)`` of each complete ``"<location hex> <id>"`` line of ``text``.

    A line cut by the kill (no newline yet) is left out: checking fewer items is safe."""
    lines = text.split("\n")[:-1]  # the part after the last newline is incomplete
    acks = []
    for line in lines:
        hexloc, i = line.split()
        acks.append((ItemLocation.from_bytes(bytes.fromhex(hexloc)), int(i)))
    return acks


# --- the writer process ------------------------------------------------------------------------
async def _write(path: str, first_id: int, seed: int) -> None:
    rng = random.Random(seed)
    ids = iter(range(first_id, first_id + IDS_PER_CYCLE))
    db = await SegmentDB(path, max_file_size=MAX_FILE_SIZE)

    def ack(pairs: list[tuple[ItemLocation, int]]) -> None:  # one write for the lot
        sys.stdout.write("".join(f"{loc.to_bytes().hex()} {i}\n" for loc, i in pairs))
        sys.stdout.flush()

    async def adds() -> None:
        while True:
            i = next(ids)
            loc = await db.add(item(i), durable=True)
            ack([(loc, i)])
            if rng.random() < 0.2:
                await db.add(b"buffered, never acknowledged")  # torn tails for recovery

    async def transactions() -> None:
        while True:
            batch = [next(ids) for _ in range(rng.randint(1, 12))]
            async with db.transaction() as tx:
                for i in batch:
                    tx.add(item(i))
            ack(list(zip(tx.locations, batch, strict=True)))

    await asyncio.gather(adds(), adds(), transactions())


def writer_main(argv: list[str]) -> None:
    """Entry point of a writer process: ``<db path> <first id> <seed>``; runs until killed."""
    asyncio.run(_write(argv[0], int(argv[1]), int(argv[2])))


# --- the reader process ------------------------------------------------------------------------
async def _read_back(path: str, acks: list[tuple[ItemLocation, int]], seed: int,
                     read_only: bool) -> list[str]:
    rng = random.Random(seed)
    failures: list[str] = []

    def check(loc: ItemLocation, i: int, data: bytes, how: str) -> None:
        if data != item(i):
            failures.append(f"{how}({loc}) of item {i} returned {len(data)} wrong bytes")

    async with SegmentDB(path, max_file_size=MAX_FILE_SIZE, read_only=read_only) as db:
        order = acks[:]
        rng.shuffle(order)
        for loc, i in order:
            try:
                check(loc, i, await db.read(loc), "read")
            except Exception as exc:
                failures.append(f"read({loc}) of item {i}: {type(exc).__name__}: {exc}")
        perturb_page_cache(Path(path), rng)
        rng.shuffle(order)
        start = 0
        while start < len(order):
            chunk = order[start:start + rng.choice((1, 7, 50, 400, len(order)))]
            start += len(chunk)
            try:
                got = await db.read_many([loc for loc, _ in chunk])
            except Exception as exc:
                failures.append(f"read_many of {len(chunk)} locations: "
                                f"{type(exc).__name__}: {exc}")
                continue
            for (loc, i), data in zip(chunk, got, strict=True):
                check(loc, i, data, "read_many")
    return failures


def reader_main(argv: list[str]) -> None:
    """Entry point of a reader process: ``<db path> <acks file> <seed> <read_only 0|1>``.

    Prints the failures, one a line, and exits with 1 if there are any."""
    acks = parse_acks(Path(argv[1]).read_text())
    failures = asyncio.run(_read_back(argv[0], acks, int(argv[2]), argv[3] == "1"))
    for line in failures:
        print(line)
    sys.exit(1 if failures else 0)


# --- the test ----------------------------------------------------------------------------------
async def _spawn(entry: str, *args: str, stdout: int | None = None,
                 stderr: int | None = None) -> asyncio.subprocess.Process:
    code = f"import sys; from tests.segments.test_kill_loop import {entry}; {entry}(sys.argv[1:])"
    return await asyncio.create_subprocess_exec(sys.executable, "-c", code, *args, cwd=ROOT,
                                                stdout=stdout, stderr=stderr)


@needs_fadvise
async def test_every_acknowledged_item_reads_back_after_each_kill(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    directory = tmp_path / "db"
    acks_file = tmp_path / "acks.txt"
    acks_file.write_text("")
    acked = 0
    for cycle in range(CYCLES):
        err_path = tmp_path / f"writer{cycle}.err"
        with err_path.open("wb") as err:
            proc = await _spawn("writer_main", str(directory), str(cycle * IDS_PER_CYCLE),
                                str(rng.randrange(2**32)), stdout=asyncio.subprocess.PIPE,
                                stderr=err.fileno())
        assert proc.stdout is not None
        target = rng.randint(20, 400)
        seen: list[bytes] = []
        try:
            while len(seen) < target:
                line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
                assert line.endswith(b"\n"), (
                    f"cycle {cycle}: the writer died after {len(seen)} acknowledgements: "
                    f"{err_path.read_text()}")
                seen.append(line)
        finally:
            proc.send_signal(signal.SIGKILL)
            rest = await asyncio.wait_for(proc.stdout.read(), TIMEOUT)  # acked before it died
            await asyncio.wait_for(proc.wait(), TIMEOUT)
        assert proc.returncode == -signal.SIGKILL, err_path.read_text()
        new = parse_acks(b"".join(seen).decode() + rest.decode())
        assert len(new) >= target
        with acks_file.open("a") as f:  # the whole history: every kill's acknowledgements
            f.write("".join(f"{loc.to_bytes().hex()} {i}\n" for loc, i in new))
        acked += len(new)

        perturb_page_cache(directory, rng)
        reader = await _spawn("reader_main", str(directory), str(acks_file),
                              str(rng.randrange(2**32)), "1" if rng.random() < 0.3 else "0",
                              stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, errs = await asyncio.wait_for(reader.communicate(), TIMEOUT)
        segments = sum(1 for p in directory.iterdir() if SEGMENT.fullmatch(p.name))
        report = out.decode().splitlines()
        assert reader.returncode == 0, (
            f"cycle {cycle} ({segments} segments, {acked} acknowledged items): "
            f"{len(report)} failures, first ones:\n" + "\n".join(report[:10])
            + "\n" + errs.decode()[-3000:])

    # and one last look from this process: a scan finds every acknowledged item, intact
    expected = dict(parse_acks(acks_file.read_text()))
    assert len(expected) == acked
    found = 0
    async with SegmentDB(directory, max_file_size=MAX_FILE_SIZE) as db:
        async for loc, data in db.scan():
            i = expected.get(loc)
            if i is not None:
                assert data == item(i), f"scan: item {i} at {loc} is not intact"
                found += 1
    assert found == acked


@needs_fadvise
async def test_read_many_misses_across_more_segments_than_cached_descriptors(
        tmp_path: Path) -> None:
    """What the loop found past 128 segments: ``read_many`` opens the descriptors of the
    segments it misses, which evicts the least recently used cached ones — including ones
    other misses of the same call still need (it raised ``KeyError``)."""
    from aiostore.segments.db import _READ_FDS

    data = [b"%d:" % i + b"x" * 2800 for i in range(_READ_FDS + 2)]
    async with SegmentDB(tmp_path, max_file_size=4096) as db:  # one item per segment
        locs = [await db.add(d, durable=True) for d in data]
    assert len({loc.index for loc in locs}) == _READ_FDS + 2
    async with SegmentDB(tmp_path, max_file_size=4096) as db:
        for loc in locs[:_READ_FDS]:  # caches the descriptors of 0..127, 0 the least recent
            assert await db.read(loc) == data[loc.index]
        fd = os.open(tmp_path / "data00000.dat", os.O_RDONLY)
        try:  # segment 0 leaves the page cache: its item is a miss of the inline read
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        assert await db.read_many([locs[0], locs[_READ_FDS]]) == [data[0], data[_READ_FDS]]
        assert await db.read_many(locs[::-1]) == data[::-1]
