"""DataFrames in and out: pandas, pyarrow and anything exporting the Arrow C stream (polars).

Everything here runs in a worker thread. Frames are converted to Arrow record batches of at most
``BATCH_ROWS`` rows and encoded batch by batch, so memory stays bounded (Excel excepted) and the
event loop keeps the GIL between batches. Needs the ``frames`` extra (pyarrow, pandas).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import io
import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._io.base import Buffer
from ..errors import InvalidArgumentError, SerializationError

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 1 << 16
ROW_GROUP_ROWS = 1 << 20
Progress = Callable[[int, "int | None"], None]


def require_pyarrow() -> Any:
    """Import pyarrow or explain which extra to install."""
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise InvalidArgumentError(
            "writing and reading frames needs the 'frames' extra: pip install 'aiostore[frames]'"
        ) from exc
    return pyarrow


def is_frame(obj: object) -> bool:
    """Whether ``obj`` is a DataFrame/Arrow object (checked without importing pandas/pyarrow)."""
    mod = type(obj).__module__.split(".")[0]
    if mod == "pandas":
        return type(obj).__name__ == "DataFrame"
    if mod == "pyarrow":
        return type(obj).__name__ in ("Table", "RecordBatch", "RecordBatchReader")
    return hasattr(obj, "__arrow_c_stream__")


class FrameSource:
    """A frame as a stream of record batches with a fixed schema and a known or unknown length."""

    def __init__(self, obj: object, *, flatten_index: bool) -> None:
        pa = require_pyarrow()
        self.total: int | None = None
        mod = type(obj).__module__.split(".")[0]
        if mod == "pandas":
            self._init_pandas(pa, obj, flatten_index)
        elif isinstance(obj, pa.Table):
            self.schema = obj.schema
            self.total = obj.num_rows
            self._batches = iter(obj.to_batches(max_chunksize=BATCH_ROWS))
        elif isinstance(obj, pa.RecordBatch):
            self.schema = obj.schema
            self.total = obj.num_rows
            self._batches = iter([obj])
        elif isinstance(obj, pa.RecordBatchReader):
            self.schema = obj.schema
            self._batches = iter(obj)
        elif hasattr(obj, "__arrow_c_stream__"):
            if hasattr(obj, "__len__"):
                self.total = len(obj)
            reader = pa.RecordBatchReader.from_stream(obj)
            self.schema = reader.schema
            self._batches = iter(reader)
        else:
            raise SerializationError(f"not a frame: {type(obj).__name__}")

    def _init_pandas(self, pa: Any, df: Any, flatten_index: bool) -> None:
        import pandas as pd

        default_index = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and \
            df.index.step == 1 and df.index.name is None
        if not default_index and flatten_index:
            df = df.reset_index()
        preserve = False if default_index or flatten_index else True
        try:
            self.schema = pa.Schema.from_pandas(df, preserve_index=preserve)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise SerializationError(f"cannot convert the DataFrame to Arrow: {exc}") from exc
        self.total = len(df)

        def gen() -> Iterator[pa.RecordBatch]:
            for start in range(0, max(len(df), 1), BATCH_ROWS):
                part = df.iloc[start:start + BATCH_ROWS]
                try:
                    table = pa.Table.from_pandas(part, schema=self.schema, preserve_index=preserve,
                                                 safe=True)
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                    raise SerializationError(
                        f"cannot convert rows {start}..{start + len(part)} to Arrow: {exc}"
                    ) from exc
                yield from table.to_batches()

        self._batches = gen()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The record batches, once."""
        return self._batches


class SinkFile(io.RawIOBase):
    """A write-only file object over a callable (the temp file's ``write``), for encoders."""

    def __init__(self, write: Callable[[Buffer], None]) -> None:
        super().__init__()
        self._write = write
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Buffer) -> int:  # type: ignore[override]
        n = len(memoryview(b).cast("B"))
        self._write(bytes(b) if isinstance(b, memoryview) else b)
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos


def _json_default(obj: object) -> object:
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


