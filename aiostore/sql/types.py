"""Type mapping, Arrow <-> SQL, for PostgreSQL and SQLite.

Every column is given a *kind* — one of :data:`KINDS` — from its Arrow type (or from a ``dtype=``
override, or from the existing table's column when appending). The kind fixes three things: the
type written in ``CREATE TABLE`` (:func:`ddl`), the Arrow type the column is cast to before it is
encoded (:func:`arrow_type`), and how a value travels (binary COPY field, SQLite parameter).

=====================  ==============  ===================  ==================================
Arrow                  kind            PostgreSQL           SQLite (declared type; stored as)
=====================  ==============  ===================  ==================================
bool                   bool            boolean              BOOLEAN; integer 0/1
int8, int16, uint8     int2            smallint             INT2; integer
int32, uint16          int4            integer              INT4; integer
int64, uint32, uint64  int8            bigint               INT8; integer (uint64 > 2**63-1:
                                                            an error naming the column)
float16, float32       float4          real                 FLOAT4; real
float64                float8          double precision     FLOAT8; real (NaN: NULL)
string (all sizes)     text            text                 TEXT; text
binary (all sizes)     bytea           bytea                BLOB; blob
decimal(p, s)          numeric         numeric(p, s)        NUMERIC_TEXT(p, s); text (exact)
date32, date64         date            date                 DATE; text YYYY-MM-DD
timestamp (naive)      timestamp       timestamp            TIMESTAMP; text YYYY-MM-DD
                                                            HH:MM:SS.ffffff
timestamp (with tz)    timestamptz     timestamptz (UTC)    TIMESTAMPTZ; text ...+00:00 (UTC)
time32, time64         time            time                 TIME; text HH:MM:SS.ffffff
null (all missing)     text            text                 TEXT
dictionary<v>          kind of v       (decoded)            (decoded)
=====================  ==============  ===================  ==================================

Timestamps and times are stored with microseconds (finer units are truncated, as PostgreSQL
itself does). Lists, structs, maps, durations, intervals and other types have no mapping: the
column is named in a :class:`~aiostore.errors.SerializationError` before anything is written.

A ``dtype=`` override is a SQL type name (``"BIGINT"``, ``"VARCHAR(20)"``, ``"NUMERIC(12, 2)"``,
``"TIMESTAMPTZ"``, ``"JSONB"``, ...); :func:`parse_sql_type` reads it (and the types PostgreSQL's
``format_type`` and SQLite's declared types print) back into a kind. Type names are checked
against a strict pattern before they go into DDL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError, SerializationError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["KINDS", "SqlType", "arrow_type", "ddl", "for_arrow", "parse_sql_type",
           "read_type_for_sqlite_decl"]

KINDS = ("bool", "int2", "int4", "int8", "float4", "float8", "text", "bytea", "numeric",
         "date", "timestamp", "timestamptz", "time", "json", "jsonb")

_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*-?\d+\s*)?\))?")


@dataclass(frozen=True)
class SqlType:
    """A column's SQL type: its kind, the DDL text, and for ``numeric`` its precision/scale."""

    kind: str
    sql: str  # as written in CREATE TABLE
    precision: int | None = None
    scale: int | None = None


def ddl(kind: str, dialect: str, precision: int | None = None, scale: int | None = None) -> str:
    """The type written in ``CREATE TABLE`` for ``kind`` in ``dialect``.

    SQLite decimals are declared ``NUMERIC_TEXT(p, s)``: the ``TEXT`` in the name gives the
    column TEXT affinity, so the exact text stays text (under NUMERIC affinity SQLite turns a
    long decimal into a lossy REAL).
    """
    if kind == "numeric":
        name = "NUMERIC_TEXT" if dialect == "sqlite" else "NUMERIC"
        return name if precision is None else f"{name}({precision}, {scale or 0})"
    if dialect == "sqlite":
        return {"bool": "BOOLEAN", "int2": "INT2", "int4": "INT4", "int8": "INT8",
                "float4": "FLOAT4", "float8": "FLOAT8", "text": "TEXT", "bytea": "BLOB",
                "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
                "time": "TIME", "json": "JSON", "jsonb": "JSONB"}[kind]
    return {"bool": "boolean", "int2": "smallint", "int4": "integer", "int8": "bigint",
            "float4": "real", "float8": "double precision", "text": "text", "bytea": "bytea",
            "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz",
            "time": "time", "json": "json", "jsonb": "jsonb"}[kind]


def _kind_of_arrow(pa: Any, t: Any) -> tuple[str, int | None, int | None] | None:
    types = pa.types
    if types.is_dictionary(t):
        return _kind_of_arrow(pa, t.value_type)
    if types.is_boolean(t):
        return "bool", None, None
    if t in (pa.int8(), pa.int16(), pa.uint8()):
        return "int2", None, None
    if t in (pa.int32(), pa.uint16()):
        return "int4", None, None
    if t in (pa.int64(), pa.uint32(), pa.uint64()):
        return "int8", None, None
    if t in (pa.float16(), pa.float32()):
        return "float4", None, None
    if t == pa.float64():
        return "float8", None, None
    if types.is_null(t) or types.is_string(t) or types.is_large_string(t) or \
            types.is_string_view(t):
        return "text", None, None
    if types.is_binary(t) or types.is_large_binary(t) or types.is_binary_view(t) or \
            types.is_fixed_size_binary(t):
        return "bytea", None, None
    if types.is_decimal(t):
        return "numeric", t.precision, t.scale
    if types.is_date(t):
        return "date", None, None
    if types.is_timestamp(t):
        return ("timestamptz" if t.tz is not None else "timestamp"), None, None
    if types.is_time(t):
        return "time", None, None
    return None


