"""``ObstoreStorage``: the storage contract over S3 through obstore (Rust ``object_store``),
aiostore's default S3 transport (``backend="obstore"``).

Signing, HTTP, connection pooling and retries run in native code on obstore's own threads; a
call costs the event loop one future, not milliseconds of Python.

* Puts up to ``multipart_threshold`` are one ``PutObject``; larger or streamed ones are
  multipart uploads (:mod:`.obstore_writer`), aborted on any failure or cancellation.
* ``if_none_match=True`` is object_store's ``PutMode::Create`` (``If-None-Match: *``) and
  ``if_match=etag`` is ``PutMode::Update`` (``If-Match``), with ``conditional_put="etag"``.
  object_store retries 5xx answers even of conditional puts, so a create that succeeded but
  whose answer was lost comes back as "already exists"; and a reset or timeout leaves the outcome
  unknown. Either way the object is read back (HEAD): the write token in its metadata says
  whether it is ours. object_store cannot attach a condition to ``CompleteMultipartUpload``
  (apache/arrow-rs-object-store#289), so a *conditional* write larger than
  ``multipart_threshold`` is uploaded through the aiobotocore backend.
* Gets of more than ``part_size`` bytes fetch ranges concurrently, each pinned to the ETag of
  the first; the pieces are joined in the worker pool.
* asyncio and uvloop only: obstore's awaitables are asyncio futures (pyo3-async-runtimes),
  which need a running asyncio loop; under trio a call raises
  :class:`~aiostore.errors.InvalidArgumentError`.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import (
    AccessDeniedError,
    BucketNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionFailedError,
)
from .base import ObjectInfo, ObjectWriter, check_byte_range, check_prefix
from .obstore_errors import error_code, is_ambiguous, translate
from .s3base import INLINE, TOKEN_KEY, S3StorageBase, join, strip_etag

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, RetryConfig, S3Config, S3Credential

    from .s3 import S3Storage

__all__ = ["ObstoreStorage"]

T = TypeVar("T")

#: the whole-request limit of object_store (its default, 30 s, would cut off a large part on a
#: slow link); stalls are caught by ``read_timeout`` and ``connect_timeout`` instead
_REQUEST_TIMEOUT = timedelta(minutes=10)
#: entries handed to Python per step of a listing: turning a 1,000-entry page into Python
#: objects at once stalled the loop ~54 ms (21 ms at 50); a prefix lookup stops at its first
#: key past the prefix, so it converts one small step, not the page the server sent
_LIST_CHUNK = 64
_READ_CHUNK = 1 << 20


_STORES: dict[str, Any] = {}
_STORES_LOCK = threading.Lock()
_MAX_STORES = 16
_EXIT_GRACE = 0.01
_exit_hook: list[bool] = []


def _let_native_threads_finish() -> None:
    """An ``atexit`` hook: release the GIL for ``_EXIT_GRACE`` seconds, a millisecond at a
    time. pyo3-async-runtimes finishes each obstore future on a tokio thread that still
    takes the GIL once more after the Python side has its result; if that thread is still
    waiting for the GIL when the interpreter finalizes, CPython ends the thread inside Rust
    frames and the process aborts (SIGABRT, no message) — measured in 10-50% of short scripts
    that used obstore's async API. atexit runs before finalization, so the waiting threads
    finish here (measured: no abort in 80 runs)."""
    import time

    deadline = time.monotonic() + _EXIT_GRACE
    while time.monotonic() < deadline:
        time.sleep(0.001)


def _register_exit_hook() -> None:
    if not _exit_hook:
        import atexit

        atexit.register(_let_native_threads_finish)
        _exit_hook.append(True)


def _require_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise InvalidArgumentError(
            "S3 storage runs on asyncio or uvloop only: obstore's awaitables are asyncio "
            "futures (pyo3-async-runtimes); trio is not supported yet") from None


#: credential sources object_store uses besides keys and the instance metadata service
_OTHER_SOURCES = ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                  "AWS_WEB_IDENTITY_TOKEN_FILE")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _before(key: str) -> str | None:
    """A ``start-after`` for listing every key that starts with ``key`` (a string just below
    it), or None. It must be a valid object_store path too: lowering a last ``0`` gives ``/``,
    an empty path segment, so then the key without its last character (and without a
    trailing ``/``) is used — lower still, which only lists a few keys more to skip."""
    last = ord(key[-1]) - 1
    if 0xD800 <= last <= 0xDFFF:
        last = 0xD7FF
    if last > 0 and chr(last) != "/":
        return key[:-1] + chr(last)
    return key[:-1].rstrip("/") or None


class ObstoreStorage(S3StorageBase):
    """Objects in ``s3://bucket/prefix`` through obstore; see :func:`aiostore.open_storage`."""

    def __init__(self, bucket: str, prefix: str, options: Mapping[str, Any]) -> None:
        super().__init__(bucket, prefix, options)
        import importlib.util

        if importlib.util.find_spec("obstore") is None:  # (imported off the loop, on open)
            raise InvalidArgumentError(
                "the S3 backend 'obstore' needs the obstore package: pip install "
                "'aiostore[s3]' (or pass backend='aiobotocore')")
        self._raw_options = dict(options)
        self._store: Any = None
        self._opening: asyncio.Lock | None = None
        self._botocore: S3Storage | None = None
        #: where the credentials came from (see :mod:`.aws_config`), once opened
        self.credentials_source: str | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def _open(self) -> None:
        await self._get_store()  # (marks the storage opened once there is a client)

    async def _get_store(self) -> Any:
        self._check_open()
        _require_asyncio()
        if self._store is not None:
            return self._store
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._store is None:
                from .._io.offload import run_sync

                # reading ~/.aws and building the client (TLS roots) block: in the pool
                store, source = await run_sync(self._build, dict(os.environ))
                _register_exit_hook()
                self._check_open()
                self._store, self.credentials_source = store, source
                self._opened = True
        return self._store

    def _build(self, environ: Mapping[str, str]) -> tuple[Any, str]:
        from obstore.store import S3Store

        from .aws_config import resolve

        opts = self.options
        settings = resolve(opts.client_kwargs, opts.profile, environ)
        config: S3Config = {"conditional_put": "etag"}
        if settings.region:
            config["region"] = settings.region
        if settings.endpoint_url:
            config["endpoint"] = settings.endpoint_url
        style = opts.addressing_style
        if style == "auto":  # as botocore: virtual hosts on AWS, paths elsewhere
            style = "virtual" if not settings.endpoint_url and "." not in self.bucket \
                else "path"
        config["virtual_hosted_style_request"] = style == "virtual"
        if style == "virtual" and settings.endpoint_url:
            raise InvalidArgumentError("addressing_style='virtual' with an endpoint_url is not "
                                       "supported by the obstore backend: use 'path', or "
                                       "backend='aiobotocore'")
        client: ClientConfig = {
            "allow_http": (settings.endpoint_url or "").startswith("http://"),
            "connect_timeout": timedelta(seconds=opts.connect_timeout),
            "read_timeout": timedelta(seconds=opts.read_timeout),
            "timeout": _REQUEST_TIMEOUT,
            "pool_max_idle_per_host": str(opts.max_pool_connections),
        }
        retry: RetryConfig = {
            "max_retries": opts.retry.attempts - 1, "retry_timeout": timedelta(minutes=3),
            "backoff": {"init_backoff": timedelta(seconds=opts.retry.base),
                        "max_backoff": timedelta(seconds=opts.retry.cap), "base": 2}}
        if not settings.access_key_id and _truthy(environ.get("AWS_EC2_METADATA_DISABLED")) \
                and not any(environ.get(k) for k in _OTHER_SOURCES):
            # object_store's last resort is the instance metadata service; botocore's switch
            # for it is honoured here, so nothing is asked of 169.254.169.254
            raise AccessDeniedError(errno.EACCES, "no AWS credentials: none were given, none "
                                    "are in the AWS_* variables or the ~/.aws files, and the "
                                    "instance metadata service is disabled "
                                    "(AWS_EC2_METADATA_DISABLED)", self.url)
        provider = None
        if settings.access_key_id and settings.secret_access_key:
            if settings.session_token or not (environ.get("AWS_SESSION_TOKEN")
                                              or environ.get("AWS_TOKEN")):
                config["access_key_id"] = settings.access_key_id
                config["secret_access_key"] = settings.secret_access_key
                if settings.session_token:
                    config["session_token"] = settings.session_token
            else:
                # object_store would mix the environment's session token, which belongs to
                # other keys, into these: a static provider keeps it out (the only case where
                # obstore's threads call back into Python)
                credential: S3Credential = {
                    "access_key_id": settings.access_key_id,
                    "secret_access_key": settings.secret_access_key, "token": None,
                    "expires_at": None}

                def provider() -> S3Credential:
                    return credential

        # one client per configuration for the process: building one costs ~5 ms holding the
        # GIL, and a kept client keeps its connections (writers on URIs open a storage a call)
        key = repr((self.bucket, sorted(config.items()), sorted(client.items()), retry,
                    provider is not None and (settings.access_key_id, settings.secret_access_key),
                    sorted((k, v) for k, v in environ.items() if k.startswith("AWS_"))))
        with _STORES_LOCK:
            store = _STORES.pop(key, None)
            if store is None:
                store = S3Store(self.bucket, config=config, client_options=client,
                                retry_config=retry, credential_provider=provider)
            _STORES[key] = store  # (most recently used last)
            while len(_STORES) > _MAX_STORES:
                _STORES.pop(next(iter(_STORES)))
        return store, settings.source

    async def aclose(self) -> None:
        """Drop the client and its connection pool (idempotent)."""
        self._closed = True
        self._store = None
        botocore, self._botocore = self._botocore, None
        if botocore is not None:
            await botocore.aclose()

    def _aiobotocore(self) -> S3Storage:
        """The aiobotocore backend on the same root, for what object_store cannot do (a
        conditional multipart upload); created on first use, closed with this storage."""
        self._check_open()
        if self._botocore is None:
            from .s3 import S3Storage

            self._botocore = S3Storage(self.bucket, self.prefix, self._raw_options)
        return self._botocore

    async def _call(self, action: str, url: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except (asyncio.CancelledError, InvalidArgumentError, StopAsyncIteration):
            raise
        except Exception as exc:
            raise translate(exc, action, url) from exc

    # --- writes ------------------------------------------------------------------------------
    async def _put_single(self, key: str, full: str, body: bytes | bytearray | memoryview,
                          if_none_match: bool, if_match: str | None) -> ObjectInfo:
        """One ``PutObject``; a conditional one carries a write token and is resolved by it
        when its outcome is unknown (see the module docstring)."""
        store = await self._get_store()
        import obstore  # (already imported by _get_store, off the loop)
        data = body if type(body) is bytes else await join([body])  # (copied off the loop)
        url = self._url(key)
        if not if_none_match and if_match is None:
            result = await self._call("put", url, obstore.put_async(
                store, full, data, use_multipart=False))
            return ObjectInfo(key=key, size=len(data), etag=strip_etag(result["e_tag"]),
                              mtime=datetime.now(timezone.utc))
        token = secrets.token_hex(12)
        mode: Any = "create" if if_none_match else {"e_tag": f'"{strip_etag(if_match)}"'}
        policy = self.options.retry
        for attempt in range(policy.attempts):
            try:
                result = await obstore.put_async(store, full, data, mode=mode,
                                                 use_multipart=False,
                                                 attributes={TOKEN_KEY: token})
                return ObjectInfo(key=key, size=len(data), etag=strip_etag(result["e_tag"]),
                                  mtime=datetime.now(timezone.utc))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = translate(exc, "put", url)
                if not (isinstance(error, PreconditionFailedError) or is_ambiguous(exc)):
                    raise error from exc
                cause: BaseException = exc
            # a 412 may be our own write seen by object_store's retry of a 5xx, and a lost
            # answer may hide a success: the token in the object says which
            outcome = await self.resolve_conditional(key, token, if_none_match, if_match)
            if outcome is not None:
                return outcome
            await asyncio.sleep(policy.delay(attempt))
        raise error from cause

    def open_writer(self, key: str, *, if_none_match: bool = False,
                    if_match: str | None = None) -> ObjectWriter:
        """See :meth:`Storage.open_writer`: buffered up to ``multipart_threshold`` (then one
        ``PutObject`` at close), a multipart upload beyond it, parts of ``part_size`` with
        ``max_concurrency`` in flight. Any failure, :meth:`~ObjectWriter.abort` or
        cancellation aborts the upload; see :class:`~.obstore_writer.ObstoreWriter`."""
        from .obstore_writer import ObstoreWriter

        self._check_open()
        self._key(key)
        self._check_conditions(if_none_match, if_match)
        return ObstoreWriter(self, key, if_none_match=if_none_match, if_match=if_match)

    async def delete(self, key: str) -> None:
        """See :meth:`Storage.delete` (``DeleteObject``; a missing key is fine).
        Cancellation: the delete may or may not take effect."""
        full = self._key(key)
        store = await self._get_store()
        import obstore  # (already imported by _get_store, off the loop)
        try:
            await self._call("delete", self._url(key), obstore.delete_async(store, full))
        except BucketNotFoundError:
            raise
        except NotFoundError:
            pass

    async def copy(self, src: str, dst: str) -> ObjectInfo:
        """See :meth:`Storage.copy` (server-side ``CopyObject``; objects up to 5 GiB).
        Cancellation: the copy may or may not take effect, whole or not at all."""
        source, target = self._key(src), self._key(dst)
        store = await self._get_store()
        import obstore  # (already imported by _get_store, off the loop)
        await self._call("copy", self._url(src), obstore.copy_async(store, source, target))
        return await self.head(dst)

    # --- reads -------------------------------------------------------------------------------
    async def _head(self, key: str) -> tuple[ObjectInfo, dict[str, str]]:
        full = self._key(key)
        store = await self._get_store()
        import obstore  # (already imported by _get_store, off the loop)
        try:
            result = await self._call("head", self._url(key), obstore.get_async(
                store, full, options={"head": True}))
        except BucketNotFoundError:
            raise
        except NotFoundError:
            await self._check_bucket(full)  # a HEAD 404 has no body: was it the bucket?
            raise
        meta = result.meta
        info = ObjectInfo(key=key, size=int(meta["size"]), etag=strip_etag(meta["e_tag"]),
                          mtime=meta["last_modified"])
        return info, {str(k): str(v) for k, v in result.attributes.items()}

    async def _check_bucket(self, full: str) -> None:
        """:class:`~aiostore.errors.BucketNotFoundError` if the bucket does not exist."""
        store = await self._get_store()
        import obstore  # (already imported by _get_store, off the loop)
        stream = obstore.list(store, prefix=full, chunk_size=1)
        try:
            await stream.__anext__()
        except StopAsyncIteration:
            return
        except Exception as exc:
            if error_code(exc)[0] == "NoSuchBucket":
                raise BucketNotFoundError(errno.ENOENT, "no such bucket",
                                          f"s3://{self.bucket}") from None

    async def get(self, key: str, *, byte_range: tuple[int, int | None] | None = None
                  ) -> bytes:
        """See :meth:`Storage.get`. More than ``part_size`` bytes are fetched as concurrent
        ranges (``max_concurrency`` at a time), all pinned to the ETag of the first (a write
        meanwhile restarts the read), and joined in the worker pool. Cancellation: safe at
        any point."""
        window = check_byte_range(byte_range)
        full = self._key(key)
        start, stop = window if window is not None else (0, None)
        if stop is not None and stop == start:
            return b""
        store = await self._get_store()
        url = self._url(key)
        part = self.options.part_size
        for _ in range(self.options.retry.attempts):
            first_stop = start + part if stop is None else min(stop, start + part)
            try:
                first = await self._range(store, full, url, start, first_stop, None)
            except _PastTheEnd:
                return b""
            chunks, size, etag = first
            end = size if stop is None else min(stop, size)
            got = sum(len(c) for c in chunks)
            if start + got >= end:
                return await join(chunks)
            try:
                rest = await self._ranges(store, full, url, start + got, end, etag)
            except PreconditionFailedError:
                continue  # replaced while we read it: start again
            return await join([*chunks, *(c for part in rest for c in part)])
        raise PreconditionFailedError(f"{url} kept changing while it was read")

    async def _range(self, store: Any, full: str, url: str, start: int, stop: int,
                     etag: str | None) -> tuple[list[bytes], int, str]:
        """(the bytes of ``[start, stop)`` as chunks, the object's size, its ETag); ``etag``
        pins the read (412 if the object changed). A small body is one chunk; a large one
        streams in chunks of about 1 MiB (each one short copy into ``bytes``), never one
        large copy under the GIL."""
        import obstore

        options: GetOptions = {"range": (start, stop)}
        if etag is not None:
            options["if_match"] = f'"{etag}"'
        try:
            result = await obstore.get_async(store, full, options=options)
            first, last = result.range
            if last - first < INLINE:
                data = [(await result.bytes_async()).to_bytes()]
            else:
                data = [chunk async for chunk in result.stream(min_chunk_size=_READ_CHUNK)]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if error_code(exc)[1] == 416:  # start at or past the end
                raise _PastTheEnd from None
            raise translate(exc, "get", url) from exc
        meta = result.meta
        return data, int(meta["size"]), strip_etag(meta["e_tag"])

    async def _ranges(self, store: Any, full: str, url: str, start: int, end: int,
                      etag: str) -> list[list[bytes]]:
        """``[start, end)`` in ``part_size`` ranges, ``max_concurrency`` at a time; on a
        failure the other ranges are cancelled."""
        part = self.options.part_size
        slots = asyncio.Semaphore(self.options.max_concurrency)

        async def fetch(at: int) -> list[bytes]:
            async with slots:
                data, _, _ = await self._range(store, full, url, at, min(at + part, end), etag)
                return data

        tasks = [asyncio.ensure_future(fetch(at)) for at in range(start, end, part)]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """See :meth:`Storage.list` (``ListObjectsV2``, page by page; object_store lists by
        directory, so a prefix that ends inside a name lists from just before it and stops at
        the first key past it). Cancellation: safe at any point."""
        check_prefix(prefix)
        store = await self._get_store()
        import obstore  # (already imported by _get_store, off the loop)
        base = f"{self.prefix}/" if self.prefix else ""
        full = base + prefix
        directory = full.rpartition("/")[0]
        offset = _before(full) if full and not full.endswith("/") else None
        url = self.url + "/" + prefix
        stream = obstore.list(store, prefix=directory or None, offset=offset,
                              chunk_size=_LIST_CHUNK)
        while True:
            try:
                chunk = await self._call("list", url, stream.__anext__())
            except StopAsyncIteration:
                return
            for meta in chunk:
                path = meta["path"]
                if not path.startswith(full):
                    if path > full:
                        return
                    continue
                yield ObjectInfo(key=path[len(base):], size=int(meta["size"]),
                                 etag=strip_etag(meta["e_tag"]), mtime=meta["last_modified"])


class _PastTheEnd(Exception):
    """A range that starts at or past the end of the object (416)."""