class ProgressBar:
    """A minimal terminal progress bar on stderr (no dependency)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if total:
            frac = min(done / total, 1.0)
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {frac:4.0%} {done:,}/{total:,} rows")
        else:
            sys.stderr.write(f"\r{self.label} {done:,} rows")
        if total is not None and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def encode_frame(fmt: str, source: FrameSource, write: Callable[[Buffer], None],
                 kwargs: dict[str, Any], progress: Progress | None,
                 check: Callable[[], None]) -> None:
    """Encode ``source`` as ``fmt`` into ``write``, batch by batch; ``check`` between batches."""
    pa = require_pyarrow()
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, source.total)

    sink = io.BufferedWriter(SinkFile(write), buffer_size=1 << 20)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            row_group = int(kwargs.pop("row_group_size", ROW_GROUP_ROWS))
            with pq.ParquetWriter(sink, source.schema, **kwargs) as writer:
                pending: list[pa.RecordBatch] = []
                rows = 0
                for batch in source.batches():
                    check()
                    pending.append(batch)
                    rows += batch.num_rows
                    if rows >= row_group:
                        writer.write_table(pa.Table.from_batches(pending, source.schema),
                                           row_group_size=row_group)
                        tick(rows)
                        pending, rows = [], 0
                if pending or done == 0:
                    writer.write_table(pa.Table.from_batches(pending, source.schema),
                                       row_group_size=row_group)
                    tick(rows)
        elif fmt == "csv":
            import pyarrow.csv as pacsv

            options = pacsv.WriteOptions(**kwargs)
            with pacsv.CSVWriter(sink, source.schema, write_options=options) as writer:
                for batch in source.batches():
                    check()
                    writer.write_batch(batch)
                    tick(batch.num_rows)
        elif fmt == "arrow":
            options = pa.ipc.IpcWriteOptions(compression=kwargs.pop("compression", None),
                                             **kwargs)
            with pa.ipc.new_file(sink, source.schema, options=options) as writer:
                for batch in source.batches():
                    check()
                    writer.write_batch(batch)
                    tick(batch.num_rows)
        elif fmt in ("json", "jsonl"):
            kwargs.setdefault("default", _json_default)
            kwargs.setdefault("ensure_ascii", False)
            first = True
            if fmt == "json":
                sink.write(b"[")
            for batch in source.batches():
                check()
                lines = [json.dumps(row, **kwargs) for row in batch.to_pylist()]
                if lines:
                    sep = "\n" if fmt == "jsonl" else ",\n"
                    text = sep.join(lines)
                    if fmt == "jsonl":
                        text += "\n"
                    elif not first:
                        text = ",\n" + text
                    first = False
                    sink.write(text.encode("utf-8"))
                tick(batch.num_rows)
            if fmt == "json":
                sink.write(b"]\n")
        elif fmt == "xlsx":
            table = pa.Table.from_batches(list(source.batches()), source.schema)
            check()
            df = table.to_pandas()
            kwargs.setdefault("index", False)
            kwargs.setdefault("engine", "openpyxl")
            df.to_excel(sink, **kwargs)
            tick(table.num_rows)
        else:
            raise InvalidArgumentError(f"format {fmt!r} cannot hold a frame")
        sink.flush()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SerializationError(f"cannot write the frame as {fmt}: {exc}") from exc
    finally:
        # never let a later garbage collection flush into a descriptor that was closed
        with contextlib.suppress(Exception):
            if not sink.closed:
                sink.detach()


def records_to_table(records: object) -> pa.Table:
    """A list of dicts (rows) as an Arrow table."""
    pa = require_pyarrow()
    try:
        return pa.Table.from_pylist(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise SerializationError(f"cannot build a table from the records: {exc}") from exc


def decode_frame(fmt: str, data: bytes, kwargs: dict[str, Any]) -> pa.Table:
    """Decode a whole file's bytes in ``fmt`` into an Arrow table."""
    pa = require_pyarrow()
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(pa.BufferReader(data), **kwargs)
        if fmt == "csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(pa.BufferReader(data), **kwargs)
        if fmt == "arrow":
            try:
                return pa.ipc.open_file(pa.BufferReader(data)).read_all()
            except pa.ArrowInvalid:
                return pa.ipc.open_stream(pa.BufferReader(data)).read_all()
        if fmt == "xlsx":
            import pandas as pd

            kwargs.setdefault("engine", "openpyxl")
            return pa.Table.from_pandas(pd.read_excel(io.BytesIO(data), **kwargs),
                                        preserve_index=False)
        if fmt == "json":
            return records_to_table(json.loads(data))
        if fmt == "jsonl":
            import pyarrow.json as pajson

            return pajson.read_json(pa.BufferReader(data), **kwargs)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise SerializationError(f"cannot read the file as {fmt}: {exc}") from exc
    raise InvalidArgumentError(f"format {fmt!r} does not hold a frame")


def convert_output(table: pa.Table, output: str) -> object:
    """``table`` as a pandas/arrow/polars frame."""
    if output == "arrow":
        return table
    if output == "pandas":
        return table.to_pandas()
    if output == "polars":
        try:
            import polars as pl
        except ImportError as exc:
            raise InvalidArgumentError("output='polars' needs polars installed") from exc
        return pl.from_arrow(table)
    raise InvalidArgumentError(f"output must be 'pandas', 'arrow' or 'polars', not {output!r}")
