"""Running a few coroutine functions concurrently, failures raised as themselves.

anyio task groups wrap failures in an ``ExceptionGroup``; the Store's callers should see the
``NotFoundError`` or ``AccessDeniedError`` itself. :func:`gather` runs the calls in a task
group; when calls fail, the others are cancelled and the first failure is raised unwrapped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

__all__ = ["gather"]


async def gather(*calls: Callable[[], Awaitable[object]]) -> None:
    """Await every call concurrently; on the first failure cancel the rest and raise it.
    Cancellation: cancels every call, then propagates."""
    failures: list[BaseException] = []

    async def run(call: Callable[[], Awaitable[object]], scope: anyio.CancelScope) -> None:
        try:
            await call()
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:  # (handed to the caller below)
            failures.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for call in calls:
            tg.start_soon(run, call, tg.cancel_scope)
    if failures:
        raise failures[0]
