"""``aiostore ls|cp|cat|rm|convert`` as real processes: local paths and the SeaweedFS
bucket."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import Cli, assert_usage_error

pd = pytest.importorskip("pandas")


def make_tree(root: Path) -> dict[str, bytes]:
    """A small tree: a text file, a 6 MiB file (more than one chunk of a multipart upload),
    an empty file, a nested file."""
    files = {"a.txt": b"hello\n", "big.bin": os.urandom(6 << 20), "empty": b"",
             "sub/deep/c.json": b'{"c": 1}'}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_cp_ls_cat_rm_between_local_and_s3(s3_cli: Cli, s3_bucket: str,
                                           s3_endpoint: list[str], tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src")
    b = f"s3://{s3_bucket}"
    up = s3_cli("cp", "-r", "src", f"{b}/tree", *s3_endpoint).ok()
    assert sorted(up.lines()) == sorted(f"copied {os.path.join('src', *rel.split('/'))} -> "
                                        f"{b}/tree/{rel} ({len(data)} bytes)"
                                        for rel, data in files.items())
    one, into, ls, ls_r, cat_big, cat_a = s3_cli.many(
        ["cp", "src/a.txt", f"{b}/one/a-copy.txt", *s3_endpoint],
        ["cp", "src/sub/deep/c.json", f"{b}/into/", *s3_endpoint, "--json"],
        ["ls", f"{b}/tree", *s3_endpoint],
        ["ls", "-r", f"{b}/tree/", *s3_endpoint, "--json"],
        ["cat", f"{b}/tree/big.bin", *s3_endpoint],
        ["cat", f"{b}/tree/a.txt", *s3_endpoint])
    one.ok()
    assert json.loads(into.ok().out) == {"copied": "src/sub/deep/c.json",
                                         "to": f"{b}/into/c.json", "size": 8}
    names = [line.split()[-1] for line in ls.ok().lines()]
    assert names == ["a.txt", "big.bin", "empty", "sub/"]
    assert ls.lines()[-1].split()[0] == "DIR"
    listed = [json.loads(line) for line in ls_r.ok().lines()]
    assert [(e["name"], e["size"]) for e in listed] == sorted(
        (rel, len(data)) for rel, data in files.items())
    assert all(e["url"] == f"{b}/tree/{e['name']}" for e in listed)
    assert cat_big.ok().raw == files["big.bin"] and cat_big.err == ""
    assert cat_a.ok().raw == b"hello\n"

    down, s3_to_s3, single = s3_cli.many(
        ["cp", "--recursive", f"{b}/tree", "back", *s3_endpoint, "--jobs", "3"],
        ["cp", "-r", f"{b}/tree/sub", f"{b}/moved", *s3_endpoint],
        ["cp", f"{b}/one/a-copy.txt", "local-a.txt", *s3_endpoint])
    down.ok(), s3_to_s3.ok(), single.ok()
    for rel, data in files.items():
        assert (tmp_path / "back" / rel).read_bytes() == data
    assert (tmp_path / "local-a.txt").read_bytes() == b"hello\n"
    assert [p.name for p in (tmp_path / "back").rglob("*aiostore*")] == []  # no temp files
    assert s3_cli("cat", f"{b}/moved/deep/c.json", *s3_endpoint).ok().raw == b'{"c": 1}'

    removed = s3_cli("rm", "-r", f"{b}/tree", *s3_endpoint).ok()
    assert len(removed.lines()) == len(files)
    rm_one = s3_cli("rm", f"{b}/one/a-copy.txt", *s3_endpoint, "--json").ok()
    assert json.loads(rm_one.out) == {"removed": f"{b}/one/a-copy.txt", "size": 6}
    left = s3_cli("ls", "-r", b, *s3_endpoint, "--json").ok()
    assert sorted(json.loads(line)["name"] for line in left.lines()) == [
        "into/c.json", "moved/deep/c.json"]

    local_ls = s3_cli("ls", "back", "--json")
    local_rm = s3_cli("rm", "-r", "back/sub")
    assert [json.loads(line)["name"] for line in local_ls.ok().lines()] == [
        "a.txt", "big.bin", "empty", "sub/"]
    assert local_rm.ok().lines() == [f"removed {os.path.join('back', 'sub', 'deep', 'c.json')}"]
    assert not (tmp_path / "back" / "sub").exists()


def test_convert_between_formats_local_and_s3(s3_cli: Cli, s3_bucket: str,
                                              s3_endpoint: list[str], tmp_path: Path) -> None:
    n = 150_000  # more than two batches
    df = pd.DataFrame({"id": range(n), "x": [i / 3 for i in range(n)],
                       "s": [f"v{i}" for i in range(n)]})
    df.to_csv(tmp_path / "in.csv", index=False)
    b = f"s3://{s3_bucket}"
    s3_cli("convert", "in.csv", "out.parquet").ok()
    s3_cli("convert", "out.parquet", f"{b}/c/out.jsonl", *s3_endpoint).ok()
    s3_cli("convert", f"{b}/c/out.jsonl", "back.arrow", *s3_endpoint).ok()
    parquet, arrow = s3_cli.many(["convert", "back.arrow", "back.csv"],
                                 ["convert", "out.parquet", "small.json"])
    parquet.ok(), arrow.ok()
    assert parquet.out == "converted back.arrow -> back.csv (150,000 rows)\n"
    assert parquet.err == ""  # (no terminal: no progress bar)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out.parquet"), df)
    pd.testing.assert_frame_equal(pd.read_feather(tmp_path / "back.arrow"), df)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "back.csv"), df)
    pd.testing.assert_frame_equal(pd.read_json(tmp_path / "small.json"), df)
    first = s3_cli("cat", f"{b}/c/out.jsonl", *s3_endpoint).ok().lines()[0]
    assert json.loads(first) == {"id": 0, "x": 0.0, "s": "v0"}


def test_object_commands_reject_bad_input_with_one_line(s3_cli: Cli, s3_bucket: str,
                                                        s3_endpoint: list[str],
                                                        tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_text("x")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    b = f"s3://{s3_bucket}"
    results = s3_cli.many(
        ["ls", "missing"],
        ["ls", "gs://bucket/key"],
        ["ls", "s3://"],
        ["ls", "s3://Not_A_Bucket/x", *s3_endpoint],
        ["ls", f"{b}/nothing-here", *s3_endpoint],
        ["ls", "s3://no-such-bucket-here", *s3_endpoint],
        ["cat", f"{b}/missing.txt", *s3_endpoint],
        ["cat", "dir"],
        ["cp", "dir", f"{b}/d", *s3_endpoint],
        ["cp", "-r", "dir/f.txt", "elsewhere"],
        ["cp", "missing.txt", "x.txt"],
        ["cp", "dir/f.txt", "dir/f.txt/x.txt"],
        ["rm", "dir"],
        ["rm", f"{b}/missing", *s3_endpoint],
        ["convert", "dir/f.txt", "x.parquet"],
        ["convert", "missing.csv", "x.parquet"],
        ["convert", "dir/f.csv", "x.bin"],
        ["convert", "bad.parquet", "x.csv"],
        ["cp", "dir/f.txt"],
    )
    expected = [
        ("not found", "missing"), ("bad URL 'gs://bucket/key'", "unsupported scheme 'gs'"),
        ("bad URL 's3://'", "no bucket"), ("not a valid S3 bucket name",),
        ("not found", "nothing-here"), ("no such bucket",), ("not found", "missing.txt"),
        ("is a directory", "dir"), ("is a directory or prefix", "--recursive"),
        ("single file", "without --recursive"), ("not found", "missing.txt"),
        ("not a directory",), ("is a directory", "--recursive"), ("not found", "missing"),
        ("unknown format", ".txt does not hold a table"), ("not found", "missing.csv"),
        ("unknown format", ".bin does not hold a table"), ("bad.parquet is not valid parquet",),
        ("Missing argument 'DST'",),
    ]
    for result, needles in zip(results, expected, strict=True):
        assert_usage_error(result, *needles)
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet", "dir"]
