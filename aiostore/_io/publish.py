"""The publish recipe, run inside one worker thread: temp sibling, write, fsync, rename, fsync dir.

Nothing here is async; the public writers call these functions through
:func:`aiostore._io.run_commit`, one hop per write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat as stat_mod
from collections.abc import Callable, Iterable

from ..errors import (
    AlreadyExistsError,
    CorruptionError,
    InvalidArgumentError,
    IsADirectoryTargetError,
    NotFoundError,
    storage_error,
)
from .base import Buffer, FileSystem
from .groupsync import sync_dir
from .offload import Abort
from .ops import ensure_dirs, step

TEMP_SUFFIX = ".aiostore-tmp"
#: ``.<target name>.<pid>.<8 hex>.aiostore-tmp`` — what :func:`sweep_temp_files` removes.
TEMP_NAME = re.compile(r"^\..*\.(\d+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + r"$")
_MAX_LINKS = 40


def temp_name(target: str) -> str:
    """A unique hidden sibling name for ``target`` (keeps within NAME_MAX)."""
    base = os.path.basename(target)[:180]
    return os.path.join(os.path.dirname(target),
                        f".{base}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def resolve_target(fs: FileSystem, path: str) -> tuple[str, os.stat_result | None]:
    """Follow symlinks to the file that will be replaced; returns (path, its stat or None)."""
    p = os.path.abspath(path)
    for _ in range(_MAX_LINKS):
        try:
            st = fs.stat(p, follow_symlinks=False)
        except FileNotFoundError:
            return p, None
        except OSError as exc:
            raise storage_error(exc, "stat", p) from exc
        if stat_mod.S_ISLNK(st.st_mode):
            with step("readlink", p):
                link = fs.readlink(p)
            p = os.path.normpath(os.path.join(os.path.dirname(p), link))
            continue
        if stat_mod.S_ISDIR(st.st_mode):
            raise IsADirectoryTargetError(errno.EISDIR, "the target is a directory", p)
        return p, st
    raise storage_error(OSError(errno.ELOOP, "too many levels of symbolic links"), "resolve", p)


class TempFile:
    """A temp sibling of ``target`` that becomes ``target`` on :meth:`commit` (blocking calls).

    The temp file's identity (device and inode) is kept from its creation: the rename and
    :meth:`discard` act on the name only while it is still that file. A temp file removed
    meanwhile (a sweep, another process) fails the commit; one replaced by another file (or
    whose directory was replaced, say by a copy) fails it with
    :class:`~aiostore.errors.CorruptionError` and is left as it is — the data written through
    the open descriptor is not what that name holds, so publishing it would report a success
    for bytes that are not there.
    """

    def __init__(self, fs: FileSystem, path: str, *, overwrite: bool, durable: bool,
                 mode: int | None) -> None:
        self.fs = fs
        self.overwrite = overwrite
        self.durable = durable
        self.synced = False  # set once its fsync succeeded
        self.target, existing = resolve_target(fs, path)
        if TEMP_NAME.match(os.path.basename(self.target)):
            # the temp names are aiostore's alone: sweep_temp_files removes them, so a file
            # published under one would be swept as a dead writer's temp file
            raise InvalidArgumentError(f"{self.target}: names of the form .<name>.<pid>.<8 hex>"
                                       f"{TEMP_SUFFIX} are reserved for aiostore's temp files")
        if existing is not None and not overwrite:
            raise AlreadyExistsError(errno.EEXIST, "the target exists and overwrite=False",
                                     self.target)
        self.path = temp_name(self.target)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            with step("create temp file", self.path):
                self.fd: int | None = fs.open(self.path, flags, 0o666)
        except FileNotFoundError:  # a missing parent: create the chain, then retry
            ensure_dirs(fs, os.path.dirname(self.target), durable)
            with step("create temp file", self.path):
                self.fd = fs.open(self.path, flags, 0o666)
        self.identity: tuple[int, int] | None = None
        try:
            with step("stat temp file", self.path):
                st = fs.fstat(self.fd)
            self.identity = (st.st_dev, st.st_ino)
            final_mode = mode if mode is not None else (
                stat_mod.S_IMODE(existing.st_mode) if existing is not None else None)
            if final_mode is not None:
                with step("chmod", self.path):
                    fs.fchmod(self.fd, final_mode)
        except BaseException:
            self.discard()
            raise

    def write(self, data: Buffer) -> None:
        """Append ``data`` to the temp file."""
        assert self.fd is not None
        with step("write", self.path):
            self.fs.write(self.fd, data)

    def write_all(self, chunks: Iterable[Buffer], abort: Abort | None = None) -> None:
        """Append every chunk, checking ``abort`` between chunks."""
        for chunk in chunks:
            if abort is not None:
                abort.check()
            self.write(chunk)

    def sync(self) -> None:
        """Make the temp file's data durable (no-op unless ``durable``); discard on failure."""
        if not self.durable or self.synced:
            return
        assert self.fd is not None
        try:
            with step("fsync", self.path, durability=True):
                self.fs.fsync(self.fd)
        except BaseException:
            self.discard()
            raise
        self.synced = True

    def rename(self, abort: Abort | None = None) -> None:
        """Close and rename onto the target: the point of no return. Discard on failure."""
        fs = self.fs
        try:
            assert self.fd is not None
            fd, self.fd = self.fd, None
            with step("close", self.path):
                fs.close(fd)
            if abort is not None:
                abort.check()
            self.check_own()
            if self.overwrite:
                with step("rename", self.target):
                    fs.replace(self.path, self.target)
            else:
                try:
                    with step("publish", self.target):
                        fs.rename_noreplace(self.path, self.target)
                except FileExistsError as exc:
                    raise AlreadyExistsError(errno.EEXIST, "the target exists and "
                                             "overwrite=False", self.target) from exc
        except BaseException:
            self.discard()
            raise

    def _own(self) -> bool | None:
        """Whether the temp name still holds the file created (None: the name is gone)."""
        with step("stat temp file", self.path):
            try:
                st = self.fs.stat(self.path, follow_symlinks=False)
            except FileNotFoundError:
                return None
        return self.identity is not None and (st.st_dev, st.st_ino) == self.identity

    def check_own(self) -> None:
        """Raise unless the temp name still holds the file this object created and wrote."""
        own = self._own()
        if own is None:
            raise NotFoundError(errno.ENOENT, "the temp file was removed before the commit (by "
                                "sweep_temp_files or another process); nothing was published",
                                self.path)
        if not own:
            raise CorruptionError(f"{self.path} is no longer the temp file this write created "
                                  "(it, or its directory, was replaced); nothing was published "
                                  "and that file was left as it is")

    def sync_directory(self) -> None:
        """Make the rename durable (shared directory fsync); no-op unless ``durable``."""
        if self.durable:
            directory = os.path.dirname(self.target)
            with step("fsync directory (the new content is visible but may not survive a "
                      "crash)", directory, durability=True):
                sync_dir(self.fs, directory)

    def commit(self, abort: Abort | None = None) -> None:
        """fsync, rename onto the target (the point of no return), fsync the directory.

        On failure before the rename the temp file is removed and the target is untouched.
        """
        self.sync()
        self.rename(abort)
        self.sync_directory()

    def discard(self) -> None:
        """Close and remove the temp file; never raises (best effort clean-up). The name is
        removed only while it holds the file this object created: a file that replaced it
        is someone else's and stays."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(Exception):
                self.fs.close(fd)
        with contextlib.suppress(Exception):
            if self._own():
                self.fs.unlink(self.path)


def publish(fs: FileSystem, path: str, chunks: Iterable[Buffer], *, overwrite: bool,
            durable: bool, mode: int | None, abort: Abort | None = None) -> str:
    """The whole recipe in one call: returns the path written (symlinks resolved)."""
    tmp = TempFile(fs, path, overwrite=overwrite, durable=durable, mode=mode)
    try:
        tmp.write_all(chunks, abort)
    except BaseException:
        tmp.discard()
        raise
    tmp.commit(abort)
    return tmp.target


class PublishRequest:
    """One whole-file write in a batch run by :func:`publish_many`."""

    __slots__ = ("abort", "durable", "encode", "error", "mode", "overwrite", "path", "tmp")

    def __init__(self, path: str, encode: Callable[[], Iterable[Buffer]], *, overwrite: bool,
                 durable: bool, mode: int | None) -> None:
        self.path = path
        self.encode = encode
        self.overwrite = overwrite
        self.durable = durable
        self.mode = mode
        self.abort = Abort()
        self.error: BaseException | None = None
        self.tmp: TempFile | None = None


def publish_many(fs: FileSystem, requests: list[PublishRequest]) -> None:
    """Run several whole-file writes in one hop, sharing their durability barriers.

    Each request ends with ``error`` None (published) or set (its target untouched, its temp
    removed — or, for a failed directory fsync, published but not durable). With two or more
    durable writes, every temp file's write-back is started and awaited together first, so the
    first fsync commits the journal for all of them and the fsyncs that follow are cheap (one
    journal commit per batch instead of one per file). Every file is still fsynced — that, not
    the write-back hint, is the durability barrier, and it reports the file's own errors.
    Renames follow, then one directory fsync per directory.
    """
    live: list[PublishRequest] = []
    for req in requests:
        try:
            req.abort.check()  # cancelled before its batch started: nothing happens
            chunks = req.encode()
            req.tmp = TempFile(fs, req.path, overwrite=req.overwrite, durable=req.durable,
                               mode=req.mode)
            req.tmp.write_all(chunks, req.abort)
            live.append(req)
        except BaseException as exc:
            req.error = exc
            if req.tmp is not None:
                req.tmp.discard()
    durable = [r for r in live if r.durable]
    if len(durable) > 1:
        for wait in (False, True):  # start every write-back, then wait for all of them
            for req in durable:
                if req.error is None:
                    try:
                        assert req.tmp is not None and req.tmp.fd is not None
                        with step("write back", req.tmp.path, durability=True):
                            fs.writeback(req.tmp.fd, wait=wait)
                    except BaseException as exc:
                        req.error = exc
                        assert req.tmp is not None
                        req.tmp.discard()
    for req in durable:
        if req.error is None:
            try:
                assert req.tmp is not None
                req.tmp.sync()
            except BaseException as exc:
                req.error = exc
    renamed: list[PublishRequest] = []
    for req in live:
        if req.error is None:
            try:
                assert req.tmp is not None
                req.tmp.rename(req.abort)
                renamed.append(req)
            except BaseException as exc:
                req.error = exc
    by_dir: dict[str, list[PublishRequest]] = {}
    for req in renamed:
        if req.durable:
            assert req.tmp is not None
            by_dir.setdefault(os.path.dirname(req.tmp.target), []).append(req)
    for reqs in by_dir.values():  # one (shared) directory fsync covers every rename into it
        try:
            assert reqs[0].tmp is not None
            reqs[0].tmp.sync_directory()
        except BaseException as exc:
            for req in reqs:
                req.error = exc
