"""Per-key locks inside one process: one writer per store key, one download per object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

__all__ = ["KeyLocks"]


class KeyLocks:
    """An ``anyio.Lock`` per name, created on first use and dropped when nobody holds or waits
    for it (so the table does not grow with every key ever used)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        """Hold the lock of ``name``. Cancellation: while waiting, the wait is abandoned and
        the lock is not taken."""
        entry = self._locks.get(name)
        if entry is None:
            entry = self._locks[name] = (anyio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0 and self._locks.get(name) is entry:
                del self._locks[name]

    def __len__(self) -> int:
        return len(self._locks)
