"""``aiostore db info|verify|scan|get`` as real processes: a healthy database, one flipped
byte, a torn tail, a running writer beside them, and bad input."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiostore import ItemLocation, SegmentDB

from .conftest import Cli, assert_usage_error, build_db, clean_env, segment_file


def loc_text(loc: ItemLocation) -> str:
    return f"{loc.index}:{loc.position}:{loc.size}"


def test_info_scan_get_verify_on_a_healthy_database(cli: Cli, tmp_path: Path) -> None:
    locs = build_db(tmp_path / "log")
    last = max(loc.index for loc in locs)
    mid = locs[60]
    info, info_json, verify, scan, scan_json, scan_hex, scan_from, get, get_json = cli.many(
        ["db", "info", "log"], ["db", "info", "log", "--json"], ["db", "verify", "log"],
        ["db", "scan", "log"], ["db", "scan", "log", "--json", "--limit", "2"],
        ["db", "scan", "log", "--format", "hex", "--limit", "1"],
        ["db", "scan", "log", "--from", f"{mid.index}:{mid.position}", "--limit", "3"],
        ["db", "get", "log", loc_text(mid)], ["db", "get", "log", loc_text(locs[-1]), "--json"])

    text = info.ok().out
    assert f"segments:    {last + 1} (0..{last})" in text
    assert "items:       122" in text and "writer lock: none" in text
    assert "recovery:    clean" in text and "problems:    none" in text
    doc = json.loads(info_json.ok().out)
    assert doc["items"] == 122 and doc["segments"] == last + 1
    assert doc["payload_bytes"] == sum(loc.size for loc in locs)
    assert doc["writer"] == {"held": False, "pid": None, "command": None}
    assert doc["recovery"]["torn_tail"] is None and doc["problems"] == []
    assert [s["index"] for s in doc["segment_files"]] == list(range(last + 1))

    assert verify.ok().lines() == [f"ok: {last + 1} segments, 122 items, "
                                   f"{verify.lines()[-1].split(', ')[-1]}"]
    assert verify.err == ""  # no terminal: no progress bar

    assert scan.ok().lines() == [f"{loc_text(loc)}  {data}" for loc, data in zip(
        locs, [f"item {i}" for i in range(120)] + ["tx a", "tx b"], strict=True)]
    assert [json.loads(line) for line in scan_json.ok().lines()] == [
        {"location": loc_text(locs[i]), "index": locs[i].index,
         "position": locs[i].position, "size": locs[i].size, "text": f"item {i}"}
        for i in range(2)]
    assert scan_hex.ok().lines() == [f"{loc_text(locs[0])}  {b'item 0'.hex()}"]
    assert scan_from.ok().lines() == [f"{loc_text(locs[i])}  item {i}" for i in (60, 61, 62)]
    assert get.ok().raw == b"item 60"
    assert json.loads(get_json.ok().out) == {"location": loc_text(locs[-1]), "text": "tx b"}


def test_verify_finds_exactly_the_record_with_a_flipped_byte(cli: Cli, tmp_path: Path) -> None:
    locs = build_db(tmp_path / "log")
    bad = locs[45]  # in a sealed segment
    path = segment_file(tmp_path / "log", bad.index)
    data = bytearray(path.read_bytes())
    data[bad.position + 12 + 3] ^= 0x01  # one bit of the payload
    path.write_bytes(bytes(data))
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    verify, verify_json, scan, get_bad, get_good, info = cli.many(
        ["db", "verify", "log"], ["db", "verify", "log", "--json"], ["db", "scan", "log"],
        ["db", "get", "log", loc_text(bad)], ["db", "get", "log", loc_text(locs[44])],
        ["db", "info", "log", "--json"])

    assert verify.code == 1
    assert verify.lines()[0].startswith(f"{loc_text(bad)}  item damaged: segment "
                                        f"{bad.index}, bytes {bad.position}..")
    assert "checksum mismatch" in verify.lines()[0]
    assert verify.lines()[1].startswith("1 damaged: ") and len(verify.lines()) == 2
    records = [json.loads(line) for line in verify_json.lines()]
    assert verify_json.code == 1
    assert [r for r in records if r["kind"] == "damage"] == [
        {"kind": "damage", "segment": bad.index, "start": bad.position,
         "end": bad.position + 12 + bad.size, "reason": "checksum mismatch",
         "location": loc_text(bad)}]
    assert records[-1]["kind"] == "summary" and records[-1]["items"] == 121
    assert not records[-1]["ok"]

    assert scan.code == 1 and "damaged data" in scan.err  # the items before it came out
    assert scan.lines()[-1] == f"{loc_text(locs[44])}  item 44"
    assert get_bad.code == 1 and get_bad.out == ""
    assert get_bad.err.startswith("aiostore: damaged data: ") and "checksum" in get_bad.err
    assert get_good.ok().raw == b"item 44"
    assert json.loads(info.ok().out)["problems"] == [
        "1 damaged records (see 'aiostore db verify')"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_torn_tail_is_reported_never_truncated(cli: Cli, tmp_path: Path) -> None:
    locs = build_db(tmp_path / "log")
    last = segment_file(tmp_path / "log", locs[-1].index)
    with last.open("ab") as f:
        f.write(b"\xa1\x5e\x00\x00\x10\x00\x00\x00torn")  # half a record: a torn last flush
    before = last.read_bytes()

    info, verify, scan = cli.many(["db", "info", "log"], ["db", "verify", "log", "--json"],
                                  ["db", "scan", "log", "--from", f"{locs[-1].index}"])

    assert "a torn tail of 12 bytes" in info.ok().out
    assert verify.code == 0
    kinds = [json.loads(line)["kind"] for line in verify.lines()]
    assert kinds == ["torn_tail", "summary"]
    assert scan.ok().lines()[-1] == f"{loc_text(locs[-1])}  tx b"
    assert last.read_bytes() == before


WRITER = r"""
import asyncio, signal, sys, aiostore
async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with aiostore.SegmentDB(sys.argv[1], max_file_size=16 * 1024,
                                  flush_interval=0.005) as db:
        print("started", flush=True)
        i = 0
        while not stop.is_set():
            await db.add(b"record %d " % i + b"x" * (i % 50), durable=i % 7 == 0)
            i += 1
            await asyncio.sleep(0.0002)
