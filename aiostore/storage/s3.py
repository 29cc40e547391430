"""``S3Storage``: the storage contract over an S3 bucket (or any S3-compatible store), through
one long-lived aiobotocore client per storage object.

* Puts are single ``PutObject`` requests up to ``multipart_threshold`` and streamed multipart
  uploads beyond it (:mod:`.multipart`): parts of ``part_size`` bytes, ``max_concurrency`` in
  flight, so memory stays bounded; any failure or cancellation aborts the upload.
* ``if_none_match=True`` sends ``If-None-Match: *`` and ``if_match=etag`` sends ``If-Match``;
  a 412 is :class:`~aiostore.errors.PreconditionFailedError`. A conditional write whose
  response is lost (timeout, reset, 5xx) is never blindly retried: the object is read back
  (HEAD) and the write token aiostore put in its metadata says whether it was ours.
* Gets of large objects fetch ranges concurrently, each pinned to the first range's ETag.
* Every response body is read to the end or closed.
"""

from __future__ import annotations

import asyncio
import errno
import io
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import Any

from ..errors import (
    BucketNotFoundError,
    NotFoundError,
    PreconditionFailedError,
)
from .base import ObjectInfo, ObjectWriter, check_byte_range, check_prefix
from .retry import Ambiguous, call
from .s3base import INLINE, TOKEN_KEY, S3Options, S3StorageBase, concat, join
from .s3base import strip_etag as _strip

__all__ = ["S3Options", "S3Storage"]

_READ_CHUNK = 1 << 20


