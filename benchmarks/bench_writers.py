#!/usr/bin/env python3
"""Atomic writers: aiostore against the synchronous peers it replaces.

One command, ``make bench`` (or ``python benchmarks/bench_writers.py`` from any Python 3.10+):
the script re-executes itself inside a dedicated venv, ``.venv-bench`` at the repository root,
which it creates and installs on first run (and again whenever this file's requirement list or
``pyproject.toml`` changes). The peers are synchronous PyPI packages:

* ``atomic-json-io`` (module ``atomic_json_io``): ``write_json_atomic(Path, dict)`` — sibling
  temp file, fsync, ``os.replace``; no directory fsync.
* ``atio``: ``atio.write(obj, path, format=...)`` for DataFrames (csv, parquet, json, ...) —
  temp directory, writer, backup rename, ``os.replace``, a ``._SUCCESS`` flag file; no fsync at
  all. It cannot write a ``dict`` (``format="json"`` needs a DataFrame), so its small-JSON
  contender writes a one-row DataFrame built outside the timed loop. Its INFO logging (set up
  again on every call) is switched off with ``logging.disable(logging.INFO)``: it costs more than
  half of its small-write throughput.

atio 3.1.0 pins ``numpy<2``, which pyarrow 26 refuses, and imports ``tqdm`` without declaring
it: the venv therefore pins ``pyarrow==25.0.1`` and ``numpy<2`` and adds ``tqdm``; aiostore is
installed editable with its ``frames`` extra.

Every scenario runs ``--runs`` times (default 3), contenders interleaved round by round (the
order rotates) so that disk noise hits all of them alike; the table shows medians. A heartbeat
task (``sleep(0.001)`` in a loop) runs during every measurement and records the longest gap:
the event-loop stall. Files go to a fresh directory under the system temp directory
(``--dir`` to choose another), which is removed at the end. Results are printed and
written to ``docs/benchmarks.md``. The venv, the measurement loop and the report plumbing are
shared with the other benchmarks: see ``_harness.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness
from _harness import Contender, Row, Scenario

if TYPE_CHECKING:
    import pandas as pd

NAME = "writers"  # .venv-bench/.bench-writers-installed-*, $TMPDIR/aiostore-bench-writers
WORK = _harness.work_dir(NAME)
SECTION = "## Atomic writers (`make bench` → benchmarks/bench_writers.py)"
COMMAND = "make bench  # or: python benchmarks/bench_writers.py"
REQUIREMENTS = (
    "atomic-json-io==0.1.0",
    "atio==3.1.0",
    "pyarrow==25.0.1",  # atio pins numpy<2; pyarrow 26 needs numpy>=2
    "numpy<2",
    "tqdm",  # imported by atio, not declared
    "pandas",
)
EXTRAS = ("frames",)  # aiostore[frames], editable

WRITES = 1000
ROWS = 1_000_000
RUNS = 3
WORKERS = 32

# The targets.
SEQ_TARGET = 0.9  # sequential durable small writes >= 0.9x atomic-json-io's rate
CONC_TARGET = 4.0  # 32 concurrent tasks >= 4x atomic-json-io's sequential rate
PARQUET_TARGET = 1.2  # 1M-row Parquet within 1.2x of bare pyarrow.parquet.write_table
STALL_TARGET_MS = 20.0  # max loop stall for aiostore, everywhere


# --------------------------------------------------------------------------------------------
# the timed bodies (each contender is _harness.from_body(maker))
# --------------------------------------------------------------------------------------------
Body = _harness.Body
BodyMaker = Callable[[Path], Body]
SyncWriter = Callable[[Path, int], None]
AsyncWriter = Callable[[Path, int], Awaitable[None]]

def sequential_async(write: AsyncWriter, n: int) -> BodyMaker:
    """``n`` awaited writes, one after another."""
    def make(d: Path) -> Body:
        async def body() -> None:
            for i in range(n):
                await write(d, i)
        return body
    return make


def sequential_direct(write: SyncWriter, n: int) -> BodyMaker:
    """``n`` blocking writes called on the loop, as from a coroutine; yields between writes."""
    def make(d: Path) -> Body:
        async def body() -> None:
            for i in range(n):
                write(d, i)
                await asyncio.sleep(0)  # as if each write were in its own request handler
        return body
    return make


def sequential_thread(write: SyncWriter, n: int) -> BodyMaker:
    """``n`` blocking writes, each through ``asyncio.to_thread``, one after another."""
    return sequential_async(lambda d, i: asyncio.to_thread(write, d, i), n)


def fan_out(write: AsyncWriter, n: int, workers: int = WORKERS) -> BodyMaker:
    """``workers`` tasks pulling the ``n`` write indices from one queue (no semaphore)."""
    def make(d: Path) -> Body:
        async def body() -> None:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(n):
                queue.put_nowait(i)

            async def worker() -> None:
                while True:
                    try:
                        i = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    await write(d, i)

            await asyncio.gather(*(worker() for _ in range(workers)))
        return body
    return make


def fan_out_thread(write: SyncWriter, n: int, workers: int = WORKERS) -> BodyMaker:
    """As :func:`fan_out`, each blocking write through ``asyncio.to_thread``."""
    return fan_out(lambda d, i: asyncio.to_thread(write, d, i), n, workers)


def once_async(write: Callable[[Path], Awaitable[None]]) -> BodyMaker:
    """One awaited write."""
    def make(d: Path) -> Body:
        async def body() -> None:
            await write(d)
        return body
    return make


def once_direct(write: Callable[[Path], None]) -> BodyMaker:
    """One blocking write called on the loop."""
    def make(d: Path) -> Body:
        async def body() -> None:
            write(d)
        return body
    return make


def once_thread(write: Callable[[Path], None]) -> BodyMaker:
    """One blocking write through ``asyncio.to_thread``."""
    return once_async(lambda d: asyncio.to_thread(write, d))


# --------------------------------------------------------------------------------------------
# the writers
# --------------------------------------------------------------------------------------------
def make_records(n: int) -> list[dict[str, Any]]:
    """``n`` distinct JSON records of about 200 bytes each (``json.dumps``)."""
    return [{
        "id": i,
        "user": f"user-{i:06d}",
        "email": f"user-{i:06d}@example.com",
        "active": i % 3 != 0,
        "score": round(i * 0.731 % 100, 3),
        "tags": ["alpha", "beta", "gamma"],
        "updated": "2024-05-01T12:00:00+00:00",
        "note": "written by a request handler",
    } for i in range(n)]


def make_frame(rows: int) -> pd.DataFrame:
    """A ``rows`` x 5 DataFrame: int64, float64, string, datetime, int32."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    names = np.array([f"name-{k:05d}" for k in range(5000)], dtype=object)
    frame: pd.DataFrame = pd.DataFrame({
        "id": np.arange(rows, dtype=np.int64),
        "value": rng.random(rows),
        "name": names[np.arange(rows) % len(names)],  # inferred as pandas' default str dtype
        "ts": pd.date_range("2024-01-01", periods=rows, freq="s"),
        "qty": rng.integers(0, 1000, rows).astype(np.int32),
    })
    return frame


