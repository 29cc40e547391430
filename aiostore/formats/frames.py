"""DataFrames in and out: pandas, pyarrow and anything exporting the Arrow C stream (polars).

Conversion only: a frame becomes a stream of Arrow record batches of at most ``BATCH_ROWS`` rows
(:class:`FrameSource`), and files decode back into frames. The encoders are in
:mod:`.encoders` and :mod:`.frame_json`. Everything here runs in a worker thread, batch by
batch, so memory stays bounded and the event loop keeps the GIL between batches. Needs the
``frames`` extra (pyarrow, pandas); neither is imported until a frame is written or read.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

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


def _pandas_frame(obj: object) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame)


def is_frame(obj: object) -> bool:
    """Whether ``obj`` is a DataFrame/Arrow object (checked without importing pandas/pyarrow).

    pandas ``DataFrame`` (and subclasses), pyarrow ``Table``, ``RecordBatch`` and
    ``RecordBatchReader`` (and subclasses such as IPC stream readers), and any other object with
    ``__arrow_c_stream__`` (polars). If pandas/pyarrow are not imported, ``obj`` is not theirs.
    """
    if isinstance(obj, type):
        return False
    if _pandas_frame(obj):
        return True
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        if isinstance(obj, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
            return True
        if type(obj).__module__.split(".")[0] == "pyarrow":
            return False  # arrays, chunked arrays, ...: columns, not tables
    return hasattr(obj, "__arrow_c_stream__")


def _conversion_errors(pa: Any) -> tuple[type[BaseException], ...]:
    return (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError,
            ValueError, OverflowError)


def _rechunk(batches: Iterable[pa.RecordBatch], schema: pa.Schema | None = None
             ) -> Iterator[pa.RecordBatch]:
    """Split batches longer than ``BATCH_ROWS`` (zero-copy slices); check each one's schema.

    A reader built from Python batches does not check that they match its schema, and the CSV
    and JSON encoders would write whatever they get.
    """
    for n, batch in enumerate(batches):
        if schema is not None and not batch.schema.equals(schema):
            raise SerializationError(
                f"batch {n} of the stream does not have the stream's schema: "
                f"({batch.schema.to_string(show_schema_metadata=False)}) instead of "
                f"({schema.to_string(show_schema_metadata=False)})")
        size = BATCH_ROWS
        if batch.num_rows <= size:
            yield batch
        else:
            for start in range(0, batch.num_rows, size):
                yield batch.slice(start, size)


class FrameSource:
    """A frame as a stream of record batches with a fixed schema and a known or unknown length.

    ``total`` is the number of rows, or None for a stream of unknown length (a
    ``RecordBatchReader``). Batches have at most ``BATCH_ROWS`` rows.
    """

    schema: pa.Schema
    _batches: Iterator[pa.RecordBatch]

    def __init__(self, obj: object, *, flatten_index: bool) -> None:
        pa = require_pyarrow()
        self.total: int | None = None
        if _pandas_frame(obj):
            self._init_pandas(pa, obj, flatten_index)
        elif isinstance(obj, pa.Table):
            self.schema = obj.schema
            self.total = obj.num_rows
            self._batches = iter(obj.to_batches(max_chunksize=BATCH_ROWS))
        elif isinstance(obj, pa.RecordBatch):
            self.schema = obj.schema
            self.total = obj.num_rows
            self._batches = _rechunk([obj])
        elif isinstance(obj, pa.RecordBatchReader):
            self.schema = obj.schema
            self._batches = _rechunk(obj, obj.schema)
        elif hasattr(obj, "__arrow_c_stream__") and not isinstance(obj, type):
            try:
                reader = pa.RecordBatchReader.from_stream(obj)
            except _conversion_errors(pa) as exc:
                raise SerializationError(
                    f"cannot read a {type(obj).__name__} as a table (Arrow stream): {exc}"
                ) from exc
            with contextlib.suppress(TypeError):
                self.total = len(obj)  # type: ignore[arg-type]
            self.schema = reader.schema
            self._batches = _rechunk(reader, reader.schema)
        else:
            raise SerializationError(f"not a frame: {type(obj).__name__}")

    def _init_pandas(self, pa: Any, df: Any, flatten_index: bool) -> None:
        import pandas as pd

        default_index = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and \
            df.index.step == 1 and df.index.name is None
        if not default_index and flatten_index:
            try:
                df = df.reset_index()
            except ValueError as exc:  # e.g. a column already has the index's name
                raise SerializationError(
                    f"cannot turn the DataFrame's index into columns: {exc}") from exc
        preserve = not default_index and not flatten_index
        try:
            self.schema = pa.Schema.from_pandas(df, preserve_index=preserve)
        except _conversion_errors(pa) as exc:
            raise SerializationError(f"cannot convert the DataFrame to Arrow: {exc}") from exc
        self.total = len(df)

        def gen() -> Iterator[pa.RecordBatch]:
            size = BATCH_ROWS
            for start in range(0, max(len(df), 1), size):
                part = df.iloc[start:start + size]
                try:
                    table = pa.Table.from_pandas(part, schema=self.schema, preserve_index=preserve,
                                                 safe=True)
                except _conversion_errors(pa) as exc:
                    raise SerializationError(
                        f"cannot convert rows {start}..{start + len(part)} to Arrow: {exc}"
                    ) from exc
                yield from table.to_batches()

        self._batches = gen()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The record batches, once."""
        return self._batches


def records_to_table(records: object) -> pa.Table:
    """A list of dicts (rows) as an Arrow table."""
    require_pyarrow()
    import pyarrow as pa
    if not isinstance(records, (list, tuple)) or not all(isinstance(r, Mapping)
                                                         for r in records):
        raise SerializationError("a table needs a list of dicts, one per row")
    try:
        return pa.Table.from_pylist(list(records))
    except _conversion_errors(pa) as exc:
        raise SerializationError(f"cannot build a table from the records: {exc}") from exc


def decode_frame(fmt: str, data: bytes, kwargs: dict[str, Any]) -> pa.Table:
    """Decode a whole file's bytes in ``fmt`` into an Arrow table.

    Bytes that are not valid ``fmt`` raise :class:`~aiostore.errors.SerializationError`.
    """
    require_pyarrow()
    import pyarrow as pa
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(pa.BufferReader(data), **kwargs)
        if fmt == "csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(cast(Any, pa.BufferReader(data)), **kwargs)
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

            return pajson.read_json(cast(Any, pa.BufferReader(data)), **kwargs)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError,
            OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        # the bytes are in memory: an OSError here is pyarrow's "Couldn't deserialize thrift"
        raise SerializationError(f"cannot read the file as {fmt}: {exc}") from exc
    raise InvalidArgumentError(f"format {fmt!r} does not hold a frame")


OUTPUTS = ("pandas", "arrow", "polars")


def check_output(output: str) -> None:
    """Raise :class:`~aiostore.errors.InvalidArgumentError` for an unknown ``output``."""
    if output not in OUTPUTS:
        raise InvalidArgumentError(
            f"output must be 'pandas', 'arrow' or 'polars', not {output!r}")


def convert_output(table: pa.Table, output: str) -> object:
    """``table`` as a pandas/arrow/polars frame."""
    check_output(output)
    if output == "arrow":
        return table
    if output == "pandas":
        return table.to_pandas()
    try:
        import polars as pl
    except ImportError as exc:
        raise InvalidArgumentError("output='polars' needs polars installed") from exc
    return pl.from_arrow(table)
