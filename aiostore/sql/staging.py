"""The write protocol: all rows or none, and a replaced table swapped in one transaction.

Per ``if_exists``:

* ``fail``: the target's existence is checked before anything is sent
  (:class:`~aiostore.errors.AlreadyExistsError`); then, in one transaction, ``CREATE TABLE``
  target, all rows, ``COMMIT``. A writer that creates the same name meanwhile makes the
  ``CREATE`` fail: the same error.
* ``append``: in one transaction, all rows into the target (created first if missing),
  ``COMMIT``. Uncommitted rows are invisible to readers and vanish with the transaction, so no
  staging table is needed.
* ``replace``: in one transaction, ``CREATE TABLE`` a staging table, all rows into it, then
  ``DROP TABLE`` target and ``ALTER TABLE`` staging ``RENAME TO`` target, ``COMMIT``. Until the
  commit readers see the old table, after it the new one: never a missing or half-filled table.

Before that, committed staging tables left for this target by a killed writer are dropped in
a short transaction of their own (only names that :func:`.names.is_staging_for` proves are this
table's; a live writer's staging table is never visible to another writer: it exists only
inside that writer's open transaction).

The ``COMMIT`` is the point of no return. Any failure or cancellation before it rolls the
transaction back — explicitly, at a chunk boundary (aiosqlite) or after asyncpg aborted the
COPY — and the target is exactly as it was; a connection that cannot roll back is closed or
invalidated, which makes the server abort the transaction. A cancellation that arrives while
the ``COMMIT`` is in flight waits for it, then propagates.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import AlreadyExistsError, InvalidArgumentError, SchemaMismatchError
from . import postgres, sqlite
from .chunks import cast_columns, encoded_chunks
from .connect import Session, finish
from .names import check_name, qualified, quote, staging_name
from .pg_copy import encode_batch as encode_copy
from .types import SqlType, parse_sql_type

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Plan", "write_rows"]

Progress = Callable[[int], None]


@dataclass
class Plan:
    """What to write: the frame's batches, its column names and their SQL types."""

    batches: Iterator[pa.RecordBatch]
    names: list[str]
    types: list[SqlType]
    chunk_rows: int


def _catalog(session: Session) -> Any:
    if session.dialect == "postgresql":
        return postgres.PostgresCatalog(session)
    return sqlite.SqliteCatalog(session)


def _translate(session: Session, exc: BaseException, what: str) -> BaseException:
    if session.dialect == "postgresql":
        return postgres.translate(exc, what)
    return sqlite.translate(exc, what)


def _create_sql(session: Session, schema: str, table: str, plan: Plan) -> str:
    cols = ", ".join(f"{quote(n)} {t.sql}" for n, t in zip(plan.names, plan.types, strict=True))
    return f"CREATE TABLE {qualified(schema, table)} ({cols})"


def _append_types(session: Session, table: str, plan: Plan,
                  existing: list[tuple[str, str]]) -> list[SqlType]:
    """The frame's columns checked against an existing table; on PostgreSQL the table's types
    decide the binary encoding, so they replace the frame's."""
    have = {name: decl for name, decl in existing}
    missing = [n for n in plan.names if n not in have]
    if missing:
        raise SchemaMismatchError(
            f"table {table!r} has no column(s) {missing} (it has {list(have)}); nothing was "
            "written")
    if session.dialect == "sqlite":
        return plan.types
    out = []
    for name in plan.names:
        parsed = parse_sql_type(have[name], "postgresql")
        if parsed is None:
            raise SchemaMismatchError(
                f"column {name!r} of table {table!r} is {have[name]}, a type aiostore cannot "
                "append to; nothing was written")
        out.append(parsed)
    return out


async def _sweep(session: Session, catalog: Any, schema: str, table: str) -> list[str]:
    names: list[str] = await catalog.leftovers(schema, table)
    if not names:
        return []
    await session.begin()
    try:
        for name in names:
            await session.execute(f"DROP TABLE IF EXISTS {qualified(schema, name)}")
    except BaseException:
        await finish(session.rollback())
        raise
    await finish(session.commit())
    return names


