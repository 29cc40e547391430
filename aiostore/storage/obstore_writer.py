"""``ObstoreWriter``: a streaming S3 upload through obstore, with bounded memory, that is
aborted on any failure or cancellation.

Writes are kept (bytes as they are, anything mutable copied — off the loop when large) until
``multipart_threshold`` bytes: a smaller object becomes one ``PutObject`` at
:meth:`ObstoreWriter.close`. Beyond it, ``obstore.put_async`` runs a multipart upload (parts of
``part_size``, ``max_concurrency`` in flight, in native code) that *pulls* its data from a
one-slot async queue, :class:`_Feed`: ``write`` waits while the queue is full, so memory stays
below about ``(max_concurrency + 2) * part_size``.

obstore never exposes the upload id, and a cancelled obstore future just drops the upload —
its parts stay, invisible and billed. So the upload future is never cancelled: to abort,
the feed raises in obstore's next pull, which makes object_store abort the upload
(``AbortMultipartUpload``) before the future finishes; :meth:`ObstoreWriter.abort` waits for that,
shielded. Every upload carries the write token in its metadata: a completion whose answer was
lost is resolved by reading the object back.

object_store cannot make ``CompleteMultipartUpload`` conditional, so a writer with
``if_none_match`` / ``if_match`` that outgrows ``multipart_threshold`` hands its data to the
aiobotocore backend's writer (:class:`~aiostore.storage.multipart.S3Writer`), which sends the
condition on the completion.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._io.base import Buffer
from .._io.offload import run_sync
from ..errors import ClosedError, NotFoundError, StorageError
from .base import ObjectInfo, ObjectWriter
from .obstore_errors import translate
from .s3base import INLINE, TOKEN_KEY, S3WriterBase, copy_pieces, join, strip_etag

if TYPE_CHECKING:
    from .obstore_s3 import ObstoreStorage

__all__ = ["ObstoreWriter"]

#: small writes are gathered into chunks of at least this size before obstore pulls them
_HANDOFF = 1 << 20


class _Abandoned(Exception):
    """Raised into obstore's pull of the next chunk: object_store aborts the upload."""


_END = object()


class _Feed:
    """The async iterator obstore's multipart upload pulls its chunks from, one at a time."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

    def __aiter__(self) -> _Feed:
        return self

    async def __anext__(self) -> Buffer:
        item = await self.queue.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        chunk: Buffer = item
        return chunk

    def fail(self) -> None:
        """Make obstore's next pull raise (and so abort the upload), dropping what waits."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_Abandoned("the upload was abandoned"))


async def _own(view: memoryview) -> list[Buffer]:
    """``view``'s bytes in buffers nobody else changes: the view itself over ``bytes``, else
    a copy (in the worker pool, in 1 MiB pieces, when large)."""
    if isinstance(view.obj, bytes):
        return [view]
    if len(view) < INLINE:
        return [view.tobytes()]
    pieces: list[bytes] = await run_sync(copy_pieces, view, _HANDOFF)
    return list(pieces)


