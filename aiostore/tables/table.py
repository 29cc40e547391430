"""``Table``: a versioned Parquet table in the Delta Lake format, local or on S3.

Writes are two phases, as the protocol prescribes: data files first (uniquely named, each a
create-only put: the atomic writers' publish recipe locally, one PUT or a multipart upload on
S3), then the commit — a create-only put of the next ``_delta_log/{N:020d}.json``. Two
writers can never both create version ``N``: the loser reads what won and, for an append,
rebases onto it and tries ``N+1``; an overwrite that raced a change fails with
:class:`~aiostore.errors.CommitConflictError` unless ``retry=True``. No lock exists, so
writers on many machines are safe; a crash at any point leaves the table at the old version
or the new one (data files of a failed commit are orphans, removed by expiry).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from types import TracebackType
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc

from .._io.offload import run_sync
from ..errors import (
    CommitConflictError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionFailedError,
    SchemaMismatchError,
    SerializationError,
    UnsupportedTableError,
    VersionNotFoundError,
)
from ..storage import Storage, open_storage
from . import log
from .log import Snapshot, commit_key, encode_commit, load_snapshot, read_commit
from .schema import arrow_to_delta, conform, delta_to_arrow, reconcile

__all__ = ["ExpireReport", "HistoryEntry", "Table", "open_table"]

ENGINE = "aiostore"
_FETCH_CONCURRENCY = 8
_STAT_CHARS = 256  # string statistics longer than this are cut (as exact bounds)
_MAX_ATTEMPTS = 100  # commit attempts before giving up (each one lost a race)
#: a data file no commit references may belong to a commit in flight: expiry removes such
#: orphans only once they are older than keep_for and than this
ORPHAN_GRACE_MS = 3600_000
#: the name of every data file aiostore writes
DATA_FILE_NAME = re.compile(r"part-00000-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                            r"[0-9a-f]{12}-c000\.snappy\.parquet")
#: the key-value metadata aiostore puts in the footer of every data file it writes: with the
#: name, the proof expiry needs before it deletes a file no log entry ever referenced (other
#: engines name their files ``part-00000-{uuid}-c000.snappy.parquet`` too)
DATA_FILE_MARKER = (b"aiostore.data_file", b"1")
_FOOTER_PROBE = 64 << 10


@dataclass(frozen=True)
class HistoryEntry:
    """One version in :meth:`Table.history`."""

    version: int
    timestamp: datetime
    operation: str
    parameters: dict[str, Any]
    rows_added: int | None
    rows_removed: int | None
    files_added: int | None
    files_removed: int | None


@dataclass(frozen=True)
class ExpireReport:
    """What :meth:`Table.expire_snapshots` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    #: versions no longer reachable by time travel
    expired_versions: list[int]
    #: the oldest version kept (time travel works from here on)
    oldest_kept: int
    #: log files (commits, checkpoints) removed
    log_files: list[str] = field(default_factory=list)
    #: data files removed: only ever referenced by expired versions, or orphans of failed
    #: commits older than ``keep_for`` (aiostore's own: by name and footer marker)
    data_files: list[str] = field(default_factory=list)
    #: their total size in bytes
    bytes_freed: int = 0
    #: files under the table's root that no log entry references and that aiostore cannot
    #: prove it wrote (another name, no aiostore marker in the Parquet footer): never deleted
    foreign_files: list[str] = field(default_factory=list)


def _now_ms() -> int:
    return int(time.time() * 1000)


def to_arrow(data: object) -> pa.Table:
    """Any supported input as one Arrow table (blocking): pandas, pyarrow Table/RecordBatch/
    RecordBatchReader, polars (Arrow C stream), or a list of dicts."""
    from ..formats import frames

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, (list, tuple)):
        return frames.records_to_table(data)
    if not frames.is_frame(data):
        raise SerializationError(f"cannot write a {type(data).__name__} to a table: pass a "
                                 "pandas/polars DataFrame, a pyarrow Table or RecordBatchReader,"
                                 " or a list of dicts")
    if frames._pandas_frame(data):  # one conversion (FrameSource converts twice: schema, rows)
        import pandas as pd

        df: Any = data
        if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0
                and df.index.step == 1 and df.index.name is None):
            df = df.reset_index()
        try:
            return pa.Table.from_pandas(df, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
                ValueError) as exc:
            raise SerializationError(f"cannot convert the DataFrame to Arrow: {exc}") from exc
    source = frames.FrameSource(data, flatten_index=True)
    return pa.Table.from_batches(list(source.batches()), schema=source.schema)


