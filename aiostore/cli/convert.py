"""``aiostore convert SRC DST``: between frame formats, by the files' suffixes.

The source is decoded batch by batch (Parquet row groups, CSV and JSON-lines blocks, Arrow
IPC record batches) from a seekable file over a local file (through aiostore's I/O core) or
an S3 object (ranged reads), and handed to :func:`aiostore.write` as a ``RecordBatchReader``:
it encodes batch by batch in the worker pool and publishes atomically (a temp file and a
rename, or a multipart upload). Memory stays bounded. JSON (one array) and Excel sources
cannot be read in pieces: they are read whole with :func:`aiostore.read`.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat as stat_mod
from collections.abc import Callable, Iterator
from typing import Any

import click

from .._io.base import current_fs
from .._io.offload import run_sync
from .._io.ops import step
from .._progress import Bar
from ..atomic import read as aio_read
from ..atomic import write as aio_write
from ..errors import SerializationError, UnknownFormatError
from ..formats import default_registry
from ..storage import Storage, open_storage
from .common import Target, json_option, parse_url, run, s3_options
from .errors import EXIT_OK, CliError
from .files import CHUNK, stat
from .output import Output

__all__ = ["convert"]

#: source suffixes read in pieces, and how
_STREAMED = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl",
             ".ndjson": "jsonl", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow"}
_BATCH_ROWS = 1 << 16


class RangeFile(io.RawIOBase):
    """A read-only, seekable file of ``size`` bytes over ``fetch(offset, n) -> bytes``
    (blocking: it runs in the worker pool, where pyarrow reads)."""

    def __init__(self, size: int, fetch: Callable[[int, int], bytes]) -> None:
        super().__init__()
        self.size = size
        self._fetch = fetch
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self.size - self._pos)
        if n <= 0:
            return 0
        data = self._fetch(self._pos, n)
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)


async def _open_source(src: Target, options: dict[str, Any], stack: list[Callable[[], Any]]
                       ) -> io.BufferedReader:
    """A buffered, seekable file over ``src``; closers are appended to ``stack``."""
    if src.remote:
        storage: Storage = open_storage(src.root, **options)
        await storage.__aenter__()
        stack.append(storage.aclose)
        info = await storage.head(src.key)
        loop = asyncio.get_running_loop()

        def fetch_remote(offset: int, n: int) -> bytes:
            future = asyncio.run_coroutine_threadsafe(
                storage.get(src.key, byte_range=(offset, offset + n)), loop)
            return future.result()

        raw = RangeFile(info.size, fetch_remote)
    else:
        assert src.path is not None
        path = src.path
        st = await stat(path)
        if stat_mod.S_ISDIR(st.st_mode):
            raise CliError(f"{path} is a directory, not a file to convert")
        fs = current_fs()

        def open_it() -> int:
            with step("open", path):
                return fs.open(path, os.O_RDONLY)

        fd = await run_sync(open_it)
        stack.append(lambda: run_sync(fs.close, fd))

        def fetch_local(offset: int, n: int) -> bytes:
            with step("read", path):
                return fs.pread(fd, n, offset)

        raw = RangeFile(st.st_size, fetch_local)
    return io.BufferedReader(raw, buffer_size=CHUNK)


def _reader(kind: str, file: io.BufferedReader) -> tuple[Any, int | None]:
    """A ``RecordBatchReader`` decoding ``file`` piece by piece, and its rows when known
    (blocking)."""
    import pyarrow as pa

    if kind == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(file)

        def groups() -> Iterator[pa.RecordBatch]:
            yield from pf.iter_batches(batch_size=_BATCH_ROWS)

        return pa.RecordBatchReader.from_batches(pf.schema_arrow, groups()), \
            pf.metadata.num_rows
    if kind == "csv":
        import pyarrow.csv as pacsv

        return pacsv.open_csv(file), None
    if kind == "jsonl":
        import pyarrow.json as pajson

        if hasattr(pajson, "open_json"):
            return pajson.open_json(file), None
        table = pajson.read_json(file)  # (older pyarrow: whole)
        return table.to_reader(), table.num_rows
    ipc = pa.ipc.open_file(file)

    def batches() -> Iterator[pa.RecordBatch]:
        for i in range(ipc.num_record_batches):
            yield ipc.get_batch(i)

    return pa.RecordBatchReader.from_batches(ipc.schema, batches()), None


@click.command()
@click.argument("src")
@click.argument("dst")
@s3_options
@json_option
def convert(src: str, dst: str, storage_options: dict[str, Any], as_json: bool) -> int:
    """Convert a table file to another format, chosen by the suffixes: .parquet, .csv,
    .jsonl/.ndjson, .json, .arrow/.feather, .xlsx (csv -> parquet, parquet -> jsonl, ...).

    Local paths or s3:// URLs on either side; streamed in batches (JSON and Excel sources
    are read whole); the destination is published atomically. Prints one line (rows
    written); a progress bar of rows on stderr.
    """
    return run(_convert(parse_url(src), parse_url(dst), storage_options, as_json))


async def _convert(src: Target, dst: Target, options: dict[str, Any], as_json: bool) -> int:
    registry = default_registry()
    src_ext = registry.split_extension(src.text)[1]
    dst_ext = registry.split_extension(dst.text)[1]
    if not src_ext:
        raise CliError(f"cannot tell the format of {src.text} from its suffix (use .parquet, "
                       ".csv, .jsonl, .json, .arrow, .feather or .xlsx)")
    if not dst_ext:
        raise CliError(f"cannot tell the format of {dst.text} from its suffix (use .parquet, "
                       ".csv, .jsonl, .json, .arrow, .feather or .xlsx)")
    writes_frames = {".parquet", ".pq", ".csv", ".jsonl", ".ndjson", ".json", ".arrow",
                     ".feather", ".ipc", ".xlsx"}
    if dst_ext not in writes_frames:
        raise UnknownFormatError(f"{dst.text}: {dst_ext} does not hold a table (use .parquet, "
                                 ".csv, .jsonl, .json, .arrow, .feather or .xlsx)")
    if src_ext not in writes_frames:
        raise UnknownFormatError(f"{src.text}: {src_ext} does not hold a table")
    closers: list[Callable[[], Any]] = []
    bar = Bar(f"converting to {os.path.basename(dst.text)}", unit="rows")
    try:
        total: int | None = None
        kind = _STREAMED.get(src_ext)
        if kind is not None:
            file = await _open_source(src, options, closers)
            try:
                reader, total = await run_sync(_reader, kind, file)
            except Exception as exc:
                if type(exc).__module__.startswith("pyarrow"):
                    raise SerializationError(f"{src.text} is not valid {kind}: {exc}") from exc
                raise
            data: Any = reader
        else:
            data = await aio_read(src.text, output="arrow",
                                  storage_options=options or None if src.remote else None)
            total = data.num_rows

        written = [0]

        def progress(done: int, rows: int | None) -> None:
            written[0] = done
            bar.set_done(done, rows if rows is not None else total)

        await aio_write(data, dst.text, progress=progress,
                        storage_options=(options or None) if dst.remote else None)
    finally:
        bar.close()
        for close in reversed(closers):
            await close()
    out = Output(as_json)
    if as_json:
        out.record({"converted": src.text, "to": dst.text, "rows": written[0]})
    else:
        out.line(f"converted {src.text} -> {dst.text} ({written[0]:,} rows)")
    return EXIT_OK
