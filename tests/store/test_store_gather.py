"""``gather``: concurrent calls; the first failure is raised as itself, the rest cancelled."""

from __future__ import annotations

import anyio
import pytest

from aiostore import errors
from aiostore.store.gather import gather

pytestmark = pytest.mark.anyio


async def test_the_first_failure_is_raised_unwrapped_and_the_rest_cancelled() -> None:
    finished: list[str] = []
    cancelled: list[str] = []

    async def fails() -> None:
        await anyio.sleep(0.01)
        raise errors.AccessDeniedError(13, "denied")

    async def slow() -> None:
        try:
            await anyio.sleep(5)
            finished.append("slow")
        except anyio.get_cancelled_exc_class():
            cancelled.append("slow")
            raise

    async def quick() -> None:
        finished.append("quick")

    with anyio.fail_after(2), pytest.raises(errors.AccessDeniedError):
        await gather(fails, slow, quick)
    assert finished == ["quick"] and cancelled == ["slow"]
    await gather()  # nothing to do


async def test_an_outer_cancellation_cancels_every_call() -> None:
    cancelled: list[int] = []

    async def wait(i: int) -> None:
        try:
            await anyio.sleep(5)
        except anyio.get_cancelled_exc_class():
            cancelled.append(i)
            raise

    with anyio.move_on_after(0.05):
        await gather(*[lambda i=i: wait(i) for i in range(3)])
    assert sorted(cancelled) == [0, 1, 2]
