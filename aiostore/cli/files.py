"""Local files through aiostore's I/O core (``current_fs()`` in the worker pool, so the
fault-injecting file system reaches the CLI too), and reading a file or an object in chunks
with bounded memory."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from .._io.base import current_fs
from .._io.groupsync import sync_dir
from .._io.offload import run_commit, run_sync
from .._io.ops import ensure_dirs, step
from ..errors import NotFoundError, storage_error
from ..storage import Storage

__all__ = ["CHUNK", "is_dir", "make_parents", "read_chunks", "read_range",
           "remove_empty_dirs", "remove_file", "stat", "stat_or_none"]

#: bytes read (and held) per step of a copy or a cat
CHUNK = 8 << 20
T = TypeVar("T")


async def _in_pool(fn: Callable[[], T]) -> T:
    return await run_sync(fn)


async def stat(path: str) -> os.stat_result:
    """``stat(path)``; :class:`~aiostore.errors.NotFoundError` naming it when missing."""
    fs = current_fs()

    def job() -> os.stat_result:
        with step("stat", path):
            return fs.stat(path)

    return await _in_pool(job)


async def stat_or_none(path: str) -> os.stat_result | None:
    """``stat(path)``, or None when nothing is there."""
    try:
        return await stat(path)
    except NotFoundError:
        return None


async def is_dir(path: str) -> bool:
    """Whether ``path`` is an existing directory."""
    st = await stat_or_none(path)
    return st is not None and stat_mod.S_ISDIR(st.st_mode)


async def read_range(path: str, start: int, size: int) -> bytes:
    """``size`` bytes of the file at ``start`` (fewer at its end)."""
    fs = current_fs()

    def job() -> bytes:
        with step("open", path):
            fd = fs.open(path, os.O_RDONLY)
        try:
            with step("read", path):
                return fs.pread(fd, size, start)
        finally:
            fs.close(fd)

    return await _in_pool(job)


async def read_chunks(*, path: str | None = None, storage: Storage | None = None,
                      key: str = "", size: int, chunk: int = CHUNK
                      ) -> AsyncIterator[bytes]:
    """The ``size`` bytes of a local file (``path``) or an object (``storage``, ``key``), in
    chunks of ``chunk`` bytes: one in memory at a time. A file that shrinks meanwhile ends
    the iteration early with :class:`~aiostore.errors.StorageError`."""
    if storage is not None:
        at = 0
        while at < size:
            data = await storage.get(key, byte_range=(at, min(at + chunk, size)))
            if not data:
                raise storage_error(OSError(errno.EIO, "the object shrank while it was read"),
                                    "read", key)
            at += len(data)
            yield data
        return
    assert path is not None
    fs = current_fs()

    def open_it() -> int:
        with step("open", path):
            return fs.open(path, os.O_RDONLY)

    fd = await _in_pool(open_it)
    try:
        at = 0
        while at < size:
            def read(offset: int = at) -> bytes:
                with step("read", path):
                    return fs.pread(fd, min(chunk, size - offset), offset)

            data = await _in_pool(read)
            if not data:
                raise storage_error(OSError(errno.EIO, "the file shrank while it was read"),
                                    "read", path)
            at += len(data)
            yield data
    finally:
        await run_sync(fs.close, fd)


async def make_parents(path: str) -> None:
    """Create the missing directories above the file ``path``, durably."""
    fs = current_fs()
    await run_commit(lambda: ensure_dirs(fs, os.path.dirname(os.path.abspath(path)), True))


async def remove_file(path: str) -> None:
    """Unlink the file at ``path`` and make that durable (directory fsync); a directory is
    refused."""
    fs = current_fs()

    def job() -> None:
        with step("stat", path):
            st = fs.stat(path, follow_symlinks=False)
        if stat_mod.S_ISDIR(st.st_mode):
            raise storage_error(OSError(errno.EISDIR, "is a directory (use --recursive)"),
                                "remove", path)
        with step("remove", path):
            fs.unlink(path)
        parent = os.path.dirname(os.path.abspath(path))
        with step("fsync directory", parent, durability=True):
            sync_dir(fs, parent)

    await run_commit(job)


async def remove_empty_dirs(top: str) -> None:
    """Remove the directories below ``top`` (and ``top``) that are empty, deepest first."""
    fs = current_fs()

    def job() -> None:
        def visit(directory: str) -> bool:
            with step("list", directory):
                names = fs.listdir(directory)
            empty = True
            for name in names:
                full = os.path.join(directory, name)
                with step("stat", full):
                    st = fs.stat(full, follow_symlinks=False)
                if stat_mod.S_ISDIR(st.st_mode) and visit(full):
                    continue
                empty = False
            if empty:
                with step("remove directory", directory):
                    fs.rmdir(directory)
                parent = os.path.dirname(os.path.abspath(directory))
                with step("fsync directory", parent, durability=True):
                    sync_dir(fs, parent)
            return empty

        visit(top)

    await run_commit(job)
