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


def real_path(fs: FileSystem, path: str, *, limit: int = 40,
              known: tuple[str, str] | None = None) -> str:
    """``os.path.realpath`` through ``fs``: every symlink in ``path`` resolved (components that
    do not exist yet are kept as they are). ELOOP after ``limit`` links. ``known=(prefix,
    its real path)`` skips resolving a prefix already resolved."""
    path = os.path.abspath(path)
    if known is not None and path.startswith(known[0] + os.sep):
        pending = path[len(known[0]) + 1:].split(os.sep)
        resolved = known[1]
    else:
        pending = path.split(os.sep)[1:]
        resolved = os.sep
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, part)
        try:
            with step("stat", candidate):
                st = fs.stat(candidate, follow_symlinks=False)
        except FileNotFoundError:
            return os.path.join(candidate, *pending)
        if not stat_mod.S_ISLNK(st.st_mode):
            resolved = candidate
            continue
        links += 1
        if links > limit:
            raise storage_error(OSError(errno.ELOOP, "too many levels of symbolic links"),
                                "resolve", path)
        with step("readlink", candidate):
            target = fs.readlink(candidate)
        if os.path.isabs(target):
            resolved = os.sep
        pending = target.split(os.sep) + pending
    return resolved
