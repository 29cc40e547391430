"""Export frames to a database, all or nothing: SQLite by default, PostgreSQL with --postgres.

``python examples/sql_export.py [DIRECTORY] [--postgres URL]``. Without ``--postgres`` the
database is a SQLite file in DIRECTORY (default: a temporary directory): no server needed.
With ``--postgres postgresql://user@host/db`` the same steps run against PostgreSQL (tables
``aiostore_example_orders`` and ``aiostore_example_daily`` are replaced there).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import aiostore
from aiostore import errors


def orders(n: int, start: int = 0) -> pd.DataFrame:
    """``n`` orders with ids from ``start``: int, float, text, timestamp (UTC) and bool."""
    ids = np.arange(start, start + n)
    frame: pd.DataFrame = pd.DataFrame({
        "order_id": ids,
        "amount": np.round(np.random.default_rng(start).random(n) * 100, 2),
        "customer": [f"customer-{i % 97}" for i in ids],
        "placed_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(ids, unit="min"),
        "paid": ids % 4 != 0,
    })
    return frame


async def main(con: str, prefix: str) -> None:
    """Replace, append, fail safely, read back with a query, and aggregate into a new table."""
    table = f"{prefix}orders"
    shown: list[int] = []

    def progress(done: int, total: int | None) -> None:
        shown.append(done)

    # replace: the new rows go into a staging table that is swapped in with one commit
    written = await aiostore.write_sql(orders(50_000), table, con, if_exists="replace",
                                       chunk_rows=10_000, progress=progress)
    print(f"replaced {table}: {written:,} rows (progress after each chunk: {shown})")

    # append: all rows in one transaction
    await aiostore.write_sql(orders(1_000, start=50_000), table, con, if_exists="append")

    # a failing append changes nothing: a column the table does not have...
    try:
        await aiostore.write_sql(orders(10).assign(coupon="X"), table, con, if_exists="append")
    except errors.SchemaMismatchError as exc:
        print(f"refused, nothing written: {exc}")
    # ...or a column with no SQL type, named before any row is sent
    try:
        tagged = orders(10)
        tagged["tags"] = pd.Series([[1, 2]] * 10)
        await aiostore.write_sql(tagged, f"{prefix}other", con)
    except errors.SerializationError as exc:
        print(f"refused, nothing written: {exc}")

    count = await aiostore.read_sql(f"SELECT count(*) AS n FROM {table}", con)
    print(f"{table} holds {int(count['n'][0]):,} rows")

    # read back with bound parameters (":name" on both databases)
    unpaid = await aiostore.read_sql(
        f"SELECT order_id, amount, customer FROM {table} WHERE NOT paid AND amount > :least "
        "ORDER BY amount DESC LIMIT 3", con, params={"least": 90})
    print("largest unpaid orders:")
    print(unpaid.to_string(index=False))

    # the whole table by name: the declared types come back (timestamps, booleans, ...)
    everything = await aiostore.read_sql(table, con, output="arrow")
    print("schema read back:", ", ".join(f"{f.name}: {f.type}" for f in everything.schema))

    # aggregate in pandas and publish the result, atio's spelling
    frame = everything.to_pandas()
    daily = (frame.assign(day=frame["placed_at"].dt.date)
             .groupby("day", as_index=False)["amount"].sum())
    await aiostore.write(daily, format="sql", name=f"{prefix}daily", con=con,
                         if_exists="replace")
    print(f"{prefix}daily:", len(await aiostore.read_sql(f"{prefix}daily", con)), "days")


def run() -> None:
    """Parse the command line and run :func:`main`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, help="where the SQLite file goes")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL URL instead of SQLite")
    args = parser.parse_args()
    if args.postgres:
        asyncio.run(main(args.postgres, "aiostore_example_"))
    elif args.directory is not None:
        args.directory.mkdir(parents=True, exist_ok=True)
        asyncio.run(main(f"sqlite:///{args.directory.resolve() / 'shop.db'}", ""))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(f"sqlite:///{Path(tmp) / 'shop.db'}", ""))


if __name__ == "__main__":
    run()
