"""The PostgreSQL path (asyncpg): catalog look-ups, DDL, binary COPY in, CSV COPY out.

Rows go in with ``COPY ... FROM STDIN (FORMAT binary)``, fed chunk by chunk from an async
iterator of encoded chunks (:mod:`.pg_copy`, encoded in worker threads). asyncpg's COPY can
wait forever on a connection the server terminated mid-COPY (a flow-control wait nothing
wakes): the COPY runs as a task raced against the connection's termination listener, so a
killed backend ends the write with :class:`~aiostore.errors.StorageUnavailableError` at once.

Reads use ``COPY (query) TO STDOUT (FORMAT csv)`` with the session in ISO dates, UTC and
shortest-exact floats, parsed by pyarrow's CSV reader with column types from the query's row
description (see :mod:`.read`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..errors import AlreadyExistsError, DatabaseError
from .connect import Session, lost
from .names import STAGING_PREFIX, is_staging_for, qualified, quote
from .pg_copy import HEADER, TRAILER

__all__ = ["PostgresCatalog", "copy_in", "copy_out", "translate"]

_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")  # connection exceptions, admin shutdown


def translate(exc: BaseException, what: str) -> BaseException:
    """An asyncpg error as the matching aiostore error (returned; the caller raises it)."""
    import asyncpg

    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        if state.startswith(_LOST_SQLSTATES):
            return lost(f"{what} failed: the connection to PostgreSQL was lost ({exc}); "
                        "nothing was committed")
        if state == "42P07":
            return AlreadyExistsError(errno.EEXIST, f"{what} failed: {exc}")
        return DatabaseError(f"{what} failed: PostgreSQL refused it: {exc} (SQLSTATE {state})",
                             sqlstate=state)
    if isinstance(exc, (asyncpg.InterfaceError, OSError, ConnectionError)):
        return lost(f"{what} failed: the connection to PostgreSQL was lost ({exc}); nothing "
                    "was committed")
    return exc


class PostgresCatalog:
    """What the write protocol asks the catalog, over one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.db = session.driver

    async def default_schema(self) -> str:
        """The schema unqualified names go to: ``current_schema()``."""
        schema = await self.db.fetchval("SELECT current_schema()")
        if schema is None:
            raise DatabaseError("PostgreSQL has no current schema (empty search_path); pass "
                                "schema=", sqlstate="3F000")
        return str(schema)

    async def kind(self, schema: str, table: str) -> str | None:
        """``"table"``, ``"view"``, another relation kind, or None if the name is free."""
        kind = await self.db.fetchval(
            "SELECT c.relkind::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2", schema, table)
        if kind is None:
            return None
        return {"r": "table", "p": "table", "v": "view", "m": "view"}.get(str(kind), str(kind))

    async def columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        """(name, type as ``format_type`` prints it) of the table's columns, in order."""
        rows = await self.db.fetch(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
            "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum", schema, table)
        return [(str(r[0]), str(r[1])) for r in rows]

    async def typmods(self, schema: str, table: str) -> dict[str, int]:
        """Column name -> type modifier (numeric precision/scale, varchar length, ...)."""
        rows = await self.db.fetch(
            "SELECT a.attname, a.atttypmod FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            schema, table)
        return {str(r[0]): int(r[1]) for r in rows}

    async def leftovers(self, schema: str, table: str) -> list[str]:
        """Committed staging tables of ``table`` (a live writer's staging table is invisible:
        it is created inside that writer's open transaction)."""
        rows = await self.db.fetch(
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' "
            "AND starts_with(c.relname, $2)", schema, STAGING_PREFIX)
        return [str(r[0]) for r in rows if is_staging_for(str(r[0]), table)]

    async def rename_into_place(self, schema: str, staging: str, table: str) -> None:
        """Inside the transaction: drop ``table`` if it exists and rename ``staging`` to it."""
        await self.session.execute(f"DROP TABLE IF EXISTS {qualified(schema, table)}")
        await self.session.execute(
            f"ALTER TABLE {qualified(schema, staging)} RENAME TO {quote(table)}")


async def copy_in(session: Session, schema: str, table: str, columns: list[str],
                  chunks: AsyncIterator[bytes]) -> None:
    """``COPY schema.table (columns) FROM STDIN (FORMAT binary)`` fed from ``chunks``.

    A terminated connection ends it at once (:class:`~aiostore.errors.StorageUnavailableError`)
    instead of leaving asyncpg waiting; a cancellation cancels the COPY (asyncpg aborts it on
    the server) before it propagates.
    """
    db = session.driver
    gone = asyncio.Event()

    def on_lost(_: object) -> None:
        gone.set()

    async def source() -> AsyncIterator[bytes]:
        yield HEADER
        async for chunk in chunks:
            if chunk:
                yield chunk
        yield TRAILER

    db.add_termination_listener(on_lost)
    copy = asyncio.ensure_future(db.copy_to_table(table, schema_name=schema, columns=columns,
                                                  source=source(), format="binary"))
    watch = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait({copy, watch}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        copy.cancel()
        await _drain(copy)
        raise
    finally:
        watch.cancel()
        db.remove_termination_listener(on_lost)
    if not copy.done():  # the connection is gone and asyncpg may never notice
        session.broken = True
        copy.cancel()
        await _drain(copy)
        raise lost("COPY failed: the connection to PostgreSQL was terminated mid-write; nothing "
                   "was committed")
    copy.result()


async def _drain(task: asyncio.Future[Any], timeout: float = 10.0) -> None:
    """Wait (bounded) for a cancelled task to end, ignoring its outcome."""
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(asyncio.shield(task), timeout)
    if task.done() and not task.cancelled():
        task.exception()


async def copy_out(session: Session, query: str, args: tuple[Any, ...],
                   sink: Callable[[bytes], Awaitable[None]]) -> None:
    """``COPY (query) TO STDOUT (FORMAT csv)``, each chunk handed to ``sink``."""
    await session.driver.copy_from_query(query, *args, output=sink, format="csv")
