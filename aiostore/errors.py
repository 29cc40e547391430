"""The one exception hierarchy of aiostore.

Every error aiostore raises on purpose derives from :class:`AiostoreError`. Where a builtin
exception has the same meaning, the aiostore class derives from it too, so
``except FileExistsError`` and ``except aiostore.errors.AlreadyExistsError`` both work::

    AiostoreError
    ├── InvalidArgumentError (ValueError)      bad arguments or configuration
    │   ├── InvalidTypeError (TypeError)       an argument of the wrong type (e.g. not bytes)
    │   ├── UnknownFormatError                 no writer/reader for that format or suffix
    │   ├── InvalidLocationError               an ItemLocation that names no stored item
    │   ├── SafetyCheckError                   a trim's safety_check does not match the data
    │   └── InvalidKeyError                    an object key that is not allowed
    │       └── AmbiguousKeyError              a Store key matching two stored objects
    ├── SerializationError (TypeError, ValueError)  the object cannot be encoded
    ├── ClosedError (ValueError)               the handle or object is already closed
    │   ├── DatabaseClosedError                the SegmentDB is not running
    │   └── TransactionClosedError             the transaction was committed or discarded
    ├── OverwriteDisabledError                 a trim or drop without enable_overwrite()
    ├── PreconditionFailedError                a conditional put lost: the key exists / changed
    ├── CommitConflictError                    a table commit raced a conflicting commit
    ├── SchemaMismatchError (ValueError)       data does not fit the table's schema
    ├── UnsupportedTableError                  a table needs protocol features aiostore lacks
    ├── VersionNotFoundError (LookupError)     a table version that does not exist (any more)
    ├── DatabaseLockedError                    another SegmentDB holds the directory
    ├── DatabaseFailedError                    an earlier I/O failure poisoned the SegmentDB
    ├── DatabaseError                          a SQL database refused a statement (constraint...)
    ├── CorruptionError                        stored bytes fail their checksum or framing
    ├── RunningLoopError (RuntimeError)        a blocking call made inside a running event loop
    └── StorageError (OSError)                 the operating system or the store refused
        ├── NotFoundError (FileNotFoundError)
        │   ├── BucketNotFoundError            the S3 bucket does not exist
        │   └── KeyNotFoundError (KeyError)    a Store key with no stored object
        ├── AlreadyExistsError (FileExistsError)
        ├── AccessDeniedError (PermissionError)
        ├── IsADirectoryTargetError (IsADirectoryError)
        ├── NotADirectoryTargetError (NotADirectoryError)
        ├── DiskFullError                      ENOSPC / EDQUOT
        ├── DurabilityError                    fsync failed: data may not be on disk
        └── StorageUnavailableError            the object store or database cannot be reached

``StorageError`` keeps ``errno``, ``strerror`` and ``filename`` of the underlying ``OSError``,
which is also chained as ``__cause__``.
"""

from __future__ import annotations

import errno as _errno
import os

__all__ = [
    "AccessDeniedError",
    "AiostoreError",
    "AlreadyExistsError",
    "AmbiguousKeyError",
    "BucketNotFoundError",
    "ClosedError",
    "CommitConflictError",
    "CorruptionError",
    "DatabaseClosedError",
    "DatabaseError",
    "DatabaseFailedError",
    "DatabaseLockedError",
    "DiskFullError",
    "DurabilityError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "InvalidLocationError",
    "InvalidTypeError",
    "IsADirectoryTargetError",
    "KeyNotFoundError",
    "NotADirectoryTargetError",
    "NotFoundError",
    "OverwriteDisabledError",
    "PreconditionFailedError",
    "RunningLoopError",
    "SafetyCheckError",
    "SchemaMismatchError",
    "SerializationError",
    "StorageError",
    "StorageUnavailableError",
    "TransactionClosedError",
    "UnknownFormatError",
    "UnsupportedTableError",
    "VersionNotFoundError",
]


class AiostoreError(Exception):
    """Base class of every exception aiostore raises on purpose."""


class InvalidArgumentError(AiostoreError, ValueError):
    """An argument or a configuration value is invalid; nothing was changed."""


class InvalidTypeError(InvalidArgumentError, TypeError):
    """An argument has the wrong type (for example an item that is not bytes-like)."""


class UnknownFormatError(InvalidArgumentError):
    """No writer or reader is registered for the requested format or file suffix."""


class InvalidLocationError(InvalidArgumentError):
    """The ItemLocation names no stored item: wrong, stale, trimmed or never written."""


class SerializationError(AiostoreError, TypeError, ValueError):
    """The object could not be encoded in the requested format; nothing was written."""


class ClosedError(AiostoreError, ValueError):
    """The handle or object was already closed, committed or discarded."""


class DatabaseClosedError(ClosedError):
    """The SegmentDB is not running (not started yet, or stopped)."""


class TransactionClosedError(ClosedError):
    """The transaction was already committed or discarded; start a new one."""


class InvalidKeyError(InvalidArgumentError):
    """An object key that is not allowed: empty, absolute, with ``.``/``..`` or empty segments,
    or escaping the storage root. Nothing was read or written."""


class AmbiguousKeyError(InvalidKeyError):
    """A :class:`~aiostore.Store` key given without extension matches two or more stored
    objects (``conf.json`` and ``conf.yaml``) and no replace in progress says which one is
    current. Name the extension (``"conf.yaml"``), or delete or set the key; nothing was read
    or written."""


