"""The format registry: one list of handlers for the whole package.

``aiostore.write``/``aiostore.read``, the ``Store`` and user code pick handlers here, by object
or by file extension, and encode, decode and publish through it — one path for every format:
pick the handler, encode (in the worker pool, streamed when the handler can), publish through
a :class:`~aiostore.formats.destination.Destination` (a local file or an object store).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from .._io.base import Buffer
from .._io.offload import Abort, run_sync
from ..errors import InvalidArgumentError, InvalidTypeError, SerializationError, UnknownFormatError
from ..storage.base import ObjectInfo
from .destination import Destination
from .handler import FormatOptions, Handler, Sink

__all__ = ["Registry", "default_registry"]

#: format names accepted by ``format=`` besides each handler's own, and what they mean
_ALIASES = {"feather": ".arrow", "ipc": ".arrow", "arrow": ".arrow", "excel": ".xlsx",
            "xlsx": ".xlsx", "ndjson": ".jsonl", "jsonl": ".jsonl", "pq": ".parquet",
            "parquet": ".parquet", "csv": ".csv", "raw": ".bin", "bytes": ".bin",
            "txt": ".txt", "text": ".txt", "json": ".json", "yml": ".yaml", "yaml": ".yaml",
            "npy": ".npy", "npz": ".npz", "sparse": ".sparse.npz", "png": ".png",
            "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp", "pickle": ".pkl", "pkl": ".pkl"}
_LEGACY_NAMES = ("arrow", "bytes", "csv", "json", "jsonl", "parquet", "text", "xlsx")


def _attr(handler: object, name: str, default: object = False) -> object:
    return getattr(handler, name, default)


class Registry:
    """Handlers by priority; see :class:`~aiostore.formats.Handler` for what one is.

    ``Registry()`` is empty; :func:`default_registry` is the one ``write``/``read`` use, with
    the built-in formats. :meth:`copy` gives a private registry to extend without changing
    the package's (the ``Store`` does that for ``register_handler``).
    """

    def __init__(self, handlers: Iterable[Handler] = ()) -> None:
        self._handlers: list[Handler] = []
        for h in handlers:
            self.register(h)

    # --- registration ------------------------------------------------------------------------
    def register(self, handler: Handler) -> None:
        """Add ``handler``; it wins ties against the handlers registered before it.

        Raises :class:`~aiostore.errors.InvalidTypeError` unless it has ``extensions`` (a tuple
        of ``".ext"`` strings), an int ``priority`` and callable ``can_handle``, ``dumps`` and
        ``loads``."""
        exts = getattr(handler, "extensions", None)
        if not isinstance(exts, tuple) or not exts or not all(
                isinstance(e, str) and e.startswith(".") and len(e) > 1 for e in exts):
            raise InvalidTypeError(f"a handler's extensions must be a non-empty tuple like "
                                   f"('.log',), not {exts!r}")
        if exts != tuple(e.lower() for e in exts):
            raise InvalidArgumentError(f"extensions must be lower case: {exts!r}")
        priority = getattr(handler, "priority", None)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidTypeError(f"a handler's priority must be an int, not {priority!r}")
        for method in ("can_handle", "dumps", "loads"):
            if not callable(getattr(handler, method, None)):
                raise InvalidTypeError(f"a handler needs a {method}() method: {handler!r}")
        self._handlers.append(handler)

    def copy(self) -> Registry:
        """A new registry with the same handlers (registering on it changes only it)."""
        return Registry(self._handlers)

    def handlers(self) -> list[Handler]:
        """The handlers, in registration order."""
        return list(self._handlers)

    def extensions(self) -> set[str]:
        """Every extension some handler claims."""
        return {e for h in self._handlers for e in h.extensions}

    def split_extension(self, name: str) -> tuple[str, str]:
        """``"a/b.sparse.npz"`` -> ``("a/b", ".sparse.npz")``: the longest known extension
        (case-insensitive), or ``(name, "")`` when it ends in none."""
        lower = name.lower()
        base = name.rsplit("/", 1)[-1]
        best = ""
        for ext in self.extensions():
            if lower.endswith(ext) and len(ext) > len(best) and len(base) > len(ext):
                best = ext
        return (name[:len(name) - len(best)], name[len(name) - len(best):].lower()) if best \
            else (name, "")

    def ext_for_format(self, name: object) -> str:
        """The extension ``format=name`` means (``"parquet"`` -> ``".parquet"``; an extension
        is accepted as itself). :class:`~aiostore.errors.UnknownFormatError` otherwise."""
        known = ", ".join(_LEGACY_NAMES)
        if not isinstance(name, str):
            raise UnknownFormatError(f"format must be a name like 'parquet', not "
                                     f"{type(name).__name__}; known formats: {known}, ...")
        key = name.lower()
        if key in _ALIASES:
            return _ALIASES[key]
        ext = key if key.startswith(".") else "." + key
        if ext in self.extensions():
            return ext
        raise UnknownFormatError(f"unknown format {name!r}; known formats: {known}, "
                                 f"or an extension like {', '.join(sorted(self.extensions())[:6])}"
                                 " ...")

    # --- choosing ----------------------------------------------------------------------------
    def for_object(self, obj: object, ext: str | None = None, *, allow_pickle: bool = False,
                   explicit: bool = False) -> Handler:
        """The handler that writes ``obj`` — under ``ext`` when given (lower case, with its dot),
        else the best for the object (its first extension is then the one to use).

        Among the handlers claiming ``ext`` that can write ``obj``, the highest priority wins;
        handlers marked ``wildcard`` (bytes, text) take their objects under any extension
        (not when ``explicit``: the caller named the format), and ``fallback`` ones (JSON)
        under an extension no handler claims. Raises
        :class:`~aiostore.errors.SerializationError` for an object the format of ``ext``
        cannot hold, :class:`~aiostore.errors.UnknownFormatError` when no handler takes it.
        """
        pool = [h for h in self._handlers if allow_pickle or not _attr(h, "pickle")]
        if ext and not allow_pickle and any(ext in h.extensions and _attr(h, "pickle")
                                            for h in self._handlers) \
                and not any(ext in h.extensions for h in pool):
            raise UnknownFormatError(f"pickle is off: unpickling data from a shared folder or "
                                     f"bucket runs code; pass allow_pickle=True to use {ext}")
        if not ext:
            able = [h for h in pool if h.can_handle(obj)]
            if able:
                return self._best(able)
            if not allow_pickle and any(_attr(h, "pickle") for h in self._handlers):
                raise UnknownFormatError(
                    f"no handler takes an object of type {type(obj).__name__}; register one, "
                    "or allow pickle (allow_pickle=True) if the data is only ever read by "
                    "code you trust")
            raise UnknownFormatError(f"no handler takes an object of type "
                                     f"{type(obj).__name__}; register one")
        specific = [h for h in pool if ext in h.extensions]
        able = [h for h in specific if _can_write(h, obj, ext)]
        if not explicit:
            able += [h for h in pool if _attr(h, "wildcard") and h not in able
                     and h.can_handle(obj)]
        if not specific:
            able += [h for h in pool if _attr(h, "fallback") and h.can_handle(obj)]
        if able:
            return self._best(able)
        kind = type(obj).__name__
        if specific:
            what = _format_name(specific[-1], ext)
            if isinstance(obj, (bytes, bytearray, memoryview)):
                raise SerializationError(f"bytes are written as-is; they cannot be written as "
                                         f"{what}")
            if any(h.can_handle(obj) for h in pool):
                raise SerializationError(f"a {kind} cannot be written as {what}")
            raise SerializationError(f"cannot write an object of type {kind} as {what}; no "
                                     "handler takes it")
        raise UnknownFormatError(f"cannot tell the format of a {kind} from the extension "
                                 f"{ext!r}; pass format= or use a known extension")

    def for_extension(self, ext: str, options: FormatOptions | None = None, *,
                      allow_pickle: bool = False) -> Handler:
        """The handler that reads files ending in ``ext`` (the highest priority among those
        that claim it and read with ``options``). :class:`~aiostore.errors.UnknownFormatError`
        when none does (pickle unless allowed)."""
        opts = options or FormatOptions()
        able = [h for h in self._handlers if ext in h.extensions
                and (allow_pickle or not _attr(h, "pickle"))
                and _reads(h, ext, opts)]
        if able:
            return self._best(able)
        if any(ext in h.extensions for h in self._handlers):
            raise UnknownFormatError(f"reading {ext} is off: unpickling runs code from the data;"
                                     " pass allow_pickle=True if you trust its writer")
        raise UnknownFormatError(f"no handler reads {ext!r} files")

    def holds_frames(self, ext: str) -> bool:
        """Whether files ending in ``ext`` can be read as a frame (``output=`` applies)."""
        return any(ext in h.extensions and _attr(h, "holds_frames") for h in self._handlers)

    @staticmethod
    def _best(able: list[Handler]) -> Handler:
        best = able[0]
        for h in able[1:]:  # the later registered wins a tie
            if h.priority >= best.priority:
                best = h
        return best

    # --- encoding, decoding, publishing ------------------------------------------------------
    async def encode(self, obj: object, ext: str, *, options: FormatOptions | None = None,
                     handler: Handler | None = None) -> list[Buffer]:
        """``obj`` encoded for ``ext``, whole, in the worker pool. Cancellation: safe."""
        h = handler or self.for_object(obj, ext)
        opts = options or FormatOptions()
        return await run_sync(dump_chunks, h, obj, ext, opts)

    async def decode(self, data: Buffer, ext: str, *, options: FormatOptions | None = None,
                     allow_pickle: bool = False) -> object:
        """The object in ``data`` (a file ending in ``ext``), decoded in the worker pool.
        Cancellation: safe."""
        opts = options or FormatOptions()
        h = self.for_extension(ext, opts, allow_pickle=allow_pickle)
        return await run_sync(decode_with, h, data, ext, opts)

    async def write(self, obj: object, dest: Destination, ext: str, *,
                    options: FormatOptions | None = None, handler: Handler | None = None,
                    allow_pickle: bool = False) -> ObjectInfo | None:
        """Pick the handler for ``obj`` under ``ext``, encode off the loop and publish through
        ``dest`` atomically: streamed (bounded memory) when the handler streams this object,
        else whole. ``handler`` skips the choice (one :meth:`for_object` returned). Returns
        what the destination reports (an object store's :class:`~aiostore.ObjectInfo`; None
        for a local file).

        Cancellation: as the destination's (the target keeps its old content unless the
        publish had started; then it completes)."""
        h = handler or self.for_object(obj, ext, allow_pickle=allow_pickle)
        opts = options or FormatOptions()
        if _streams(h, obj, ext):
            def produce(sink: Sink, abort: Abort) -> None:
                encode_stream(h, obj, ext, sink, opts, abort.check)

            return await dest.stream(produce)
        return await dest.put(lambda: dump_chunks(h, obj, ext, opts))


def _can_write(h: Handler, obj: object, ext: str) -> bool:
    can = getattr(h, "can_write", None)
    return bool(can(obj, ext)) if callable(can) else bool(h.can_handle(obj))


def _reads(h: Handler, ext: str, options: FormatOptions) -> bool:
    reads = getattr(h, "reads", None)
    return bool(reads(ext, options)) if callable(reads) else True


def _streams(h: Handler, obj: object, ext: str) -> bool:
    streams = getattr(h, "streams", None)
    return callable(getattr(h, "encode_stream", None)) and callable(streams) \
        and bool(streams(obj, ext))


def _format_name(h: Handler, ext: str) -> str:
    name = getattr(h, "format_name", None)
    return str(name(ext)) if callable(name) else ext.lstrip(".")


def _check_bytes(data: object, h: Handler) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SerializationError(f"{type(h).__name__}.dumps returned "
                                 f"{type(data).__name__}, not bytes")
    return bytes(data) if isinstance(data, memoryview) else data  # type: ignore[return-value]


def dump_chunks(h: Handler, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
    """``h``'s encoding of ``obj`` as chunks (blocking: call in a worker)."""
    chunks = getattr(h, "dump_chunks", None)
    if callable(chunks):
        return list(chunks(obj, ext, options))
    return [_check_bytes(h.dumps(obj, ext), h)]


