"""The Delta transaction log: commits, snapshots, checkpoints.

A table is a directory (or S3 prefix) with Parquet data files and ``_delta_log/``: commit ``N``
is ``_delta_log/{N:020d}.json``, one JSON action per line (``protocol``, ``metaData``,
``add``, ``remove``, ``commitInfo``, ``txn``). A snapshot is the replay of every commit up to
a version; a checkpoint (``{N:020d}.checkpoint.parquet``, the protocol's checkpoint schema)
holds the replayed state at ``N`` so that replay can start there, and ``_last_checkpoint``
names the newest. Opening the latest version reads ``_last_checkpoint``, that checkpoint and
the commits after it — found by probing ``N+1, N+2, ...`` — never the whole log.

Everything here works on a :class:`~aiostore.storage.Storage`; Parquet decoding runs in the
worker pool.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

from .._io.offload import run_sync
from ..errors import (
    NotFoundError,
    PreconditionFailedError,
    UnsupportedTableError,
    VersionNotFoundError,
)
from ..storage import Storage

__all__ = ["LOG", "Snapshot", "commit_key", "load_snapshot", "read_commit"]

LOG = "_delta_log"
LAST_CHECKPOINT = f"{LOG}/_last_checkpoint"
READER_VERSION = 1
WRITER_VERSION = 2
#: tombstones (``remove`` actions) older than this are left out of checkpoints, as with
#: Delta's default ``delta.deletedFileRetentionDuration`` of one week
TOMBSTONE_RETENTION_MS = 7 * 24 * 3600 * 1000
_POINTER_ATTEMPTS = 10  # compare-and-swap rounds of _last_checkpoint before leaving it be


def commit_key(version: int) -> str:
    """``_delta_log/00000000000000000042.json``."""
    return f"{LOG}/{version:020d}.json"


def checkpoint_key(version: int) -> str:
    """``_delta_log/00000000000000000042.checkpoint.parquet``."""
    return f"{LOG}/{version:020d}.checkpoint.parquet"


@dataclass
class Snapshot:
    """The table's state at ``version``."""

    version: int = -1
    protocol: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: live data files: path -> its ``add`` action
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: removed files still tombstoned: path -> its ``remove`` action
    removed: dict[str, dict[str, Any]] = field(default_factory=dict)
    txns: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: commit timestamp (ms) of ``version``
    timestamp: int = 0

    def copy(self) -> Snapshot:
        """An independent copy (for replaying further)."""
        return Snapshot(self.version, dict(self.protocol), dict(self.metadata),
                        dict(self.files), dict(self.removed), dict(self.txns), self.timestamp)

    def apply(self, version: int, actions: Iterable[dict[str, Any]]) -> None:
        """Replay one commit's actions (action reconciliation of the protocol)."""
        for action in actions:
            if "add" in action:
                add = action["add"]
                path = unquote(add["path"])
                self.files[path] = add
                self.removed.pop(path, None)
            elif "remove" in action:
                remove = action["remove"]
                path = unquote(remove["path"])
                self.files.pop(path, None)
                self.removed[path] = remove
            elif "metaData" in action:
                self.metadata = action["metaData"]
            elif "protocol" in action:
                self.protocol = action["protocol"]
                check_protocol(self.protocol)
            elif "txn" in action:
                self.txns[action["txn"]["appId"]] = action["txn"]
            elif "commitInfo" in action:
                ts = action["commitInfo"].get("timestamp")
                if isinstance(ts, int):
                    self.timestamp = ts
        self.version = version

    @property
    def partition_columns(self) -> list[str]:
        """The table's partition columns (aiostore writes none; it reads them)."""
        return list(self.metadata.get("partitionColumns") or [])


