"""``sweep_temp_files``: remove temp files left by writers that died (SIGKILL, power loss)."""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
import time
from datetime import timedelta

from .._io.base import current_fs
from .._io.offload import run_commit
from .._io.ops import step
from .._io.publish import TEMP_NAME
from ..errors import InvalidArgumentError
from ._paths import StrPath, fspath

__all__ = ["sweep_temp_files"]


async def sweep_temp_files(directory: StrPath, older_than: timedelta = timedelta(hours=1), *,
                           recursive: bool = False) -> int:
    """Remove aiostore temp files in ``directory`` last modified more than ``older_than`` ago.

    Only names of the form ``.<name>.<pid>.<8 hex>.aiostore-tmp`` are touched, so other files
    are safe. The age threshold protects writes in flight in other processes (a live writer
    keeps modifying its temp file); ``older_than=timedelta(0)`` removes every temp file and
    is only safe when no writer is running. Returns the number of files removed.

    Cancellation: the sweep runs to completion in the worker pool, then the cancellation
    propagates.
    """
    root = fspath(directory)
    if older_than < timedelta(0):
        raise InvalidArgumentError("older_than must not be negative")
    cutoff = time.time() - older_than.total_seconds()
    fs = current_fs()

    def job() -> int:
        removed = 0
        pending = [root]
        while pending:
            d = pending.pop()
            with step("list directory", d):
                names = fs.listdir(d)
            for name in names:
                full = os.path.join(d, name)
                try:
                    st = fs.stat(full, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat_mod.S_ISDIR(st.st_mode):
                    if recursive:
                        pending.append(full)
                    continue
                if stat_mod.S_ISREG(st.st_mode) and TEMP_NAME.match(name) \
                        and st.st_mtime <= cutoff:
                    with contextlib.suppress(FileNotFoundError):
                        with step("remove temp file", full):
                            fs.unlink(full)
                        removed += 1
        return removed

    return await run_commit(job)
