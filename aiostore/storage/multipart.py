"""``S3Writer``: a streaming S3 upload with bounded memory.

Writes are buffered until ``multipart_threshold`` bytes: a smaller object becomes one
``PutObject`` at :meth:`S3Writer.close`. Beyond it, a multipart upload starts; every full
``part_size`` part is uploaded as a task, at most ``max_concurrency`` at a time (``write``
waits for a slot: memory stays below ``(max_concurrency + 1) * part_size``). ``close`` uploads
the last part, waits for all, and completes the upload — with the write's condition and a
write token in the object's metadata, so that a lost response is resolved by reading the
object back. Any failure, and any cancellation, aborts the upload (shielded from further
cancellation), so no invisible parts are left behind to be billed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._io.base import Buffer
from ..errors import ClosedError, NotFoundError, PreconditionFailedError
from .base import ObjectInfo
from .retry import Ambiguous, call, translate
from .s3 import prepare_body
from .s3base import TOKEN_KEY, S3WriterBase

if TYPE_CHECKING:
    from .s3 import S3Storage

__all__ = ["S3Writer"]


class S3Writer(S3WriterBase):
    """A streaming write of one S3 object (from :meth:`S3Storage.open_writer`)."""

    def __init__(self, storage: S3Storage, key: str, *, if_none_match: bool,
                 if_match: str | None) -> None:
        super().__init__(storage, key, if_none_match=if_none_match, if_match=if_match)
        self.storage = storage
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: dict[int, str] = {}
        self.next_part = 1
        self.tasks: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(self.options.max_concurrency)
        self.error: BaseException | None = None

    # --- writing -----------------------------------------------------------------------------
    async def write(self, data: Buffer) -> None:
        """Append ``data``; may wait while earlier parts upload (bounded memory).

        Cancellation: the upload is aborted; the writer is then unusable."""
        if self.state != "open":
            raise ClosedError(f"the writer of {self.url} is {self.state}")
        if self.error is not None:
            await self.abort()
            raise self.error
        view = memoryview(data).cast("B")
        self.size += len(view)
        if self.upload_id is None and len(self.buffer) + len(view) <= \
                self.options.multipart_threshold:
            self.buffer += view
            return
        try:
            if self.upload_id is None:
                await self._create()
            part = self.options.part_size
            if self.buffer:
                take = min(part - len(self.buffer), len(view))
                self.buffer += view[:take]
                view = view[take:]
                if len(self.buffer) >= part:
                    full, self.buffer = self.buffer, bytearray()
                    await self._submit(full)
            while len(view) >= part:  # whole parts straight from the caller's buffer
                await self._submit(view[:part])
                view = view[part:]
            self.buffer += view
        except BaseException:
            await self.abort()
            raise

    async def _create(self) -> None:
        client = await self.storage._get_client()

        async def send() -> dict[str, Any]:
            response: dict[str, Any] = await client.create_multipart_upload(
                Bucket=self.storage.bucket, Key=self.full,
                Metadata={TOKEN_KEY: self.token})
            return response

        response = await call(self.options.retry, "create multipart upload", self.url, send)
        self.upload_id = response["UploadId"]

    async def _submit(self, data: bytes | bytearray | memoryview) -> None:
        """Upload ``data`` as the next part, in a task; waits for a free slot first. The part
        is copied and hashed (Content-MD5) in the worker pool, not on the event loop."""
        await self.slots.acquire()
        if self.error is not None:
            self.slots.release()
            raise self.error
        try:
            part, md5 = await prepare_body(data)
        except BaseException:
            self.slots.release()
            raise
        number = self.next_part
        self.next_part += 1
        task = asyncio.ensure_future(self._upload(number, part, md5))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _upload(self, number: int, part: io.BytesIO, md5: str) -> None:
        try:
            client = await self.storage._get_client()

            async def send() -> dict[str, Any]:
                part.seek(0)  # (a retry sends the part again)
                response: dict[str, Any] = await client.upload_part(
                    Bucket=self.storage.bucket, Key=self.full, UploadId=self.upload_id,
                    PartNumber=number, Body=part, ContentMD5=md5)
                return response

            response = await call(self.options.retry, f"upload part {number}", self.url, send)
            self.parts[number] = response["ETag"]
        except BaseException as exc:
            if self.error is None:
                self.error = exc
        finally:
            self.slots.release()

    # --- finishing ---------------------------------------------------------------------------
    async def close(self) -> ObjectInfo:
        """Publish the object whole (with the writer's condition) and return its info.

        Errors: :class:`~aiostore.errors.PreconditionFailedError` when the condition does not
        hold; storage errors. On any error or cancellation the upload is aborted and nothing
        is published (a completion already accepted by the store stays: the object is whole).
        """
        return await self._close()

    async def _publish(self) -> ObjectInfo:
        if self.upload_id is None:
            small, self.buffer = self.buffer, bytearray()
            return await self.storage._put_single(self.key, self.full, small,
                                                  self.if_none_match, self.if_match)
        if self.buffer or self.next_part == 1:
            last, self.buffer = self.buffer, bytearray()
            await self._submit(last)
        while self.tasks:
            await asyncio.gather(*list(self.tasks))
        if self.error is not None:
            raise self.error
        return await self._complete()

    async def _complete(self) -> ObjectInfo:
        client = await self.storage._get_client()
        extra = self.storage._conditions(self.if_none_match, self.if_match)
        parts = [{"ETag": etag, "PartNumber": n} for n, etag in sorted(self.parts.items())]

        async def send() -> dict[str, Any]:
            response: dict[str, Any] = await client.complete_multipart_upload(
                Bucket=self.storage.bucket, Key=self.full, UploadId=self.upload_id,
                MultipartUpload={"Parts": parts}, **extra)
            return response

        for attempt in range(self.options.retry.attempts):
            try:
                response = await call(self.options.retry, "complete multipart upload",
                                      self.url, send, idempotent=False)
                return ObjectInfo(key=self.key, size=self.size,
                                  etag=response.get("ETag", "").strip('"'),
                                  mtime=datetime.now(timezone.utc))
            except (Ambiguous, NotFoundError) as exc:
                # the response was lost (or a retry found the upload already completed):
                # read the object back; our write token says whether it is ours
                outcome = await self.storage.resolve_conditional(
                    self.key, self.token, self.if_none_match, self.if_match)
                if outcome is not None:
                    return outcome
                if isinstance(exc, NotFoundError):
                    raise
                await asyncio.sleep(self.options.retry.delay(attempt))
        raise translate(ConnectionError("no answer"), "complete multipart upload", self.url)

    async def abort(self) -> None:
        """Stop the part uploads and abort the multipart upload (shielded; idempotent)."""
        if self.state in ("aborted", "closed"):
            return
        self.state = "aborted"
        self.buffer = bytearray()
        task = asyncio.ensure_future(self._abort())
        while not task.done():  # finish the clean-up even if cancelled meanwhile
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.done():
                    break
                continue
        with contextlib.suppress(Exception):
            task.result()

    async def _abort(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        if self.upload_id is None:
            return
        client = await self.storage._get_client()
        upload_id = self.upload_id

        async def send() -> None:
            await client.abort_multipart_upload(Bucket=self.storage.bucket, Key=self.full,
                                                UploadId=upload_id)

        with contextlib.suppress(NotFoundError, PreconditionFailedError):
            await call(self.options.retry, "abort multipart upload", self.url, send)
