"""Snapshot tables: writes, schema rules, time travel, history, restore, expiry, checkpoints."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import aiostore
from aiostore import errors
from aiostore.tables.table import encode_data_file

pytestmark = pytest.mark.asyncio


def _log(path: Path) -> list[str]:
    return sorted(os.listdir(path / "_delta_log"))


async def test_append_read_every_input_and_output(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    async with aiostore.open_table(uri) as table:
        assert table.version == -1 and table.schema is None
        assert await table.append(pd.DataFrame({"a": [1, 2], "s": ["x", "y"]})) == 0
        assert await table.append([{"a": 3, "s": "z"}]) == 1
        assert await table.append(pa.table({"a": [4], "s": ["w"]})) == 2
        assert await table.append(pl.DataFrame({"a": [5], "s": ["v"]})) == 3
        batch = pa.RecordBatch.from_pylist([{"a": 6, "s": "u"}])
        reader = pa.RecordBatchReader.from_batches(batch.schema, [batch])
        assert await table.append(reader) == 4
        assert table.version == 4
        assert table.schema == pa.Table.from_pylist([{"a": 1, "s": "x"}]).schema
        df = await table.read()
        assert list(df["a"]) == [1, 2, 3, 4, 5, 6]
        arrow = await table.read(output="arrow", columns=["s"])
        assert arrow.column_names == ["s"] and arrow.num_rows == 6
        polars_df = await table.read(output="polars", filter=[("a", ">", 4)])
        assert sorted(polars_df["a"].to_list()) == [5, 6]
        batches = [b async for b in table.scan(columns=["a"])]
        assert sum(b.num_rows for b in batches) == 6
        with pytest.raises(errors.SerializationError):
            await table.append("not a frame")
        with pytest.raises(errors.InvalidArgumentError):
            await table.read(output="excel")
    assert await aiostore.read_table(uri, output_as="arrow") is not None
    with pytest.raises(errors.NotFoundError):
        await aiostore.read_table(str(tmp_path / "nothing"))


async def test_schema_is_enforced_and_nothing_is_committed(tmp_path: Path) -> None:
    uri = tmp_path / "t"
    async with aiostore.open_table(str(uri)) as table:
        await table.append(pd.DataFrame({"a": [1], "s": ["x"]}))
        before = sorted(os.listdir(uri))
        for bad in (pd.DataFrame({"a": [1.5], "s": ["x"]}),       # another type
                    pd.DataFrame({"a": [1]}),                      # a missing column
                    pd.DataFrame({"a": [1], "s": ["x"], "n": [1]}),  # an extra column
                    [{"a": "text", "s": "x"}]):                    # the same, from dicts
            with pytest.raises(errors.SchemaMismatchError):
                await table.append(bad)
        assert sorted(os.listdir(uri)) == before and table.version == 0
        with pytest.raises(errors.InvalidArgumentError):
            await table.append(pd.DataFrame({"a": [1], "s": ["x"]}), schema_mode="overwrite")


async def test_schema_evolution_by_merge(tmp_path: Path) -> None:
    async with aiostore.open_table(str(tmp_path / "t")) as table:
        await table.append(pa.table({"a": pa.array([1], pa.int32()), "s": ["x"]}))
        await table.append(pa.table({"a": pa.array([2], pa.int64()), "s": ["y"],
                                     "n": [0.5]}), schema_mode="merge")
        await table.append(pa.table({"a": pa.array([3], pa.int8())}), schema_mode="merge")
        assert table.schema == pa.Table.from_pylist([{"a": 1, "s": "x", "n": 0.5}]).schema
        rows = (await table.read(output="arrow")).to_pylist()
        assert rows == [{"a": 1, "s": "x", "n": None}, {"a": 2, "s": "y", "n": 0.5},
                        {"a": 3, "s": None, "n": None}]
        with pytest.raises(errors.SchemaMismatchError):  # narrowing is not evolution
            await table.append(pa.table({"a": ["text"]}), schema_mode="merge")
        v = await table.overwrite(pa.table({"b": [True]}), schema_mode="overwrite")
        assert (await table.read(output="arrow")).to_pylist() == [{"b": True}]
        assert (await table.read(version=v - 1, output="arrow")).num_rows == 3


async def test_time_travel_history_and_restore(tmp_path: Path) -> None:
    async with aiostore.open_table(str(tmp_path / "t")) as table:
        await table.append(pd.DataFrame({"a": [1]}))
        middle = datetime.now(timezone.utc)
        await table.append(pd.DataFrame({"a": [2]}))
        await table.overwrite(pd.DataFrame({"a": [9]}))
        assert list((await table.read())["a"]) == [9]
        assert list((await table.read(version=1))["a"]) == [1, 2]
        assert list((await table.read(as_of=middle))["a"]) == [1]
        assert list((await table.read(as_of=middle.timestamp()))["a"]) == [1]
        with pytest.raises(errors.VersionNotFoundError):
            await table.read(version=7)
        with pytest.raises(errors.VersionNotFoundError):
            await table.read(as_of=datetime(2000, 1, 1, tzinfo=timezone.utc))
        history = await table.history()
        assert [h.version for h in history] == [2, 1, 0]
        assert history[0].parameters == {"mode": "Overwrite"}
        assert (history[0].rows_added, history[0].rows_removed) == (1, 2)
        assert history[2].files_added == 1
        restored = await table.restore(1)
        assert restored == 3  # a new version: nothing is rewritten
        assert sorted((await table.read())["a"]) == [1, 2]
        assert (await table.history())[0].operation == "RESTORE"
        assert list((await table.read(version=2))["a"]) == [9]


async def test_checkpoints_keep_opening_constant(tmp_path: Path) -> None:
    uri = tmp_path / "t"
    async with aiostore.open_table(str(uri), checkpoint_interval=10) as table:
        for i in range(25):
            await table.append(pd.DataFrame({"a": [i]}))
    log = _log(uri)
    assert "00000000000000000020.checkpoint.parquet" in log
    assert json.loads((uri / "_delta_log" / "_last_checkpoint").read_text())["version"] == 20
    table = await aiostore.open_table(str(uri))
    storage: Any = table._storage
    fetched: list[str] = []
    real_get = storage.get

    async def counting_get(key: str, **kwargs: Any) -> bytes:
        fetched.append(key)
        data: bytes = await real_get(key, **kwargs)
        return data

    storage.get = counting_get
    await table.refresh()
    assert table.version == 24
    assert len(fetched) <= 7, fetched  # _last_checkpoint, checkpoint 20, 21..24, probe 25
    assert sorted((await table.read())["a"]) == list(range(25))
    await table.aclose()


async def test_expire_snapshots(tmp_path: Path) -> None:
    uri = tmp_path / "t"
    async with aiostore.open_table(str(uri)) as table:
        for i in range(4):
            await table.overwrite(pd.DataFrame({"a": [i]}))
        await table.append(pd.DataFrame({"a": [10]}))
        payload, _ = encode_data_file(pa.table({"a": [99]}))  # what a failed commit leaves
        recent = uri / f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        recent.write_bytes(payload)  # in flight
        old_orphan = uri / f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        old_orphan.write_bytes(payload)
        os.utime(old_orphan, (1e9, 1e9))
        files_before = sorted(os.listdir(uri))
        report = await table.expire_snapshots(keep_for=timedelta(0), keep_last=2)
        assert report.dry_run and report.expired_versions == [0, 1, 2]
        assert report.oldest_kept == 3
        assert sorted(os.listdir(uri)) == files_before  # a dry run
        assert old_orphan.name in report.data_files
        assert recent.name not in report.data_files
        assert len(report.data_files) == 4  # versions 0, 1, 2's files + the old orphan
        assert report.foreign_files == []
        done = await table.expire_snapshots(keep_for=timedelta(0), keep_last=2, dry_run=False)
        assert done.data_files == report.data_files and done.log_files == report.log_files
        assert recent.exists() and not old_orphan.exists()
        assert sorted((await table.read())["a"]) == [3, 10]
        assert list((await table.read(version=3))["a"]) == [3]
        with pytest.raises(errors.VersionNotFoundError, match="expired"):
            await table.read(version=1)
        assert "00000000000000000003.checkpoint.parquet" in _log(uri)
        nothing = await table.expire_snapshots(keep_for=timedelta(days=7), dry_run=False)
        assert nothing.expired_versions == [] and nothing.data_files == []
    async with aiostore.open_table(str(uri)) as again:  # opens from the kept checkpoint
        assert again.version == 4


async def test_unsupported_protocols_are_refused(tmp_path: Path) -> None:
    uri = tmp_path / "t"
    (uri / "_delta_log").mkdir(parents=True)
    commit = uri / "_delta_log" / "00000000000000000000.json"
    commit.write_text(json.dumps({"protocol": {"minReaderVersion": 3, "minWriterVersion": 7,
                                               "readerFeatures": ["deletionVectors"],
                                               "writerFeatures": ["deletionVectors"]}}) + "\n")
    with pytest.raises(errors.UnsupportedTableError, match="deletionVectors"):
        await aiostore.open_table(str(uri))
    assert _log(uri) == ["00000000000000000000.json"]


async def test_overwrite_conflicts_unless_retried(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    async with aiostore.open_table(uri) as first, aiostore.open_table(uri) as second:
        await first.append(pd.DataFrame({"a": [1]}))
        await second.refresh()
        await first.append(pd.DataFrame({"a": [2]}))  # second has not seen this
        with pytest.raises(errors.CommitConflictError, match="retry=True"):
            await second.overwrite(pd.DataFrame({"a": [3]}))
        assert sorted((await first.read())["a"]) == [1, 2]
        assert await second.overwrite(pd.DataFrame({"a": [3]}), retry=True) == 2
        assert await second.append(pd.DataFrame({"a": [4]})) == 3
        assert await first.append(pd.DataFrame({"a": [5]})) == 4  # appends rebase
        assert sorted((await first.read())["a"]) == [3, 4, 5]


async def test_module_level_shorthands(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    assert await aiostore.write_snapshot(pd.DataFrame({"a": [1]}), uri) == 0
    assert await aiostore.write_snapshot(pd.DataFrame({"a": [2]}), uri, mode="overwrite") == 1
    assert list((await aiostore.read_table(uri, version=0))["a"]) == [1]
    report = await aiostore.expire_snapshots(uri, keep_for=timedelta(0))
    assert report.dry_run and report.expired_versions == [0]
    with pytest.raises(errors.InvalidArgumentError):
        await aiostore.write_snapshot(pd.DataFrame({"a": [1]}), uri, mode="upsert")


async def test_statistics_bounds_hold_for_other_engines(tmp_path: Path) -> None:
    import deltalake

    uri = str(tmp_path / "t")
    long_value = "z" * 40
    stamp = pd.Timestamp("2026-01-01 00:00:00.000999", tz="UTC")
    await aiostore.write_snapshot(pd.DataFrame({"s": ["a", long_value], "at": [stamp, stamp]}),
                                  uri)
    table = deltalake.DeltaTable(uri)
    assert table.to_pyarrow_table(filters=[("s", "=", long_value)]).num_rows == 1
    assert table.to_pyarrow_table(filters=[("at", "=", stamp.to_pydatetime())]).num_rows == 2


async def test_filters_on_columns_older_files_lack(tmp_path: Path) -> None:
    async with aiostore.open_table(str(tmp_path / "t")) as table:
        await table.append(pd.DataFrame({"a": [1, 2]}))
        await table.append(pd.DataFrame({"a": [3], "b": ["x"]}), schema_mode="merge")
        got = await table.read(filter=[("b", "=", "x")], columns=["a"], output="arrow")
        assert got.to_pylist() == [{"a": 3}]
        with pytest.raises(errors.InvalidArgumentError):
            await table.read(filter=[("nope", "=", 1)])


async def test_case_insensitive_names_and_not_null_columns(tmp_path: Path) -> None:
    import deltalake

    uri = str(tmp_path / "t")
    fields: list[pa.Field[Any]] = [pa.field("id", pa.int64(), nullable=False),
                                   pa.field("v", pa.string())]
    schema = pa.schema(fields)
    deltalake.write_deltalake(uri, pa.table({"id": [1], "v": ["x"]}, schema=schema))
    async with aiostore.open_table(uri) as table:
        with pytest.raises(errors.SchemaMismatchError, match="NOT NULL"):
            await table.append(pa.table({"id": pa.array([None], pa.int64()), "v": ["y"]}))
        with pytest.raises(errors.SchemaMismatchError, match="case"):
            await table.append(pa.table({"id": [2], "v": ["y"], "V": ["z"]}),
                               schema_mode="merge")
        assert await table.append(pa.table({"id": [2], "v": ["y"]})) == 1
        assert table.schema is not None and not table.schema.field("id").nullable
    assert deltalake.DeltaTable(uri).to_pyarrow_table().num_rows == 2


async def test_append_only_tables_refuse_overwrites(tmp_path: Path) -> None:
    import deltalake

    uri = str(tmp_path / "t")
    deltalake.write_deltalake(uri, pa.table({"a": [1]}),
                              configuration={"delta.appendOnly": "true"})
    async with aiostore.open_table(uri) as table:
        await table.append(pa.table({"a": [2]}))
        with pytest.raises(errors.UnsupportedTableError, match="append-only"):
            await table.overwrite(pa.table({"a": [3]}))
        with pytest.raises(errors.UnsupportedTableError, match="append-only"):
            await table.restore(0)


async def test_a_conflict_leaves_no_orphan_and_catches_up(tmp_path: Path) -> None:
    root = tmp_path / "t"
    async with aiostore.open_table(str(root)) as first, \
            aiostore.open_table(str(root)) as second:
        await first.append(pd.DataFrame({"a": [1]}))
        await second.refresh()
        await first.append(pd.DataFrame({"a": [2]}))
        files = sorted(p for p in os.listdir(root) if p.endswith(".parquet"))
        with pytest.raises(errors.CommitConflictError):
            await second.overwrite(pd.DataFrame({"a": [3]}))
        assert sorted(p for p in os.listdir(root) if p.endswith(".parquet")) == files
        assert second.version == 1  # caught up: a plain retry now works
        assert await second.overwrite(pd.DataFrame({"a": [3]})) == 2


async def test_expiry_keeps_the_version_current_at_the_cutoff(tmp_path: Path) -> None:
    uri = tmp_path / "t"
    async with aiostore.open_table(str(uri)) as table:
        await table.append(pd.DataFrame({"a": [1]}))
        await table.append(pd.DataFrame({"a": [2]}))
        cutoff = datetime.now(timezone.utc)
        await table.overwrite(pd.DataFrame({"a": [3]}))
        keep_for = datetime.now(timezone.utc) - cutoff
        report = await table.expire_snapshots(keep_for=keep_for, dry_run=False)
        assert report.oldest_kept == 1 and report.expired_versions == [0]
        assert sorted((await table.read(as_of=cutoff))["a"]) == [1, 2]


async def test_checkpoints_drop_tombstones_past_the_retention() -> None:
    import time

    from aiostore.tables.log import Snapshot, decode_checkpoint, encode_checkpoint

    now = int(time.time() * 1000)
    snapshot = Snapshot(version=3, protocol={"minReaderVersion": 1, "minWriterVersion": 2},
                        metadata={"id": "x", "schemaString": '{"type":"struct","fields":[]}',
                                  "format": {"provider": "parquet", "options": {}},
                                  "partitionColumns": [], "configuration": {}})
    snapshot.files["live.parquet"] = {"path": "live.parquet", "partitionValues": {},
                                      "size": 1, "modificationTime": now, "dataChange": True}
    for name, age_days in (("recent.parquet", 1), ("old.parquet", 8)):
        snapshot.removed[name] = {"path": name, "dataChange": True, "size": 1,
                                  "deletionTimestamp": now - age_days * 86_400_000}
    back = decode_checkpoint(encode_checkpoint(snapshot), 3)
    assert list(back.files) == ["live.parquet"]
    assert list(back.removed) == ["recent.parquet"]


async def test_checkpoints_of_many_actions_round_trip(tmp_path: Path) -> None:
    # checkpoints are converted in steps of log._STEP_ROWS rows (the loop runs between
    # steps): every action of every kind survives the step boundaries, blocking or not
    import time

    from aiostore.tables import log

    now = int(time.time() * 1000)
    n = 2 * log._STEP_ROWS + 1
    snapshot = log.Snapshot(version=7, protocol={"minReaderVersion": 1, "minWriterVersion": 2},
                            metadata={"id": "x", "name": "t", "schemaString": "{}",
                                      "format": {"provider": "parquet", "options": {"k": "v"}},
                                      "partitionColumns": [], "configuration": {"a": "1"},
                                      "createdTime": now})
    for i in range(n):
        snapshot.txns[f"app{i}"] = {"appId": f"app{i}", "version": i, "lastUpdated": now}
        snapshot.files[f"f {i}.parquet"] = {
            "path": f"f%20{i}.parquet", "partitionValues": {"p": str(i)} if i % 2 else {},
            "size": i, "modificationTime": now, "dataChange": False,
            "stats": f'{{"numRecords":{i}}}', **({"tags": {"t": "x"}} if i % 3 else {})}
        snapshot.removed[f"r{i}.parquet"] = {
            "path": f"r{i}.parquet", "deletionTimestamp": now, "dataChange": False,
            "extendedFileMetadata": True, "partitionValues": {}, "size": i}
    back = log.decode_checkpoint(log.encode_checkpoint(snapshot), 7)
    async with aiostore.open_storage(tmp_path) as storage:
        await log.write_checkpoint(storage, snapshot)
        loaded = await log.load_snapshot(storage, 7)
    for got in (back, loaded):
        assert (got.version, got.protocol, got.metadata) == \
            (7, snapshot.protocol, snapshot.metadata)
        assert got.files == snapshot.files and list(got.files) == list(snapshot.files)
        assert got.removed == snapshot.removed and got.txns == snapshot.txns


async def test_expiry_never_deletes_files_aiostore_did_not_write(tmp_path: Path) -> None:
    # files in the table's folder that no log entry ever referenced: only an orphan aiostore
    # provably wrote (its name and the marker in its footer) may go; the others are reported
    import pyarrow.parquet as pq

    uri = tmp_path / "t"
    async with aiostore.open_table(str(uri)) as table:
        await table.append(pd.DataFrame({"a": [1]}))
        await table.overwrite(pd.DataFrame({"a": [2]}))
        foreign_parquet = uri / f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        pq.write_table(pa.table({"a": [7]}), foreign_parquet)  # e.g. another engine's file
        notes = uri / "notes.txt"
        notes.write_text("the user's own notes")
        garbage = uri / f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        garbage.write_bytes(b"not parquet at all")
        own_orphan = uri / f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        own_orphan.write_bytes(encode_data_file(pa.table({"a": [9]}))[0])
        for path in (foreign_parquet, notes, garbage, own_orphan):
            os.utime(path, (1e9, 1e9))
        contents = {p: p.read_bytes() for p in (foreign_parquet, notes, garbage)}
        report = await table.expire_snapshots(keep_for=timedelta(0), dry_run=False)
        assert report.expired_versions == [0]
        assert report.foreign_files == sorted([foreign_parquet.name, notes.name,
                                               garbage.name])
        assert own_orphan.name in report.data_files and not own_orphan.exists()
        for path, data in contents.items():
            assert path.read_bytes() == data
        assert list((await table.read())["a"]) == [2]


async def test_interrupted_expiry_never_leaves_a_stale_checkpoint_pointer_before_a_gap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # _last_checkpoint still names checkpoint 2 (a lagging writer's pointer) while checkpoint 4
    # is the newest; expiry keeps 4.. and is interrupted: replaying from checkpoint 2 into the
    # deleted commits 3.. would take version 2 for the latest, and an append would "commit" a
    # version 3 that no reader of the real table ever sees
    from aiostore.storage.local import LocalStorage

    uri = tmp_path / "t"
    async with aiostore.open_table(str(uri), checkpoint_interval=2) as table:
        for i in range(6):
            await table.append(pd.DataFrame({"a": [i]}))
    assert "00000000000000000004.checkpoint.parquet" in _log(uri)
    pointer = uri / "_delta_log" / "_last_checkpoint"
    pointer.write_text(json.dumps({"version": 2, "size": 4}))
    real_delete = LocalStorage.delete

    async def delete(self: LocalStorage, key: str) -> None:
        if key.endswith("00000000000000000002.checkpoint.parquet"):
            raise errors.StorageUnavailableError(5, "interrupted")
        await real_delete(self, key)

    monkeypatch.setattr(LocalStorage, "delete", delete)
    async with aiostore.open_table(str(uri)) as table:
        with pytest.raises(errors.StorageUnavailableError):
            await table.expire_snapshots(keep_for=timedelta(0), keep_last=2, dry_run=False)
    async with aiostore.open_table(str(uri)) as again:
        assert again.version == 5
        assert await again.append(pd.DataFrame({"a": [6]})) == 6
        assert sorted((await again.read())["a"]) == list(range(7))


async def test_checkpoints_are_created_never_replaced_and_the_pointer_only_moves_forward(
        tmp_path: Path) -> None:
    from aiostore.tables import log

    uri = tmp_path / "t"
    async with aiostore.open_table(str(uri), checkpoint_interval=0) as table:
        for i in range(6):
            await table.append(pd.DataFrame({"a": [i]}))
    pointer = uri / "_delta_log" / "_last_checkpoint"
    async with aiostore.open_storage(str(uri)) as storage:
        newer = await log.load_snapshot(storage, 4)
        older = await log.load_snapshot(storage, 2)
        await log.write_checkpoint(storage, newer)
        assert json.loads(pointer.read_text())["version"] == 4
        await log.write_checkpoint(storage, older)  # a writer that lagged behind
        assert "00000000000000000002.checkpoint.parquet" in _log(uri)
        assert json.loads(pointer.read_text())["version"] == 4
        theirs = uri / "_delta_log" / "00000000000000000004.checkpoint.parquet"
        data = theirs.read_bytes()
        os.utime(theirs, (1e9, 1e9))
        await log.write_checkpoint(storage, newer)  # one exists: left as it is
        assert theirs.read_bytes() == data and theirs.stat().st_mtime == 1e9
    async with aiostore.open_table(str(uri)) as again:
        assert again.version == 5