async def _load(session: Session, schema: str, table: str, plan: Plan, types: list[SqlType],
                progress: Progress | None) -> int:
    kinds = [t.kind for t in types]
    names, chunk_rows = plan.names, plan.chunk_rows
    done = 0
    if session.dialect == "postgresql":
        def encode_pg(batch: pa.RecordBatch) -> bytes:
            return encode_copy(kinds, cast_columns(batch, names, types))

        async def data() -> AsyncGenerator[bytes, None]:
            nonlocal done
            async with aclosing(encoded_chunks(plan.batches, chunk_rows, encode_pg)) as chunks:
                async for rows, chunk in chunks:
                    yield chunk
                    done += rows
                    if progress is not None:
                        progress(done)

        async with aclosing(data()) as source:
            await postgres.copy_in(session, schema, table, names, source)
        return done

    per = sqlite.rows_per_statement(len(names))
    many = sqlite.insert_sql(schema, table, names, per)
    one = sqlite.insert_sql(schema, table, names, 1)

    def encode_sqlite(batch: pa.RecordBatch) -> tuple[list[list[Any]], list[list[Any]]]:
        return sqlite.encode_batch(kinds, cast_columns(batch, names, types), per)

    async with aclosing(encoded_chunks(plan.batches, chunk_rows, encode_sqlite)) as chunks:
        async for rows, (full, rest) in chunks:
            if full:
                await session.driver.executemany(many, full)
            if rest:
                await session.driver.executemany(one, rest)
            done += rows
            if progress is not None:
                progress(done)
    return done


async def write_rows(session: Session, schema: str | None, table: str, if_exists: str,
                     plan: Plan, progress: Progress | None) -> int:
    """Write ``plan`` to ``schema.table`` per ``if_exists`` (see the module docstring); the
    number of rows written."""
    catalog = _catalog(session)
    what = f"writing table {table!r}"
    try:
        schema = schema if schema is not None else await catalog.default_schema()
        await _sweep(session, catalog, schema, table)
        kind = await catalog.kind(schema, table)
    except (InvalidArgumentError, SchemaMismatchError):
        raise
    except Exception as exc:
        raise _translate(session, exc, what) from exc
    if kind is not None and kind != "table" and if_exists != "fail":
        raise InvalidArgumentError(f"{table!r} is a {kind}, not a table; nothing was written")
    if kind is not None and if_exists == "fail":
        raise AlreadyExistsError(errno.EEXIST, f"table {table!r} already exists "
                                               "(if_exists='fail'); nothing was written")
    types = plan.types
    if kind is not None and if_exists == "append":
        try:
            existing = await catalog.columns(schema, table)
        except Exception as exc:
            raise _translate(session, exc, what) from exc
        types = _append_types(session, table, plan, existing)
    target = staging_name(table) if if_exists == "replace" else table
    create = if_exists == "replace" or kind is None
    try:
        await session.begin()
    except Exception as exc:
        raise _translate(session, exc, what) from exc
    try:
        if create:
            await session.execute(_create_sql(session, schema, target, plan))
        rows = await _load(session, schema, target, plan, types, progress)
        if if_exists == "replace":
            await catalog.rename_into_place(schema, target, table)
        await asyncio.sleep(0)  # a cancellation requested until now still rolls back
    except BaseException as exc:
        await finish(session.rollback())
        if isinstance(exc, Exception):
            translated = _translate(session, exc, what)
            if translated is not exc:
                raise translated from exc
        raise
    try:
        await finish(session.commit())
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await finish(session.rollback())
        raise _translate(session, exc, what) from exc
    return rows


def check_if_exists(if_exists: object) -> str:
    """``if_exists`` if it is one of fail/replace/append."""
    if if_exists not in ("fail", "replace", "append"):
        raise InvalidArgumentError(
            f"if_exists must be 'fail', 'replace' or 'append', not {if_exists!r}")
    return str(if_exists)


def column_names(names: Sequence[str], dialect: str) -> list[str]:
    """The frame's column names, checked: valid names, unique (in SQLite case-insensitively)."""
    seen: dict[str, str] = {}
    if not names:
        raise InvalidArgumentError("the frame has no columns: a SQL table needs at least one")
    for name in names:
        check_name(name, "column", dialect)
        low = name.lower() if dialect == "sqlite" else name
        if low in seen:
            raise InvalidArgumentError(f"columns {seen[low]!r} and {name!r} would be the same "
                                       "column in SQL (names compare case-insensitively in "
                                       "SQLite)")
        seen[low] = name
    return list(names)