asyncio.run(main())
"""


def test_inspection_beside_a_running_writer(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "live"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"started\n"
        deadline = time.monotonic() + 10
        while len(list(path.glob("data*.dat"))) < 3:  # a few segments, then look
            assert time.monotonic() < deadline and writer.poll() is None
            time.sleep(0.02)
        inodes = {p.name: p.stat().st_ino for p in path.glob("data*.dat")}
        info, verify, scan, scan2 = cli.many(
            ["db", "info", "live", "--json"], ["db", "verify", "live"],
            ["db", "scan", "live", "--json"], ["db", "scan", "live", "--limit", "5"])
        assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
    finally:
        writer.send_signal(signal.SIGTERM)
        _, err = writer.communicate(timeout=20)
    assert writer.returncode == 0, err.decode()  # a clean stop
    assert b"Traceback" not in err

    doc = json.loads(info.ok().out)
    assert doc["writer"]["held"] is True and doc["writer"]["pid"] == writer.pid
    assert "-c" in (doc["writer"]["command"] or "")
    assert doc["items"] > 0 and doc["problems"] == []
    assert verify.ok().lines()[-1].startswith("ok: ")
    scanned = [json.loads(line) for line in scan.ok().lines()]
    assert scanned and doc["items"] > 0  # (each saw the database at its own moment)
    assert [int(s["text"].split()[1]) for s in scanned] == list(range(len(scanned)))
    assert len(scan2.ok().lines()) == 5
    for name, inode in inodes.items():  # nothing replaced (or removed) a segment file
        assert (path / name).stat().st_ino == inode

    async def reopen() -> tuple[int, list[str]]:
        failures: list[str] = []
        db = SegmentDB(path, max_file_size=16 * 1024)
        db.events.on_failure = lambda e: failures.append(e.description)
        async with db:
            return sum([1 async for _ in db.scan()]), failures

    import asyncio

    count, failures = asyncio.run(reopen())
    assert failures == [] and count >= len(scanned)


def test_db_commands_reject_bad_input_with_one_line(cli: Cli, tmp_path: Path) -> None:
    locs = build_db(tmp_path / "log")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("hello")
    results = cli.many(
        ["db", "info", "missing"],
        ["db", "verify", "file.txt"],
        ["db", "scan", "empty"],
        ["db", "get", "log", "1:2"],
        ["db", "get", "log", "a:b:c"],
        ["db", "get", "log", f"{locs[3].index}:{locs[3].position + 1}:{locs[3].size}"],
        ["db", "get", "log", "99:32:5"],
        ["db", "scan", "log", "--from", "0:33"],
        ["db", "scan", "log", "--from", "x"],
        ["db", "scan", "log", "--limit", "-1"],
        ["db", "scan", "log", "--format", "yaml"],
        ["db", "info"],
        ["db", "frobnicate", "log"],
        ["db", "info", "log", "--bogus"],
    )
    expected = [
        ("not found", "missing"), ("not a database", "is a file"),
        ("not a database", "no segment files"), ("bad location '1:2'", "INDEX:POSITION:SIZE"),
        ("bad location 'a:b:c'",), ("bad location",), ("bad location",),
        ("bad --from", "no record starts at 0:33"), ("bad location 'x'",),
        ("--limit", "-1"), ("--format", "yaml"), ("Missing argument 'PATH'",),
        ("No such command 'frobnicate'",), ("No such option", "--bogus"),
    ]
    for result, needles in zip(results, expected, strict=True):
        assert_usage_error(result, *needles)
    assert os.listdir(tmp_path / "empty") == []  # nothing was created


def test_help_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from aiostore.cli import main  # (in-process: help texts need no subprocess each)

    commands = [[], ["db"], ["db", "info"], ["db", "verify"], ["db", "scan"], ["db", "get"],
                ["table"], ["table", "history"], ["table", "show"], ["table", "schema"],
                ["table", "vacuum"], ["table", "restore"], ["ls"], ["cp"], ["cat"], ["rm"],
                ["convert"]]
    for command in commands:
        assert main([*command, "--help"]) == 0
        out, err = capsys.readouterr()
        assert out.startswith(f"Usage: aiostore {' '.join(command)}".rstrip()), command
        assert err == ""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("aiostore ")
    main(["--help"])
    top = capsys.readouterr().out
    for name in ("db", "table", "ls", "cp", "cat", "rm", "convert"):
        assert f"  {name} " in top


@pytest.mark.parametrize("mode", ["always"])
def test_progress_goes_to_stderr_when_forced(cli: Cli, tmp_path: Path, mode: str) -> None:
    build_db(tmp_path / "log")
    result = cli("--progress", mode, "db", "verify", "log").ok()
    assert "verifying" in result.err and result.lines()[-1].startswith("ok: ")
    assert len(result.lines()) == 1
