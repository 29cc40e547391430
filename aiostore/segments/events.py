"""Event hooks: ``db.events.on_start`` and friends, sync or async callables."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .location import ItemLocation

log = logging.getLogger("aiostore.segments")

Hook = Callable[["DBEvent"], "Awaitable[Any] | Any"]


@dataclass(frozen=True)
class DBEvent:
    """What happened, when, and the details that apply.

    ``kind`` is ``"start"``, ``"stop"``, ``"write"``, ``"failure"`` or ``"index_drop"``.
    For ``"write"``: ``first``/``last`` are the first and last locations persisted and ``count``
    how many items; for ``"failure"``: ``error``; for ``"index_drop"``: ``index``, ``size``
    (bytes freed on disk) and, when the drop counted them, ``count`` (items) and ``payload``
    (their payload bytes).
    """

    kind: str
    description: str
    timestamp: float = field(default_factory=time.time)
    first: ItemLocation | None = None
    last: ItemLocation | None = None
    count: int = 0
    size: int = 0
    index: int | None = None
    error: BaseException | None = None
    #: for ``"index_drop"`` with ``count=True``: the payload bytes of the items dropped
    #: (``size`` counts framing too; ``count`` is the number of items); None otherwise
    payload: int | None = None


class Events:
    """The hooks of one SegmentDB. Assign a callable (sync or async) taking a :class:`DBEvent`.

    A hook that raises is logged (logger ``aiostore.segments``) and never breaks the database;
    async hooks run as tasks and are not awaited by the database.
    """

    def __init__(self) -> None:
        self.on_start: Hook | None = None
        self.on_stop: Hook | None = None
        self.on_write: Hook | None = None
        self.on_failure: Hook | None = None
        self.on_index_drop: Hook | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def fire(self, event: DBEvent) -> None:
        """Call the hook for ``event.kind``, if any, isolating the database from its errors."""
        hook: Hook | None = getattr(self, f"on_{event.kind}")
        if event.kind == "failure":
            log.error("%s", event.description)
        if hook is None:
            return
        try:
            result = hook(event)
        except Exception:
            log.exception("the %s hook raised", event.kind)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("an async hook raised", exc_info=task.exception())
