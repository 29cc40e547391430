"""Group commit of directory fsyncs: concurrent publishers into one directory share fsyncs.

A worker thread that renamed a file into ``dir`` calls :func:`sync_dir`. If no fsync of ``dir``
is running, it runs one; otherwise it waits for the running one to end and then, unless a later
fsync has already covered it, runs (or waits for) the next. One ``fsync(dir)`` covers every
rename that happened before it started, so N concurrent publishers need about two fsyncs, not N.
"""

from __future__ import annotations

import threading
import weakref

from .base import FileSystem


class _DirSyncer:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.issued = 0  # tickets handed out (a ticket = a rename that needs covering)
        self.synced = 0  # highest ticket covered by a completed fsync
        self.running = False
        self.failed: list[tuple[int, int, OSError]] = []  # (first, last ticket, error)

    def sync(self, fs: FileSystem, path: str) -> None:
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
        error: OSError | None = None
        try:
            fs.fsync_dir(path)
        except OSError as exc:
            error = exc
        finally:
            with self.cond:
                self.running = False
                if error is None:
                    self.synced = max(self.synced, covers)
                else:
                    self.failed.append((first, covers, error))
                    self.synced = max(self.synced, covers)  # settled (as failed)
                self.cond.notify_all()
        if error is not None:
            raise error


_syncers: weakref.WeakValueDictionary[tuple[int, str], _DirSyncer] = (
    weakref.WeakValueDictionary()
)
_syncers_lock = threading.Lock()


def sync_dir(fs: FileSystem, path: str) -> None:
    """Make every rename into ``path`` that finished before this call durable (shared fsync).

    Blocking; call from a worker thread. Raises the ``OSError`` of the fsync that covered it.
    """
    key = (id(fs), path)
    with _syncers_lock:
        syncer = _syncers.get(key)
        if syncer is None:
            syncer = _DirSyncer()
            _syncers[key] = syncer
    syncer.sync(fs, path)