def _stat_value(value: Any, upper: bool) -> Any:
    """A min (``upper`` False) or max statistic as JSON, or None to leave it out. Bounds must
    hold: other engines skip files by them, so a max is rounded up, never down."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        if upper and value.microsecond % 1000:  # stats have millisecond precision
            value += timedelta(microseconds=1000 - value.microsecond % 1000)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
            f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        if len(value) <= _STAT_CHARS:
            return value
        # a truncated min is still a lower bound; a max needs a character above any other
        return value[:_STAT_CHARS] + ("\U0010ffff" if upper else "")
    if isinstance(value, (bool, int, float)):
        return value
    return None


def file_stats(table: pa.Table) -> str:
    """The ``stats`` JSON of a data file: numRecords, minValues, maxValues, nullCount."""
    import pyarrow.compute as pc

    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        if pa.types.is_nested(t) or pa.types.is_binary(t):
            continue
        nulled = len(column) - int(pc.count(column, mode="only_valid").as_py())
        nulls[name] = nulled  # (Array.null_count can be -1: "not computed yet")
        if nulled == len(column) or len(column) == 0:
            continue
        try:
            mm: Any = pc.min_max(column).as_py()
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            continue
        lo, hi = _stat_value(mm["min"], False), _stat_value(mm["max"], True)
        if lo is not None and hi is not None:
            mins[name], maxs[name] = lo, hi
    return json.dumps({"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs,
                       "nullCount": nulls}, separators=(",", ":"))


def encode_data_file(table: pa.Table) -> tuple[bytes, str]:
    """(Parquet bytes, stats JSON) of one data file (blocking)."""
    import pyarrow.parquet as pq

    marked = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                            DATA_FILE_MARKER[0]: DATA_FILE_MARKER[1]})
    sink = io.BytesIO()
    pq.write_table(marked, sink, compression="snappy")
    return sink.getvalue(), file_stats(table)


def _footer_has_marker(footer: bytes) -> bool:
    """Whether a Parquet footer (metadata, its length, ``PAR1``) carries aiostore's data file
    marker (blocking)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(pa.BufferReader(b"PAR1" + footer))
    except (pa.ArrowException, OSError, ValueError):
        return False
    return bool((meta.metadata or {}).get(DATA_FILE_MARKER[0]) == DATA_FILE_MARKER[1])


async def written_by_aiostore(storage: Storage, key: str, size: int) -> bool:
    """Whether the object ``key`` is a data file aiostore wrote: its name, and the marker in
    its Parquet footer (only the footer is read)."""
    if not DATA_FILE_NAME.fullmatch(key) or size < 12:
        return False
    tail = await storage.get(key, byte_range=(max(0, size - _FOOTER_PROBE), size))
    if len(tail) < 8 or tail[-4:] != b"PAR1":
        return False
    length = int.from_bytes(tail[-8:-4], "little")
    if length + 12 > size:
        return False
    if length + 8 > len(tail):
        tail = await storage.get(key, byte_range=(size - length - 8, size))
    found: bool = await run_sync(_footer_has_marker, bytes(tail[-(length + 8):]))
    return found