def for_arrow(column: str, t: Any, dialect: str) -> SqlType:
    """The SQL type of a column of Arrow type ``t``, or a
    :class:`~aiostore.errors.SerializationError` naming ``column``."""
    import pyarrow as pa

    found = _kind_of_arrow(pa, t)
    if found is None:
        raise SerializationError(
            f"column {column!r} has Arrow type {t}, which has no SQL mapping (supported: "
            "booleans, integers, floats, strings, binary, decimals, dates, timestamps, times); "
            "convert it first, e.g. to a JSON string")
    kind, precision, scale = found
    return SqlType(kind, ddl(kind, dialect, precision, scale), precision, scale)


_NAMES = [  # (pattern over the normalised name, kind); first match wins
    (r"(smallint|int2|smallserial|serial2)", "int2"),
    (r"(integer|int|int4|serial|serial4|mediumint)", "int4"),
    (r"(bigint|int8|bigserial|serial8)", "int8"),
    (r"(real|float4)", "float4"),
    (r"(double precision|double|float8|float)", "float8"),
    (r"(boolean|bool)", "bool"),
    (r"(text|varchar|character varying|char|character|bpchar|nvarchar|nchar|clob|name|citext"
     r"|string)", "text"),
    (r"(bytea|blob|binary|varbinary)", "bytea"),
    (r"(numeric|decimal|numeric_text)", "numeric"),
    (r"date", "date"),
    (r"(timestamp|timestamp without time zone|datetime)", "timestamp"),
    (r"(timestamptz|timestamp with time zone)", "timestamptz"),
    (r"(time|time without time zone)", "time"),
    (r"json", "json"),
    (r"jsonb", "jsonb"),
]


def parse_sql_type(text: str, dialect: str) -> SqlType | None:
    """The kind of the SQL type ``text`` (a ``dtype=`` value, a PostgreSQL ``format_type``
    or a SQLite declared type), or None when aiostore does not know it."""
    norm = re.sub(r"\s+", " ", text.strip().lower())
    args = re.search(r"\(([^)]*)\)", norm)
    base = re.sub(r"\([^)]*\)", "", norm).strip()
    base = re.sub(r"\s+", " ", base)
    if dialect == "sqlite" and base in ("real", "float", "double", "double precision"):
        return SqlType("float8", text.strip())  # SQLite's REAL is 8 bytes
    if dialect == "sqlite" and base in ("integer", "int"):
        return SqlType("int8", text.strip())  # and its INTEGER 64 bits
    for pattern, kind in _NAMES:
        if re.fullmatch(pattern, base):
            precision = scale = None
            if kind == "numeric" and args is not None:
                parts = [p.strip() for p in args.group(1).split(",")]
                try:
                    precision = int(parts[0])
                    scale = int(parts[1]) if len(parts) > 1 else 0
                except ValueError:
                    precision = scale = None
            return SqlType(kind, text.strip(), precision, scale)
    return None


def check_type_text(column: str, text: object) -> str:
    """A ``dtype=`` value as SQL type text, checked against a strict pattern (it goes into DDL).

    SQLAlchemy type objects are compiled by the caller; anything else that is not a str is an
    :class:`~aiostore.errors.InvalidArgumentError`.
    """
    if not isinstance(text, str) or _TYPE_NAME.fullmatch(text.strip()) is None:
        raise InvalidArgumentError(
            f"dtype for column {column!r} must be a SQL type name such as 'BIGINT', "
            f"'VARCHAR(20)' or 'NUMERIC(12, 2)', not {text!r}")
    return text.strip()


def arrow_type(sql: SqlType) -> pa.DataType:
    """The Arrow type a column is cast to before it is encoded as ``sql``."""
    import pyarrow as pa

    kind = sql.kind
    if kind == "numeric":
        if sql.precision is None:
            return pa.decimal128(38, 10)
        p, s = sql.precision, max(sql.scale or 0, 0)
        return pa.decimal128(p, s) if p <= 38 else pa.decimal256(min(p, 76), s)
    simple: dict[str, Any] = {
        "bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(),
        "float4": pa.float32(), "float8": pa.float64(), "text": pa.large_string(),
        "bytea": pa.large_binary(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", "UTC"), "time": pa.time64("us"),
        "json": pa.large_string(), "jsonb": pa.large_string(),
    }
    result: pa.DataType = simple[kind]
    return result


def read_type_for_sqlite_decl(decl: str) -> pa.DataType | None:
    """The Arrow type a SQLite column declared ``decl`` reads back as, or None (infer it).

    The names aiostore writes map back exactly (INT4 -> int32, FLOAT4 -> float32, BOOLEAN ->
    bool, TIMESTAMPTZ -> timestamp[us, UTC], NUMERIC(p, s) -> decimal, ...); SQLite's generic
    INTEGER and REAL read as int64 and float64.
    """
    if not decl:
        return None
    parsed = parse_sql_type(decl, "sqlite")
    if parsed is None:
        return None
    import pyarrow as pa

    if parsed.kind == "numeric" and parsed.precision is None:
        return None
    t = arrow_type(parsed)
    if t == pa.large_string():
        return pa.string()
    if t == pa.large_binary():
        return pa.binary()
    return t
