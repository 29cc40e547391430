"""``write`` and ``read``: one call for any object and format."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import anyio.from_thread
import anyio.lowlevel

from .._io.base import Buffer, current_fs
from .._io.offload import Abort, run_commit, run_sync
from .._io.ops import step
from .._io.publish import TempFile
from ..errors import InvalidArgumentError, SerializationError, UnknownFormatError
from . import encoders, frames
from ._paths import StrPath, check_mode, check_remote, fspath
from .batch import publish_whole
from .formats import FORMATS, Format, format_from_path, lookup_format
from .remote import get_remote, put_remote, write_remote_stream
from .writers import _dumps

__all__ = ["read", "write"]

_JSON_TYPES = (dict, list, tuple, str, int, float, bool, type(None))


def _resolve(path: str, format: str | None) -> Format | None:
    return lookup_format(format) if format is not None else format_from_path(path)


async def write(obj: object, path: StrPath, *, format: str | None = None,
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
    """
    p = fspath(path)
    check_mode(mode)
    remote = check_remote(p, mode, storage_options)
    fmt = _resolve(p, format)

    async def _write_chunks(path: str, encode: Callable[[], list[Buffer]], overwrite: bool,
                            durable: bool, mode: int | None) -> None:
        if remote:
            await put_remote(path, encode, overwrite=overwrite,
                             storage_options=storage_options)
        else:  # batched with concurrent whole-file writes (group commit)
            await publish_whole(path, encode, overwrite=overwrite, durable=durable, mode=mode)

    if isinstance(obj, (bytes, bytearray, memoryview)):
        if format is not None and fmt is not None and fmt.kind == "frame":
            raise SerializationError(f"bytes are written as-is; they cannot be written as "
                                     f"{fmt.name}")
        return await _write_chunks(p, lambda: [obj], overwrite, durable, mode)
    if isinstance(obj, str) and (format is None or fmt is None or fmt.kind in ("text", "bytes")):
        text = obj
        return await _write_chunks(p, lambda: [text.encode("utf-8")], overwrite, durable, mode)
    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise InvalidArgumentError(f"progress must be a bool or a callable, not "
                                   f"{type(progress).__name__}")
    if frames.is_frame(obj) or (fmt is not None and fmt.kind == "frame"
                                and isinstance(obj, (list, tuple))):
        return await _write_frame(obj, p, fmt, progress, overwrite, durable, mode, writer_kwargs,
                                  storage_options if remote else None, remote)
    if isinstance(obj, _JSON_TYPES):
        if fmt is not None and fmt.kind == "jsonl":
            if not isinstance(obj, (list, tuple)):
                raise SerializationError("JSON lines need a list of records")
            from .writers import write_jsonl

            await write_jsonl(p, obj, overwrite=overwrite, durable=durable, mode=mode,
                              storage_options=storage_options, **writer_kwargs)
            return None
        if fmt is not None and fmt.kind not in ("json", "text", "bytes"):
            raise SerializationError(f"a {type(obj).__name__} cannot be written as {fmt.name}")
        return await _write_chunks(p, lambda: [_dumps(obj, writer_kwargs).encode("utf-8")],
                                   overwrite, durable, mode)
    raise SerializationError(f"cannot write an object of type {type(obj).__name__}; pass bytes, "
                             "str, JSON-able data or a DataFrame/Arrow table")


async def _write_frame(obj: object, path: str, fmt: Format | None,
                       progress: bool | frames.Progress | None, overwrite: bool, durable: bool,
                       mode: int | None, kwargs: dict[str, Any],
                       storage_options: Mapping[str, Any] | None, remote: bool) -> None:
    if fmt is None:
        known = ", ".join(repr(f.name) for f in FORMATS.values() if f.takes_frames)
        raise UnknownFormatError(f"cannot tell the format of {path!r} from its suffix; pass "
                                 f"format= (one of {known})")
    if not fmt.takes_frames:
        raise SerializationError(f"a frame cannot be written as {fmt.name}")
    frames.require_pyarrow()
    fs = current_fs()
    abort = Abort()
    report: frames.Progress | None
    if progress is True:
        report = encoders.ProgressBar(f"writing {path}")
    elif callable(progress):
        user = progress
        token = anyio.lowlevel.current_token()

        def report(done: int, total: int | None) -> None:
            anyio.from_thread.run_sync(user, done, total, token=token)
    else:
        report = None

    def source() -> frames.FrameSource:
        data = frames.records_to_table(obj) if isinstance(obj, (list, tuple)) else obj
        return frames.FrameSource(data, flatten_index=fmt.name not in ("parquet", "arrow"))

    if remote:
        def produce(sink: Callable[[Buffer], None], abort: Abort) -> None:
            encoders.encode_frame(fmt.name, source(), sink, dict(kwargs), report, abort.check)

        await write_remote_stream(path, produce, overwrite=overwrite,
                                  storage_options=storage_options)
        return

    def job() -> None:
        src = source()
        tmp = TempFile(fs, path, overwrite=overwrite, durable=durable, mode=mode)
        try:
            encoders.encode_frame(fmt.name, src, tmp.write, dict(kwargs), report, abort.check)
        except BaseException:
            tmp.discard()
            raise
        tmp.commit(abort)

    await run_commit(job, abort=abort)


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
    fmt = _resolve(p, format) or lookup_format("bytes")
    if output is not None:
        frames.check_output(output)
    fs = current_fs()
    want_frame = fmt.kind == "frame" or output is not None
    fetched = await get_remote(p, storage_options) if remote else None

    def job() -> Any:
        if fetched is not None:
            data = fetched
        else:
            with step("read", p):
                data = fs.read_file(p)
        if want_frame:
            if not fmt.takes_frames:
                raise SerializationError(f"{fmt.name} does not hold a frame")
            table = frames.decode_frame(fmt.name, data, dict(reader_kwargs))
            return frames.convert_output(table, output or "pandas")
        if fmt.kind == "bytes":
            return data
        try:
            if fmt.kind == "text":
                return data.decode(reader_kwargs.get("encoding", "utf-8"))
            if fmt.kind == "json":
                return json.loads(data, **reader_kwargs)
            return [json.loads(line, **reader_kwargs) for line in data.splitlines()
                    if line.strip()]
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SerializationError(f"cannot read {p!r} as {fmt.name}: {exc}") from exc

    return await run_sync(job)


