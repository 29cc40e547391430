"""The offload point: bounded pool, and commit hops that are never abandoned."""

from __future__ import annotations

import asyncio
import threading

import anyio
import pytest

from aiostore._io.offload import Abort, Aborted, run_commit, run_sync

pytestmark = pytest.mark.anyio


async def test_pool_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOSTORE_MAX_THREADS", "3")
    # a fresh event loop per test, so the limiter is created with the setting above
    lock = threading.Lock()
    running = 0
    peak = 0
    gate = threading.Event()

    def job() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(0.05)
        with lock:
            running -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(run_sync, job)
    assert 1 <= peak <= 3


@pytest.mark.parametrize("anyio_backend", [("asyncio", {})], indirect=True)
async def test_native_cancel_waits_for_the_commit() -> None:
    started = threading.Event()
    release = threading.Event()
    finished: list[bool] = []

    def commit() -> None:
        started.set()
        release.wait(5)
        finished.append(True)

    task = asyncio.ensure_future(run_commit(commit))
    await anyio.to_thread.run_sync(started.wait)
    task.cancel()
    await asyncio.sleep(0)  # the cancellation is delivered; the task must still be waiting
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == [True]  # the caller saw the cancellation only after the commit ended


async def test_cancel_sets_abort_and_waits() -> None:
    started = threading.Event()
    abort = Abort()
    outcome: list[str] = []

    def commit() -> None:
        started.set()
        while not abort.requested:
            threading.Event().wait(0.001)
        try:
            abort.check()
        except Aborted:
            outcome.append("rolled back")
            raise

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            async def cancel_when_started() -> None:
                await anyio.to_thread.run_sync(started.wait)
                scope.cancel()

            tg.start_soon(cancel_when_started)
            await run_commit(commit, abort=abort)
    assert scope.cancelled_caught
    assert outcome == ["rolled back"]


async def test_errors_propagate() -> None:
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await run_commit(boom)
    with pytest.raises(KeyError):
        await run_sync(boom)
    assert await run_commit(lambda: 42) == 42
