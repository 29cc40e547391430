"""What every benchmark script in this directory shares: venv, measurement, report.

A benchmark is one script, ``benchmarks/bench_<name>.py``, run as a file (``python3
benchmarks/bench_<name>.py`` or ``make bench-<name>``) from any Python 3.10+. Python puts the
script's directory first on ``sys.path``, so the script imports this module as ``_harness``
(mypy resolves it the same way). Only the standard library is imported here, at any level: the
module is imported before the script has re-executed itself inside the bench venv.

The parts, in the order a script uses them:

* **Options**: :func:`parse_args` (``--runs``, ``--dir``, ``--no-docs`` plus the script's own)
  and :func:`work_dir` (a fresh directory per script, under the system temp directory).
* **The venv**: :func:`enter_bench_venv` re-executes the script with the interpreter of
  ``.venv-bench/`` at the repository root (one venv for all the scripts), creating it and
  installing the script's requirements and aiostore (editable) into it first when needed. Each
  script keeps its own stamp file there (``.bench-<name>-installed-<digest>``, the digest
  covering its requirements, its aiostore extras and ``pyproject.toml``), so the scripts never
  reinstall each other's packages; their requirement lists must therefore be compatible.
* **Measurement**: a :class:`Contender` is one timed thing of one scenario; its ``prepare``
  builds a :class:`Trial` in a fresh directory (untimed), whose ``run`` is timed and whose
  ``close`` is not (:func:`from_body` adapts a contender with nothing to open or close).
  :func:`measure_run` times one trial with a :class:`Heartbeat` running (every gap of the
  event loop: the longest is the stall, and their 99th percentile) and the process's CPU time
  taken around it; :func:`run_scenarios` runs each :class:`Scenario`'s one-time setup, then
  ``runs`` rounds of its contenders, interleaved with the order rotating, and stores every
  ``(seconds, stall)`` in ``Contender.runs`` and the whole :class:`Measurement` in
  ``Contender.measured``.
* **Report**: :func:`comparison_table` (aiostore against a peer, one :class:`Row` per line;
  optionally with the p99 of the loop's gaps and the CPU time per unit),
  :func:`contender_lines`, :func:`verdict` for the targets, :func:`print_results` for stdout,
  :func:`machine`, :func:`git_head` / :func:`aiostore_tree`, and :func:`docs_section` +
  :func:`write_section`, which replaces the script's own section of ``docs/benchmarks.md``.

A script's ``main`` is then, roughly::

    args = _harness.parse_args(argv, __doc__, RUNS, add_options)
    work = _harness.work_dir("s3", args.dir)
    _harness.enter_bench_venv(__file__, "s3", REQUIREMENTS, argv)
    with _harness.fresh_dir(work):
        contenders = {...}  # key -> Contender, peers imported here (inside the venv)
        asyncio.run(_harness.run_scenarios(_harness.group_scenarios(contenders), contenders,
                                           args.runs, work))
    _harness.print_results(_harness.comparison_table(contenders, rows, markdown=False),
                           targets, [_harness.machine(work, ("aiostore", ...))])
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root."""
BENCH_VENV = ROOT / ".venv-bench"
"""The venv every benchmark runs in (``make clean`` removes it)."""
DOCS = ROOT / "docs" / "benchmarks.md"
"""Where the results are published, one section per script."""
HEARTBEAT_S = 0.001
"""The heartbeat's sleep: a loop stall is the longest gap between its wake-ups."""

_REEXEC_MARK = "AIOSTORE_BENCH_REEXEC"  # the script re-executed; guards against an exec loop


def progress(message: str, end: str = "\n") -> None:
    """Print progress on stderr (stdout is for the results), flushed at once."""
    print(message, end=end, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str], doc: str | None, runs: int,
               add_options: Callable[[argparse.ArgumentParser], None] | None = None,
               ) -> argparse.Namespace:
    """Parse the command line: ``--runs`` (default ``runs``), the script's own options (added
    by ``add_options``), ``--dir`` and ``--no-docs``. The description is the first paragraph
    of ``doc`` (the script's docstring)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--runs", type=int, default=runs, help="runs per contender (median)")
    if add_options is not None:
        add_options(parser)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to write (default: the system temp directory)")
    parser.add_argument("--no-docs", action="store_true",
                        help="do not update docs/benchmarks.md (implied by non-default sizes)")
    return parser.parse_args(argv)


def work_dir(name: str, base: Path | None = None) -> Path:
    """The work directory of benchmark ``name``: ``aiostore-bench-<name>`` in ``base`` (the
    ``--dir`` option), by default in the system temp directory."""
    parent = Path(tempfile.gettempdir()) if base is None else base.resolve()
    return parent / f"aiostore-bench-{name}"


@contextlib.contextmanager
def fresh_dir(path: Path) -> Iterator[Path]:
    """Create ``path`` empty (removing what was there) and remove it on the way out."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# the bench venv