def check_protocol(protocol: dict[str, Any]) -> None:
    """:class:`~aiostore.errors.UnsupportedTableError` unless aiostore can read and write a
    table with this protocol (reader 1, writer <= 2, no table features)."""
    reader = int(protocol.get("minReaderVersion", 1))
    writer = int(protocol.get("minWriterVersion", 1))
    features = (protocol.get("readerFeatures") or []) + (protocol.get("writerFeatures") or [])
    if reader > READER_VERSION or writer > WRITER_VERSION or features:
        raise UnsupportedTableError(
            f"the table needs Delta reader version {reader} / writer version {writer}"
            f"{' with features ' + ', '.join(features) if features else ''}; aiostore "
            f"supports reader {READER_VERSION} / writer {WRITER_VERSION} without table "
            "features (no deletion vectors, column mapping, ...). It was left untouched.")


def parse_commit(data: bytes, version: int) -> list[dict[str, Any]]:
    """The actions of a commit file."""
    try:
        return [json.loads(line) for line in data.splitlines() if line.strip()]
    except ValueError as exc:
        raise UnsupportedTableError(f"commit {version} is not valid JSON lines: {exc}") from exc


def encode_commit(actions: Iterable[dict[str, Any]]) -> bytes:
    """A commit file's bytes."""
    return b"".join(json.dumps(a, separators=(",", ":")).encode() + b"\n" for a in actions)


async def read_commit(storage: Storage, version: int) -> list[dict[str, Any]] | None:
    """Commit ``version``'s actions, or None if it does not exist."""
    try:
        data = await storage.get(commit_key(version))
    except NotFoundError:
        return None
    return parse_commit(data, version)


async def list_log(storage: Storage) -> tuple[list[int], list[int]]:
    """(commit versions, checkpoint versions) present in the log, ascending (one listing)."""
    commits: list[int] = []
    checkpoints: list[int] = []
    async for info in storage.list(f"{LOG}/"):
        name = info.key[len(LOG) + 1:]
        head = name.split(".", 1)[0]
        if not head.isdigit() or len(head) != 20:
            continue
        if name.endswith(".json") and name.count(".") == 1:
            commits.append(int(head))
        elif name.endswith(".checkpoint.parquet") and name.count(".") == 2:
            checkpoints.append(int(head))
    return sorted(commits), sorted(checkpoints)


# --- checkpoints ---------------------------------------------------------------------------

_STR_MAP = pa.map_(pa.string(), pa.string())
CHECKPOINT_SCHEMA = pa.schema([
    pa.field("txn", pa.struct([pa.field("appId", pa.string()), pa.field("version", pa.int64()),
                               pa.field("lastUpdated", pa.int64())])),
    pa.field("add", pa.struct([
        pa.field("path", pa.string()), pa.field("partitionValues", _STR_MAP),
        pa.field("size", pa.int64()), pa.field("modificationTime", pa.int64()),
        pa.field("dataChange", pa.bool_()), pa.field("stats", pa.string()),
        pa.field("tags", _STR_MAP)])),
    pa.field("remove", pa.struct([
        pa.field("path", pa.string()), pa.field("deletionTimestamp", pa.int64()),
        pa.field("dataChange", pa.bool_()), pa.field("extendedFileMetadata", pa.bool_()),
        pa.field("partitionValues", _STR_MAP), pa.field("size", pa.int64())])),
    pa.field("metaData", pa.struct([
        pa.field("id", pa.string()), pa.field("name", pa.string()),
        pa.field("description", pa.string()),
        pa.field("format", pa.struct([pa.field("provider", pa.string()),
                                      pa.field("options", _STR_MAP)])),
        pa.field("schemaString", pa.string()),
        pa.field("partitionColumns", pa.list_(pa.string())),
        pa.field("createdTime", pa.int64()), pa.field("configuration", _STR_MAP)])),
    pa.field("protocol", pa.struct([pa.field("minReaderVersion", pa.int32()),
                                    pa.field("minWriterVersion", pa.int32())])),
])


def _map(value: Any) -> list[tuple[str, str | None]] | None:
    if value is None:
        return None
    return [(str(k), None if v is None else str(v)) for k, v in dict(value).items()]


