"""aiodiskdb code running on aiostore: the one changed import, then moving old items over.

``python examples/migrate_from_aiodiskdb.py DIRECTORY`` (or no argument: a temporary
directory). aiodiskdb is not needed.

Part 1 is aiodiskdb's README flow, unchanged except for the import: ``run()`` as a task,
``add``/``read``, a transaction, events with aiodiskdb's callback signatures, the trims with
overwrite enabled, and a stop by ``signal.signal(SIGTERM, db.on_stop_signal)``.

Part 2 is the migration of existing data. aiostore cannot open aiodiskdb's files, and an
aiodiskdb file holds raw items without lengths, so only the application's stored locations say
where each item is. :func:`migrate` reads every stored location from the old database, adds the
item to the new one and returns the new locations to store instead. It takes anything with
aiodiskdb's ``read`` — a real ``aiodiskdb.AioDiskDB`` in your migration script; here a second
``AioDiskDB`` adapter stands in for it, since the API is the same.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from aiostore.compat import AioDiskDB, ItemLocation, WriteEvent  # was: from aiodiskdb import ...


async def wait_started(db: AioDiskDB) -> asyncio.Task[None]:
    """``loop.create_task(db.run())`` as with aiodiskdb, then wait for its ``on_start``."""
    started = asyncio.Event()

    async def on_start(timestamp: float) -> None:
        print(f"  {db.path.name}: on_start({timestamp:.3f})")
        started.set()

    db.events.on_start = on_start
    task = asyncio.get_running_loop().create_task(db.run())
    await started.wait()
    return task


async def aiodiskdb_readme_flow(directory: Path) -> None:
    """aiodiskdb's README, as it runs on the adapter."""
    print("part 1: aiodiskdb code on aiostore")
    # files of at most 16 MB; a flush every 1 MB, every 100 items or every minute
    db = AioDiskDB(str(directory / "db"), create_if_not_exists=True, max_file_size=16,
                   max_buffer_size=1, max_buffer_items=100, flush_interval=60)

    async def on_write(timestamp: float, event: WriteEvent) -> None:
        print(f"  on_write: {event.count} items, {event.size} bytes durable, from index "
              f"{event.index} position {event.position} to {event.last}")

    async def on_index_drop(timestamp: float, index: int, size: int) -> None:
        print(f"  on_index_drop: index {index}, {size} bytes")

    async def on_stop(timestamp: float) -> None:
        print("  on_stop")

    db.events.on_write = on_write
    db.events.on_index_drop = on_index_drop
    db.events.on_stop = on_stop
    task = await wait_started(db)

    location: ItemLocation = await db.add(b"data")
    assert await db.read(location) == b"data"  # at once, from RAM
    stored = location.serialize()  # 16 bytes (aiodiskdb's were 12): keep them anywhere
    print(f"  added {location}, serialized to {len(stored)} bytes")

    transaction = await db.transaction()
    transaction.add(b"cafe")
    transaction.add(b"babe")
    transaction.add(b"deadbeef")
    locations = await transaction.commit()  # all or nothing, durable on return
    print(f"  committed a transaction: {locations}")

    more = [await db.add(b"item %d" % i) for i in range(10)]
    await db.flush()

    # not-so-append-only: positions are locations' positions, not byte offsets
    db.enable_overwrite()
    freed = await db.rtrim(more[8].index, more[8].position)  # item 8 and after: gone
    print(f"  rtrim freed {freed} bytes; item 8 now reads as {await db.read(more[8])!r}")
    later = [await db.add(b"later %d" % i) for i in range(3)]  # rtrim sealed index 0
    await db.flush()
    freed = await db.ltrim(later[1].index, later[1].position)  # before "later 1": gone
    print(f"  ltrim freed {freed} bytes; 'later 1' is still {await db.read(later[1])!r}")
    await db.drop_index(0)
    db.disable_overwrite()

    # stop on SIGTERM as aiodiskdb's README suggests: no I/O in the handler, no SystemExit
    previous = signal.signal(signal.SIGTERM, db.on_stop_signal)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await task  # run() returns once the database flushed and stopped
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"  stopped by SIGTERM; running={db.running}")


class OldDatabase(Protocol):
    """What :func:`migrate` needs of the old database: aiodiskdb's ``read``."""

    async def read(self, location: Any) -> bytes | None:
        """The item at ``location`` (an aiodiskdb ``ItemLocation``), or None."""


async def migrate(old: OldDatabase, new: AioDiskDB, old_locations: Iterable[Any]
                  ) -> dict[Any, ItemLocation | None]:
    """Copy the item at every stored location from ``old`` into ``new``.

    Returns ``{old location: new location}`` (None where the old database had nothing there:
    trimmed or dropped). The new locations are durable when this returns; store them in
    place of the old ones.
    """
    moved: dict[Any, ItemLocation | None] = {}
    for old_location in old_locations:
        data = await old.read(old_location)
        moved[old_location] = None if data is None else await new.add(data)
    await new.flush()
    return moved


async def migration(directory: Path) -> None:
    """Move items, by their stored locations, from an "old" database into a new one."""
    print("part 2: migrating items by their stored locations")
    old = AioDiskDB(directory / "old", create_if_not_exists=True)  # stands in for aiodiskdb
    new = AioDiskDB(directory / "new", create_if_not_exists=True)
    old_task, new_task = await wait_started(old), await wait_started(new)
    # what the application kept in its own index: name -> location in the old database
    index: dict[str, Any] = {}
    for name in ("alice", "bob", "carol", "dave"):
        await old.add(b"an item the application no longer references")  # not migrated
        index[name] = await old.add(b"blob of " + name.encode())

    moved = await migrate(old, new, index.values())
    new_index = {name: moved[loc] for name, loc in index.items()}
    for name, loc in new_index.items():
        assert loc is not None and await new.read(loc) == b"blob of " + name.encode()
        print(f"  {name}: {index[name]} -> {loc}")

    await old.stop()
    await new.stop()
    await asyncio.gather(old_task, new_task)
    old.enable_overwrite()
    await old.destroy_db()  # a coroutine here (a plain method in aiodiskdb)
    print(f"  migrated {len(new_index)} items; the old database was destroyed")


async def main(directory: Path) -> None:
    """Both parts."""
    await aiodiskdb_readme_flow(directory)
    await migration(directory)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(Path(sys.argv[1])))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(Path(tmp)))
