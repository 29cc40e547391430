"""The SQLite path (aiosqlite): catalog look-ups, DDL, rows in with multi-row INSERTs.

aiosqlite runs the connection in its own thread; the rows of a chunk are turned into Python
parameter lists in a worker thread (:func:`encode_batch`, from Arrow columns with numpy, no
per-row Python loop) and sent as ``executemany`` of ``INSERT ... VALUES (?, ...), (?, ...)``
with up to 100 rows per statement (fewer when the columns would pass SQLite's variable limit),
all inside the one transaction the write protocol opened with ``BEGIN IMMEDIATE``.

Values: booleans as 0/1, dates/timestamps/times as ISO text (tz-aware timestamps in UTC with
``+00:00``), decimals as exact text; see :mod:`.types`.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import AlreadyExistsError, DatabaseError
from .connect import Session, lost
from .names import STAGING_PREFIX, is_staging_for, qualified, quote

if TYPE_CHECKING:
    pass

__all__ = ["SqliteCatalog", "encode_batch", "insert_sql", "rows_per_statement", "translate"]

MAX_ROWS_PER_STATEMENT = 100
SLICE_ROWS = 8_000


def translate(exc: BaseException, what: str) -> BaseException:
    """An sqlite3/aiosqlite error as the matching aiostore error (returned, not raised)."""
    if isinstance(exc, sqlite3.OperationalError) and "already exists" in str(exc):
        return AlreadyExistsError(errno.EEXIST, f"{what} failed: {exc}")
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorname", None)
        return DatabaseError(f"{what} failed: SQLite refused it: {exc}"
                             + (f" ({code})" if code else ""), sqlstate=None)
    if isinstance(exc, ValueError) and "connection" in str(exc).lower():
        return lost(f"{what} failed: the SQLite connection is closed")
    return exc


def rows_per_statement(columns: int) -> int:
    """Rows per multi-row INSERT: at most 100, and within SQLite's variable limit."""
    limit = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
    return max(1, min(MAX_ROWS_PER_STATEMENT, limit // max(columns, 1)))


def insert_sql(schema: str, table: str, columns: Sequence[str], rows: int) -> str:
    """``INSERT INTO "schema"."table" ("a", ...) VALUES (?, ...), ...`` for ``rows`` rows."""
    one = "(" + ", ".join("?" * len(columns)) + ")"
    names = ", ".join(quote(c) for c in columns)
    return f"INSERT INTO {qualified(schema, table)} ({names}) VALUES " + ", ".join([one] * rows)


def _values(kind: str, arr: Any) -> Any:
    """A column as a numpy object array (or list) of the Python values SQLite stores."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind in ("bool", "int2", "int4", "int8", "float4", "float8"):
        if arr.null_count:
            return arr.to_pylist()
        return arr.to_numpy(zero_copy_only=False)
    if kind == "numeric" or kind == "date" or kind == "timestamp":
        arr = arr.cast(pa.string())
    elif kind == "timestamptz":
        arr = pc.binary_join_element_wise(arr.cast(pa.timestamp("us")).cast(pa.string()),
                                          pa.scalar("+00:00"), "")
    elif kind == "time":
        arr = arr.cast(pa.string())
    return arr.to_numpy(zero_copy_only=False)


def encode_batch(kinds: Sequence[str], columns: Sequence[Any], per_statement: int
                 ) -> tuple[list[list[Any]], list[list[Any]]]:
    """(parameters of the full multi-row statements, parameters of the leftover single rows)."""
    import numpy as np

    n = len(columns[0]) if columns else 0
    width = len(columns)
    full = n // per_statement * per_statement
    statements: list[list[Any]] = []
    # slices of ~8,000 rows: each C call that makes Python objects holds the GIL, and the
    # event loop waits for it
    step = max(1, SLICE_ROWS // per_statement) * per_statement
    for start in range(0, n, step):
        stop = min(start + step, n)
        table = np.empty((stop - start, width), dtype=object)
        for j, (kind, arr) in enumerate(zip(kinds, columns, strict=True)):
            table[:, j] = _values(kind, arr.slice(start, stop - start))
        whole = min(stop, full) - start
        if whole > 0:
            statements += table[:whole].reshape(-1, width * per_statement).tolist()
        if stop > full:
            return statements, table[max(whole, 0):].tolist()
    return statements, []


class SqliteCatalog:
    """What the write protocol asks the catalog, over one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.db = session.driver

    async def default_schema(self) -> str:
        """``main``."""
        return "main"

    async def _fetchall(self, sql: str, *args: Any) -> list[Any]:
        async with self.db.execute(sql, args) as cursor:
            return list(await cursor.fetchall())

    async def kind(self, schema: str, table: str) -> str | None:
        """``"table"``, ``"view"``, another kind, or None if the name is free (names compare
        case-insensitively, as SQLite's do)."""
        rows = await self._fetchall(
            f"SELECT type FROM {quote(schema)}.sqlite_master WHERE name = ? COLLATE NOCASE "
            "AND type IN ('table', 'view')", table)
        return str(rows[0][0]) if rows else None

    async def columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        """(name, declared type) of the table's columns, in order."""
        rows = await self._fetchall("SELECT name, type FROM pragma_table_info(?, ?)",
                                    table, schema)
        return [(str(r[0]), str(r[1] or "")) for r in rows]

    async def leftovers(self, schema: str, table: str) -> list[str]:
        """Committed staging tables of ``table``. A writer's staging table lives only inside
        its ``BEGIN IMMEDIATE`` transaction, which no other writer can run beside."""
        rows = await self._fetchall(
            f"SELECT name FROM {quote(schema)}.sqlite_master WHERE type = 'table' "
            "AND substr(name, 1, ?) = ?", len(STAGING_PREFIX), STAGING_PREFIX)
        return [str(r[0]) for r in rows if is_staging_for(str(r[0]), table)]

    async def rename_into_place(self, schema: str, staging: str, table: str) -> None:
        """Inside the transaction: drop ``table`` if it exists and rename ``staging`` to it.

        The rename runs with ``legacy_alter_table`` on: otherwise SQLite checks every view
        and trigger first, and one that reads ``table`` (dropped a statement earlier) fails it.
        """
        await self.session.execute(f"DROP TABLE IF EXISTS {qualified(schema, table)}")
        await self.session.execute("PRAGMA legacy_alter_table = ON")
        try:
            await self.session.execute(
                f"ALTER TABLE {qualified(schema, staging)} RENAME TO {quote(table)}")
        finally:
            await self.session.execute("PRAGMA legacy_alter_table = OFF")
