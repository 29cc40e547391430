"""The Store: an async, dict-like store of named objects over a directory or S3.

* :mod:`.store` — :class:`Store`, the async API (set/get/contains/keys/info/copy/move/delete).
* :mod:`.sync` — :class:`SyncStore`, the blocking dict-syntax facade (``Store.sync``).
* :mod:`.keys` — store keys, their objects, and the resolution rule (ambiguity, replaces).
* :mod:`.listing` — the listings that resolve keys, shared by concurrent resolutions.
* :mod:`.cache` — the local cache of a remote store (ETag-validated, atomic, LRU-bounded).
* :mod:`.fetch` — reading one object version into memory with bounded overhead.
* :mod:`.tee` — a destination that writes the cache entry while the object uploads.
* :mod:`.locks` — per-key locks (one writer per key, one download per object).
* :mod:`.gather` — concurrent calls whose failures are raised as themselves.
"""

from .keys import KeyInfo as KeyInfo
from .store import Store as Store
from .sync import SyncStore as SyncStore

__all__ = ["KeyInfo", "Store", "SyncStore"]
