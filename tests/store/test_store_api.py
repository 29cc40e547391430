"""The Store's API on a local directory (asyncio, uvloop, trio) and on S3 (SeaweedFS): formats
chosen by type or extension, keys without extensions, missing keys, info, copy/move/delete,
handlers and the pickle policy."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pydantic
import pytest

import aiostore
from aiostore import errors
from aiostore.store import KeyInfo

pytestmark = pytest.mark.anyio


async def _keys(store: aiostore.Store, prefix: str = "") -> list[str]:
    return [key async for key in store.keys(prefix)]


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Config(pydantic.BaseModel):
    name: str
    size: int = 3


async def _objects(store: aiostore.Store, prefix: str = "") -> list[str]:
    return [info.key async for info in store.storage.list(prefix)]


async def test_format_by_type_and_keys_without_extensions(root: str, options: dict[str, Any]
                                                          ) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    async with aiostore.Store(root, storage_options=options) as store:
        values: dict[str, object] = {
            "frame": frame, "conf": {"a": 1, "nested": [1, 2]}, "rows": [{"i": 1}, {"i": 2}],
            "note": "hello", "blob": b"\x00\x01", "arr": np.arange(6).reshape(2, 3),
            "point": Point(1, 2), "model": Config(name="m"),
        }
        for key, value in values.items():
            info = await store.set(key, value)
            assert isinstance(info, KeyInfo) and info.key == key
        assert await _objects(store) == sorted([
            "arr.npy", "blob.bin", "conf.json", "frame.parquet", "model.json", "note.txt",
            "point.json", "rows.jsonl"])
        assert await _keys(store) == sorted(values)
        pd.testing.assert_frame_equal(await store.get("frame"), frame)
        assert await store.get("conf") == {"a": 1, "nested": [1, 2]}
        assert await store.get("rows") == [{"i": 1}, {"i": 2}]
        assert await store.get("note") == "hello"
        assert await store.get("blob") == b"\x00\x01"
        assert np.array_equal(await store.get("arr"), np.arange(6).reshape(2, 3))
        assert await store.get("point") == {"x": 1, "y": 2}
        assert await store.get("point", model=Point) == Point(1, 2)
        assert await store.get("model", model=Config) == Config(name="m")
        # a key may name the extension of its object too
        assert await store.get("conf.json") == {"a": 1, "nested": [1, 2]}


async def test_an_explicit_extension_wins(root: str, options: dict[str, Any]) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    async with aiostore.Store(root, storage_options=options) as store:
        await store.set("conf.yaml", {"a": 1})
        await store.set("frame.csv", frame)
        await store.set("readme.md", "# title")
        await store.set("weird.json", "a string")  # JSON, not raw text
        assert await _objects(store) == ["conf.yaml", "frame.csv", "readme.md", "weird.json"]
        assert await store.get("conf") == {"a": 1}
        pd.testing.assert_frame_equal(await store.get("frame"), frame)
        assert await store.get("readme") == "# title"
        assert await store.get("weird") == "a string"
        assert (await store.storage.get("weird.json")) == b'"a string"'
        with pytest.raises(errors.SerializationError):  # bytes are not a frame
            await store.set("raw.parquet", b"not parquet")
        assert not await store.contains("raw")


async def test_frames_read_back_as_the_store_or_the_call_says(root: str,
                                                              options: dict[str, Any]) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    async with aiostore.Store(root, storage_options=options, frames="polars") as store:
        await store.set("frame", frame)
        await store.set("records", [{"a": 1}, {"a": 2}])  # .jsonl
        assert isinstance(await store.get("frame"), pl.DataFrame)
        assert isinstance(await store.get("frame", output="arrow"), pa.Table)
        assert isinstance(await store.get("frame", output="pandas"), pd.DataFrame)
        # records stay records unless a frame is asked for
        assert await store.get("records") == [{"a": 1}, {"a": 2}]
        assert (await store.get("records", output="polars")).to_dicts() == [{"a": 1}, {"a": 2}]
        with pytest.raises(errors.InvalidArgumentError):
            await store.get("frame", output="numpy")
    with pytest.raises(errors.InvalidArgumentError):
        aiostore.Store(root, frames="excel")


async def test_a_missing_key_is_a_key_error_and_a_not_found_error(root: str,
                                                                   options: dict[str, Any]
                                                                   ) -> None:
    async with aiostore.Store(root, storage_options=options) as store:
        with pytest.raises(errors.KeyNotFoundError) as caught:
            await store.get("nope")
        assert isinstance(caught.value, KeyError)
        assert isinstance(caught.value, errors.NotFoundError)
        assert isinstance(caught.value, FileNotFoundError)
        assert "nope" in str(caught.value)
        assert await store.get("nope", default=None) is None
        assert not await store.contains("nope")
        await store.set("there", 1)
        with pytest.raises(KeyError):
            await store.get("there.yaml")  # another format than the one stored
        with pytest.raises(KeyError):
            await store.info("nope")
        with pytest.raises(KeyError):
            await store.delete("nope")
        await store.delete("nope", missing_ok=True)
        with pytest.raises(KeyError):
            await store.copy("nope", "other")


async def test_info(root: str, options: dict[str, Any]) -> None:
    async with aiostore.Store(root, storage_options=options) as store:
        before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
        written = await store.set("runs/1/frame", pd.DataFrame({"a": [1]}))
        info = await store.info("runs/1/frame")
        # (S3 reports modified times in whole seconds; a put's own answer may be finer)
        assert dataclasses.replace(info, modified=written.modified) == written
        assert abs(info.modified - written.modified) < dt.timedelta(seconds=2)
        assert info.key == "runs/1/frame"
        assert info.object_key == "runs/1/frame.parquet"
        assert info.url == f"{store.url.rstrip('/')}/runs/1/frame.parquet"
        assert info.extension == ".parquet" and info.format == "parquet"
        head = await store.storage.head("runs/1/frame.parquet")
        assert (info.size, info.etag, info.modified) == (head.size, head.etag, head.mtime)
        assert info.modified >= before
        assert (await store.info("runs/1/frame.parquet")).object_key == "runs/1/frame.parquet"


async def test_keys_with_prefix_each_once_and_only_known_formats(root: str,
                                                                 options: dict[str, Any]
                                                                 ) -> None:
    async with aiostore.Store(root, storage_options=options) as store:
        for key in ["runs/a", "runs/b/c", "runs2/x", "top", "a.b", "sp"]:
            await store.set(key, {"k": key})
        await store.storage.put("runs/a.yaml", b"k: other")  # ambiguous: listed once
        await store.storage.put("runs/unknown.xyz", b"?")  # no known extension: not a key
        await store.storage.put("runs/noext", b"?")
        await store.storage.put("runs/a.aiostore-replace", b".yaml")  # a marker: not a key
        await store.storage.put("runs/a.b/c.json", b"{}")  # "runs/a." block interleaved
        # in the order of the objects' names: runs/a.b/c.json comes before runs/a.json
        assert await _keys(store) == ["a.b", "runs/a.b/c", "runs/a", "runs/b/c",
                                                   "runs2/x", "sp", "top"]
        assert await _keys(store, "runs/") == ["runs/a.b/c", "runs/a", "runs/b/c"]
        assert await _keys(store, "runs") == ["runs/a.b/c", "runs/a", "runs/b/c",
                                                         "runs2/x"]
        assert await _keys(store, "nothing/") == []
        assert [key async for key in store] == await _keys(store)
        assert await store.get("a.b") == {"k": "a.b"}  # ".b" is no known extension


async def test_copy_move_delete(root: str, options: dict[str, Any]) -> None:
    async with aiostore.Store(root, storage_options=options) as store:
        await store.set("conf", {"v": 1})
        copied = await store.copy("conf", "backup/conf")
        assert copied.object_key == "backup/conf.json"
        assert await store.get("backup/conf") == {"v": 1}
        await store.copy("conf", "backup/conf.json")  # naming the same extension is fine
        with pytest.raises(errors.InvalidArgumentError):
            await store.copy("conf", "backup/conf.yaml")  # a copy does not convert
        # copying over a key stored in another format replaces it
        await store.set("other", {"old": True}, )
        await store.set("other.yaml", {"old": "yaml"})
        await store.copy("conf", "other")
        assert await _objects(store, "other") == ["other.json"]
        assert await store.get("other") == {"v": 1}

        moved = await store.move("conf", "final/conf")
        assert moved.object_key == "final/conf.json"
        assert not await store.contains("conf")
        assert await store.get("final/conf") == {"v": 1}

        await store.delete("final/conf")
        assert not await store.contains("final/conf")
        assert await _objects(store) == ["backup/conf.json", "other.json"]


class Opaque:
    """An object only pickle takes."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.v == self.v


