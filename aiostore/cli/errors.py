"""Exit codes, and one line on stderr for every error a user can cause.

=====  ===========================================================================
code   meaning
=====  ===========================================================================
0      success
1      a check found a problem: ``db verify`` found damage, or a read hit data that
       fails its checksum (``CorruptionError``)
2      usage: the command line or what it names is wrong — bad options or syntax, a
       missing path or object, the wrong kind of path (not a database, not a table),
       a bad URL or location, no such version, access denied
3      the operation failed for a reason outside the command line: the store is
       unreachable, the disk is full, a commit conflict, an I/O error
130    interrupted (Ctrl-C)
141    stdout was closed by its reader (``| head``): stopped quietly, as SIGPIPE would
=====  ===========================================================================

A user mistake never prints a traceback; only an unexpected exception (a bug) does, after
its one-line summary.
"""

from __future__ import annotations

import errno as errno_mod
import os
import re

from .. import errors as E

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_FAILED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK",
           "EXIT_PROBLEM", "EXIT_USAGE", "CliError", "describe", "one_line"]

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

_EXTRAS = {"pyarrow": "frames", "pandas": "frames", "obstore": "s3", "aiobotocore": "s3",
           "botocore": "s3", "tqdm": "cli", "click": "cli"}


class CliError(Exception):
    """An error the CLI detected itself: ``message`` is printed as it is, ``code`` is the
    exit status (usage, unless said otherwise)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def one_line(text: str) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space)."""
    return " ".join(text.split())


_ACTION = re.compile(r"^[a-z][a-z ]* failed: ")


def _os_message(exc: OSError) -> str:
    """``reason: path`` for an OSError, without Python's ``[Errno N]`` decoration and
    without aiostore's ``<action> failed:`` prefix."""
    reason = exc.strerror or (exc.args[0] if exc.args else "") or type(exc).__name__
    if not isinstance(reason, str):
        reason = str(reason)
    reason = _ACTION.sub("", reason)
    reason = reason[:1].lower() + reason[1:]
    name = exc.filename
    if name is not None:
        name = os.fsdecode(name)
        if name not in reason:
            return f"{reason}: {name}"
    return reason


def _labelled(label: str, detail: str) -> str:
    """``label: detail``, unless ``detail`` already says it."""
    detail = one_line(detail)
    return detail if detail.lower().startswith(label) else f"{label}: {detail}"


def describe(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message (without the ``aiostore: `` prefix) for
    ``exc``; ``EXIT_INTERNAL`` for anything that is not a known failure."""
    if isinstance(exc, CliError):
        return exc.code, one_line(str(exc))
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        extra = _EXTRAS.get(top)
        if extra is not None:
            return EXIT_USAGE, (f"this needs {top}, which is not installed: "
                                f"pip install 'aiostore[{extra}]'")
    if isinstance(exc, E.CorruptionError):
        return EXIT_PROBLEM, f"damaged data: {one_line(str(exc))}"
    if isinstance(exc, E.VersionNotFoundError):
        return EXIT_USAGE, f"no such version: {one_line(str(exc))}"
    if isinstance(exc, E.UnknownFormatError):
        return EXIT_USAGE, f"unknown format: {one_line(str(exc))}"
    if isinstance(exc, E.InvalidLocationError):
        return EXIT_USAGE, f"bad location: {one_line(str(exc))}"
    if isinstance(exc, (E.InvalidArgumentError, E.UnsupportedTableError,
                        E.SchemaMismatchError, E.SerializationError)):
        return EXIT_USAGE, one_line(str(exc))
    if isinstance(exc, E.BucketNotFoundError):
        return EXIT_USAGE, _labelled("no such bucket", _os_message(exc))
    if isinstance(exc, E.AccessDeniedError) or (
            isinstance(exc, OSError) and not isinstance(exc, E.StorageError)
            and exc.errno in (errno_mod.EACCES, errno_mod.EPERM)):
        return EXIT_USAGE, _labelled("access denied", _os_message(exc))
    if isinstance(exc, (E.NotFoundError, FileNotFoundError)):
        return EXIT_USAGE, _labelled("not found", _os_message(exc))
    if isinstance(exc, (E.NotADirectoryTargetError, NotADirectoryError)):
        return EXIT_USAGE, _labelled("not a directory", _os_message(exc))
    if isinstance(exc, (E.IsADirectoryTargetError, IsADirectoryError)):
        return EXIT_USAGE, _labelled("is a directory", _os_message(exc))
    if isinstance(exc, (E.AlreadyExistsError, E.PreconditionFailedError)):
        return EXIT_USAGE, f"already exists: {one_line(str(exc))}"
    if isinstance(exc, E.StorageUnavailableError):
        return EXIT_FAILED, _labelled("unreachable", _os_message(exc))
    if isinstance(exc, E.DiskFullError):
        return EXIT_FAILED, _labelled("disk full", _os_message(exc))
    if isinstance(exc, E.CommitConflictError):
        return EXIT_FAILED, f"conflict: {one_line(str(exc))}"
    if isinstance(exc, OSError):
        return EXIT_FAILED, one_line(_os_message(exc))
    if isinstance(exc, E.AiostoreError):
        return EXIT_FAILED, one_line(str(exc))
    return EXIT_INTERNAL, (f"internal error (a bug in aiostore, please report it): "
                           f"{type(exc).__name__}: {one_line(str(exc))}")
