"""The storage contract: what a local directory and an S3 bucket both provide.

A :class:`Storage` stores whole objects under ``/``-separated keys, below a root (a directory,
or ``s3://bucket/prefix``). Writes are atomic — an object appears whole or not at all — and
durable when they return; ``put(..., if_none_match=True)`` (create if absent) and
``put(..., if_match=etag)`` (compare and swap) are exact on every backend: they are the commit
primitive of the snapshot tables.
"""

from __future__ import annotations

import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from .._io.base import Buffer
from ..errors import ClosedError, InvalidArgumentError, InvalidKeyError, InvalidTypeError

__all__ = ["ObjectInfo", "ObjectWriter", "Storage", "check_key", "join_key"]

#: keys reserved by the local backend (its lock file and temp files)
_RESERVED = re.compile(r"(^|/)\.aiostore|\.aiostore-tmp$")
_MAX_KEY_BYTES = 1024

Data = Buffer | Iterable[Buffer] | AsyncIterable[Buffer]
"""What ``put`` accepts: bytes-like, or an (async) iterable of bytes-like chunks."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object."""

    #: the key, relative to the storage root
    key: str
    #: the size in bytes
    size: int
    #: an opaque version tag, changed by every write (S3's ETag without its quotes; the local
    #: backend's identifies the file version: inode, mtime and size). Pass it to
    #: ``put(..., if_match=etag)`` for compare-and-swap.
    etag: str
    #: when the object was last written (timezone-aware, UTC)
    mtime: datetime


def check_key(key: object) -> str:
    """``key`` if it is a valid object key, else :class:`~aiostore.errors.InvalidKeyError`.

    A key is a non-empty ``/``-separated relative path of at most 1024 UTF-8 bytes, without
    empty, ``.`` or ``..`` segments, NUL characters, or names reserved by aiostore
    (``.aiostore*``, ``*.aiostore-tmp``). The same rules hold on every backend, so that a
    key valid on S3 is valid locally and cannot escape the storage root.
    """
    if not isinstance(key, str):
        raise InvalidTypeError(f"an object key must be str, not {type(key).__name__}")
    if not key:
        raise InvalidKeyError("an object key must not be empty")
    if "\x00" in key:
        raise InvalidKeyError(f"an object key must not contain NUL: {key!r}")
    if key.startswith("/"):
        raise InvalidKeyError(f"an object key is relative to the storage root, not absolute: "
                              f"{key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKeyError(f"an object key must not have empty, '.' or '..' segments: "
                                  f"{key!r}")
    if _RESERVED.search(key):
        raise InvalidKeyError(f"keys named .aiostore* or *.aiostore-tmp are reserved: {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        raise InvalidKeyError(f"an object key must be at most {_MAX_KEY_BYTES} bytes")
    return key


def check_prefix(prefix: object) -> str:
    """A ``list`` prefix: ``""`` or the start of a key (validated like a key, a trailing ``/``
    allowed)."""
    if not isinstance(prefix, str):
        raise InvalidTypeError(f"a prefix must be str, not {type(prefix).__name__}")
    if prefix:
        check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def join_key(*parts: str) -> str:
    """Join key parts with ``/`` (empty parts skipped)."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def check_byte_range(byte_range: object) -> tuple[int, int | None] | None:
    """``(start, stop)`` with ``0 <= start`` and ``stop`` None (to the end) or ``>= start``."""
    if byte_range is None:
        return None
    if not isinstance(byte_range, tuple) or len(byte_range) != 2:
        raise InvalidArgumentError(f"byte_range must be (start, stop), not {byte_range!r}")
    start, stop = byte_range
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise InvalidArgumentError(f"byte_range start must be an int >= 0, not {start!r}")
    if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int)
                             or stop < start):
        raise InvalidArgumentError(f"byte_range stop must be None or an int >= start, not "
                                   f"{stop!r}")
    return start, stop


class ObjectWriter(ABC):
    """A streaming write of one object (``storage.open_writer(key)``): ``await w.write(b)``
    any number of times, then ``await w.close()`` publishes the object whole; ``await
    w.abort()`` (or an exception in ``async with``) discards it. Memory stays bounded."""

    @abstractmethod
    async def write(self, data: Buffer) -> None:
        """Append ``data`` (copied if needed; may wait while earlier parts upload)."""

    @abstractmethod
    async def close(self) -> ObjectInfo:
        """Publish the object (whole, durably, honouring the writer's condition)."""

    @abstractmethod
    async def abort(self) -> None:
        """Discard everything written; nothing is published. Idempotent."""

    async def __aenter__(self) -> ObjectWriter:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.abort()


class Storage(ABC):
    """Objects under ``/``-separated keys below a root; see :func:`aiostore.open_storage`.

    An async context manager (``async with``) and awaitable-free: creating it opens nothing
    that needs awaiting except the S3 client, which :meth:`__aenter__` (or the first call)
    creates; :meth:`aclose` releases it. A storage garbage-collected while open emits a
    ``ResourceWarning``.
    """

    #: where the root is: a directory path, or ``s3://bucket/prefix``
    url: str

    def __init__(self, url: str) -> None:
        self.url = url
        self._closed = False
        self._opened = False

    # --- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Storage:
        await self._open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def _open(self) -> None:
        self._check_open()
        self._opened = True

    async def aclose(self) -> None:
        """Release the client and connections. Idempotent; later calls raise ClosedError."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"the storage at {self.url} is closed")

    def __del__(self) -> None:
        if getattr(self, "_opened", False) and not getattr(self, "_closed", True):
            warnings.warn(f"storage {self.url!r} was never closed (use `async with` or "
                          "aclose())", ResourceWarning, stacklevel=1)

    # --- objects ---------------------------------------------------------------------------
    @abstractmethod
    async def put(self, key: str, data: Data, *, if_none_match: bool = False,
                  if_match: str | None = None) -> ObjectInfo:
        """Store ``data`` under ``key``, atomically and durably; return its :class:`ObjectInfo`.

        ``data`` is bytes-like, or an iterable / async iterable of bytes-like chunks (streamed
        with bounded memory). ``if_none_match=True`` creates the object only if ``key`` does
        not exist; ``if_match=etag`` replaces it only if its current ETag is ``etag``.
        Either raises :class:`~aiostore.errors.PreconditionFailedError` when the condition
        does not hold, and nothing changes.
        """

    @abstractmethod
    async def get(self, key: str, *, byte_range: tuple[int, int | None] | None = None
                  ) -> bytes:
        """The object's bytes (``byte_range=(start, stop)``: ``data[start:stop]``, stop
        None for the end). :class:`~aiostore.errors.NotFoundError` if there is none."""

    @abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """The object's :class:`ObjectInfo`; :class:`~aiostore.errors.NotFoundError` if
        there is none."""

    @abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order (UTF-8 byte order)."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error (as on S3)."""

    @abstractmethod
    async def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy object ``src`` to ``dst`` (atomically replacing it); the new object's info."""

    @abstractmethod
    def open_writer(self, key: str, *, if_none_match: bool = False,
                    if_match: str | None = None) -> ObjectWriter:
        """A streaming writer for ``key`` (see :class:`ObjectWriter`); conditions as ``put``."""
