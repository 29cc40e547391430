"""``atomic_open`` on ``s3://`` URIs: a streamed upload that appears whole at the commit.

An object store's PUT is already what the local publish recipe builds: the object appears
whole or not at all, and it is durable once acknowledged. Whole writes and ``read`` on
``s3://`` go through :mod:`aiostore.formats` (an :class:`~aiostore.formats.ObjectDestination`);
this module is the file-like face of a multipart upload. ``overwrite=False`` is
``If-None-Match: *``. Each file opens and closes its own :class:`~aiostore.storage.Storage`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio.from_thread
import anyio.lowlevel

from .._io.offload import run_sync
from ..errors import InvalidArgumentError, PreconditionFailedError
from ..formats.destination import exists_error
from ..storage import ObjectWriter, Storage, open_storage, split_url
from .stream import AtomicFile

__all__ = ["RemoteAtomicFile"]

_SINK_CHUNK = 8 << 20  # bytes handed from the encoding thread to the uploader at a time


def _storage(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Storage, str]:
    root, key = split_url(url)
    return open_storage(root, **dict(storage_options or {})), key


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
            raise exists_error(self.name, exc) from exc
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
