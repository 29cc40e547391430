"""``aiostore``, the command line: inspect, verify and move what aiostore stores.

``aiostore db info|verify|scan|get`` (segment databases, read-only), ``aiostore table
history|show|schema|vacuum|restore`` (Delta tables), ``aiostore ls|cp|cat|rm`` (local paths and
``s3://`` objects) and ``aiostore convert`` (between frame formats). See ``docs/cli.md``.

The CLI sits on top of the package: it imports the other parts, nothing imports it. It needs
the ``cli`` extra (click, tqdm): ``pip install 'aiostore[cli]'``.

* :mod:`.app` — the root command and the error handling of :func:`main`.
* :mod:`.errors` — exit codes and one-line messages for aiostore's exceptions.
* :mod:`.output` — columns for people, JSON lines for programs; data on stdout only.
* :mod:`.common` — S3 options, ``--json``, URL, location, duration and time parsing.
* :mod:`.files` — local files through aiostore's I/O core; reading any place in chunks.
* :mod:`.inspect_db` — read-only inspection of a segment database's files.
* :mod:`.db`, :mod:`.table`, :mod:`.objects`, :mod:`.convert` — the commands.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """The console script ``aiostore``: run ``argv`` (default ``sys.argv[1:]``) and return
    the exit status (as the console script, ``argv`` None, the process may end here)."""
    try:
        from .app import run
    except ModuleNotFoundError as exc:
        if exc.name not in ("click", "tqdm"):
            raise
        sys.stderr.write("aiostore: the command line needs the 'cli' extra: "
                         "pip install 'aiostore[cli]'\n")
        return 2
    code = run(argv)
    if argv is None and "obstore" in sys.modules:
        # The process ends here, skipping the interpreter's finalization: obstore's native
        # (tokio) threads abort a few percent of processes that used an S3 storage while
        # Python finalizes (SIGABRT after all output was written; reproduced with plain
        # open_storage(...).list() in a script). Everything is flushed and closed by now.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    return code
