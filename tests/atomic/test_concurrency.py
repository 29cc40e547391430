"""Readers never see a missing or partial target; concurrent writers each publish a whole file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

import aiostore
from tests.conftest import temp_files

pytestmark = pytest.mark.anyio

SIZE = 256 * 1024


def _payload(i: int) -> bytes:
    return bytes([i % 251]) * SIZE


def _whole(data: bytes) -> bool:
    return len(data) == SIZE and data == data[:1] * SIZE


async def test_readers_never_see_missing_or_torn_files(tmp_path: Path) -> None:
    target = tmp_path / "hot.bin"
    await aiostore.write_bytes(target, _payload(0))
    stop = threading.Event()
    bad: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                with open(target, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                bad.append("missing")
                continue
            reads += 1
            if not _whole(data):
                bad.append(f"torn ({len(data)} bytes)")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(1, 150):
            await aiostore.write_bytes(target, _payload(i), durable=False)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert bad == []
    assert reads > 0
    assert target.read_bytes() == _payload(149)


async def test_concurrent_tasks_to_one_target(tmp_path: Path) -> None:
    target = tmp_path / "one.bin"
    async with anyio.create_task_group() as tg:
        for i in range(64):
            tg.start_soon(aiostore.write_bytes, target, _payload(i))
    assert _whole(target.read_bytes())
    assert temp_files(tmp_path) == []


async def test_concurrent_tasks_to_many_targets_in_one_directory(tmp_path: Path) -> None:
    async with anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(aiostore.write_json, tmp_path / f"{i}.json", {"i": i})
    for i in range(100):
        assert (tmp_path / f"{i}.json").read_text() == f'{{"i": {i}}}'
    assert temp_files(tmp_path) == []


async def test_concurrent_no_clobber_has_one_winner(tmp_path: Path) -> None:
    target = tmp_path / "once"
    results: list[object] = []

    async def attempt(i: int) -> None:
        try:
            await aiostore.write_bytes(target, _payload(i), overwrite=False)
            results.append(i)
        except FileExistsError:
            results.append("lost")

    async with anyio.create_task_group() as tg:
        for i in range(16):
            tg.start_soon(attempt, i)
    winners = [r for r in results if r != "lost"]
    assert len(winners) == 1
    assert target.read_bytes() == _payload(winners[0])  # type: ignore[arg-type]
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_threads_each_with_their_own_loop(tmp_path: Path) -> None:
    target = tmp_path / "shared.bin"
    errors_seen: list[BaseException] = []

    def run(i: int) -> None:
        try:
            anyio.run(aiostore.write_bytes, target, _payload(i))
        except BaseException as exc:  # reported below
            errors_seen.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors_seen == []
    assert _whole(target.read_bytes())


WRITER = """
import sys, anyio, aiostore
target, who = sys.argv[1], int(sys.argv[2])
async def main() -> None:
    for i in range(20):
        await aiostore.write_bytes(target, bytes([who * 20 + i]) * {size})
anyio.run(main)
"""


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_processes_writing_one_target(tmp_path: Path) -> None:
    target = tmp_path / "shared.bin"
    code = WRITER.format(size=SIZE)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(target), str(w)])
             for w in range(4)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert _whole(target.read_bytes())
    assert [n for n in os.listdir(tmp_path) if n != "shared.bin"] == []
