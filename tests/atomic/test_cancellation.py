"""Cancelling a whole-file write: it completes durably or leaves the old state, never a temp."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest

import aiostore
from aiostore._io.faulty import FaultyFileSystem
from tests.conftest import Gate, temp_files

pytestmark = pytest.mark.anyio


async def test_cancelled_before_start_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    with anyio.CancelScope() as scope:
        scope.cancel()
        await aiostore.write_bytes(target, b"new")
    assert scope.cancelled_caught
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_cancelled_during_the_write_completes_it(tmp_path: Path,
                                                       faulty: FaultyFileSystem) -> None:
    """Once the worker started, the write finishes (durably) before the cancellation lands."""
    target = tmp_path / "f"
    target.write_bytes(b"old")
    gate = Gate(faulty, "replace")
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            async def cancel_when_inside() -> None:
                await anyio.to_thread.run_sync(gate.entered.wait)
                scope.cancel()
                gate.release.set()

            tg.start_soon(cancel_when_inside)
            await aiostore.write_bytes(target, b"new")
    assert scope.cancelled_caught
    assert target.read_bytes() == b"new"
    assert faulty.durable_content(target) == b"new"
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_task_cancel(tmp_path: Path) -> None:
    targets = [tmp_path / f"{i}" for i in range(50)]
    for t in targets:
        t.write_bytes(b"old")
    tasks = [asyncio.ensure_future(aiostore.write_bytes(t, b"new")) for t in targets]
    await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for t, r in zip(targets, results, strict=True):
        assert t.read_bytes() in (b"old", b"new")
        if not isinstance(r, BaseException):
            assert t.read_bytes() == b"new"
    assert temp_files(tmp_path) == []
