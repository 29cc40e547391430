"""``atomic_open``: a streaming writer whose file appears whole on clean exit, or not at all."""

from __future__ import annotations

import codecs
import warnings
from collections.abc import Callable, Generator, Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

import anyio

from .._io.base import Buffer, current_fs
from .._io.offload import run_commit
from .._io.publish import TempFile
from ..errors import ClosedError, InvalidArgumentError, SerializationError
from ._paths import StrPath, check_mode, check_remote, fspath

__all__ = ["AtomicFile", "atomic_open"]

AnyStr_ = TypeVar("AnyStr_", str, bytes)
A = TypeVar("A")
_DEFAULT_BUFFER = 1 << 20


class AtomicFile(Generic[AnyStr_]):
    """A file being written atomically; get one from :func:`atomic_open`.

    Data is buffered in memory and written to a hidden temp sibling of the target in chunks of
    ``buffer_size`` (one worker hop per chunk). :meth:`commit` publishes it (fsync, rename,
    directory fsync); :meth:`discard` throws it away. As an async context manager it commits on
    a clean exit and discards on an exception or cancellation. It is also awaitable, so
    ``f = await atomic_open(...)`` works, with explicit :meth:`commit`/:meth:`discard`.
    A file dropped while still open emits a ``ResourceWarning``.
    """

    def __init__(self, path: StrPath, mode: str, *, encoding: str, errors: str, overwrite: bool,
                 durable: bool, perm: int | None, buffer_size: int) -> None:
        if mode not in ("wb", "w", "xb", "x"):
            raise InvalidArgumentError(f"mode must be 'wb' or 'w' ('x'/'xb': fail if the target "
                                       f"exists), not {mode!r}")
        if buffer_size < 1:
            raise InvalidArgumentError("buffer_size must be positive")
        self.name = fspath(path)
        self._text = "b" not in mode
        self._overwrite = overwrite and not mode.startswith("x")
        self._durable = durable
        self._perm = check_mode(perm)
        self._buffer_size = buffer_size
        self._encoding = encoding
        self._errors = errors
        if self._text:
            try:
                self._encoder: codecs.IncrementalEncoder | None = (
                    codecs.getincrementalencoder(encoding)(errors))
            except LookupError as exc:
                raise InvalidArgumentError(f"unknown encoding {encoding!r}") from exc
        else:
            self._encoder = None
        self._fs = current_fs()
        self._pending: list[Buffer] = []
        self._pending_size = 0
        self._tmp: TempFile | None = None
        self._state: Literal["open", "committed", "discarded"] = "open"
        self._lock: anyio.Lock | None = None
        self.bytes_written = 0

    @property
    def closed(self) -> bool:
        """True once committed or discarded."""
        return self._state != "open"

    def _check_open(self) -> None:
        if self._state != "open":
            raise ClosedError(f"the atomic file for {self.name} is already {self._state}")

    def _to_bytes(self, data: object) -> Buffer:
        if self._text:
            if not isinstance(data, str):
                raise SerializationError(f"write() argument must be str, not "
                                         f"{type(data).__name__}")
            assert self._encoder is not None
            try:
                return self._encoder.encode(data)
            except UnicodeError as exc:
                raise SerializationError(f"cannot encode text as {self._encoding}: {exc}") from exc
        if isinstance(data, bytes):
            return data
        if isinstance(data, (bytearray, memoryview)):
            return bytes(data)  # the caller may reuse its buffer
        raise SerializationError(f"write() argument must be bytes-like, not {type(data).__name__}")

    # --- worker-thread side ------------------------------------------------------------------
    def _take_pending(self) -> list[Buffer]:
        chunks, self._pending, self._pending_size = self._pending, [], 0
        return chunks

    def _ensure_tmp(self) -> TempFile:
        if self._tmp is None:
            self._tmp = TempFile(self._fs, self.name, overwrite=self._overwrite,
                                 durable=self._durable, mode=self._perm)
        return self._tmp

    async def _hop(self, job: Callable[[], None]) -> None:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            self._check_open()
            await run_commit(job)

    # --- public API --------------------------------------------------------------------------
    async def write(self, data: AnyStr_) -> int:
        """Buffer ``data`` (str in text mode, bytes-like in binary mode); returns its length.

        When the buffer reaches ``buffer_size`` it is written to the temp file in one hop.
        Cancellation: the chunk being written completes; the target is untouched until commit.
        """
        self._check_open()
        buf = self._to_bytes(data)
        self._pending.append(buf)
        self._pending_size += len(buf)
        self.bytes_written += len(buf)
        if self._pending_size >= self._buffer_size:
            await self.flush()
        return len(data)

    async def writelines(self, lines: Iterable[AnyStr_]) -> None:
        """Write each item of ``lines`` (no separators are added, as in ``io``)."""
        for line in lines:
            await self.write(line)

    async def write_encoded(self, encode: Callable[[A], bytes], arg: A) -> None:
        """Run ``encode(arg)`` in the worker thread and append the bytes it returns.

        For CPU-heavy serialisation (JSON lines, frames) that must not run on the event loop.
        """
        def job() -> None:
            chunks = self._take_pending()
            data = encode(arg)
            tmp = self._ensure_tmp()
            tmp.write_all(chunks)
            tmp.write(data)
            self.bytes_written += len(data)

        await self._hop(job)

    async def flush(self) -> None:
        """Write buffered data to the temp file (not a commit: nothing is published)."""
        if not self._pending:
            return

        def job() -> None:
            self._ensure_tmp().write_all(self._take_pending())

        await self._hop(job)

    async def commit(self) -> None:
        """Publish: write what is buffered, fsync, rename onto the target, fsync the directory.

        One worker hop. Cancellation: the commit completes (or fails leaving the old content and
        no temp file), then the cancellation propagates.
        """
        if self._text:
            assert self._encoder is not None
            tail = self._encoder.encode("", final=True)
            if tail:
                self._pending.append(tail)

        def job() -> None:
            tmp = self._ensure_tmp()
            try:
                tmp.write_all(self._take_pending())
            except BaseException:
                tmp.discard()
                raise
            tmp.commit()

        try:
            await self._hop(job)
        except BaseException:
            if self._state == "open":
                self._state = "discarded"
            raise
        self._state = "committed"

    async def discard(self) -> None:
        """Throw the temp file away; the target is untouched. Idempotent after a discard."""
        if self._state != "open":
            return
        self._state = "discarded"
        self._pending.clear()
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            with anyio.CancelScope(shield=True):
                await run_commit(tmp.discard)

    def __await__(self) -> Generator[Any, None, AtomicFile[AnyStr_]]:
        async def _self() -> AtomicFile[AnyStr_]:
            return self
        return _self().__await__()

    async def __aenter__(self) -> AtomicFile[AnyStr_]:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            if self._state == "open":
                await self.commit()
        else:
            await self.discard()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "open" and getattr(self, "_tmp", None) is not None:
            warnings.warn(f"atomic file for {self.name!r} was never committed or discarded; its "
                          "temp file is left for sweep_temp_files()", ResourceWarning,
                          stacklevel=1)


