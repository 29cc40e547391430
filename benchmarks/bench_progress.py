"""What a progress bar costs a write: 1,000,000 rows written as Parquet (and as CSV, which
reports progress every 65,536-row batch instead of once per row group), with
``progress=None`` and with ``progress=True`` forced on (``AIOSTORE_PROGRESS=always``, the bar
drawn into /dev/null as if stderr were a terminal). Runs alternate between the two, so load on
the machine hits both alike; the medians are compared.

    .venv/bin/python benchmarks/bench_progress.py [runs]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

import aiostore

ROWS = 1_000_000


def table() -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table({"id": pa.array(np.arange(ROWS)), "x": pa.array(rng.random(ROWS)),
                     "s": pa.array([f"value {i}" for i in range(ROWS)])})


async def write_once(data: pa.Table, path: str, progress: bool) -> float:
    start = time.perf_counter()
    await aiostore.write(data, path, progress=progress or None)
    return time.perf_counter() - start


async def measure(data: pa.Table, suffix: str, runs: int, directory: str
                  ) -> tuple[list[float], list[float]]:
    path = os.path.join(directory, "out" + suffix)
    off: list[float] = []
    on: list[float] = []
    await write_once(data, path, False)  # warm-up (pyarrow's lazy set-up, page cache)
    await write_once(data, path, True)
    for _ in range(runs):
        off.append(await write_once(data, path, False))
        on.append(await write_once(data, path, True))
    return off, on


def bar_alone(repeat: int = 200) -> float:
    """Seconds one write's bar costs by itself: created, 16 updates (a 1M-row CSV write's
    batches), closed."""
    from aiostore.formats.encoders import ProgressBar

    ProgressBar("warm-up")(1, 1)
    start = time.perf_counter()
    for _ in range(repeat):
        bar = ProgressBar("writing out.csv")
        for i in range(1, 16):
            bar(i * 65_536, ROWS)
        bar(ROWS, ROWS)
    return (time.perf_counter() - start) / repeat


async def main(runs: int) -> None:
    data = table()
    os.environ["AIOSTORE_PROGRESS"] = "always"
    real_stderr = sys.stderr
    with tempfile.TemporaryDirectory() as directory, \
            open(os.devnull, "w") as devnull:  # noqa: ASYNC230 - a benchmark's set-up
        sys.stderr = devnull  # the bar draws here, as on a terminal
        try:
            results = {suffix: await measure(data, suffix, runs, directory)
                       for suffix in (".parquet", ".csv")}
            alone = bar_alone()
        finally:
            sys.stderr = real_stderr
    print(f"{ROWS:,} rows, {runs} alternating runs each (ms: median / fastest)")
    print(f"{'format':8} {'no progress':>16} {'progress bar':>16} {'overhead':>18}")
    for suffix, (off, on) in results.items():
        m_off, m_on = statistics.median(off), statistics.median(on)
        f_off, f_on = min(off), min(on)
        print(f"{suffix[1:]:8} {m_off * 1000:7.1f} / {f_off * 1000:6.1f} "
              f"{m_on * 1000:7.1f} / {f_on * 1000:6.1f} "
              f"{(m_on - m_off) / m_off * 100:+7.2f}% / {(f_on - f_off) / f_off * 100:+6.2f}%")
    fastest = min(min(off) for off, _ in results.values())
    print(f"the bar alone (created, 16 updates, closed): {alone * 1e6:.0f} us per write = "
          f"{alone / fastest * 100:.2f}% of the fastest write above")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9))