def bare_durable_replace(path: Path, fill: Callable[[str], None]) -> None:
    """The bare recipe: ``fill`` a unique sibling temp, fsync, ``os.replace``, fsync the dir."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fill(str(tmp))
        fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def bare_write_json(path: Path, obj: object) -> None:
    """Bare Python: temp (O_EXCL) + write + fsync + ``os.replace`` + directory fsync."""
    data = json.dumps(obj).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass
class Plan:
    """Everything to run: the contenders, the scenarios, the table rows."""

    contenders: dict[str, Contender]
    scenarios: list[Scenario]
    rows: list[Row]
    writes: int
    rows_in_frame: int

def build_plan(writes: int, rows: int) -> Plan:
    """The contenders (peers imported here, inside the bench venv) and the table layout."""
    import atio
    import atomic_json_io as ajio
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    import aiostore

    records = make_records(writes)
    one_row_frames = [_one_row_frame(r) for r in records]  # atio cannot write a dict
    _harness.progress(f"building the {rows:,} x 5 DataFrame ...")
    df = make_frame(rows)

    def name(d: Path, i: int) -> Path:
        return d / f"{i:05d}.json"

    def atio_json(d: Path, i: int) -> None:
        atio.write(one_row_frames[i], str(name(d, i)), format="json", orient="records")

    c: dict[str, Contender] = {}
    n = writes
    seq, conc, pqs, csvs = "seq", "conc", "parquet", "csv"

    def add(key: str, label: str, make: BodyMaker, scenario: str) -> None:
        if scenario in (seq, conc):  # a rate: n writes per run
            c[key] = Contender(key, label, scenario, _harness.from_body(make), n, "w/s")
        else:  # a time
            c[key] = Contender(key, label, scenario, _harness.from_body(make), 0, "s")

    # 1. sequential small JSON writes
    add("a_seq", "aiostore.write_json, distinct files",
        sequential_async(lambda d, i: aiostore.write_json(name(d, i), records[i]), n), seq)
    add("a_seq_one", "aiostore.write_json, one file overwritten",
        sequential_async(lambda d, i: aiostore.write_json(d / "state.json", records[i]), n), seq)
    add("j_seq", "atomic-json-io, on the loop",
        sequential_direct(lambda d, i: ajio.write_json_atomic(name(d, i), records[i]), n), seq)
    add("j_seq_one", "atomic-json-io, one file overwritten, on the loop",
        sequential_direct(lambda d, i: ajio.write_json_atomic(d / "state.json", records[i]), n),
        seq)
    add("j_seq_t", "atomic-json-io, to_thread",
        sequential_thread(lambda d, i: ajio.write_json_atomic(name(d, i), records[i]), n), seq)
    add("t_seq", "atio (1-row DataFrame → JSON), on the loop", sequential_direct(atio_json, n),
        seq)
    add("t_seq_t", "atio (1-row DataFrame → JSON), to_thread", sequential_thread(atio_json, n),
        seq)
    add("b_seq", "bare Python recipe, on the loop",
        sequential_direct(lambda d, i: bare_write_json(name(d, i), records[i]), n), seq)
    add("b_seq_t", "bare Python recipe, to_thread",
        sequential_thread(lambda d, i: bare_write_json(name(d, i), records[i]), n), seq)
    # 2. the same writes from 32 tasks
    add("a_conc", f"aiostore.write_json, {WORKERS} tasks",
        fan_out(lambda d, i: aiostore.write_json(name(d, i), records[i]), n), conc)
    add("j_conc", f"atomic-json-io, {WORKERS} tasks via to_thread",
        fan_out_thread(lambda d, i: ajio.write_json_atomic(name(d, i), records[i]), n), conc)
    add("t_conc", f"atio, {WORKERS} tasks via to_thread", fan_out_thread(atio_json, n), conc)
    add("b_conc", f"bare Python recipe, {WORKERS} tasks via to_thread",
        fan_out_thread(lambda d, i: bare_write_json(name(d, i), records[i]), n), conc)

    # 3. one big DataFrame
    def bare_pq(path: str) -> None:
        pq.write_table(pa.Table.from_pandas(df), path)

    def bare_pacsv(path: str) -> None:
        pacsv.write_csv(pa.Table.from_pandas(df), path)

    def bare_to_csv(path: str) -> None:
        df.to_csv(path, index=False)

    add("a_pq", "aiostore.write (durable)",
        once_async(lambda d: aiostore.write(df, d / "frame.parquet")), pqs)
    add("a_pq_nd", "aiostore.write (durable=False)",
        once_async(lambda d: aiostore.write(df, d / "frame.parquet", durable=False)), pqs)
    add("t_pq", "atio.write, on the loop",
        once_direct(lambda d: atio.write(df, str(d / "frame.parquet"), format="parquet")), pqs)
    add("t_pq_t", "atio.write, to_thread",
        once_thread(lambda d: atio.write(df, str(d / "frame.parquet"), format="parquet")), pqs)
    add("b_pq", "pq.write_table(pa.Table.from_pandas(df)), on the loop",
        once_direct(lambda d: bare_pq(str(d / "frame.parquet"))), pqs)
    add("b_pq_t", "pq.write_table(pa.Table.from_pandas(df)), to_thread",
        once_thread(lambda d: bare_pq(str(d / "frame.parquet"))), pqs)
    add("b_pq_dur", "pq.write_table + fsync + replace + dir fsync, to_thread",
        once_thread(lambda d: bare_durable_replace(d / "frame.parquet", bare_pq)), pqs)
    add("a_csv", "aiostore.write (durable)",
        once_async(lambda d: aiostore.write(df, d / "frame.csv")), csvs)
    add("a_csv_nd", "aiostore.write (durable=False)",
        once_async(lambda d: aiostore.write(df, d / "frame.csv", durable=False)), csvs)
    add("t_csv", "atio.write(index=False), on the loop",
        once_direct(lambda d: atio.write(df, str(d / "frame.csv"), format="csv", index=False)),
        csvs)
    add("t_csv_t", "atio.write(index=False), to_thread",
        once_thread(lambda d: atio.write(df, str(d / "frame.csv"), format="csv", index=False)),
        csvs)
    add("b_tocsv", "df.to_csv(index=False), on the loop",
        once_direct(lambda d: bare_to_csv(str(d / "frame.csv"))), csvs)
    add("b_pacsv", "pyarrow.csv.write_csv(pa.Table.from_pandas(df)), on the loop",
        once_direct(lambda d: bare_pacsv(str(d / "frame.csv"))), csvs)
    add("b_pacsv_t", "pyarrow.csv.write_csv(pa.Table.from_pandas(df)), to_thread",
        once_thread(lambda d: bare_pacsv(str(d / "frame.csv"))), csvs)

    s_seq = f"{n:,} JSON writes, sequential"
    s_one = f"{n:,} JSON writes, sequential, one file"
    s_conc = f"{n:,} JSON writes, {WORKERS} tasks"
    s_pq = f"{rows:,}-row DataFrame → Parquet"
    s_csv = f"{rows:,}-row DataFrame → CSV"
    table = [
        Row(s_seq, "a_seq", "j_seq", "atomic-json-io (on the loop)"),
        Row(s_seq, "a_seq", "j_seq_t", "atomic-json-io (to_thread)"),
        Row(s_seq, "a_seq", "t_seq", "atio, 1-row DataFrame (on the loop)"),
        Row(s_seq, "a_seq", "b_seq", "bare Python recipe (on the loop)"),
        Row(s_seq, "a_seq", "b_seq_t", "bare Python recipe (to_thread)"),
        Row(s_one, "a_seq_one", "j_seq_one", "atomic-json-io (on the loop)"),
        Row(s_conc, "a_conc", "j_conc", "atomic-json-io (32 tasks, to_thread)"),
        Row(s_conc, "a_conc", "j_seq", "atomic-json-io, sequential (target)"),
        Row(s_conc, "a_conc", "t_conc", "atio, 1-row DataFrame (32 tasks, to_thread)"),
        Row(s_conc, "a_conc", "b_conc", "bare Python recipe (32 tasks, to_thread)"),
        Row(s_pq, "a_pq", "b_pq", "pq.write_table (on the loop; target)"),
        Row(s_pq, "a_pq", "b_pq_t", "pq.write_table (to_thread)"),
        Row(s_pq, "a_pq", "b_pq_dur", "pq.write_table + fsync recipe (to_thread)"),
        Row(s_pq, "a_pq", "t_pq", "atio (on the loop)"),
        Row(s_pq, "a_pq", "t_pq_t", "atio (to_thread)"),
        Row(s_pq + ", durable=False", "a_pq_nd", "b_pq", "pq.write_table (on the loop)"),
        Row(s_csv, "a_csv", "t_csv", "atio (on the loop)"),
        Row(s_csv, "a_csv", "t_csv_t", "atio (to_thread)"),
        Row(s_csv, "a_csv", "b_tocsv", "df.to_csv (on the loop)"),
        Row(s_csv, "a_csv", "b_pacsv", "pyarrow.csv.write_csv (on the loop)"),
        Row(s_csv, "a_csv", "b_pacsv_t", "pyarrow.csv.write_csv (to_thread)"),
        Row(s_csv + ", durable=False", "a_csv_nd", "b_pacsv",
            "pyarrow.csv.write_csv (on the loop)"),
    ]
    return Plan(c, _harness.group_scenarios(c), table, writes, rows)


def _one_row_frame(record: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame([record])
    return frame


async def warm_up(plan: Plan) -> None:
    """Import, thread-pool and first-call costs, paid before anything is timed."""
    import atio
    import atomic_json_io as ajio

    import aiostore

    d = WORK / "warmup"
    d.mkdir(parents=True)
    small = make_frame(1000)
    rec = make_records(1)[0]
    for i in range(20):
        await aiostore.write_json(d / f"{i}.json", rec)
        ajio.write_json_atomic(d / f"j{i}.json", rec)
        bare_write_json(d / f"b{i}.json", rec)
        await asyncio.to_thread(bare_write_json, d / f"t{i}.json", rec)
    await asyncio.gather(*(aiostore.write_json(d / f"g{i}.json", rec) for i in range(64)))
    atio.write(_one_row_frame(rec), str(d / "atio.json"), format="json", orient="records")
    for suffix in ("parquet", "csv"):
        await aiostore.write(small, d / f"small.{suffix}")
        atio.write(small, str(d / f"atio.{suffix}"), format=suffix)
    await asyncio.to_thread(shutil.rmtree, d)


async def run_plan(plan: Plan, runs: int) -> None:
    """Every scenario ``runs`` rounds; inside a round each contender once, order rotating."""
    loop = asyncio.get_running_loop()
    # asyncio.to_thread's default pool has min(32, cpus + 4) threads (6 here): give the peers
    # the same 32 threads aiostore's pool has
    loop.set_default_executor(ThreadPoolExecutor(WORKERS, thread_name_prefix="peer"))
    await warm_up(plan)
    await _harness.run_scenarios(plan.scenarios, plan.contenders, runs, WORK)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def target_lines(plan: Plan) -> list[str]:
    """The issue's targets, each PASS or FAIL."""
    c = plan.contenders
    verdict, ratio = _harness.verdict, _harness.ratio
    seq = ratio(c["a_seq"], c["j_seq"])
    conc = ratio(c["a_conc"], c["j_seq"])
    parquet = ratio(c["a_pq"], c["b_pq"])
    ours = [v for v in c.values() if v.key.startswith("a_")]
    worst = max(ours, key=lambda v: v.stall_ms)
    worst_run = max(ours, key=lambda v: v.worst_stall_ms)
    return [
        f"{verdict(seq >= SEQ_TARGET)}  sequential durable small writes: {seq:.2f}x "
        f"atomic-json-io's rate (target >= {SEQ_TARGET}x)",
        f"{verdict(conc >= CONC_TARGET)}  {WORKERS} concurrent tasks: {conc:.2f}x "
        f"atomic-json-io's sequential rate (target >= {CONC_TARGET}x)",
        f"{verdict(parquet <= PARQUET_TARGET)}  {plan.rows_in_frame:,}-row Parquet (durable): "
        f"{parquet:.2f}x bare pyarrow.parquet.write_table's time (target <= {PARQUET_TARGET}x)",
        f"{verdict(worst.stall_ms < STALL_TARGET_MS)}  max loop stall for aiostore: "
        f"{worst.stall_ms:.1f} ms ({worst.label}, median of runs; worst single run "
        f"{worst_run.worst_stall_ms:.1f} ms) (target < {STALL_TARGET_MS:.0f} ms)",
    ]


