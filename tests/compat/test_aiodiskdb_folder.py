"""A real folder written by aiodiskdb 0.2.3, and other files named like segments (issue 11).

aiostore cannot read aiodiskdb's files. Pointed at such a folder, ``SegmentDB`` and the
``aiostore.compat.AioDiskDB`` adapter must refuse it with a ``CorruptionError`` naming the file
and leave every file byte for byte as it was — never "recover" it by truncating or removing it.
The same for short foreign files at a segment's name. Only what a crash can leave of aiostore's
own segment creation (zeros, or a strict prefix of its own header, in the newest file) is
removed, and the database starts.

The aiodiskdb folders are written by the real aiodiskdb package, in a subprocess (it is untyped
and runs its own thread pool and loop task).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from aiostore import DBEvent, ItemLocation, SegmentDB, errors
from aiostore.compat import AioDiskDB
from aiostore.segments.format import SEGMENT_HEADER_SIZE, SegmentHeader

pytestmark = pytest.mark.asyncio

GENESIS = b"\r\xce\x8f7"  # aiodiskdb 0.2.3's default genesis bytes
LOCK = "data.LOCK"  # SegmentDB's lock file (prefix "data")

AIODISKDB_WRITER = r"""
import asyncio, json, sys
from aiodiskdb import AioDiskDB

