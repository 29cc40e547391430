"""The local cache of a remote store: one file per object, validated by ETag.

Layout, below the cache directory::

    <cache dir>/<ns>/<h[:2]>/<h[2:]>.entry

``ns`` is 16 hex digits of the SHA-256 of the store's root URL (and endpoint), so that stores
sharing a cache directory never share entries; ``h`` is the SHA-256 (hex) of the object key.
An entry file is the object's bytes exactly, followed by a trailer::

    [object bytes][trailer: JSON {"v": 1, "root", "key", "etag", "size"}][u64 LE trailer length]
    [16-byte magic "AIOSTORE-CACHE-1"]

Entries are published with aiostore's publish recipe (temp sibling, fsync, rename), so a
reader — or a process killed mid-download — never sees a partial entry: a download in flight
is a temp file ``.<name>.<pid>.<8 hex>.aiostore-tmp`` until its rename.

* **Validation**: an entry is served only if its trailer's ETag equals the ETag the store
  reports now (from the listing that resolved the key, or a ``head``) — never by age. With
  ``ttl``, an entry validated less than ``ttl`` seconds ago is served without asking the
  store (the user accepted that staleness).
* **Times**: an entry's mtime is when it was last validated (or written); its atime when it
  was last served (both set explicitly, whatever the mount's atime policy).
* **Eviction**: with ``max_bytes``, the least recently served entries are removed until the
  total fits; an object larger than ``max_bytes`` is not cached.
* **Ownership**: cleanup and eviction remove only files that are provably entries of this
  store — the name pattern, the magic, a trailer naming this root and a key whose hash is
  the file's name — and temp files of entries whose writer is dead. Nothing else in the cache
  directory is ever touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat as stat_mod
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import anyio

from .._io.base import Buffer, current_fs
from .._io.offload import run_commit, run_sync
from .._io.publish import TEMP_NAME, TempFile
from ..errors import NotFoundError, StorageError
from ..storage.base import ObjectInfo, Storage
from .fetch import RANGE_SIZE
from .gather import gather
from .locks import KeyLocks

__all__ = ["Cache", "EntryWriter", "default_cache_dir"]

log = logging.getLogger("aiostore.store")

MAGIC = b"AIOSTORE-CACHE-1"
_FOOTER = struct.Struct("<Q16s")
_MAX_TRAILER = 1 << 16
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_ENTRY = re.compile(r"^[0-9a-f]{62}\.entry$")
_ENTRY_TEMP = re.compile(r"^\.([0-9a-f]{62}\.entry)\.(\d+)\.[0-9a-f]{8}\.aiostore-tmp$")
#: a temp file of a writer whose process may still live is removed only past this age
_STALE_TEMP_SECONDS = 3600.0


def default_cache_dir() -> str:
    """``$AIOSTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/aiostore``, else
    ``~/.cache/aiostore``."""
    explicit = os.environ.get("AIOSTORE_CACHE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "aiostore")


@dataclass(frozen=True)
class _Meta:
    """An entry's trailer."""

    key: str
    etag: str
    size: int
    trailer: int  # bytes after the object's data (trailer + footer)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_all(fd: int, size: int) -> bytes | bytearray | None:
    """The first ``size`` bytes of ``fd``: ``bytes`` when small, else a ``bytearray`` read in
    place (as :func:`~aiostore.store.fetch.fetch` returns them); None if the file is short."""
    if size <= RANGE_SIZE:
        data = os.pread(fd, size, 0)
        return data if len(data) == size else None
    buf = bytearray(size)
    with open(fd, "rb", buffering=0, closefd=False) as f, memoryview(buf) as view:
        at = 0
        while at < size:
            n = f.readinto(view[at:])
            if not n:
                return None
            at += n
    return buf


