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
written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"
WORK = Path(tempfile.gettempdir()) / "aiostore-bench-writers"
DOCS = ROOT / "docs" / "benchmarks.md"
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
_REEXEC_MARK = "AIOSTORE_BENCH_REEXEC"

WRITES = 1000
ROWS = 1_000_000
RUNS = 3
WORKERS = 32
HEARTBEAT_S = 0.001

# The targets.
SEQ_TARGET = 0.9  # sequential durable small writes >= 0.9x atomic-json-io's rate
CONC_TARGET = 4.0  # 32 concurrent tasks >= 4x atomic-json-io's sequential rate
PARQUET_TARGET = 1.2  # 1M-row Parquet within 1.2x of bare pyarrow.parquet.write_table
STALL_TARGET_MS = 20.0  # max loop stall for aiostore, everywhere


# --------------------------------------------------------------------------------------------
# the dedicated venv
# --------------------------------------------------------------------------------------------
def _venv_python() -> Path:
    return BENCH_VENV / "bin" / "python"


def _stamp() -> Path:
    """A marker whose name changes when the requirements or aiostore's pyproject change."""
    digest = hashlib.sha256()
    digest.update("\n".join(REQUIREMENTS).encode())
    digest.update((ROOT / "pyproject.toml").read_bytes())
    return BENCH_VENV / f".bench-installed-{digest.hexdigest()[:16]}"


def _in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == BENCH_VENV.resolve()


def ensure_bench_venv() -> None:
    """Create ``.venv-bench`` and install the peers and aiostore into it, once."""
    stamp = _stamp()
    if stamp.exists() and _venv_python().exists():
        return
    if not _venv_python().exists():
        print(f"creating {BENCH_VENV.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    print("installing the benchmark requirements (first run only) ...", file=sys.stderr,
          flush=True)
    pip = [str(_venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *REQUIREMENTS, "-e", f"{ROOT}[frames]"], check=True)
    for old in BENCH_VENV.glob(".bench-installed-*"):
        old.unlink()
    stamp.touch()


def reexec_in_bench_venv(argv: Sequence[str]) -> None:
    """Replace this process by the same script run with the bench venv's interpreter."""
    if os.environ.get(_REEXEC_MARK) == "1":
        raise SystemExit(f"re-executed, but sys.prefix is {sys.prefix}, not {BENCH_VENV}")
    python = str(_venv_python())
    os.environ[_REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, str(Path(__file__).resolve()), *argv])


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------
class Heartbeat:
    """A task that sleeps 1 ms in a loop and records the longest gap: the event-loop stall."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._since = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            self._since = time.perf_counter()
            await asyncio.sleep(HEARTBEAT_S)
            self.max_gap = max(self.max_gap, time.perf_counter() - self._since)

    async def start(self) -> None:
        """Start beating (returns once the first beat is under way)."""
        self._task = asyncio.create_task(self._beat())
        await asyncio.sleep(0)

    async def stop(self) -> float:
        """Stop; the longest gap in seconds, counting one still open (a loop still blocked)."""
        self.max_gap = max(self.max_gap, time.perf_counter() - self._since)
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.max_gap


Body = Callable[[], Awaitable[None]]
BodyMaker = Callable[[Path], Body]
SyncWriter = Callable[[Path, int], None]
AsyncWriter = Callable[[Path, int], Awaitable[None]]


@dataclass
class Contender:
    """One thing that is timed: a label, and a maker of its timed body for a fresh directory."""

    key: str
    label: str
    make: BodyMaker
    scenario: str
    runs: list[tuple[float, float]] = field(default_factory=list)  # (seconds, stall seconds)

    @property
    def seconds(self) -> float:
        """Median wall time of the runs."""
        return statistics.median(s for s, _ in self.runs)

    @property
    def stall_ms(self) -> float:
        """Median (over runs) of each run's longest loop stall, in ms."""
        return statistics.median(g for _, g in self.runs) * 1e3

    @property
    def worst_stall_ms(self) -> float:
        """The longest loop stall of any run, in ms."""
        return max(g for _, g in self.runs) * 1e3


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


async def measure(contender: Contender, directory: Path) -> tuple[float, float]:
    """Run the contender once in ``directory``; (seconds, longest loop stall in seconds)."""
    await asyncio.to_thread(directory.mkdir, parents=True)
    body = contender.make(directory)
    heartbeat = Heartbeat()
    await heartbeat.start()
    t0 = time.perf_counter()
    await body()
    seconds = time.perf_counter() - t0
    stall = await heartbeat.stop()
    # leave nothing for the next contender: flush dirty pages (non-durable writers leave some)
    # and remove the files, outside the timed region
    await asyncio.to_thread(os.sync)
    await asyncio.to_thread(shutil.rmtree, directory)
    return seconds, stall


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
class Row:
    """One line of the result table: aiostore's contender against one peer contender."""

    scenario: str
    ours: str
    peer: str
    peer_label: str
    rate: bool  # True: writes/s (higher is better); False: seconds (lower is better)


