"""Table schemas: Arrow <-> the Delta schema serialisation, enforcement and evolution.

Every input path (pandas, pyarrow, polars, lists of dicts) is first turned into an Arrow table,
then checked here against the table's schema — so enforcement is identical whatever the input.
Arrow types are normalised to what the Delta protocol (reader 1 / writer 2) stores: large and
view strings become strings, nanosecond and naive timestamps become UTC microsecond
timestamps, dictionaries their value type.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from ..errors import SchemaMismatchError, UnsupportedTableError

__all__ = ["arrow_to_delta", "delta_to_arrow", "normalize", "reconcile"]

_PRIMITIVE_TO_DELTA: list[tuple[Any, str]] = [
    (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "byte"), (pa.types.is_int16, "short"),
    (pa.types.is_int32, "integer"), (pa.types.is_int64, "long"), (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"), (pa.types.is_date32, "date"),
]
_DELTA_TO_ARROW: dict[str, pa.DataType] = {
    "boolean": pa.bool_(), "byte": pa.int8(), "short": pa.int16(), "integer": pa.int32(),
    "long": pa.int64(), "float": pa.float32(), "double": pa.float64(), "date": pa.date32(),
    "string": pa.string(), "binary": pa.binary(), "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}
#: safe widening allowed by schema_mode="merge": from -> the types it may become
_WIDENING = {
    pa.int8(): (pa.int16(), pa.int32(), pa.int64()), pa.int16(): (pa.int32(), pa.int64()),
    pa.int32(): (pa.int64(),), pa.float32(): (pa.float64(),),
}


def normalize_type(t: pa.DataType) -> pa.DataType:
    """The type a table stores for Arrow type ``t``."""
    if pa.types.is_dictionary(t):
        return normalize_type(t.value_type)
    if pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC")
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_null(t):
        return t  # an all-null column: it fits any column (a new one becomes string)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(pa.field("element", normalize_type(t.value_type), True))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, normalize_type(f.type), True) for f in t])
    if pa.types.is_map(t):
        return pa.map_(normalize_type(t.key_type), normalize_type(t.item_type))
    return t


def normalize(schema: pa.Schema) -> pa.Schema:
    """``schema`` with stored types, every field nullable, no pandas metadata."""
    return pa.schema([pa.field(f.name, normalize_type(f.type), True) for f in schema])


def _type_to_delta(t: pa.DataType) -> Any:
    for test, name in _PRIMITIVE_TO_DELTA:
        if test(t):
            return name
    if pa.types.is_string(t):
        return "string"
    if pa.types.is_binary(t):
        return "binary"
    if pa.types.is_timestamp(t):
        return "timestamp" if t.tz is not None else "timestamp_ntz"
    if pa.types.is_decimal(t) and t.precision <= 38:
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t):
        return {"type": "array", "elementType": _type_to_delta(t.value_type),
                "containsNull": True}
    if pa.types.is_struct(t):
        return _struct_to_delta(list(t))
    if pa.types.is_map(t):
        return {"type": "map", "keyType": _type_to_delta(t.key_type),
                "valueType": _type_to_delta(t.item_type), "valueContainsNull": True}
    raise SchemaMismatchError(f"a table cannot store the Arrow type {t}")


def _struct_to_delta(fields: list[pa.Field[Any]]) -> dict[str, Any]:
    return {"type": "struct", "fields": [
        {"name": f.name, "type": _type_to_delta(f.type), "nullable": f.nullable,
         "metadata": {}} for f in fields]}


def arrow_to_delta(schema: pa.Schema) -> str:
    """The Delta ``schemaString`` of a (normalised) Arrow schema."""
    return json.dumps(_struct_to_delta(list(schema)), separators=(",", ":"))


def _type_from_delta(t: Any) -> pa.DataType:
    if isinstance(t, str):
        if t in _DELTA_TO_ARROW:
            return _DELTA_TO_ARROW[t]
        if t.startswith("decimal(") and t.endswith(")"):
            precision, scale = (int(x) for x in t[8:-1].split(","))
            return pa.decimal128(precision, scale)
        raise UnsupportedTableError(f"the table has a column of type {t!r}, which aiostore "
                                    "does not read")
    kind = t.get("type")
    if kind == "array":
        return pa.list_(pa.field("element", _type_from_delta(t["elementType"]), True))
    if kind == "struct":
        return pa.struct([pa.field(f["name"], _type_from_delta(f["type"]), True)
                          for f in t["fields"]])
    if kind == "map":
        return pa.map_(_type_from_delta(t["keyType"]), _type_from_delta(t["valueType"]))
    raise UnsupportedTableError(f"unknown column type {t!r} in the table's schema")


def delta_to_arrow(schema_string: str) -> pa.Schema:
    """The Arrow schema of a Delta ``schemaString``."""
    doc = json.loads(schema_string)
    return pa.schema([pa.field(f["name"], _type_from_delta(f["type"]),
                               bool(f.get("nullable", True))) for f in doc["fields"]])


def reconcile(current: pa.Schema | None, incoming: pa.Schema, mode: str | None
              ) -> pa.Schema:
    """The table schema after writing data of schema ``incoming``.

    ``mode`` None: the data must have exactly the table's columns (in any order) with the
    same stored types. ``"merge"``: new columns are added (nullable), missing ones are filled
    with nulls, and a column may widen safely (int8 -> int16 -> int32 -> int64, float ->
    double). ``"overwrite"`` (overwrite only): the data's schema replaces the table's.
    Anything else is :class:`~aiostore.errors.SchemaMismatchError`.
    """
    incoming = normalize(incoming)
    names = [f.name for f in incoming]
    if len({n.lower() for n in names}) != len(names):  # Delta column names ignore case
        raise SchemaMismatchError(f"duplicate column names (ignoring case) in the data: "
                                  f"{names}")
    incoming = pa.schema([pa.field(f.name, pa.string(), True) if pa.types.is_null(f.type)
                          and (current is None or current.get_field_index(f.name) < 0)
                          else f for f in incoming])
    for field in incoming:
        if not pa.types.is_null(field.type):
            _type_to_delta(field.type)  # refuse types a table cannot store
    if current is None or mode == "overwrite":
        return incoming
    if mode not in (None, "merge"):
        raise SchemaMismatchError(f"schema_mode must be None, 'merge' or 'overwrite' (for "
                                  f"overwrite()), not {mode!r}")
    problems: list[str] = []
    fields: list[pa.Field[Any]] = []
    for field in current:
        index = incoming.get_field_index(field.name)
        if index < 0:
            if mode != "merge":
                problems.append(f"column {field.name!r} ({field.type}) is missing")
            fields.append(field)
            continue
        new_type = incoming.field(index).type
        if new_type.equals(field.type) or pa.types.is_null(new_type):
            fields.append(field)
        elif mode == "merge" and any(new_type.equals(w) for w in _WIDENING.get(field.type, ())):
            fields.append(pa.field(field.name, new_type, True))
        elif mode == "merge" and any(field.type.equals(w) for w in _WIDENING.get(new_type, ())):
            fields.append(field)  # narrower data into a wider column: cast up
        else:
            problems.append(f"column {field.name!r} is {field.type} in the table but "
                            f"{new_type} in the data")
    known = {f.name.lower(): f.name for f in current}
    for field in incoming:
        if current.get_field_index(field.name) < 0:
            if field.name.lower() in known:
                problems.append(f"column {field.name!r} differs only in case from the table's "
                                f"{known[field.name.lower()]!r}")
            elif mode == "merge":
                fields.append(field)
            else:
                problems.append(f"column {field.name!r} ({field.type}) is not in the table")
    if problems:
        hint = "" if mode == "merge" else " (schema_mode='merge' adds new nullable columns " \
            "and widens types safely)"
        raise SchemaMismatchError("the data does not fit the table's schema: " +
                                  "; ".join(problems) + hint)
    return pa.schema(fields)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` cast to ``schema``: columns in its order, missing ones as nulls."""
    columns = []
    for field in schema:
        index = table.schema.get_field_index(field.name)
        if index < 0:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(index)
        try:
            if pa.types.is_dictionary(column.type):  # (polars Categorical/Enum)
                value_type = normalize_type(column.type.value_type)
                chunks: list[Any] = list(column.chunks)
                decoded: list[Any] = [
                    pa.DictionaryArray.from_arrays(c.indices, c.dictionary.cast(value_type))
                    .dictionary_decode() for c in chunks]
                column = pa.chunked_array(decoded, type=value_type)  # type: ignore[call-overload]
            if pa.types.is_timestamp(column.type) and column.type.tz is None:
                column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
            if not column.type.equals(field.type):
                # (timestamps: nanoseconds are truncated to the microseconds tables store)
                column = column.cast(field.type, safe=not pa.types.is_timestamp(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise SchemaMismatchError(f"column {field.name!r} cannot be stored as "
                                      f"{field.type}: {exc}") from exc
        if not field.nullable and column.null_count:
            raise SchemaMismatchError(f"column {field.name!r} is NOT NULL in the table but the "
                                      f"data has {column.null_count} nulls in it")
        columns.append(column)
    for field in schema:
        if not field.nullable and table.schema.get_field_index(field.name) < 0:
            raise SchemaMismatchError(f"column {field.name!r} is NOT NULL in the table but "
                                      "missing from the data")
    return pa.Table.from_arrays(columns, schema=schema)
