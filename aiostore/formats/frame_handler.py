"""The built-in handlers for frames — pandas, pyarrow and anything exporting the Arrow C stream
(polars): Parquet, CSV, Arrow IPC/Feather and Excel files, and frames as JSON or JSON lines.

They stream: a frame is encoded record batch by record batch (:mod:`.encoders`), so memory
stays bounded and a large write publishes through a temp file or a multipart upload.
"""

from __future__ import annotations

from collections.abc import Callable

from .._io.base import Buffer
from . import encoders, frames
from .handler import BuiltinHandler, FormatOptions, Sink

__all__ = ["FrameHandler", "FrameJsonHandler"]


class _FrameCodec(BuiltinHandler):
    requires = ("pyarrow", "frames")
    #: frames are read from these files (``output=`` applies): :meth:`Registry.holds_frames`
    holds_frames = True

    def can_handle(self, obj: object) -> bool:
        """A pandas/pyarrow/polars frame."""
        return frames.is_frame(obj)

    def streams(self, obj: object, ext: str) -> bool:
        """Always: batch by batch."""
        return True

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """The whole file, as the chunks the encoder wrote."""
        chunks: list[Buffer] = []
        # (the encoder reuses its buffer: each chunk is copied out)
        self.encode_stream(obj, ext, lambda b: chunks.append(bytes(b)), options, lambda: None)
        return chunks

    def encode_stream(self, obj: object, ext: str, sink: Sink, options: FormatOptions,
                      check: Callable[[], None]) -> None:
        """Encode batch by batch into ``sink`` (``writer_kwargs`` go to the pyarrow writer)."""
        fmt = self.format_name(ext)
        data = frames.records_to_table(obj) if isinstance(obj, (list, tuple)) else obj
        source = frames.FrameSource(data, flatten_index=fmt not in ("parquet", "arrow"))
        encoders.encode_frame(fmt, source, sink, dict(options.writer_kwargs), options.progress,
                              check)

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """A frame: pandas unless ``options.output`` says ``"arrow"`` or ``"polars"``."""
        table = frames.decode_frame(self.format_name(ext), data, dict(options.reader_kwargs))
        return frames.convert_output(table, options.output or "pandas")


class FrameHandler(_FrameCodec):
    """Frames → Parquet (``.parquet``, ``.pq``), CSV, Arrow IPC/Feather (``.arrow``,
    ``.feather``, ``.ipc``) or Excel (``.xlsx``); a list of dicts is written as a table too."""

    extensions = (".parquet", ".pq", ".csv", ".arrow", ".feather", ".ipc", ".xlsx")
    priority = 30
    name = "parquet"
    formats = {".csv": "csv", ".arrow": "arrow", ".feather": "arrow",  # noqa: RUF012
               ".ipc": "arrow", ".xlsx": "xlsx"}

    def can_write(self, obj: object, ext: str) -> bool:
        """A frame, or a list/tuple (of dicts: one per row)."""
        return frames.is_frame(obj) or isinstance(obj, (list, tuple))


class FrameJsonHandler(_FrameCodec):
    """Frames → JSON (an array of records) or JSON lines; timestamps as ISO 8601 strings."""

    extensions = (".json", ".jsonl", ".ndjson")
    priority = 29  # (below FrameHandler: a frame with no extension given becomes .parquet)
    name = "json"
    formats = {".jsonl": "jsonl", ".ndjson": "jsonl"}  # noqa: RUF012

    def reads(self, ext: str, options: FormatOptions) -> bool:
        """JSON is read as a frame only when a frame ``output`` is asked for."""
        return options.output is not None
