"""aiostore: an asyncio-native storage engine.

The public API is re-exported here; everything else is private. See ``docs/``.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from . import errors as errors
from .atomic import AtomicFile as AtomicFile
from .atomic import atomic_open as atomic_open
from .atomic import read as read
from .atomic import sweep_temp_files as sweep_temp_files
from .atomic import write as write
from .atomic import write_bytes as write_bytes
from .atomic import write_json as write_json
from .atomic import write_jsonl as write_jsonl
from .atomic import write_text as write_text
from .errors import AiostoreError as AiostoreError
from .segments import DBEvent as DBEvent
from .segments import DBStats as DBStats
from .segments import ItemLocation as ItemLocation
from .segments import SegmentDB as SegmentDB
from .segments import Transaction as Transaction
from .segments import TrimResult as TrimResult
from .storage import ObjectInfo as ObjectInfo
from .storage import ObjectWriter as ObjectWriter
from .storage import Storage as Storage
from .storage import open_storage as open_storage
from .store import Store as Store

if _TYPE_CHECKING:  # imported on first use (they need pyarrow): see __getattr__
    from .sql import read_sql as read_sql
    from .sql import write_sql as write_sql
    from .tables import ExpireReport as ExpireReport
    from .tables import HistoryEntry as HistoryEntry
    from .tables import Table as Table
    from .tables import expire_snapshots as expire_snapshots
    from .tables import open_table as open_table
    from .tables import read_table as read_table
    from .tables import write_snapshot as write_snapshot

__version__ = "0.1.0"

_LAZY = {"ExpireReport", "HistoryEntry", "Table", "expire_snapshots", "open_table",
         "read_table", "write_snapshot"}
_LAZY_SQL = {"read_sql", "write_sql"}


def __getattr__(name: str) -> _Any:
    """The snapshot-table and SQL names, imported on first use (they need pyarrow; the SQL
    ones the ``sql`` extra)."""
    if name in _LAZY:
        from . import tables

        return getattr(tables, name)
    if name in _LAZY_SQL:
        from . import sql

        return getattr(sql, name)
    raise AttributeError(f"module 'aiostore' has no attribute {name!r}")

__all__ = [
    "AiostoreError",
    "AtomicFile",
    "DBEvent",
    "DBStats",
    "ExpireReport",
    "HistoryEntry",
    "ItemLocation",
    "ObjectInfo",
    "ObjectWriter",
    "SegmentDB",
    "Storage",
    "Store",
    "Table",
    "Transaction",
    "TrimResult",
    "__version__",
    "atomic_open",
    "errors",
    "expire_snapshots",
    "open_storage",
    "open_table",
    "read",
    "read_sql",
    "read_table",
    "sweep_temp_files",
    "write",
    "write_bytes",
    "write_json",
    "write_jsonl",
    "write_snapshot",
    "write_sql",
    "write_text",
]
