"""``write`` / ``read``: any object in any format, frames batch by batch, progress and failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import errno
import gc
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

import aiostore
from aiostore import errors
from aiostore._io.faulty import FaultyFileSystem
from aiostore.formats import encoders, frames
from tests.conftest import temp_files

pytestmark = pytest.mark.anyio

FRAME_FORMATS = ["parquet", "csv", "json", "jsonl", "arrow", "xlsx"]
SUFFIX = {"parquet": ".parquet", "csv": ".csv", "json": ".json", "jsonl": ".jsonl",
          "arrow": ".arrow", "xlsx": ".xlsx"}


def sample(rows: int = 30) -> pd.DataFrame:
    """int, float, str, bool and datetime columns, with a null in the float column."""
    values = np.linspace(0.0, 1.0, rows)
    values[1] = np.nan
    frame: pd.DataFrame = pd.DataFrame({
        "i": np.arange(rows, dtype=np.int64) * 7 - 50,
        "f": values,
        "s": [f"row {k} é\"\\" for k in range(rows)],
        "b": [k % 3 == 0 for k in range(rows)],
        "ts": pd.date_range("2024-01-01", periods=rows, freq="h"),
    })
    return frame


def as_kind(df: pd.DataFrame, kind: str) -> Any:
    """``df`` as the given kind of frame (all hold the same rows)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if kind == "pandas":
        return df
    if kind == "table":
        return table
    if kind == "batch":
        return table.combine_chunks().to_batches()[0]
    if kind == "reader":
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))
    if kind == "polars":
        return pl.from_arrow(table)
    raise AssertionError(kind)


def text_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """What JSON should hold for ``df``: NaN as None, timestamps in ISO 8601."""
    rows: list[dict[str, Any]] = []
    for rec in df.to_dict("records"):
        rows.append({str(k): (None if isinstance(v, float) and v != v else
                         v.isoformat() if isinstance(v, pd.Timestamp) else v)
                     for k, v in rec.items()})
    return rows