def machine() -> str:
    """nproc, kernel, CPU, file system of the work directory, versions."""
    return _harness.machine(WORK, ("aiostore", "atomic-json-io", "atio", "pyarrow", "pandas",
                                   "numpy"))


NOTES = """\
How to read it:

* Ratios are aiostore / peer: for rates (↑, writes/s) higher is better; for times (↓, seconds)
  lower is better. Every value is the median of {runs} runs; the contenders of a scenario run
  interleaved, round by round (the disk is a shared virtual one: single runs vary by up to 2x;
  the individual runs are listed below). Loop stall: the longest gap seen by a heartbeat task
  doing `await asyncio.sleep(0.001)` in a loop (the sleep itself is 1 ms), median over the runs.
* "on the loop": the synchronous peer called straight from a coroutine, as users do (the small
  writes yield to the loop between calls, as separate request handlers would); "to_thread":
  `await asyncio.to_thread(...)`, with the default executor raised to {workers} threads to match
  aiostore's pool. "{workers} tasks": {workers} tasks pull the {writes:,} writes from a queue.
* Durability differs: aiostore (default) and the bare recipe fsync the file and the directory;
  atomic-json-io fsyncs the file but not the directory (the rename can be lost on power
  failure); atio fsyncs nothing, and when the target exists it renames it to a backup first, so
  a reader can find no file for a moment. atio cannot write a dict: its JSON contender writes a
  one-row DataFrame (`orient="records"`) built outside the timed loop; its INFO logging is
  disabled (`logging.disable(logging.INFO)`).
* Small JSON: about 200 bytes per record (`json.dumps`), 1,000 distinct files per run (each run
  in a fresh directory), plus "one file": the same path rewritten 1,000 times.
* Frame: 1,000,000 rows x (int64, float64, string, datetime64, int32); Parquet with pyarrow's
  defaults (snappy), CSV with `index=False`. Between runs the page cache is flushed (`sync`),
  outside the timed region, so non-durable writers are not charged for their write-back.
"""