class Table:
    """A versioned Parquet table; open one with :func:`aiostore.open_table`.

    ``version`` and ``schema`` describe the snapshot this object last saw (refreshed by every
    write and by :meth:`refresh`). Close it (``async with`` or :meth:`aclose`) to release its
    storage client.
    """

    def __init__(self, storage: Storage, uri: str, *, create: bool,
                 checkpoint_interval: int) -> None:
        self.uri = uri
        self._storage = storage
        self._create = create
        self.checkpoint_interval = checkpoint_interval
        self._snapshot = Snapshot()
        self._lock = asyncio.Lock()

    # --- state -----------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """The latest version seen (-1 for a table without any commit yet)."""
        return self._snapshot.version

    @property
    def schema(self) -> pa.Schema | None:
        """The table's Arrow schema at :attr:`version` (None before the first commit)."""
        schema_string = self._snapshot.metadata.get("schemaString")
        return delta_to_arrow(schema_string) if schema_string else None

    async def refresh(self) -> int:
        """Load the latest version and return it: the commits after the version in hand
        (or, the first time, after the newest checkpoint)."""
        if self._snapshot.version >= 0:
            snapshot = self._snapshot.copy()
            while True:
                actions = await read_commit(self._storage, snapshot.version + 1)
                if actions is None:
                    break
                snapshot.apply(snapshot.version + 1, actions)
            self._snapshot = snapshot
            return snapshot.version
        self._snapshot = await load_snapshot(self._storage)
        if self._snapshot.version < 0 and not self._create:
            raise NotFoundError(2, "no Delta table here (and create=False)", self.uri)
        return self._snapshot.version

    async def aclose(self) -> None:
        """Release the storage (client and connections)."""
        await self._storage.aclose()

    async def __aenter__(self) -> Table:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # --- writing ---------------------------------------------------------------------------
    async def append(self, data: object, *, schema_mode: str | None = None) -> int:
        """Add ``data``'s rows as a new version; return it.

        ``data``: a pandas or polars DataFrame, a pyarrow Table, RecordBatch or
        RecordBatchReader, or a list of dicts — converted to Arrow, then checked against the
        table's schema (see ``schema_mode`` in :meth:`overwrite`). On a lost race the append
        rebases onto the winner and commits the next version (appends never conflict with
        appends). Errors: :class:`~aiostore.errors.SchemaMismatchError`,
        :class:`~aiostore.errors.CommitConflictError` if a concurrent commit changed the
        schema or protocol — nothing is committed then.

        Cancellation: before the commit's put is sent, nothing is committed (a data file may
        stay behind as an orphan for expiry); once sent, the version may exist.
        """
        return await self._write(data, "append", schema_mode, retry=True)

    async def overwrite(self, data: object, *, schema_mode: str | None = None,
                        retry: bool = False) -> int:
        """Replace the table's rows with ``data``'s as a new version; return it.

        ``schema_mode``: None — the data must match the table's columns and types;
        ``"merge"`` — new nullable columns are added, missing ones filled with nulls, types
        widened safely (int8 -> ... -> int64, float -> double); ``"overwrite"`` — the data's
        schema replaces the table's. If another commit changed the table since this object
        last saw it, :class:`~aiostore.errors.CommitConflictError` (nothing committed) unless
        ``retry=True``: then the overwrite applies on top of the newer version. Old versions
        stay readable by time travel until expired.
        """
        return await self._write(data, "overwrite", schema_mode, retry=retry)

    async def _write(self, data: object, mode: str, schema_mode: str | None,
                     retry: bool) -> int:
        if schema_mode not in (None, "merge", "overwrite"):
            raise InvalidArgumentError(f"schema_mode must be None, 'merge' or 'overwrite', not "
                                       f"{schema_mode!r}")
        if schema_mode == "overwrite" and mode != "overwrite":
            raise InvalidArgumentError("schema_mode='overwrite' only goes with overwrite()")
        async with self._lock:
            if self._snapshot.version < 0:
                await self.refresh()
            if self._snapshot.partition_columns:
                raise UnsupportedTableError("aiostore does not write partitioned tables (it "
                                            "reads them)")
            check_writable(self._snapshot, mode)
            base = self._snapshot
            current = self.schema
            arrow = await run_sync(to_arrow, data)
            schema = reconcile(current, arrow.schema, schema_mode)
            conformed = await run_sync(conform, arrow, schema)
            payload, stats = await run_sync(encode_data_file, conformed)
            name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
            info = await self._storage.put(name, payload, if_none_match=True)
            add = {"path": name, "partitionValues": {}, "size": info.size,
                   "modificationTime": _now_ms(), "dataChange": True, "stats": stats}
            new_schema = None if current is not None and schema.equals(current) else schema
            try:
                return await self._commit(base, mode, [add], new_schema, conformed.num_rows,
                                          retry=retry)
            except (CommitConflictError, SchemaMismatchError):
                with contextlib.suppress(Exception):  # not committed: no orphan left behind
                    await self._storage.delete(name)
                raise

    def _commit_actions(self, base: Snapshot, operation: str, adds: list[dict[str, Any]],
                        new_schema: pa.Schema | None, rows: int,
                        parameters: dict[str, Any] | None = None,
                        metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        now = max(_now_ms(), base.timestamp + 1)
        removes: list[dict[str, Any]] = []
        if operation in ("overwrite", "restore"):
            keep = {a["path"] for a in adds}
            removes = [{"remove": {"path": path, "deletionTimestamp": now, "dataChange": True,
                                   "extendedFileMetadata": True, "partitionValues": {},
                                   "size": add.get("size")}}
                       for path, add in base.files.items() if path not in keep]
            adds = [a for a in adds if a["path"] not in base.files]
        removed_rows = 0
        for r in removes:
            stats = base.files[r["remove"]["path"]].get("stats")
            if stats:
                removed_rows += int(json.loads(stats).get("numRecords", 0))
        actions: list[dict[str, Any]] = [{"commitInfo": {
            "timestamp": now,
            "operation": {"append": "WRITE", "overwrite": "WRITE",
                          "restore": "RESTORE"}[operation],
            "operationParameters": parameters or {
                "mode": "Append" if operation == "append" else "Overwrite"},
            "operationMetrics": {"num_added_files": len(adds), "num_removed_files": len(removes),
                                 "num_added_rows": rows, "num_removed_rows": removed_rows},
            "engineInfo": ENGINE}}]
        if base.version >= 0:
            actions[0]["commitInfo"]["readVersion"] = base.version
        if base.version < 0:
            actions.append({"protocol": {"minReaderVersion": log.READER_VERSION,
                                         "minWriterVersion": log.WRITER_VERSION}})
        if metadata is not None:
            actions.append({"metaData": metadata})
        elif new_schema is not None:
            old = base.metadata
            actions.append({"metaData": {
                "id": old.get("id") or str(uuid.uuid4()), "name": old.get("name"),
                "description": old.get("description"),
                "format": {"provider": "parquet", "options": {}},
                "schemaString": arrow_to_delta(new_schema), "partitionColumns": [],
                "configuration": old.get("configuration") or {},
                "createdTime": old.get("createdTime") or now}})
        actions += removes
        actions += [{"add": a} for a in adds]
        return actions

    async def _commit(self, base: Snapshot, operation: str, adds: list[dict[str, Any]],
                      new_schema: pa.Schema | None, rows: int, *, retry: bool,
                      parameters: dict[str, Any] | None = None,
                      metadata: dict[str, Any] | None = None) -> int:
        """Create the next commit; on a lost race rebase (or raise). Returns the version."""
        for _ in range(_MAX_ATTEMPTS):
            actions = self._commit_actions(base, operation, adds, new_schema, rows, parameters,
                                           metadata)
            version = base.version + 1
            try:
                await self._storage.put(commit_key(version), encode_commit(actions),
                                        if_none_match=True)
            except PreconditionFailedError:
                base = await self._rebase(base, operation, new_schema, retry)
                if new_schema is not None and base.metadata and \
                        delta_to_arrow(base.metadata["schemaString"]).equals(new_schema):
                    new_schema = None  # the winner created the table with our schema
                continue
            snapshot = base.copy()
            snapshot.apply(version, actions)
            self._snapshot = snapshot
            if self.checkpoint_interval and version and version % self.checkpoint_interval == 0:
                # an optimisation: a failed checkpoint never fails the commit
                with contextlib.suppress(Exception):
                    await log.write_checkpoint(self._storage, snapshot)
            return version
        raise CommitConflictError(f"{_MAX_ATTEMPTS} commit attempts lost races; giving up")

    async def _rebase(self, base: Snapshot, operation: str, new_schema: pa.Schema | None,
                      retry: bool) -> Snapshot:
        """Catch up with the commits that won; raise if ours conflicts with them."""
        newer = base.copy()
        while True:
            actions = await read_commit(self._storage, newer.version + 1)
            if actions is None:
                break
            for action in actions:
                if base.version >= 0 and ("protocol" in action or "metaData" in action):
                    self._snapshot = await load_snapshot(self._storage)  # caught up
                    raise CommitConflictError(
                        f"version {newer.version + 1} changed the table's "
                        f"{'protocol' if 'protocol' in action else 'schema'} concurrently; "
                        "nothing was committed")
                if operation != "append" and not retry and ("add" in action or
                                                            "remove" in action):
                    self._snapshot = await load_snapshot(self._storage)  # caught up
                    raise CommitConflictError(
                        f"version {newer.version + 1} changed the table's data concurrently; "
                        f"the {operation} was not committed (pass retry=True to apply it on "
                        "top)")
            newer.apply(newer.version + 1, actions)
        if base.version < 0 and newer.version >= 0 and new_schema is not None:
            current = delta_to_arrow(newer.metadata["schemaString"])
            if not current.equals(new_schema):
                raise SchemaMismatchError("the table was created concurrently with another "
                                          "schema; nothing was committed")
        self._snapshot = newer
        return newer

    # --- reading ---------------------------------------------------------------------------
    async def snapshot(self, version: int | None = None,
                       as_of: datetime | float | None = None) -> Snapshot:
        """The snapshot at ``version``, at time ``as_of`` (the last version committed at or
        before it: a timezone-aware datetime or POSIX seconds), or the latest."""
        if version is not None and as_of is not None:
            raise InvalidArgumentError("pass version or as_of, not both")
        if as_of is not None:
            version = await self._version_at(as_of)
        if version is None:
            await self.refresh()
            return self._snapshot
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidArgumentError(f"version must be an int, not {version!r}")
        return await load_snapshot(self._storage, version)

    async def _version_at(self, as_of: datetime | float) -> int:
        if isinstance(as_of, datetime):
            if as_of.tzinfo is None:
                raise InvalidArgumentError("as_of must be timezone-aware (or POSIX seconds)")
            target = int(as_of.timestamp() * 1000)
        elif isinstance(as_of, (int, float)) and not isinstance(as_of, bool):
            target = int(as_of * 1000)
        else:
            raise InvalidArgumentError(f"as_of must be a datetime or a number, not {as_of!r}")
        commits, _ = await log.list_log(self._storage)
        lo, hi, found = 0, len(commits) - 1, -1
        while lo <= hi:  # commit timestamps increase with the version
            mid = (lo + hi) // 2
            if await self._commit_time(commits[mid]) <= target:
                found, lo = commits[mid], mid + 1
            else:
                hi = mid - 1
        if found < 0:
            raise VersionNotFoundError(f"no version of the table existed at {as_of} (or its "
                                       "log was expired)")
        return found

    async def _commit_time(self, version: int,
                           paths: set[str] | None = None) -> int:
        """The commit time of ``version`` (ms); ``paths`` collects the data files it names."""
        actions = await read_commit(self._storage, version)
        if actions is None:
            raise VersionNotFoundError(f"commit {version} is missing")
        if paths is not None:
            for action in actions:
                for kind in ("add", "remove"):
                    if kind in action:
                        paths.add(unquote(action[kind]["path"]))
        for action in actions:
            if "commitInfo" in action and isinstance(action["commitInfo"].get("timestamp"), int):
                return int(action["commitInfo"]["timestamp"])
        info = await self._storage.head(commit_key(version))
        return int(info.mtime.timestamp() * 1000)

    async def _fetch(self, snapshot: Snapshot, columns: list[str] | None,
                     filter: Any) -> AsyncIterator[pa.Table]:
        """Each data file of ``snapshot`` as a table in the snapshot's schema (in log order);
        up to ``_FETCH_CONCURRENCY`` files fetched ahead."""
        if not snapshot.metadata:
            raise VersionNotFoundError("the table has no version yet")
        schema = full = delta_to_arrow(snapshot.metadata["schemaString"])
        if columns is not None:
            missing = [c for c in columns if schema.get_field_index(c) < 0]
            if missing:
                raise InvalidArgumentError(f"no such columns: {missing}")
            schema = pa.schema([schema.field(c) for c in columns])
        adds = list(snapshot.files.values())
        sem = asyncio.Semaphore(_FETCH_CONCURRENCY)

        async def get(add: dict[str, Any]) -> pa.Table:
            from urllib.parse import unquote

            async with sem:
                data = await self._storage.get(unquote(add["path"]))
            return await run_sync(_decode_file, data, schema, full, filter,
                                  add.get("partitionValues") or {})

        tasks = [asyncio.ensure_future(get(a)) for a in adds[:_FETCH_CONCURRENCY]]
        try:
            for i in range(len(adds)):
                table = await tasks[i]
                if i + _FETCH_CONCURRENCY < len(adds):
                    tasks.append(asyncio.ensure_future(get(adds[i + _FETCH_CONCURRENCY])))
                yield table
        finally:
            for task in tasks:
                task.cancel()

    async def read(self, version: int | None = None, as_of: datetime | float | None = None,
                   columns: list[str] | None = None, filter: Any = None,
                   output: str = "pandas") -> Any:
        """The table's rows at ``version`` / ``as_of`` (default: the latest).

        ``columns`` selects columns; ``filter`` is a pyarrow expression
        (``pyarrow.compute.field("x") > 3``) or DNF filters (``[("x", ">", 3)]``) applied
        while reading each file; ``output`` is ``"pandas"``, ``"arrow"`` or ``"polars"``.
        Files written with older schemas read with today's (new columns null).
        Errors: :class:`~aiostore.errors.VersionNotFoundError`. Cancellation: safe.
        """
        from ..formats import frames

        frames.check_output(output)
        snapshot = await self.snapshot(version, as_of)
        parts = [t async for t in self._fetch(snapshot, columns, filter)]
        schema = delta_to_arrow(snapshot.metadata["schemaString"])
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns])
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        return await run_sync(frames.convert_output, table, output)

    async def scan(self, version: int | None = None, columns: list[str] | None = None,
                   filter: Any = None) -> AsyncIterator[pa.RecordBatch]:
        """The rows as Arrow record batches, file by file (bounded memory: a few files in
        flight). Cancellation: safe."""
        snapshot = await self.snapshot(version)
        async for table in self._fetch(snapshot, columns, filter):
            for batch in table.to_batches():
                yield batch

    async def history(self) -> list[HistoryEntry]:
        """Every version still in the log, newest first."""
        commits, _ = await log.list_log(self._storage)
        sem = asyncio.Semaphore(_FETCH_CONCURRENCY)

        async def entry(version: int) -> HistoryEntry | None:
            async with sem:
                actions = await read_commit(self._storage, version)
            if actions is None:
                return None
            info: dict[str, Any] = next((a["commitInfo"] for a in actions
                                         if "commitInfo" in a), {})
            metrics = info.get("operationMetrics") or {}

            def metric(*names: str) -> int | None:
                for name in names:
                    if metrics.get(name) is not None:
                        return int(metrics[name])
                return None

            ts = info.get("timestamp") or 0
            return HistoryEntry(
                version=version, timestamp=datetime.fromtimestamp(ts / 1000, tz=timezone.utc),
                operation=str(info.get("operation", "UNKNOWN")),
                parameters=dict(info.get("operationParameters") or {}),
                rows_added=metric("num_added_rows", "numOutputRows"),
                rows_removed=metric("num_removed_rows", "numDeletedRows"),
                files_added=metric("num_added_files", "numFiles", "numAddedFiles"),
                files_removed=metric("num_removed_files", "numRemovedFiles"))

        entries = await asyncio.gather(*(entry(v) for v in commits))
        return [e for e in reversed(entries) if e is not None]

    # --- maintenance -----------------------------------------------------------------------
    async def restore(self, version: int) -> int:
        """Commit a new version whose contents equal ``version``'s; return it. Never rewrites
        or reuses a version. :class:`~aiostore.errors.VersionNotFoundError` if ``version``
        (or one of its data files) is gone."""
        async with self._lock:
            old = await load_snapshot(self._storage, version)
            await self.refresh()
            current = self._snapshot
            check_writable(current, "restore")
            for path in old.files:
                if path not in current.files:
                    try:
                        await self._storage.head(path)
                    except NotFoundError:
                        raise VersionNotFoundError(f"version {version} cannot be restored: "
                                                   f"its data file {path} was removed by "
                                                   "expiry") from None
            adds = [dict(a, dataChange=True, modificationTime=_now_ms())
                    for a in old.files.values()]
            rows = sum(int(json.loads(a["stats"]).get("numRecords", 0))
                       for p, a in old.files.items() if p not in current.files and a.get("stats"))
            metadata = None if old.metadata.get("schemaString") == \
                current.metadata.get("schemaString") else dict(old.metadata)
            return await self._commit(current, "restore", adds, None, rows, retry=False,
                                      parameters={"version": version}, metadata=metadata)

    async def expire_snapshots(self, keep_for: timedelta = timedelta(days=7),
                               keep_last: int = 1, dry_run: bool = True) -> ExpireReport:
        """Forget versions older than ``keep_for`` except the newest ``keep_last``.

        Removes their log entries (after making sure a checkpoint exists at the oldest kept
        version, so it stays readable), the data files only they reference, and orphaned data
        files (of failed commits) older than ``keep_for`` and at least an hour old. Files of
        kept versions, and recent files of commits possibly in flight, are never touched.
        Nor is a file that no log entry references unless aiostore wrote it (its name and the
        marker in its Parquet footer): any other is listed in ``foreign_files`` and left.
        ``dry_run=True`` (the default) removes nothing and reports exactly what would go.
        Time travel to an expired version then raises
        :class:`~aiostore.errors.VersionNotFoundError`.
        """
        if not isinstance(keep_for, timedelta) or keep_for < timedelta(0):
            raise InvalidArgumentError("keep_for must be a timedelta >= 0")
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise InvalidArgumentError("keep_last must be an int >= 1")
        async with self._lock:
            latest = await self.refresh()
            commits, checkpoints = await log.list_log(self._storage)
            if latest < 0:
                return ExpireReport(dry_run, [], -1)
            cutoff = _now_ms() - int(keep_for.total_seconds() * 1000)
            oldest = max(0, latest - keep_last + 1)
            first = min(commits + checkpoints)
            # the oldest kept version: the first committed at or after the cutoff, but never
            # newer than the newest keep_last
            candidate = first  # the version that was current at the cutoff: as_of works on
            named: dict[int, set[str]] = {}  # every moment of the keep_for window
            for v in commits:
                named[v] = set()
                if await self._commit_time(v, named[v]) > cutoff:
                    break
                candidate = v
            keep_from = max(first, min(candidate, oldest))
            expired = [v for v in commits if v < keep_from]
            # the old checkpoints go before the commits: a _last_checkpoint still naming one
            # (a pointer left behind by a failed or lagging write) must never lead a reader
            # to replay from it into a gap of deleted commits and take that checkpoint for the
            # latest version — a writer would then "commit" a version that already exists
            # under the newer checkpoints. A missing checkpoint sends readers to the listing.
            log_files = [log.checkpoint_key(v) for v in checkpoints if v < keep_from] + \
                [commit_key(v) for v in expired]
            kept = await load_snapshot(self._storage, keep_from)
            referenced = set(kept.files)
            for v in range(keep_from + 1, latest + 1):
                for action in await read_commit(self._storage, v) or []:
                    if "add" in action:
                        referenced.add(unquote(action["add"]["path"]))
            logged = set(kept.removed)  # the table's files by the log: tombstoned, or named
            for v in expired:              # by a commit being expired
                logged |= named.get(v, set())
            data_files: list[str] = []
            foreign: list[str] = []
            freed = 0
            async for info in self._storage.list():
                if info.key.startswith(("_", ".")) or "/_" in info.key or \
                        info.key in referenced:
                    continue
                if info.key not in logged:
                    # an orphan: deleted only when aiostore provably wrote it (a failed or
                    # cancelled write) and no commit of it can still be in flight
                    if not DATA_FILE_NAME.fullmatch(info.key):
                        foreign.append(info.key)
                        continue
                    if int(info.mtime.timestamp() * 1000) >= \
                            min(cutoff, _now_ms() - ORPHAN_GRACE_MS):
                        continue
                    if not await written_by_aiostore(self._storage, info.key, info.size):
                        foreign.append(info.key)
                        continue
                data_files.append(info.key)
                freed += info.size
            report = ExpireReport(dry_run, expired, keep_from, log_files, sorted(data_files),
                                  freed, sorted(foreign))
            if dry_run or (not log_files and not data_files):
                return report
            if keep_from not in checkpoints and expired:  # (newer checkpoints stay "last")
                await log.write_checkpoint(self._storage, kept, point_last=not any(
                    c > keep_from for c in checkpoints))
            for key in sorted(data_files) + log_files:
                await self._storage.delete(key)
            return report


