"""``write`` and ``read``: one call for any object and format.

Both go the one way every format goes (:mod:`aiostore.formats`): the registry picks the
handler (by the extension or ``format=``, and the object), the handler encodes in the worker
pool — streamed batch by batch when it can — and a destination publishes atomically: a local
file (the publish recipe) or an object in a store (a put or a multipart upload).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio.from_thread
import anyio.lowlevel

from .._io.base import current_fs
from .._io.offload import run_sync
from .._io.ops import step
from ..errors import InvalidArgumentError, SerializationError, UnknownFormatError
from ..formats import (
    Destination,
    FormatOptions,
    LocalDestination,
    ObjectDestination,
    default_registry,
    encoders,
    frames,
)
from ..formats.registry import decode_with
from ..storage import open_storage, split_url
from ._paths import StrPath, check_mode, check_remote, fspath

__all__ = ["destination", "read", "write"]


@contextlib.asynccontextmanager
async def destination(path: str, *, overwrite: bool, durable: bool, mode: int | None,
                      storage_options: Mapping[str, Any] | None) -> AsyncIterator[Destination]:
    """The destination for ``path``: a local file, or (``s3://``) an object in a storage
    opened for this call and closed after it."""
    if not check_remote(path, mode, storage_options):
        yield LocalDestination(path, overwrite=overwrite, durable=durable, mode=check_mode(mode))
        return
    root, key = split_url(path)
    async with open_storage(root, **dict(storage_options or {})) as storage:
        yield ObjectDestination(storage, key, overwrite=overwrite, name=path)


def _progress(path: str, progress: object) -> frames.Progress | None:
    if progress is None or progress is False:
        return None
    if progress is True:
        return encoders.ProgressBar(f"writing {path}")
    if not callable(progress):
        raise InvalidArgumentError(f"progress must be a bool or a callable, not "
                                   f"{type(progress).__name__}")
    user = progress
    token = anyio.lowlevel.current_token()

    def report(done: int, total: int | None) -> None:
        anyio.from_thread.run_sync(user, done, total, token=token)

    return report


async def write(obj: object, path: StrPath | None = None, *, format: str | None = None,
                progress: bool | frames.Progress | None = None, overwrite: bool = True,
                durable: bool = True, mode: int | None = None,
                storage_options: Mapping[str, Any] | None = None,
                **writer_kwargs: Any) -> None:
    """Atomically write ``obj`` to ``path`` in the format given or implied by the suffix.

    * bytes-like → the bytes; ``str`` → UTF-8 text (``format="json"``: a JSON string);
    * dict/list/numbers → JSON (``.jsonl``: one line per item; ``.parquet``/``.csv``/...: a list
      of dicts becomes a table);
    * frames — pandas ``DataFrame``, pyarrow ``Table``/``RecordBatch``/``RecordBatchReader``, or
      anything with ``__arrow_c_stream__`` such as a polars ``DataFrame`` — → Parquet
      (``.parquet``), CSV, JSON (array of records), JSONL, Arrow IPC/Feather
      (``.arrow``/``.feather``) or Excel (``.xlsx``). ``writer_kwargs`` go to the pyarrow
      writer (``compression=...``), for Excel to ``DataFrame.to_excel``, for JSON/JSONL to
      ``json.dumps`` (which is then called row by row: much slower). In JSON, timestamps and
      dates are ISO 8601 strings and NaN/infinite floats are null. A non-default pandas index
      is kept (Parquet/Arrow restore it; text formats get it as columns).

    Encoding runs in the worker pool, batch by batch (bounded memory, Excel excepted).
    ``progress=True`` draws a bar on a terminal; a callable receives ``(rows_done, rows_total)``
    (total None when unknown), called on the event loop.

    Errors: :class:`~aiostore.errors.UnknownFormatError` for an unknown format, or a frame
    whose path has no known suffix; :class:`~aiostore.errors.SerializationError` for an object
    the format cannot hold — raised before the rename (a frame may fail partway through its
    batches), so the target keeps its old content and no temp file remains. Guarantees: as
    :func:`aiostore.write_bytes`.

    Cancellation: the encoder stops at the next batch, the temp file is removed and the target
    keeps its old content; once the rename has started the write completes, then the
    cancellation propagates.

    ``path`` may be an ``s3://bucket/key`` URI (``storage_options``: see
    :func:`aiostore.open_storage`): bytes, text and JSON are one put; a frame is encoded batch
    by batch into a streamed multipart upload (bounded memory), aborted on an error or
    cancellation, so the object appears whole or not at all.

    ``format="sql"`` (atio's spelling) writes a frame into a database table instead:
    ``write(df, format="sql", name="products", con=con, if_exists="replace")`` is
    :func:`aiostore.write_sql` (``name`` may also be given as ``path``; ``if_exists``,
    ``schema``, ``chunk_rows``, ``dtype`` and ``progress`` are passed on).
    """
    if format == "sql":
        return await _write_sql(obj, path, progress, writer_kwargs)
    if path is None:
        raise InvalidArgumentError("write() needs a path (or format='sql' with name= and con=)")
    p = fspath(path)
    check_mode(mode)
    check_remote(p, mode, storage_options)
    registry = default_registry()
    explicit = format is not None
    ext = registry.ext_for_format(format) if explicit else \
        (registry.split_extension(p)[1] or _suffix(p))
    report = _progress(p, progress)
    try:
        handler = registry.for_object(obj, ext, explicit=explicit)
    except UnknownFormatError:
        if not frames.is_frame(obj):
            raise
        known = ", ".join(repr(n) for n in ("parquet", "csv", "arrow", "xlsx", "json", "jsonl"))
        raise UnknownFormatError(f"cannot tell the format of {p!r} from its suffix; pass "
                                 f"format= (one of {known})") from None
    options = FormatOptions(progress=report, writer_kwargs=dict(writer_kwargs))
    async with destination(p, overwrite=overwrite, durable=durable, mode=mode,
                           storage_options=storage_options) as dest:
        await registry.write(obj, dest, ext, options=options, handler=handler)


_SQL_OPTIONS = {"if_exists", "schema", "chunk_rows", "dtype"}


async def _write_sql(obj: object, path: StrPath | None,
                     progress: bool | frames.Progress | None, kwargs: dict[str, Any]) -> None:
    """``format="sql"``: :func:`aiostore.write_sql` with atio's argument names."""
    from ..sql import write_sql

    name = kwargs.pop("name", None)
    if name is None and isinstance(path, str):
        name = path
    con = kwargs.pop("con", None)
    if name is None or con is None:
        raise InvalidArgumentError("format='sql' needs name= (the table) and con= (a database "
                                   "URL, AsyncEngine or AsyncConnection)")
    unknown = sorted(set(kwargs) - _SQL_OPTIONS)
    if unknown:
        raise InvalidArgumentError(f"format='sql' does not take {unknown}; it takes name, con, "
                                   f"{sorted(_SQL_OPTIONS)} and progress")
    await write_sql(obj, name, con, progress=progress or False, **kwargs)


def _suffix(path: str) -> str:
    """The last suffix of ``path`` (``"."`` when it has none): an extension no handler
    claims."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else "."


async def read(path: StrPath, *, format: str | None = None, output: str | None = None,
               storage_options: Mapping[str, Any] | None = None, **reader_kwargs: Any) -> Any:
    """Read what :func:`write` wrote: the symmetric reader.

    The format comes from ``format`` or the suffix; an unknown suffix reads bytes. Returns
    ``bytes`` (bytes), ``str`` (text), the decoded object (json), a list (jsonl), or a frame for
    Parquet/CSV/Arrow/Excel — pandas by default, ``output="arrow"`` or ``"polars"`` otherwise
    (``output`` also turns JSON/JSONL records into a frame). Decoding runs in the worker pool.

    Errors: :class:`~aiostore.errors.NotFoundError` (a ``FileNotFoundError``) for a missing
    file, :class:`~aiostore.errors.SerializationError` for content that is not valid in the
    format, :class:`~aiostore.errors.InvalidArgumentError` for an unknown ``output`` (before
    anything is read).

    ``path`` may be an ``s3://bucket/key`` URI (``storage_options``: see
    :func:`aiostore.open_storage`; a missing object is
    :class:`~aiostore.errors.NotFoundError` too).

    Cancellation: safe at any point (nothing is changed).
    """
    p = fspath(path)
    remote = check_remote(p, None, storage_options)
    registry = default_registry()
    ext = registry.ext_for_format(format) if format is not None else \
        registry.split_extension(p)[1]
    if output is not None:
        frames.check_output(output)
    options = FormatOptions(output=output, reader_kwargs=dict(reader_kwargs))
    handler = registry.for_extension(ext or ".bin", options)
    if output is not None and not getattr(handler, "holds_frames", False):
        raise SerializationError(f"{_name(handler, ext)} does not hold a frame")
    if remote:
        root, key = split_url(p)
        async with open_storage(root, **dict(storage_options or {})) as storage:
            data = await storage.get(key)
        return await run_sync(_decode, handler, data, ext, options, p)
    fs = current_fs()

    def job() -> Any:
        with step("read", p):
            data = fs.read_file(p)
        return _decode(handler, data, ext, options, p)

    return await run_sync(job)


def _name(handler: object, ext: str) -> str:
    name = getattr(handler, "format_name", None)
    return str(name(ext)) if callable(name) else ext


def _decode(handler: Any, data: bytes, ext: str, options: FormatOptions, path: str) -> Any:
    try:
        return decode_with(handler, data, ext or ".bin", options)
    except SerializationError as exc:
        raise SerializationError(f"cannot read {path!r}: {exc}") from exc
