"""The listings that resolve keys, shared by concurrent resolutions in one directory.

Resolving a key lists ``<stem>.`` — one request per ``get``, ``set``, ``contains`` or ``info``.
Concurrent resolutions in one directory share requests, like a group commit: while a listing
of a directory is in flight, the resolutions that arrive wait for the *next* one, which starts
after all of them arrived and lists their common prefix once. So every resolution still sees a
listing that started after it did (nothing staler than a listing of its own), and 32 concurrent
gets of keys in one directory cost a handful of listings instead of 32.

A shared listing reads at most :data:`SHARED_LIMIT` objects; the stems it did not cover by then
(a huge directory) are listed on their own.
"""

from __future__ import annotations

from functools import partial

import anyio

from ..errors import InvalidKeyError
from ..storage.base import ObjectInfo, Storage, check_prefix
from .gather import gather

__all__ = ["SHARED_LIMIT", "Listings"]

#: objects a shared listing reads at most (one S3 page) before falling back to own listings
SHARED_LIMIT = 1000


class _Batch:
    """Resolutions waiting for the next listing of their directory."""

    def __init__(self) -> None:
        self.stems: set[str] = set()
        self.done = anyio.Event()
        self.results: dict[str, list[ObjectInfo]] | None = None  # None: the leader gave up


class _Directory:
    def __init__(self) -> None:
        self.inflight: anyio.Event | None = None  # set when the listing in flight is done
        self.next: _Batch | None = None


class Listings:
    """``await listings.of(stem)``: the objects whose keys start with ``stem + "."``."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._dirs: dict[str, _Directory] = {}
        #: listing requests sent (for tests and measurements)
        self.requests = 0

    async def of(self, stem: str) -> list[ObjectInfo]:
        """The objects of ``stem`` (and everything else named ``stem.*``), from a listing that
        started after this call. Cancellation: safe (a leader cancelled while it lists lets
        the others of its batch list again)."""
        directory = stem.rpartition("/")[0]
        while True:
            d = self._dirs.get(directory)
            if d is None:
                d = self._dirs[directory] = _Directory()
            if d.inflight is None:  # nobody lists this directory: list alone, now
                done = d.inflight = anyio.Event()
                try:
                    return await self._list(stem + ".")
                finally:
                    d.inflight = None
                    done.set()
                    self._forget(directory, d)
            batch = d.next
            if batch is None:  # lead the next listing of this directory
                batch = d.next = _Batch()
                batch.stems.add(stem)
                return await self._lead(directory, d, batch, stem)
            batch.stems.add(stem)
            await batch.done.wait()
            if batch.results is not None:
                return batch.results[stem]
            # the leader was cancelled: try again

    async def _lead(self, directory: str, d: _Directory, batch: _Batch, stem: str
                    ) -> list[ObjectInfo]:
        try:
            while d.inflight is not None:
                await d.inflight.wait()
            if d.next is batch:
                d.next = None  # closed: later arrivals form the next batch
            done = d.inflight = anyio.Event()
            try:
                batch.results = await self._shared(directory, sorted(batch.stems))
            finally:
                d.inflight = None
                done.set()
            return batch.results[stem]
        finally:
            if d.next is batch:
                d.next = None
            batch.done.set()
            self._forget(directory, d)

    def _forget(self, directory: str, d: _Directory) -> None:
        if d.inflight is None and d.next is None and self._dirs.get(directory) is d:
            del self._dirs[directory]

    async def _list(self, prefix: str) -> list[ObjectInfo]:
        self.requests += 1
        return [info async for info in self.storage.list(prefix)]

    async def _shared(self, directory: str, stems: list[str]) -> dict[str, list[ObjectInfo]]:
        """One listing of the stems' common prefix (bounded), own listings for the rest."""
        if len(stems) == 1:
            return {stems[0]: await self._list(stems[0] + ".")}
        common = _shared_prefix(stems, directory)
        found: list[ObjectInfo] = []
        last: str | None = None
        complete = True
        self.requests += 1
        listing = self.storage.list(common)
        try:
            async for info in listing:
                found.append(info)
                last = info.key
                if len(found) >= SHARED_LIMIT:
                    complete = False
                    break
        finally:
            aclose = getattr(listing, "aclose", None)
            if aclose is not None:
                await aclose()
        out: dict[str, list[ObjectInfo]] = {}
        rest: list[str] = []
        for stem in stems:
            head = stem + "."
            if complete or (last is not None and not last.startswith(head) and last > head):
                out[stem] = [i for i in found if i.key.startswith(head)]
            else:
                rest.append(stem)
        if rest:
            async def own(stem: str) -> None:
                out[stem] = await self._list(stem + ".")

            await gather(*[partial(own, stem) for stem in rest])
        return out


def _shared_prefix(stems: list[str], directory: str) -> str:
    """The longest prefix of every stem that is a valid listing prefix, else the directory."""
    first, last = min(stems), max(stems)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    common = first[:n]
    base = f"{directory}/" if directory else ""
    if len(common) <= len(base):
        return base
    try:
        check_prefix(common)
    except InvalidKeyError:  # (say, one ending in "/." or "..")
        return base
    return common

