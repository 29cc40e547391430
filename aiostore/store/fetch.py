"""Reading one version of a stored object into memory, with bounded overhead.

A small object (up to :data:`RANGE_SIZE`) is one ``get``. A large one is read as byte ranges
into one preallocated, writable buffer — memory is the object's size plus the ranges in flight
(the storage's ``max_concurrency`` of them), never two copies of the object — and the decoders
can use the buffer in place (a ``.npy`` array is a view of it).

The version is pinned by its ETag: when ``verify`` is asked (always for several ranges, and
whenever the bytes go into the cache), a ``head`` after the read must report the ETag the
read started from, or :class:`ObjectChanged` is raised and the caller resolves the key again.

TODO(storage): a ``get(..., if_match=etag)`` on :class:`~aiostore.Storage` would pin every
range to the version exactly (S3 ``If-Match``) and save the ``head``; until then an object
replaced twice during one read, ending with the same ETag (same content on S3) but read
across the change, cannot be told apart.
"""

from __future__ import annotations

from ..errors import NotFoundError
from ..storage.base import ObjectInfo, Storage
from .gather import gather

__all__ = ["RANGE_CONCURRENCY", "RANGE_SIZE", "ObjectChanged", "fetch", "range_plan"]

#: objects larger than this are read as ranges of this size
RANGE_SIZE = 8 << 20
#: ranges in flight at once
RANGE_CONCURRENCY = 2


class ObjectChanged(Exception):
    """The object was replaced or removed while it was read (internal: the caller retries)."""


def range_plan(storage: Storage) -> tuple[int, int]:
    """(range size, ranges in flight) for ``storage``: ranges of :data:`RANGE_SIZE`, as many
    in flight as the storage's ``max_concurrency`` (S3: the knob that bounds an upload's parts
    in flight bounds a download's ranges too), else :data:`RANGE_CONCURRENCY`."""
    options = getattr(storage, "options", None)
    concurrency = getattr(options, "max_concurrency", None)
    if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency > 0:
        return RANGE_SIZE, concurrency
    return RANGE_SIZE, RANGE_CONCURRENCY


async def fetch(storage: Storage, info: ObjectInfo, *, verify: bool) -> bytes | bytearray:
    """The bytes of the object ``info`` describes (``info.key`` at ``info.etag``): ``bytes``
    for a small object, a ``bytearray`` (writable: decoders may keep it) for a large one.

    Raises :class:`ObjectChanged` when the object is not that version any more (another size,
    another ETag after the read, gone), :class:`~aiostore.errors.NotFoundError` if it vanished
    before the first byte. Cancellation: safe at any point (nothing is written).
    """
    range_size, concurrency = range_plan(storage)
    buf: bytes | bytearray
    if info.size <= range_size:
        buf = await storage.get(info.key)
        if verify and len(buf) != info.size:
            raise ObjectChanged(info.key)
    else:
        buf = bytearray(info.size)
        await _ranges(storage, info, buf, range_size, concurrency)
    if verify or info.size > range_size:
        await check_version(storage, info)
    return buf


async def check_version(storage: Storage, info: ObjectInfo) -> None:
    """:class:`ObjectChanged` unless ``info.key`` still has ETag ``info.etag``."""
    try:
        now = await storage.head(info.key)
    except NotFoundError:
        raise ObjectChanged(info.key) from None
    if now.etag != info.etag:
        raise ObjectChanged(info.key)


async def _ranges(storage: Storage, info: ObjectInfo, buf: bytearray, range_size: int,
                  concurrency: int) -> None:
    """Fill ``buf`` with ranges of ``info.key``, ``concurrency`` at a time."""
    starts = iter(range(0, info.size, range_size))

    async def worker() -> None:
        for start in starts:  # (shared iterator: each range is read by one worker)
            stop = min(start + range_size, info.size)
            data = await storage.get(info.key, byte_range=(start, stop))
            if len(data) != stop - start:
                raise ObjectChanged(info.key)
            buf[start:stop] = data  # (same length: in place)
            del data

    await gather(*[worker for _ in range(max(1, concurrency))])
