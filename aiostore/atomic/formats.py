"""The format registry: which formats exist, their suffixes and what objects they hold."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import UnknownFormatError

__all__ = ["FORMATS", "Format", "format_from_path", "lookup_format"]


@dataclass(frozen=True)
class Format:
    """A file format ``write``/``read`` know.

    ``kind``: ``"bytes"`` (raw), ``"text"``, ``"json"``/``"jsonl"`` (Python objects or frames) or
    ``"frame"`` (tabular only).
    """

    name: str
    suffixes: tuple[str, ...]
    kind: str

    @property
    def takes_frames(self) -> bool:
        """Whether a DataFrame/Arrow table can be written in this format."""
        return self.kind in ("frame", "json", "jsonl")


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("bytes", (".bin",), "bytes"),
    Format("text", (".txt", ".md", ".log"), "text"),
    Format("json", (".json",), "json"),
    Format("jsonl", (".jsonl", ".ndjson"), "jsonl"),
    Format("parquet", (".parquet", ".pq"), "frame"),
    Format("csv", (".csv",), "frame"),
    Format("arrow", (".arrow", ".feather", ".ipc"), "frame"),
    Format("xlsx", (".xlsx",), "frame"),
)}
_ALIASES = {"feather": "arrow", "ipc": "arrow", "excel": "xlsx", "ndjson": "jsonl",
            "pq": "parquet", "raw": "bytes", "txt": "text"}
_BY_SUFFIX = {s: f for f in FORMATS.values() for s in f.suffixes}


def lookup_format(name: str) -> Format:
    """The format called ``name`` (case-insensitive; aliases like ``"feather"`` accepted)."""
    known = ", ".join(sorted(FORMATS))
    if not isinstance(name, str):
        raise UnknownFormatError(f"format must be a name like 'parquet', not "
                                 f"{type(name).__name__}; known formats: {known}")
    key = name.lower().lstrip(".")
    key = _ALIASES.get(key, key)
    try:
        return FORMATS[key]
    except KeyError:
        raise UnknownFormatError(f"unknown format {name!r}; known formats: {known}") from None


def format_from_path(path: str) -> Format | None:
    """The format implied by the suffix of ``path``, or None when the suffix is not known."""
    return _BY_SUFFIX.get(os.path.splitext(path)[1].lower())
