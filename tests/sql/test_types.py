"""The Arrow <-> SQL type mapping, both ways, with nulls in every type, on both databases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

import aiostore
from aiostore.errors import InvalidArgumentError
from aiostore.sql.pg_copy import encode_numeric
from aiostore.sql.types import parse_sql_type, read_type_for_sqlite_decl
from tests.sql.conftest import Database

pytestmark = pytest.mark.anyio

UTC = dt.timezone.utc


def typed_table() -> pa.Table:
    """Every mapped type, each column with a null (and edge values)."""
    return pa.table({
        "i16": pa.array([-32768, 32767, None], pa.int16()),
        "i32": pa.array([-(2**31), 2**31 - 1, None], pa.int32()),
        "i64": pa.array([-(2**63), 2**63 - 1, None], pa.int64()),
        "f32": pa.array([1.5, -0.25, None], pa.float32()),
        "f64": pa.array([0.1, -1e300, None], pa.float64()),
        "flag": pa.array([True, False, None]),
        "text": pa.array(["héllo, \"world\"\n", "", None]),
        "blob": pa.array([b"\x00\x01\xff", b"", None], pa.binary()),
        "dec": pa.array([Decimal("12345678.90"), Decimal("-0.01"), None], pa.decimal128(10, 2)),
        "day": pa.array([dt.date(1999, 12, 31), dt.date(2024, 2, 29), None]),
        "ts": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 678901), dt.datetime(1970, 1, 1),
                        None], pa.timestamp("us")),
        "tstz": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
                          dt.datetime(1950, 6, 1, tzinfo=UTC), None], pa.timestamp("us", "UTC")),
        "clock": pa.array([dt.time(12, 30, 0, 500000), dt.time(0, 0), None], pa.time64("us")),
    })


async def test_every_type_round_trips(db: Database) -> None:
    table = typed_table()
    await aiostore.write_sql(table, "t", db.url)
    back = await aiostore.read_sql("t", db.url, output="arrow")
    assert back.schema == table.schema
    assert back.to_pylist() == table.to_pylist()


async def test_query_reads_map_types(db: Database) -> None:
    """A query (not a table name): PostgreSQL maps by column type; SQLite infers from values
    and ``dtype=`` restores the rest."""
    table = typed_table()
    await aiostore.write_sql(table, "t", db.url)
    if db.dialect == "postgresql":
        back = await aiostore.read_sql("SELECT * FROM t", db.url, output="arrow")
        assert back.drop_columns(["dec"]).to_pylist() == table.drop_columns(["dec"]).to_pylist()
        assert back.column("dec").to_pylist() == table.column("dec").to_pylist()
    else:
        dtype: dict[str, object] = {"flag": "BOOLEAN", "day": "DATE", "ts": pa.timestamp("us"),
                                    "tstz": "TIMESTAMPTZ", "dec": "NUMERIC(10, 2)",
                                    "clock": "TIME", "i16": "INT2", "i32": "INT4",
                                    "f32": "FLOAT4"}
        back = await aiostore.read_sql("SELECT * FROM t", db.url, output="arrow", dtype=dtype)
        assert back.schema == table.schema
        assert back.to_pylist() == table.to_pylist()


async def test_pandas_types(db: Database) -> None:
    df = pd.DataFrame({
        "n": pd.array([1, None, 3], dtype="Int64"),
        "x": [1.0, float("nan"), 3.5],  # NaN is missing in pandas: NULL
        "s": ["a", None, "c"],
        "cat": pd.Categorical(["u", "v", "u"]),
        "ts": pd.to_datetime(pd.Series(["2024-01-01", None, "2024-01-03 04:05:06.789"]),
                             format="ISO8601"),
        "tz": pd.to_datetime(pd.Series(["2024-01-01", None, "2024-06-01"])
                             ).dt.tz_localize("Europe/Paris"),
    })
    await aiostore.write_sql(df, "t", db.url)
    back = await aiostore.read_sql("t", db.url)
    assert back["n"].tolist()[0] == 1 and pd.isna(back["n"][1])
    assert pd.isna(back["x"][1])
    assert back["cat"].tolist() == ["u", "v", "u"]
    assert back["ts"][2] == pd.Timestamp("2024-01-03 04:05:06.789")
    assert back["tz"][2] == pd.Timestamp("2024-06-01", tz="Europe/Paris")  # same instant, UTC
    assert str(back["tz"].dt.tz) == "UTC"


async def test_nanoseconds_are_truncated_to_microseconds(db: Database) -> None:
    table = pa.table({"ts": pa.array([1_000_000_001_999], pa.timestamp("ns"))})
    await aiostore.write_sql(table, "t", db.url)
    back = await aiostore.read_sql("t", db.url, output="arrow")
    assert back.column("ts").to_pylist() == [dt.datetime(1970, 1, 1, 0, 16, 40, 1)]


async def test_all_null_column_and_dictionary(db: Database) -> None:
    table = pa.table({"nothing": pa.nulls(2), "d": pa.array(["a", "b"]).dictionary_encode()})
    await aiostore.write_sql(table, "t", db.url)
    back = await aiostore.read_sql("t", db.url, output="arrow")
    assert back.column("nothing").to_pylist() == [None, None]
    assert back.column("d").to_pylist() == ["a", "b"]


async def test_postgresql_decimals_of_any_size(dialect: str, db: Database) -> None:
    values = [Decimal("0"), Decimal("-1"), Decimal("0.0001"), Decimal("123456789012.3456"),
              Decimal("-99999999999999999999.9999"), Decimal("10000"), Decimal("0.5000"), None]
    table = pa.table({"d": pa.array(values, pa.decimal128(24, 4))})
    await aiostore.write_sql(table, "t", db.url)
    back = await aiostore.read_sql("t", db.url, output="arrow")
    assert back.column("d").to_pylist() == table.column("d").to_pylist()
    if dialect == "postgresql":  # the server's own text of our binary numerics
        rows = await db.fetch("SELECT d::text FROM t")
        assert [r[0] for r in rows][:4] == ["0.0000", "-1.0000", "0.0001", "123456789012.3456"]


def test_numeric_encoding_matches_postgresql_layout() -> None:
    # 1234.5678: two base-10000 digits, weight 0, scale 4
    assert encode_numeric(Decimal("1234.5678")) == bytes.fromhex("0002 0000 0000 0004 04d2 162e")
    assert encode_numeric(Decimal("0")) == bytes.fromhex("0000 0000 0000 0000")
    assert encode_numeric(Decimal("-0.01")) == bytes.fromhex("0001 ffff 4000 0002 0064")
    assert encode_numeric(Decimal("NaN")) == bytes.fromhex("0000 0000 c000 0000")


@pytest.mark.parametrize(("text", "kind"), [
    ("BIGINT", "int8"), ("integer", "int4"), ("smallint", "int2"), ("double precision", "float8"),
    ("real", "float4"), ("character varying(20)", "text"), ("VARCHAR(3)", "text"),
    ("numeric(10,2)", "numeric"), ("timestamp without time zone", "timestamp"),
    ("timestamp(3) with time zone", "timestamptz"), ("TIMESTAMPTZ", "timestamptz"),
    ("time without time zone", "time"), ("bytea", "bytea"), ("jsonb", "jsonb"),
    ("boolean", "bool"), ("date", "date"),
])
def test_sql_type_names(text: str, kind: str) -> None:
    parsed = parse_sql_type(text, "postgresql")
    assert parsed is not None and parsed.kind == kind


def test_sqlite_generic_names_read_wide() -> None:
    assert read_type_for_sqlite_decl("INTEGER") == pa.int64()
    assert read_type_for_sqlite_decl("REAL") == pa.float64()
    assert read_type_for_sqlite_decl("INT4") == pa.int32()
    assert read_type_for_sqlite_decl("") is None
    assert parse_sql_type("uuid", "postgresql") is None


async def test_a_type_aiostore_cannot_encode_is_refused(db: Database) -> None:
    with pytest.raises(InvalidArgumentError, match=r"(?i)uuid"):
        await aiostore.write_sql(pa.table({"u": ["x"]}), "t", db.url, dtype={"u": "UUID"})
