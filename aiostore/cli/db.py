"""``aiostore db``: inspect a segment database — read-only, beside a running writer.

Every command opens the database with ``SegmentDB(read_only=True)`` or reads its files with
:mod:`.inspect_db`: none takes the writer lock, writes, or truncates a torn tail.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from .._io.base import current_fs
from .._io.offload import run_sync
from .._progress import Bar
from ..errors import CorruptionError
from ..segments import DBStats, ItemLocation, SegmentDB
from ..segments.format import SEGMENT_HEADER_SIZE
from . import inspect_db
from .common import json_option, parse_location, run
from .errors import EXIT_OK, EXIT_PROBLEM, CliError
from .output import Output, human_bytes, payload_fields, text_of

__all__ = ["db"]

_PATH = click.argument("path", type=click.Path(path_type=str))
_PREFIX = click.option("--prefix", default="data", show_default=True, metavar="NAME",
                       help="The database's file_prefix (its segment files are NAME00000.dat).")


@click.group()
def db() -> None:
    """Inspect a SegmentDB directory (read-only: never locks, writes or truncates)."""


async def _layout(path: str, prefix: str) -> inspect_db.Layout:
    fs = current_fs()
    return await run_sync(inspect_db.open_layout, fs, path, prefix)


def _open(layout: inspect_db.Layout) -> SegmentDB:
    """The database, read-only: no lock, no write, no truncation."""
    return SegmentDB(layout.path, read_only=True, file_prefix=layout.prefix,
                     file_padding=layout.padding)


def _loc(loc: ItemLocation) -> str:
    return f"{loc.index}:{loc.position}:{loc.size}"


# --- info ------------------------------------------------------------------------------------
@db.command()
@_PATH
@_PREFIX
@json_option
def info(path: str, prefix: str, as_json: bool) -> int:
    """Segments, items, bytes, trimmed ranges, the writer lock's holder, and what recovery
    would do with the last segment (a torn tail, damage).

    Reads every record (as 'db verify' does, without listing each damaged one).
    """
    return run(_info(path, prefix, Output(as_json)))


async def _info(path: str, prefix: str, out: Output) -> int:
    fs = current_fs()
    layout = await _layout(path, prefix)
    stats: DBStats | None = None
    open_error: str | None = None
    try:
        async with _open(layout) as database:
            stats = await database.stats()
    except CorruptionError as exc:
        open_error = str(exc)

    def walk() -> tuple[str | None, list[inspect_db.SegmentReport]]:
        db_id = inspect_db.database_id(fs, layout)
        last = max(layout.segments, default=-1)
        return db_id, [inspect_db.walk_segment(fs, layout, i, last=i == last, verify=True,
                                               db_id=db_id)
                       for i in sorted(layout.segments)]

    db_id, reports = await run_sync(walk)
    trims = layout.trims
    trimmed = [{"segment": i, "before": p} for i, p in sorted(trims.starts.items())] + \
        [{"segment": i, "from": p} for i, p in sorted(trims.ends.items())]
    tail = next((r.tail for r in reports if r.tail is not None), None)
    last = max(layout.segments, default=-1)
    damage = [p for r in reports if r.index == last for p in r.problems]
    damaged = sum(len(r.problems) for r in reports)
    if tail is None and not damage:
        recovery = "clean: nothing to recover"
    else:
        parts = [f"damage in segment {p.index}, bytes {p.start}..{p.end} ({p.reason}): kept "
                 "and reported" for p in damage]
        if tail is not None:
            what = "an in-flight flush" if layout.lock.held else "a torn tail"
            parts.append(f"{what} of {tail.end - tail.start} bytes at {tail.index}:{tail.start}"
                         f" ({tail.reason}): a writer's recovery drops it (never acknowledged)")
        recovery = "; ".join(parts)
    lock = layout.lock
    writer = ("unknown (no /proc/locks)" if lock.held is None else
              "none" if not lock.held else
              f"pid {lock.pid}" + (f" ({lock.command})" if lock.command else ""))
    doc: dict[str, Any] = {
        "path": layout.path,
        "db_id": db_id,
        "segments": len(layout.segments),
        "first_segment": min(layout.segments, default=None),
        "current_segment": stats.current_index if stats else max(layout.segments, default=None),
        "items": sum(r.items for r in reports),
        "payload_bytes": sum(r.payload_bytes for r in reports),
        "file_bytes": sum(r.size for r in reports),
        "live_bytes": stats.live_bytes if stats else None,
        "trimmed_bytes": trims.trimmed_bytes,
        "trim_operations": trims.operations,
        "trimmed": trimmed,
        "dropped_segments": sorted(trims.dropped),
        "writer": {"held": lock.held, "pid": lock.pid, "command": lock.command},
        "recovery": {"torn_tail": None if tail is None else tail.as_dict(),
                     "damage": [p.as_dict() for p in damage], "summary": recovery},
        "problems": [e for e in (open_error, trims.error) if e] +
                    [r.header_error for r in reports if r.header_error] +
                    ([f"{damaged} damaged records (see 'aiostore db verify')"] if damaged
                     else []),
        "segment_files": [{"index": r.index, "file": r.name, "bytes": r.size,
                           "live_from": r.start, "items": r.items,
                           "payload_bytes": r.payload_bytes, "flushes": r.flushes,
                           "note": r.note or r.header_error} for r in reports],
    }
    if out.json:
        out.record(doc)
        return EXIT_OK
    segs = (f"{doc['segments']} ({doc['first_segment']}..{max(layout.segments)})"
            if layout.segments else "0")
    trim_text = ", ".join(
        [f"segment {t['segment']} before {t['before']}" for t in trimmed if "before" in t] +
        [f"segment {t['segment']} from {t['from']}" for t in trimmed if "from" in t] +
        ([f"dropped {_ranges(trims.dropped)}"] if trims.dropped else [])) or "none"
    out.fields({**doc,
                "segments": segs,
                "items": f"{doc['items']:,}",
                "payload_bytes": f"{human_bytes(doc['payload_bytes'])} in items",
                "file_bytes": f"{human_bytes(doc['file_bytes'])} in segment files" + (
                    f", {human_bytes(doc['live_bytes'])} live" if stats else ""),
                "trimmed": f"{human_bytes(trims.trimmed_bytes)} freed"
                           f" ({trims.operations} trims): {trim_text}",
                "writer": writer, "recovery": recovery,
                "problems": doc["problems"] or "none"},
               [("path", "database"), ("db_id", "id"), ("segments", "segments"),
                ("current_segment", "current"), ("items", "items"),
                ("payload_bytes", "payload"), ("file_bytes", "files"),
                ("trimmed", "trimmed"), ("writer", "writer lock"), ("recovery", "recovery"),
                ("problems", "problems")])
    out.line("")
    out.table([{"segment": r.index, "file": r.name, "bytes": r.size, "live_from": r.start,
                "items": r.items, "note": r.note or r.header_error or
                ("current" if r.index == doc["current_segment"] else "sealed")}
               for r in reports],
              [("segment", "SEGMENT"), ("file", "FILE"), ("bytes", "BYTES"),
               ("live_from", "LIVE FROM"), ("items", "ITEMS"), ("note", "STATE")],
              right=("segment", "bytes", "live_from", "items"))
    return EXIT_OK


def _ranges(indices: set[int]) -> str:
    out: list[list[int]] = []
    for i in sorted(indices):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in out)


# --- verify ----------------------------------------------------------------------------------
@db.command()
@_PATH
@_PREFIX
@json_option
def verify(path: str, prefix: str, as_json: bool) -> int:
    """Check every record's checksum, with progress; list every damaged location.

    Exit status 1 when anything is damaged. Damage does not stop the check: it resumes at
    the next valid record. A torn tail of the last segment (an incomplete last flush, never
    acknowledged; or a flush in progress beside a running writer) is reported, not damage.
    """
    return run(_verify(path, prefix, Output(as_json)))


async def _verify(path: str, prefix: str, out: Output) -> int:
    fs = current_fs()
    layout = await _layout(path, prefix)

    def sizes() -> int:
        total = 0
        for index in layout.segments:
            with contextlib.suppress(OSError):
                total += fs.stat(layout.segment_path(index)).st_size
        return total

    bar = Bar(f"verifying {layout.path}", total=await run_sync(sizes), unit="B")

    def walk() -> tuple[str | None, list[inspect_db.SegmentReport]]:
        db_id = inspect_db.database_id(fs, layout)
        last = max(layout.segments, default=-1)
        return db_id, [inspect_db.walk_segment(fs, layout, i, last=i == last, verify=True,
                                               db_id=db_id, progress=bar.update)
                       for i in sorted(layout.segments)]

    try:
        db_id, reports = await run_sync(walk)
    finally:
        bar.close()
    bad = 0
    for message in filter(None, [layout.trims.error]):
        bad += 1
        if out.json:
            out.record({"kind": "damage", "reason": message})
        else:
            out.line(f"trim log  {message}")
    for r in reports:
        if r.header_error:
            bad += 1
            if out.json:
                out.record({"kind": "damage", "segment": r.index, "file": r.name,
                            "reason": r.header_error})
            else:
                out.line(f"segment {r.index}  {r.header_error}")
        for p in r.problems:
            bad += 1
            if out.json:
                out.record({"kind": "damage", **p.as_dict()})
            else:
                where = _loc(p.location) if p.location else f"{p.index}:{p.start}"
                what = "item" if p.location else "bytes"
                out.line(f"{where}  {what} damaged: segment {p.index}, bytes "
                         f"{p.start}..{p.end}: {p.reason}")
        if r.tail is not None:
            t = r.tail
            running = bool(layout.lock.held)
            if out.json:
                out.record({"kind": "in_flight" if running else "torn_tail", **t.as_dict()})
            else:
                what = "being written by the running writer" if running else \
                    "a torn tail: a writer's recovery drops it (never acknowledged)"
                out.line(f"{t.index}:{t.start}  {t.end - t.start} bytes at the end, {what}:"
                         f" {t.reason}")
    items = sum(r.items for r in reports)
    total = sum(r.size for r in reports)
    summary = {"kind": "summary", "path": layout.path, "db_id": db_id,
               "segments": len(reports), "items": items, "bytes": total, "damaged": bad,
               "ok": bad == 0}
    if out.json:
        out.record(summary)
    else:
        verdict = "ok" if not bad else f"{bad} damaged"
        out.line(f"{verdict}: {len(reports)} segments, {items:,} items, "
                 f"{human_bytes(total)} checked")
    return EXIT_PROBLEM if bad else EXIT_OK


# --- scan ------------------------------------------------------------------------------------
@db.command()
@_PATH
@click.option("--from", "start", metavar="INDEX[:POSITION]", default=None,
              help="Start at this item (a location's first two numbers), or at the start of "
                   "segment INDEX.")
@click.option("--limit", type=click.IntRange(min=0), default=None, metavar="N",
              help="Print at most N items.")
@click.option("--format", "fmt", type=click.Choice(["text", "hex", "json"]), default="text",
              show_default=True,
              help="text: the item as UTF-8, unprintable bytes escaped; hex; json: JSON lines "
                   "with 'text' (valid UTF-8) or 'base64'.")
@_PREFIX
@json_option
def scan(path: str, start: str | None, limit: int | None, fmt: str, prefix: str,
         as_json: bool) -> int:
    """Print the items in order, one per line, each after its location INDEX:POSITION:SIZE
    (what 'db get' takes)."""
    loc = None if start is None else parse_location(start, with_size=False)
    return run(_scan(path, loc, limit, "json" if as_json else fmt, prefix))


async def _scan(path: str, start: ItemLocation | None, limit: int | None, fmt: str,
                prefix: str) -> int:
    fs = current_fs()
    layout = await _layout(path, prefix)
    if start is not None:
        if start.position == 0:
            start = ItemLocation(start.index,
                                 layout.trims.starts.get(start.index, SEGMENT_HEADER_SIZE), 0)
        why = await run_sync(inspect_db.record_problem, fs, layout, start.index,
                             start.position)
        if why is not None:
            raise CliError(f"bad --from: {why}")
    out = Output(fmt == "json")
    if limit == 0:
        return EXIT_OK
    count = 0
    async with _open(layout) as database:
        async for loc, data in database.scan(start):
            if fmt == "json":
                out.record({"location": _loc(loc), "index": loc.index,
                            "position": loc.position, "size": loc.size,
                            **payload_fields(data)})
            elif fmt == "hex":
                out.line(f"{_loc(loc)}  {data.hex()}")
            else:
                out.line(f"{_loc(loc)}  {text_of(data)}")
            count += 1
            if limit is not None and count >= limit:
                break
    return EXIT_OK


# --- get -------------------------------------------------------------------------------------
@db.command()
@_PATH
@click.argument("location", metavar="INDEX:POSITION:SIZE")
@_PREFIX
@json_option
def get(path: str, location: str, prefix: str, as_json: bool) -> int:
    """Write the item at LOCATION to stdout, as it is (or as a JSON line with --json)."""
    loc = parse_location(location, with_size=True)
    return run(_get(path, loc, prefix, as_json))


async def _get(path: str, loc: ItemLocation, prefix: str, as_json: bool) -> int:
    layout = await _layout(path, prefix)
    async with _open(layout) as database:
        data = await database.read(loc)
    if as_json:
        Output(True).record({"location": _loc(loc), **payload_fields(data)})
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
    return EXIT_OK