class Cache:
    """The cache of one store root (``root_id``) in ``directory``; see the module docstring."""

    def __init__(self, directory: str, root_id: str, *, ttl: float | None,
                 max_bytes: int | None) -> None:
        self.directory = os.path.abspath(directory)
        self.root_id = root_id
        self.ns_dir = os.path.join(self.directory,
                                   hashlib.sha256(root_id.encode()).hexdigest()[:16])
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.downloads = KeyLocks()
        self._fs = current_fs()
        self._total: int | None = None  # bytes in entries (None: not counted yet)

    # --- names -----------------------------------------------------------------------------
    def path(self, key: str) -> str:
        """The entry file of object ``key``."""
        h = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return os.path.join(self.ns_dir, h[:2], h[2:] + ".entry")

    def fits(self, size: int) -> bool:
        """Whether an object of ``size`` bytes may be cached."""
        return self.max_bytes is None or size <= self.max_bytes

    # --- reading (blocking helpers run in a worker) ----------------------------------------
    def _meta(self, fd: int, size: int) -> _Meta | None:
        """The trailer of the open entry file of ``size`` bytes, or None if it is not a valid
        entry of this root."""
        if size < _FOOTER.size:
            return None
        footer = os.pread(fd, _FOOTER.size, size - _FOOTER.size)
        if len(footer) != _FOOTER.size:
            return None
        length, magic = _FOOTER.unpack(footer)
        if magic != MAGIC or length > _MAX_TRAILER or length + _FOOTER.size > size:
            return None
        raw = os.pread(fd, length, size - _FOOTER.size - length)
        try:
            doc = json.loads(raw)
            meta = _Meta(str(doc["key"]), str(doc["etag"]), int(doc["size"]),
                         length + _FOOTER.size)
            root = doc["root"]
        except (ValueError, KeyError, TypeError):
            return None
        if doc.get("v") != 1 or root != self.root_id or meta.size + meta.trailer != size:
            return None
        return meta

    def _open_entry(self, path: str, key: str | None) -> tuple[int, os.stat_result, _Meta
                                                                ] | None:
        """(fd, stat, trailer) of a valid entry at ``path`` (for object ``key`` if given:
        its hash must be the file's name), else None. The caller closes the fd."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            st = os.fstat(fd)
            meta = self._meta(fd, st.st_size) if stat_mod.S_ISREG(st.st_mode) else None
            if meta is None or (key is not None and meta.key != key) \
                    or self.path(meta.key) != path:
                os.close(fd)
                return None
            return fd, st, meta
        except BaseException:
            os.close(fd)
            raise

    def _read(self, key: str, etag: str | None, fresh_for: float | None
              ) -> tuple[bytes | bytearray, str] | None:
        """The entry of ``key``: (data, etag) if valid — with ``etag`` (validation: mark it
        validated now) or within ``fresh_for`` seconds of its last validation."""
        path = self.path(key)
        opened = self._open_entry(path, key)
        if opened is None:
            return None
        fd, st, meta = opened
        try:
            now = time.time()
            if etag is not None:
                if meta.etag != etag:
                    return None
                validated = now
            else:
                assert fresh_for is not None
                if now - st.st_mtime >= fresh_for:
                    return None
                validated = st.st_mtime
            buf = _read_all(fd, meta.size)
            if buf is None:
                return None
            with contextlib.suppress(OSError):  # last served now; validated as decided
                os.utime(fd, (now, validated))
            return buf, meta.etag
        finally:
            os.close(fd)

    async def read(self, info: ObjectInfo) -> bytes | bytearray | None:
        """The cached bytes of ``info.key`` if the entry has ETag ``info.etag`` (it counts as
        validated now), else None. Cancellation: safe."""
        found = await run_sync(self._read, info.key, info.etag, None)
        return None if found is None else found[0]

    async def read_fresh(self, key: str) -> bytes | bytearray | None:
        """The cached bytes of ``key`` if validated less than ``ttl`` ago (no request to the
        store), else None. Cancellation: safe."""
        if self.ttl is None:
            return None
        found = await run_sync(self._read, key, None, self.ttl)
        return None if found is None else found[0]

    # --- writing ---------------------------------------------------------------------------
    def _trailer(self, info: ObjectInfo) -> bytes:
        doc = json.dumps({"v": 1, "root": self.root_id, "key": info.key, "etag": info.etag,
                          "size": info.size}, separators=(",", ":")).encode()
        return doc + _FOOTER.pack(len(doc), MAGIC)

    async def store(self, info: ObjectInfo, chunks: Sequence[Buffer]) -> None:
        """Publish ``chunks`` (the whole object, ``info.size`` bytes) as the entry of
        ``info.key`` at ``info.etag``. A failure is logged, not raised (the cache is an
        optimisation; a stale entry never validates). Cancellation: the entry is written or
        not, whole (the publish runs to completion or rolls back)."""
        if not self.fits(info.size):
            await self.discard(info.key)
            return
        trailer = self._trailer(info)
        path = self.path(info.key)
        fs = self._fs

        def job() -> None:
            tmp = TempFile(fs, path, overwrite=True, durable=True, mode=None)
            try:
                tmp.write_all([*chunks, trailer])
            except BaseException:
                tmp.discard()
                raise
            tmp.commit()

        try:
            await run_commit(job)
        except StorageError as exc:
            log.warning("cache: could not store %s: %s", info.key, exc)
            await self.discard(info.key)
            return
        await self._added(info.size)

    def writer(self, key: str) -> EntryWriter:
        """A streaming writer of the entry of ``key`` (see :class:`EntryWriter`)."""
        return EntryWriter(self, key)

    async def _added(self, size: int) -> None:
        if self.max_bytes is None:
            return
        if self._total is not None:
            self._total += size
            if self._total <= self.max_bytes:
                return
        await run_commit(self._evict)

    def _shard_dirs(self) -> list[str]:
        """This namespace's shard directories (blocking; through the I/O core)."""
        try:
            shards = self._fs.listdir(self.ns_dir)
        except FileNotFoundError:
            return []
        return [os.path.join(self.ns_dir, shard) for shard in shards if _SHARD.match(shard)]

    def _files(self, pattern: re.Pattern[str]) -> Iterator[tuple[re.Match[str], str,
                                                                   os.stat_result]]:
        """(match, path, lstat) of every regular file in this namespace's shard directories
        whose name matches ``pattern`` (blocking; through the I/O core)."""
        fs = self._fs
        for directory in self._shard_dirs():
            try:
                names = fs.listdir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                m = pattern.match(name)
                if m is None:
                    continue
                path = os.path.join(directory, name)
                try:
                    st = fs.stat(path, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat_mod.S_ISREG(st.st_mode):
                    yield m, path, st

    def _scan(self) -> list[tuple[float, int, str]]:
        """(atime, size, path) of every file named like an entry of this namespace."""
        return [(st.st_atime, st.st_size, path) for _, path, st in self._files(_ENTRY)]

    def _remove_entry(self, path: str) -> bool:
        """Remove ``path`` if it is provably an entry of this store (blocking)."""
        opened = self._open_entry(path, None)
        if opened is None:
            return False
        fd, st, _ = opened
        os.close(fd)
        try:
            current = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if (current.st_dev, current.st_ino) != (st.st_dev, st.st_ino):
            return False  # replaced meanwhile: that file was not checked
        try:
            self._fs.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def _evict(self) -> None:
        """Remove the least recently served entries until the total fits (blocking)."""
        assert self.max_bytes is not None
        entries = sorted(self._scan())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            if self._remove_entry(path):
                total -= size
        self._total = total

    async def discard(self, key: str) -> None:
        """Remove the entry of ``key``, if any. Cancellation: completes first."""
        path = self.path(key)

        def job() -> None:
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                return
            if self._remove_entry(path) and self._total is not None:
                self._total -= size

        with contextlib.suppress(StorageError, OSError):
            await run_commit(job)

    # --- cleanup ---------------------------------------------------------------------------
    async def cleanup(self, storage: Storage, *, unused_for: float | None) -> int:
        """Remove the entries that can never be served again — their object is gone or was
        changed (another ETag) — those not served for ``unused_for`` seconds (when given),
        and the temp files of dead downloads. Returns the number of files removed.

        Cancellation: stops between entries; what was removed stays removed."""
        entries = await run_sync(self._entries)
        removed = 0
        now = time.time()
        slots = anyio.Semaphore(16)
        doomed: list[str] = []

        async def check(path: str, key: str, etag: str, atime: float) -> None:
            if unused_for is not None and now - atime >= unused_for:
                doomed.append(path)
                return
            async with slots:
                try:
                    info = await storage.head(key)
                except NotFoundError:
                    doomed.append(path)
                    return
            if info.etag != etag:
                doomed.append(path)

        await gather(*[partial(check, *entry) for entry in entries])
        removed += await run_commit(self._remove_all, doomed)
        removed += await run_commit(self._sweep_temps)
        self._total = None
        return removed

    def _entries(self) -> list[tuple[str, str, str, float]]:
        """(path, key, etag, atime) of every valid entry of this namespace (blocking)."""
        out = []
        for atime, _, path in self._scan():
            opened = self._open_entry(path, None)
            if opened is None:
                continue
            fd, _, meta = opened
            os.close(fd)
            out.append((path, meta.key, meta.etag, atime))
        return out

    def _remove_all(self, paths: list[str]) -> int:
        return sum(1 for p in paths if self._remove_entry(p))

    def _sweep_temps(self) -> int:
        """Remove temp files of entries whose writer is dead (or silent for an hour), then
        empty shard directories (blocking)."""
        removed = 0
        now = time.time()
        for m, path, st in self._files(_ENTRY_TEMP):
            if not TEMP_NAME.match(os.path.basename(path)):
                continue
            dead = int(m.group(2)) != os.getpid() and not _pid_alive(int(m.group(2)))
            if dead or now - st.st_mtime >= _STALE_TEMP_SECONDS:
                with contextlib.suppress(FileNotFoundError):
                    self._fs.unlink(path)
                    removed += 1
        for directory in self._shard_dirs():
            with contextlib.suppress(OSError):
                self._fs.rmdir(directory)  # only if empty
        return removed


class EntryWriter:
    """The entry of one object, written while the object is uploaded (a ``set`` through the
    store): :meth:`write` is called from the encoding worker thread with each chunk;
    :meth:`commit` publishes the entry once the store has accepted the object (its ETag is
    known then); :meth:`discard` drops it. An object that outgrows ``max_bytes`` is dropped
    as it goes."""

    def __init__(self, cache: Cache, key: str) -> None:
        self.cache = cache
        self.key = key
        self._tmp: TempFile | None = None
        self._size = 0
        self._dropped = False

    def write(self, chunk: Buffer) -> None:
        """Append ``chunk`` (blocking: called in a worker thread). Never raises: a cache
        failure drops the entry."""
        if self._dropped:
            return
        try:
            size = memoryview(chunk).nbytes
            self._size += size
            if not self.cache.fits(self._size):
                self._drop()
                return
            if self._tmp is None:
                self._tmp = TempFile(self.cache._fs, self.cache.path(self.key), overwrite=True,
                                     durable=True, mode=None)
            self._tmp.write(chunk)
        except StorageError as exc:
            log.warning("cache: could not store %s: %s", self.key, exc)
            self._drop()

    def _drop(self) -> None:
        self._dropped = True
        if self._tmp is not None:
            self._tmp.discard()
            self._tmp = None

    async def commit(self, info: ObjectInfo) -> None:
        """Publish the entry at ``info.etag`` (or remove the old one if this one was
        dropped). Cancellation: the publish completes or rolls back."""
        tmp = self._tmp
        if self._dropped or info.size != self._size or (tmp is None and info.size):
            await self.discard()
            await self.cache.discard(self.key)
            return
        trailer = self.cache._trailer(info)
        fs = self.cache._fs
        path = self.cache.path(self.key)

        def job() -> None:
            target = tmp if tmp is not None else TempFile(fs, path, overwrite=True,
                                                          durable=True, mode=None)
            try:
                target.write(trailer)
            except BaseException:
                target.discard()
                raise
            target.commit()

        self._tmp = None
        try:
            await run_commit(job)
        except StorageError as exc:
            log.warning("cache: could not store %s: %s", self.key, exc)
            await self.cache.discard(self.key)
            return
        await self.cache._added(info.size)

    async def discard(self) -> None:
        """Drop the temp file, if any. Cancellation: completes first."""
        tmp, self._tmp = self._tmp, None
        self._dropped = True
        if tmp is not None:
            await run_commit(tmp.discard)
