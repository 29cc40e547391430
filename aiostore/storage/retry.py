"""Retries with backoff for transient S3 failures, and translation of botocore errors.

botocore's own retries are switched off (``max_attempts=1``): a blind retry of a conditional
put whose response was lost would report a conflict for a write that succeeded. Every S3
call goes through :func:`call`, which retries only what is transient (throttling, 5xx,
timeouts, connection resets, truncated bodies) with full-jitter exponential backoff; callers
of non-idempotent steps pass ``idempotent=False`` and resolve the ambiguity themselves.
"""

from __future__ import annotations

import asyncio
import errno
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import (
    AccessDeniedError,
    AiostoreError,
    BucketNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionFailedError,
    StorageError,
    StorageUnavailableError,
)

__all__ = ["Ambiguous", "RetryPolicy", "call", "is_transient", "translate"]

T = TypeVar("T")

_TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "RequestLimitExceeded",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestTimeout",
    "RequestTimeoutException", "InternalError", "ServiceUnavailable", "ServerError",
    "BandwidthLimitExceeded", "ConditionalRequestConflict", "OperationAborted",
    "500", "502", "503", "504",
})
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchUpload"})
_DENIED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403",
                     "AllAccessDisabled", "InvalidToken", "ExpiredToken"})
_PRECONDITION = frozenset({"PreconditionFailed", "412"})


class Ambiguous(Exception):
    """A non-idempotent call failed so that it may or may not have taken effect."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class RetryPolicy:
    """How often and how long to retry: ``attempts`` in all (>= 1), backoff from ``base`` to
    ``cap`` seconds with full jitter."""

    def __init__(self, attempts: int = 5, base: float = 0.05, cap: float = 2.0) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidArgumentError(f"retries must be an int >= 1 (attempts in all), not "
                                       f"{attempts!r}")
        self.attempts = attempts
        self.base = base
        self.cap = cap

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        return random.uniform(0, min(self.cap, self.base * 2 ** attempt))


def _code(exc: BaseException) -> tuple[str, int]:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "", 0
    error = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    return str(error.get("Code") or ""), int(status)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` may succeed."""
    if isinstance(exc, AiostoreError):
        return False
    code, status = _code(exc)
    if code or status:
        return code in _TRANSIENT_CODES or status >= 500 or status in (408, 429)
    if isinstance(exc, (asyncio.TimeoutError, ConnectionError, TimeoutError)):
        return True
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith(("botocore", "aiobotocore")):
        return name in ("EndpointConnectionError", "ConnectionClosedError",
                        "ConnectTimeoutError", "ReadTimeoutError", "IncompleteReadError",
                        "ResponseStreamingError", "ProxyConnectionError", "HTTPClientError",
                        "AioReadTimeoutError", "ConnectionError")
    return module.startswith("aiohttp") and name in (
        "ClientConnectionError", "ClientOSError", "ServerDisconnectedError",
        "ClientPayloadError", "ServerTimeoutError", "ClientConnectorError",
        "ContentLengthError", "TransferEncodingError")


def translate(exc: BaseException, action: str, url: str) -> BaseException:
    """The aiostore error for a botocore/aiohttp failure of ``action`` on ``url``."""
    if isinstance(exc, AiostoreError):
        return exc
    code, status = _code(exc)
    message = f"{action} failed: {code or type(exc).__name__}: {exc}"
    if code == "NoSuchBucket":
        return BucketNotFoundError(errno.ENOENT, f"{action} failed: no such bucket", url)
    if code in _NOT_FOUND or (status == 404 and not code):
        return NotFoundError(errno.ENOENT, f"{action} failed: no such object", url)
    if code in _DENIED or status == 403:
        return AccessDeniedError(errno.EACCES, message, url)
    if code in _PRECONDITION or status == 412:
        return PreconditionFailedError(f"{action} of {url}: the precondition failed")
    if is_transient(exc) and not (code or status):
        return StorageUnavailableError(errno.ECONNREFUSED, message, url)
    return StorageError(errno.EIO, message, url)


async def call(policy: RetryPolicy, action: str, url: str, fn: Callable[[], Awaitable[T]], *,
               idempotent: bool = True) -> T:
    """``await fn()``, retried while transient; errors translated. With ``idempotent=False``
    a transient failure raises :class:`Ambiguous` instead of retrying."""
    attempt = 0
    while True:
        try:
            return await fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise translate(exc, action, url) from exc
            if not idempotent:
                raise Ambiguous(exc) from exc
            attempt += 1
            if attempt >= policy.attempts:
                raise translate(exc, action, url) from exc
        await asyncio.sleep(policy.delay(attempt))
