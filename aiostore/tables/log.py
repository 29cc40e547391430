"""The Delta transaction log: commits, snapshots, checkpoints.

A table is a directory (or S3 prefix) with Parquet data files and ``_delta_log/``: commit ``N``
is ``_delta_log/{N:020d}.json``, one JSON action per line (``protocol``, ``metaData``,
``add``, ``remove``, ``commitInfo``, ``txn``). A snapshot is the replay of every commit up to
a version; a checkpoint (``{N:020d}.checkpoint.parquet``, the protocol's checkpoint schema)
holds the replayed state at ``N`` so that replay can start there, and ``_last_checkpoint``
names the newest. Opening the latest version reads ``_last_checkpoint``, that checkpoint and
the commits after it — found by probing ``N+1, N+2, ...`` — never the whole log.

Everything here works on a :class:`~aiostore.storage.Storage`. Checkpoints are encoded and
decoded in two parts: the Parquet bytes in the worker pool (native code, the GIL released), the
conversion between Arrow and Python dicts on the event loop in bounded steps.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
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


# A checkpoint's rows are Python dicts on one side and Arrow arrays on the other: converting
# them is interpreter work (about a microsecond per row and field), run on the event loop in
# steps of _STEP_ROWS rows with the loop's other tasks served in between. Only the Parquet
# encoding and decoding, native code that releases the GIL, run in a worker thread. Converting
# a checkpoint of thousands of files in a worker instead holds the GIL for milliseconds, and
# the loop, which needs it back at every wake-up, then waits up to the interpreter's switch
# interval (5 ms) for it, twice per wake-up of a task.
_STEP_ROWS = 500

_T = TypeVar("_T")
Steps = Generator[None, None, _T]
"""A conversion in steps: each ``next()`` does a bounded amount of work; the result is the
generator's return value."""


def run_steps(steps: Steps[_T]) -> _T:
    """Run every step of ``steps`` at once (blocking) and return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: _T = done.value
            return result


async def run_steps_async(steps: Steps[_T]) -> _T:
    """Run ``steps`` on the event loop, letting the loop run its other tasks between steps."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: _T = done.value
            return result
        await asyncio.sleep(0)


