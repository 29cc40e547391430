"""What the two S3 backends share: the validated options, the bucket/prefix/key mapping,
conditional-write arguments and the resolution of a conditional write whose response was lost.

* :class:`S3Options` — ``storage_options`` for ``s3://`` (one set of names for both backends).
* :class:`S3StorageBase` — the root (``s3://bucket/prefix``), key validation and the write-token
  check, on top of each backend's ``_head``.
* :func:`join` — a large ``b"".join`` in the worker pool, never on the event loop, and never
  one long hold of the GIL (:func:`concat`).

Neither backend module is imported here: ``s3`` (aiobotocore) and ``obstore_s3`` both import this
module, never each other's internals in a circle.
"""

from __future__ import annotations

import secrets
import time
from abc import abstractmethod
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any

from .._io.base import Buffer
from ..errors import (
    BucketNotFoundError,
    ClosedError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionFailedError,
)
from .base import Data, ObjectInfo, ObjectWriter, Storage, check_key

__all__ = ["INLINE", "TOKEN_KEY", "S3Options", "S3StorageBase", "S3WriterBase", "concat",
           "copy_pieces", "join", "strip_etag"]

MiB = 1 << 20
#: below this, copying or joining a body on the event loop is cheaper than a thread hop
INLINE = 256 << 10
#: user metadata (``x-amz-meta-aiostore-write``) that carries the write token of a conditional
#: put (and of every multipart upload of the obstore backend)
TOKEN_KEY = "aiostore-write"


#: the pieces a buffer that is not ``bytes`` is copied in, off the loop (see :func:`concat`)
PIECE = 256 << 10


def copy_pieces(data: Buffer, piece: int = PIECE) -> list[bytes]:
    """``data`` copied into ``bytes`` of ``piece`` bytes each. Copying out of a buffer holds
    the GIL, so the copy goes piece by piece and lets a waiting thread (the event loop's)
    run between pieces: for the worker pool, where a 256 MiB copy in one go would stall the
    loop for its whole length."""
    view = memoryview(data).cast("B")
    pieces: list[bytes] = []
    for at in range(0, len(view), piece):
        pieces.append(view[at:at + piece].tobytes())
        time.sleep(0)  # releases the GIL: the event loop runs if it was waiting for it
    return pieces


def concat(chunks: Sequence[Buffer]) -> bytes:
    """``b"".join(chunks)``, built so that a large one holds the GIL only briefly: CPython's
    join copies without the GIL only when every item is exactly ``bytes``, so anything else
    (``bytearray``, ``memoryview``, obstore's ``Bytes``) is first copied in pieces."""
    parts: list[bytes] = []
    for chunk in chunks:
        if type(chunk) is bytes:
            parts.append(chunk)
        else:
            parts.extend(copy_pieces(chunk))
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def join(chunks: Sequence[Buffer]) -> bytes:
    """``b"".join(chunks)`` as ``bytes``; in the worker pool when large, through
    :func:`concat`, so the event loop keeps running while it copies."""
    from .._io.offload import run_sync

    if len(chunks) == 1 and type(chunks[0]) is bytes:
        return chunks[0]
    if sum(len(c) for c in chunks) < INLINE:
        return b"".join(chunks)
    data: bytes = await run_sync(concat, chunks)
    return data


def strip_etag(etag: str | None) -> str:
    """An ETag without its quotes (``""`` for None)."""
    return (etag or "").strip('"')


