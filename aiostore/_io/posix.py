"""The real file system: thin wrappers over ``os`` with the few calls Python lacks."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
from collections.abc import Sequence

from .base import Buffer, FileSystem

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_IOV_MAX = 1024
_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - non-glibc platforms
        return None


_libc = _load_libc()
_renameat2 = getattr(_libc, "renameat2", None) if _libc is not None else None
if _renameat2 is not None:
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
    _renameat2.restype = ctypes.c_int
_sync_file_range = getattr(_libc, "sync_file_range", None) if _libc is not None else None
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    _sync_file_range.restype = ctypes.c_int
_SFR_WAIT_BEFORE, _SFR_WRITE, _SFR_WAIT_AFTER = 1, 2, 4
_fallocate = getattr(_libc, "fallocate64", None) if _libc is not None else None
if _fallocate is not None:
    _fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    _fallocate.restype = ctypes.c_int


class PosixFileSystem(FileSystem):
    """The operating system's file system (Linux first, any POSIX system works)."""

    def __init__(self) -> None:
        self._renameat2_ok = _renameat2 is not None
        self._punch_ok = _fallocate is not None

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        return os.open(path, flags | os.O_CLOEXEC, mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def write(self, fd: int, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def pwritev(self, fd: int, buffers: Sequence[Buffer], offset: int) -> None:
        pending = [b if type(b) is bytes else memoryview(b).cast("B") for b in buffers]
        while pending:
            batch = pending[:_IOV_MAX]
            n = os.pwritev(fd, batch, offset)
            offset += n
            if n == sum(map(len, batch)):  # the usual case: all of it
                pending = pending[len(batch):]
                continue
            # drop fully written buffers, keep the rest of a partly written one
            i = 0
            while i < len(batch) and n >= len(batch[i]):
                n -= len(batch[i])
                i += 1
            pending = pending[i:]
            if n:
                pending[0] = pending[0][n:]

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        data = os.pread(fd, size, offset)
        if len(data) == size or not data:
            return data
        # a short read is the end of the file, or an interrupted read: ask for the rest
        parts = [data]
        got = len(data)
        while got < size:
            more = os.pread(fd, size - got, offset + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def pread_nowait(self, fd: int, size: int, offset: int) -> bytes | None:
        if not _NOWAIT:
            return None
        buf = bytearray(size)
        try:
            n = os.preadv(fd, [buf], offset, _NOWAIT)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return None
            raise
        # RWF_NOWAIT stops at the first page that is not cached: a short count is not the end
        # of the file, and trusting it made reads of intact items fail as "past the end of
        # the segment" (issue 11). Only a complete read is an answer; anything else goes to
        # the worker pool, whose blocking pread tells a real end of file.
        return bytes(buf) if n == size else None

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def fstat(self, fd: int) -> os.stat_result:
        return os.fstat(fd)

    def fchmod(self, fd: int, mode: int) -> None:
        os.fchmod(fd, mode)

    def ftruncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def punch_hole(self, fd: int, offset: int, length: int) -> bool:
        if not self._punch_ok or length <= 0:
            return False
        assert _fallocate is not None
        rc = _fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length)
        if rc == 0:
            return True
        err = ctypes.get_errno()
        if err in (errno.EOPNOTSUPP, errno.ENOSYS):
            return False
        raise OSError(err, os.strerror(err))

    def lock(self, fd: int, *, exclusive: bool = True, blocking: bool = False) -> None:
        op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        fcntl.flock(fd, op if blocking else op | fcntl.LOCK_NB)

    def stat(self, path: str, *, follow_symlinks: bool = True) -> os.stat_result:
        return os.stat(path, follow_symlinks=follow_symlinks)

    def readlink(self, path: str) -> str:
        return os.readlink(path)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        os.mkdir(path, mode)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def rename_noreplace(self, src: str, dst: str) -> None:
        if self._renameat2_ok:
            assert _renameat2 is not None
            rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                            _RENAME_NOREPLACE)
            if rc == 0:
                return
            err = ctypes.get_errno()
            if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise OSError(err, os.strerror(err), dst)
            self._renameat2_ok = False  # file system without RENAME_NOREPLACE: use link()
        os.link(src, dst)  # FileExistsError if dst exists; atomic either way
        os.unlink(src)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def writeback(self, fd: int, *, wait: bool) -> None:
        if _sync_file_range is None:  # pragma: no cover - non-Linux
            return
        flags = _SFR_WAIT_BEFORE | _SFR_WRITE | _SFR_WAIT_AFTER if wait else _SFR_WRITE
        if _sync_file_range(fd, 0, 0, flags) != 0:
            err = ctypes.get_errno()
            if err not in (errno.ENOSYS, errno.EINVAL, errno.ESPIPE):
                raise OSError(err, os.strerror(err))