async def test_pickle_is_off_unless_allowed(root: str, options: dict[str, Any]) -> None:
    async with aiostore.Store(root, storage_options=options) as store:
        with pytest.raises(errors.UnknownFormatError, match="allow_pickle"):
            await store.set("thing", Opaque(1))
        with pytest.raises(errors.UnknownFormatError, match="allow_pickle"):
            await store.set("thing.pkl", {"a": 1})
        assert await _objects(store) == []
    async with aiostore.Store(root, storage_options=options, allow_pickle=True) as trusting:
        await trusting.set("thing", Opaque(2))
        assert await _objects(trusting) == ["thing.pkl"]
        assert await trusting.get("thing") == Opaque(2)
    async with aiostore.Store(root, storage_options=options) as store:
        assert await _keys(store) == ["thing"]  # listed, but not read:
        read_calls: list[str] = []
        real_get = store.storage.get

        async def spy(key: str, **kwargs: Any) -> bytes:
            read_calls.append(key)
            return await real_get(key, **kwargs)

        store.storage.get = spy  # type: ignore[method-assign]
        with pytest.raises(errors.UnknownFormatError, match="allow_pickle"):
            await store.get("thing")
        assert read_calls == []  # refused before anything was downloaded


class PointHandler:
    """A user handler: ``Point`` objects as ``x,y`` text in ``.point`` files."""

    extensions = (".point",)
    priority = 50

    def can_handle(self, obj: object) -> bool:
        return isinstance(obj, Point)

    def dumps(self, obj: object, ext: str) -> bytes:
        assert isinstance(obj, Point)
        return f"{obj.x},{obj.y}".encode()

    def loads(self, data: bytes, ext: str) -> object:
        assert isinstance(data, bytes)
        x, y = data.decode().split(",")
        return Point(int(x), int(y))


