"""A block ledger on SegmentDB: transactions, a chain reorganisation (rtrim), retention
(ltrim, drop_index) and space accounting (stats).

``python examples/segmentdb_ledger.py [DIRECTORY]`` appends blocks, each block's transactions
written all or nothing; then a reorganisation replaces the newest blocks (``rtrim`` with a
safety check), a retention policy forgets the oldest ones (``drop_index`` for whole segments,
``ltrim`` inside the first kept one), and the ledger is reopened and checked. Exit status 0 if
every kept block reads back and every pruned one is refused.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import aiostore
from aiostore import ItemLocation, errors

SEGMENT = 4096  # small segments, so that pruning has whole segments to drop
BLOCKS = 120
TXS_PER_BLOCK = 5
KEEP = 40  # retention: the newest blocks kept
REORG = 6  # the newest blocks replaced by a reorganisation


def block_items(height: int, fork: str = "main") -> list[bytes]:
    """A block header then its transactions (what one ledger transaction writes)."""
    header = f"block {height} ({fork})".encode()
    txs = [f"tx {height}.{i}: alice -> bob {height + i}".encode() for i in range(TXS_PER_BLOCK)]
    return [header, *txs]


async def append_block(db: aiostore.SegmentDB, height: int, fork: str = "main"
                       ) -> list[ItemLocation]:
    """Write one block all or nothing; return the locations of its items."""
    async with db.transaction() as tx:
        for item in block_items(height, fork):
            tx.add(item)
    return tx.locations


async def main(directory: Path) -> int:
    index: dict[int, list[ItemLocation]] = {}  # height -> locations (an app keeps these)
    async with aiostore.SegmentDB(directory / "ledger", max_file_size=SEGMENT) as db:
        for height in range(BLOCKS):
            index[height] = await append_block(db, height)
        print(f"appended {BLOCKS} blocks into {len(segments_of(index))} segments")

        db.enable_overwrite()  # pruning is opt-in

        # reorganisation: the newest REORG blocks are replaced by another fork's
        first_orphan = BLOCKS - REORG
        loc = index[first_orphan][0]
        freed = 0  # later segments hold orphans only (a block never spans segments): drop them
        for segment in sorted({index[h][0].index for h in range(first_orphan, BLOCKS)}):
            if segment > loc.index:
                freed += await db.drop_index(segment)
        freed += await db.rtrim(loc.index, loc.position,
                                safety_check=f"block {first_orphan} (main)".encode())
        for height in range(first_orphan, BLOCKS):
            index[height] = await append_block(db, height, fork="side")
        print(f"reorg: rtrim freed {freed} bytes; blocks {first_orphan}.. now on the side fork")

        # retention: keep the newest KEEP blocks
        oldest_kept = BLOCKS - KEEP
        first_kept = index[oldest_kept][0]
        for segment in sorted({loc.index for h in range(oldest_kept) for loc in index[h]}):
            if segment < first_kept.index:
                await db.drop_index(segment)
        await db.ltrim(first_kept.index, first_kept.position)
        for height in range(oldest_kept):
            del index[height]
        stats = await db.stats()
        print(f"retention: {stats.segments} segments, {stats.live_bytes} live bytes, "
              f"{stats.trimmed_bytes} bytes freed, {stats.dropped_segments} segments dropped")

    async with aiostore.SegmentDB(directory / "ledger", max_file_size=SEGMENT) as db:
        for height, locs in index.items():
            items = await db.read_many(locs)
            fork = "side" if height >= BLOCKS - REORG else "main"
            assert items == block_items(height, fork), f"block {height} reads back wrong"
        try:
            await db.read(ItemLocation(0, 32, len(block_items(0)[0])))
        except errors.InvalidLocationError as exc:
            print(f"pruned block 0 is refused: {exc}")
        else:
            raise AssertionError("block 0 should have been pruned")
        heights = [int(data.split()[1]) async for _, data in db.scan()
                   if data.startswith(b"block ")]
        assert heights == sorted(index), "scan returns the kept blocks, in order"
    print(f"ok: {len(index)} blocks kept, each readable; the pruned ones are gone")
    return 0


def segments_of(index: dict[int, list[ItemLocation]]) -> set[int]:
    """The segments the blocks in ``index`` live in."""
    return {loc.index for locs in index.values() for loc in locs}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(asyncio.run(main(Path(sys.argv[1]))))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(asyncio.run(main(Path(tmp))))
