"""PostgreSQL's binary COPY format, encoded from Arrow columns (no Python loop per row).

A chunk of rows becomes one ``bytes``: per row a 16-bit field count, then per field a 32-bit
length (-1 for NULL) and the value in PostgreSQL's binary send format (big-endian integers and
floats, days since 2000-01-01 for dates, microseconds since 2000-01-01 for timestamps, ...).
Each column is turned into an Arrow ``large_binary`` array of whole fields with numpy, and
Arrow's ``binary_join_element_wise`` concatenates them row by row in C++. Only ``numeric``
values are encoded one by one (Python ``Decimal`` -> base-10000 digits).

Called in a worker thread; pure functions of the batch. The stream starts with
:data:`HEADER` and ends with :data:`TRAILER`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["HEADER", "TRAILER", "encode_batch", "encode_numeric"]

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
TRAILER = struct.pack("!h", -1)
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400 * 1_000_000
_FIXED = {"bool": "u1", "int2": ">i2", "int4": ">i4", "int8": ">i8", "float4": ">f4",
          "float8": ">f8", "date": ">i4", "timestamp": ">i8", "timestamptz": ">i8",
          "time": ">i8"}


def _EMPTY() -> Any:
    import pyarrow as pa

    return pa.scalar(b"", pa.large_binary())


def _valid(arr: Any) -> np.ndarray | None:
    return None if arr.null_count == 0 else arr.is_valid().to_numpy(zero_copy_only=False)


def _from_parts(n: int, offsets: Any, data: Any) -> Any:
    import pyarrow as pa

    return pa.Array.from_buffers(pa.large_binary(), n,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _fixed_fields(values: np.ndarray, dtype: str, valid: np.ndarray | None) -> Any:
    """Fields of a fixed-width type: 4-byte length + value, or just -1 for a NULL."""
    import numpy as np

    n = len(values)
    width = np.dtype(dtype).itemsize
    full = np.empty(n, dtype=[("len", ">i4"), ("value", dtype)])
    full["len"] = width
    full["value"] = values
    raw = full.view(np.uint8)
    if valid is None:
        offsets = np.arange(0, (n + 1) * (4 + width), 4 + width, dtype=np.int64)
        return _from_parts(n, offsets, raw)
    full["len"][~valid] = -1
    keep = np.ones((n, 4 + width), dtype=bool)
    keep[~valid, 4:] = False
    data = raw.reshape(n, 4 + width)[keep]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.where(valid, 4 + width, 4), out=offsets[1:])
    return _from_parts(n, offsets, data)


def _var_fields(arr: Any, prefix: bytes = b"") -> Any:
    """Fields of a variable-width type (text, bytea, json): 4-byte length + bytes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = _valid(arr)
    if arr.type != pa.large_binary():
        arr = arr.cast(pa.large_binary())
    if valid is not None:
        arr = pc.fill_null(arr, pa.scalar(b"", pa.large_binary()))
    lengths = pc.binary_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)
    lengths += len(prefix)
    if valid is not None:
        lengths[~valid] = -1
    heads = lengths.astype(">i4").view(np.uint8)
    n = len(arr)
    head_arr = _from_parts(n, np.arange(0, 4 * (n + 1), 4, dtype=np.int64), heads)
    if not prefix:
        return pc.binary_join_element_wise(head_arr, arr, _EMPTY())
    pre = pa.array([prefix if valid is None or valid[i] else b"" for i in range(n)],
                   pa.large_binary()) if valid is not None else \
        pa.repeat(pa.scalar(prefix, pa.large_binary()), n)
    return pc.binary_join_element_wise(head_arr, pre, arr, _EMPTY())


def encode_numeric(value: Decimal) -> bytes:
    """One ``numeric`` value in PostgreSQL's binary format (without the length)."""
    if value.is_nan():
        return struct.pack("!hhHh", 0, 0, 0xC000, 0)
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # infinities
        return struct.pack("!hhHh", 0, 0, 0xF000 if sign else 0xD000, 0)
    text = "".join(map(str, digits))
    if exponent >= 0:
        whole, frac = text + "0" * exponent, ""
    elif len(text) > -exponent:
        whole, frac = text[:exponent], text[exponent:]
    else:
        whole, frac = "0", "0" * (-exponent - len(text)) + text
    whole = whole.zfill((len(whole) + 3) // 4 * 4)
    frac = frac.ljust((len(frac) + 3) // 4 * 4, "0")
    groups = [int(whole[i:i + 4]) for i in range(0, len(whole), 4)]
    weight = len(groups) - 1
    groups += [int(frac[i:i + 4]) for i in range(0, len(frac), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    dscale = max(-exponent, 0)
    return struct.pack(f"!hhHh{len(groups)}H", len(groups), weight,
                       0x4000 if sign else 0, dscale, *groups)


def _numeric_fields(arr: Any) -> Any:
    import pyarrow as pa

    out = []
    for value in arr.to_pylist():
        if value is None:
            out.append(b"\xff\xff\xff\xff")
        else:
            body = encode_numeric(value)
            out.append(struct.pack("!i", len(body)) + body)
    return pa.array(out, pa.large_binary())


def _ints(arr: Any, storage: Any) -> Any:
    import pyarrow.compute as pc

    if arr.type != storage:
        arr = arr.view(storage)
    if arr.null_count:
        arr = pc.fill_null(arr, 0)
    return arr.to_numpy(zero_copy_only=False)


def _column_fields(kind: str, arr: Any) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = _valid(arr)
    if kind == "bool":
        values = (pc.fill_null(arr, False) if valid is not None else arr)
        return _fixed_fields(values.to_numpy(zero_copy_only=False).view(np.uint8), "u1", valid)
    if kind in ("int2", "int4", "int8", "float4", "float8"):
        values = pc.fill_null(arr, 0) if valid is not None else arr
        return _fixed_fields(values.to_numpy(zero_copy_only=False), _FIXED[kind], valid)
    if kind == "date":
        return _fixed_fields(_ints(arr, pa.int32()) - _PG_EPOCH_DAYS, ">i4", valid)
    if kind in ("timestamp", "timestamptz"):
        return _fixed_fields(_ints(arr, pa.int64()) - _PG_EPOCH_US, ">i8", valid)
    if kind == "time":
        return _fixed_fields(_ints(arr, pa.int64()), ">i8", valid)
    if kind in ("text", "bytea", "json"):
        return _var_fields(arr)
    if kind == "jsonb":
        return _var_fields(arr, b"\x01")
    if kind == "numeric":
        return _numeric_fields(arr)
    raise AssertionError(f"no binary encoder for {kind}")  # pragma: no cover


def encode_batch(kinds: Sequence[str], columns: Sequence[Any]) -> bytes:
    """Rows of ``columns`` (already cast to the kinds' Arrow types) as binary COPY data."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(columns[0]) if columns else 0
    if n == 0:
        return b""
    count = np.full(n, len(columns), dtype=">i2").view(np.uint8)
    parts = [_from_parts(n, np.arange(0, 2 * (n + 1), 2, dtype=np.int64), count)]
    parts += [_column_fields(kind, arr) for kind, arr in zip(kinds, columns, strict=True)]
    rows = pc.binary_join_element_wise(*parts, _EMPTY())
    if isinstance(rows, pa.ChunkedArray):  # pragma: no cover - arrays in, array out
        rows = rows.combine_chunks()
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=n + 1, offset=rows.offset * 8)
    return bytes(memoryview(rows.buffers()[2])[int(offsets[0]):int(offsets[-1])])
