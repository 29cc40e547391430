"""The file-system interface every part of aiostore goes through, and the active instance.

All methods are synchronous and may block: they are only ever called from worker threads
(see :mod:`aiostore._io.offload`), in coarse batches. Errors are the raw ``OSError`` of the
operating system; the parts translate them with :func:`aiostore.errors.storage_error`.

Tests swap the implementation with :func:`use_fs` (for example a
:class:`~aiostore._io.faulty.FaultyFileSystem`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

Buffer = bytes | bytearray | memoryview


class FileSystem(ABC):
    """Blocking file-system primitives; one instance is shared by every part."""

    # --- descriptors -------------------------------------------------------------------------
    @abstractmethod
    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        """``os.open`` with ``O_CLOEXEC`` added."""

    @abstractmethod
    def close(self, fd: int) -> None:
        """Close a descriptor."""

    @abstractmethod
    def write(self, fd: int, data: Buffer) -> None:
        """Write every byte of ``data`` at the current offset (loops on short writes)."""

    @abstractmethod
    def pwritev(self, fd: int, buffers: Sequence[Buffer], offset: int) -> None:
        """Write every byte of ``buffers`` at ``offset`` (loops on short writes)."""

    @abstractmethod
    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """Read ``size`` bytes at ``offset``; fewer only at the end of the file."""

    @abstractmethod
    def pread_nowait(self, fd: int, size: int, offset: int) -> bytes | None:
        """Read exactly ``size`` bytes like :meth:`pread` only if that needs no disk I/O
        (page-cache hit, Linux ``RWF_NOWAIT``); None otherwise — including when only part of
        the range could be read (part cached, or the end of the file): never a short result.
        The one call allowed on the event loop's thread."""

    @abstractmethod
    def fsync(self, fd: int) -> None:
        """Make the file's data and metadata durable."""

    @abstractmethod
    def fdatasync(self, fd: int) -> None:
        """Make the file's data (and the metadata needed to read it) durable."""

    @abstractmethod
    def fstat(self, fd: int) -> os.stat_result:
        """``os.fstat``."""

    @abstractmethod
    def fchmod(self, fd: int, mode: int) -> None:
        """``os.fchmod``."""

    @abstractmethod
    def ftruncate(self, fd: int, size: int) -> None:
        """``os.ftruncate``."""

    @abstractmethod
    def punch_hole(self, fd: int, offset: int, length: int) -> bool:
        """Free ``length`` bytes at ``offset`` keeping the file size; False if unsupported."""

    @abstractmethod
    def lock(self, fd: int, *, exclusive: bool = True, blocking: bool = False) -> None:
        """Take an advisory whole-file lock (``flock``); BlockingIOError if held."""

    # --- names -------------------------------------------------------------------------------
    @abstractmethod
    def stat(self, path: str, *, follow_symlinks: bool = True) -> os.stat_result:
        """``os.stat`` / ``os.lstat``."""

    @abstractmethod
    def readlink(self, path: str) -> str:
        """``os.readlink``."""

    @abstractmethod
    def listdir(self, path: str) -> list[str]:
        """Names in a directory."""

    @abstractmethod
    def mkdir(self, path: str, mode: int = 0o777) -> None:
        """Create one directory."""

    @abstractmethod
    def replace(self, src: str, dst: str) -> None:
        """Atomically rename ``src`` onto ``dst``, replacing it."""

    @abstractmethod
    def rename_noreplace(self, src: str, dst: str) -> None:
        """Atomically rename ``src`` to ``dst``; FileExistsError (target untouched) if it exists."""

    @abstractmethod
    def unlink(self, path: str) -> None:
        """Remove a name."""

    @abstractmethod
    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""

    @abstractmethod
    def fsync_dir(self, path: str) -> None:
        """Make the directory's entries (creations, renames, unlinks) durable."""

    @abstractmethod
    def writeback(self, fd: int, *, wait: bool) -> None:
        """Start (``wait=False``) or start and wait for (``wait=True``) write-back of the file's
        dirty pages — a hint that lets several files be written back together before their
        fsyncs; it makes nothing durable by itself (Linux ``sync_file_range``; a no-op elsewhere).
        """

    # --- conveniences built on the primitives ------------------------------------------------
    def read_file(self, path: str) -> bytes:
        """Read a whole file."""
        fd = self.open(path, os.O_RDONLY)
        try:
            size = self.fstat(fd).st_size
            chunks: list[bytes] = []
            offset = 0
            while True:
                chunk = self.pread(fd, max(size - offset, 1 << 20), offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
            return b"".join(chunks)
        finally:
            self.close(fd)


_default: FileSystem | None = None
_current: contextvars.ContextVar[FileSystem | None] = contextvars.ContextVar(
    "aiostore_fs", default=None
)


def current_fs() -> FileSystem:
    """The file system in force for this context (the real POSIX one unless a test swapped it)."""
    fs = _current.get()
    if fs is not None:
        return fs
    global _default
    if _default is None:
        from .posix import PosixFileSystem

        _default = PosixFileSystem()
    return _default


@contextlib.contextmanager
def use_fs(fs: FileSystem) -> Iterator[FileSystem]:
    """Make ``fs`` the file system of the current context (tasks started inside inherit it)."""
    token = _current.set(fs)
    try:
        yield fs
    finally:
        _current.reset(token)
