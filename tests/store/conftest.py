"""Store fixtures: ``root`` is a fresh store root — a local directory (on asyncio, uvloop and
trio) or a prefix in a fresh bucket of the session's SeaweedFS server (asyncio: the S3
transports need it). A test asks for ``root`` (both) or ``s3_root`` (S3 only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: small multipart settings, so that multipart uploads and ranged reads happen with a few MiB
SMALL_PARTS = {"multipart_threshold": 5 << 20, "part_size": 5 << 20, "max_concurrency": 2}

_ASYNCIO: tuple[str, dict[str, object]] = ("asyncio", {})


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``root_kind``: local on every event loop, S3 on asyncio (it parametrizes
    ``anyio_backend`` with it, so that no S3 test is generated for trio)."""
    # (as markers: pytest then leaves the root conftest's parametrized anyio_backend alone)
    if "root_kind" in metafunc.fixturenames:
        metafunc.definition.add_marker(pytest.mark.parametrize(("root_kind", "anyio_backend"), [
            pytest.param("local", _ASYNCIO, id="local-asyncio"),
            pytest.param("local", ("asyncio", {"use_uvloop": True}), id="local-uvloop"),
            pytest.param("local", ("trio", {}), id="local-trio"),
            pytest.param("s3", _ASYNCIO, id="s3"),
        ]))
    elif "s3_root" in metafunc.fixturenames and "anyio_backend" in metafunc.fixturenames \
            and not any("anyio_backend" in str(m.args[0])
                        for m in metafunc.definition.iter_markers("parametrize")):
        metafunc.definition.add_marker(pytest.mark.parametrize(
            "anyio_backend", [pytest.param(_ASYNCIO, id="s3")]))


@pytest.fixture
def root(root_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh store root: ``tmp_path/data`` or ``s3://<fresh bucket>/data``."""
    if root_kind == "local":
        return str(tmp_path / "data")
    bucket: str = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/data"


@pytest.fixture
def options(root_kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``storage_options`` of ``root``."""
    if root_kind == "local":
        return {}
    return {**request.getfixturevalue("s3_options"), **SMALL_PARTS}


@pytest.fixture
def s3_root(s3_bucket: str) -> str:
    """A fresh S3 store root."""
    return f"s3://{s3_bucket}/data"


@pytest.fixture
def s3_store_options(s3_options: dict[str, str]) -> dict[str, Any]:
    """The ``storage_options`` of ``s3_root``."""
    return {**s3_options, **SMALL_PARTS}
