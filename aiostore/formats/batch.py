"""Group commit of whole-file writes issued concurrently from one event loop.

Concurrent ``write_bytes``/``write_text``/``write_json``/``write`` (bytes, text, JSON) calls
queue up; whoever holds the batch lock takes everything queued and runs it as one worker hop
(:func:`~aiostore._io.publish.publish_many`), so N concurrent writes share their fsyncs. A
writer alone runs a batch of one: the plain recipe, no waiting.

Cancellation: a request still queued is removed (nothing happens); one taken into a batch is
asked to abort, which rolls it back unless its rename already happened, and the caller waits
until its batch is done before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import anyio
import anyio.lowlevel

from .._io.base import Buffer, FileSystem, current_fs
from .._io.offload import run_commit
from .._io.publish import PublishRequest, publish_many

__all__ = ["publish_whole"]


class _Publisher:
    def __init__(self, fs: FileSystem) -> None:
        self.fs = fs
        self.queue: list[_Ticket] = []
        self.lock = anyio.Lock()


class _Ticket:
    __slots__ = ("done", "request", "taken")

    def __init__(self, request: PublishRequest) -> None:
        self.request = request
        self.taken = False
        self.done = anyio.Event()


_publishers: anyio.lowlevel.RunVar[dict[int, _Publisher]] = anyio.lowlevel.RunVar(
    "aiostore_publishers"
)


def _publisher(fs: FileSystem) -> _Publisher:
    try:
        table = _publishers.get()
    except LookupError:
        table = {}
        _publishers.set(table)
    pub = table.get(id(fs))
    if pub is None or pub.fs is not fs:
        pub = table[id(fs)] = _Publisher(fs)
    return pub


async def _wait_uncancellable(event: anyio.Event) -> None:
    """Wait for ``event`` even if cancelled again meanwhile (asyncio's native cancel too)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with anyio.CancelScope(shield=True):
            await event.wait()
        return
    waiter = asyncio.ensure_future(event.wait())
    while not waiter.done():
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            continue


async def _run_batch(pub: _Publisher, own: _Ticket) -> None:
    batch, pub.queue = pub.queue, []
    for ticket in batch:
        ticket.taken = True
    try:
        # never dropped once submitted: every request in it gets an outcome; a cancelled
        # leader's own request is rolled back through its abort flag
        await run_commit(publish_many, pub.fs, [t.request for t in batch],
                         abort=own.request.abort, drop_unstarted=False)
    finally:
        for ticket in batch:
            ticket.done.set()


async def publish_whole(path: str, encode: Callable[[], Iterable[Buffer]], *, overwrite: bool,
                        durable: bool, mode: int | None) -> None:
    """Publish one whole file, batched with concurrent writes from this event loop."""
    pub = _publisher(current_fs())
    ticket = _Ticket(PublishRequest(path, encode, overwrite=overwrite, durable=durable,
                                    mode=mode))
    pub.queue.append(ticket)
    try:
        async with pub.lock:
            if not ticket.taken:
                await _run_batch(pub, ticket)
    except anyio.get_cancelled_exc_class():
        if not ticket.taken:
            pub.queue.remove(ticket)
            raise
        ticket.request.abort.set()
        await _wait_uncancellable(ticket.done)
        raise
    if not ticket.done.is_set():
        try:
            await ticket.done.wait()
        except anyio.get_cancelled_exc_class():
            ticket.request.abort.set()
            await _wait_uncancellable(ticket.done)
            raise
    if ticket.request.error is not None:
        raise ticket.request.error
