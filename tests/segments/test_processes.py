"""Real processes: SIGKILL during durable adds, SIGTERM with buffered items."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aiostore import ItemLocation, SegmentDB

pytestmark = pytest.mark.asyncio

DURABLE_WRITER = r"""
import asyncio, sys, aiostore
async def main():
    db = await aiostore.SegmentDB(sys.argv[1], max_file_size=64 * 1024)
    i = 0
    while True:
        data = b"%d:" % i + b"d" * (i % 300)
        loc = await db.add(data, durable=True)
        print(loc.to_bytes().hex(), i, flush=True)
        i += 1
asyncio.run(main())
"""


def _item(i: int) -> bytes:
    return b"%d:" % i + b"d" * (i % 300)


@pytest.mark.parametrize("seed", range(4))
async def test_sigkill_keeps_every_acknowledged_durable_add(tmp_path: Path, seed: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", DURABLE_WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked: list[tuple[ItemLocation, int]] = []
    target = random.Random(seed).randint(20, 400)
    while len(acked) < target:
        line = proc.stdout.readline()
        assert line, "the writer died"
        hexloc, i = line.split()
        acked.append((ItemLocation.from_bytes(bytes.fromhex(hexloc)), int(i)))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for line in proc.stdout.read().splitlines():  # acknowledged before the kill landed
        hexloc, i = line.split()
        acked.append((ItemLocation.from_bytes(bytes.fromhex(hexloc)), int(i)))
    proc.stdout.close()
    async with SegmentDB(tmp_path, max_file_size=64 * 1024) as db:
        got = await db.read_many([loc for loc, _ in acked])
        assert got == [_item(i) for _, i in acked]
        count = 0
        async for _, data in db.scan():
            assert data == _item(count)
            count += 1
        assert count >= len(acked)


BUFFERED_WRITER = r"""
import asyncio, sys, aiostore
async def main():
    db = await aiostore.SegmentDB(sys.argv[1], flush_interval=3600, max_buffer_items=10**6)
    db.install_signal_handlers()
    for i in range(5000):
        await db.add(b"buffered-%d" % i)
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


async def test_sigterm_flushes_buffered_items(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", BUFFERED_WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    size_before = (tmp_path / "data00000.dat").stat().st_size
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM  # stopped, then died of the signal
    proc.stdout.close()
    assert size_before == 32  # nothing had been flushed before the signal
    async with SegmentDB(tmp_path) as db:
        items = [data async for _, data in db.scan()]
    assert items == [b"buffered-%d" % i for i in range(5000)]


TX_WRITER = r"""
import asyncio, sys, aiostore
async def main():
    db = await aiostore.SegmentDB(sys.argv[1], max_file_size=256 * 1024)
    n = 0
    while True:
        await db.add(b"plain %d" % n)  # buffered adds interleave with the commits
        async with db.transaction() as tx:
            for i in range(1 + n % 40):
                tx.add(b"T%d:%d:" % (n, i) + b"t" * (n * 7 % 500))
        print(n, flush=True)
        n += 1
asyncio.run(main())
"""


@pytest.mark.parametrize("seed", range(3))
async def test_sigkill_during_commits_keeps_transactions_whole(tmp_path: Path, seed: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", TX_WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    target = random.Random(seed).randint(10, 150)
    committed = -1
    while committed < target:
        line = proc.stdout.readline()
        assert line, "the writer died"
        committed = int(line)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for line in proc.stdout.read().splitlines():
        committed = int(line)
    proc.stdout.close()
    counts: dict[int, int] = {}
    async with SegmentDB(tmp_path, max_file_size=256 * 1024) as db:
        async for _, data in db.scan():
            if data.startswith(b"T"):
                n = int(data[1:data.index(b":")])
                counts[n] = counts.get(n, 0) + 1
    for n in range(committed + 1):
        assert counts.get(n) == 1 + n % 40, f"committed transaction {n} is not whole"
    for n, count in counts.items():
        assert count == 1 + n % 40, f"transaction {n} is partly present"
