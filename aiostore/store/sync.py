"""``SyncStore``: the blocking, dict-syntax facade of :class:`~aiostore.Store`.

The store runs on an event loop in a helper thread (an anyio blocking portal); each call hands
a coroutine to that loop and waits for its result. Called from inside a running event loop,
every entry point raises :class:`~aiostore.errors.RunningLoopError` at once — it would block
that loop (or, from the portal's own thread, deadlock).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..errors import ClosedError, InvalidArgumentError, RunningLoopError
from ..formats import Handler
from .keys import KeyInfo
from .store import Store

__all__ = ["SyncStore"]

T = TypeVar("T")


def running_loop() -> str | None:
    """The async library whose event loop runs in this thread (None when none does)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:
            return "trio"
    return None


def refuse_in_loop(what: str) -> None:
    """:class:`~aiostore.errors.RunningLoopError` if an event loop runs in this thread."""
    library = running_loop()
    if library is not None:
        raise RunningLoopError(f"{what} blocks, and this thread runs a {library} event loop: "
                               "use the async API here (async with aiostore.Store(...) as "
                               "store: await store.get(...))")


async def _open(root: str | os.PathLike[str], kwargs: dict[str, Any]) -> Store:
    store = Store(root, **kwargs)
    await store.__aenter__()
    return store


def _shutdown(portal: BlockingPortal, store: Store,
              portal_cm: AbstractContextManager[BlockingPortal]) -> None:
    """Close the store on its loop, then stop the loop (finalizer: also at exit)."""
    try:
        portal.call(store.aclose)
    finally:
        portal_cm.__exit__(None, None, None)


class SyncStore:
    """A :class:`~aiostore.Store` with blocking methods and dict syntax::

        with aiostore.Store.sync("./data") as s:
            s["frame"] = df
            df = s["frame"]
            "frame" in s; del s["frame"]; list(s.keys())

    Same arguments as :class:`~aiostore.Store`, plus ``backend`` — the event loop of the
    helper thread: ``"asyncio"`` (the default; S3 needs it) or ``"trio"``. ``s[key]`` raises
    :class:`~aiostore.errors.KeyNotFoundError` (a ``KeyError``) for a missing key;
    :meth:`get` returns ``default`` instead, like a dict's.

    Close it with ``with`` or :meth:`close` (a store left open is closed when it is garbage
    collected, or at interpreter exit). Every method raises
    :class:`~aiostore.errors.RunningLoopError` when called from a thread running an event
    loop, and :class:`~aiostore.errors.ClosedError` after :meth:`close`.

    Cancellation: not applicable (blocking calls). A ``KeyboardInterrupt`` while a call waits
    leaves that operation to finish — or roll back, as its async version does — on the helper
    thread.
    """

    def __init__(self, root: str | os.PathLike[str], *, backend: str = "asyncio",
                 **store_kwargs: Any) -> None:
        refuse_in_loop("Store.sync")
        if backend not in ("asyncio", "trio"):
            raise InvalidArgumentError(f"backend must be 'asyncio' or 'trio', not {backend!r}")
        self._lock = threading.Lock()
        self._closed = False
        portal_cm = start_blocking_portal(backend)
        portal = portal_cm.__enter__()
        try:
            store: Store = portal.call(_open, root, store_kwargs)
        except BaseException:
            portal_cm.__exit__(None, None, None)
            raise
        self._portal = portal
        #: the async :class:`~aiostore.Store` this facade drives (on the helper loop only)
        self.store = store
        self._finalizer = weakref.finalize(self, _shutdown, portal, store, portal_cm)

    # --- plumbing --------------------------------------------------------------------------
    def _call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
              ) -> T:
        refuse_in_loop("this SyncStore method")
        if self._closed:
            raise ClosedError(f"the store at {self.store.url} is closed")
        result: T = self._portal.call(partial(fn, *args, **kwargs))
        return result

    def close(self) -> None:
        """Close the store and stop its helper thread. Idempotent."""
        refuse_in_loop("SyncStore.close")
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._finalizer()

    def __enter__(self) -> SyncStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store.sync({self.store.url!r}{', closed' if self._closed else ''})"

    @property
    def url(self) -> str:
        """Where the store's root is."""
        return self.store.url

    # --- dict syntax -----------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        """``s[key]``: :meth:`aiostore.Store.get`."""
        return self._call(self.store.get, key)

    def __setitem__(self, key: str, value: object) -> None:
        """``s[key] = value``: :meth:`aiostore.Store.set`."""
        self._call(self.store.set, key, value)

    def __delitem__(self, key: str) -> None:
        """``del s[key]``: :meth:`aiostore.Store.delete` (KeyError if missing)."""
        self._call(self.store.delete, key)

    def __contains__(self, key: object) -> bool:
        """``key in s``: :meth:`aiostore.Store.contains`."""
        if not isinstance(key, str):
            return False
        return self._call(self.store.contains, key)

    def __iter__(self) -> Iterator[str]:
        """The keys (listed once, up front)."""
        return iter(self.keys())

    def __len__(self) -> int:
        """How many keys there are (a listing)."""
        return len(self.keys())

    # --- methods ---------------------------------------------------------------------------
    def get(self, key: str, default: Any = None, *, output: str | None = None,
            model: type | None = None) -> Any:
        """The object under ``key``, or ``default`` when there is none (like ``dict.get``);
        ``output``/``model`` as :meth:`aiostore.Store.get`."""
        return self._call(self.store.get, key, output=output, model=model, default=default)

    def set(self, key: str, value: object) -> KeyInfo:
        """:meth:`aiostore.Store.set`."""
        return self._call(self.store.set, key, value)

    def delete(self, key: str, *, missing_ok: bool = False) -> None:
        """:meth:`aiostore.Store.delete`."""
        self._call(self.store.delete, key, missing_ok=missing_ok)

    def contains(self, key: str) -> bool:
        """:meth:`aiostore.Store.contains`."""
        return self._call(self.store.contains, key)

    def keys(self, prefix: str = "") -> list[str]:
        """The keys below ``prefix``, without extensions (:meth:`aiostore.Store.keys`)."""
        async def collect() -> list[str]:
            return [k async for k in self.store.keys(prefix)]

        return self._call(collect)

    def info(self, key: str) -> KeyInfo:
        """:meth:`aiostore.Store.info`."""
        return self._call(self.store.info, key)

    def copy(self, src: str, dst: str) -> KeyInfo:
        """:meth:`aiostore.Store.copy`."""
        return self._call(self.store.copy, src, dst)

    def move(self, src: str, dst: str) -> KeyInfo:
        """:meth:`aiostore.Store.move`."""
        return self._call(self.store.move, src, dst)

    def register_handler(self, handler: Handler) -> None:
        """:meth:`aiostore.Store.register_handler`."""
        self.store.register_handler(handler)

    def cleanup_cache(self, *, unused_for: float | timedelta | None = None) -> int:
        """:meth:`aiostore.Store.cleanup_cache`."""
        return self._call(self.store.cleanup_cache, unused_for=unused_for)