def same_values(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal values, whatever dtypes the text format made of them."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in want.columns:
        g, w = got[col].tolist(), want[col].tolist()
        if col == "ts":
            g, w = [pd.Timestamp(x) for x in g], [pd.Timestamp(x) for x in w]
        assert [None if isinstance(x, float) and x != x else x for x in g] == \
            [None if isinstance(x, float) and x != x else x for x in w], col


# --- plain objects ----------------------------------------------------------------------------

async def test_round_trip_plain_objects(tmp_path: Path) -> None:
    await aiostore.write(b"\x00raw", tmp_path / "a.bin")
    assert await aiostore.read(tmp_path / "a.bin") == b"\x00raw"
    await aiostore.write(bytearray(b"any"), tmp_path / "a.unknown")
    assert await aiostore.read(tmp_path / "a.unknown") == b"any"  # unknown suffix: bytes
    await aiostore.write("héllo\n", tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_bytes() == "héllo\n".encode()
    assert await aiostore.read(tmp_path / "t.txt") == "héllo\n"
    doc = {"a": [1, 2.5, None, True], "b": {"c": "d"}}
    await aiostore.write(doc, tmp_path / "d.json")
    assert json.loads((tmp_path / "d.json").read_text()) == doc
    assert await aiostore.read(tmp_path / "d.json") == doc
    await aiostore.write([1, "two", None], tmp_path / "l.json")
    assert await aiostore.read(tmp_path / "l.json") == [1, "two", None]
    await aiostore.write("a string", tmp_path / "s.json", format="json")
    assert json.loads((tmp_path / "s.json").read_text()) == "a string"
    records = [{"k": i, "v": f"x{i}"} for i in range(5)]
    await aiostore.write(records, tmp_path / "r.jsonl")
    assert (tmp_path / "r.jsonl").read_text().count("\n") == 5
    assert await aiostore.read(tmp_path / "r.jsonl") == records
    for suffix in (".parquet", ".csv"):
        await aiostore.write(records, tmp_path / f"r{suffix}")
        table = await aiostore.read(tmp_path / f"r{suffix}", output="arrow")
        assert table.to_pylist() == records
    assert temp_files(tmp_path) == []


# --- frames in every format -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["pandas", "table", "batch", "reader", "polars"])
@pytest.mark.parametrize("fmt", FRAME_FORMATS)
async def test_frame_round_trip(tmp_path: Path, kind: str, fmt: str) -> None:
    df = sample()
    target = tmp_path / f"data{SUFFIX[fmt]}"
    await aiostore.write(as_kind(df, kind), target)
    if fmt in ("parquet", "arrow"):
        got = await aiostore.read(target)
        # polars has microsecond timestamps; every other kind keeps pandas' nanoseconds
        want = df.assign(ts=df["ts"].astype("datetime64[us]")) if kind == "polars" else df
        assert_frame_equal(got, want)
    elif fmt == "xlsx":
        got = await aiostore.read(target)
        assert_frame_equal(got, df, check_dtype=False)
    elif fmt == "csv":
        same_values(await aiostore.read(target), df)
    else:
        assert await aiostore.read(target) == text_rows(df)
        same_values(await aiostore.read(target, output="pandas"), df)
    assert temp_files(tmp_path) == []


async def test_outputs(tmp_path: Path) -> None:
    df = sample()
    await aiostore.write(df, tmp_path / "d.parquet")
    table = await aiostore.read(tmp_path / "d.parquet", output="arrow")
    assert isinstance(table, pa.Table)
    assert table.equals(pa.Table.from_pandas(df, preserve_index=False))
    frame = await aiostore.read(tmp_path / "d.parquet", output="polars")
    assert isinstance(frame, pl.DataFrame)
    assert frame.equals(pl.from_pandas(df))
    assert_frame_equal(await aiostore.read(tmp_path / "d.parquet", output="pandas"), df)
    await aiostore.write(df, tmp_path / "d.jsonl")
    assert (await aiostore.read(tmp_path / "d.jsonl", output="arrow")).num_rows == len(df)
    with pytest.raises(errors.InvalidArgumentError, match="output must be"):
        await aiostore.read(tmp_path / "missing.parquet", output="numpy")  # checked first
    with pytest.raises(errors.SerializationError, match="does not hold a frame"):
        await aiostore.read(tmp_path / "d.parquet", format="text", output="pandas")


async def test_polars_and_stream_readers(tmp_path: Path) -> None:
    """polars exports string_view columns (CSV cannot hold them as such); IPC stream readers."""
    frame = pl.DataFrame({"s": ["a", "b", None], "n": [1, 2, 3]})
    await aiostore.write(frame, tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text().splitlines() == ['"s","n"', '"a",1', '"b",2', ',3']
    sink = pa.BufferOutputStream()
    table = pa.table({"x": list(range(10))})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=3)
    reader = pa.ipc.open_stream(sink.getvalue())
    assert type(reader) is not pa.RecordBatchReader  # a subclass
    await aiostore.write(reader, tmp_path / "s.parquet")
    assert pq.read_table(tmp_path / "s.parquet").equals(table)


@pytest.mark.parametrize("index", [
    pd.Index(["a", "b", "c", "d"], name="key"),
    pd.Index([10, 3, 7, 1]),
    pd.RangeIndex(5, 9),
    pd.MultiIndex.from_tuples([("x", 1), ("x", 2), ("y", 1), ("y", 2)], names=["g", "n"]),
], ids=["named", "ints", "range", "multi"])
async def test_pandas_index(tmp_path: Path, index: pd.Index[Any]) -> None:
    df = pd.DataFrame({"v": [1.5, 2.5, 3.5, 4.5], "w": ["p", "q", "r", "s"]}, index=index)
    for fmt in ("parquet", "arrow"):  # restored as the index
        await aiostore.write(df, tmp_path / f"d.{fmt}")
        assert_frame_equal(await aiostore.read(tmp_path / f"d.{fmt}"), df, check_index_type=False)
    flat = df.reset_index()
    names = [str(c) for c in flat.columns]
    for fmt in ("csv", "json", "jsonl", "xlsx"):  # index levels become leading columns
        await aiostore.write(df, tmp_path / f"d.{fmt}")
        got = await aiostore.read(tmp_path / f"d.{fmt}", output="pandas")
        assert [str(c) for c in got.columns] == names
        assert got.iloc[:, -1].tolist() == ["p", "q", "r", "s"]
        assert [str(x) for x in got.iloc[:, 0]] == [str(x) for x in flat.iloc[:, 0]]


async def test_default_index_is_not_written(tmp_path: Path) -> None:
    df = pd.DataFrame({"v": [1, 2]})
    for fmt in ("csv", "jsonl"):
        await aiostore.write(df, tmp_path / f"d.{fmt}")
    assert (tmp_path / "d.csv").read_text() == '"v"\n1\n2\n'
    assert (tmp_path / "d.jsonl").read_text() == '{"v": 1}\n{"v": 2}\n'
    await aiostore.write(df, tmp_path / "d.parquet")
    assert pq.read_schema(tmp_path / "d.parquet").names == ["v"]


async def test_empty_frames(tmp_path: Path) -> None:
    df = sample().iloc[:0]
    for fmt in ("parquet", "arrow"):
        await aiostore.write(df, tmp_path / f"e.{fmt}")
        assert_frame_equal(await aiostore.read(tmp_path / f"e.{fmt}"), df)
    await aiostore.write(df, tmp_path / "e.json")
    assert await aiostore.read(tmp_path / "e.json") == []
    await aiostore.write(pa.table({"x": pa.array([], pa.int64())}), tmp_path / "e.jsonl")
    assert (tmp_path / "e.jsonl").read_bytes() == b""
    await aiostore.write(df, tmp_path / "e.csv")
    assert (tmp_path / "e.csv").read_text() == '"i","f","s","b","ts"\n'


# --- JSON encoding ----------------------------------------------------------------------------

def _awkward_table() -> pa.Table:
    utc = dt.timezone.utc
    return pa.table({
        "s": pa.array(['q"b\\s', "n\nt\tr\r", "\x00\x01\x1f", "héllo €", None, "\b\f"]),
        "i": pa.array([1, None, -3, 2**62, 0, 5], pa.int64()),
        "u": pa.array([2**64 - 1, 0, 1, 2, 3, 4], pa.uint64()),
        "f": pa.array([1.0, float("nan"), float("inf"), -0.0, None, 1e-7]),
        "b": pa.array([True, False, None, True, True, False]),
        "ts": pa.array([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 1, 500), None,
                        dt.datetime(1999, 12, 31, 23, 59, 59), dt.datetime(2024, 1, 1),
                        dt.datetime(2024, 1, 1)], pa.timestamp("ns")),
        "tz": pa.array([dt.datetime(2024, 1, 1, tzinfo=utc)] * 6,
                       pa.timestamp("ms", tz="Europe/Paris")),
        "utc": pa.array([dt.datetime(2024, 1, 1, tzinfo=utc)] * 5
                        + [dt.datetime(2024, 1, 1, 0, 0, 0, 250_000, tzinfo=utc)],
                        pa.timestamp("us", tz="UTC")),
        "d": pa.array([dt.date(2024, 1, 2)] * 6, pa.date32()),
        "tm": pa.array([dt.time(1, 2, 3)] * 5 + [dt.time(1, 2, 3, 4)], pa.time64("us")),
        "dec": pa.array([decimal.Decimal("1.20")] * 6, pa.decimal128(5, 2)),
        "lst": pa.array([[1.0, float("nan")], None, [], [2.0], [3.0], [4.0]]),
        "st": pa.array([{"x": 1, "y": "a"}] * 6),
        "bin": pa.array([b"\xff\x00ab"] * 6),
        "dur": pa.array([dt.timedelta(seconds=1.5)] * 6),
        "dict": pa.array(["a", "b", None, "a", "c", "a"]).dictionary_encode(),
        "nul": pa.nulls(6),
        'k"ey': pa.array([1] * 6),
    })


async def test_json_encoding_of_every_type(tmp_path: Path) -> None:
    utc = dt.timezone.utc
    table = _awkward_table()
    await aiostore.write(table, tmp_path / "t.jsonl")
    lines = (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"invalid JSON {c}"))
            for line in lines]
    assert [r["s"] for r in rows] == ['q"b\\s', "n\nt\tr\r", "\x00\x01\x1f", "héllo €", None,
                                      "\b\f"]
    assert [r["i"] for r in rows] == [1, None, -3, 2**62, 0, 5]
    assert rows[0]["u"] == 2**64 - 1
    assert [r["f"] for r in rows] == [1.0, None, None, -0.0, None, 1e-7]
    assert isinstance(rows[0]["f"], float)  # "1.0", not "1"
    assert [r["ts"] for r in rows[:4]] == ["2024-01-01T00:00:00", "2024-01-01T00:00:01.000500",
                                           None, "1999-12-31T23:59:59"]
    assert rows[0]["tz"] == "2024-01-01T01:00:00+01:00"
    assert [rows[0]["utc"], rows[5]["utc"]] == ["2024-01-01T00:00:00+00:00",
                                                "2024-01-01T00:00:00.250000+00:00"]
    assert dt.datetime.fromisoformat(rows[0]["tz"]) == dt.datetime(2024, 1, 1, tzinfo=utc)
    assert rows[0]["d"] == "2024-01-02" and rows[0]["dec"] == "1.20"
    assert [rows[0]["tm"], rows[5]["tm"]] == ["01:02:03", "01:02:03.000004"]
    assert [r["lst"] for r in rows[:3]] == [[1.0, None], None, []]
    assert rows[0]["st"] == {"x": 1, "y": "a"} and rows[0]["dur"] == 1.5
    assert [r["dict"] for r in rows] == ["a", "b", None, "a", "c", "a"]
    assert rows[0]["nul"] is None and rows[0]['k"ey'] == 1
    assert "\\u0000" in lines[2] and "é" in lines[3]  # escaped like json.dumps, not ASCII-only
    # the same as the row-by-row json.dumps path (taken when json.dumps options are given)
    await aiostore.write(table, tmp_path / "slow.jsonl", sort_keys=False)
    slow = [json.loads(line) for line in (tmp_path / "slow.jsonl").read_text().splitlines()]
    assert slow == rows
    await aiostore.write(table, tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text()) == rows
    await aiostore.write(table, tmp_path / "slow.json", indent=1)
    assert json.loads((tmp_path / "slow.json").read_text()) == rows


