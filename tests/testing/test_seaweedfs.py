"""The SeaweedFS launcher: a real S3 server that checks signatures and conditional writes, and
that leaves neither a process nor a file behind (also when its parent is killed)."""

from __future__ import annotations

import glob
import importlib.metadata
import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aiostore import errors
from aiostore.testing import SeaweedFS, SeaweedFSError, seaweedfs, weed_executable


def status(exc: ClientError) -> int:
    return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


def process_gone(pid: int) -> bool:
    """No such process, or a zombie (killed, waiting for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def made_dirs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The private temporary directories that servers make during the test."""
    made: list[Path] = []
    real = seaweedfs._runtime_directory

    def recording() -> Path:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(seaweedfs, "_runtime_directory", recording)
    return made


def sockets_of(ports: list[int]) -> list[str]:
    return [p for port in ports for p in glob.glob(f"/tmp/seaweedfs-*-{port}.sock")]


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError as exc:  # 403 for an anonymous request: it is up
        exc.close()
        return True
    except OSError:
        return False
    return True


# --- the S3 API -------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_put_get_list_delete(s3_server: SeaweedFS, s3_bucket: str) -> None:
    async with s3_server.client() as s3:
        put = await s3.put_object(Bucket=s3_bucket, Key="dir/a.bin", Body=b"hello" * 1000)
        got = await s3.get_object(Bucket=s3_bucket, Key="dir/a.bin")
        async with got["Body"] as body:
            assert await body.read() == b"hello" * 1000
        assert got["ETag"] == put["ETag"]
        listed = await s3.list_objects_v2(Bucket=s3_bucket, Prefix="dir/")
        assert [o["Key"] for o in listed["Contents"]] == ["dir/a.bin"]
        await s3.delete_object(Bucket=s3_bucket, Key="dir/a.bin")
        with pytest.raises(ClientError) as info:
            await s3.get_object(Bucket=s3_bucket, Key="dir/a.bin")
        assert status(info.value) == 404


@pytest.mark.asyncio
async def test_wrong_secret_key_is_refused(s3_server: SeaweedFS, s3_bucket: str) -> None:
    async with s3_server.client(aws_secret_access_key="wrong") as s3:
        with pytest.raises(ClientError) as info:
            await s3.put_object(Bucket=s3_bucket, Key="k", Body=b"x")
    assert status(info.value) == 403
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    async with s3_server.client(aws_access_key_id="nobody") as s3:
        with pytest.raises(ClientError) as info:
            await s3.list_objects_v2(Bucket=s3_bucket)
    assert status(info.value) == 403


@pytest.mark.asyncio
async def test_conditional_put(s3_server: SeaweedFS, s3_bucket: str) -> None:
    async with s3_server.client() as s3:
        first = await s3.put_object(Bucket=s3_bucket, Key="k", Body=b"1", IfNoneMatch="*")
        with pytest.raises(ClientError) as info:
            await s3.put_object(Bucket=s3_bucket, Key="k", Body=b"2", IfNoneMatch="*")
        assert status(info.value) == 412
        assert info.value.response["Error"]["Code"] == "PreconditionFailed"
        await s3.put_object(Bucket=s3_bucket, Key="k", Body=b"3", IfMatch=first["ETag"])
        with pytest.raises(ClientError) as info:  # the ETag changed
            await s3.put_object(Bucket=s3_bucket, Key="k", Body=b"4", IfMatch=first["ETag"])
        assert status(info.value) == 412
        got = await s3.get_object(Bucket=s3_bucket, Key="k")
        async with got["Body"] as body:
            assert await body.read() == b"3"


@pytest.mark.asyncio
async def test_buckets_are_fresh_and_unique(s3_server: SeaweedFS, s3_bucket: str) -> None:
    assert s3_bucket.startswith("test-buckets-are-fresh-and-unique-")
    assert 3 <= len(s3_bucket) <= 63
    async with s3_server.client() as s3:
        assert (await s3.list_objects_v2(Bucket=s3_bucket))["KeyCount"] == 0


def test_options_and_env(s3_server: SeaweedFS, s3_options: dict[str, str]) -> None:
    assert s3_options == {
        "endpoint_url": s3_server.endpoint_url,
        "aws_access_key_id": s3_server.access_key,
        "aws_secret_access_key": s3_server.secret_key,
        "region_name": "us-east-1",
        "addressing_style": "path",
    }
    assert s3_server.endpoint_url == f"http://127.0.0.1:{s3_server.port}"
    env = s3_server.env()
    assert env["AWS_ENDPOINT_URL"] == s3_server.endpoint_url
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ALLOW_HTTP"] == "true"