# --------------------------------------------------------------------------------------------
def _venv_python() -> Path:
    return BENCH_VENV / "bin" / "python"


def _stamp_prefix(name: str) -> str:
    return f".bench-{name}-installed-"


def _stamp(name: str, requirements: Sequence[str], extras: Sequence[str]) -> Path:
    """A marker whose name changes when the requirements, the extras or aiostore's
    ``pyproject.toml`` change."""
    digest = hashlib.sha256()
    digest.update("\n".join(requirements).encode())
    digest.update(b"\0" + ",".join(extras).encode() + b"\0")
    digest.update((ROOT / "pyproject.toml").read_bytes())
    return BENCH_VENV / f"{_stamp_prefix(name)}{digest.hexdigest()[:16]}"


def in_bench_venv() -> bool:
    """Whether this interpreter is the bench venv's."""
    return Path(sys.prefix).resolve() == BENCH_VENV.resolve()


def ensure_bench_venv(name: str, requirements: Sequence[str], extras: Sequence[str] = ()) -> None:
    """Create ``.venv-bench`` if needed and install ``requirements`` and aiostore (editable,
    with ``extras``) into it, unless benchmark ``name``'s stamp says that was done already."""
    stamp = _stamp(name, requirements, extras)
    if stamp.exists() and _venv_python().exists():
        return
    if not _venv_python().exists():
        progress(f"creating {BENCH_VENV.relative_to(ROOT)} ...")
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    progress(f"installing the requirements of bench_{name}.py (first run only) ...")
    pip = [str(_venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    aiostore = f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)
    subprocess.run([*pip, *requirements, "-e", aiostore], check=True)
    for old in BENCH_VENV.glob(f"{_stamp_prefix(name)}*"):
        old.unlink()
    stamp.touch()


def enter_bench_venv(script: str | Path, name: str, requirements: Sequence[str],
                     argv: Sequence[str], extras: Sequence[str] = ()) -> None:
    """Make sure the rest of the script runs inside ``.venv-bench`` with its requirements.

    Outside the venv: install (:func:`ensure_bench_venv`), then replace this process by
    ``script`` (pass ``__file__``) run with the venv's interpreter and ``argv``; this call does
    not return. Inside it (after the re-execution, or when started with
    ``.venv-bench/bin/python`` directly): install if never done, and return.
    """
    target = str(Path(script).resolve())
    if not in_bench_venv():
        if os.environ.get(_REEXEC_MARK) == target:
            raise SystemExit(f"re-executed, but sys.prefix is {sys.prefix}, not {BENCH_VENV}")
        ensure_bench_venv(name, requirements, extras)
        python = str(_venv_python())
        os.environ[_REEXEC_MARK] = target
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(python, [python, target, *argv])
    ensure_bench_venv(name, requirements, extras)
    os.environ.pop(_REEXEC_MARK, None)


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------
class Heartbeat:
    """A task that sleeps 1 ms in a loop and records every gap between its wake-ups: the
    longest is the event-loop stall, :meth:`quantile` the distribution."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self.gaps: list[float] = []
        self._since = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            self._since = time.perf_counter()
            await asyncio.sleep(HEARTBEAT_S)
            gap = time.perf_counter() - self._since
            self.gaps.append(gap)
            self.max_gap = max(self.max_gap, gap)

    def quantile(self, q: float) -> float:
        """The gap that a fraction ``q`` of the gaps do not exceed (nearest rank), seconds; 0
        before the first gap."""
        if not self.gaps:
            return 0.0
        ordered = sorted(self.gaps)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    async def start(self) -> None:
        """Start beating (returns once the first beat is under way)."""
        self._task = asyncio.create_task(self._beat())
        await asyncio.sleep(0)

    async def stop(self) -> float:
        """Stop; the longest gap in seconds, counting one still open (a loop still blocked)."""
        gap = time.perf_counter() - self._since
        self.gaps.append(gap)
        self.max_gap = max(self.max_gap, gap)
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.max_gap


async def _nothing() -> None:
    return None


@dataclass
class Trial:
    """One prepared run: ``run`` is timed (it may return its own timing, in seconds, to be used
    instead of its wall time), ``close`` is not."""

    run: Callable[[], Awaitable[float | None]]
    close: Callable[[], Awaitable[None]] = _nothing


Prepare = Callable[[Path], Awaitable[Trial]]
"""Builds a contender's :class:`Trial` in a fresh, empty directory (untimed)."""
Body = Callable[[], Awaitable[None]]
"""A timed body with nothing to open or close."""


def from_body(make: Callable[[Path], Body]) -> Prepare:
    """The :data:`Prepare` of a contender with nothing to open or close: ``make(directory)``
    returns the timed body."""
    async def prepare(directory: Path) -> Trial:
        return Trial(make(directory))
    return prepare


@dataclass
class Contender:
    """One thing that is timed: a key, a label, its scenario, a preparer of a trial in a fresh
    directory, and how its value is reported.

    ``unit`` is ``"s"`` or ``"ms"`` (a time: lower is better), ``"MB/s"`` (``count`` bytes per
    run, MB = 10^6 bytes) or any other ``"<things>/s"`` (``count`` things per run); rates are
    higher-is-better. ``runs`` collects ``(seconds, longest loop stall in seconds)`` per run;
    ``measured`` the whole :class:`Measurement` of each run (the p99 of the loop's gaps, the
    process's CPU time).
    """

    key: str
    label: str
    scenario: str
    prepare: Prepare
    count: int  # units per run (unused for times)
    unit: str
    runs: list[tuple[float, float]] = field(default_factory=list)
    measured: list[Measurement] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Median time of the runs."""
        return statistics.median(s for s, _ in self.runs)

    @property
    def value(self) -> float:
        """The reported value: a rate (higher is better) or a time (lower is better)."""
        if self.unit == "s":
            return self.seconds
        if self.unit == "ms":
            return self.seconds * 1e3
        if self.unit == "MB/s":
            return self.count / 1e6 / self.seconds
        return self.count / self.seconds

    @property
    def is_rate(self) -> bool:
        """Whether higher is better."""
        return self.unit not in ("s", "ms")

    def shown(self) -> str:
        """The value with its unit."""
        if self.unit == "s":
            return f"{self.value:.3f} s"
        if self.unit == "ms":
            return f"{self.value:.2f} ms"
        return f"{self.value:,.0f} {self.unit}"

    @property
    def stall_ms(self) -> float:
        """Median (over runs) of each run's longest loop stall, in ms."""
        return statistics.median(g for _, g in self.runs) * 1e3

    @property
    def worst_stall_ms(self) -> float:
        """The longest loop stall of any run, in ms."""
        return max(g for _, g in self.runs) * 1e3

    @property
    def p99_ms(self) -> float:
        """Median (over runs) of each run's 99th percentile of the loop's gaps, in ms."""
        return statistics.median(m.p99 for m in self.measured) * 1e3

    @property
    def worst_p99_ms(self) -> float:
        """The highest p99 of the loop's gaps of any run, in ms."""
        return max(m.p99 for m in self.measured) * 1e3

    @property
    def cpu_per_unit_ms(self) -> float:
        """Median (over runs) of the process's CPU time per unit of ``count`` (an object, an
        append, a MB for ``MB/s``), in ms."""
        per_run = statistics.median(m.cpu for m in self.measured)
        units = self.count / 1e6 if self.unit == "MB/s" else self.count
        return per_run / units * 1e3


@dataclass(frozen=True)
class Measurement:
    """One run: wall seconds (or the trial's own timing), the longest gap of the loop and the
    99th percentile of its gaps (seconds; the heartbeat sleeps 1 ms, so an idle loop's gaps
    are a little over 1 ms), and the CPU time of this process (every thread: the loop, the
    worker pools, native runtimes; not the server's) during the timed region, seconds."""

    seconds: float
    stall: float
    p99: float
    cpu: float


def ratio(ours: Contender, peer: Contender) -> float:
    """aiostore / peer: of the rates (higher is better) or of the times (lower is better)."""
    return ours.value / peer.value


async def measure(prepare: Prepare, directory: Path) -> tuple[float, float]:
    """Prepare and run one trial in ``directory`` (created here); (seconds, longest loop stall
    in seconds). See :func:`measure_run`."""
    run = await measure_run(prepare, directory)
    return run.seconds, run.stall


async def measure_run(prepare: Prepare, directory: Path) -> Measurement:
    """Prepare and run one trial in ``directory`` (created here), with a :class:`Heartbeat`
    running and this process's CPU time (``time.process_time``) taken around the timed region.
    Afterwards, untimed, dirty pages are written back (``sync``: non-durable contenders are not
    charged for their write-back by the next one) and ``directory`` is removed."""
    await asyncio.to_thread(directory.mkdir, parents=True)
    trial = await prepare(directory)
    try:
        heartbeat = Heartbeat()
        await heartbeat.start()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        own = await trial.run()
        seconds = time.perf_counter() - t0 if own is None else own
        cpu = time.process_time() - cpu0
        stall = await heartbeat.stop()
    finally:
        await trial.close()
    await asyncio.to_thread(os.sync)
    await asyncio.to_thread(shutil.rmtree, directory)
    return Measurement(seconds, stall, heartbeat.quantile(0.99), cpu)


@dataclass
class Scenario:
    """Contenders measured together (interleaved), after an optional one-time setup (untimed,
    followed by a ``sync``)."""

    key: str
    keys: list[str]
    setup: Callable[[], Awaitable[None]] | None = None


def group_scenarios(contenders: Mapping[str, Contender],
                    setups: Mapping[str, Callable[[], Awaitable[None]]] | None = None,
                    ) -> list[Scenario]:
    """One :class:`Scenario` per ``Contender.scenario``, in order of first appearance, with the
    setup ``setups`` gives for its key, if any."""
    by_key: dict[str, list[str]] = {}
    for key, contender in contenders.items():
        by_key.setdefault(contender.scenario, []).append(key)
    setups = setups or {}
    return [Scenario(name, keys, setups.get(name)) for name, keys in by_key.items()]


async def run_rounds(contenders: Sequence[Contender], runs: int, work: Path) -> None:
    """``runs`` rounds; inside a round each contender once (in ``work/<key>-<round>``), the
    order rotating from round to round so that noise hits all of them alike."""
    for r in range(runs):
        shift = r % len(contenders)
        for contender in [*contenders[shift:], *contenders[:shift]]:
            progress(f"  round {r + 1}/{runs}  {contender.scenario:8} {contender.label} ...",
                     end="")
            result = await measure_run(contender.prepare, work / f"{contender.key}-{r}")
            contender.runs.append((result.seconds, result.stall))
            contender.measured.append(result)
            progress(f" {result.seconds:.3f} s, stall {result.stall * 1e3:.1f} ms "
                     f"(p99 {result.p99 * 1e3:.1f} ms), CPU {result.cpu:.3f} s")


async def run_scenarios(scenarios: Iterable[Scenario], contenders: Mapping[str, Contender],
                        runs: int, work: Path) -> None:
    """Every scenario: its setup, then :func:`run_rounds` of its contenders."""
    for scenario in scenarios:
        if scenario.setup is not None:
            progress(f"  setting up {scenario.key} ...", end="")
            t0 = time.perf_counter()
            await scenario.setup()
            await asyncio.to_thread(os.sync)
            progress(f" {time.perf_counter() - t0:.1f} s")
        await run_rounds([contenders[k] for k in scenario.keys], runs, work)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    """``PASS`` or ``FAIL``, for a target line."""
    return "PASS" if ok else "FAIL"


def table(header: Sequence[str], body: Sequence[Sequence[str]], align: str,
          markdown: bool) -> list[str]:
    """A table as Markdown or as aligned plain text; ``align`` has one ``l`` (left) or ``r``
    (right) per column."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "| " + " | ".join("---" if a == "l" else "---:" for a in align) + " |"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return lines
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if a == "l" else f"{{:>{w}}}"
                    for a, w in zip(align, widths, strict=True))
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*cells) for cells in body]
    return lines


@dataclass
class Row:
    """One line of the comparison table: aiostore's contender against one peer contender."""

    scenario: str
    ours: str  # contender key
    peer: str  # contender key
    peer_label: str


RATIO_LEGEND = "ratio = aiostore / peer: ↑ rates (higher is better), ↓ times (lower is better)"


def comparison_table(contenders: Mapping[str, Contender], rows: Iterable[Row],
                     markdown: bool, *, p99: bool = False, cpu: bool = False) -> list[str]:
    """The result table: per row, aiostore's value, the peer's, the ratio (:func:`ratio`) and
    both loop stalls; with ``p99`` both p99s of the loop's gaps, with ``cpu`` both CPU times
    per unit (:attr:`Contender.cpu_per_unit_ms`). Rows whose contenders did not run are left
    out."""
    header = ["scenario", "aiostore", "peer", "ratio", "loop stall, ms (aiostore / peer)"]
    if p99:
        header.append("loop gaps p99, ms (aiostore / peer)")
    if cpu:
        header.append("client CPU per unit, ms (aiostore / peer)")
    body: list[list[str]] = []
    for row in rows:
        ours, peer = contenders[row.ours], contenders[row.peer]
        if not (ours.runs and peer.runs):
            continue
        cells = [
            row.scenario,
            ours.shown(),
            f"{peer.shown()} — {row.peer_label}",
            f"{ratio(ours, peer):.2f}x {'↑' if ours.is_rate else '↓'}",
            f"{ours.stall_ms:.1f} / {peer.stall_ms:.1f}",
        ]
        if p99:
            cells.append(f"{ours.p99_ms:.1f} / {peer.p99_ms:.1f}")
        if cpu:
            things = ours.unit.removesuffix("/s")
            unit = "MB" if ours.unit == "MB/s" else things.removesuffix("s") or things
            cells.append(f"{ours.cpu_per_unit_ms:.2f} / {peer.cpu_per_unit_ms:.2f} per {unit}")
        body.append(cells)
    return table(header, body, "lrlrr" + "r" * (p99 + cpu), markdown)


def contender_lines(contenders: Iterable[Contender], digits: int = 3, *,
                    details: bool = False) -> list[str]:
    """Every contender that ran: median, each run's seconds (``digits`` decimals), stall
    median and worst (Markdown); with ``details`` also the p99 of the loop's gaps (median /
    worst) and each run's CPU seconds."""
    header = "| contender | scenario | median | runs (s) | stall median / worst, ms |"
    rule = "| --- | --- | ---: | --- | ---: |"
    if details:
        header += " gaps p99 median / worst, ms | CPU per run (s) |"
        rule += " ---: | --- |"
    lines = [header, rule]
    for c in contenders:
        if not c.runs:
            continue
        runs = ", ".join(f"{s:.{digits}f}" for s, _ in c.runs)
        line = (f"| {c.label} | {c.scenario} | {c.shown()} | {runs} | "
                f"{c.stall_ms:.1f} / {c.worst_stall_ms:.1f} |")
        if details and c.measured:
            cpu = ", ".join(f"{m.cpu:.{digits}f}" for m in c.measured)
            line += f" {c.p99_ms:.1f} / {c.worst_p99_ms:.1f} | {cpu} |"
        lines.append(line)
    return lines


def print_results(table_lines: Iterable[str], targets: Iterable[str],
                  footer: Iterable[str]) -> None:
    """Print the results on stdout: the plain-text table, :data:`RATIO_LEGEND`, the target
    lines, then the ``footer`` lines (machine, total time, ...)."""
    print()
    for line in table_lines:
        print(line)
    print(f"\n{RATIO_LEGEND}\n")
    for line in targets:
        print(line)
    print()
    for line in footer:
        print(line)


def machine(work: Path, packages: Iterable[str], also: Iterable[str] = ()) -> str:
    """One line: nproc, kernel, CPU, the file system holding ``work``, Python, the versions of
    the installed distributions ``packages``, then the ``also`` items."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    fstype = "?"
    with contextlib.suppress(OSError):
        best = ""
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            if str(work).startswith(mount) and len(mount) > len(best):
                best, fstype = mount, f"{parts[2]} ({parts[0]}, {parts[3]})"
    versions = ", ".join([*(f"{pkg} {importlib.metadata.version(pkg)}" for pkg in packages),
                          *also])
    return (f"nproc {os.cpu_count()}, Linux {platform.release()}, {cpu}; file system {fstype}; "
            f"Python {platform.python_version()}; {versions}")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True).stdout


def git_head() -> str:
    """The short commit, plus `` (aiostore/ modified)`` when ``git status`` lists anything
    under aiostore/; ``unknown`` outside a git checkout."""
    try:
        out = _git("rev-parse", "--short", "HEAD").strip()
        dirty = _git("status", "--porcelain", "aiostore").strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out + (" (aiostore/ modified)" if dirty else "")


def aiostore_tree() -> tuple[str, str]:
    """Which aiostore was measured: (what to print, an identity of aiostore/'s content).

    The package is edited between commits, so this is the commit plus, when aiostore/ differs
    from it, a fingerprint of the difference; the identity changes only when aiostore/ does
    (not when unrelated files are committed). Take it before aiostore is imported and compare
    at the end to notice edits made during the run.
    """
    try:
        head = _git("rev-parse", "--short", "HEAD").strip()
        tree = _git("rev-parse", "HEAD:aiostore").strip()
        diff = _git("diff", "HEAD", "--", "aiostore")
        untracked = _git("ls-files", "--others", "--exclude-standard", "--", "aiostore").split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", "unknown"
    if not diff and not untracked:
        return head, tree
    digest = hashlib.sha256(diff.encode())
    for name in sorted(untracked):
        with contextlib.suppress(OSError):
            digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    fingerprint = digest.hexdigest()[:10]
    return (f"{head} + uncommitted changes to aiostore/ (fingerprint {fingerprint})",
            f"{tree}+{fingerprint}")


def docs_section(heading: str, command: str, about: Sequence[str], table_lines: Sequence[str],
                 targets: Sequence[str], notes: str, contenders: Sequence[str]) -> str:
    """A script's section of ``docs/benchmarks.md``: ``heading`` (a ``## `` line), the
    ``command`` that produced it, the ``about`` lines (when, which commit, which machine),
    the Markdown table, the targets, the ``notes`` and, folded, the ``contenders`` lines."""
    return "\n".join([
        heading,
        "",
        "```sh",
        command,
        "```",
        "",
        *about,
        "",
        *table_lines,
        "",
        "Targets (from the issue):",
        "",
        "```text",
        *targets,
        "```",
        "",
        notes,
        "<details><summary>Every contender</summary>",
        "",
        *contenders,
        "",
        "</details>",
        "",
    ])


def replace_section(doc: Path, section: str) -> None:
    """Replace the section whose heading is ``section``'s first line (up to the next ``## ``
    heading) in ``doc`` by ``section``, or append it; create ``doc`` if needed."""
    heading = section.splitlines()[0].strip()
    text = doc.read_text() if doc.exists() else (
        "# Benchmarks\n\nMeasured against the peers aiostore replaces. Each section is written by "
        "its benchmark script; see [benchmarks/README.md](../benchmarks/README.md).\n")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        head = "\n".join(lines[:start]).rstrip("\n")
        tail = "\n".join(lines[end:])
        new = (head + "\n\n" if head else "") + section + ("\n" + tail if tail else "")
    doc.write_text(new.rstrip("\n") + "\n")


def write_section(section: str, doc: Path = DOCS) -> None:
    """:func:`replace_section` in ``docs/benchmarks.md`` and say so on stdout."""
    replace_section(doc, section)
    print(f"wrote {doc.relative_to(ROOT)}")


def report(section: str, command: str, contenders: Mapping[str, Contender], rows: Iterable[Row],
           targets: Sequence[str], machine_line: str, *, started: dt.datetime, elapsed: float,
           tree: tuple[str, str], load: str, write_docs: bool, notes: Callable[[], str],
           digits: int = 3, all_contenders: Iterable[Contender] | None = None,
           details: bool = False) -> None:
    """Print a script's results and (``write_docs``) replace its section of docs/benchmarks.md.

    ``tree`` is :func:`aiostore_tree` taken when the run started (before aiostore was
    imported), ``load`` the 1-minute load average then and at the end. ``contenders`` are the
    ones in the table; ``all_contenders`` (default: the same) are listed with their runs.
    ``notes`` is called only when the section is written. ``details``: the tables also show
    the p99 of the loop's gaps and the CPU time (see :func:`comparison_table`).
    """
    measured, identity = tree
    now = aiostore_tree()
    if now[1] != identity:
        measured += f"; aiostore/ changed during the run (now: {now[0]})"
    rows = list(rows)
    print_results(comparison_table(contenders, rows, markdown=False, p99=details, cpu=details),
                  targets,
                  [machine_line, f"load average {load}", f"aiostore: {measured}",
                   f"total {elapsed:.0f} s"])
    if not write_docs:
        return
    write_section(docs_section(
        section,
        command,
        about=[f"Run {started:%Y-%m-%d %H:%M} UTC, aiostore at {measured}, "
               f"{elapsed:.0f} s in all.",
               f"Machine: {machine_line}; load average {load}."],
        table_lines=comparison_table(contenders, rows, markdown=True, p99=details,
                                     cpu=details),
        targets=targets,
        notes=notes(),
        contenders=contender_lines(all_contenders if all_contenders is not None
                                   else contenders.values(), digits=digits, details=details),
    ))