def encode_checkpoint(snapshot: Snapshot) -> bytes:
    """The checkpoint Parquet file of ``snapshot`` (blocking)."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = [{"protocol": {
        "minReaderVersion": int(snapshot.protocol.get("minReaderVersion", 1)),
        "minWriterVersion": int(snapshot.protocol.get("minWriterVersion", 2))}}]
    meta = snapshot.metadata
    fmt = meta.get("format") or {"provider": "parquet", "options": {}}
    rows.append({"metaData": {
        "id": meta.get("id"), "name": meta.get("name"), "description": meta.get("description"),
        "format": {"provider": fmt.get("provider", "parquet"),
                   "options": _map(fmt.get("options") or {})},
        "schemaString": meta.get("schemaString"),
        "partitionColumns": list(meta.get("partitionColumns") or []),
        "createdTime": meta.get("createdTime"),
        "configuration": _map(meta.get("configuration") or {})}})
    for txn in snapshot.txns.values():
        rows.append({"txn": {"appId": txn.get("appId"), "version": txn.get("version"),
                             "lastUpdated": txn.get("lastUpdated")}})
    for add in snapshot.files.values():
        rows.append({"add": {
            "path": add["path"], "partitionValues": _map(add.get("partitionValues") or {}),
            "size": add.get("size"), "modificationTime": add.get("modificationTime"),
            "dataChange": False, "stats": add.get("stats"), "tags": _map(add.get("tags"))}})
    expired = int(time.time() * 1000) - TOMBSTONE_RETENTION_MS
    for remove in snapshot.removed.values():
        if (remove.get("deletionTimestamp") or 0) < expired:
            continue  # (as Delta's checkpoints do: tombstones past the retention expire)
        rows.append({"remove": {
            "path": remove["path"], "deletionTimestamp": remove.get("deletionTimestamp"),
            "dataChange": False, "extendedFileMetadata": remove.get("extendedFileMetadata"),
            "partitionValues": _map(remove.get("partitionValues")),
            "size": remove.get("size")}})
    table = pa.Table.from_pylist(rows, schema=CHECKPOINT_SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


_MAP_FIELDS = frozenset({"partitionValues", "tags", "configuration", "options"})


def _unmap(name: str, value: Any) -> Any:
    if name in _MAP_FIELDS and isinstance(value, list):  # a map read as (key, value) pairs
        return {k: v for k, v in value}
    return value


def decode_checkpoint(data: bytes, version: int) -> Snapshot:
    """The snapshot stored in a checkpoint file (blocking)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    snapshot = Snapshot()
    # column by column, only the rows that hold that action: converting whole rows to
    # Python (most of their fields null) costs several times more, with the GIL held
    for kind in ("protocol", "metaData", "txn", "remove", "add"):
        if kind not in table.column_names:
            continue
        column = table.column(kind)
        rows = column.filter(pc.is_valid(column))
        if kind == "add":
            wanted = [f.name for f in column.type if f.name in _ADD_FIELDS]
            values = {name: pc.struct_field(rows, name).to_pylist() for name in wanted}
            for i in range(len(rows)):
                add = {name: _unmap(name, values[name][i]) for name in wanted
                       if values[name][i] is not None}
                path = unquote(add["path"])
                snapshot.files[path] = add
                snapshot.removed.pop(path, None)
            continue
        for row in rows.to_pylist():
            action: dict[str, Any] = {k: _unmap(k, v) for k, v in (row or {}).items()
                                      if v is not None}
            if kind == "metaData" and isinstance(action.get("format"), dict):
                action["format"] = {k: _unmap(k, v) for k, v in action["format"].items()}
            snapshot.apply(version, [{kind: action}])
    snapshot.version = version
    return snapshot


_ADD_FIELDS = ("path", "partitionValues", "size", "modificationTime", "dataChange", "stats",
               "tags")


