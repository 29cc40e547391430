"""Snapshot tables and the Delta Lake ecosystem: deltalake (delta-rs) reads every version
aiostore writes, and aiostore reads what deltalake writes — locally and on the S3 server.
Plus the crash and concurrency guarantees: 4 processes x 25 appends, SIGKILL, fault-injected
crashes at every step of a commit."""

from __future__ import annotations

import contextlib
import io
import shutil
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import deltalake
import pandas as pd
import pyarrow as pa
import pytest

import aiostore
from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem, SimulatedCrash
from aiostore.testing.seaweedfs import SeaweedFS

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any],
                                                                   dict[str, str]]:
    """(table URI, aiostore storage_options, deltalake storage_options)."""
    if request.param == "local":
        return str(tmp_path / "table"), {}, {}
    bucket: str = request.getfixturevalue("s3_bucket")
    server: SeaweedFS = request.getfixturevalue("s3_server")
    env = server.env()
    delta_options = {"AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"],
                     "AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
                     "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
                     "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    return f"s3://{bucket}/table", dict(server.storage_options()), delta_options


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: (str(r.get("id")), str(r)))


def _frame(start: int, n: int) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame({
        "id": range(start, start + n), "name": [f"n{i}" for i in range(n)],
        "score": [i * 0.5 for i in range(n)],
        "at": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC")})
    return frame


async def test_deltalake_reads_every_version_aiostore_writes(
        where: tuple[str, dict[str, Any], dict[str, str]]) -> None:
    uri, options, delta_options = where
    async with aiostore.open_table(uri, storage_options=options,
                                   checkpoint_interval=3) as table:
        await table.append(_frame(0, 50))
        await table.append(_frame(50, 10))
        await table.append(pd.DataFrame({"id": [60], "name": ["x"], "score": [1.0],
                                         "at": [pd.Timestamp("2026-02-01", tz="UTC")],
                                         "extra": [True]}), schema_mode="merge")
        await table.overwrite(_frame(100, 5), schema_mode="merge")
        await table.append(_frame(200, 3), schema_mode="merge")
        await table.restore(1)
        for version in range(table.version + 1):
            ours = await table.read(version=version, output="arrow")
            theirs = deltalake.DeltaTable(uri, version=version,
                                          storage_options=delta_options).to_pyarrow_table()
            assert _rows(theirs) == _rows(ours), f"version {version} differs"
        history = deltalake.DeltaTable(uri, storage_options=delta_options).history()
        assert len(history) == table.version + 1


async def test_aiostore_reads_what_deltalake_writes(
        where: tuple[str, dict[str, Any], dict[str, str]]) -> None:
    uri, options, delta_options = where
    first = pa.Table.from_pandas(_frame(0, 20), preserve_index=False)
    deltalake.write_deltalake(uri, first, storage_options=delta_options)
    for i in range(3):
        deltalake.write_deltalake(uri, pa.Table.from_pandas(_frame(100 * (i + 1), 5),
                                                            preserve_index=False),
                                  mode="append", storage_options=delta_options)
    deltalake.DeltaTable(uri, storage_options=delta_options).create_checkpoint()
    deltalake.write_deltalake(uri, pa.Table.from_pandas(_frame(900, 2), preserve_index=False),
                              mode="overwrite", storage_options=delta_options)
    async with aiostore.open_table(uri, storage_options=options) as table:
        assert table.version == 4
        for version in range(5):
            theirs = deltalake.DeltaTable(uri, version=version,
                                          storage_options=delta_options).to_pyarrow_table()
            ours = await table.read(version=version, output="arrow")
            assert _rows(theirs) == _rows(ours), f"version {version} differs"
        assert await table.append(_frame(1000, 1)) == 5  # and appends to it
    final = deltalake.DeltaTable(uri, storage_options=delta_options).to_pyarrow_table()
    assert sorted(int(x) for x in final.column("id").to_pylist() if x is not None) == \
        [900, 901, 1000]


async def test_aiostore_reads_partitioned_deltalake_tables(tmp_path: Path) -> None:
    uri = str(tmp_path / "parts")
    data = pa.table({"region": ["eu", "us", "eu"], "v": [1, 2, 3]})
    deltalake.write_deltalake(uri, data, partition_by=["region"])
    rows = (await aiostore.read_table(uri, output_as="arrow")).to_pylist()
    assert sorted(rows, key=lambda r: r["v"]) == [{"region": "eu", "v": 1},
                                                  {"region": "us", "v": 2},
                                                  {"region": "eu", "v": 3}]
    async with aiostore.open_table(uri) as table:
        with pytest.raises(aiostore.errors.UnsupportedTableError, match="partitioned"):
            await table.append(data)


APPENDER = r"""
import asyncio, sys, json
import pandas as pd
import aiostore
async def main():
    uri, worker, options = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    async with aiostore.open_table(uri, storage_options=options) as table:
        for i in range(25):
            v = await table.append(pd.DataFrame({"worker": [worker], "i": [i]}))
            print(v, flush=True)
asyncio.run(main())
"""


async def test_four_processes_append_without_losing_a_commit(
        where: tuple[str, dict[str, Any], dict[str, str]]) -> None:
    import json

    uri, options, delta_options = where
    await aiostore.write_snapshot(pd.DataFrame({"worker": [-1], "i": [-1]}), uri,
                                  storage_options=options)
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, uri, str(w), json.dumps(options)],
                              stdout=subprocess.PIPE, text=True) for w in range(4)]
    versions: list[int] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0
        versions += [int(line) for line in out.split()]
    assert sorted(versions) == list(range(1, 101))  # every append got its own version
    rows = (await aiostore.read_table(uri, output_as="arrow",
                                      storage_options=options)).to_pylist()
    assert sorted((r["worker"], r["i"]) for r in rows if r["worker"] >= 0) == \
        [(w, i) for w in range(4) for i in range(25)]
    assert deltalake.DeltaTable(uri, storage_options=delta_options).version() == 100


