"""The format registry: every built-in format round-trips, handlers are chosen by extension and
object as documented, user handlers plug in, pickle stays off unless allowed, and the one write
path publishes through local and object-store destinations."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pydantic
import pytest
import scipy.sparse
from PIL import Image

import aiostore
from aiostore import errors
from aiostore.formats import (
    FormatOptions,
    LocalDestination,
    ObjectDestination,
    Registry,
    default_registry,
)

pytestmark = pytest.mark.anyio


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Config(pydantic.BaseModel):
    name: str
    size: int = 3


def _image(mode: str = "RGB") -> Image.Image:
    img = Image.new(mode, (8, 6))
    for i in range(8):
        img.putpixel((i, i % 6), (i * 30, 255 - i * 30, 7) if mode == "RGB" else i * 30)
    return img


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict) and a and all(isinstance(v, np.ndarray) for v in a.values()):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k])
                                                                   for k in a)
    if scipy.sparse.issparse(a):
        diff: Any = a != b
        return bool(scipy.sparse.issparse(b)) and diff.nnz == 0
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b)
    return a == b


ROUND_TRIPS: list[Any] = [
    pytest.param(b"\x00raw\xff", ".bin", id="bytes"),
    pytest.param("héllo\n", ".txt", id="text"),
    pytest.param("# title\n", ".md", id="markdown"),
    pytest.param("<p>x</p>", ".html", id="html"),
    pytest.param({"a": 1, "b": [1, 2.5, None, "x"]}, ".json", id="json"),
    pytest.param([{"a": 1}, {"a": 2, "b": "x"}], ".jsonl", id="jsonl"),
    pytest.param({"a": 1, "nested": {"b": [1, 2]}}, ".yaml", id="yaml"),
    pytest.param({"a": 1}, ".yml", id="yml"),
    pytest.param(np.arange(12, dtype=np.float32).reshape(3, 4), ".npy", id="npy"),
    pytest.param(np.asfortranarray(np.arange(6).reshape(2, 3)), ".npy", id="npy-fortran"),
    pytest.param({"w": np.ones((2, 2)), "b": np.arange(3)}, ".npz", id="npz"),
    pytest.param(scipy.sparse.random(20, 30, density=0.1, format="csr", random_state=1),
                 ".sparse.npz", id="sparse"),
    pytest.param(pd.DataFrame({"i": [1, 2], "s": ["a", "b"]}), ".parquet", id="parquet"),
    pytest.param(pd.DataFrame({"i": [1, 2], "s": ["a", "b"]}), ".csv", id="csv"),
    pytest.param(pd.DataFrame({"i": [1, 2], "s": ["a", "b"]}), ".feather", id="feather"),
    pytest.param(pd.DataFrame({"i": [1, 2], "s": ["a", "b"]}), ".xlsx", id="xlsx"),
]


@pytest.mark.parametrize(("obj", "ext"), ROUND_TRIPS)
async def test_builtin_formats_round_trip(tmp_path: Path, obj: object, ext: str) -> None:
    path = tmp_path / f"thing{ext}"
    await aiostore.write(obj, path)
    assert _same(obj, await aiostore.read(path))
    reg = default_registry()
    assert reg.split_extension(f"dir/thing{ext}") == ("dir/thing", ext)
    data = b"".join(bytes(c) for c in await reg.encode(obj, ext))
    assert _same(obj, await reg.decode(data, ext))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
async def test_images_round_trip(tmp_path: Path, ext: str) -> None:
    img = _image()
    await aiostore.write(img, tmp_path / f"i{ext}")
    back = await aiostore.read(tmp_path / f"i{ext}")
    assert isinstance(back, Image.Image) and back.size == img.size
    if ext == ".png":  # lossless
        assert back.tobytes() == img.tobytes()
    rgba = _image("RGB").convert("RGBA")
    await aiostore.write(rgba, tmp_path / "alpha.jpg")  # JPEG has no alpha: converted
    assert (await aiostore.read(tmp_path / "alpha.jpg")).mode == "RGB"


async def test_models_are_json_and_come_back_as_dicts_or_as_the_class(tmp_path: Path) -> None:
    await aiostore.write(Point(1, 2), tmp_path / "p.json")
    assert await aiostore.read(tmp_path / "p.json") == {"x": 1, "y": 2}
    await aiostore.write(Config(name="n"), tmp_path / "c.json")
    reg = default_registry()
    data = (tmp_path / "c.json").read_bytes()
    assert await reg.decode(data, ".json", options=FormatOptions(model=Config)) == \
        Config(name="n", size=3)
    assert await reg.decode((tmp_path / "p.json").read_bytes(), ".json",
                            options=FormatOptions(model=Point)) == Point(1, 2)
    with pytest.raises(errors.SerializationError, match="cannot build Config"):
        await reg.decode(b'{"size": "big"}', ".json", options=FormatOptions(model=Config))


async def test_frames_read_back_as_asked() -> None:
    reg = default_registry()
    df = pd.DataFrame({"x": [1, 2, 3]})
    data = b"".join(bytes(c) for c in await reg.encode(df, ".parquet"))
    assert isinstance(await reg.decode(data, ".parquet",
                                       options=FormatOptions(output="polars")), pl.DataFrame)
    assert isinstance(await reg.decode(data, ".parquet",
                                       options=FormatOptions(output="arrow")), pa.Table)
    assert isinstance(await reg.decode(data, ".parquet"), pd.DataFrame)


def test_the_handler_chosen_for_an_object_without_extension() -> None:
    reg = default_registry()

    def ext(obj: object) -> str:
        return reg.for_object(obj).extensions[0]

    assert ext(pd.DataFrame({"a": [1]})) == ".parquet"
    assert ext(pl.DataFrame({"a": [1]})) == ".parquet"
    assert ext(pa.table({"a": [1]})) == ".parquet"
    assert ext({"a": 1}) == ".json"
    assert ext([{"a": 1}, {"b": 2}]) == ".jsonl"
    assert ext([1, 2]) == ".json"
    assert ext("text") == ".txt"
    assert ext(b"raw") == ".bin"
    assert ext(np.zeros(3)) == ".npy"
    assert ext({"a": np.zeros(3)}) == ".npz"
    assert ext(scipy.sparse.eye(3, format="csr")) == ".sparse.npz"
    assert ext(_image()) == ".png"
    assert ext(Point(1, 2)) == ".json"
    assert ext(Config(name="x")) == ".json"


def test_an_explicit_extension_wins_and_a_mismatch_is_a_clear_error() -> None:
    reg = default_registry()
    assert reg.for_object({"a": 1}, ".yaml").extensions[0] == ".yaml"
    assert reg.for_object(pd.DataFrame({"a": [1]}), ".csv").extensions[0] == ".parquet"
    with pytest.raises(errors.SerializationError, match="a ndarray cannot be written as json"):
        reg.for_object(np.zeros(2), ".json")
    with pytest.raises(errors.SerializationError, match="a dict cannot be written as png"):
        reg.for_object({"a": 1}, ".png")


def test_pickle_is_off_unless_allowed() -> None:
    reg = default_registry()

    class Opaque:
        pass

    with pytest.raises(errors.UnknownFormatError, match=r"no handler takes an object of type "
                                                        r"Opaque.*allow_pickle"):
        reg.for_object(Opaque())
    with pytest.raises(errors.UnknownFormatError, match="pickle is off"):
        reg.for_object(Opaque(), ".pkl")
    with pytest.raises(errors.UnknownFormatError, match=r"reading \.pkl is off"):
        reg.for_extension(".pkl")
    with pytest.raises(errors.UnknownFormatError, match="pickle is off"):
        reg.for_object({"a": 1}, ".pkl")  # never JSON written into a .pkl file
    assert reg.for_object(Opaque(), allow_pickle=True).extensions[0] == ".pkl"
    assert reg.for_extension(".pkl", allow_pickle=True).extensions[0] == ".pkl"


async def test_any_bytes_like_decodes(tmp_path: Path) -> None:
    reg = default_registry()
    for obj, ext in [({"a": [1, 2]}, ".yaml"), ({"a": 1}, ".json"), ("t", ".txt"),
                     ([{"a": 1}], ".jsonl"), (np.arange(3), ".npy")]:
        data = bytearray(b"".join(bytes(c) for c in await reg.encode(obj, ext)))
        assert _same(obj, await reg.decode(data, ext)), ext
        assert _same(obj, await reg.decode(memoryview(bytes(data)), ext)), ext
    assert reg.holds_frames(".parquet") and reg.holds_frames(".json")
    assert not reg.holds_frames(".yaml")


async def test_pickle_round_trips_when_allowed() -> None:
    reg = default_registry()
    obj = {"set": {1, 2}, "tuple": (1, "a")}
    h = reg.for_object(obj, ".pkl", allow_pickle=True)
    data = b"".join(bytes(c) for c in await reg.encode(obj, ".pkl", handler=h))
    assert await reg.decode(data, ".pkl", allow_pickle=True) == obj
    with pytest.raises(errors.UnknownFormatError):
        await reg.decode(data, ".pkl")


class LogHandler:
    """A user handler: the public minimum only."""

    extensions = (".log",)
    priority = 50

    def can_handle(self, obj: object) -> bool:
        return isinstance(obj, list) and all(isinstance(x, str) for x in obj)

    def dumps(self, obj: object, ext: str) -> bytes:
        assert isinstance(obj, list)
        return "\n".join(obj).encode()

    def loads(self, data: bytes, ext: str) -> object:
        return data.decode().split("\n")


async def test_user_handlers_plug_in_without_changing_the_package_registry(
        tmp_path: Path) -> None:
    reg = default_registry().copy()
    reg.register(LogHandler())
    lines = ["one", "two"]
    assert reg.for_object(lines).extensions == (".log",)  # priority 50 beats JSON's
    assert default_registry().for_object(lines).extensions[0] == ".json"
    info = await reg.write(lines, LocalDestination(str(tmp_path / "x.log")), ".log")
    assert info is None and (tmp_path / "x.log").read_bytes() == b"one\ntwo"
    assert await reg.decode(b"a\nb", ".log") == ["a", "b"]
    assert reg.split_extension("x.log") == ("x", ".log")


@pytest.mark.parametrize(("handler", "match"), [
    (object(), "extensions"),
    (type("H", (), {"extensions": ("log",), "priority": 1})(), "extensions"),
    (type("H", (), {"extensions": (".LOG",), "priority": 1})(), "lower case"),
    (type("H", (), {"extensions": (".log",), "priority": "high"})(), "priority"),
    (type("H", (), {"extensions": (".log",), "priority": 1})(), "can_handle"),
])
def test_register_refuses_what_is_not_a_handler(handler: object, match: str) -> None:
    with pytest.raises(errors.InvalidArgumentError, match=match):
        Registry().register(handler)  # type: ignore[arg-type]


def test_format_names_and_extensions() -> None:
    reg = default_registry()
    assert reg.ext_for_format("Parquet") == ".parquet"
    assert reg.ext_for_format("feather") == ".arrow"
    assert reg.ext_for_format(".npy") == ".npy"
    assert reg.ext_for_format("webp") == ".webp"
    with pytest.raises(errors.UnknownFormatError, match="unknown format 'hdf5'"):
        reg.ext_for_format("hdf5")
    assert reg.split_extension("noext") == ("noext", "")
    assert reg.split_extension(".npy") == (".npy", "")  # a hidden file, not an extension
    assert reg.split_extension("a/M.SPARSE.NPZ") == ("a/M", ".sparse.npz")


async def test_a_large_array_streams_and_reads_back_without_a_copy(tmp_path: Path) -> None:
    reg = default_registry()
    arr = np.arange(10_000_000, dtype=np.float64)  # 80 MB: above the streaming threshold
    pushed: list[int] = []

    class Counting(LocalDestination):
        async def stream(self, produce: Any) -> None:
            def spy(sink: Any, abort: Any) -> None:
                def counted(b: Any) -> None:
                    pushed.append(len(b))
                    sink(b)
                produce(counted, abort)
            await super().stream(spy)

    await reg.write(arr, Counting(str(tmp_path / "big.npy")), ".npy")
    assert len(pushed) > 2 and max(pushed) <= 16 << 20  # pieces, not one 80 MB buffer
    data = bytearray((tmp_path / "big.npy").read_bytes())
    back = await reg.decode(data, ".npy")
    assert isinstance(back, np.ndarray) and np.array_equal(back, arr)
    assert back.base is not None and back.flags.writeable  # a view of the bytearray


async def test_object_arrays_are_refused_both_ways() -> None:
    reg = default_registry()
    with pytest.raises(errors.SerializationError, match="need pickle"):
        await reg.encode(np.array([object()]), ".npy")
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(errors.SerializationError, match="pickled"):
        await reg.decode(buf.getvalue(), ".npy")


@pytest.mark.parametrize("anyio_backend", [("asyncio", {})])
async def test_the_one_write_path_publishes_to_an_object_store(
        s3_bucket: str, s3_options: dict[str, Any]) -> None:
    reg = default_registry()
    async with aiostore.open_storage(f"s3://{s3_bucket}", **s3_options) as st:
        info = await reg.write({"a": 1}, ObjectDestination(st, "k/c.yaml"), ".yaml")
        assert info is not None and info.key == "k/c.yaml" and info.size > 0
        assert await reg.decode(await st.get("k/c.yaml"), ".yaml") == {"a": 1}
        arr = np.arange(9_000_000, dtype=np.int64)  # streamed: a multipart upload
        await reg.write(arr, ObjectDestination(st, "big.npy"), ".npy")
        back: Any = await reg.decode(bytearray(await st.get("big.npy")), ".npy")
        assert np.array_equal(back, arr)
        with pytest.raises(errors.AlreadyExistsError):
            await reg.write({"a": 2}, ObjectDestination(st, "k/c.yaml", overwrite=False),
                            ".yaml")
        assert await reg.decode(await st.get("k/c.yaml"), ".yaml") == {"a": 1}