def _action_table(kind: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Checkpoint rows that each hold one ``kind`` action (the other columns null), built
    column by column (``pa.Table.from_pylist`` of the whole rows is several times slower)."""
    columns: list[pa.Array[Any]] = []
    for column in CHECKPOINT_SCHEMA:
        if column.name != kind:
            columns.append(pa.nulls(len(rows), column.type))
            continue
        fields = list(column.type)
        children = [pa.array([row.get(f.name) for row in rows], type=f.type) for f in fields]
        columns.append(pa.StructArray.from_arrays(children, fields=fields))
    return pa.Table.from_arrays(columns, schema=CHECKPOINT_SCHEMA)


def _checkpoint_steps(snapshot: Snapshot) -> Steps[pa.Table]:
    """The checkpoint table of ``snapshot``, in steps of :data:`_STEP_ROWS` actions."""
    meta = snapshot.metadata
    fmt = meta.get("format") or {"provider": "parquet", "options": {}}
    parts = [
        _action_table("protocol", [{
            "minReaderVersion": int(snapshot.protocol.get("minReaderVersion", 1)),
            "minWriterVersion": int(snapshot.protocol.get("minWriterVersion", 2))}]),
        _action_table("metaData", [{
            "id": meta.get("id"), "name": meta.get("name"),
            "description": meta.get("description"),
            "format": {"provider": fmt.get("provider", "parquet"),
                       "options": _map(fmt.get("options") or {})},
            "schemaString": meta.get("schemaString"),
            "partitionColumns": list(meta.get("partitionColumns") or []),
            "createdTime": meta.get("createdTime"),
            "configuration": _map(meta.get("configuration") or {})}]),
    ]
    txns = list(snapshot.txns.values())
    adds = list(snapshot.files.values())
    expired = int(time.time() * 1000) - TOMBSTONE_RETENTION_MS
    # (as Delta's checkpoints do: tombstones past the retention expire)
    removes = [r for r in snapshot.removed.values()
               if (r.get("deletionTimestamp") or 0) >= expired]
    for start in range(0, len(txns), _STEP_ROWS):
        yield
        parts.append(_action_table("txn", [
            {"appId": t.get("appId"), "version": t.get("version"),
             "lastUpdated": t.get("lastUpdated")} for t in txns[start:start + _STEP_ROWS]]))
    for start in range(0, len(adds), _STEP_ROWS):
        yield
        parts.append(_action_table("add", [
            {"path": a["path"], "partitionValues": _map(a.get("partitionValues") or {}),
             "size": a.get("size"), "modificationTime": a.get("modificationTime"),
             "dataChange": False, "stats": a.get("stats"), "tags": _map(a.get("tags"))}
            for a in adds[start:start + _STEP_ROWS]]))
    for start in range(0, len(removes), _STEP_ROWS):
        yield
        parts.append(_action_table("remove", [
            {"path": r["path"], "deletionTimestamp": r.get("deletionTimestamp"),
             "dataChange": False, "extendedFileMetadata": r.get("extendedFileMetadata"),
             "partitionValues": _map(r.get("partitionValues")), "size": r.get("size")}
            for r in removes[start:start + _STEP_ROWS]]))
    return pa.concat_tables(parts)


def _write_parquet(table: pa.Table) -> bytes:
    """A checkpoint table as Parquet bytes (blocking; native, the GIL released)."""
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue().to_pybytes()


def encode_checkpoint(snapshot: Snapshot) -> bytes:
    """The checkpoint Parquet file of ``snapshot`` (blocking)."""
    return _write_parquet(run_steps(_checkpoint_steps(snapshot)))


_MAP_FIELDS = frozenset({"partitionValues", "tags", "configuration", "options"})
_KINDS = ("protocol", "metaData", "txn", "remove", "add")  # the order of replay
_ADD_FIELDS = ("path", "partitionValues", "size", "modificationTime", "dataChange", "stats",
               "tags")


def _unmap(name: str, value: Any) -> Any:
    if name in _MAP_FIELDS and isinstance(value, list):  # a map read as (key, value) pairs
        return {k: v for k, v in value}
    return value


def _read_checkpoint(data: bytes) -> dict[str, pa.Array[Any]]:
    """A checkpoint file's rows of each kind of action (blocking; native, the GIL released):
    only the rows that hold that action, as one struct array per kind."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.ParquetFile(pa.BufferReader(data)).read()
    kinds: dict[str, pa.Array[Any]] = {}
    for kind in _KINDS:
        if kind in table.column_names:
            column = table.column(kind)
            kinds[kind] = column.filter(pc.is_valid(column)).combine_chunks()
    return kinds


def _snapshot_steps(kinds: dict[str, pa.Array[Any]], version: int) -> Steps[Snapshot]:
    """The snapshot of a checkpoint's actions, in steps of :data:`_STEP_ROWS` rows: field by
    field, only the rows of each action (converting whole rows, most of their fields null,
    costs several times more)."""
    import pyarrow.compute as pc

    snapshot = Snapshot()
    for kind, rows in ((k, kinds[k]) for k in _KINDS if k in kinds):
        names = [f.name for f in rows.type if kind != "add" or f.name in _ADD_FIELDS]
        for start in range(0, len(rows), _STEP_ROWS):
            yield
            part = rows.slice(start, _STEP_ROWS)
            values = [pc.struct_field(part, name).to_pylist() for name in names]
            for row in zip(*values, strict=True):
                action = {name: _unmap(name, value) for name, value in zip(names, row,
                                                                           strict=True)
                          if value is not None}
                if kind == "add":
                    path = unquote(action["path"])
                    snapshot.files[path] = action
                    snapshot.removed.pop(path, None)
                    continue
                if kind == "metaData" and isinstance(action.get("format"), dict):
                    action["format"] = {k: _unmap(k, v) for k, v in action["format"].items()}
                snapshot.apply(version, [{kind: action}])
    snapshot.version = version
    return snapshot


def decode_checkpoint(data: bytes, version: int) -> Snapshot:
    """The snapshot stored in a checkpoint file (blocking)."""
    return run_steps(_snapshot_steps(_read_checkpoint(data), version))


async def write_checkpoint(storage: Storage, snapshot: Snapshot, *,
                           point_last: bool = True) -> None:
    """Write the checkpoint of ``snapshot`` and (``point_last``) point ``_last_checkpoint``
    at it.

    The checkpoint is created, never replaced: one that exists at that version (another
    writer's, or another engine's) is left as it is, and so is the pointer. The pointer only
    moves forward: a compare-and-swap that leaves it alone if it names a newer checkpoint
    already (a writer that lagged behind must not send readers back to an older one)."""
    table = await run_steps_async(_checkpoint_steps(snapshot))
    data = await run_sync(_write_parquet, table)
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
    kinds = await run_sync(_read_checkpoint, data)
    return await run_steps_async(_snapshot_steps(kinds, version))


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
