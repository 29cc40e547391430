"""Where encoded bytes are published, atomically: a local file or an object in a store.

One interface, two ways to hand it bytes — whole (:meth:`Destination.put`: the encoder runs in
the worker pool and returns its chunks) or streamed (:meth:`Destination.stream`: the encoder
runs in the worker pool and pushes chunks as it goes, memory bounded). Either way the target
shows its old content or the new, never a part:

* :class:`LocalDestination` — the publish recipe (temp sibling, fsync, rename, directory
  fsync); whole writes are group-committed with concurrent ones (:mod:`.batch`);
* :class:`ObjectDestination` — one PUT, or a multipart upload completed only at the end and
  aborted on any failure or cancellation.
"""

from __future__ import annotations

import errno
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

import anyio.from_thread
import anyio.lowlevel

from .._io.base import Buffer, current_fs
from .._io.offload import Abort, run_commit, run_sync
from .._io.publish import TempFile
from ..errors import AlreadyExistsError, PreconditionFailedError
from ..storage.base import ObjectInfo, Storage
from ..storage.s3base import concat
from .batch import publish_whole

__all__ = ["Destination", "LocalDestination", "ObjectDestination", "Produce"]

Produce = Callable[[Callable[[Buffer], None], Abort], None]
"""A streaming encoder: ``produce(sink, abort)`` pushes chunks into ``sink`` and calls
``abort.check()`` between them (blocking; run in a worker)."""

_SINK_CHUNK = 8 << 20  # bytes handed from the encoding thread to an upload at a time


class Destination(ABC):
    """An atomic publish target. ``name`` is what messages call it (a path or a URL)."""

    name: str

    @abstractmethod
    async def put(self, encode: Callable[[], Iterable[Buffer]]) -> ObjectInfo | None:
        """Run ``encode`` in the worker pool and publish what it returns, whole."""

    @abstractmethod
    async def stream(self, produce: Produce) -> ObjectInfo | None:
        """Run ``produce`` in the worker pool and publish what it pushed once it returns."""


class LocalDestination(Destination):
    """A file: ``overwrite=False`` publishes only if it does not exist
    (:class:`~aiostore.errors.AlreadyExistsError` otherwise); ``durable=False`` skips the
    fsyncs (still atomic); ``mode`` sets the permission bits.

    Cancellation: a write not yet started does nothing; once it runs it rolls back (temp file
    removed, target untouched) unless its rename has started, in which case it completes and
    then the cancellation propagates."""

    def __init__(self, path: str, *, overwrite: bool = True, durable: bool = True,
                 mode: int | None = None) -> None:
        self.name = path
        self.overwrite = overwrite
        self.durable = durable
        self.mode = mode

    async def put(self, encode: Callable[[], Iterable[Buffer]]) -> None:
        """Encode and publish in one worker hop, batched with concurrent whole-file writes."""
        await publish_whole(self.name, encode, overwrite=self.overwrite, durable=self.durable,
                            mode=self.mode)

    async def stream(self, produce: Produce) -> None:
        """Encode into a temp sibling as ``produce`` pushes, then publish it."""
        fs = current_fs()
        abort = Abort()

        def job() -> None:
            tmp = TempFile(fs, self.name, overwrite=self.overwrite, durable=self.durable,
                           mode=self.mode)
            try:
                produce(tmp.write, abort)
            except BaseException:
                tmp.discard()
                raise
            tmp.commit(abort)

        await run_commit(job, abort=abort)


def exists_error(name: str, exc: PreconditionFailedError) -> AlreadyExistsError:
    """The error a create-only write raises when its target exists."""
    err = AlreadyExistsError(errno.EEXIST, "the target exists and overwrite=False")
    err.filename = name
    err.__cause__ = exc
    return err


class ObjectDestination(Destination):
    """The object ``key`` of an open :class:`~aiostore.Storage`; ``overwrite=False`` creates it
    only if absent (:class:`~aiostore.errors.AlreadyExistsError` otherwise).

    Cancellation: a whole put is one request (done or not); a streamed upload is aborted
    (shielded) unless the store already accepted its completion."""

    def __init__(self, storage: Storage, key: str, *, overwrite: bool = True,
                 name: str | None = None) -> None:
        self.storage = storage
        self.key = key
        self.overwrite = overwrite
        self.name = name or f"{storage.url.rstrip('/')}/{key}"

    async def put(self, encode: Callable[[], Iterable[Buffer]]) -> ObjectInfo:
        """Encode in the worker pool (joining chunks there), then one put."""
        def job() -> Buffer:
            chunks = list(encode())
            # (one chunk goes as it is; a join copies in pieces so the loop keeps the GIL)
            return chunks[0] if len(chunks) == 1 else concat(chunks)

        data = await run_sync(job)
        try:
            return await self.storage.put(self.key, data, if_none_match=not self.overwrite)
        except PreconditionFailedError as exc:
            raise exists_error(self.name, exc) from exc

    async def stream(self, produce: Produce) -> ObjectInfo:
        """Upload what ``produce`` pushes (multipart beyond the store's threshold, with
        back-pressure: the encoder waits for part slots); complete it once ``produce``
        returns; abort it on any error or cancellation."""
        writer = self.storage.open_writer(self.key, if_none_match=not self.overwrite)
        token = anyio.lowlevel.current_token()
        pending: list[bytes] = []
        size = 0

        def hand_over() -> None:
            nonlocal size
            data = b"".join(pending)
            pending.clear()
            size = 0
            anyio.from_thread.run(writer.write, data, token=token)

        def sink(chunk: Buffer) -> None:
            nonlocal size
            pending.append(bytes(chunk))
            size += len(chunk)
            if size >= _SINK_CHUNK:
                hand_over()

        def job(abort: Abort) -> None:
            produce(sink, abort)
            if pending:
                hand_over()

        abort = Abort()
        try:
            await run_commit(job, abort, abort=abort)
            return await writer.close()
        except PreconditionFailedError as exc:
            with anyio.CancelScope(shield=True):
                await writer.abort()
            raise exists_error(self.name, exc) from exc
        except BaseException:
            with anyio.CancelScope(shield=True):  # (a cancellation must not skip the abort)
                await writer.abort()
            raise
