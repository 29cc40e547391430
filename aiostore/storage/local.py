"""``LocalStorage``: the storage contract over a local directory.

Objects are files below the root; every write is the durable publish recipe (temp sibling,
fsync, rename, directory fsync), one worker hop each. The commit point of every put, copy and
delete — the rename or unlink, with its condition checked just before — runs under an
exclusive lock (a thread lock plus ``flock`` on ``ROOT/.aiostore.lock``), so that
``if_match`` compare-and-swap is exact against concurrent writers in any process, and
``if_none_match`` is a no-clobber rename (``renameat2(RENAME_NOREPLACE)``).

Keys never leave the root: they are validated (no ``..``), and the resolved path (symlinks
followed) must lie inside the resolved root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from datetime import datetime, timezone

from .._io.base import Buffer, current_fs
from .._io.groupsync import sync_dir
from .._io.offload import run_commit, run_sync
from .._io.ops import ensure_dirs, real_path, step
from .._io.publish import TEMP_NAME, TempFile
from ..errors import (
    AlreadyExistsError,
    ClosedError,
    InvalidKeyError,
    NotFoundError,
    PreconditionFailedError,
)
from .base import (
    Data,
    ObjectInfo,
    ObjectWriter,
    Storage,
    check_byte_range,
    check_key,
    check_prefix,
)

__all__ = ["LocalStorage"]

LOCK_NAME = ".aiostore.lock"
_CHUNK = 8 << 20  # streaming writes: buffered up to this much per worker hop


def _etag(st: os.stat_result) -> str:
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key=key, size=st.st_size, etag=_etag(st),
                      mtime=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc))


class LocalStorage(Storage):
    """Objects as files below the directory ``root`` (created on the first write)."""

    def __init__(self, root: str) -> None:
        root = os.path.abspath(root)
        super().__init__(root)
        self.root = root
        self._fs = current_fs()
        self._real_root: str | None = None
        self._thread_lock = threading.Lock()

    # --- paths -----------------------------------------------------------------------------
    def _path(self, key: str) -> str:
        """The file of ``key`` (blocking: resolves symlinks to check it stays inside)."""
        check_key(key)
        if self._real_root is None:
            self._real_root = real_path(self._fs, self.root)
        full = os.path.join(self.root, *key.split("/"))
        real = real_path(self._fs, full, known=(self.root, self._real_root))
        if real != self._real_root and not real.startswith(self._real_root + os.sep):
            raise InvalidKeyError(f"{key!r} resolves outside the storage root {self.root} "
                                  f"(through a symbolic link)")
        return full

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive against every other writer of this root, in any process (blocking)."""
        fs = self._fs
        with self._thread_lock:
            lock_path = os.path.join(self.root, LOCK_NAME)
            try:
                with step("open lock file", lock_path):
                    fd = fs.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except NotFoundError:  # the root does not exist yet
                ensure_dirs(fs, self.root, durable=True)
                with step("open lock file", lock_path):
                    fd = fs.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                with step("lock", lock_path):
                    fs.lock(fd, exclusive=True, blocking=True)
                yield
            finally:
                fs.close(fd)  # (closing releases the flock)

    def _stat(self, path: str, key: str) -> os.stat_result:
        try:
            with step("stat", path):
                st = self._fs.stat(path)
        except NotFoundError:
            raise NotFoundError(errno.ENOENT, f"no object {key!r}", path) from None
        if not stat_mod.S_ISREG(st.st_mode):
            raise NotFoundError(errno.ENOENT, f"no object {key!r} (not a file)", path)
        return st

    # --- the commit point --------------------------------------------------------------------
    def _publish(self, tmp: TempFile, key: str, if_match: str | None) -> ObjectInfo:
        """fsync the temp file, then under the lock check the condition and rename (blocking)."""
        tmp.sync()
        try:
            with self._locked():
                if if_match is not None:
                    try:
                        current = _etag(self._stat(tmp.target, key))
                    except NotFoundError:
                        current = None
                    if current != if_match:
                        raise PreconditionFailedError(
                            f"{key!r}: if_match={if_match!r} but the object is "
                            f"{'missing' if current is None else current!r}")
                tmp.rename()
                # still under the lock: the info (ETag) of the file this put published, not
                # of one a concurrent writer may publish right after the lock is released
                info = _info(key, self._stat(tmp.target, key))
        except AlreadyExistsError:
            raise PreconditionFailedError(f"{key!r} exists (if_none_match)") from None
        except BaseException:
            tmp.discard()
            raise
        tmp.sync_directory()
        return info

    def _temp(self, key: str, if_none_match: bool) -> TempFile:
        path = self._path(key)
        try:
            return TempFile(self._fs, path, overwrite=not if_none_match, durable=True, mode=None)
        except AlreadyExistsError:
            raise PreconditionFailedError(f"{key!r} exists (if_none_match)") from None

    # --- the contract ------------------------------------------------------------------------
    async def put(self, key: str, data: Data, *, if_none_match: bool = False,
                  if_match: str | None = None) -> ObjectInfo:
        """See :meth:`Storage.put`. One worker hop for bytes-like data or a sync iterable;
        an async iterable streams through :meth:`open_writer`.

        Cancellation: before the rename, the temp file is removed and nothing changes; once
        the rename has started the put completes, then the cancellation propagates.
        """
        self._check_open()
        check_key(key)
        if isinstance(data, AsyncIterable):
            async with self.open_writer(key, if_none_match=if_none_match,
                                        if_match=if_match) as writer:
                async for chunk in data:
                    await writer.write(chunk)
            assert isinstance(writer, _LocalWriter) and writer.info is not None
            return writer.info
        chunks: Iterable[Buffer] = [data] if isinstance(data, (bytes, bytearray, memoryview)) \
            else data

        def job() -> ObjectInfo:
            tmp = self._temp(key, if_none_match)
            try:
                tmp.write_all(chunks)
            except BaseException:
                tmp.discard()
                raise
            return self._publish(tmp, key, if_match)

        info: ObjectInfo = await run_commit(job)
        return info

    async def get(self, key: str, *, byte_range: tuple[int, int | None] | None = None
                  ) -> bytes:
        """See :meth:`Storage.get` (one worker hop). Cancellation: safe at any point."""
        self._check_open()
        check_key(key)
        window = check_byte_range(byte_range)
        fs = self._fs

        def job() -> bytes:
            path = self._path(key)
            self._stat(path, key)
            try:
                with step("open", path):
                    fd = fs.open(path, os.O_RDONLY)
            except NotFoundError:
                raise NotFoundError(errno.ENOENT, f"no object {key!r}", path) from None
            try:
                with step("read", path):
                    size = fs.fstat(fd).st_size
                    start, stop = window if window is not None else (0, None)
                    stop = size if stop is None else min(stop, size)
                    parts = []
                    at = start
                    while at < stop:
                        chunk = fs.pread(fd, stop - at, at)
                        if not chunk:
                            break
                        parts.append(chunk)
                        at += len(chunk)
                    return b"".join(parts)
            finally:
                fs.close(fd)

        data: bytes = await run_sync(job)
        return data

    async def head(self, key: str) -> ObjectInfo:
        """See :meth:`Storage.head`."""
        self._check_open()
        check_key(key)

        def job() -> ObjectInfo:
            return _info(key, self._stat(self._path(key), key))

        info: ObjectInfo = await run_sync(job)
        return info

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """See :meth:`Storage.list`: one worker hop walks the tree below the prefix."""
        self._check_open()
        check_prefix(prefix)
        fs = self._fs

        def walk() -> list[ObjectInfo]:
            base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
            start = self._path(base) if base else self.root
            found: list[ObjectInfo] = []
            stack = [(start, base)]
            while stack:
                directory, rel = stack.pop()
                try:
                    with step("list", directory):
                        names = fs.listdir(directory)
                except (NotFoundError, NotADirectoryError):
                    continue
                for name in names:
                    if name == LOCK_NAME or TEMP_NAME.match(name):
                        continue
                    key = f"{rel}/{name}" if rel else name
                    if not (key.startswith(prefix) or prefix.startswith(key + "/")):
                        continue
                    full = os.path.join(directory, name)
                    try:
                        with step("stat", full):
                            st = fs.stat(full, follow_symlinks=False)
                        if stat_mod.S_ISLNK(st.st_mode):
                            try:  # listed only while it leads to a place inside the root
                                self._path(key)
                            except InvalidKeyError:
                                continue
                            with step("stat", full):
                                st = fs.stat(full)
                    except NotFoundError:
                        continue  # removed meanwhile, or a dangling link
                    if stat_mod.S_ISDIR(st.st_mode):
                        stack.append((full, key))
                    elif stat_mod.S_ISREG(st.st_mode) and key.startswith(prefix):
                        found.append(_info(key, st))
            found.sort(key=lambda info: info.key.encode("utf-8", "surrogatepass"))
            return found

        for info in await run_sync(walk):
            yield info

    async def delete(self, key: str) -> None:
        """See :meth:`Storage.delete`: unlink under the lock, then fsync the directory."""
        self._check_open()
        check_key(key)
        fs = self._fs

        def job() -> None:
            path = self._path(key)
            with self._locked():
                try:
                    with step("delete", path):
                        fs.unlink(path)
                except NotFoundError:
                    return
            with step("fsync directory", os.path.dirname(path), durability=True):
                sync_dir(fs, os.path.dirname(path))

        await run_commit(job)

    async def copy(self, src: str, dst: str) -> ObjectInfo:
        """See :meth:`Storage.copy`: streamed into a temp file, then published (one hop)."""
        self._check_open()
        check_key(src)
        check_key(dst)
        fs = self._fs

        def job() -> ObjectInfo:
            source = self._path(src)
            self._stat(source, src)
            with step("open", source):
                fd = fs.open(source, os.O_RDONLY)
            try:
                tmp = self._temp(dst, False)
                try:
                    at = 0
                    while True:
                        with step("read", source):
                            chunk = fs.pread(fd, _CHUNK, at)
                        if not chunk:
                            break
                        tmp.write(chunk)
                        at += len(chunk)
                except BaseException:
                    tmp.discard()
                    raise
            finally:
                fs.close(fd)
            return self._publish(tmp, dst, None)

        info: ObjectInfo = await run_commit(job)
        return info

    def open_writer(self, key: str, *, if_none_match: bool = False,
                    if_match: str | None = None) -> ObjectWriter:
        """See :meth:`Storage.open_writer`: a temp file filled in hops of up to 8 MiB."""
        self._check_open()
        check_key(key)
        return _LocalWriter(self, key, if_none_match, if_match)