async def write_checkpoint(storage: Storage, snapshot: Snapshot, *,
                           point_last: bool = True) -> None:
    """Write the checkpoint of ``snapshot`` and (``point_last``) point ``_last_checkpoint``
    at it.

    The checkpoint is created, never replaced: one that exists at that version (another
    writer's, or another engine's) is left as it is, and so is the pointer. The pointer only
    moves forward: a compare-and-swap that leaves it alone if it names a newer checkpoint
    already (a writer that lagged behind must not send readers back to an older one)."""
    data = await run_sync(encode_checkpoint, snapshot)
    try:
        await storage.put(checkpoint_key(snapshot.version), data, if_none_match=True)
    except PreconditionFailedError:
        return
    if not point_last:
        return
    size = 2 + len(snapshot.txns) + len(snapshot.files) + len(snapshot.removed)
    last = json.dumps({"version": snapshot.version, "size": size, "sizeInBytes": len(data),
                       "numOfAddFiles": len(snapshot.files)}).encode()
    for _ in range(_POINTER_ATTEMPTS):
        try:
            etag = (await storage.head(LAST_CHECKPOINT)).etag
        except NotFoundError:
            etag = None
        if etag is not None:
            try:
                current = json.loads(await storage.get(LAST_CHECKPOINT))
                if int(current["version"]) >= snapshot.version:
                    return
            except NotFoundError:
                continue  # removed meanwhile: look again
            except (ValueError, KeyError, TypeError):
                pass  # unreadable: readers ignore it, so replacing it loses nothing
        try:
            await storage.put(LAST_CHECKPOINT, last, if_none_match=etag is None,
                              if_match=etag)
            return
        except PreconditionFailedError:
            continue  # changed meanwhile: look again


async def _load_checkpoint(storage: Storage, version: int) -> Snapshot:
    data = await storage.get(checkpoint_key(version))
    snapshot: Snapshot = await run_sync(decode_checkpoint, data, version)
    return snapshot


async def load_snapshot(storage: Storage, version: int | None = None) -> Snapshot:
    """The snapshot at ``version`` (None: the latest); an empty snapshot (version -1) if the
    table has no commit. :class:`~aiostore.errors.VersionNotFoundError` for a version that
    does not exist or whose log was expired."""
    if version is not None and version < 0:
        raise VersionNotFoundError(f"table versions start at 0, not {version}")
    start: Snapshot | None = None
    if version is None:
        try:
            last = json.loads(await storage.get(LAST_CHECKPOINT))
            start = await _load_checkpoint(storage, int(last["version"]))
        except (NotFoundError, ValueError, KeyError, TypeError):
            start = None
        snapshot = start or Snapshot()
        if start is None:
            commits, checkpoints = await list_log(storage)
            if checkpoints:
                snapshot = await _load_checkpoint(storage, checkpoints[-1])
            elif commits and commits[0] != 0:
                raise VersionNotFoundError(f"the table's log starts at version {commits[0]} "
                                           "without a checkpoint there")
        while True:  # the commits after the checkpoint: probe until one is missing
            actions = await read_commit(storage, snapshot.version + 1)
            if actions is None:
                return snapshot
            snapshot.apply(snapshot.version + 1, actions)
    commits, checkpoints = await list_log(storage)
    if version not in commits and version not in checkpoints:
        newest = max(commits + checkpoints, default=-1)
        if version > newest:
            raise VersionNotFoundError(f"the table has no version {version} (newest: "
                                       f"{newest})")
        raise VersionNotFoundError(f"version {version} was expired (the log now starts at "
                                   f"version {min(commits + checkpoints)})")
    usable = [c for c in checkpoints if c <= version]
    if usable:
        snapshot = await _load_checkpoint(storage, usable[-1])
    elif commits and commits[0] == 0:
        snapshot = Snapshot()
    else:
        raise VersionNotFoundError(f"version {version} was expired (no checkpoint at or "
                                   f"before it)")
    for v in range(snapshot.version + 1, version + 1):
        actions = await read_commit(storage, v)
        if actions is None:
            raise VersionNotFoundError(f"commit {v} is missing from the log")
        snapshot.apply(v, actions)
    return snapshot