async def main(path, count, file_mb):
    db = AioDiskDB(path, create_if_not_exists=True, max_file_size=file_mb,
                   max_buffer_size=file_mb)
    task = asyncio.get_running_loop().create_task(db.run())
    while not db.running:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    items = [b"aiodiskdb item %d " % i + b"x" * (i * 37 % 300) for i in range(count)]
    locations = []
    for i, item in enumerate(items):
        locations.append(await db.add(item))
        if i % 7 == 6:
            await db.flush()
    for item, loc in zip(items, locations):
        assert await db.read(loc) == item
    await db.stop()
    await task
    print(json.dumps([[loc.index, loc.position, loc.size] for loc in locations]))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def _aiodiskdb_item(i: int) -> bytes:
    return b"aiodiskdb item %d " % i + b"x" * (i * 37 % 300)


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _materialize(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def _assert_untouched(directory: Path, before: dict[str, bytes]) -> None:
    """Every file that was there is there, byte for byte; nothing else appeared but the lock.

    (The lock file is created before anything is looked at, and lock files are not removed
    again — removing one another opener may have open breaks the lock — so an empty LOCK is
    the one trace a refused open may leave.)"""
    after = _files(directory)
    assert {n: after.get(n) for n in before} == before, "a file was changed or removed"
    extra = set(after) - set(before)
    assert extra <= {LOCK} and not after.get(LOCK), f"files appeared: {sorted(extra)}"
    assert not [p for p in directory.iterdir() if p.is_dir()], "a directory appeared"


def _names(error: BaseException, name: str) -> bool:
    """Whether the message names the file ``name`` (alone or at the end of a path)."""
    return re.search(rf"(^|/){re.escape(name)}\b", str(error)) is not None


# --- the aiodiskdb folders ---------------------------------------------------------------------
def _write_with_aiodiskdb(directory: Path, count: int, file_mb: float) -> list[list[int]]:
    done = subprocess.run([sys.executable, "-c", AIODISKDB_WRITER, str(directory), str(count),
                           str(file_mb)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, f"aiodiskdb 0.2.3 failed (pip install aiodiskdb==0.2.3?):\n" \
                                 f"{done.stderr}"
    locations: list[list[int]] = json.loads(done.stdout)
    return locations


@pytest.fixture(scope="module")
def aiodiskdb_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Two folders written by aiodiskdb 0.2.3, as name -> bytes: ``one`` file (its default
    128 MB files) and ``several`` (2 kB files)."""
    base = tmp_path_factory.mktemp("aiodiskdb")
    one = _write_with_aiodiskdb(base / "one", 40, 128)
    assert {index for index, _, _ in one} == {0}
    several = _write_with_aiodiskdb(base / "several", 80, 0.002)
    assert len({index for index, _, _ in several}) > 1
    return {"one": _files(base / "one"), "several": _files(base / "several")}


async def test_what_aiodiskdb_writes(aiodiskdb_folders: dict[str, dict[str, bytes]]) -> None:
    """The format this file relies on: a 24-byte header (genesis bytes, trim offset u32,
    16 reserved zero bytes), then the raw items — no framing, no checksums; nothing else in
    the folder once stopped (its checkpoint files are removed after each flush)."""
    one = aiodiskdb_folders["one"]
    assert list(one) == ["data00000.dat"]
    assert one["data00000.dat"] == GENESIS + bytes(20) + b"".join(
        _aiodiskdb_item(i) for i in range(40))
    several = aiodiskdb_folders["several"]
    assert all(re.fullmatch(r"data\d{5}\.dat", n) for n in several)
    assert all(data[:24] == GENESIS + bytes(20) for data in several.values())


@pytest.mark.parametrize("folder", ["one", "several"])
async def test_segmentdb_refuses_an_aiodiskdb_folder_untouched(
        tmp_path: Path, aiodiskdb_folders: dict[str, dict[str, bytes]], folder: str) -> None:
    files = aiodiskdb_folders[folder]
    directory = _materialize(tmp_path / "db", files)
    newest = max(files)  # the one opening checks first
    for _ in range(2):  # and again: a refused open changed nothing that matters the next time
        db = SegmentDB(directory)
        with pytest.raises(errors.CorruptionError) as exc:
            await db.start()
        assert not db.running
        assert _names(exc.value, newest), str(exc.value)
        _assert_untouched(directory, files)
    with pytest.raises(errors.CorruptionError) as exc:  # a reader refuses it too
        await SegmentDB(directory, read_only=True).start()
    assert _names(exc.value, newest), str(exc.value)
    _assert_untouched(directory, files)


@pytest.mark.parametrize("folder", ["one", "several"])
async def test_the_adapter_refuses_an_aiodiskdb_folder_untouched(
        tmp_path: Path, aiodiskdb_folders: dict[str, dict[str, bytes]], folder: str) -> None:
    files = aiodiskdb_folders[folder]
    directory = _materialize(tmp_path / "db", files)
    db = AioDiskDB(directory)  # the one-line switch, pointed at the old folder by mistake
    failures: list[float] = []

    async def on_failure(timestamp: float) -> None:
        failures.append(timestamp)

    db.events.on_failure = on_failure
    task = asyncio.create_task(db.run())  # the aiodiskdb way
    with pytest.raises(errors.CorruptionError) as exc:
        await asyncio.wait_for(task, 30)
    assert _names(exc.value, max(files)), str(exc.value)
    assert "migrating-from-aiodiskdb" in str(exc.value)
    assert not db.running
    with pytest.raises(errors.DatabaseClosedError):
        await db.add(b"nothing is written into a refused folder")
    _assert_untouched(directory, files)


# --- short foreign files -----------------------------------------------------------------------
def _foreign_short_files(aiodiskdb_header: bytes) -> dict[str, bytes]:
    own = SegmentHeader(index=0, db_id=uuid.uuid4()).to_bytes()
    return {
        "16 other bytes": b"\x01not aiostore!\xff\x7f",
        "aiodiskdb header": aiodiskdb_header,  # 24 bytes, nothing after it
        "aiodiskdb header and an item": aiodiskdb_header + b"cafebabe",
        "zeros then a byte": bytes(10) + b"\x01",
        "another index's header prefix": SegmentHeader(index=7, db_id=uuid.uuid4()
                                                       ).to_bytes()[:20],
        "a whole header, bad checksum": own[:-1] + bytes([own[-1] ^ 1]),
    }


@pytest.mark.parametrize("case", list(_foreign_short_files(bytes(24))))
async def test_a_short_foreign_segment_is_refused_untouched(
        tmp_path: Path, aiodiskdb_folders: dict[str, dict[str, bytes]], case: str) -> None:
    data = _foreign_short_files(aiodiskdb_folders["one"]["data00000.dat"][:24])[case]
    directory = _materialize(tmp_path / "db", {"data00000.dat": data})
    before = _files(directory)
    with pytest.raises(errors.CorruptionError) as exc:
        await SegmentDB(directory).start()
    assert _names(exc.value, "data00000.dat"), str(exc.value)
    _assert_untouched(directory, before)
    with pytest.raises(errors.CorruptionError) as exc:
        await asyncio.wait_for(AioDiskDB(directory).run(), 30)
    assert _names(exc.value, "data00000.dat"), str(exc.value)
    _assert_untouched(directory, before)


# --- half-created segments: recovered ----------------------------------------------------------
def _interrupted_creations(index: int, db_id: uuid.UUID | None = None) -> dict[str, bytes]:
    own = SegmentHeader(index=index, db_id=db_id or uuid.uuid4()).to_bytes()
    cases = {"empty": b"", "10 zero bytes": bytes(10),
             "a header's worth of zeros": bytes(SEGMENT_HEADER_SIZE)}
    for n in (1, 4, 11, 12, 13, 20, SEGMENT_HEADER_SIZE - 1):
        cases[f"{n} bytes of its header"] = own[:n]
    return cases


@pytest.mark.parametrize("case", list(_interrupted_creations(0)))
async def test_an_interrupted_first_segment_is_removed_and_the_database_starts(
        tmp_path: Path, case: str) -> None:
    directory = _materialize(tmp_path / "db", {"data00000.dat": _interrupted_creations(0)[case]})
    failures: list[DBEvent] = []
    db = SegmentDB(directory)
    db.events.on_failure = failures.append
    async with db:
        loc = await db.add(b"the database started", durable=True)
        assert await db.read(loc) == b"the database started"
    assert any("removed data00000.dat" in e.description and "never written" in e.description
               for e in failures), [e.description for e in failures]
    header = SegmentHeader.parse((directory / "data00000.dat").read_bytes())
    assert header is not None and header.index == 0  # a new segment of its own
    async with SegmentDB(directory) as db:
        assert await db.read(loc) == b"the database started"


@pytest.mark.parametrize("case", ["10 zero bytes", "12 bytes of its header",
                                  f"{SEGMENT_HEADER_SIZE - 1} bytes of its header"])
async def test_an_interrupted_newest_segment_is_removed_and_the_items_kept(
        tmp_path: Path, case: str) -> None:
    directory = tmp_path / "db"
    async with SegmentDB(directory, max_file_size=4096) as db:
        locs = [await db.add(b"kept %d " % i + b"k" * 900, durable=True) for i in range(6)]
    assert {loc.index for loc in locs} == {0, 1}
    first = SegmentHeader.parse((directory / "data00000.dat").read_bytes())
    assert first is not None
    (directory / "data00002.dat").write_bytes(_interrupted_creations(2, first.db_id)[case])
    failures: list[DBEvent] = []
    db = SegmentDB(directory, max_file_size=4096)
    db.events.on_failure = failures.append
    async with db:
        assert await db.read_many(locs) == [b"kept %d " % i + b"k" * 900 for i in range(6)]
        more = await db.add(b"after the recovery", durable=True)
    assert any("removed data00002.dat" in e.description for e in failures), \
        [e.description for e in failures]
    async with SegmentDB(directory, max_file_size=4096, read_only=True) as db:
        assert await db.read_many([*locs, more]) == [
            *(b"kept %d " % i + b"k" * 900 for i in range(6)), b"after the recovery"]


# --- foreign files among a database's segments -------------------------------------------------
async def _database_with_segments(directory: Path, count: int) -> list[ItemLocation]:
    locs: list[ItemLocation] = []
    async with SegmentDB(directory, max_file_size=4096) as db:
        while not locs or locs[-1].index < count - 1:
            locs.append(await db.add(b"ours %d " % len(locs) + b"o" * 900, durable=True))
    return locs


def _ours(locs: list[ItemLocation]) -> list[bytes]:
    return [b"ours %d " % i + b"o" * 900 for i in range(len(locs))]


async def test_foreign_files_above_the_newest_segment_are_refused_and_kept(
        tmp_path: Path, aiodiskdb_folders: dict[str, dict[str, bytes]]) -> None:
    directory = tmp_path / "db"
    locs = await _database_with_segments(directory, 2)
    foreign = aiodiskdb_folders["one"]["data00000.dat"]
    (directory / "data00003.dat").write_bytes(foreign)
    (directory / "data00005.dat").write_bytes(foreign[:24])
    before = _files(directory)
    for _ in range(2):
        with pytest.raises(errors.CorruptionError) as exc:
            await SegmentDB(directory, max_file_size=4096).start()
        assert _names(exc.value, "data00005.dat"), str(exc.value)
        _assert_untouched(directory, before)
    # moved away by its owner: now the next one is named, and still nothing is removed
    (directory / "data00005.dat").rename(tmp_path / "data00005.dat")
    before = _files(directory)
    with pytest.raises(errors.CorruptionError) as exc:
        await SegmentDB(directory, max_file_size=4096).start()
    assert _names(exc.value, "data00003.dat"), str(exc.value)
    _assert_untouched(directory, before)
    (directory / "data00003.dat").rename(tmp_path / "data00003.dat")
    async with SegmentDB(directory, max_file_size=4096) as db:  # and the database is intact
        assert await db.read_many(locs) == _ours(locs)


async def test_a_foreign_file_in_the_middle_is_refused_and_kept(
        tmp_path: Path, aiodiskdb_folders: dict[str, dict[str, bytes]]) -> None:
    directory = tmp_path / "db"
    locs = await _database_with_segments(directory, 5)
    shutil.copyfile(directory / "data00002.dat", tmp_path / "ours-2")
    (directory / "data00002.dat").write_bytes(aiodiskdb_folders["one"]["data00000.dat"])
    before = _files(directory)
    in_two = [loc for loc in locs if loc.index == 2]
    elsewhere = [loc for loc in locs if loc.index != 2]
    assert in_two and elsewhere
    db = SegmentDB(directory, max_file_size=4096)
    refused: errors.CorruptionError | None = None
    try:
        await db.start()
    except errors.CorruptionError as error:  # (checking every header at open is fine too)
        refused = error
    if refused is not None:
        assert _names(refused, "data00002.dat"), str(refused)
    else:
        try:  # sealed segments are checked on first use: every way in names the file
            for call in (lambda: db.read(in_two[0]), lambda: db.read_many(in_two),
                         lambda: db.read_many([elsewhere[0], in_two[-1]])):
                with pytest.raises(errors.CorruptionError) as exc:
                    await call()
                assert _names(exc.value, "data00002.dat"), str(exc.value)
            with pytest.raises(errors.CorruptionError) as exc:
                _ = [item async for item in db.scan()]
            assert _names(exc.value, "data00002.dat"), str(exc.value)
            assert await db.read_many(elsewhere) == [
                data for loc, data in zip(locs, _ours(locs), strict=True) if loc.index != 2]
        finally:
            await db.stop()
    _assert_untouched(directory, before)