# --- batches and progress ---------------------------------------------------------------------

@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames, "BATCH_ROWS", 100)
    monkeypatch.setattr(frames, "ROW_GROUP_ROWS", 250)


class Recorder:
    """A progress callable remembering its calls and the thread of each."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []
        self.threads: set[int] = set()

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))
        self.threads.add(threading.get_ident())


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("fmt", ["parquet", "csv", "json", "jsonl", "arrow"])
async def test_progress_batch_by_batch(tmp_path: Path, fmt: str) -> None:
    df = sample(1000)
    rec = Recorder()
    await aiostore.write(df, tmp_path / f"big.{fmt}", progress=rec)
    step = 250 if fmt == "parquet" else 100  # a row group / a batch per call
    assert rec.calls == [(n, 1000) for n in range(step, 1001, step)]
    assert rec.threads == {threading.get_ident()}  # on the event loop's thread
    got = await aiostore.read(tmp_path / f"big.{fmt}", output="pandas")
    if fmt in ("parquet", "arrow"):
        assert_frame_equal(got, df)
    else:
        assert got["i"].tolist() == df["i"].tolist()
    if fmt == "parquet":  # whole row groups: the remainder of a batch waits for the next one
        meta = pq.read_metadata(tmp_path / "big.parquet")
        assert [meta.row_group(k).num_rows for k in range(meta.num_row_groups)] == [250] * 4


@pytest.mark.usefixtures("small_batches")
async def test_progress_of_other_sources(tmp_path: Path) -> None:
    table = pa.Table.from_pandas(sample(450), preserve_index=False)
    rec = Recorder()
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=150))
    await aiostore.write(reader, tmp_path / "r.csv", progress=rec)
    assert rec.calls == [(n, None) for n in (100, 150, 250, 300, 400, 450)]  # length unknown
    rec = Recorder()
    await aiostore.write(table.combine_chunks().to_batches()[0], tmp_path / "b.jsonl",
                         progress=rec)
    assert rec.calls == [(100, 450), (200, 450), (300, 450), (400, 450), (450, 450)]
    rec = Recorder()
    await aiostore.write(pl.from_arrow(table), tmp_path / "p.arrow", progress=rec)
    assert rec.calls[-1] == (450, 450) and len(rec.calls) == 5
    rec = Recorder()
    await aiostore.write(table, tmp_path / "x.xlsx", progress=rec)
    assert rec.calls == [(450, 450)]
    assert rec.threads == {threading.get_ident()}
    await aiostore.write(table, tmp_path / "bar.csv", progress=True)  # stderr is not a tty
    assert (await aiostore.read(tmp_path / "bar.csv", output="arrow")).num_rows == 450
    with pytest.raises(errors.InvalidArgumentError, match="progress"):
        await aiostore.write(table, tmp_path / "bad.csv", progress="yes")  # type: ignore[arg-type]


def test_progress_bar_draws_when_forced(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOSTORE_PROGRESS", "always")  # (stderr is no terminal here)
    bar = encoders.ProgressBar("writing x")
    assert bar.enabled
    bar(5, 10)
    bar(10, 10)  # the last update closes the bar
    bar(7, None)  # (ignored)
    err = capsys.readouterr().err
    assert "writing x" in err and "10/10" in err and err.endswith("\n")


def test_progress_bar_stays_off_without_a_terminal(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for mode in ("auto", "never"):
        monkeypatch.setenv("AIOSTORE_PROGRESS", mode)
        bar = encoders.ProgressBar("writing x")
        assert not bar.enabled
        bar(5, 10)
    assert capsys.readouterr().err == ""


# --- format resolution and bad input ----------------------------------------------------------

async def test_format_from_suffix_option_and_alias(tmp_path: Path) -> None:
    df = sample(5)
    await aiostore.write(df, tmp_path / "d.PQ")
    assert (tmp_path / "d.PQ").read_bytes()[:4] == b"PAR1"
    await aiostore.write(df, tmp_path / "d.feather")
    assert (tmp_path / "d.feather").read_bytes()[:6] == b"ARROW1"
    await aiostore.write(df, tmp_path / "d.ndjson")
    assert len((tmp_path / "d.ndjson").read_text().splitlines()) == 5
    await aiostore.write(df, tmp_path / "d.json", format="csv")  # format= beats the suffix
    assert (tmp_path / "d.json").read_text().startswith('"i","f","s","b","ts"\n')
    assert_frame_equal(await aiostore.read(tmp_path / "d.json", format="csv"), df,
                       check_dtype=False)
    await aiostore.write(df, tmp_path / "d.bin", format="feather")
    assert (tmp_path / "d.bin").read_bytes()[:6] == b"ARROW1"
    assert (await aiostore.read(tmp_path / "d.bin"))[:6] == b"ARROW1"  # .bin reads bytes
    assert_frame_equal(await aiostore.read(tmp_path / "d.bin", format="ipc"), df)
    await aiostore.write(df, tmp_path / "sheet", format="excel")
    assert (tmp_path / "sheet").read_bytes()[:2] == b"PK"
    assert_frame_equal(await aiostore.read(tmp_path / "sheet", format="Excel"), df,
                       check_dtype=False)


BAD_WRITES: list[Any] = [
    pytest.param(lambda: sample(3), "t.dat", {}, errors.UnknownFormatError,
                 "suffix.*'parquet'.*'csv'.*'xlsx'", id="frame-unknown-suffix"),
    pytest.param(lambda: sample(3), "t.parquet", {"format": "hdf5"}, errors.UnknownFormatError,
                 "unknown format 'hdf5'; known formats: arrow, bytes", id="unknown-format"),
    pytest.param(lambda: b"x", "t.parquet", {"format": 3}, errors.UnknownFormatError,
                 "format must be a name", id="format-not-a-str"),
    pytest.param(lambda: b"PAR1", "t.parquet", {"format": "parquet"}, errors.SerializationError,
                 "bytes are written as-is", id="bytes-as-parquet"),
    pytest.param(lambda: object(), "t.parquet", {}, errors.SerializationError,
                 "cannot write an object of type object", id="object"),
    pytest.param(lambda: {1, 2}, "t.json", {}, errors.SerializationError,
                 "cannot write an object of type set", id="set"),
    pytest.param(lambda: sample(3), "t.txt", {}, errors.SerializationError,
                 "cannot be written as text", id="frame-as-text"),
    pytest.param(lambda: {"a": 1}, "t.parquet", {}, errors.SerializationError,
                 "a dict cannot be written as parquet", id="dict-as-parquet"),
    pytest.param(lambda: [1, 2, 3], "t.parquet", {}, errors.SerializationError,
                 "list of dicts", id="list-of-ints-as-parquet"),
    pytest.param(lambda: "text", "t.parquet", {"format": "parquet"},
                 errors.SerializationError, "a str cannot be written as parquet", id="str"),
    pytest.param(lambda: {"a": object()}, "t.json", {}, errors.SerializationError,
                 "not JSON serialisable", id="json-object"),
    pytest.param(lambda: pd.DataFrame({"x": [1] * 300 + ["a"]}), "t.parquet", {},
                 errors.SerializationError, "cannot convert", id="mixed-object-column"),
    pytest.param(lambda: pd.DataFrame({"x": [1] * 300 + [2**70]}, dtype=object), "t.csv", {},
                 errors.SerializationError, "cannot convert", id="int-overflow"),
    pytest.param(lambda: pd.DataFrame({"index": [1, 2], "level_0": [3, 4]}, index=[5, 6]),
                 "t.csv", {},
                 errors.SerializationError, "index", id="index-name-taken"),
    pytest.param(lambda: pl.Series("a", [1, 2]), "t.parquet", {}, errors.SerializationError,
                 "as a table", id="polars-series"),
    pytest.param(lambda: pa.table({"l": [[1], [2]]}), "t.csv", {}, errors.SerializationError,
                 "as csv", id="list-column-as-csv"),
    pytest.param(lambda: pd.DataFrame({"t": pd.date_range("2024", periods=2, tz="UTC")}),
                 "t.xlsx", {}, errors.SerializationError, "timezones", id="tz-in-excel"),
]


@pytest.mark.parametrize(("make", "name", "kwargs", "exc", "match"), BAD_WRITES)
async def test_bad_writes_leave_the_target_alone(tmp_path: Path, make: Callable[[], object],
                                                 name: str, kwargs: dict[str, Any],
                                                 exc: type[Exception], match: str) -> None:
    target = tmp_path / name
    target.write_bytes(b"old")
    with pytest.raises(exc, match=match):
        await aiostore.write(make(), target, **kwargs)
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


@pytest.mark.usefixtures("small_batches")
async def test_failure_midway_through_the_frame(tmp_path: Path) -> None:
    """A source that breaks after some batches were written: old content, no temp."""
    schema = pa.schema([("x", pa.int64())])

    def batches() -> Iterator[pa.RecordBatch]:
        for k in range(5):
            yield pa.record_batch([pa.array(range(k * 100, k * 100 + 100))], schema=schema)
        yield pa.record_batch([pa.array(["not", "an", "int"])], names=["x"])

    for fmt in FRAME_FORMATS:
        target = tmp_path / f"t.{fmt}"
        target.write_bytes(b"old")
        rec = Recorder()
        with pytest.raises(errors.SerializationError, match=r"batch 5 .* schema"):
            await aiostore.write(pa.RecordBatchReader.from_batches(schema, batches()), target,
                                 progress=rec)
        if fmt != "xlsx":  # five batches were encoded before the failure
            assert rec.calls[-1] == (500, None)
        assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl", "arrow"])
async def test_io_error_during_a_frame_write(tmp_path: Path, faulty: FaultyFileSystem,
                                             fmt: str) -> None:
    target = tmp_path / f"t.{fmt}"
    target.write_bytes(b"old")
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.random(200_000), "b": rng.integers(0, 10**9, 200_000)})
    faulty.fail("write", nth=2, errno=errno.ENOSPC, times=100)  # past the first 1 MiB
    with pytest.raises(errors.DiskFullError) as info:
        await aiostore.write(df, target)
    assert "write failed" in str(info.value)
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []
    gc.collect()  # no encoder or buffer is left to flush into the discarded temp file later
    assert faulty.calls["write"] == 2  # nothing was written after the failure


# --- cancellation -----------------------------------------------------------------------------

@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
async def test_native_cancel_stops_the_encoder(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"t.{fmt}"
    target.write_bytes(b"old")
    calls: list[tuple[int, int | None]] = []

    def progress(done: int, total: int | None) -> None:
        calls.append((done, total))
        if len(calls) == 1:
            task.cancel()

    task = asyncio.ensure_future(aiostore.write(sample(20_000), target, progress=progress))
    with pytest.raises(asyncio.CancelledError):
        await task
    # the cancellation reached the worker before its next batch: at most one more was encoded
    assert 1 <= len(calls) <= 2
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


@pytest.mark.usefixtures("small_batches")
async def test_cancel_scope_stops_the_encoder(tmp_path: Path) -> None:
    target = tmp_path / "t.jsonl"
    target.write_bytes(b"old")
    calls: list[int] = []
    with anyio.CancelScope() as scope:
        def progress(done: int, total: int | None) -> None:
            calls.append(done)
            scope.cancel()

        await aiostore.write(sample(20_000), target, progress=progress)
    assert scope.cancelled_caught
    assert len(calls) < 200  # stopped long before the last batch
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


# --- reading ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "kwargs"), [
    ("c.parquet", b"not parquet at all", {}),
    ("c.parquet", b"PAR1" + b"\x00" * 64 + b"PAR1", {}),  # pyarrow raises a bare OSError
    ("c.arrow", b"ARROW1\x00\x00garbage", {}),
    ("c.xlsx", b"PK\x03\x04 not a zip", {}),
    ("c.json", b'[{"a": 1}, ', {}),
    ("c.json", b'{"a": 1}', {"output": "arrow"}),  # JSON, but not a list of records
    ("c.jsonl", b'{"a": 1}\n{"a": \n', {}),
    ("c.jsonl", b'{"a": 1}\n{"a": \n', {"output": "arrow"}),
    ("c.txt", b"\xff\xfe", {}),
])
async def test_reading_a_corrupt_file(tmp_path: Path, name: str, content: bytes,
                                      kwargs: dict[str, Any]) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(errors.SerializationError, match="cannot read"):
        await aiostore.read(tmp_path / name, **kwargs)


async def test_reading_a_missing_file(tmp_path: Path) -> None:
    for name in ("m.parquet", "m.json", "m.bin"):
        with pytest.raises(errors.NotFoundError) as info:
            await aiostore.read(tmp_path / name)
        assert isinstance(info.value, FileNotFoundError)
        assert info.value.filename == str(tmp_path / name)


def test_importable_without_pandas_and_pyarrow(tmp_path: Path) -> None:
    code = """
import asyncio, sys
sys.modules["pandas"] = None
sys.modules["pyarrow"] = None
import aiostore
asyncio.run(aiostore.write({"a": [1]}, sys.argv[1] + "/x.json"))
assert asyncio.run(aiostore.read(sys.argv[1] + "/x.json")) == {"a": [1]}
try:
    asyncio.run(aiostore.write([{"a": 1}], sys.argv[1] + "/x.parquet"))
except aiostore.errors.InvalidArgumentError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=60, check=True)
    assert "pip install 'aiostore[frames]'" in out.stdout