class PreconditionFailedError(AiostoreError):
    """A conditional put lost: ``if_none_match`` and the key exists, or ``if_match`` and the
    object's ETag is another (or it is gone). The stored object is unchanged."""


class CommitConflictError(AiostoreError):
    """A table commit lost a race against a concurrent commit it conflicts with (an overwrite
    after a concurrent change, a change of schema or protocol); nothing was committed."""


class SchemaMismatchError(AiostoreError, ValueError):
    """The data does not fit the table's schema (and ``schema_mode="merge"`` cannot reconcile
    it: only new nullable columns and safe widening are allowed); nothing was committed."""


class UnsupportedTableError(AiostoreError):
    """The table needs protocol features aiostore does not implement (reader > 1 / writer > 2,
    table features such as deletion vectors or column mapping); it is left untouched."""


class VersionNotFoundError(AiostoreError, LookupError):
    """A table version (or timestamp) that does not exist or whose log was expired."""


class OverwriteDisabledError(AiostoreError):
    """A trim or drop was refused: call ``db.enable_overwrite()`` first. Nothing was changed."""


class SafetyCheckError(InvalidArgumentError):
    """A trim's ``safety_check`` bytes do not match the data it would remove; nothing changed."""


class RunningLoopError(AiostoreError, RuntimeError):
    """A blocking call (``Store.sync``) was made from inside a running event loop, where it
    would block — or deadlock — that loop; use the async API there. Nothing was done."""


class DatabaseLockedError(AiostoreError):
    """Another SegmentDB — in this process or another — has the directory open for writing."""


class DatabaseFailedError(AiostoreError):
    """An earlier write or fsync failed; the SegmentDB refuses writes until it is reopened.

    After a failed fsync the kernel may have dropped the data, so nothing written since the last
    successful flush can be trusted; reopening runs recovery, which keeps what is really on disk.
    """


class DatabaseError(AiostoreError):
    """A SQL database refused a statement of a write or read (a constraint violated, a type it
    rejects, a lock or statement timeout, a permission, ...). A write was rolled back: the target
    is as before. ``sqlstate`` is the SQLSTATE code when the database gave one (PostgreSQL), and
    the driver's exception is chained as ``__cause__``."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class CorruptionError(AiostoreError):
    """Stored bytes fail their checksum or framing (disk corruption, or a foreign file)."""


class StorageError(AiostoreError, OSError):
    """The operating system refused a file-system operation.

    ``errno``, ``strerror`` and ``filename`` are those of the underlying ``OSError``.
    """


class NotFoundError(StorageError, FileNotFoundError):
    """A file or directory that must exist does not."""


class KeyNotFoundError(NotFoundError, KeyError):
    """A :class:`~aiostore.Store` key with no stored object: both a ``NotFoundError`` (a
    ``FileNotFoundError``) and a ``KeyError``, so ``store["x"]`` fails like a dict's."""


class AlreadyExistsError(StorageError, FileExistsError):
    """The target exists and the operation was asked not to replace it."""


class AccessDeniedError(StorageError, PermissionError):
    """The process lacks the permission the operation needs."""


class IsADirectoryTargetError(StorageError, IsADirectoryError):
    """The target is a directory where a file was expected."""


class NotADirectoryTargetError(StorageError, NotADirectoryError):
    """A path component that must be a directory is not one."""


class DiskFullError(StorageError):
    """No space (or quota) left on the device; the old content is intact."""


class BucketNotFoundError(NotFoundError):
    """The S3 bucket named in the URI does not exist (or is not visible with these
    credentials)."""


class StorageUnavailableError(StorageError):
    """The object store could not be reached (connection refused, DNS, timeouts), also after
    the retries; or the connection to a SQL database failed or was lost (a write then committed
    nothing)."""


class DurabilityError(StorageError):
    """``fsync`` failed: the kernel may have dropped the data, which is not durable.

    Never retry the fsync and trust it (PostgreSQL's "fsyncgate"); the operation failed.
    """


_BY_ERRNO: dict[int, type[StorageError]] = {
    _errno.ENOENT: NotFoundError,
    _errno.EEXIST: AlreadyExistsError,
    _errno.EACCES: AccessDeniedError,
    _errno.EPERM: AccessDeniedError,
    _errno.EROFS: AccessDeniedError,
    _errno.EISDIR: IsADirectoryTargetError,
    _errno.ENOTDIR: NotADirectoryTargetError,
    _errno.ENOSPC: DiskFullError,
    _errno.EDQUOT: DiskFullError,
}


def storage_error(
    exc: OSError,
    action: str,
    path: str | os.PathLike[str] | None = None,
    *,
    kind: type[StorageError] | None = None,
) -> StorageError:
    """Translate ``exc`` into the matching :class:`StorageError` subclass.

    ``action`` says what aiostore was doing ("write", "fsync", ...); it starts the message.
    The caller raises the result ``from exc``.
    """
    if isinstance(exc, StorageError):
        return exc
    cls = kind or _BY_ERRNO.get(exc.errno or 0, StorageError)
    name = os.fspath(path) if path is not None else exc.filename
    reason = exc.strerror or str(exc)
    err = cls(exc.errno or 0, f"{action} failed: {reason}")
    err.filename = name
    return err
