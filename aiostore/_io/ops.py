"""Small file-system routines shared by the parts, built on :class:`FileSystem` primitives."""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
from collections.abc import Iterator

from ..errors import DurabilityError, storage_error
from .base import FileSystem
from .groupsync import sync_dir

__all__ = ["ensure_dirs", "step"]


@contextlib.contextmanager
def step(action: str, path: str, *, durability: bool = False) -> Iterator[None]:
    """Translate an ``OSError`` raised by the block into an aiostore :class:`StorageError`."""
    try:
        yield
    except OSError as exc:
        raise storage_error(exc, action, path,
                            kind=DurabilityError if durability else None) from exc


def ensure_dirs(fs: FileSystem, directory: str, durable: bool) -> None:
    """Create missing parent directories; with ``durable``, make each new name durable."""
    missing: list[str] = []
    d = directory
    while True:
        try:
            with step("stat", d):
                st = fs.stat(d)
        except FileNotFoundError:
            missing.append(d)
            parent = os.path.dirname(d)
            if parent == d:
                raise
            d = parent
            continue
        if not stat_mod.S_ISDIR(st.st_mode):
            raise storage_error(OSError(errno.ENOTDIR, "a parent path is not a directory"),
                                "create directory", d)
        break
    for m in reversed(missing):
        try:
            with step("create directory", m):
                fs.mkdir(m)
        except FileExistsError:
            pass  # created concurrently; stat above will have caught a non-directory
    if durable:
        for m in reversed(missing):
            with step("fsync directory", os.path.dirname(m), durability=True):
                sync_dir(fs, os.path.dirname(m))
