"""SegmentDB: an append-only segment database.

* :mod:`.format` — segment header and record framing (length, CRC32C, flags).
* :mod:`.location` — ``ItemLocation``.
* :mod:`.recovery` — opening a directory: lock, segment list, recovery of the last segment.
* :mod:`.events` — the event hooks.
* :mod:`.db` — ``SegmentDB`` itself: buffer, flusher (group commit), reads, scan, signals.
"""

from .db import SegmentDB as SegmentDB
from .events import DBEvent as DBEvent
from .events import Events as Events
from .location import ItemLocation as ItemLocation

__all__ = ["DBEvent", "Events", "ItemLocation", "SegmentDB"]