def _md5(data: bytes) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class _Body(io.BytesIO):
    """A request body over immutable bytes. botocore turns ``bytes`` bodies into a
    ``BytesIO``, and aiohttp calls ``getbuffer()`` on it just to measure it — which makes a
    ``BytesIO`` sharing its initial bytes copy them all, on the event loop. This one answers
    with a read-only view instead (aiohttp then streams it in small chunks)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self._data = data

    def getbuffer(self) -> memoryview:
        """A read-only view of the body (no copy)."""
        return memoryview(self._data)


async def prepare_body(body: bytes | bytearray | memoryview) -> tuple[io.BytesIO, str]:
    """(the request body, its base64 Content-MD5), copied and hashed in the worker pool when
    large (a large ``join`` and ``hashlib`` release the GIL), so nothing big runs on the loop."""
    from .._io.offload import run_sync

    def work() -> tuple[io.BytesIO, str]:
        data = body if type(body) is bytes else concat([body])
        return _Body(data), _md5(data)

    if len(body) < INLINE:
        return work()
    result: tuple[io.BytesIO, str] = await run_sync(work)
    return result


_SESSIONS: dict[str | None, Any] = {}


def _session(profile: str | None) -> Any:
    """One aiobotocore session per profile for the process: creating a client from a warm
    session reuses its loaded service model and credential resolution (a cold one costs
    hundreds of milliseconds)."""
    session = _SESSIONS.get(profile)
    if session is None:
        from aiobotocore.session import get_session

        session = get_session()
        if profile:
            session.set_config_variable("profile", profile)
        _SESSIONS[profile] = session
    return session


class S3Storage(S3StorageBase):
    """Objects in ``s3://bucket/prefix`` through aiobotocore (``backend="aiobotocore"``); see
    :func:`aiostore.open_storage`."""

    def __init__(self, bucket: str, prefix: str, options: Mapping[str, Any]) -> None:
        super().__init__(bucket, prefix, options)
        self._client: Any = None
        self._client_cm: Any = None
        self._opening: asyncio.Lock | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def _open(self) -> None:
        await super()._open()
        await self._get_client()

    async def _get_client(self) -> Any:
        self._check_open()
        if self._client is not None:
            return self._client
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._client is None:
                from aiobotocore.config import AioConfig

                opts = self.options
                session = _session(opts.profile)
                config = AioConfig(
                    # botocore would SHA-256 (plain-HTTP signing) and CRC32 every body on the
                    # event loop: bodies carry a Content-MD5 computed in the worker pool
                    # instead (see body_md5), which the store verifies
                    s3={"addressing_style": opts.addressing_style,
                        "payload_signing_enabled": False},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    max_pool_connections=opts.max_pool_connections,
                    connect_timeout=opts.connect_timeout, read_timeout=opts.read_timeout,
                    retries={"total_max_attempts": 1},  # aiostore retries (see .retry)
                )
                cm = session.create_client("s3", config=config, **opts.client_kwargs)
                self._client = await cm.__aenter__()
                self._client_cm = cm
                self._opened = True
        return self._client

    async def aclose(self) -> None:
        """Close the client and its connection pool (idempotent)."""
        cm, self._client_cm, self._client = self._client_cm, None, None
        self._closed = True
        if cm is not None:
            await cm.__aexit__(None, None, None)

    # --- the contract ------------------------------------------------------------------------
    def _conditions(self, if_none_match: bool, if_match: str | None) -> dict[str, Any]:
        self._check_conditions(if_none_match, if_match)
        extra: dict[str, Any] = {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = f'"{_strip(if_match)}"'
        return extra

    async def _put_single(self, key: str, full: str, body: bytes | bytearray | memoryview,
                          if_none_match: bool, if_match: str | None) -> ObjectInfo:
        client = await self._get_client()
        extra = self._conditions(if_none_match, if_match)
        token = secrets.token_hex(12)
        if extra:
            extra["Metadata"] = {TOKEN_KEY: token}
        url = self._url(key)
        payload, md5 = await prepare_body(body)
        size = len(body)

        async def send() -> dict[str, Any]:
            payload.seek(0)  # (a retry sends the body again)
            response: dict[str, Any] = await client.put_object(
                Bucket=self.bucket, Key=full, Body=payload, ContentMD5=md5, **extra)
            return response

        attempt = 0
        while True:
            try:
                response = await call(self.options.retry, "put", url, send,
                                      idempotent=not extra)
                break
            except Ambiguous as amb:
                outcome = await self.resolve_conditional(key, token, if_none_match, if_match)
                if outcome is not None:
                    return outcome
                attempt += 1
                if attempt >= self.options.retry.attempts:
                    raise self._unavailable("put", url, amb.cause) from amb.cause
                await asyncio.sleep(self.options.retry.delay(attempt))
        return ObjectInfo(key=key, size=size, etag=_strip(response.get("ETag", "")),
                          mtime=datetime.now(timezone.utc))

    def _unavailable(self, action: str, url: str, cause: BaseException) -> BaseException:
        from .retry import translate

        return translate(cause, action, url)

    async def _head(self, key: str) -> tuple[ObjectInfo, dict[str, str]]:
        client = await self._get_client()
        full = self._key(key)

        async def send() -> dict[str, Any]:
            response: dict[str, Any] = await client.head_object(Bucket=self.bucket, Key=full)
            return response

        try:
            r = await call(self.options.retry, "head", self._url(key), send)
        except BucketNotFoundError:
            raise
        except NotFoundError:
            await self._check_bucket()  # a HEAD 404 has no body: was it the bucket?
            raise
        info = ObjectInfo(key=key, size=int(r.get("ContentLength", 0)),
                          etag=_strip(r.get("ETag", "")),
                          mtime=r.get("LastModified") or datetime.now(timezone.utc))
        return info, dict(r.get("Metadata") or {})

    async def _check_bucket(self) -> None:
        """:class:`~aiostore.errors.BucketNotFoundError` if the bucket does not exist."""
        client = await self._get_client()

        async def send() -> None:
            await client.head_bucket(Bucket=self.bucket)

        try:
            await call(self.options.retry, "head bucket", f"s3://{self.bucket}", send)
        except NotFoundError:
            raise BucketNotFoundError(errno.ENOENT, "no such bucket",
                                      f"s3://{self.bucket}") from None

    async def get(self, key: str, *, byte_range: tuple[int, int | None] | None = None
                  ) -> bytes:
        """See :meth:`Storage.get`. A whole object larger than ``part_size`` is fetched as
        concurrent ranges, all pinned to the ETag of the first (a write meanwhile restarts
        the read). Cancellation: safe at any point."""
        window = check_byte_range(byte_range)
        full = self._key(key)
        if window is not None:
            start, stop = window
            if stop is not None and stop == start:
                return b""
            chunks, _, _ = await self._get_range(key, full, start, stop, None)
            return await join(chunks)
        part = self.options.part_size
        for _ in range(self.options.retry.attempts):
            first, total, etag = await self._get_range(key, full, 0, part, None)
            got = sum(len(c) for c in first)
            if total <= got:
                return await join(first)
            slots = asyncio.Semaphore(self.options.max_concurrency)
            try:
                rest = await asyncio.gather(*(self._fetch(key, full, at, min(at + part, total),
                                                          etag, slots)
                                              for at in range(got, total, part)))
            except PreconditionFailedError:
                continue  # replaced while we read it: start again
            return await join([c for chunks in (first, *rest) for c in chunks])
        raise PreconditionFailedError(f"{self._url(key)} kept changing while it was read")

    async def _fetch(self, key: str, full: str, start: int, stop: int, etag: str,
                     slots: asyncio.Semaphore) -> list[bytes]:
        """One range of a whole-object get, pinned to ``etag`` (412 if it changed)."""
        async with slots:
            chunks, _, _ = await self._get_range(key, full, start, stop, etag)
        return chunks

    async def _get_range(self, key: str, full: str, start: int, stop: int | None,
                         if_match: str | None) -> tuple[list[bytes], int, str]:
        """(data as chunks, total object size, etag) of ``[start, stop)``. The body is read
        in chunks of at most 1 MiB (never one large join on the event loop)."""
        client = await self._get_client()
        extra: dict[str, Any] = {}
        if start or stop is not None:
            extra["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        if if_match is not None:
            extra["IfMatch"] = f'"{if_match}"'

        async def send() -> tuple[list[bytes], int, str]:
            try:
                response = await client.get_object(Bucket=self.bucket, Key=full, **extra)
            except Exception as exc:
                code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
                if code == "InvalidRange":  # start at or past the end
                    return [], start, ""
                raise
            chunks: list[bytes] = []
            async with response["Body"] as body:  # read to the end, or closed on error
                while True:
                    chunk: bytes = await body.read(_READ_CHUNK)
                    if not chunk:
                        break
                    chunks.append(chunk)
            size_read = sum(len(c) for c in chunks)
            total = size_read
            content_range = response.get("ContentRange")
            if content_range and "/" in content_range:
                size = content_range.rsplit("/", 1)[1]
                if size.isdigit():
                    total = int(size)
            expected = response.get("ContentLength")
            if expected is not None and int(expected) != size_read:
                raise ConnectionResetError(f"truncated body: {size_read} of {expected} bytes")
            return chunks, total, _strip(response.get("ETag", ""))

        return await call(self.options.retry, "get", self._url(key), send)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """See :meth:`Storage.list` (``ListObjectsV2``, page by page)."""
        check_prefix(prefix)
        client = await self._get_client()
        base = f"{self.prefix}/" if self.prefix else ""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base + prefix}
            if token:
                kwargs["ContinuationToken"] = token

            async def send(kwargs: dict[str, Any] = kwargs) -> dict[str, Any]:
                page: dict[str, Any] = await client.list_objects_v2(**kwargs)
                return page

            page = await call(self.options.retry, "list", self.url + "/" + prefix, send)
            for item in page.get("Contents") or []:
                yield ObjectInfo(key=item["Key"][len(base):], size=int(item.get("Size", 0)),
                                 etag=_strip(item.get("ETag", "")),
                                 mtime=item.get("LastModified") or datetime.now(timezone.utc))
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    async def delete(self, key: str) -> None:
        """See :meth:`Storage.delete` (``DeleteObject``; a missing key is fine)."""
        client = await self._get_client()
        full = self._key(key)

        async def send() -> None:
            await client.delete_object(Bucket=self.bucket, Key=full)

        try:
            await call(self.options.retry, "delete", self._url(key), send)
        except NotFoundError as exc:
            if "bucket" in str(exc):
                raise

    async def copy(self, src: str, dst: str) -> ObjectInfo:
        """See :meth:`Storage.copy` (server-side ``CopyObject``; objects up to 5 GiB)."""
        client = await self._get_client()
        source, target = self._key(src), self._key(dst)

        async def send() -> dict[str, Any]:
            response: dict[str, Any] = await client.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket,
                                                            "Key": source})
            return response

        await call(self.options.retry, "copy", self._url(src), send)
        return await self.head(dst)

    def open_writer(self, key: str, *, if_none_match: bool = False,
                    if_match: str | None = None) -> ObjectWriter:
        """See :meth:`Storage.open_writer`: a multipart upload, started once more than
        ``multipart_threshold`` bytes were written (a smaller object is one ``PutObject``)."""
        from .multipart import S3Writer

        self._check_open()
        self._conditions(if_none_match, if_match)
        return S3Writer(self, key, if_none_match=if_none_match, if_match=if_match)
