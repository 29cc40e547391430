"""Concurrent whole-file writes from one event loop share their durability barriers."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import pytest

import aiostore
from aiostore import errors
from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem
from aiostore.formats import batch
from tests.conftest import temp_files, wait_until

pytestmark = pytest.mark.anyio

class GatedFS(FaultyFileSystem):
    """Holds the first file fsync until released, so the next writers queue up."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.first = True

    def fsync(self, fd: int) -> None:
        if self.first:
            self.first = False
            self.entered.set()
            self.gate.wait(10)
        super().fsync(fd)


async def _start_held(tg: anyio.abc.TaskGroup, fs: GatedFS, coro_fn: object,
                      *args: object) -> None:
    """Start one write and wait until it is held inside its fsync."""
    tg.start_soon(coro_fn, *args)  # type: ignore[arg-type]
    await anyio.to_thread.run_sync(fs.entered.wait)


def _queue_length(fs: FaultyFileSystem) -> int:
    return len(batch._publisher(fs).queue)


async def _write_json_via_write(path: Path, obj: object) -> None:
    await aiostore.write(obj, path)


@pytest.mark.parametrize("writer", [aiostore.write_json, _write_json_via_write],
                         ids=["write_json", "write"])
async def test_queued_writes_share_write_back_and_one_dir_fsync(tmp_path: Path,
                                                                writer: object) -> None:
    fs = GatedFS(tmp_path)
    with use_fs(fs):
        async with anyio.create_task_group() as tg:
            await _start_held(tg, fs, writer, tmp_path / "0.json", {"i": 0})
            for i in range(1, 32):
                tg.start_soon(writer, tmp_path / f"{i}.json", {"i": i})  # type: ignore[arg-type]
            await wait_until(lambda: _queue_length(fs) >= 31)
            fs.gate.set()
    assert fs.calls["writeback"] == 2 * 31  # the 31 queued ones written back together
    assert fs.calls["fsync"] == 32  # and each still fsynced
    assert fs.calls["fsync_dir"] == 2
    for i in range(32):
        assert (tmp_path / f"{i}.json").read_text() == f'{{"i": {i}}}'
    fs.crash()  # everything acknowledged is durable
    for i in range(32):
        assert (tmp_path / f"{i}.json").read_text() == f'{{"i": {i}}}'


async def test_one_failed_fsync_in_a_batch_fails_that_write_alone(tmp_path: Path) -> None:
    for i in range(8):
        (tmp_path / f"{i}.json").write_text("old")
    fs = GatedFS(tmp_path)  # the old files are durable
    fs.fail("fsync", nth=4, errno=errno.EIO)  # the 1st is the held writer's
    outcomes: dict[int, object] = {}

    async def write(i: int) -> None:
        try:
            await aiostore.write_json(tmp_path / f"{i}.json", {"i": i})
            outcomes[i] = "ok"
        except errors.DurabilityError as exc:
            outcomes[i] = exc

    with use_fs(fs):
        async with anyio.create_task_group() as tg:
            await _start_held(tg, fs, write, 0)
            for i in range(1, 8):
                tg.start_soon(write, i)
            await wait_until(lambda: _queue_length(fs) >= 7)
            fs.gate.set()
    failed = [i for i, o in outcomes.items() if o != "ok"]
    assert len(failed) == 1
    assert (tmp_path / f"{failed[0]}.json").read_text() == "old"
    assert fs.calls["fsync_dir"] == 2
    fs.crash()
    for i in range(8):
        assert (tmp_path / f"{i}.json").read_text() == ("old" if i in failed else f'{{"i": {i}}}')
    assert temp_files(tmp_path) == []


async def test_batch_with_bad_requests_isolates_them(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("keep")
    results: dict[str, object] = {}

    async def write(name: str, coro: object) -> None:
        try:
            await coro  # type: ignore[misc]
            results[name] = "ok"
        except errors.AiostoreError as exc:
            results[name] = type(exc).__name__

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(write, f"good{i}", aiostore.write_json(tmp_path / f"g{i}", [i]))
        tg.start_soon(write, "bad", aiostore.write_json(tmp_path / "bad", {"x": object()}))
        tg.start_soon(write, "exists", aiostore.write_bytes(tmp_path / "taken", b"x",
                                                            overwrite=False))
    assert results.pop("bad") == "SerializationError"
    assert results.pop("exists") == "AlreadyExistsError"
    assert set(results.values()) == {"ok"}
    assert (tmp_path / "taken").read_text() == "keep"
    assert not (tmp_path / "bad").exists()
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cancelling_queued_and_running_writes(tmp_path: Path) -> None:
    import asyncio

    fs = GatedFS(tmp_path)
    for i in range(6):
        (tmp_path / f"{i}").write_bytes(b"old")
    fs = GatedFS(tmp_path)
    with use_fs(fs):
        tasks = [asyncio.ensure_future(aiostore.write_bytes(tmp_path / "0", b"new"))]
        await anyio.to_thread.run_sync(fs.entered.wait)
        tasks += [asyncio.ensure_future(aiostore.write_bytes(tmp_path / f"{i}", b"new"))
                  for i in range(1, 6)]
        await wait_until(lambda: _queue_length(fs) >= 5)
        tasks[0].cancel()  # running (held in its fsync): must complete or roll back
        tasks[3].cancel()  # queued: must not happen at all
        await asyncio.sleep(0)
        assert not tasks[0].done()
        fs.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert (tmp_path / "3").read_bytes() == b"old"
    assert isinstance(results[0], asyncio.CancelledError)
    assert (tmp_path / "0").read_bytes() == b"old"  # aborted before its rename
    for i in (1, 2, 4, 5):
        assert results[i] is None
        assert (tmp_path / f"{i}").read_bytes() == b"new"
    assert temp_files(tmp_path) == []