def check_writable(snapshot: Snapshot, operation: str) -> None:
    """Writer-version-2 rules aiostore honours: ``delta.appendOnly`` tables take appends only;
    tables with column invariants are refused (aiostore does not evaluate them)."""
    config = snapshot.metadata.get("configuration") or {}
    if operation != "append" and str(config.get("delta.appendOnly", "")).lower() == "true":
        raise UnsupportedTableError(f"the table is append-only (delta.appendOnly): {operation} "
                                    "is not allowed")
    if "delta.invariants" in (snapshot.metadata.get("schemaString") or ""):
        raise UnsupportedTableError("the table has column invariants (delta.invariants), "
                                    "which aiostore does not check: it does not write to it")


def _decode_file(data: bytes, schema: pa.Schema, full: pa.Schema,
                 filter: Any, partition_values: Mapping[str, Any]) -> pa.Table:
    """One data file as a table in ``schema`` (blocking): missing columns null (files of
    older schemas), partition columns from the log, types cast to the table's. A filter is
    applied after that, on the table's full schema, so it may name any column — also one
    that older files lack."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(io.BytesIO(data))
    target = schema if filter is None else full
    names = file.schema_arrow.names
    table = file.read(columns=[f.name for f in target if f.name in names])
    for name, value in partition_values.items():
        if target.get_field_index(name) >= 0 and name not in table.column_names:
            field = target.field(name)
            array = pa.array([value] * table.num_rows, pa.string())
            table = table.append_column(name, array.cast(field.type))
    table = conform(table, target)
    if filter is not None:
        expression = filter if isinstance(filter, pc.Expression) else \
            pq.filters_to_expression(filter)
        try:
            table = table.filter(expression).select(schema.names)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidArgumentError(f"the filter does not apply to the table: {exc}") from exc
    return table


class _Opener:
    """What :func:`open_table` returns: awaitable (``table = await open_table(...)``) and an
    async context manager (``async with open_table(...) as table:``, closed on exit)."""

    def __init__(self, uri: str, create: bool, storage_options: Mapping[str, Any] | None,
                 checkpoint_interval: int, load: bool = True) -> None:
        if isinstance(checkpoint_interval, bool) or not isinstance(checkpoint_interval, int) \
                or checkpoint_interval < 0:
            raise InvalidArgumentError("checkpoint_interval must be an int >= 0 (0: never)")
        self._args = (uri, create, dict(storage_options or {}), checkpoint_interval)
        self._load = load  # False: the caller reads a given version (no need for the latest)
        self._table: Table | None = None

    async def _open(self) -> Table:
        uri, create, options, interval = self._args
        storage = open_storage(uri, **options)
        table = Table(storage, str(uri), create=create, checkpoint_interval=interval)
        try:
            await storage.__aenter__()
            if self._load:
                await table.refresh()
        except BaseException:
            await storage.aclose()
            raise
        self._table = table
        return table

    def __await__(self) -> Generator[Any, None, Table]:
        return self._open().__await__()

    async def __aenter__(self) -> Table:
        return await self._open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._table is not None:
            await self._table.aclose()


def open_table(uri: str, *, create: bool = True, storage_options: Mapping[str, Any] | None = None,
               checkpoint_interval: int = 10) -> _Opener:
    """Open the Delta table at ``uri`` (a directory path or ``s3://bucket/prefix``)::

        async with aiostore.open_table("s3://bucket/events", storage_options=opts) as t:
            v = await t.append(df)
            old = await t.read(version=0)

    ``create=True``: a location without a table is fine; the first write creates version 0.
    ``create=False``: :class:`~aiostore.errors.NotFoundError` if there is no table.
    ``checkpoint_interval``: write a checkpoint every N commits (0: never), so opening stays
    O(1) in the number of commits. Errors: :class:`~aiostore.errors.UnsupportedTableError` for
    a table whose protocol aiostore does not support.
    """
    return _Opener(uri, create, storage_options, checkpoint_interval)