@dataclass
class Plan:
    """Everything to run: the contenders by scenario, and the table rows."""

    contenders: dict[str, Contender]
    scenarios: list[list[str]]
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
    print(f"building the {rows:,} x 5 DataFrame ...", file=sys.stderr, flush=True)
    df = make_frame(rows)

    def name(d: Path, i: int) -> Path:
        return d / f"{i:05d}.json"

    def atio_json(d: Path, i: int) -> None:
        atio.write(one_row_frames[i], str(name(d, i)), format="json", orient="records")

    c: dict[str, Contender] = {}

    def add(key: str, label: str, make: BodyMaker, scenario: str) -> None:
        c[key] = Contender(key, label, make, scenario)

    n = writes
    seq, conc, pqs, csvs = "seq", "conc", "parquet", "csv"
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
        Row(s_seq, "a_seq", "j_seq", "atomic-json-io (on the loop)", True),
        Row(s_seq, "a_seq", "j_seq_t", "atomic-json-io (to_thread)", True),
        Row(s_seq, "a_seq", "t_seq", "atio, 1-row DataFrame (on the loop)", True),
        Row(s_seq, "a_seq", "b_seq", "bare Python recipe (on the loop)", True),
        Row(s_seq, "a_seq", "b_seq_t", "bare Python recipe (to_thread)", True),
        Row(s_one, "a_seq_one", "j_seq_one", "atomic-json-io (on the loop)", True),
        Row(s_conc, "a_conc", "j_conc", "atomic-json-io (32 tasks, to_thread)", True),
        Row(s_conc, "a_conc", "j_seq", "atomic-json-io, sequential (target)", True),
        Row(s_conc, "a_conc", "t_conc", "atio, 1-row DataFrame (32 tasks, to_thread)", True),
        Row(s_conc, "a_conc", "b_conc", "bare Python recipe (32 tasks, to_thread)", True),
        Row(s_pq, "a_pq", "b_pq", "pq.write_table (on the loop; target)", False),
        Row(s_pq, "a_pq", "b_pq_t", "pq.write_table (to_thread)", False),
        Row(s_pq, "a_pq", "b_pq_dur", "pq.write_table + fsync recipe (to_thread)", False),
        Row(s_pq, "a_pq", "t_pq", "atio (on the loop)", False),
        Row(s_pq, "a_pq", "t_pq_t", "atio (to_thread)", False),
        Row(s_pq + ", durable=False", "a_pq_nd", "b_pq", "pq.write_table (on the loop)", False),
        Row(s_csv, "a_csv", "t_csv", "atio (on the loop)", False),
        Row(s_csv, "a_csv", "t_csv_t", "atio (to_thread)", False),
        Row(s_csv, "a_csv", "b_tocsv", "df.to_csv (on the loop)", False),
        Row(s_csv, "a_csv", "b_pacsv", "pyarrow.csv.write_csv (on the loop)", False),
        Row(s_csv, "a_csv", "b_pacsv_t", "pyarrow.csv.write_csv (to_thread)", False),
        Row(s_csv + ", durable=False", "a_csv_nd", "b_pacsv", "pyarrow.csv.write_csv (on the loop)",
            False),
    ]
    scenarios = [[k for k, v in c.items() if v.scenario == s] for s in (seq, conc, pqs, csvs)]
    return Plan(c, scenarios, table, writes, rows)


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
    for keys in plan.scenarios:
        for r in range(runs):
            shift = r % len(keys)
            for key in keys[shift:] + keys[:shift]:
                contender = plan.contenders[key]
                print(f"  round {r + 1}/{runs}  {contender.scenario:8} {contender.label} ...",
                      end="", file=sys.stderr, flush=True)
                result = await measure(contender, WORK / f"{key}-{r}")
                contender.runs.append(result)
                print(f" {result[0]:.3f} s, stall {result[1] * 1e3:.1f} ms", file=sys.stderr,
                      flush=True)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def _value(plan: Plan, c: Contender, rate: bool) -> str:
    if rate:
        return f"{plan.writes / c.seconds:,.0f} w/s"
    return f"{c.seconds:.3f} s"


def _ratio(ours: Contender, peer: Contender, rate: bool) -> float:
    return peer.seconds / ours.seconds if rate else ours.seconds / peer.seconds


def table_lines(plan: Plan, markdown: bool) -> list[str]:
    """The result table (Markdown or aligned plain text)."""
    header = ["scenario", "aiostore", "peer", "ratio", "loop stall, ms (aiostore / peer)"]
    body: list[list[str]] = []
    for row in plan.rows:
        ours, peer = plan.contenders[row.ours], plan.contenders[row.peer]
        ratio = _ratio(ours, peer, row.rate)
        body.append([
            row.scenario,
            _value(plan, ours, row.rate),
            f"{_value(plan, peer, row.rate)} — {row.peer_label}",
            f"{ratio:.2f}x {'↑' if row.rate else '↓'}",
            f"{ours.stall_ms:.1f} / {peer.stall_ms:.1f}",
        ])
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "| " + " | ".join(["---", "---:", "---", "---:", "---:"]) + " |"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return lines
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i in (0, 2) else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*cells) for cells in body]
    return lines