async def test_register_handler_is_per_store(root: str, options: dict[str, Any]) -> None:
    async with aiostore.Store(root, storage_options=options) as store, \
            aiostore.Store(root, storage_options=options) as plain:
        store.register_handler(PointHandler())
        await store.set("p", Point(3, 4))
        assert await _objects(store) == ["p.point"]
        assert await store.storage.get("p.point") == b"3,4"
        assert await store.get("p") == Point(3, 4)
        assert await _keys(store) == ["p"]
        # the package's registry (and so another store) does not know .point
        assert ".point" not in aiostore.formats.default_registry().extensions()
        assert await _keys(plain) == []
        with pytest.raises(errors.InvalidTypeError):
            store.register_handler(object())  # type: ignore[arg-type]
        bad = PointHandler()
        bad.extensions = (".aiostore-replace",)
        with pytest.raises(errors.InvalidArgumentError):
            store.register_handler(bad)


async def test_a_key_that_names_a_store_root_of_another_kind_is_refused(root: str) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        aiostore.Store(root, max_bytes=0)
    with pytest.raises(errors.InvalidArgumentError):
        aiostore.Store(root, cache_ttl=-1)
    with pytest.raises(errors.InvalidTypeError):
        aiostore.Store(root, storage_options=[("a", 1)])  # type: ignore[arg-type]
