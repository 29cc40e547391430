"""SegmentDB: an append-only segment database.

* :mod:`.format` — segment header and record framing (length, CRC32C, flags).
* :mod:`.location` — ``ItemLocation``.
* :mod:`.recovery` — opening a directory: lock, segment list, recovery of the last segment.
* :mod:`.events` — the event hooks.
* :mod:`.transaction` — ``Transaction``: items committed all or nothing.
* :mod:`.identity` — proving a segment file is this database's own before trusting it.
* :mod:`.trim` — the trim log (write-ahead record of rtrim, ltrim, drop_index) and its steps.
* :mod:`.trim_check` — validating a trim and measuring what it removes.
* :mod:`.db` — ``SegmentDB`` itself: buffer, flusher (group commit), reads, scan, pruning,
  signals.
"""

from .db import DBStats as DBStats
from .db import SegmentDB as SegmentDB
from .db import TrimResult as TrimResult
from .events import DBEvent as DBEvent
from .events import Events as Events
from .location import ItemLocation as ItemLocation
from .transaction import Transaction as Transaction

__all__ = ["DBEvent", "DBStats", "Events", "ItemLocation", "SegmentDB", "Transaction",
           "TrimResult"]