@overload
def atomic_open(path: StrPath, mode: Literal["wb", "xb"] = "wb", *, encoding: str = "utf-8",
                errors: str = "strict", overwrite: bool = True, durable: bool = True,
                perm: int | None = None, buffer_size: int = _DEFAULT_BUFFER,
                storage_options: Mapping[str, Any] | None = None) -> AtomicFile[bytes]:
    ...


@overload
def atomic_open(path: StrPath, mode: Literal["w", "x"], *, encoding: str = "utf-8",
                errors: str = "strict", overwrite: bool = True, durable: bool = True,
                perm: int | None = None, buffer_size: int = _DEFAULT_BUFFER,
                storage_options: Mapping[str, Any] | None = None) -> AtomicFile[str]:
    ...


def atomic_open(path: StrPath, mode: str = "wb", *, encoding: str = "utf-8",
                errors: str = "strict", overwrite: bool = True, durable: bool = True,
                perm: int | None = None, buffer_size: int = _DEFAULT_BUFFER,
                storage_options: Mapping[str, Any] | None = None) -> AtomicFile[Any]:
    """Open ``path`` for an atomic streaming write::

        async with aiostore.atomic_open("out.log", "w") as f:
            await f.write("line\\n")

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (text, ``encoding``/``errors``); ``"xb"``/``"x"``
    (or ``overwrite=False``) publish only if the target does not exist. ``perm`` sets the
    permission bits (default: keep the existing file's, else ``0o666 & ~umask``).
    Guarantees as :func:`aiostore.write_bytes`: the target changes only at commit, atomically,
    and durably unless ``durable=False``.

    Cancellation: inside the block, the exit discards the temp file and the target keeps its
    old content; a cancellation during the final commit lets the commit complete first.

    ``path`` may be an ``s3://bucket/key`` URI (``storage_options``: see
    :func:`aiostore.open_storage`): the data streams into a multipart upload (parts of at
    least 5 MiB, bounded memory) that the commit completes and a discard aborts; the object
    appears whole or not at all.
    """
    p = fspath(path)
    if check_remote(p, perm, storage_options):
        from .remote import RemoteAtomicFile

        return RemoteAtomicFile(p, mode, encoding=encoding, errors=errors,
                                overwrite=overwrite, durable=durable, perm=None,
                                buffer_size=buffer_size, storage_options=storage_options)
    return AtomicFile(path, mode, encoding=encoding, errors=errors, overwrite=overwrite,
                      durable=durable, perm=perm, buffer_size=buffer_size)
