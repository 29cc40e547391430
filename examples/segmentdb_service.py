"""A small asyncio service that logs every request to a SegmentDB and stops cleanly on SIGTERM.

``python examples/segmentdb_service.py DIRECTORY`` runs an unattended demo: clients send
simulated requests, each is logged with ``await db.add(...)`` (payments with ``durable=True``),
and after a few hundred requests the process sends itself SIGTERM. The database flushes and
stops; the service then reopens it, counts the items with ``scan()`` and checks that every
acknowledged request is on disk (exit status 0 if so).

``python examples/segmentdb_service.py`` serves the same simulated traffic in a temporary
directory until you press Ctrl-C or send SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aiostore
from aiostore import errors

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
CLIENTS = 8
DEMO_REQUESTS = 300  # the demo sends SIGTERM once this many requests are logged
PATHS = ("/", "/search", "/item", "/cart", "/pay")


@dataclass
class Stats:
    """What the service acknowledged."""

    logged: int = 0
    durable: int = 0
    flushes: int = 0
    #: set once DEMO_REQUESTS requests are logged
    demo_done: asyncio.Event = field(default_factory=asyncio.Event)


async def handle_request(db: aiostore.SegmentDB, request_id: int, path: str) -> int:
    """Serve one request and log it; return the HTTP-like status.

    A payment is logged with ``durable=True``: the call returns once the record is fsynced, so
    the service never confirms a payment it could forget after a power loss. Other requests are
    buffered: ``add`` returns at once and the record reaches the disk with the next flush
    (within ``flush_interval``, or on stop).
    """
    status = 200 if path != "/search" or request_id % 7 else 404
    record = {"id": request_id, "path": path, "status": status}
    await db.add(json.dumps(record).encode(), durable=path == "/pay")
    return status


async def client(db: aiostore.SegmentDB, name: int, stats: Stats, next_id: list[int]) -> None:
    """Send requests until the database stops (then ``add`` raises DatabaseClosedError)."""
    rng = random.Random(name)
    while True:
        await asyncio.sleep(rng.uniform(0, 0.002))  # think time
        request_id = next_id[0]
        next_id[0] += 1
        path = rng.choice(PATHS)
        try:
            await handle_request(db, request_id, path)
        except errors.DatabaseClosedError:
            return  # the service is shutting down: this request was not logged, not answered
        stats.logged += 1
        stats.durable += path == "/pay"
        if stats.logged >= DEMO_REQUESTS:
            stats.demo_done.set()


async def serve(directory: Path, demo: bool) -> Stats:
    """Run the service until SIGTERM/SIGINT; in demo mode, send SIGTERM to ourselves."""
    db = aiostore.SegmentDB(directory / "requests", flush_interval=0.2)
    stats = Stats()
    stopped = asyncio.Event()
    # hooks are set before start(), so recovery reports (torn tail, ...) reach them too
    db.events.on_stop = lambda event: stopped.set()
    db.events.on_failure = lambda event: print("database:", event.description, file=sys.stderr)

    def count_flush(event: aiostore.DBEvent) -> None:
        stats.flushes += 1

    db.events.on_write = count_flush
    await db.start()
    # SIGTERM/SIGINT flush and stop the database; exit=False: we exit ourselves, below
    db.install_signal_handlers(STOP_SIGNALS, exit=False)
    next_id = [0]
    clients = [asyncio.create_task(client(db, i, stats, next_id)) for i in range(CLIENTS)]
    try:
        if demo:
            await asyncio.wait_for(stats.demo_done.wait(), timeout=60)
            print(f"{stats.logged} requests logged; sending SIGTERM to ourselves")
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(stopped.wait(), timeout=60)
        else:
            print(f"serving; logging to {db.path}; stop with Ctrl-C or kill {os.getpid()}")
            await stopped.wait()
        # every add that returned before the stop began is now durable; the clients see
        # DatabaseClosedError on their next request and return
        await asyncio.gather(*clients)
    finally:
        for task in clients:
            task.cancel()
        await db.stop()  # a no-op after the signal's stop; needed if we got here by an error
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:  # the handlers outlive the stop: give the signals back
            loop.remove_signal_handler(sig)
    print(f"stopped cleanly: {stats.logged} requests acknowledged ({stats.durable} durable), "
          f"written in {stats.flushes} flushes")
    return stats


async def count_items(directory: Path) -> tuple[int, int]:
    """Reopen the log read-only and count (all items, payments) with ``scan()``."""
    total = payments = 0
    async with aiostore.SegmentDB(directory / "requests", read_only=True) as db:
        async for _location, data in db.scan():
            total += 1
            payments += json.loads(data)["path"] == "/pay"
    return total, payments


async def main(directory: Path, demo: bool) -> int:
    """Serve, stop on the signal, reopen and verify; the process exit status."""
    stats = await serve(directory, demo)
    total, payments = await count_items(directory)
    print(f"reopened: {total} items on disk, {payments} of them payments")
    if (total, payments) != (stats.logged, stats.durable):
        print("MISMATCH: acknowledged requests are missing", file=sys.stderr)
        return 1
    print("every acknowledged request is on disk")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(asyncio.run(main(Path(sys.argv[1]), demo=True)))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(asyncio.run(main(Path(tmp), demo=False)))
