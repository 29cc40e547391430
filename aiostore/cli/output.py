"""Output: data on stdout (aligned columns for people, JSON lines with ``--json``), messages on
stderr. Nothing but data ever goes to stdout."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Output", "human_bytes", "jsonable", "payload_fields", "text_of"]


def human_bytes(n: int | None) -> str:
    """``1536`` -> ``1.5 KiB`` (exact below 1 KiB)."""
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError  # pragma: no cover


def text_of(data: bytes) -> str:
    """Bytes for a terminal line: UTF-8 with anything unprintable escaped (``\\n``, ``\\x00``)."""
    text = data.decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def payload_fields(data: bytes) -> dict[str, Any]:
    """``{"text": ...}`` when ``data`` is valid UTF-8, else ``{"base64": ...}``."""
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def jsonable(value: Any) -> Any:
    """``value`` as something ``json.dumps`` takes: datetimes in ISO 8601, bytes as base64,
    decimals and other scalars as strings, NaN and infinities as null."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (bytes, bytearray)):
        return text_of(bytes(value))
    if isinstance(value, str):
        return text_of(value.encode("utf-8", "surrogatepass"))
    return str(value)


class Output:
    """Where a command's data goes: ``json=True`` prints one JSON object per line."""

    def __init__(self, json_lines: bool) -> None:
        self.json = json_lines
        self._out = sys.stdout

    def record(self, obj: Mapping[str, Any]) -> None:
        """One JSON line (only in JSON mode)."""
        self._out.write(json.dumps(jsonable(obj), ensure_ascii=False) + "\n")

    def line(self, text: str) -> None:
        """One line of text for people."""
        self._out.write(text + "\n")

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]],
              *, right: Iterable[str] = ()) -> None:
        """``rows`` as JSON lines, or as aligned columns under ``columns`` = (key, header)
        pairs; keys in ``right`` are right-aligned (numbers)."""
        if self.json:
            for row in rows:
                self.record(row)
            return
        align = set(right)
        cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
        widths = [max([len(header)] + [len(r[i]) for r in cells])
                  for i, (_, header) in enumerate(columns)]

        def fmt(values: Sequence[str]) -> str:
            parts = [v.rjust(w) if key in align else v.ljust(w)
                     for (key, _), v, w in zip(columns, values, widths, strict=True)]
            return "  ".join(parts).rstrip()

        self.line(fmt([header for _, header in columns]))
        for r in cells:
            self.line(fmt(r))

    def fields(self, obj: Mapping[str, Any], labels: Sequence[tuple[str, str]]) -> None:
        """One object: a JSON line, or ``label: value`` lines for the keys in ``labels``."""
        if self.json:
            self.record(obj)
            return
        width = max(len(label) for _, label in labels)
        for key, label in labels:
            value = obj.get(key)
            if isinstance(value, (list, tuple)):
                value = ", ".join(_cell(v) for v in value) or "none"
            self.line(f"{label + ':':<{width + 1}} {_cell(value)}".rstrip())

    def flush(self) -> None:
        """Flush stdout."""
        self._out.flush()


def message(text: str) -> None:
    """A message for people, on stderr."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
