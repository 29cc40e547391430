"""Shared directory fsyncs across worker threads (group commit).

:func:`sync_dir` — one ``fsync(dir)`` covers every rename into ``dir`` that finished before it
started, so N concurrent publishers into one directory need about two directory fsyncs.

The protocol: a waiter takes a ticket. If no barrier is running it becomes the leader and runs
one that covers every ticket issued so far; otherwise it waits for the running one and then
checks whether a later barrier already covered it. A failed barrier fails every ticket it
covered (an fsync error is never retried).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable

from .base import FileSystem


class _Barrier:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.issued = 0  # tickets handed out
        self.synced = 0  # every ticket <= synced is settled
        self.running = False
        self.failed: list[tuple[int, int, OSError]] = []  # (first, last ticket, error)

    def sync(self, solo: Callable[[], None], group: Callable[[], None]) -> bool:
        """Wait until covered; True if this caller ran ``solo`` (it was alone).

        ``solo`` runs when the leader covers only its own ticket, ``group`` otherwise.
        """
        with self.cond:
            self.issued += 1
            ticket = self.issued
            while True:
                for first, last, exc in self.failed:
                    if first <= ticket <= last:
                        raise exc
                if self.synced >= ticket:
                    return False
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
        return action is solo


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
