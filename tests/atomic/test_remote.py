"""The atomic writers and ``read`` on ``s3://`` URIs, against the real S3 server."""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa
import pytest

import aiostore
from aiostore import errors
from aiostore.storage.s3 import S3Storage

pytestmark = pytest.mark.asyncio


async def _keys(bucket: str, options: dict[str, Any]) -> list[str]:
    async with aiostore.open_storage(f"s3://{bucket}", **options) as st:
        return [i.key async for i in st.list()]


async def _pending_uploads(bucket: str, options: dict[str, Any]) -> list[str]:
    """Multipart uploads left open in ``bucket`` (asked with aiobotocore: obstore cannot)."""
    async with aiostore.open_storage(f"s3://{bucket}", backend="aiobotocore", **options) as st:
        assert isinstance(st, S3Storage)
        client = await st._get_client()
        response = await client.list_multipart_uploads(Bucket=bucket)
        return [u["Key"] for u in response.get("Uploads") or []]


async def test_whole_object_writers_and_read(s3_bucket: str, s3_options: dict[str, Any]
                                            ) -> None:
    url = f"s3://{s3_bucket}/cfg"
    so = s3_options
    await aiostore.write_bytes(f"{url}/a.bin", b"\x00\x01", storage_options=so)
    await aiostore.write_text(f"{url}/b.txt", "héllo", storage_options=so)
    await aiostore.write_json(f"{url}/c.json", {"x": [1, 2]}, indent=2, storage_options=so)
    assert await aiostore.read(f"{url}/a.bin", storage_options=so) == b"\x00\x01"
    assert await aiostore.read(f"{url}/b.txt", storage_options=so) == "héllo"
    assert await aiostore.read(f"{url}/c.json", storage_options=so) == {"x": [1, 2]}
    await aiostore.write({"y": 1}, f"{url}/d.json", storage_options=so)
    assert await aiostore.read(f"{url}/d.json", storage_options=so) == {"y": 1}
    with pytest.raises(FileExistsError):
        await aiostore.write_json(f"{url}/c.json", {}, overwrite=False, storage_options=so)
    assert await aiostore.read(f"{url}/c.json", storage_options=so) == {"x": [1, 2]}
    with pytest.raises(errors.NotFoundError):
        await aiostore.read(f"{url}/missing.json", storage_options=so)
    with pytest.raises(errors.SerializationError):  # before any request
        await aiostore.write_json(f"{url}/e.json", {"bad": object()}, storage_options=so)
    assert await _keys(s3_bucket, s3_options) == ["cfg/a.bin", "cfg/b.txt", "cfg/c.json",
                                                  "cfg/d.json"]


async def test_streamed_writers(s3_bucket: str, s3_options: dict[str, Any]) -> None:
    opts = dict(s3_options, multipart_threshold=5 << 20, part_size=5 << 20)
    url = f"s3://{s3_bucket}"
    n = await aiostore.write_jsonl(f"{url}/r.jsonl", ({"i": i, "pad": "p" * 100}
                                                      for i in range(60_000)),
                                   storage_options=opts)
    assert n == 60_000
    rows = await aiostore.read(f"{url}/r.jsonl", storage_options=opts)
    assert len(rows) == 60_000 and rows[-1]["i"] == 59_999
    async with aiostore.atomic_open(f"{url}/log.txt", "w", storage_options=opts) as f:
        for i in range(1000):
            await f.write(f"line {i}\n")
    text = await aiostore.read(f"{url}/log.txt", storage_options=opts)
    assert text.splitlines()[-1] == "line 999"
    with pytest.raises(RuntimeError):
        async with aiostore.atomic_open(f"{url}/never.txt", "wb", storage_options=opts) as f:
            await f.write(b"x" * (12 << 20))
            raise RuntimeError("boom")
    assert "never.txt" not in await _keys(s3_bucket, s3_options)
    assert await _pending_uploads(s3_bucket, s3_options) == []


async def test_frames_to_and_from_s3(s3_bucket: str, s3_options: dict[str, Any]) -> None:
    opts = dict(s3_options, multipart_threshold=5 << 20, part_size=5 << 20)
    table = pa.table({"a": pa.array(range(400_000)), "b": pa.array(["text"] * 400_000)})
    url = f"s3://{s3_bucket}/t"
    for suffix in ("parquet", "csv", "arrow"):
        await aiostore.write(table, f"{url}.{suffix}", storage_options=opts)
        back = await aiostore.read(f"{url}.{suffix}", output="arrow", storage_options=opts)
        assert back.num_rows == 400_000 and back.column("a").to_pylist()[-1] == 399_999
    with pytest.raises(FileExistsError):
        await aiostore.write(table, f"{url}.parquet", overwrite=False, storage_options=opts)
    assert await _pending_uploads(s3_bucket, s3_options) == []


async def test_a_cancelled_frame_upload_leaves_nothing(s3_bucket: str,
                                                       s3_options: dict[str, Any]) -> None:
    opts = dict(s3_options, multipart_threshold=5 << 20, part_size=5 << 20)
    seen = asyncio.Event()

    def progress(done: int, total: int | None) -> None:
        if done >= 200_000:
            seen.set()

    table = pa.table({"a": pa.array(range(3_000_000)), "b": pa.array(["x" * 20] * 3_000_000)})
    task = asyncio.create_task(aiostore.write(table, f"s3://{s3_bucket}/c.csv",
                                              progress=progress, storage_options=opts))
    await seen.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _keys(s3_bucket, s3_options) == []
    assert await _pending_uploads(s3_bucket, s3_options) == []


async def test_remote_arguments_are_checked(s3_bucket: str, s3_options: dict[str, Any],
                                            tmp_path: Any) -> None:
    with pytest.raises(errors.InvalidArgumentError, match="mode"):
        await aiostore.write_bytes(f"s3://{s3_bucket}/k", b"x", mode=0o600,
                                   storage_options=s3_options)
    with pytest.raises(errors.InvalidArgumentError, match="s3:// URIs only"):
        await aiostore.write_bytes(tmp_path / "k", b"x", storage_options=s3_options)
    with pytest.raises(errors.InvalidArgumentError, match="s3://bucket/key"):
        await aiostore.write_bytes(f"s3://{s3_bucket}", b"x", storage_options=s3_options)
    assert await _keys(s3_bucket, s3_options) == []
