"""Frames to encoded chunks, off the event loop.

A frame (pandas, polars, pyarrow) becomes Arrow record batches (the frames part's
``FrameSource``: pandas is converted batch by batch), re-cut to ``chunk_rows`` rows; each chunk's
columns are cast to their SQL kind's Arrow type and encoded by the dialect's encoder — all in a
worker thread, one hop per chunk, the next chunk encoding while the current one is sent. A cast
that fails (an overflow, an unparsable string for a ``dtype=`` override) is a
:class:`~aiostore.errors.SerializationError` naming the column.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._io.offload import run_sync
from ..errors import SerializationError
from .types import SqlType, arrow_type

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["cast_columns", "encoded_chunks", "rechunk"]

T = TypeVar("T")


def rechunk(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``rows`` rows (the last one shorter), zero-copy where possible."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == rows:
                yield pending[0] if len(pending) == 1 else \
                    pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
                pending, count = [], 0
    if count:
        yield pending[0] if len(pending) == 1 else \
            pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def cast_columns(batch: pa.RecordBatch, names: Sequence[str], types: Sequence[SqlType]
                 ) -> list[Any]:
    """The batch's columns ``names``, each cast to its SQL type's Arrow type."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = []
    for name, sql in zip(names, types, strict=True):
        arr: Any = batch.column(name)
        target = arrow_type(sql)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if arr.type != target:
            try:
                if (pa.types.is_timestamp(arr.type) and pa.types.is_timestamp(target)) or \
                        (pa.types.is_time(arr.type) and pa.types.is_time(target)):
                    opts = pc.CastOptions(target, allow_time_truncate=True)
                    arr = pc.cast(arr, options=opts)  # type: ignore[call-overload]
                else:
                    arr = pc.cast(arr, target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise SerializationError(
                    f"column {name!r} ({arr.type}) cannot be written as {sql.sql}: {exc}"
                ) from exc
        out.append(arr)
    return out


async def encoded_chunks(batches: Iterator[pa.RecordBatch], chunk_rows: int,
                         encode: Callable[[pa.RecordBatch], T]
                         ) -> AsyncGenerator[tuple[int, T], None]:
    """(rows, encoded chunk) for every chunk of ``batches``; ``encode`` runs in a worker thread.

    One chunk is encoded ahead while the caller sends the current one. The batch iterator is
    only ever advanced by one worker at a time. When the consumer stops early (an error, a
    cancellation) the chunk being encoded is abandoned: encoding changes nothing.
    """
    chunks = rechunk(batches, chunk_rows)

    def step() -> tuple[int, T] | None:
        batch = next(chunks, None)
        if batch is None:
            return None
        return batch.num_rows, encode(batch)

    pending: asyncio.Future[Any] = asyncio.ensure_future(run_sync(step))
    try:
        while True:
            item = await pending
            if item is None:
                return
            pending = asyncio.ensure_future(run_sync(step))
            yield item
    finally:
        if not pending.done():
            pending.cancel()
        with contextlib.suppress(BaseException):
            if pending.done() and not pending.cancelled():
                pending.exception()
