"""Snapshot tables: versions, schema evolution, time travel, history, restore, expiry, interop.

``python examples/snapshot_tables.py [DIRECTORY]`` (default: a temporary directory). The table
is a Delta Lake table; if ``deltalake`` is installed, the script reads it with deltalake too.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

import aiostore
from aiostore import errors


async def main(root: Path) -> None:
    """Write a few versions of an orders table, then travel, restore and expire them."""
    table_dir, n = root / "orders", 1
    while table_dir.exists():  # a fresh table each run
        n += 1
        table_dir = root / f"orders-{n}"
    path = str(table_dir)  # an "s3://bucket/orders" URI works the same way

    async with aiostore.open_table(path) as table:
        # every write is a new version: 0, 1, 2, ...
        v0 = await table.append(pd.DataFrame({"order_id": [1, 2], "amount": [9.5, 20.0]}))
        v1 = await table.append([{"order_id": 3, "amount": 4.25}])  # a list of dicts
        await asyncio.sleep(0.01)
        moment = datetime.now(timezone.utc)  # between version 1 and version 2
        await asyncio.sleep(0.01)
        v2 = await table.append(pd.DataFrame({"order_id": [4], "amount": [15.0]}))
        print(f"versions {v0}, {v1}, {v2}; schema: {table.schema.names if table.schema else None}")

        # schema evolution: merge adds a nullable column (older rows read it as null)
        v3 = await table.append(pd.DataFrame({"order_id": [5], "amount": [7.0],
                                              "country": ["DE"]}), schema_mode="merge")
        countries = await table.read(columns=["country"], output="arrow")
        print(f"version {v3} added a column:", countries.column("country").to_pylist())

        # data that does not fit: refused before anything is written
        try:
            await table.append(pd.DataFrame({"order_id": [6], "amount": ["a lot"],
                                             "country": ["FR"]}))
        except errors.SchemaMismatchError as exc:
            print(f"refused: {exc}")
        print("still at version", table.version)

        # time travel: by version, and by time (the last version committed at or before it)
        print("version 0 ids:", sorted((await table.read(version=v0))["order_id"]))
        as_of = await table.read(as_of=moment)
        print(f"as of {moment:%H:%M:%S.%f} (version {v1}):", sorted(as_of["order_id"]))

        # an overwrite replaces the rows; the old versions stay readable
        v4 = await table.overwrite(pd.DataFrame({"order_id": [100], "amount": [1.0],
                                                 "country": ["US"]}))
        print(f"version {v4} after overwrite:", (await table.read())["order_id"].tolist())

        # restore commits a new version equal to an old one (nothing is rewritten)
        v5 = await table.restore(v2)
        print(f"version {v5} restores version {v2}:", sorted((await table.read())["order_id"]))
        for entry in await table.history():
            print(f"  v{entry.version} {entry.timestamp:%H:%M:%S.%f} {entry.operation} "
                  f"{entry.parameters} +{entry.rows_added} -{entry.rows_removed} rows")

        # retention: a dry run first (the default), then for real
        plan = await table.expire_snapshots(keep_for=timedelta(0), keep_last=2)
        print(f"dry run: would expire versions {plan.expired_versions}, delete "
              f"{len(plan.log_files)} log files and {len(plan.data_files)} data files "
              f"({plan.bytes_freed} bytes)")
        done = await table.expire_snapshots(keep_for=timedelta(0), keep_last=2, dry_run=False)
        print(f"expired versions {done.expired_versions}; time travel works from version "
              f"{done.oldest_kept} on")
        try:
            await table.read(version=v0)
        except errors.VersionNotFoundError as exc:
            print(f"version {v0}: {exc}")
        print("latest still:", sorted((await table.read())["order_id"]))
        oldest = done.oldest_kept

    read_with_deltalake(path, oldest)


def read_with_deltalake(path: str, oldest: int) -> None:
    """The same table through deltalake (delta-rs), if it is installed."""
    try:
        from deltalake import DeltaTable
    except ImportError:
        print("(deltalake is not installed: pip install deltalake to read the table with it)")
        return
    dt = DeltaTable(path)
    rows = dt.to_pandas()
    print(f"deltalake: version {dt.version()}, {len(rows)} rows, ids "
          f"{sorted(rows['order_id'].tolist())}, {len(dt.history())} versions in its history")
    old = DeltaTable(path, version=oldest).to_pandas()
    print(f"deltalake at version {oldest}: ids {sorted(old['order_id'].tolist())}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(Path(sys.argv[1])))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(Path(tmp)))
