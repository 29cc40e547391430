"""The public API: ``aiostore.__all__`` matches the checked-in list, and every name is documented.

When this fails you changed the public surface: update ``tests/public_api.txt`` on purpose.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import aiostore
from aiostore import errors

LISTED = Path(__file__).with_name("public_api.txt").read_text().split()


def test_all_matches_checked_in_list() -> None:
    assert sorted(aiostore.__all__) == LISTED


def test_every_public_name_exists_and_has_a_docstring() -> None:
    for name in aiostore.__all__:
        obj = getattr(aiostore, name)
        if name == "__version__":
            assert isinstance(obj, str)
            continue
        assert inspect.getdoc(obj), f"aiostore.{name} has no docstring"


def test_no_private_module_leaks_into_namespace() -> None:
    public = {n for n in dir(aiostore) if not n.startswith("_")}
    # subpackages Python binds on import (compat only once something imports it)
    modules = {"atomic", "cli", "compat", "errors", "formats", "segments", "sql", "storage",
               "store", "tables", "testing"}
    assert public - set(aiostore.__all__) <= modules


def test_error_hierarchy_is_rooted_and_documented() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AiostoreError)
        assert inspect.getdoc(cls)
    assert issubclass(errors.AlreadyExistsError, FileExistsError)
    assert issubclass(errors.NotFoundError, FileNotFoundError)
    assert issubclass(errors.AccessDeniedError, PermissionError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.SerializationError, TypeError)
    assert issubclass(errors.StorageError, OSError)


def test_storage_error_keeps_errno_and_path() -> None:
    import errno

    exc = errors.storage_error(OSError(errno.ENOSPC, "No space left on device"), "write", "/x")
    assert isinstance(exc, errors.DiskFullError)
    assert exc.errno == errno.ENOSPC
    assert exc.filename == "/x"
    assert str(exc).startswith("[Errno 28] write failed: No space left on device")


def test_core_import_is_light() -> None:
    """``import aiostore`` pulls in neither pandas nor pyarrow (they are the frames extra), nor
    the sql extra's SQLAlchemy and drivers."""
    import subprocess
    import sys

    code = ("import sys, aiostore; heavy = {'pandas', 'pyarrow', 'polars', 'openpyxl', "
            "'sqlalchemy', 'asyncpg', 'aiosqlite'}; print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