class ObstoreWriter(S3WriterBase):
    """A streaming write of one S3 object (from :meth:`ObstoreStorage.open_writer`)."""

    def __init__(self, storage: ObstoreStorage, key: str, *, if_none_match: bool,
                 if_match: str | None) -> None:
        super().__init__(storage, key, if_none_match=if_none_match, if_match=if_match)
        self.storage = storage
        self.pending: deque[Buffer] = deque()
        self.pending_size = 0
        self.feed: _Feed | None = None
        self.upload: asyncio.Future[Any] | None = None
        self.delegate: ObjectWriter | None = None

    # --- writing -----------------------------------------------------------------------------
    async def write(self, data: Buffer) -> None:
        """Append ``data``; may wait while earlier parts upload (bounded memory).

        Cancellation (or any error): the upload is aborted; the writer is then unusable."""
        if self.state != "open":
            raise ClosedError(f"the writer of {self.url} is {self.state}")
        view = memoryview(data).cast("B")
        if not len(view):
            return
        self.size += len(view)
        try:
            if self.delegate is not None:
                await self.delegate.write(view)
                return
            self.pending.extend(await _own(view))
            self.pending_size += len(view)
            if self.upload is None:
                if self.pending_size <= self.options.multipart_threshold:
                    return
                if self.if_none_match or self.if_match is not None:
                    await self._delegate()
                    return
                await self._start()
            await self._drain(final=False)
        except BaseException:
            await self.abort()
            raise

    async def _delegate(self) -> None:
        """Hand the write to the aiobotocore backend's writer (a conditional multipart
        upload, which object_store cannot complete conditionally)."""
        self.delegate = self.storage._aiobotocore().open_writer(
            self.key, if_none_match=self.if_none_match, if_match=self.if_match)
        while self.pending:
            chunk = self.pending.popleft()
            await self.delegate.write(chunk)
        self.pending_size = 0

    async def _start(self) -> None:
        store = await self.storage._get_store()
        import obstore  # (already imported by _get_store, off the loop)
        self.feed = _Feed()
        self.upload = asyncio.ensure_future(obstore.put_async(
            store, self.full, self.feed, use_multipart=True, chunk_size=self.options.part_size,
            max_concurrency=self.options.max_concurrency, attributes={TOKEN_KEY: self.token}))

    async def _drain(self, *, final: bool) -> None:
        """Hand pending chunks to obstore: large ones as slices of at most ``part_size``, small
        ones gathered (so every pull moves at least ``_HANDOFF`` bytes, but the last)."""
        part = self.options.part_size
        while self.pending and (final or self.pending_size >= _HANDOFF):
            if len(self.pending[0]) >= _HANDOFF:
                view = memoryview(self.pending.popleft())
                self.pending_size -= len(view)
                for at in range(0, len(view), part):
                    await self._send(view[at:at + part])
                continue
            group: list[Buffer] = []
            size = 0
            while self.pending and len(self.pending[0]) < _HANDOFF and size < part:
                group.append(self.pending.popleft())
                size += len(group[-1])
            self.pending_size -= size
            await self._send(await join(group))

    async def _send(self, item: object) -> None:
        """Put ``item`` in the feed, waiting while it is full; the upload's error if it ended
        meanwhile (a part failed: object_store has aborted it)."""
        feed, upload = self.feed, self.upload
        assert feed is not None and upload is not None
        if upload.done():
            raise self._failure()
        try:
            feed.queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        put = asyncio.ensure_future(feed.queue.put(item))
        try:
            await asyncio.wait({put, upload}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not put.done():
                put.cancel()
        if not put.done() or put.cancelled():
            raise self._failure()

    def _failure(self) -> BaseException:
        upload = self.upload
        assert upload is not None and upload.done()
        exc = None if upload.cancelled() else upload.exception()
        if exc is None:
            return StorageError(0, "the multipart upload ended before its data", self.url)
        return translate(exc, "multipart upload", self.url)

    # --- finishing ---------------------------------------------------------------------------
    async def close(self) -> ObjectInfo:
        """Publish the object whole (with the writer's condition) and return its info.

        Errors: :class:`~aiostore.errors.PreconditionFailedError` when the condition does not
        hold; storage errors. On any error the upload is aborted and nothing is published.
        Cancellation: before the last chunk is handed over the upload is aborted; after it,
        the upload is finished (shielded) and the object published, then the cancellation is
        raised.
        """
        return await self._close()

    async def _publish(self) -> ObjectInfo:
        if self.delegate is not None:
            return await self.delegate.close()
        if self.upload is None:
            body = await join(list(self.pending)) if self.pending else b""
            self.pending.clear()
            return await self.storage._put_single(self.key, self.full, body,
                                                  self.if_none_match, self.if_match)
        await self._drain(final=True)
        await self._send(_END)
        self.state = "completing"
        return await self._finish()

    async def _finish(self) -> ObjectInfo:
        upload = self.upload
        assert upload is not None
        try:
            result = await asyncio.shield(upload)
        except asyncio.CancelledError:
            await self._settle()
            raise
        except Exception as exc:
            # the completion's answer may have been lost (and a retry found the upload gone):
            # the write token says whether the object there is this upload
            try:
                info, metadata = await self.storage._head(self.key)
            except NotFoundError:
                info, metadata = None, {}
            if info is not None and metadata.get(TOKEN_KEY) == self.token:
                return info
            raise translate(exc, "multipart upload", self.url) from exc
        return ObjectInfo(key=self.key, size=self.size, etag=strip_etag(result["e_tag"]),
                          mtime=datetime.now(timezone.utc))

    async def _settle(self) -> None:
        """Wait until the upload future is done, whatever cancellations arrive meanwhile;
        re-raise the first of them afterwards."""
        upload = self.upload
        assert upload is not None
        cancelled = False
        while not upload.done():
            try:
                await asyncio.shield(upload)
            except asyncio.CancelledError:
                cancelled = True
            except Exception:
                break
        if not upload.cancelled():
            upload.exception()  # retrieved: the caller sees its own error or cancellation
        if cancelled:
            raise asyncio.CancelledError

    async def abort(self) -> None:
        """Discard the write: a started multipart upload is aborted and this waits until it
        is (shielded from cancellation, which is re-raised afterwards). Idempotent.

        Once the last chunk was handed over (:meth:`close` is completing), the upload can no
        longer be stopped: this waits for it to end."""
        if self.state in ("aborted", "closed"):
            return
        was, self.state = self.state, "aborted"
        self.pending.clear()
        self.pending_size = 0
        if self.delegate is not None:
            await self.delegate.abort()
            return
        if self.upload is None:
            return
        if was == "open":
            assert self.feed is not None
            self.feed.fail()
        await self._settle()
