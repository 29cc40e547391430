"""``write_sql``: a frame into a SQLite or PostgreSQL table, all rows or none."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._io.offload import run_sync
from ..errors import InvalidArgumentError
from ..formats import frames
from .connect import open_session
from .names import check_name
from .staging import Plan, check_if_exists, column_names, write_rows
from .types import SqlType, check_type_text, for_arrow, parse_sql_type

__all__ = ["write_sql"]

DEFAULT_CHUNK_ROWS = 1 << 16


class _StderrProgress:
    """``progress=True``: one line on stderr, rewritten at most 10 times a second."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label, self.total, self._last = label, total, 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        final = self.total is not None and done >= self.total
        if not final and now - self._last < 0.1:
            return
        self._last = now
        total = f"/{self.total:,}" if self.total is not None else ""
        sys.stderr.write(f"\r{self.label}: {done:,}{total} rows" + ("\n" if final else ""))
        sys.stderr.flush()


def _types(schema: Any, names: list[str], dtype: Mapping[str, object] | None,
           dialect: str) -> list[SqlType]:
    overrides = dict(dtype or {})
    unknown = [c for c in overrides if c not in names]
    if unknown:
        raise InvalidArgumentError(f"dtype names column(s) {unknown} that the frame does not "
                                   f"have (it has {names})")
    out = []
    for name in names:
        if name in overrides:
            spec: Any = overrides[name]
            if type(spec).__module__.startswith("sqlalchemy."):
                spec = _compile_sqlalchemy_type(spec, dialect)
            text = check_type_text(name, spec)
            parsed = parse_sql_type(text, dialect)
            if parsed is None:
                raise InvalidArgumentError(
                    f"dtype for column {name!r}: aiostore cannot encode values as {text!r} "
                    "(known: integer, float, boolean, text/varchar/char, bytea/blob, numeric, "
                    "date, timestamp[tz], time, json[b])")
            out.append(parsed)
        else:
            out.append(for_arrow(name, schema.field(name).type, dialect))
    return out


def _compile_sqlalchemy_type(spec: Any, dialect: str) -> str:
    if isinstance(spec, type):
        spec = spec()
    from sqlalchemy.dialects import postgresql, sqlite

    target: Any = (postgresql.dialect() if dialect == "postgresql"  # type: ignore[no-untyped-call]
                   else sqlite.dialect())
    return str(spec.compile(dialect=target))


async def write_sql(frame: object, name: str, con: object, *, if_exists: str = "fail",
                    schema: str | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                    progress: bool | Callable[[int, int | None], None] = False,
                    dtype: Mapping[str, object] | None = None) -> int:
    """Write ``frame`` into the table ``name`` over ``con``, all rows or none; returns the rows.

    ``frame``: a pandas ``DataFrame`` (a non-default index becomes columns), a pyarrow
    ``Table``/``RecordBatch``/``RecordBatchReader``, or a polars ``DataFrame``.
    ``con``: a URL (``sqlite:///path.db``, ``postgresql://user@host/db``), or a SQLAlchemy
    ``AsyncEngine``/``AsyncConnection`` with the ``aiosqlite`` or ``asyncpg`` driver (an
    ``AsyncConnection`` inside a transaction: the write joins it in a SAVEPOINT and becomes
    visible with the caller's commit). Needs the ``sql`` extra; runs on asyncio.

    ``if_exists``:

    * ``"fail"`` (default): :class:`~aiostore.errors.AlreadyExistsError` if the table exists,
      before any row is sent; else the table is created and filled in one transaction;
    * ``"replace"``: the rows go into a fresh staging table
      (``_aiostore_staging_<table>_...``), and in the same transaction the old table is
      dropped and the staging table renamed into place: readers see the old rows or the new
      ones, never a missing or half-filled table. Indexes, constraints and grants of the old
      table are not carried over (as with pandas ``to_sql``); a view depending on it makes
      PostgreSQL refuse the drop (:class:`~aiostore.errors.DatabaseError`, nothing changed);
    * ``"append"``: all rows in one transaction into the table (created if missing). The
      frame's columns must exist in it (:class:`~aiostore.errors.SchemaMismatchError`); on
      PostgreSQL values are encoded as the table's column types.

    ``schema``: the PostgreSQL schema (default: ``current_schema()``) or the SQLite database
    name (``main``, ``temp`` or an attached one). ``dtype``: per-column SQL type overrides —
    a type name such as ``"VARCHAR(20)"``/``"NUMERIC(12, 2)"``/``"JSONB"`` or a SQLAlchemy
    type — for the columns the write creates. Type mapping: see ``docs/sql.md``.
    ``chunk_rows``: rows per encoded chunk (one worker-thread hop each).
    ``progress``: ``True`` prints the rows written on stderr; a callable receives
    ``(rows_done, rows_total)`` (total None for a stream of unknown length) on the event loop.

    Fast paths: PostgreSQL gets binary ``COPY`` through asyncpg, encoded from the Arrow columns
    with numpy in worker threads; SQLite gets multi-row ``INSERT``s with ``executemany`` in
    aiosqlite's thread. The event loop only passes chunks along.

    Errors (nothing is changed by any of them): :class:`~aiostore.errors.SerializationError`
    for a column with no SQL mapping (named; raised before anything is written) or a value
    that does not fit its SQL type (e.g. an overflow; raised mid-write, rolled back);
    :class:`~aiostore.errors.DatabaseError` when the database refuses a statement (a
    constraint violation in any chunk); :class:`~aiostore.errors.StorageUnavailableError`
    when the connection fails or is lost (a terminated backend mid-COPY included);
    :class:`~aiostore.errors.InvalidArgumentError` for bad arguments (before connecting).

    Cancellation: before the ``COMMIT`` the transaction is rolled back (asyncpg aborts the
    COPY; on SQLite the chunk in flight finishes, then an explicit ``ROLLBACK`` releases the
    lock): the target is exactly as before and no staging table remains. A cancellation that
    arrives during the ``COMMIT`` waits for it to finish (the write is then complete), then
    propagates.
    """
    if_exists = check_if_exists(if_exists)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows <= 0:
        raise InvalidArgumentError(f"chunk_rows must be a positive int, not {chunk_rows!r}")
    if not isinstance(progress, bool) and not callable(progress):
        raise InvalidArgumentError(f"progress must be a bool or a callable, not "
                                   f"{type(progress).__name__}")
    if dtype is not None and not isinstance(dtype, Mapping):
        raise InvalidArgumentError(f"dtype must be a mapping of column -> SQL type, not "
                                   f"{type(dtype).__name__}")
    if not frames.is_frame(frame):
        raise InvalidArgumentError(f"write_sql needs a DataFrame or Arrow table, not "
                                   f"{type(frame).__name__}")
    frames.require_pyarrow()
    # schema inference scans a pandas frame's object columns: not on the loop
    source = await run_sync(functools.partial(frames.FrameSource, frame, flatten_index=True))
    async with open_session(con) as session:
        dialect = session.dialect
        check_name(name, "table", dialect)
        if schema is not None:
            check_name(schema, "schema", dialect)
        names = column_names(list(source.schema.names), dialect)
        types = _types(source.schema, names, dtype, dialect)
        report: Callable[[int], None] | None = None
        if progress is True:
            report = _StderrProgress(f"writing {name}", source.total)
        elif callable(progress):
            user, total = progress, source.total

            def report(done: int) -> None:
                user(done, total)

        plan = Plan(source.batches(), names, types, chunk_rows)
        return await write_rows(session, schema, name, if_exists, plan, report)
