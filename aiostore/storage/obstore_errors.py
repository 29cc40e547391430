"""Translation of obstore (Rust ``object_store``) failures into :mod:`aiostore.errors`.

obstore raises ``FileNotFoundError`` for a 404 and its own classes for the rest
(``obstore.exceptions``: ``PermissionDeniedError``, ``UnauthenticatedError``,
``PreconditionError``, ``AlreadyExistsError``, ``GenericError``, ...). The HTTP status and the
S3 error code are only in the message (``Server returned non-2xx status code: 404 Not Found:
<Error><Code>NoSuchBucket</Code>...``), so they are read from there; a failure without a status
is a transport failure (refused, reset, timed out): the store may not have been reached, or
may have applied the request without our hearing the answer.
"""

from __future__ import annotations

import errno
import re

from ..errors import (
    AccessDeniedError,
    AiostoreError,
    BucketNotFoundError,
    InvalidKeyError,
    NotFoundError,
    PreconditionFailedError,
    StorageError,
    StorageUnavailableError,
)

__all__ = ["error_code", "is_ambiguous", "translate"]

_STATUS = re.compile(r"status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]{1,64})</Code>")
_MAX_MESSAGE = 400


def error_code(exc: BaseException) -> tuple[str, int]:
    """(S3 error code, HTTP status) of an obstore failure; ``("", 0)`` if it has none."""
    text = str(exc)
    status = _STATUS.search(text)
    code = _CODE.search(text)
    return (code.group(1) if code else ""), (int(status.group(1)) if status else 0)


def _summary(exc: BaseException) -> str:
    text = str(exc).split("\n\nDebug source:", 1)[0].replace("\n", " ")
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


def _kind(exc: BaseException, *names: str) -> bool:
    return type(exc).__module__.startswith("obstore") and type(exc).__name__ in names


def is_ambiguous(exc: BaseException) -> bool:
    """Whether a failed write may have been applied all the same: a transport failure after
    the request may have been sent (no status), or a 5xx / 408 / 429 that outlived
    object_store's own retries."""
    if isinstance(exc, AiostoreError) or not isinstance(exc, Exception):
        return False
    if isinstance(exc, (FileNotFoundError, ValueError)):
        return False
    if _kind(exc, "PermissionDeniedError", "UnauthenticatedError", "PreconditionError",
             "AlreadyExistsError", "NotModifiedError", "NotSupportedError",
             "InvalidPathError", "UnknownConfigurationKeyError"):
        return False
    _, status = error_code(exc)
    return status == 0 or status >= 500 or status in (408, 429)


def translate(exc: BaseException, action: str, url: str) -> BaseException:
    """The aiostore error for an obstore failure of ``action`` on ``url``."""
    if isinstance(exc, AiostoreError):
        return exc
    code, status = error_code(exc)
    message = f"{action} failed: {_summary(exc)}"
    if code == "NoSuchBucket":
        return BucketNotFoundError(errno.ENOENT, f"{action} failed: no such bucket", url)
    if isinstance(exc, FileNotFoundError) or status == 404 or code in ("NoSuchKey",
                                                                       "NoSuchUpload"):
        return NotFoundError(errno.ENOENT, f"{action} failed: no such object", url)
    if _kind(exc, "PermissionDeniedError", "UnauthenticatedError") or status in (401, 403):
        return AccessDeniedError(errno.EACCES, message, url)
    if _kind(exc, "PreconditionError", "AlreadyExistsError") or status == 412:
        return PreconditionFailedError(f"{action} of {url}: the precondition failed")
    if _kind(exc, "InvalidPathError") or isinstance(exc, ValueError):
        return InvalidKeyError(f"{action} of {url}: the store refused the key: "
                               f"{_summary(exc)}")
    if status == 0 and isinstance(exc, Exception):
        return StorageUnavailableError(errno.ECONNREFUSED, message, url)
    return StorageError(errno.EIO, message, url)