class S3Options:
    """Validated ``storage_options`` for S3 (unknown names are an error).

    Connection: ``endpoint_url``, ``region_name``, ``aws_access_key_id``,
    ``aws_secret_access_key``, ``aws_session_token``, ``profile`` (otherwise the standard AWS
    environment variables and config files apply), ``addressing_style`` ("auto", "path",
    "virtual"), ``max_pool_connections`` (64), ``connect_timeout`` / ``read_timeout``
    (seconds). Behaviour: ``retries`` (attempts in all, 5), ``multipart_threshold`` (64 MiB),
    ``part_size`` (16 MiB, at least 5 MiB), ``max_concurrency`` (parts or ranges in flight per
    call, 8).
    """

    _CLIENT = ("endpoint_url", "region_name", "aws_access_key_id", "aws_secret_access_key",
               "aws_session_token")
    KNOWN = frozenset({*_CLIENT, "profile", "addressing_style", "max_pool_connections",
                       "connect_timeout", "read_timeout", "retries", "multipart_threshold",
                       "part_size", "max_concurrency"})

    def __init__(self, options: Mapping[str, Any]) -> None:
        from .retry import RetryPolicy

        unknown = sorted(set(options) - self.KNOWN)
        if unknown:
            raise InvalidArgumentError(f"unknown storage_options {unknown}; known: "
                                       f"{sorted(self.KNOWN)}")
        for name in (*self._CLIENT, "profile"):
            value = options.get(name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidArgumentError(f"{name} must be a non-empty str, not {value!r}")
        self.client_kwargs: dict[str, str] = {k: options[k] for k in self._CLIENT
                                              if options.get(k) is not None}
        self.profile: str | None = options.get("profile")
        style = options.get("addressing_style", "auto")
        if style not in ("auto", "path", "virtual"):
            raise InvalidArgumentError(f"addressing_style must be 'auto', 'path' or 'virtual', "
                                       f"not {style!r}")
        self.addressing_style: str = style
        self.max_pool_connections = _int(options, "max_pool_connections", 64, 1)
        self.connect_timeout = _num(options, "connect_timeout", 10.0)
        self.read_timeout = _num(options, "read_timeout", 60.0)
        self.retry = RetryPolicy(_int(options, "retries", 5, 1))
        self.multipart_threshold = _int(options, "multipart_threshold", 64 * MiB, 5 * MiB)
        self.part_size = _int(options, "part_size", 16 * MiB, 5 * MiB)
        self.max_concurrency = _int(options, "max_concurrency", 8, 1)


def _int(options: Mapping[str, Any], name: str, default: int, minimum: int) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an int >= {minimum}, not {value!r}")
    return value


def _num(options: Mapping[str, Any], name: str, default: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgumentError(f"{name} must be a positive number, not {value!r}")
    return float(value)


class S3StorageBase(Storage):
    """The root ``s3://bucket/prefix`` of an S3 backend, its options and the parts of the
    contract that do not depend on the client: key mapping, conditions, write tokens."""

    def __init__(self, bucket: str, prefix: str, options: Mapping[str, Any]) -> None:
        if not bucket:
            raise InvalidArgumentError("an s3:// URI needs a bucket: s3://bucket/prefix")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        super().__init__(f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}")
        self.bucket = bucket
        self.prefix = prefix
        self.options = S3Options(options)

    def _key(self, key: str) -> str:
        """The object's key in the bucket (validated)."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    @staticmethod
    def _check_conditions(if_none_match: bool, if_match: str | None) -> None:
        if if_none_match and if_match is not None:
            raise InvalidArgumentError("pass if_none_match or if_match, not both")
        if if_match is not None and (not isinstance(if_match, str) or not if_match):
            raise InvalidArgumentError(f"if_match must be an ETag string, not {if_match!r}")

    async def head(self, key: str) -> ObjectInfo:
        """See :meth:`Storage.head` (``HeadObject``). Cancellation: safe at any point."""
        info, _ = await self._head(key)
        return info

    async def put(self, key: str, data: Data, *, if_none_match: bool = False,
                  if_match: str | None = None) -> ObjectInfo:
        """See :meth:`Storage.put`. Up to ``multipart_threshold`` bytes: one ``PutObject``;
        more, or an iterable of chunks: a streamed multipart upload (see :meth:`open_writer`).

        Cancellation: a single put that was sent may or may not take effect (as with any
        request in flight), whole or not at all; a multipart upload is aborted (shielded from
        further cancellation) unless its last part was already handed over, in which case it
        is finished and the object published before the cancellation is raised.
        """
        full = self._key(key)
        self._check_conditions(if_none_match, if_match)
        chunks: Iterable[Buffer] | AsyncIterable[Buffer]
        if isinstance(data, (bytes, bytearray, memoryview)):
            view = memoryview(data).cast("B")
            if len(view) <= self.options.multipart_threshold:
                body = data if type(data) is bytes else view  # (bytes: no copy at all)
                return await self._put_single(key, full, body, if_none_match, if_match)
            chunks = (view,)
        else:
            chunks = data
        writer = self.open_writer(key, if_none_match=if_none_match, if_match=if_match)
        try:
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    await writer.write(chunk)
            else:
                for chunk in chunks:
                    await writer.write(chunk)
        except BaseException:
            await writer.abort()
            raise
        return await writer.close()

    @abstractmethod
    async def _put_single(self, key: str, full: str, body: bytes | bytearray | memoryview,
                          if_none_match: bool, if_match: str | None) -> ObjectInfo:
        """One ``PutObject`` of ``body`` (not copied by the caller: a backend copies what is
        not ``bytes`` before it lets go of the event loop), with the write's condition."""

    @abstractmethod
    async def _head(self, key: str) -> tuple[ObjectInfo, dict[str, str]]:
        """(info, user metadata) of the object; NotFoundError if there is none."""

    async def resolve_conditional(self, key: str, token: str, if_none_match: bool,
                                  if_match: str | None) -> ObjectInfo | None:
        """After a conditional write whose outcome is unknown (a lost response, or a retry that
        found the condition failing): our write took effect (its info), the condition now
        fails (PreconditionFailedError), or neither (None: the write may be sent again)."""
        try:
            info, metadata = await self._head(key)
        except BucketNotFoundError:
            raise
        except NotFoundError:
            if if_match is not None:
                raise PreconditionFailedError(f"{self._url(key)} is gone (if_match)") from None
            return None
        if metadata.get(TOKEN_KEY) == token:
            return info
        if if_none_match:
            raise PreconditionFailedError(f"{self._url(key)} exists (if_none_match)")
        if if_match is not None and info.etag != strip_etag(if_match):
            raise PreconditionFailedError(f"{self._url(key)} changed (if_match)")
        return None


class S3WriterBase(ObjectWriter):
    """What the S3 backends' streaming writers start from: the target, its condition, a fresh
    write token and the state (``open``, then ``closed`` or ``aborted``)."""

    def __init__(self, storage: S3StorageBase, key: str, *, if_none_match: bool,
                 if_match: str | None) -> None:
        self.key = key
        self.full = storage._key(key)
        self.url = storage._url(key)
        self.if_none_match = if_none_match
        self.if_match = if_match
        self.options = storage.options
        self.size = 0
        self.state = "open"
        self.token = secrets.token_hex(12)
        #: the published object's info, once closed
        self.info: ObjectInfo | None = None

    @abstractmethod
    async def _publish(self) -> ObjectInfo:
        """Send what is left and publish the object (one put, or the upload's completion)."""

    async def _close(self) -> ObjectInfo:
        """``close()``: :meth:`_publish` once; on any error or cancellation :meth:`abort`."""
        if self.state == "closed" and self.info is not None:
            return self.info
        if self.state != "open":
            raise ClosedError(f"the writer of {self.url} is {self.state}")
        try:
            info = await self._publish()
        except BaseException:
            await self.abort()
            raise
        self.state = "closed"
        self.info = info
        return info
