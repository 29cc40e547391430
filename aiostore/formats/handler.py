"""What a format handler is, and the options a write or read passes through to it.

The public minimum (:class:`Handler`) is what users implement to add a format: extensions, a
priority, ``can_handle``, ``dumps`` and ``loads``. The built-in handlers (:class:`BuiltinHandler`)
add optional hooks the registry uses when present: options on the way in and out, a streaming
encoder for large objects, and a finer ``can_write(obj, ext)``. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._io.base import Buffer

__all__ = ["BuiltinHandler", "FormatOptions", "Handler", "Sink"]

Sink = Callable[[Buffer], None]
"""Where a streaming encoder writes its bytes (a temp file, or a multipart upload)."""


@runtime_checkable
class Handler(Protocol):
    """A format: how objects of some kind become bytes under some file extensions, and back.

    ``extensions`` are lower-case suffixes with their dot (``(".log",)``; multi-part ones such
    as ``".sparse.npz"`` work); the first is the one used when a key has none. Among the
    handlers that can take an object, the highest ``priority`` wins (on a tie, the one
    registered last). ``dumps`` and ``loads`` run in a worker thread, never on the event loop.
    """

    @property
    def extensions(self) -> tuple[str, ...]:
        """The extensions it writes and reads, lower case with the dot; the first is the
        default."""
        ...

    @property
    def priority(self) -> int:
        """Higher wins among the handlers that can take an object."""
        ...

    def can_handle(self, obj: object) -> bool:
        """Whether this handler can write ``obj``."""
        ...

    def dumps(self, obj: object, ext: str) -> bytes:
        """``obj`` encoded for a file ending in ``ext``."""
        ...

    def loads(self, data: bytes, ext: str) -> object:
        """The object encoded in ``data`` (a file ending in ``ext``)."""
        ...


@dataclass
class FormatOptions:
    """Options of one write or read, passed to the handlers that take them.

    ``output`` — frames read back as ``"pandas"`` (default), ``"polars"`` or ``"arrow"``;
    ``model`` — a dataclass or pydantic model class to build from JSON on read;
    ``progress`` — a callable ``(rows_done, rows_total)`` for frame encoders, called in the
    worker thread; ``writer_kwargs``/``reader_kwargs`` — passed to the underlying library
    (``compression=...`` to pyarrow, ``indent=...`` to ``json.dumps``...).
    """

    output: str | None = None
    model: type | None = None
    progress: Callable[[int, int | None], None] | None = None
    writer_kwargs: dict[str, Any] = field(default_factory=dict)
    reader_kwargs: dict[str, Any] = field(default_factory=dict)


class BuiltinHandler:
    """Base of aiostore's own handlers: the :class:`Handler` minimum plus optional hooks.

    ``name`` is the format's name in messages and in ``format=`` (``"parquet"``);
    ``formats`` maps each extension to its format name when they differ (``.feather`` is
    ``arrow``). ``wildcard``: the handler takes its objects under any extension (bytes are
    written as they are whatever the file is called); ``fallback``: it takes them under an
    extension no handler claims (JSON for ``data.dat``). ``pickle``: only with
    ``allow_pickle=True``.
    """

    extensions: tuple[str, ...] = ()
    priority: int = 0
    name: str = ""
    formats: dict[str, str] = {}  # noqa: RUF012 - read-only class data
    wildcard = False
    fallback = False
    pickle = False
    #: an optional dependency and the extra that brings it, named in the error when missing
    requires: tuple[str, str] | None = None

    def can_handle(self, obj: object) -> bool:
        """Whether this handler can write ``obj`` (under one of its extensions)."""
        return False

    def can_write(self, obj: object, ext: str) -> bool:
        """Whether ``obj`` can be written under ``ext`` (default: :meth:`can_handle`)."""
        return self.can_handle(obj)

    def reads(self, ext: str, options: FormatOptions) -> bool:
        """Whether this handler decodes files ending in ``ext`` for a read with ``options``
        (default: yes)."""
        return True

    def format_name(self, ext: str) -> str:
        """The format written under ``ext`` (for messages)."""
        return self.formats.get(ext, self.name)

    def dumps(self, obj: object, ext: str) -> bytes:
        """``obj`` encoded whole."""
        return b"".join(bytes(b) for b in self.dump_chunks(obj, ext, FormatOptions()))

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """``obj`` encoded, as chunks (no copy into one buffer)."""
        raise NotImplementedError

    def streams(self, obj: object, ext: str) -> bool:
        """Whether :meth:`encode_stream` should be used (large objects, bounded memory)."""
        return False

    def encode_stream(self, obj: object, ext: str, sink: Sink, options: FormatOptions,
                      check: Callable[[], None]) -> None:
        """Encode ``obj`` into ``sink`` piece by piece, calling ``check`` between pieces."""
        for chunk in self.dump_chunks(obj, ext, options):
            check()
            sink(chunk)

    def loads(self, data: bytes, ext: str) -> object:
        """The object in ``data``."""
        return self.decode(data, ext, FormatOptions())

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """The object in ``data``, honouring ``options``."""
        raise NotImplementedError
