"""write_sql / read_sql behaviour, the same on SQLite and PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import aiostore
from aiostore.errors import (
    AlreadyExistsError,
    DatabaseError,
    InvalidArgumentError,
    SchemaMismatchError,
    SerializationError,
)
from aiostore.sql.names import STAGING_PREFIX, is_staging_for, staging_name
from tests.sql.conftest import Database

pytestmark = pytest.mark.anyio


def frame(n: int, start: int = 0) -> pd.DataFrame:
    ids = range(start, start + n)
    df: pd.DataFrame = pd.DataFrame({"id": list(ids), "value": [i / 4 for i in ids],
                                      "name": [f"n{i}" for i in ids],
                                      "flag": [i % 2 == 0 for i in ids]})
    return df


async def ids(db: Database, table: str = "t") -> list[int]:
    q = '"' + table.replace('"', '""') + '"'
    return [r[0] for r in await db.fetch(f"SELECT id FROM {q} ORDER BY id")]


async def no_staging(db: Database) -> bool:
    return not any(t.startswith(STAGING_PREFIX) for t in await db.tables())


async def test_write_then_read_back(db: Database) -> None:
    df = frame(1000)
    assert await aiostore.write_sql(df, "t", db.url) == 1000
    back = await aiostore.read_sql("SELECT * FROM t ORDER BY id", db.url, dtype={"flag": "bool"})
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert back["id"].dtype == "int64"
    assert await db.tables() == {"t"}


@pytest.mark.parametrize("kind", ["polars", "arrow", "batch", "reader"])
async def test_frames_of_every_library(db: Database, kind: str) -> None:
    table = pa.Table.from_pandas(frame(300), preserve_index=False)
    obj: Any = table
    if kind == "polars":
        obj = pl.from_arrow(table)
    elif kind == "batch":
        obj = table.combine_chunks().to_batches()[0]
    elif kind == "reader":
        obj = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=70))
    assert await aiostore.write_sql(obj, "t", db.url, chunk_rows=64) == 300
    assert await ids(db) == list(range(300))


@pytest.mark.parametrize("output", ["pandas", "polars", "arrow"])
async def test_read_outputs(db: Database, output: str) -> None:
    await aiostore.write_sql(frame(10), "t", db.url)
    back: Any = await aiostore.read_sql("t", db.url, output=output)
    assert len(back) == 10
    kind = {"pandas": pd.DataFrame, "polars": pl.DataFrame, "arrow": pa.Table}[output]
    assert isinstance(back, kind)


async def test_fail_refuses_an_existing_table_before_any_row(db: Database) -> None:
    await aiostore.write_sql(frame(5), "t", db.url)
    sent: list[int] = []
    with pytest.raises(AlreadyExistsError, match="already exists"):
        await aiostore.write_sql(frame(50, 100), "t", db.url, if_exists="fail",
                                 progress=lambda done, total: sent.append(done))
    assert sent == []
    assert await ids(db) == list(range(5))


async def test_replace(db: Database) -> None:
    await aiostore.write_sql(frame(5), "t", db.url)
    other = pd.DataFrame({"id": [7, 8], "extra": ["a", "b"]})
    assert await aiostore.write_sql(other, "t", db.url, if_exists="replace") == 2
    back = await aiostore.read_sql("t", db.url)
    assert list(back.columns) == ["id", "extra"]
    assert await ids(db) == [7, 8]
    assert await db.tables() == {"t"}


async def test_replace_creates_a_missing_table(db: Database) -> None:
    await aiostore.write_sql(frame(3), "t", db.url, if_exists="replace")
    assert await ids(db) == [0, 1, 2]


async def test_append(db: Database) -> None:
    await aiostore.write_sql(frame(5), "t", db.url, if_exists="append")  # creates it
    await aiostore.write_sql(frame(5, 5), "t", db.url, if_exists="append")
    # a subset of the columns, in another order
    await aiostore.write_sql(pd.DataFrame({"name": ["z"], "id": [10]}), "t", db.url,
                             if_exists="append")
    assert await ids(db) == list(range(11))
    assert await db.fetch("SELECT name, value FROM t WHERE id = 10") == [("z", None)]


async def test_append_with_unknown_columns_writes_nothing(db: Database) -> None:
    await aiostore.write_sql(frame(5), "t", db.url)
    with pytest.raises(SchemaMismatchError, match="nope"):
        await aiostore.write_sql(pd.DataFrame({"id": [9], "nope": [1]}), "t", db.url,
                                 if_exists="append")
    assert await ids(db) == list(range(5))


async def test_append_to_a_table_made_elsewhere(db: Database) -> None:
    """The table's own types decide the encoding (PostgreSQL's COPY needs them exactly)."""
    await db.execute("CREATE TABLE t (id integer, name varchar(10), amount numeric(8, 2), "
                     "at timestamp)")
    df = pd.DataFrame({"id": [1, 2], "name": ["a", None], "amount": [1.5, 2.25],
                       "at": pd.to_datetime(pd.Series(["2024-01-02 03:04:05", None]))})
    await aiostore.write_sql(df, "t", db.url, if_exists="append")
    rows = await db.fetch("SELECT id, name, amount FROM t ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [(1, "a"), (2, None)]
    assert [float(r[2]) for r in rows] == [1.5, 2.25]


async def test_constraint_violation_in_chunk_7_leaves_the_table_as_before(db: Database) -> None:
    await db.execute("CREATE TABLE t (id bigint CHECK (id <> 650), value double precision, "
                     "name text, flag boolean)")
    await aiostore.write_sql(frame(3, 5000), "t", db.url, if_exists="append")
    sent: list[int] = []
    with pytest.raises(DatabaseError) as info:
        await aiostore.write_sql(frame(1000), "t", db.url, if_exists="append", chunk_rows=100,
                                 progress=lambda done, total: sent.append(done))
    assert isinstance(info.value.__cause__, Exception)
    if db.dialect == "postgresql":
        assert info.value.sqlstate == "23514"
    assert sent and sent[-1] >= 600  # the earlier chunks had gone to the database
    assert await ids(db) == [5000, 5001, 5002]
    assert await no_staging(db)


async def test_a_bad_value_in_chunk_7_of_a_replace_keeps_the_old_table(db: Database) -> None:
    await aiostore.write_sql(frame(3), "t", db.url)
    values = [str(i) for i in range(1000)]
    values[650] = "not a number"  # strings, cast to BIGINT chunk by chunk: chunk 7 fails
    df = pd.DataFrame({"id": values})
    with pytest.raises(SerializationError, match="id"):
        await aiostore.write_sql(df, "t", db.url, if_exists="replace", chunk_rows=100,
                                 dtype={"id": "BIGINT"})
    assert await ids(db) == [0, 1, 2]
    assert await db.tables() == {"t"}


async def test_an_overflow_names_the_column_and_writes_nothing(db: Database) -> None:
    df = pa.table({"big": pa.array([1, 2**63 + 5], pa.uint64())})
    with pytest.raises(SerializationError, match="big"):
        await aiostore.write_sql(df, "t", db.url)
    assert await db.tables() == set()


async def test_unmappable_column_is_named_before_anything_is_written(db: Database) -> None:
    await aiostore.write_sql(frame(3), "t", db.url)
    df = pa.table({"id": [1, 2], "tags": pa.array([[1], [2, 3]])})
    for mode in ("replace", "append", "fail"):
        with pytest.raises(SerializationError, match=r"'tags'.*list"):
            await aiostore.write_sql(df, "t2" if mode == "fail" else "t", db.url,
                                     if_exists=mode)
    assert await ids(db) == [0, 1, 2]
    assert await db.tables() == {"t"}


async def test_dtype_overrides(db: Database) -> None:
    from sqlalchemy import types as sa

    df = pd.DataFrame({"id": [1, 2], "code": ["ab", "cd"], "amount": [1.25, 2.5],
                       "note": ["x", "y"]})
    await aiostore.write_sql(df, "t", db.url, dtype={"id": "SMALLINT", "code": "VARCHAR(4)",
                                                     "amount": "NUMERIC(6, 2)",
                                                     "note": sa.Text()})
    if db.dialect == "postgresql":
        rows = await db.fetch("SELECT column_name, data_type, character_maximum_length, "
                              "numeric_precision, numeric_scale FROM information_schema.columns "
                              "WHERE table_schema = $1 AND table_name = 't' "
                              "ORDER BY ordinal_position", db.schema)
        assert [r[1] for r in rows] == ["smallint", "character varying", "numeric", "text"]
        assert rows[1][2] == 4
        assert (rows[2][3], rows[2][4]) == (6, 2)
    else:
        rows = await db.fetch("SELECT name, type FROM pragma_table_info('t')")
        assert [r[1] for r in rows] == ["SMALLINT", "VARCHAR(4)", "NUMERIC(6, 2)", "TEXT"]
    back = await aiostore.read_sql("t", db.url, output="arrow")
    assert back.schema.field("id").type == pa.int16()
    assert back.schema.field("amount").type == pa.decimal128(6, 2)
    assert back.column("amount").to_pylist() == [pytest.approx(1.25), pytest.approx(2.5)]


@pytest.mark.parametrize("bad", ["INT; DROP TABLE t", "VARCHAR(2)) --", 7, "NOSUCHTYPE"])
async def test_bad_dtype_is_refused_before_anything_is_sent(db: Database, bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="id"):
        await aiostore.write_sql(frame(2), "t", db.url, dtype={"id": bad})
    assert await db.tables() == set()


EVIL = 'x"; DROP TABLE t; --'


@pytest.mark.parametrize("mode", ["fail", "replace", "append"])
async def test_an_injection_name_is_a_literal_name(db: Database, mode: str) -> None:
    await aiostore.write_sql(frame(3), "t", db.url)
    if mode != "fail":
        await aiostore.write_sql(frame(1, 100), EVIL, db.url)
    if mode == "append":
        await aiostore.write_sql(frame(2, 200), EVIL, db.url, if_exists="append")
    else:  # the evil name as a column name too
        df = pd.DataFrame({EVIL: [1, 2], "id": [5, 6]})
        await aiostore.write_sql(df, EVIL, db.url, if_exists=mode)
    assert await ids(db) == [0, 1, 2]  # t survives
    assert {"t", EVIL} <= await db.tables()
    quoted = '"' + EVIL.replace('"', '""') + '"'
    back = await aiostore.read_sql(f"SELECT * FROM {quoted}", db.url)
    assert len(back) == (3 if mode == "append" else 2)
    assert await no_staging(db)


async def test_names_postgresql_would_truncate_are_refused(db: Database) -> None:
    long = "x" * 64
    if db.dialect == "postgresql":
        with pytest.raises(InvalidArgumentError, match="63"):
            await aiostore.write_sql(frame(1), long, db.url)
    else:
        await aiostore.write_sql(frame(1), long, db.url)
        assert await db.count(long) == 1


async def test_leftover_staging_tables_are_swept_and_only_ours(db: Database) -> None:
    await aiostore.write_sql(frame(2), "products", db.url)
    ours = staging_name("products")
    other_table = staging_name("orders")
    lookalike = f"{STAGING_PREFIX}products_deadbeef_nothex!!!!!!"
    foreign = "_aiostore_staging_products"
    for name in (ours, other_table, lookalike, foreign):
        q = '"' + name + '"'
        await db.execute(f"CREATE TABLE {q} (a integer)")
    assert is_staging_for(ours, "products") and not is_staging_for(lookalike, "products")
    await aiostore.write_sql(frame(2, 10), "products", db.url, if_exists="append")
    left = await db.tables()
    assert ours not in left
    assert {other_table, lookalike, foreign, "products"} <= left
    assert await ids(db, "products") == [0, 1, 10, 11]


async def test_a_view_on_the_table_survives_replace(db: Database) -> None:
    await aiostore.write_sql(frame(3), "t", db.url)
    await db.execute("CREATE VIEW v AS SELECT id FROM t")
    if db.dialect == "postgresql":  # PostgreSQL will not drop a table a view depends on
        with pytest.raises(DatabaseError, match="depend"):
            await aiostore.write_sql(frame(5), "t", db.url, if_exists="replace")
        assert await ids(db) == [0, 1, 2]
        assert await no_staging(db)
    else:  # SQLite views are resolved by name when they are used
        await aiostore.write_sql(frame(5), "t", db.url, if_exists="replace")
        assert [r[0] for r in await db.fetch("SELECT id FROM v ORDER BY id")] == [0, 1, 2, 3, 4]


# --- cancellation ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["replace", "append"])
@pytest.mark.parametrize("at_rows", [0, 300, 1000])
async def test_cancellation_leaves_the_target_as_before(db: Database, mode: str,
                                                        at_rows: int) -> None:
    """Cancelled before the first chunk, mid-write, or after the last chunk (before the swap
    and commit): the old rows, no staging table, and no lock held."""
    await aiostore.write_sql(frame(4), "t", db.url)
    task: asyncio.Task[int] | None = None

    def progress(done: int, total: int | None) -> None:
        assert task is not None
        if done >= at_rows:
            task.cancel()

    task = asyncio.ensure_future(aiostore.write_sql(frame(1000, 100), "t", db.url,
                                                    if_exists=mode, chunk_rows=100,
                                                    progress=progress))
    if at_rows == 0:
        await asyncio.sleep(0)
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ids(db) == [0, 1, 2, 3]
    assert await no_staging(db)
    # nothing holds a lock: an immediate write works
    await aiostore.write_sql(frame(1, 50), "t", db.url, if_exists="append")
    assert await ids(db) == [0, 1, 2, 3, 50]


async def test_cancelled_write_releases_the_sqlite_lock(tmp_path: Any) -> None:
    """After a cancelled write on a caller's engine, another connection writes at once (no
    'database is locked')."""
    import sqlite3

    path = tmp_path / "x.db"
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await aiostore.write_sql(frame(3), "t", engine)
        task: asyncio.Task[int] | None = None

        def progress(done: int, total: int | None) -> None:
            assert task is not None
            task.cancel()

        task = asyncio.ensure_future(aiostore.write_sql(frame(5000), "t", engine,
                                                        if_exists="append", chunk_rows=500,
                                                        progress=progress))
        with pytest.raises(asyncio.CancelledError):
            await task
        other = sqlite3.connect(path, timeout=0)
        other.execute("INSERT INTO t (id) VALUES (99)")
        other.commit()
        other.close()
        back = await aiostore.read_sql("SELECT id FROM t ORDER BY id", engine)
        assert back["id"].tolist() == [0, 1, 2, 99]
    finally:
        await engine.dispose()


# --- connections -------------------------------------------------------------------------------
async def test_engine_and_connection(db: Database) -> None:
    engine = db.engine()
    try:
        await aiostore.write_sql(frame(3), "t", engine)
        async with engine.connect() as conn:  # no transaction open: aiostore commits its own
            await aiostore.write_sql(frame(2, 3), "t", conn, if_exists="append")
        assert await ids(db) == [0, 1, 2, 3, 4]
        back = await aiostore.read_sql("SELECT id FROM t WHERE id >= :low", engine,
                                       params={"low": 3})
        assert back["id"].tolist() == [3, 4]
    finally:
        await engine.dispose()


async def test_a_callers_transaction_is_joined(db: Database) -> None:
    from sqlalchemy import text

    engine = db.engine()
    try:
        await aiostore.write_sql(frame(2), "t", engine)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1 FROM t"))  # opens the transaction
            await aiostore.write_sql(frame(2, 10), "t", conn, if_exists="append")
            inside = await aiostore.read_sql("SELECT count(*) AS n FROM t", conn)
            assert int(inside["n"][0]) == 4
            await conn.rollback()  # the caller's rollback takes the write with it
        assert await ids(db) == [0, 1]
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1 FROM t"))
            await aiostore.write_sql(frame(2, 10), "t", conn, if_exists="replace")
            await conn.commit()
        assert await ids(db) == [10, 11]
    finally:
        await engine.dispose()


async def test_write_format_sql_is_atios_spelling(db: Database) -> None:
    await aiostore.write(frame(3), format="sql", name="products", con=db.url,
                         if_exists="replace")
    await aiostore.write(frame(2, 3), "products", format="sql", con=db.url, if_exists="append")
    assert await ids(db, "products") == [0, 1, 2, 3, 4]
    with pytest.raises(InvalidArgumentError, match="con"):
        await aiostore.write(frame(1), format="sql", name="products")
    with pytest.raises(InvalidArgumentError, match="index"):
        await aiostore.write(frame(1), format="sql", name="p", con=db.url, index=False)


async def test_progress_true_prints_rows(db: Database, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    await aiostore.write_sql(frame(500), "t", db.url, chunk_rows=100, progress=True)
    assert "500/500 rows" in capsys.readouterr().err


async def test_read_params_are_bound(db: Database) -> None:
    await aiostore.write_sql(frame(5), "t", db.url)
    evil = "n1' OR '1'='1"
    back = await aiostore.read_sql("SELECT id FROM t WHERE name = :name OR id = :x", db.url,
                                   params={"name": evil, "x": 3})
    assert back["id"].tolist() == [3]
    marker = "$1" if db.dialect == "postgresql" else "?"
    back = await aiostore.read_sql(f"SELECT id FROM t WHERE id > {marker} ORDER BY id", db.url,
                                   params=[2])
    assert back["id"].tolist() == [3, 4]
    with pytest.raises(InvalidArgumentError, match="missing_one"):
        await aiostore.read_sql("SELECT id FROM t WHERE id = :missing_one", db.url, params={})


async def test_read_of_an_empty_result_and_errors(db: Database) -> None:
    await aiostore.write_sql(frame(5), "t", db.url)
    back = await aiostore.read_sql("SELECT id, name FROM t WHERE id < 0", db.url)
    assert list(back.columns) == ["id", "name"]
    assert len(back) == 0
    with pytest.raises(DatabaseError):
        await aiostore.read_sql("SELECT * FROM no_such_table", db.url)


async def test_arguments_are_checked_before_connecting() -> None:
    df = frame(1)
    with pytest.raises(InvalidArgumentError, match="if_exists"):
        await aiostore.write_sql(df, "t", "sqlite:///x.db", if_exists="truncate")
    with pytest.raises(InvalidArgumentError, match="unsupported database"):
        await aiostore.write_sql(df, "t", "mysql://localhost/db")
    with pytest.raises(aiostore.errors.InvalidTypeError, match="con must be"):
        await aiostore.write_sql(df, "t", object())
    with pytest.raises(InvalidArgumentError, match="DataFrame"):
        await aiostore.write_sql([1, 2], "t", "sqlite:///x.db")
    with pytest.raises(InvalidArgumentError, match="chunk_rows"):
        await aiostore.write_sql(df, "t", "sqlite:///x.db", chunk_rows=0)
