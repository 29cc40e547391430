"""The writers and ``read`` on ``s3://`` URIs.

An object store's PUT is already what the local publish recipe builds: the object appears
whole or not at all, and it is durable once acknowledged. So a remote write encodes in the
worker pool (as locally: serialisation errors come before any request), then puts the object —
one ``PutObject``, or a multipart upload for large or streamed data, aborted on any failure
or cancellation. ``overwrite=False`` is ``If-None-Match: *``. Each call opens and closes its
own :class:`~aiostore.storage.Storage`; open one yourself with
:func:`aiostore.open_storage` to reuse its connections across many objects.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio.from_thread
import anyio.lowlevel

from .._io.base import Buffer
from .._io.offload import Abort, run_commit, run_sync
from ..errors import AlreadyExistsError, InvalidArgumentError, PreconditionFailedError
from ..storage import ObjectWriter, Storage, open_storage, split_url
from .stream import AtomicFile

__all__ = ["RemoteAtomicFile", "get_remote", "put_remote", "write_remote_stream"]

_SINK_CHUNK = 8 << 20  # bytes handed from the encoding thread to the uploader at a time


def _storage(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Storage, str]:
    root, key = split_url(url)
    return open_storage(root, **dict(storage_options or {})), key


def _exists(url: str, exc: PreconditionFailedError) -> AlreadyExistsError:
    err = AlreadyExistsError(errno.EEXIST, "the target exists and overwrite=False")
    err.filename = url
    err.__cause__ = exc
    return err


async def put_remote(url: str, encode: Callable[[], Iterable[Buffer]], *, overwrite: bool,
                     storage_options: Mapping[str, Any] | None) -> None:
    """Encode in the worker pool, then put the object (``overwrite=False``: create only)."""
    storage, key = _storage(url, storage_options)
    async with storage:
        chunks = await run_sync(lambda: list(encode()))
        data: Buffer = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            await storage.put(key, data, if_none_match=not overwrite)
        except PreconditionFailedError as exc:
            raise _exists(url, exc) from exc


async def get_remote(url: str, storage_options: Mapping[str, Any] | None) -> bytes:
    """The object's bytes."""
    storage, key = _storage(url, storage_options)
    async with storage:
        return await storage.get(key)


async def write_remote_stream(url: str, produce: Callable[[Callable[[Buffer], None], Abort],
                                                          None], *,
                              overwrite: bool, storage_options: Mapping[str, Any] | None) -> None:
    """Run ``produce(sink, abort)`` in the worker pool; every chunk it passes to ``sink`` is
    uploaded (multipart beyond the threshold, with back-pressure: the encoder waits for part
    slots, so memory stays bounded). The object is published only when ``produce`` returns;
    on an error or cancellation the upload is aborted."""
    storage, key = _storage(url, storage_options)
    async with storage:
        writer = storage.open_writer(key, if_none_match=not overwrite)
        token = anyio.lowlevel.current_token()
        pending: list[Buffer] = []
        size = [0]

        def hand_over() -> None:
            data = b"".join(pending)
            pending.clear()
            size[0] = 0
            anyio.from_thread.run(writer.write, data, token=token)

        def sink(chunk: Buffer) -> None:
            pending.append(bytes(chunk))
            size[0] += len(chunk)
            if size[0] >= _SINK_CHUNK:
                hand_over()

        def job(abort: Abort) -> None:
            produce(sink, abort)
            if pending:
                hand_over()

        abort = Abort()
        try:
            await run_commit(job, abort, abort=abort)
            await writer.close()
        except PreconditionFailedError as exc:
            await writer.abort()
            raise _exists(url, exc) from exc
        except BaseException:
            await writer.abort()
            raise


class RemoteAtomicFile(AtomicFile[Any]):
    """:func:`aiostore.atomic_open` on an ``s3://`` URI: buffered chunks go to a streaming
    upload (:meth:`~aiostore.storage.Storage.open_writer`); commit completes it, discard (or
    an error in ``async with``) aborts it. Nothing is visible before the commit."""

    def __init__(self, url: str, mode: str, *, encoding: str, errors: str, overwrite: bool,
                 durable: bool, perm: int | None, buffer_size: int,
                 storage_options: Mapping[str, Any] | None) -> None:
        if perm is not None:
            raise InvalidArgumentError("perm (permission bits) does not apply to s3:// objects")
        super().__init__(url, mode, encoding=encoding, errors=errors, overwrite=overwrite,
                         durable=durable, perm=None, buffer_size=max(buffer_size, 5 << 20))
        self._storage_options = storage_options
        self._store: Storage | None = None
        self._writer: ObjectWriter | None = None

    async def _open_writer(self) -> ObjectWriter:
        if self._writer is None:
            storage, key = _storage(self.name, self._storage_options)
            await storage.__aenter__()
            self._store = storage
            self._writer = storage.open_writer(key, if_none_match=not self._overwrite)
        return self._writer

    async def _close_storage(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await store.aclose()

    async def flush(self) -> None:
        """Hand buffered data to the upload (not a commit: nothing is published)."""
        if not self._pending:
            return
        self._check_open()
        writer = await self._open_writer()
        await writer.write(b"".join(self._take_pending()))

    async def write_encoded(self, encode: Callable[[Any], bytes], arg: Any) -> None:
        """Run ``encode(arg)`` in the worker pool and append the bytes it returns."""
        self._check_open()
        data = await run_sync(encode, arg)
        self._pending.append(data)
        self._pending_size += len(data)
        self.bytes_written += len(data)
        if self._pending_size >= self._buffer_size:
            await self.flush()

    async def commit(self) -> None:
        """Complete the upload: the object appears whole. Cancellation: the upload is
        aborted (shielded) unless the store already accepted its completion."""
        self._check_open()
        if self._text:
            assert self._encoder is not None
            tail = self._encoder.encode("", final=True)
            if tail:
                self._pending.append(tail)
        try:
            writer = await self._open_writer()
            if self._pending:
                await writer.write(b"".join(self._take_pending()))
            await writer.close()
        except PreconditionFailedError as exc:
            self._state = "discarded"
            await self._close_storage()
            raise _exists(self.name, exc) from exc
        except BaseException:
            self._state = "discarded"
            if self._writer is not None:
                await self._writer.abort()
            await self._close_storage()
            raise
        self._state = "committed"
        await self._close_storage()

    async def discard(self) -> None:
        """Abort the upload; nothing is published. Idempotent."""
        if self._state != "open":
            return
        self._state = "discarded"
        self._pending.clear()
        with anyio.CancelScope(shield=True):
            if self._writer is not None:
                await self._writer.abort()
            await self._close_storage()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "open" and getattr(self, "_writer", None) is not None:
            import warnings

            warnings.warn(f"atomic file for {self.name!r} was never committed or discarded; "
                          "its upload is left to the bucket's lifecycle rule", ResourceWarning,
                          stacklevel=1)
