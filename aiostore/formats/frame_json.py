"""JSON and JSON-lines encoding of frames.

Without json.dumps options, a batch is encoded column by column with Arrow compute kernels
(which release the GIL): each column becomes the JSON text of its values, the columns are
joined element-wise with the key literals into one string per row, and the data buffer of that
string array — the rows back to back — is written as is. Types without a kernel path (lists,
structs, binary, durations, ...) are encoded value by value with json.dumps.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable
from typing import Any, BinaryIO

from ..errors import SerializationError
from .frames import FrameSource


def _json_default(obj: object) -> object:
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, (decimal.Decimal, uuid.UUID)):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")
    if type(obj).__module__ == "numpy" and hasattr(obj, "item"):
        return obj.item()  # a numpy scalar (float16 values come as such)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")



_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"),
                 ("\b", "\\b"), ("\f", "\\f"))
_SHORT_ESCAPED = "".join(old for old, _ in _JSON_ESCAPES)


def _json_string(pa: Any, pc: Any, text: Any) -> Any:
    """``text`` (large_string) as JSON string literals, escaped like ``json.dumps``."""
    if pc.any(pc.match_substring_regex(text, r'[\x00-\x1f"\\]')).as_py():
        for old, new in _JSON_ESCAPES:
            text = pc.replace_substring(text, old, new)
        if pc.any(pc.match_substring_regex(text, r"[\x00-\x1f]")).as_py():
            for code in range(0x20):
                if chr(code) not in _SHORT_ESCAPED:
                    text = pc.replace_substring(text, chr(code), f"\\u{code:04x}")
    ls = pa.large_string()
    return pc.binary_join_element_wise(pa.scalar('"', ls), text, pa.scalar('"', ls),
                                       pa.scalar("", ls))


def _finite(value: object) -> object:
    """``value`` with NaN and infinite floats (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if value - value == 0 else None
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _json_value(value: object) -> str:
    """One nested value as JSON, like the kernel path (NaN and infinities as null)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, default=_json_default)


_UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
# a day inside years 1..9999, where every timestamp prints with a four-digit year
_FOUR_DIGIT_YEARS = (-62135596800 + 86400, 253402300799 - 86400)


def _iso_timestamps(pa: Any, pc: Any, col: Any) -> Any:
    """Timestamps as ISO 8601 text like ``datetime.isoformat``: ``2024-01-01T00:00:00+01:00``.

    Arrow prints ``2024-01-01 00:00:00.000000000+0100``: the coarsest exact unit drops an
    all-zero fraction (ns becomes us when it can), the space becomes a ``T`` and the offset
    gets its colon.
    """
    ty = col.type
    coarser = {"ms": ("s",), "us": ("s",), "ns": ("s", "us")}.get(ty.unit, ())
    for unit in coarser:
        try:
            col = pc.cast(col, pa.timestamp(unit, ty.tz))  # a safe cast: exact or it fails
            break
        except pa.ArrowInvalid:
            continue
    unit = col.type.unit
    text = pc.cast(col, pa.large_string())
    low, high = pc.min_max(col).values()
    per_second = _UNITS_PER_SECOND[unit]
    if low.is_valid and _FOUR_DIGIT_YEARS[0] * per_second <= low.value and \
            high.value <= _FOUR_DIGIT_YEARS[1] * per_second:
        text = pc.binary_replace_slice(text, start=10, stop=11, replacement="T")
    else:
        text = pc.replace_substring(text, " ", "T", max_replacements=1)
    if unit != "s":  # some values have a fraction: drop it from the others
        text = pc.replace_substring_regex(text, r"\.0+(Z|[+-]\d{4})?$", r"\1")
    if ty.tz is not None:
        text = pc.replace_substring_regex(text, r"Z$", "+00:00")
        text = pc.replace_substring_regex(text, r"([+-]\d\d)(\d\d)$", r"\1:\2")
    return text


def _json_column(pa: Any, pc: Any, col: Any) -> Any:
    """The JSON text of each value of ``col`` as a large_string array (null for null)."""
    try:
        text = _json_kernel(pa, pc, col)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = None  # e.g. no time zone database for a zoned timestamp: value by value
    if text is not None:
        return text
    try:
        texts = [None if v is None else _json_value(v) for v in col.to_pylist()]
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(f"cannot write a {col.type} column as JSON: {exc}") from exc
    return pa.array(texts, pa.large_string())


def _json_kernel(pa: Any, pc: Any, col: Any) -> Any:
    """:func:`_json_column` with compute kernels; None for a type they do not cover."""
    ls = pa.large_string()
    ty = col.type
    types = pa.types
    if types.is_dictionary(ty):
        return _json_column(pa, pc, col.dictionary_decode())
    if types.is_null(ty):
        return pa.nulls(len(col), ls)
    if types.is_integer(ty) or types.is_boolean(ty):
        return pc.cast(col, ls)
    if types.is_floating(ty) and not types.is_float16(ty):
        text = pc.cast(col, ls)  # shortest round-trip form
        # "1" -> "1.0" so that the value reads back as a float; NaN and infinities -> null
        text = pc.if_else(pc.match_substring_regex(text, r"[.e]"), text,
                          pc.binary_join_element_wise(text, pa.scalar(".0", ls),
                                                      pa.scalar("", ls)))
        return pc.if_else(pc.is_finite(col), text, pa.scalar(None, ls))
    if types.is_string(ty) or types.is_large_string(ty) or types.is_string_view(ty):
        return _json_string(pa, pc, pc.cast(col, ls))
    if types.is_timestamp(ty):
        return _json_string(pa, pc, _iso_timestamps(pa, pc, col))
    if types.is_time(ty):
        text = pc.cast(col, ls)
        if ty.unit != "s":
            text = pc.replace_substring_regex(text, r"\.0+$", "")
        return _json_string(pa, pc, text)
    if types.is_date(ty) or types.is_decimal(ty):
        return _json_string(pa, pc, pc.cast(col, ls))
    return None


def _json_rows(pa: Any, pc: Any, batch: Any, before: str, after: str) -> memoryview:
    """Every row of ``batch`` as ``before + {json object} + after``, back to back."""
    ls = pa.large_string()
    names = batch.schema.names
    if not names:
        return memoryview((before + "{}" + after).encode("utf-8") * batch.num_rows)
    pieces: list[Any] = []
    for i, (name, col) in enumerate(zip(names, batch.columns, strict=True)):
        key = json.dumps(name, ensure_ascii=False)
        pieces.append(pa.scalar(f"{before}{{{key}: " if i == 0 else f", {key}: ", ls))
        pieces.append(_json_column(pa, pc, col))
    pieces.append(pa.scalar("}" + after, ls))
    rows = pc.binary_join_element_wise(*pieces, pa.scalar("", ls), null_handling="replace",
                                       null_replacement="null")
    _, offsets_buf, data = rows.buffers()
    offsets = memoryview(offsets_buf).cast("q")
    start, end = offsets[rows.offset], offsets[rows.offset + len(rows)]
    return memoryview(data)[start:end] if data is not None else memoryview(b"")


def encode_json(pa: Any, source: FrameSource, sink: BinaryIO, fmt: str,
                 kwargs: dict[str, Any], tick: Callable[[int], None],
                 check: Callable[[], None]) -> None:
    if fmt == "json":
        sink.write(b"[")
    first = True
    if not kwargs:
        import pyarrow.compute as pc

        for batch in source.batches():
            check()
            if batch.num_rows:
                if fmt == "jsonl":
                    sink.write(_json_rows(pa, pc, batch, "", "\n"))
                else:  # each row starts with the separator; the very first one without it
                    text = _json_rows(pa, pc, batch, ",\n", "")
                    sink.write(text[2:] if first else text)
                    first = False
            tick(batch.num_rows)
    else:  # json.dumps options given: encode row by row with them
        kwargs.setdefault("default", _json_default)
        kwargs.setdefault("ensure_ascii", False)
        for batch in source.batches():
            check()
            try:
                lines = [json.dumps(_finite(row), **kwargs) for row in batch.to_pylist()]
            except (TypeError, ValueError, RecursionError) as exc:
                raise SerializationError(f"cannot write the frame as {fmt}: {exc}") from exc
            if lines:
                if fmt == "jsonl":
                    chunk = "\n".join(lines) + "\n"
                else:
                    chunk = ("" if first else ",\n") + ",\n".join(lines)
                    first = False
                sink.write(chunk.encode("utf-8"))
            tick(batch.num_rows)
    if fmt == "json":
        sink.write(b"]\n")