class _LocalWriter(ObjectWriter):
    """Chunks buffered on the loop and written to a temp file one hop per 8 MiB; close()
    publishes with the condition; abort() (or an error) removes the temp file."""

    def __init__(self, storage: LocalStorage, key: str, if_none_match: bool,
                 if_match: str | None) -> None:
        self.storage = storage
        self.key = key
        self.if_none_match = if_none_match
        self.if_match = if_match
        self.tmp: TempFile | None = None
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.done = False
        self.info: ObjectInfo | None = None

    def _drain(self) -> None:
        """Blocking: create the temp file if needed and write what is pending."""
        if self.tmp is None:
            self.tmp = self.storage._temp(self.key, self.if_none_match)
        chunks, self.pending, self.pending_bytes = self.pending, [], 0
        try:
            self.tmp.write_all(chunks)
        except BaseException:
            self.tmp.discard()
            self.done = True
            raise

    async def write(self, data: Buffer) -> None:
        """Buffer ``data``; every 8 MiB one worker hop writes it to the temp file."""
        if self.done:
            raise ClosedError(f"the writer of {self.key!r} is closed")
        self.pending.append(bytes(data))
        self.pending_bytes += len(self.pending[-1])
        if self.pending_bytes >= _CHUNK:
            await run_commit(self._drain)

    async def close(self) -> ObjectInfo:
        """Write the rest and publish (condition checked at the rename).

        Cancellation: as :meth:`LocalStorage.put`."""
        if self.done:
            if self.info is not None:
                return self.info
            raise ClosedError(f"the writer of {self.key!r} is closed")

        def finish() -> ObjectInfo:
            self._drain()
            assert self.tmp is not None
            return self.storage._publish(self.tmp, self.key, self.if_match)

        try:
            self.info = await run_commit(finish)
        finally:
            self.done = True
        return self.info

    async def abort(self) -> None:
        """Remove the temp file; nothing is published."""
        if self.done:
            return
        self.done = True
        tmp = self.tmp
        if tmp is not None:
            await run_commit(tmp.discard)