def encode_stream(h: Handler, obj: object, ext: str, sink: Sink, options: FormatOptions,
                  check: Callable[[], None]) -> None:
    """``h``'s streaming encoder (blocking)."""
    getattr(h, "encode_stream")(obj, ext, sink, options, check)  # noqa: B009


def decode_with(h: Handler, data: Buffer, ext: str, options: FormatOptions) -> object:
    """``h``'s decoding of ``data`` (blocking): with ``options`` when the handler takes them."""
    if isinstance(data, memoryview) and not _attr(h, "zero_copy"):
        data = data.tobytes()  # (bytes and bytearray are what the libraries take)
    decode = getattr(h, "decode", None)
    if callable(decode) and len(inspect.signature(decode).parameters) >= 3:
        return decode(data, ext, options)
    raw = data if isinstance(data, bytes) else bytes(data)
    return h.loads(raw, ext)


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The package's registry (built-in formats, plus whatever was registered on it): the
    one ``aiostore.write`` and ``aiostore.read`` use."""
    global _DEFAULT
    if _DEFAULT is None:
        from .arrays import ImageHandler, NpyHandler, NpzHandler, SparseHandler
        from .basic import (
            BytesHandler,
            JsonHandler,
            JsonlHandler,
            ModelHandler,
            PickleHandler,
            TextHandler,
            YamlHandler,
        )
        from .frame_handler import FrameHandler, FrameJsonHandler

        _DEFAULT = Registry([PickleHandler(), JsonHandler(), ModelHandler(), JsonlHandler(),
                             TextHandler(), BytesHandler(), YamlHandler(), NpyHandler(),
                             NpzHandler(), SparseHandler(), ImageHandler(), FrameJsonHandler(),
                             FrameHandler()])
    return _DEFAULT
