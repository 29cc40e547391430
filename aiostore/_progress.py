"""Progress bars on stderr, drawn by tqdm: for the writers' ``progress=True`` and the CLI.

A bar shows only when stderr is a terminal, unless forced: ``AIOSTORE_PROGRESS=always``
(or ``never``) in the environment, or ``force=True``/``False`` from the caller (the CLI's
``--progress``). Updates are cheap — tqdm redraws at most ten times a second — and safe from
worker threads. tqdm is imported only when a bar is really drawn.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

__all__ = ["Bar", "enabled", "mode_from_env"]

_MODES = ("auto", "always", "never")


def mode_from_env() -> str:
    """``AIOSTORE_PROGRESS``: "always", "never" or (unset, anything else) "auto"."""
    value = os.environ.get("AIOSTORE_PROGRESS", "auto").strip().lower()
    return value if value in _MODES else "auto"


def enabled(mode: str | None = None) -> bool:
    """Whether to draw: ``mode`` "always"/"never", or "auto" (default: the environment's),
    which draws when stderr is a terminal."""
    mode = mode or mode_from_env()
    if mode == "always":
        return True
    if mode == "never":
        return False
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stderr
        return False


class Bar:
    """One progress bar: ``bar.update(n)``, ``bar.set_total(t)``, ``bar.close()``.

    ``unit`` is "rows" or "B" (bytes, scaled to kB/MB/...). Without a terminal (and not
    forced) every method is a no-op costing one attribute check. Thread-safe.
    """

    def __init__(self, label: str, *, total: int | None = None, unit: str = "rows",
                 mode: str | None = None) -> None:
        self._bar: Any = None
        self._bytes = unit == "B"
        self._lock = threading.Lock()
        if not enabled(mode):
            return
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=label, unit=unit if unit == "B" else f" {unit}",
                         unit_scale=unit == "B" or total is None or total >= 10_000,
                         unit_divisor=1024 if unit == "B" else 1000,
                         file=sys.stderr,
                         dynamic_ncols=True, leave=True, disable=False, mininterval=0.1)

    @property
    def active(self) -> bool:
        """Whether the bar is drawn."""
        return self._bar is not None

    def update(self, n: int) -> None:
        """``n`` more units done."""
        if self._bar is not None:
            with self._lock:
                self._bar.update(n)

    def set_done(self, done: int, total: int | None = None) -> None:
        """``done`` units done in all (of ``total``, when known)."""
        bar = self._bar
        if bar is None:
            return
        with self._lock:
            if total is not None and bar.total != total:
                bar.total = total
                bar.unit_scale = self._bytes or total >= 10_000  # (no "10.0/10.0 rows")
            if done != bar.n:
                bar.update(done - bar.n)
            if total is not None and done >= total:
                self._close_locked()

    def close(self) -> None:
        """End the bar (its last state stays on the terminal). Idempotent."""
        if self._bar is not None:
            with self._lock:
                self._close_locked()

    def _close_locked(self) -> None:
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()

    def __del__(self) -> None:
        bar = getattr(self, "_bar", None)
        if bar is not None:
            with contextlib.suppress(Exception):  # (at interpreter shutdown)
                bar.close()