def test_env_configures_a_subprocess(s3_server: SeaweedFS, s3_bucket: str) -> None:
    """An SDK client built with no arguments finds the server through ``env()`` alone."""
    code = ("import asyncio, aiobotocore.session as s\n"
            "async def main():\n"
            "    async with s.get_session().create_client('s3') as c:\n"
            "        print(' '.join(b['Name'] for b in (await c.list_buckets())['Buckets']))\n"
            "asyncio.run(main())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3_server.env(), AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert s3_bucket in out.stdout.split()


def test_session_server_listens_on_loopback_only(s3_server: SeaweedFS) -> None:
    proc_net = Path("/proc/net/tcp")
    if not proc_net.exists():
        pytest.skip("needs /proc/net/tcp")
    inodes = {os.readlink(f"/proc/{s3_server.pid}/fd/{fd}")[8:-1]
              for fd in os.listdir(f"/proc/{s3_server.pid}/fd")
              if os.readlink(f"/proc/{s3_server.pid}/fd/{fd}").startswith("socket:")}
    listening = [line.split() for line in proc_net.read_text().splitlines()[1:]]
    listening = [f for f in listening if f[3] == "0A" and f[9] in inodes]  # 0A: LISTEN
    assert listening
    assert {f[1].split(":")[0] for f in listening} == {"0100007F"}  # 127.0.0.1
    v6 = Path("/proc/net/tcp6")
    if v6.exists():
        assert not [f for f in (line.split() for line in v6.read_text().splitlines()[1:])
                    if f[3] == "0A" and f[9] in inodes]


# --- lifecycle --------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_stop_leaves_no_process_and_no_files(made_dirs: list[Path]) -> None:
    """Started from a short-lived thread (the server must outlive it), then stopped."""
    started: list[SeaweedFS] = []
    thread = threading.Thread(target=lambda: started.append(SeaweedFS().start()))
    thread.start()
    thread.join()
    server = started[0]
    try:
        pid, data = server.pid, server.directory
        ports = seaweedfs._socket_ports(server._ports)
        assert os.getpgid(pid) == os.getsid(pid) == pid  # its own session
        async with server.client() as s3:
            await s3.create_bucket(Bucket="lifecycle")
            await s3.put_object(Bucket="lifecycle", Key="k", Body=b"x")
        assert server.running, "the server died with the thread that started it"
        assert sockets_of(ports)
    finally:
        server.stop()
    assert process_gone(pid)
    assert not server.running
    assert data.is_relative_to(made_dirs[0])
    assert made_dirs and not any(d.exists() for d in made_dirs)
    assert not sockets_of(ports)
    server.stop()  # idempotent


def test_given_directory_is_kept_and_reused(tmp_path: Path) -> None:
    import asyncio

    async def put() -> None:
        async with server.client() as s3:
            await s3.create_bucket(Bucket="kept")
            await s3.put_object(Bucket="kept", Key="k", Body=b"durable")

    async def get() -> bytes:
        async with server.client() as s3:
            got = await s3.get_object(Bucket="kept", Key="k")
            async with got["Body"] as body:
                return bytes(await body.read())

    server = SeaweedFS(tmp_path / "data", access_key="ak-1", secret_key="sk-1")
    with server:
        assert server.directory == (tmp_path / "data").resolve()
        asyncio.run(put())
    assert (tmp_path / "data").is_dir()
    with server:  # the same object starts again, on other ports
        assert asyncio.run(get()) == b"durable"


def test_start_timeout_cleans_up(made_dirs: list[Path]) -> None:
    server = SeaweedFS()
    with pytest.raises(SeaweedFSError, match="did not answer"):
        server.start(timeout=0)
    assert not server.running
    assert made_dirs and not any(d.exists() for d in made_dirs)
    with pytest.raises(SeaweedFSError, match="not started"):
        _ = server.endpoint_url


CHILD = """
import sys, time
from aiostore.testing import SeaweedFS
server = SeaweedFS().start()
print(server.pid, server.log_path.parent, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")
def test_killed_parent_takes_the_server_along() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    with child:
        line = child.stdout.readline()
        child.kill()
    assert line, "the child did not start a server"
    pid, runtime = int(line.split()[0]), Path(line.split()[1])
    wait_for(lambda: process_gone(pid))
    assert runtime.is_dir()  # SIGKILL skipped every clean-up...
    seaweedfs._sweep_stale()  # ...which the next start does
    assert not runtime.exists()


def test_entry_point_serves_until_interrupted(tmp_path: Path) -> None:
    # (a shell's background job inherits SIGINT ignored, and Python then keeps ignoring it:
    # the child gets the default disposition back, as in a terminal)
    proc = subprocess.Popen([sys.executable, "-m", "aiostore.testing.seaweedfs",
                             str(tmp_path / "data")], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None
    with proc:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = proc.stdout.readline()
            assert line, f"the entry point exited: {lines}"
            lines.append(line.strip())
        exports = dict(x.removeprefix("export ").split("=", 1) for x in lines
                       if x.startswith("export "))
        assert exports["AWS_ACCESS_KEY_ID"] == seaweedfs.DEFAULT_ACCESS_KEY
        assert answers(exports["AWS_ENDPOINT_URL"])
        weed = int(lines[0].split("pid ")[1].split(",")[0])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    assert process_gone(weed)
    assert (tmp_path / "data").is_dir()


def test_weed_executable_is_the_pinned_one() -> None:
    out = subprocess.run([weed_executable(), "version"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert " 4.48 " in out


def test_missing_weed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_dist(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_dist)
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path))
    with pytest.raises(errors.NotFoundError, match=r"pip install 'aiostore\[test\]'"):
        weed_executable()
    with pytest.raises(FileNotFoundError):
        SeaweedFS().start()


def test_module_does_not_import_aiobotocore() -> None:
    code = ("import sys, aiostore.testing.seaweedfs; "
            "print(sorted(m for m in sys.modules if 'boto' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
