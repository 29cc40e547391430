"""``write_bytes``, ``write_text``, ``write_json`` and ``write_jsonl``: whole-file atomic writes.

Each call is one hop to the worker pool: encode, create the temp sibling, write, fsync, rename,
fsync the directory (shared with concurrent writers into the same directory).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any

from .._io.base import Buffer
from ..errors import InvalidArgumentError, SerializationError
from ..formats.basic import dumps_json
from ._paths import StrPath, fspath
from .dispatch import destination
from .stream import atomic_open

__all__ = ["write_bytes", "write_json", "write_jsonl", "write_text"]


def _check_bytes(data: object) -> Buffer:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data
    raise SerializationError(
        f"data must be bytes-like (bytes, bytearray, memoryview), not {type(data).__name__}")


async def _write_encoded(path: StrPath, encode: Callable[[], list[Buffer]], *, overwrite: bool,
                         durable: bool, mode: int | None,
                         storage_options: Mapping[str, Any] | None) -> None:
    async with destination(fspath(path), overwrite=overwrite, durable=durable, mode=mode,
                           storage_options=storage_options) as dest:
        await dest.put(encode)


async def write_bytes(path: StrPath, data: Buffer, *, overwrite: bool = True,
                      durable: bool = True, mode: int | None = None,
                      storage_options: Mapping[str, Any] | None = None) -> None:
    """Atomically replace (or create) the file at ``path`` with ``data``.

    A reader sees the old content or the new, never a partial or missing file. With
    ``durable=True`` (the default) the new content survives a power loss once this returns:
    the temp file and its directory are fsynced. ``durable=False`` skips both fsyncs but keeps
    atomicity. ``overwrite=False`` publishes only if ``path`` does not exist and otherwise raises
    :class:`~aiostore.errors.AlreadyExistsError` (a ``FileExistsError``), target untouched.
    An existing target keeps its permission bits; a new file gets ``0o666 & ~umask``; ``mode``
    sets them explicitly. A symlink at ``path`` is followed: the file it points to is replaced
    and the link kept. Missing parent directories are created.

    Cancellation: cancelled before the worker starts, nothing changes; once it runs it is
    finished (the write publishes durably, or fails leaving the old content) and then the
    cancellation propagates. The temp file never outlives the call.

    Raises :class:`~aiostore.errors.StorageError` subclasses for OS failures
    (:class:`~aiostore.errors.DiskFullError`, :class:`~aiostore.errors.AccessDeniedError`,
    :class:`~aiostore.errors.DurabilityError` for a failed fsync, ...); the old content is
    intact in every case except a failed directory fsync after the rename.

    ``path`` may be an ``s3://bucket/key`` URI (``storage_options``: see
    :func:`aiostore.open_storage`): the object is put whole — one ``PutObject``, or a
    multipart upload aborted on failure — and ``overwrite=False`` is ``If-None-Match: *``;
    ``mode`` does not apply there.
    """
    buf = _check_bytes(data)
    await _write_encoded(path, lambda: [buf], overwrite=overwrite, durable=durable, mode=mode,
                         storage_options=storage_options)


async def write_text(path: StrPath, text: str, *, encoding: str = "utf-8", errors: str = "strict",
                     overwrite: bool = True, durable: bool = True,
                     mode: int | None = None,
                     storage_options: Mapping[str, Any] | None = None) -> None:
    """Atomically write ``text`` encoded with ``encoding``; see :func:`write_bytes` (also for
    ``s3://`` URIs and ``storage_options``).

    Encoding errors raise :class:`~aiostore.errors.SerializationError` before any file is
    created. Cancellation: as :func:`write_bytes`.
    """
    if not isinstance(text, str):
        raise SerializationError(f"text must be str, not {type(text).__name__}")

    def encode() -> list[Buffer]:
        try:
            return [text.encode(encoding, errors)]
        except (UnicodeError, LookupError) as exc:
            raise SerializationError(f"cannot encode text as {encoding}: {exc}") from exc

    await _write_encoded(path, encode, overwrite=overwrite, durable=durable, mode=mode,
                         storage_options=storage_options)


def _dumps(obj: object, kwargs: dict[str, Any]) -> str:
    return dumps_json(obj, kwargs)


async def write_json(path: StrPath, obj: object, *, overwrite: bool = True, durable: bool = True,
                     mode: int | None = None, encoding: str = "utf-8",
                     storage_options: Mapping[str, Any] | None = None,
                     **json_dumps_kwargs: Any) -> None:
    """Atomically write ``obj`` as JSON (``json.dumps(obj, **json_dumps_kwargs)``); ``path``
    may be an ``s3://`` URI (see :func:`write_bytes`).

    Serialisation runs in the worker thread, before any file is created: a non-serialisable
    object raises :class:`~aiostore.errors.SerializationError` and leaves nothing behind.
    Guarantees and cancellation: as :func:`write_bytes`.
    """
    await _write_encoded(path, lambda: [_dumps(obj, json_dumps_kwargs).encode(encoding)],
                         overwrite=overwrite, durable=durable, mode=mode,
                         storage_options=storage_options)


_JSONL_BATCH = 1000


async def write_jsonl(path: StrPath, records: Iterable[object] | AsyncIterable[object], *,
                      overwrite: bool = True, durable: bool = True, mode: int | None = None,
                      encoding: str = "utf-8", storage_options: Mapping[str, Any] | None = None,
                      **json_dumps_kwargs: Any) -> int:
    """Atomically write one JSON document per line; returns the number of records
    (``path`` may be an ``s3://`` URI: a streamed multipart upload).

    ``records`` may be an iterable or an async iterable; records are serialised in batches in
    the worker thread and streamed to the temp file, so memory stays bounded. The file is
    published only after the last record. A record that cannot be serialised raises
    :class:`~aiostore.errors.SerializationError`; the target is untouched and the temp removed.
    Cancellation: before publication, the target is untouched and the temp removed; once the
    final publish has started it completes, then the cancellation propagates.
    """
    if "indent" in json_dumps_kwargs and json_dumps_kwargs["indent"] is not None:
        raise InvalidArgumentError("write_jsonl writes one line per record: indent is not allowed")
    json_dumps_kwargs.setdefault("separators", (",", ":"))

    def encode(batch: list[object]) -> bytes:
        lines = [_dumps(r, json_dumps_kwargs) for r in batch]
        lines.append("")
        return "\n".join(lines).encode(encoding)

    count = 0
    async with atomic_open(path, "wb", overwrite=overwrite, durable=durable, perm=mode,
                           storage_options=storage_options) as f:
        batch: list[object] = []
        if isinstance(records, AsyncIterable):
            async for rec in records:
                batch.append(rec)
                if len(batch) >= _JSONL_BATCH:
                    count += len(batch)
                    await f.write_encoded(encode, batch)
                    batch = []
        elif isinstance(records, Iterable) and not isinstance(records, (str, bytes, dict)):
            for rec in records:
                batch.append(rec)
                if len(batch) >= _JSONL_BATCH:
                    count += len(batch)
                    await f.write_encoded(encode, batch)
                    batch = []
        else:
            raise SerializationError(
                f"records must be an iterable of JSON-able objects, not {type(records).__name__}")
        if batch:
            count += len(batch)
            await f.write_encoded(encode, batch)
    return count
