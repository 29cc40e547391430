"""The one offload point: every blocking call runs in a bounded pool of worker threads.

Parts hand a whole sequence (write + fsync + rename, a flush, a commit) to :func:`run_sync` or
:func:`run_commit` as one function, so each operation costs one thread hop, not one per call.

The pool holds ``AIOSTORE_MAX_THREADS`` threads (default 32). Under asyncio (and uvloop) it is
one process-wide ``ThreadPoolExecutor`` driven through ``loop.run_in_executor`` — the cheapest hop
asyncio has; under trio (or any other anyio backend) it is anyio's ``to_thread`` with a
``CapacityLimiter`` of the same size per event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

T = TypeVar("T")

_DEFAULT_THREADS = 32
_limiter_var: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
    "aiostore_limiter"
)
_executor: ThreadPoolExecutor | None = None
_executor_size = 0
_executor_lock = threading.Lock()


def max_threads() -> int:
    """The size of the worker pool (``AIOSTORE_MAX_THREADS`` or 32)."""
    raw = os.environ.get("AIOSTORE_MAX_THREADS", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else _DEFAULT_THREADS


def _pool() -> ThreadPoolExecutor:
    global _executor, _executor_size
    size = max_threads()
    if _executor is None or _executor_size != size:
        with _executor_lock:
            if _executor is None or _executor_size != size:
                old = _executor
                _executor = ThreadPoolExecutor(size, thread_name_prefix="aiostore")
                _executor_size = size
                if old is not None:
                    old.shutdown(wait=False)
    return _executor


def _limiter() -> anyio.CapacityLimiter:
    try:
        return _limiter_var.get()
    except LookupError:
        lim = anyio.CapacityLimiter(max_threads())
        _limiter_var.set(lim)
        return lim


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def run_sync(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn(*args)`` in the pool. For reads and other work that may be abandoned.

    Cancellation: the caller is cancelled at once; a job not yet started never runs, a running
    one finishes in the background and its result is discarded. Use :func:`run_commit` for
    anything that changes state.
    """
    if _on_asyncio():
        return await asyncio.get_running_loop().run_in_executor(_pool(), fn, *args)
    return await anyio.to_thread.run_sync(fn, *args, limiter=_limiter())


class Aborted(Exception):
    """Raised inside a worker by :meth:`Abort.check`; never escapes to users."""


class Abort:
    """A flag a committing function polls between safe steps (set when the caller is cancelled).

    A function given an ``Abort`` calls :meth:`check` only *before* its point of no return
    (the rename); once past it, it completes.
    """

    __slots__ = ("requested",)

    def __init__(self) -> None:
        #: Whether the caller was cancelled (a plain flag: set by the loop, read by the worker).
        self.requested = False

    def set(self) -> None:
        """Ask the worker to stop at its next check."""
        self.requested = True

    def check(self) -> None:
        """Raise :class:`Aborted` if the caller was cancelled."""
        if self.requested:
            raise Aborted


async def run_commit(fn: Callable[..., T], *args: object, abort: Abort | None = None,
                     drop_unstarted: bool = True) -> T:
    """Run a state-changing ``fn(*args)`` in the pool, never abandoning it.

    Cancellation: a job that has not started yet is dropped (nothing happens) unless
    ``drop_unstarted`` is False (then it runs with ``abort`` set). Once it runs,
    ``abort`` (when given) is set so ``fn`` may stop at a safe point and roll back; either way
    this waits until ``fn`` has returned or raised, then re-raises the cancellation. So the state
    is always one ``fn`` left: completed, or rolled back by ``fn`` itself. This holds for
    asyncio's native ``Task.cancel()`` as well as anyio/trio cancel scopes.
    """
    if not _on_asyncio():
        return await _run_commit_anyio(fn, args, abort)
    cf = _pool().submit(fn, *args)
    fut = asyncio.wrap_future(cf)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        if drop_unstarted and cf.cancel():  # not started: nothing happened
            raise
        if abort is not None:
            abort.set()
        while not fut.done():
            try:
                await asyncio.shield(fut)
            except asyncio.CancelledError:
                continue
            except BaseException:
                break
        if not fut.cancelled():
            fut.exception()  # retrieved: the cancellation is what the caller sees
        raise


async def _run_commit_anyio(fn: Callable[..., T], args: tuple[object, ...],
                            abort: Abort | None) -> T:
    """trio (and any anyio backend): the worker runs in a shielded child task."""
    done = anyio.Event()
    box: dict[str, object] = {}

    async def work() -> None:
        with anyio.CancelScope(shield=True):
            try:
                box["result"] = await anyio.to_thread.run_sync(fn, *args, limiter=_limiter())
            except BaseException as exc:  # handed to the caller below
                box["error"] = exc
            finally:
                done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(work)
        try:
            await done.wait()
        except anyio.get_cancelled_exc_class():
            if abort is not None:
                abort.set()
            with anyio.CancelScope(shield=True):
                await done.wait()
            raise
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