KILLED = r"""
import asyncio, sys
import pandas as pd
import aiostore
async def main():
    async with aiostore.open_table(sys.argv[1], checkpoint_interval=5) as table:
        i = 0
        while True:
            v = await table.append(pd.DataFrame({"i": [i] * 100}))
            print(v, i, flush=True)
            i += 1
asyncio.run(main())
"""


async def test_a_sigkilled_writer_leaves_the_old_or_the_new_version(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    proc = subprocess.Popen([sys.executable, "-c", KILLED, uri], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    acked: list[tuple[int, ...]] = []
    while len(acked) < 12:
        line = proc.stdout.readline()
        assert line, "the writer died"
        acked.append(tuple(int(x) for x in line.split()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    acked += [tuple(int(x) for x in line.split()) for line in proc.stdout.read().split("\n")
              if line.strip()]
    proc.stdout.close()
    async with aiostore.open_table(uri) as table:
        assert table.version >= acked[-1][0]
        rows = (await table.read(output="arrow")).column("i").to_pylist()
        for _, i in acked:
            assert rows.count(i) == 100, f"acknowledged append {i} is not whole"
        assert all(rows.count(i) == 100 for i in set(rows))  # nothing partial either
    assert deltalake.DeltaTable(uri).version() == table.version


async def _append_twice(root: Path, fs: FaultyFileSystem, done: list[int]) -> None:
    with use_fs(fs):
        async with aiostore.open_table(str(root / "t"), checkpoint_interval=2) as table:
            for i in range(2):
                done.append(await table.append(pd.DataFrame({"i": [i] * 10})))


async def test_crash_at_every_step_of_a_commit(tmp_path: Path) -> None:
    await aiostore.write_snapshot(pd.DataFrame({"i": [-1] * 10}), str(tmp_path / "t"))
    template = tmp_path / "template"
    shutil.copytree(tmp_path / "t", template)
    probe = FaultyFileSystem(tmp_path)
    await _append_twice(tmp_path, probe, [])
    total = probe.mutations
    assert total > 10
    for k in range(1, total + 1):
        shutil.rmtree(tmp_path / "t")
        shutil.copytree(template, tmp_path / "t")
        fs = FaultyFileSystem(tmp_path, crash_at=k)
        done: list[int] = []
        with contextlib.suppress(SimulatedCrash):
            await _append_twice(tmp_path, fs, done)
        fs.crash()
        async with aiostore.open_table(str(tmp_path / "t")) as table:
            assert table.version >= (done[-1] if done else 0), f"crash at {k}: lost a commit"
            rows = (await table.read(output="arrow")).column("i").to_pylist()
            assert sorted(set(rows)) == list(range(-1, table.version)), f"crash at {k}"
            assert all(rows.count(i) == 10 for i in set(rows)), f"crash at {k}: torn"


async def test_expiry_deletes_only_its_own_orphans(where: tuple[str, dict[str, Any],
                                                                 dict[str, str]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # on S3 too: an orphan is proven aiostore's by its name and the marker in its Parquet
    # footer (read with ranged GETs); anything else under the prefix is reported, never deleted
    import uuid

    import pyarrow.parquet as pq

    from aiostore.tables import table as table_module

    monkeypatch.setattr(table_module, "ORPHAN_GRACE_MS", -60_000)  # no waiting an hour
    uri, options, _ = where
    own = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    other = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [7]}), sink)  # a plain Parquet file, of another engine
    wide = pa.table({f"c{i}": [i] for i in range(1000)})  # a footer past the first probe
    payload = table_module.encode_data_file(wide)[0]
    assert int.from_bytes(payload[-8:-4], "little") > table_module._FOOTER_PROBE
    async with aiostore.open_storage(uri, **options) as storage:
        await storage.put(own, payload)
        await storage.put(other, sink.getvalue())
        await storage.put("README.md", b"# my table\n")
    async with aiostore.open_table(uri, storage_options=options) as table:
        await table.append(pa.table({"a": [2]}))
        report = await table.expire_snapshots(keep_for=timedelta(0), dry_run=False)
        assert report.data_files == [own]
        assert report.foreign_files == sorted(["README.md", other])
        assert (await table.read(output="arrow")).column("a").to_pylist() == [2]
    async with aiostore.open_storage(uri, **options) as storage:
        keys = [info.key async for info in storage.list()]
    assert own not in keys and other in keys and "README.md" in keys
