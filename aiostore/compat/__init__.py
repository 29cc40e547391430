"""Compatibility adapters for code written against other libraries.

Not imported by ``import aiostore``; import it explicitly:

* ``from aiostore.compat import AioDiskDB, ItemLocation`` — aiodiskdb 0.2.3's API on top of
  :class:`aiostore.SegmentDB` (:mod:`aiostore.compat.aiodiskdb`). The files and serialized
  locations are aiostore's, not aiodiskdb's: see ``docs/migrating-from-aiodiskdb.md``.
"""

from .aiodiskdb import AioDiskDB as AioDiskDB
from .aiodiskdb import EventsHandlers as EventsHandlers
from .aiodiskdb import ItemLocation as ItemLocation
from .aiodiskdb import WriteEvent as WriteEvent

__all__ = ["AioDiskDB", "EventsHandlers", "ItemLocation", "WriteEvent"]