def contender_lines(plan: Plan) -> list[str]:
    """Every contender's median, spread and stall (Markdown)."""
    lines = ["| contender | scenario | median | runs (s) | stall median / worst, ms |",
             "| --- | --- | ---: | --- | ---: |"]
    for c in plan.contenders.values():
        runs = ", ".join(f"{s:.3f}" for s, _ in c.runs)
        value = _value(plan, c, c.scenario in ("seq", "conc"))
        lines.append(f"| {c.label} | {c.scenario} | {value} | {runs} | "
                     f"{c.stall_ms:.1f} / {c.worst_stall_ms:.1f} |")
    return lines


def target_lines(plan: Plan) -> list[str]:
    """The issue's targets, each PASS or FAIL."""
    c = plan.contenders

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    seq = _ratio(c["a_seq"], c["j_seq"], True)
    conc = _ratio(c["a_conc"], c["j_seq"], True)
    parquet = _ratio(c["a_pq"], c["b_pq"], False)
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
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    fstype = "?"
    with contextlib.suppress(OSError):
        best = ""
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            if str(WORK).startswith(mount) and len(mount) > len(best):
                best, fstype = mount, f"{parts[2]} ({parts[0]}, {parts[3]})"
    versions = ", ".join(f"{pkg} {importlib.metadata.version(pkg)}" for pkg in
                         ("aiostore", "atomic-json-io", "atio", "pyarrow", "pandas", "numpy"))
    return (f"nproc {os.cpu_count()}, Linux {platform.release()}, {cpu}; file system {fstype}; "
            f"Python {platform.python_version()}; {versions}")


def _git_head() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "aiostore"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out + (" (aiostore/ modified)" if dirty else "")


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
    print()
    for line in table_lines(plan, markdown=False):
        print(line)
    print("\nratio = aiostore / peer: ↑ rates (higher is better), ↓ times (lower is better)\n")
    for line in target_lines(plan):
        print(line)
    print(f"\n{machine()}\ntotal {elapsed:.0f} s")
    if not write_docs:
        return
    section = "\n".join([
        SECTION,
        "",
        "```sh",
        COMMAND,
        "```",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC, aiostore at {_git_head()}, {elapsed:.0f} s in all.",
        f"Machine: {machine()}.",
        "",
        *table_lines(plan, markdown=True),
        "",
        "Targets (from the issue):",
        "",
        "```text",
        *target_lines(plan),
        "```",
        "",
        NOTES.format(runs=runs, workers=WORKERS, writes=plan.writes),
        "<details><summary>Every contender</summary>",
        "",
        *contender_lines(plan),
        "",
        "</details>",
        "",
    ])
    replace_section(DOCS, section)
    print(f"wrote {DOCS.relative_to(ROOT)}")


def replace_section(doc: Path, section: str) -> None:
    """Replace the section (up to the next ``## `` heading) in ``doc``, or append it."""
    text = doc.read_text() if doc.exists() else (
        "# Benchmarks\n\nMeasured against the peers aiostore replaces. Each section is written by "
        "its benchmark script; see [benchmarks/README.md](../benchmarks/README.md).\n")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        head = "\n".join(lines[:start]).rstrip("\n")
        tail = "\n".join(lines[end:])
        new = (head + "\n\n" if head else "") + section + ("\n" + tail if tail else "")
    doc.write_text(new.rstrip("\n") + "\n")


# --------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options (the defaults are the published configuration)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per contender (median)")
    parser.add_argument("--writes", type=int, default=WRITES, help="small JSON writes per run")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the DataFrame")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to write (default: the system temp directory)")
    parser.add_argument("--no-docs", action="store_true",
                        help="do not update docs/benchmarks.md (implied by non-default sizes)")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` if needed, then measure and report."""
    global WORK
    args = parse_args(argv)
    if args.dir is not None:
        WORK = args.dir.resolve() / "aiostore-bench-writers"
    if not _in_bench_venv():
        ensure_bench_venv()
        reexec_in_bench_venv(argv)
    ensure_bench_venv()  # run with .venv-bench/bin/python directly: install if never done
    os.environ.pop(_REEXEC_MARK, None)
    logging.disable(logging.INFO)  # atio logs at INFO on every call (set up again each call)
    default = (args.runs, args.writes, args.rows) == (RUNS, WRITES, ROWS)
    write_docs = default and not args.no_docs
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    try:
        plan = build_plan(args.writes, args.rows)
        print(f"record size {len(json.dumps(make_records(1)[0]))} bytes; {args.runs} runs",
              file=sys.stderr, flush=True)
        asyncio.run(run_plan(plan, args.runs))
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    report(plan, args.runs, started, time.perf_counter() - t0, write_docs)


if __name__ == "__main__":
    main(sys.argv[1:])
