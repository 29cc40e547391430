"""Frame encoders: Parquet, CSV, Arrow IPC and Excel (JSON in :mod:`.frame_json`).

:func:`encode_frame` streams a :class:`~.frames.FrameSource` into the temp file's ``write``,
batch by batch, in a worker thread.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from .._io.base import Buffer
from .._io.offload import Aborted
from .._progress import Bar
from ..errors import AiostoreError, InvalidArgumentError, SerializationError, StorageError
from . import frames
from .frame_json import encode_json
from .frames import FrameSource, Progress, require_pyarrow

if TYPE_CHECKING:
    import pyarrow as pa


class SinkFile(io.RawIOBase):
    """A write-only file object over a callable (the temp file's ``write``), for encoders.

    Once a write failed, every later one raises the same error without touching the file (an
    encoder closing after the failure does not append its footer); ``error`` keeps it, so a
    failure an encoder swallowed is still seen. After :meth:`drop` every write is discarded: a
    buffer or encoder flushing late (on garbage collection) never reaches the temp file.
    """

    def __init__(self, write: Callable[[Buffer], None]) -> None:
        super().__init__()
        self._write: Callable[[Buffer], None] | None = write
        self._pos = 0
        self.error: BaseException | None = None

    def writable(self) -> bool:
        return True

    def drop(self) -> None:
        """Discard every later write."""
        self._write = None

    def write(self, b: Buffer) -> int:  # type: ignore[override]
        n = memoryview(b).nbytes
        if self.error is not None:
            raise self.error
        if self._write is not None:
            try:
                self._write(b)
            except BaseException as exc:
                self.error = exc
                raise
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos


class ProgressBar:
    """``progress=True``: a tqdm bar on stderr, shown only when stderr is a terminal (or
    ``AIOSTORE_PROGRESS=always``); called from the encoder's worker thread."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar = Bar(label, unit="rows")
        self.enabled = self._bar.active

    def __call__(self, done: int, total: int | None) -> None:
        self._bar.set_done(done, total)


def _encode_parquet(pa: Any, source: FrameSource, sink: BinaryIO,
                    kwargs: dict[str, Any], tick: Callable[[int], None],
                    check: Callable[[], None]) -> None:
    import pyarrow.parquet as pq

    row_group = int(kwargs.pop("row_group_size", frames.ROW_GROUP_ROWS))
    if row_group <= 0:
        raise InvalidArgumentError(f"row_group_size must be positive, not {row_group}")
    with pq.ParquetWriter(sink, source.schema, **kwargs) as writer:
        pending: list[pa.RecordBatch] = []
        rows = 0
        written = False
        for batch in source.batches():
            check()
            pending.append(batch)
            rows += batch.num_rows
            while rows >= row_group:  # full row groups; the rest waits for the next batches
                table = pa.Table.from_batches(pending, source.schema)
                writer.write_table(table.slice(0, row_group), row_group_size=row_group)
                rest = table.slice(row_group)
                pending, rows, written = rest.to_batches(), rest.num_rows, True
                tick(row_group)
        if rows or not written:
            writer.write_table(pa.Table.from_batches(pending, source.schema),
                               row_group_size=row_group)
            tick(rows)


def _csv_schema(pa: Any, schema: Any) -> Any:
    """``schema`` with view types (polars exports them) replaced by what the CSV writer takes."""
    fields = []
    for field in schema:
        if pa.types.is_string_view(field.type):
            field = field.with_type(pa.large_string())
        elif pa.types.is_binary_view(field.type):
            field = field.with_type(pa.large_binary())
        fields.append(field)
    return pa.schema(fields, metadata=schema.metadata)


def _encode_csv(pa: Any, source: FrameSource, sink: BinaryIO,
                kwargs: dict[str, Any], tick: Callable[[int], None],
                check: Callable[[], None]) -> None:
    import pyarrow.csv as pacsv

    schema = _csv_schema(pa, source.schema)
    recast = not schema.equals(source.schema)
    options = pacsv.WriteOptions(**kwargs)
    with pacsv.CSVWriter(sink, schema, write_options=options) as writer:
        for batch in source.batches():
            check()
            writer.write_batch(batch.cast(schema) if recast else batch)
            tick(batch.num_rows)


def _encode_arrow(pa: Any, source: FrameSource, sink: BinaryIO,
                  kwargs: dict[str, Any], tick: Callable[[int], None],
                  check: Callable[[], None]) -> None:
    options = pa.ipc.IpcWriteOptions(compression=kwargs.pop("compression", None), **kwargs)
    with pa.ipc.new_file(sink, source.schema, options=options) as writer:
        for batch in source.batches():
            check()
            writer.write_batch(batch)
            tick(batch.num_rows)


def _encode_xlsx(pa: Any, source: FrameSource, sink: BinaryIO,
                 kwargs: dict[str, Any], tick: Callable[[int], None],
                 check: Callable[[], None]) -> None:
    batches = []
    for batch in source.batches():
        check()
        batches.append(batch)
    table = pa.Table.from_batches(batches, source.schema)
    df = table.to_pandas()
    check()
    kwargs.setdefault("index", False)
    kwargs.setdefault("engine", "openpyxl")
    try:
        df.to_excel(sink, **kwargs)
    except (OSError, AiostoreError, Aborted):
        raise
    except Exception as exc:  # openpyxl/pandas refusals: time zones, sheet too large, ...
        raise SerializationError(f"cannot write the frame as xlsx: {exc}") from exc
    tick(table.num_rows)


def encode_frame(fmt: str, source: FrameSource, write: Callable[[Buffer], None],
                 kwargs: dict[str, Any], progress: Progress | None,
                 check: Callable[[], None]) -> None:
    """Encode ``source`` as ``fmt`` into ``write``, batch by batch; ``check`` between batches.

    ``progress(rows_done, source.total)`` is called after each batch (each row group for
    Parquet, once for Excel). An object the format cannot hold raises
    :class:`~aiostore.errors.SerializationError`; errors of ``write`` propagate unchanged.
    """
    pa = require_pyarrow()
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, source.total)

    raw = SinkFile(write)
    sink = io.BufferedWriter(cast(Any, raw), buffer_size=1 << 20)
    try:
        if fmt == "parquet":
            _encode_parquet(pa, source, sink, kwargs, tick, check)
        elif fmt == "csv":
            _encode_csv(pa, source, sink, kwargs, tick, check)
        elif fmt == "arrow":
            _encode_arrow(pa, source, sink, kwargs, tick, check)
        elif fmt in ("json", "jsonl"):
            encode_json(pa, source, sink, fmt, kwargs, tick, check)
        elif fmt == "xlsx":
            _encode_xlsx(pa, source, sink, kwargs, tick, check)
        else:
            raise InvalidArgumentError(f"format {fmt!r} cannot hold a frame")
        sink.flush()
        if raw.error is not None:  # an encoder swallowed it: the file is incomplete
            raise raw.error
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SerializationError(f"cannot write the frame as {fmt}: {exc}") from exc
    except OSError as exc:
        if isinstance(exc, StorageError) or exc is raw.error:
            raise  # the temp file's write failed
        raise SerializationError(f"cannot write the frame as {fmt}: {exc}") from exc
    finally:
        # nothing may reach the temp file after this returns: not a late flush of the buffer,
        # nor a pyarrow writer closed by the garbage collector after a failure
        raw.drop()
        with contextlib.suppress(Exception):
            sink.detach()
