"""A destination that publishes an object to the store and, from the same bytes, its cache
entry: a ``set`` through a cached store leaves a valid entry without a second download."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import anyio

from .._io.base import Buffer
from .._io.offload import Abort
from ..formats import Destination, ObjectDestination
from ..formats.destination import Produce
from ..storage.base import ObjectInfo
from .cache import Cache

__all__ = ["CachingDestination"]


class CachingDestination(Destination):
    """``inner`` (the object ``key`` of the store), plus the cache entry of ``key``: written
    from the chunks the encoder produces, published once the store has accepted the object
    (with the ETag it reports), dropped if the upload fails.

    Cancellation: as ``inner``'s; the entry is published only for an object that was."""

    def __init__(self, inner: ObjectDestination, cache: Cache, key: str) -> None:
        self.inner = inner
        self.cache = cache
        self.key = key
        self.name = inner.name

    async def put(self, encode: Callable[[], Iterable[Buffer]]) -> ObjectInfo:
        """Encode, put the object, then store the same chunks as its entry."""
        captured: list[Buffer] = []

        def tee() -> list[Buffer]:
            chunks = list(encode())
            captured.extend(chunks)
            return chunks

        info = await self.inner.put(tee)
        await self.cache.store(info, captured)
        return info

    async def stream(self, produce: Produce) -> ObjectInfo:
        """Upload what ``produce`` pushes, writing each chunk to the entry's temp file too
        (in the encoding thread); publish the entry after the upload completed."""
        writer = self.cache.writer(self.key)

        def both(sink: Callable[[Buffer], None], abort: Abort) -> None:
            def tee(chunk: Buffer) -> None:
                writer.write(chunk)
                sink(chunk)

            produce(tee, abort)

        try:
            info = await self.inner.stream(both)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await writer.discard()
            raise
        with anyio.CancelScope(shield=True):  # the object is published: so is its entry
            await writer.commit(info)
        return info