def report(plan: Plan, runs: int, started: dt.datetime, elapsed: float, write_docs: bool) -> None:
    """Print the table and targets; write the Markdown section into docs/benchmarks.md."""
    _harness.print_results(_harness.comparison_table(plan.contenders, plan.rows, markdown=False),
                           target_lines(plan), [machine(), f"total {elapsed:.0f} s"])
    if not write_docs:
        return
    _harness.write_section(_harness.docs_section(
        SECTION,
        COMMAND,
        about=[f"Run {started:%Y-%m-%d %H:%M} UTC, aiostore at {_harness.git_head()}, "
               f"{elapsed:.0f} s in all.",
               f"Machine: {machine()}."],
        table_lines=_harness.comparison_table(plan.contenders, plan.rows, markdown=True),
        targets=target_lines(plan),
        notes=NOTES.format(runs=runs, workers=WORKERS, writes=plan.writes),
        contenders=_harness.contender_lines(plan.contenders.values()),
    ))


# --------------------------------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser) -> None:
    """This script's options (the defaults are the published configuration)."""
    parser.add_argument("--writes", type=int, default=WRITES, help="small JSON writes per run")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the DataFrame")


def main(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` if needed, then measure and report."""
    global WORK
    args = _harness.parse_args(argv, __doc__, RUNS, add_options)
    WORK = _harness.work_dir(NAME, args.dir)
    _harness.enter_bench_venv(__file__, NAME, REQUIREMENTS, argv, EXTRAS)
    logging.disable(logging.INFO)  # atio logs at INFO on every call (set up again each call)
    default = (args.runs, args.writes, args.rows) == (RUNS, WRITES, ROWS)
    write_docs = default and not args.no_docs
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    with _harness.fresh_dir(WORK):
        plan = build_plan(args.writes, args.rows)
        _harness.progress(f"record size {len(json.dumps(make_records(1)[0]))} bytes; "
                          f"{args.runs} runs")
        asyncio.run(run_plan(plan, args.runs))
    report(plan, args.runs, started, time.perf_counter() - t0, write_docs)


if __name__ == "__main__":
    main(sys.argv[1:])
