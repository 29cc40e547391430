"""aiostore: an asyncio-native storage engine.

The public API is re-exported here; everything else is private. See ``docs/``.
"""

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
from .storage import ObjectInfo as ObjectInfo
from .storage import ObjectWriter as ObjectWriter
from .storage import Storage as Storage
from .storage import open_storage as open_storage

__version__ = "0.1.0"

__all__ = [
    "AiostoreError",
    "AtomicFile",
    "DBEvent",
    "DBStats",
    "ItemLocation",
    "ObjectInfo",
    "ObjectWriter",
    "SegmentDB",
    "Storage",
    "Transaction",
    "__version__",
    "atomic_open",
    "errors",
    "open_storage",
    "read",
    "sweep_temp_files",
    "write",
    "write_bytes",
    "write_json",
    "write_jsonl",
    "write_text",
]
