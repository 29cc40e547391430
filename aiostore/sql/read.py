"""``read_sql``: a query's rows as a pandas, polars or Arrow frame.

PostgreSQL: ``COPY (query) TO STDOUT (FORMAT csv)`` — the server formats the rows, pyarrow's
CSV reader parses them in a worker thread with the column types of the query's row description
(OIDs, and precision/scale for numeric), so no Python object is made per value. The COPY runs
in a read-only transaction (or a savepoint of the caller's) with ``DateStyle=ISO``,
``TimeZone=UTC`` and shortest-exact floats, undone at the end.

SQLite: ``fetchmany`` in aiosqlite's thread, columns built in a worker thread. SQLite values
carry no declared type, so a query's columns are inferred from the values (INTEGER -> int64,
REAL -> float64, TEXT -> string, BLOB -> binary); when ``sql`` is a bare table name the
table's declared types restore what :func:`~aiostore.write_sql` wrote (booleans, dates,
timestamps, decimals, ...). ``dtype=`` casts columns in both dialects.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from .._io.offload import run_sync
from ..errors import InvalidArgumentError, SerializationError
from ..formats import frames
from . import postgres, sqlite
from .connect import Session, finish, open_session
from .names import check_name, qualified
from .types import arrow_type, check_type_text, parse_sql_type, read_type_for_sqlite_decl

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["read_sql"]

FETCH_ROWS = 1 << 14
_PARAM = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")  # SQLAlchemy's text() rule


def _named_to_positional(sql: str, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """``:name`` placeholders as asyncpg's ``$n`` (a name used twice gets one number)."""
    order: dict[str, int] = {}

    def number(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in params:
            raise InvalidArgumentError(f"the query uses :{name}, which params does not have")
        if name not in order:
            order[name] = len(order) + 1
        return f"${order[name]}"

    text = _PARAM.sub(number, sql)
    return text, tuple(params[n] for n in order)


def _check_named(sql: str, params: Mapping[str, Any]) -> None:
    missing = sorted({m.group(1) for m in _PARAM.finditer(sql)} - set(params))
    if missing:
        raise InvalidArgumentError(f"the query uses {', '.join(':' + m for m in missing)}, "
                                   "which params does not have")


# --- PostgreSQL --------------------------------------------------------------------------------
def _pg_arrow_type(pa: Any, oid: int, typmod: int) -> tuple[pa.DataType, str | None]:
    """(type pyarrow's CSV reader parses to, post-processing) for a PostgreSQL type OID."""
    simple = {16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 26: pa.int64(),
              700: pa.float32(), 701: pa.float64(), 1082: pa.date32(),
              1083: pa.time64("us"), 1114: pa.timestamp("us"),
              1184: pa.timestamp("us", "UTC")}
    if oid in simple:
        return simple[oid], None
    if oid == 17:
        return pa.string(), "bytea"
    if oid == 1700:
        if typmod >= 4:
            precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
            if precision <= 38:
                return pa.string(), f"decimal:{precision}:{scale}"
        return pa.string(), "decimal"
    return pa.string(), None


def _decimal_of_strings(pa: Any, arr: Any) -> Any:
    """Unconstrained numeric: the smallest decimal type holding every value, else strings."""
    values = arr.to_pylist()
    decs = [None if v is None else Decimal(v) for v in values]
    finite = [d for d in decs if d is not None and d.is_finite()]
    if len(finite) != len([d for d in decs if d is not None]):
        return arr  # NaN / Infinity: no Arrow decimal holds them
    scale = max((max(-int(d.as_tuple().exponent), 0) for d in finite), default=0)
    whole = max((d.adjusted() + 1 for d in finite), default=1)
    precision = max(whole, 1) + scale
    if precision > 76:
        return arr
    t = pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
    return pa.array(decs, t)


class _Chunks(io.RawIOBase):
    """The COPY output chunks as a readable file, so the CSV reader copies them block by block
    (no 100 MB ``b"".join`` holding the GIL)."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self._chunks, self._index, self._offset = chunks, 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        got = 0
        while got < len(view) and self._index < len(self._chunks):
            chunk = self._chunks[self._index]
            take = min(len(view) - got, len(chunk) - self._offset)
            view[got:got + take] = chunk[self._offset:self._offset + take]
            got += take
            self._offset += take
            if self._offset == len(chunk):
                self._chunks[self._index] = b""  # free it as soon as it is parsed
                self._index += 1
                self._offset = 0
        return got


def _parse_pg_csv(data: list[bytes], names: list[str], oids: list[tuple[int, int]]) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    keys = [f"c{i}" for i in range(len(names))]
    plan = [_pg_arrow_type(pa, oid, typmod) for oid, typmod in oids]
    if not any(data):
        return pa.table({k: pa.array([], t) for k, (t, _) in zip(keys, plan, strict=True)}
                        ).rename_columns(names)
    try:
        # one parsing thread: Arrow's pool would take both cores from the event loop
        table = pacsv.read_csv(
            cast(Any, io.BufferedReader(_Chunks(data), 1 << 20)),
            read_options=pacsv.ReadOptions(column_names=keys, block_size=1 << 22,
                                           use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict(zip(keys, [t for t, _ in plan], strict=True)),
                true_values=["t"], false_values=["f"], null_values=[""],
                strings_can_be_null=True, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SerializationError(f"cannot read the query's rows into Arrow: {exc} (columns: "
                                 f"{dict(zip(keys, names, strict=True))})") from exc
    columns = []
    for (_, post), column in zip(plan, table.columns, strict=True):
        arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if post == "bytea":
            arr = pa.array([None if v is None else bytes.fromhex(v[2:])
                            for v in arr.to_pylist()], pa.binary())
        elif post is not None and post.startswith("decimal:"):
            _, p, s = post.split(":")
            arr = arr.cast(pa.decimal128(int(p), int(s)))
        elif post == "decimal":
            arr = _decimal_of_strings(pa, arr)
        columns.append(arr)
    return pa.Table.from_arrays(columns, names=names)


async def _read_postgres(session: Session, query: str, args: tuple[Any, ...],
                         typmods: Mapping[str, int]) -> Any:
    db = session.driver
    joined = session.joined
    savepoint = "aiostore_read"
    await db.execute(f"SAVEPOINT {savepoint}" if joined else "BEGIN READ ONLY")
    try:
        for setting, value in (("DateStyle", "ISO, YMD"), ("TimeZone", "UTC"),
                               ("extra_float_digits", "1"), ("bytea_output", "hex")):
            await db.execute("SELECT set_config($1, $2, true)", setting, value)
        stmt = await db.prepare(query)
        attrs = stmt.get_attributes()
        if not attrs:
            raise InvalidArgumentError("the query returns no rows (not a SELECT?)")
        names = [a.name for a in attrs]
        oids = [(int(a.type.oid), typmods.get(a.name, -1)) for a in attrs]
        chunks: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            chunks.append(chunk)

        await db.copy_from_query(query, *args, output=sink, format="csv")
    finally:
        async def undo() -> None:
            if db.is_closed():
                return
            if joined:
                await db.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                await db.execute(f"RELEASE SAVEPOINT {savepoint}")
            else:
                await db.execute("ROLLBACK")
        try:
            await finish(undo())
        except asyncio.CancelledError:
            raise
        except Exception:
            session.broken = True
    return await run_sync(_parse_pg_csv, chunks, names, oids)


# --- SQLite ------------------------------------------------------------------------------------
def _sqlite_column(pa: Any, values: Any, target: Any) -> Any:
    """A column of SQLite values as Arrow: to ``target`` when given and possible, else
    inferred; values of mixed kinds become strings."""
    if target is not None:
        try:
            if pa.types.is_decimal(target):
                step = Decimal(1).scaleb(-target.scale)
                return pa.array([None if v is None else Decimal(str(v)).quantize(step)
                                 for v in values], target)
            if pa.types.is_time(target):
                import datetime as dt

                return pa.array([None if v is None else dt.time.fromisoformat(str(v))
                                 for v in values], target)
            if pa.types.is_timestamp(target) or pa.types.is_date(target):
                return pa.array(values, pa.string()).cast(target)
            if pa.types.is_boolean(target):
                return pa.array([None if v is None else bool(v) for v in values], target)
            return pa.array(values, target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError,
                ValueError, ArithmeticError):
            pass
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return pa.array([None if v is None else (v.hex() if isinstance(v, bytes) else str(v))
                         for v in values], pa.string())


def _sqlite_chunk(rows: list[Any], targets: Sequence[Any]) -> list[Any]:
    """One fetched chunk as Arrow arrays, one per column (numpy transposes the row tuples)."""
    import numpy as np
    import pyarrow as pa

    width = len(targets)
    table = np.empty((len(rows), width), dtype=object)
    table[:] = rows
    return [_sqlite_column(pa, table[:, j], targets[j]) for j in range(width)]


def _unify(chunks: list[Any]) -> Any:
    """A column's chunks as one chunked array: all-null chunks take the others' type, int64
    and float64 meet at float64, anything else mixed becomes strings."""
    import pyarrow as pa

    kinds = {c.type for c in chunks if c.type != pa.null()}
    if not kinds:
        return pa.chunked_array(chunks, pa.null())
    if len(kinds) == 1:
        target = kinds.pop()
    elif kinds <= {pa.int64(), pa.float64()}:
        target = pa.float64()
    else:
        target = pa.string()
    out = []
    for c in chunks:
        if c.type != target:
            try:
                c = c.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                c = _sqlite_column(pa, [None if v is None else str(v) for v in c.to_pylist()],
                                   pa.string())
        out.append(c)
    return pa.chunked_array(out, target)


def _sqlite_table(names: list[str], chunks: list[list[Any]], targets: Sequence[Any]) -> Any:
    import pyarrow as pa

    if not chunks:
        return pa.table({n: pa.array([], t if t is not None else pa.null())
                         for n, t in zip(names, targets, strict=True)})
    columns = [_unify([chunk[j] for chunk in chunks]) for j in range(len(names))]
    return pa.Table.from_arrays(columns, names=names)


async def _read_sqlite(session: Session, query: str, params: Any,
                       declared: Mapping[str, pa.DataType]) -> Any:
    db = session.driver
    async with db.execute(query, params) as cursor:
        if cursor.description is None:
            raise InvalidArgumentError("the query returns no rows (not a SELECT?)")
        names = [d[0] for d in cursor.description]
        targets = [declared.get(n) for n in names]
        chunks: list[list[Any]] = []
        # fetch, then convert, one after the other: overlapping them gains nothing (both hold
        # the GIL most of the time) and makes the event loop wait for two threads instead of one
        while True:
            rows = await cursor.fetchmany(FETCH_ROWS)
            if not rows:
                break
            chunks.append(await run_sync(_sqlite_chunk, rows, targets))
            del rows
    return await run_sync(_sqlite_table, names, chunks, targets)


# --- the public function -------------------------------------------------------------------
def _dtype_map(dtype: Mapping[str, object] | None, dialect: str) -> dict[str, pa.DataType]:
    import pyarrow as pa

    out: dict[str, pa.DataType] = {}
    for name, spec in (dtype or {}).items():
        if isinstance(spec, pa.DataType):
            out[name] = spec
            continue
        text = check_type_text(name, spec)
        parsed = parse_sql_type(text, dialect)
        if parsed is None:
            raise InvalidArgumentError(f"dtype for column {name!r}: unknown type {text!r}")
        t: Any = arrow_type(parsed)
        narrow: dict[Any, Any] = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
        out[name] = narrow.get(t, t)
    return out


def _apply_dtype(table: Any, casts: Mapping[str, pa.DataType]) -> Any:
    import pyarrow as pa

    missing = [c for c in casts if c not in table.column_names]
    if missing:
        raise InvalidArgumentError(f"dtype names column(s) {missing} the result does not have "
                                   f"(it has {table.column_names})")
    for i, name in enumerate(table.column_names):
        if name in casts and table.schema.field(i).type != casts[name]:
            column = table.column(i)
            try:
                if pa.types.is_string(column.type) and not pa.types.is_string(casts[name]):
                    arr = _sqlite_column(pa, column.to_pylist(), casts[name])
                    if arr.type != casts[name]:
                        raise ValueError(f"values are not {casts[name]}")
                    column = pa.chunked_array([arr])
                else:
                    column = column.cast(casts[name])
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError,
                    ValueError) as exc:
                raise SerializationError(
                    f"column {name!r} ({table.schema.field(i).type}) cannot be read as "
                    f"{casts[name]}: {exc}") from exc
            table = table.set_column(i, name, column)
    return table


async def read_sql(sql: str, con: object, *, params: Mapping[str, Any] | Sequence[Any] | None
                   = None, output: str = "pandas", dtype: Mapping[str, object] | None = None,
                   schema: str | None = None) -> Any:
    """Run the query ``sql`` over ``con`` and return its rows as a frame.

    ``sql``: a query, or a bare table name (no whitespace), which reads the whole table
    (``schema`` qualifies it). ``params``: a mapping for ``:name`` placeholders (both
    dialects), or a sequence for the driver's own positional ones (``$1`` on PostgreSQL, ``?``
    on SQLite); values are always bound, never pasted into the SQL. ``con``: as for
    :func:`aiostore.write_sql` (a URL, an ``AsyncEngine`` or an ``AsyncConnection``).
    ``output``: ``"pandas"`` (default), ``"polars"`` or ``"arrow"``. ``dtype``: per-column
    casts, an Arrow type or a SQL type name (``"BOOLEAN"``, ``"TIMESTAMPTZ"``, ``"NUMERIC(10,
    2)"``, ...).

    Types: PostgreSQL columns map by their type (see ``docs/sql.md``: integers, floats,
    booleans, text, bytea, numeric(p, s) -> decimal, date, time, timestamp, timestamptz -> UTC;
    others, such as json, uuid or arrays, as their text); SQLite columns of a query are
    inferred from the values, those of a table read by name follow its declared types.

    The rows are fetched by the driver without blocking the loop and turned into columns in
    worker threads. Errors: :class:`~aiostore.errors.DatabaseError` when the database refuses
    the query, :class:`~aiostore.errors.StorageUnavailableError` when the connection fails,
    :class:`~aiostore.errors.SerializationError` when values do not fit a requested type,
    :class:`~aiostore.errors.InvalidArgumentError` for bad arguments.

    Cancellation: safe at any point; nothing is changed (PostgreSQL: the read-only
    transaction, or the savepoint in the caller's transaction, is rolled back before the
    cancellation propagates).
    """
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidArgumentError(f"sql must be a non-empty str, not {sql!r}")
    frames.check_output(output)
    frames.require_pyarrow()
    if (params is not None and not isinstance(params, (Mapping, Sequence))) or \
            isinstance(params, (str, bytes)):
        raise InvalidArgumentError(f"params must be a mapping or a sequence, not "
                                   f"{type(params).__name__}")
    table_name = sql.strip() if re.search(r"\s", sql.strip()) is None else None
    async with open_session(con) as session:
        dialect = session.dialect
        casts = _dtype_map(dtype, dialect)
        if table_name is not None:
            check_name(table_name, "table", dialect)
            if schema is not None:
                check_name(schema, "schema", dialect)
            query = f"SELECT * FROM {qualified(schema, table_name)}"
        else:
            query = sql
        try:
            if dialect == "postgresql":
                args: tuple[Any, ...] = ()
                if isinstance(params, Mapping):
                    query, args = _named_to_positional(query, params)
                elif params is not None:
                    args = tuple(params)
                typmods: dict[str, int] = {}
                if table_name is not None:  # numeric(p, s) of the table's columns
                    catalog = postgres.PostgresCatalog(session)
                    typmods = await catalog.typmods(
                        schema or await catalog.default_schema(), table_name)
                table = await _read_postgres(session, query, args, typmods)
            else:
                declared: dict[str, pa.DataType] = {}
                if table_name is not None:
                    for col, decl in await sqlite.SqliteCatalog(session).columns(schema or "main",
                                                                          table_name):
                        t = read_type_for_sqlite_decl(decl)
                        if t is not None:
                            declared[col] = t
                if isinstance(params, Mapping):
                    _check_named(query, params)
                bound: Any = dict(params) if isinstance(params, Mapping) else \
                    tuple(params or ())
                table = await _read_sqlite(session, query, bound, declared)
        except (InvalidArgumentError, SerializationError):
            raise
        except Exception as exc:
            mod: Any = postgres if dialect == "postgresql" else sqlite
            translated = mod.translate(exc, "read_sql")
            if translated is exc:
                raise
            raise translated from exc
    if casts:
        table = await run_sync(_apply_dtype, table, casts)
    return await run_sync(_output, table, output)


def _output(table: Any, output: str) -> Any:
    """``table`` as the requested frame; pandas converted by one thread (Arrow's pool would
    take both cores from the event loop)."""
    if output == "pandas":
        return table.to_pandas(use_threads=False)
    return frames.convert_output(table, output)
