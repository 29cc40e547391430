"""Group commit of durability barriers across worker threads.

Two barriers make a publish durable: the temp file's data (before the rename) and the directory
entry (after it). Both are shared by concurrent publishers:

* :func:`sync_dir` — one ``fsync(dir)`` covers every rename into ``dir`` that finished before it
  started, so N concurrent publishers into one directory need about two directory fsyncs.
* :func:`sync_data` — a publisher alone fsyncs its own file; when several publishers on one file
  system wait at once, one ``syncfs()`` makes all their files durable together. Measured here,
  32 new small files cost one 0.8 ms ``syncfs`` instead of 32 journal commits (about 3x the
  throughput of 32 threads fsyncing in parallel). ``syncfs`` is used only on Linux >= 5.8, where
  it reports write-back errors; ``AIOSTORE_GROUP_SYNCFS=0`` turns it off.

The protocol: a waiter takes a ticket. If no barrier is running it becomes the leader and runs
one that covers every ticket issued so far; otherwise it waits for the running one and then
checks whether a later barrier already covered it. A failed barrier fails every ticket it
covered (an fsync error is never retried).
"""

from __future__ import annotations

import os
import platform
import threading
import weakref
from collections.abc import Callable, Hashable

from .base import FileSystem


def _syncfs_usable() -> bool:
    if os.environ.get("AIOSTORE_GROUP_SYNCFS", "1") == "0" or platform.system() != "Linux":
        return False
    try:
        major, minor = (int(x) for x in platform.release().split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 8)


SYNCFS_OK = _syncfs_usable()


class _Barrier:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.issued = 0  # tickets handed out
        self.synced = 0  # every ticket <= synced is settled
        self.running = False
        self.failed: list[tuple[int, int, OSError]] = []  # (first, last ticket, error)

    def sync(self, solo: Callable[[], None], group: Callable[[], None]) -> None:
        with self.cond:
            self.issued += 1
            ticket = self.issued
            while True:
                for first, last, exc in self.failed:
                    if first <= ticket <= last:
                        raise exc
                if self.synced >= ticket:
                    return
                if not self.running:
                    break
                self.cond.wait()
            self.running = True
            first, covers = self.synced + 1, self.issued
        action = solo if first == covers == ticket else group
        error: OSError | None = None
        try:
            action()
        except OSError as exc:
            error = exc
        finally:
            with self.cond:
                self.running = False
                if error is not None:
                    self.failed.append((first, covers, error))
                self.synced = max(self.synced, covers)  # settled, as synced or as failed
                self.cond.notify_all()
        if error is not None:
            raise error


_barriers: weakref.WeakValueDictionary[tuple[str, int, Hashable], _Barrier] = (
    weakref.WeakValueDictionary()
)
_barriers_lock = threading.Lock()


def _barrier(kind: str, fs: FileSystem, key: Hashable) -> _Barrier:
    k = (kind, id(fs), key)
    with _barriers_lock:
        barrier = _barriers.get(k)
        if barrier is None:
            barrier = _Barrier()
            _barriers[k] = barrier
        return barrier


def sync_dir(fs: FileSystem, path: str) -> None:
    """Make every rename into ``path`` that finished before this call durable (shared fsync).

    Blocking; call from a worker thread. Raises the ``OSError`` of the fsync that covered it.
    """
    def fsync_dir() -> None:
        fs.fsync_dir(path)

    _barrier("dir", fs, path).sync(fsync_dir, fsync_dir)


def sync_data(fs: FileSystem, fd: int, directory: str) -> None:
    """Make the data of the file ``fd`` (inside ``directory``) durable, sharing with others.

    Alone, this is ``fsync(fd)``; with concurrent callers on the same file system, one
    ``syncfs`` covers them all. Blocking; raises the ``OSError`` of the barrier that covered it.
    """
    def solo() -> None:
        fs.fsync(fd)

    if not SYNCFS_OK:
        solo()
        return

    def group() -> None:
        fs.syncfs(directory)

    _barrier("data", fs, fs.fstat(fd).st_dev).sync(solo, group)
