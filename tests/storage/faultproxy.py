"""``FaultProxy``: an HTTP proxy in front of the real S3 server that injects transport faults.

The obstore backend's HTTP runs in Rust, out of reach of Python fakes, so faults are injected on
the wire instead: a client pointed at :attr:`FaultProxy.endpoint_url` talks to SeaweedFS
through it, and rules make chosen requests fail:

* ``"ok"`` — forward, answer (the default);
* ``"lose"`` — forward (the server applies it), then drop the connection without an answer;
* ``"forward-then-503"`` — forward (applied), then answer 503 SlowDown;
* ``"503"`` — answer 503 SlowDown without forwarding (nothing applied);
* ``"hold"`` — wait until :meth:`FaultProxy.release` (at most 20 s), then forward.

It serves one request per connection (``Connection: close`` both ways), on its own asyncio loop
in a thread, and keeps the ``Host`` header, so request signatures stay valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_SLOWDOWN = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
             b"<Message>injected</Message></Error>")


@dataclass
class Rule:
    """Actions for successive requests whose method is ``method`` and whose target contains
    ``fragment``; once they are used up, the requests pass."""

    method: str
    fragment: str
    actions: list[str]
    #: how many requests matched, actions used or not
    hits: int = 0


@dataclass
class FaultProxy:
    """A fault-injecting proxy to ``upstream`` (``http://host:port``); a context manager."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    #: (method, target, action) of every request, in order
    log: list[tuple[str, str, str]] = field(default_factory=list)
    #: set when a request is being held
    holding: threading.Event = field(default_factory=threading.Event)
    #: how many requests were held so far
    held: int = 0

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # --- control ------------------------------------------------------------------------------
    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the proxy."""
        return f"http://127.0.0.1:{self.port}"

    def add(self, method: str, fragment: str, *actions: str) -> Rule:
        """Apply ``actions`` to the next requests with ``method`` whose target contains
        ``fragment``."""
        rule = Rule(method, fragment, list(actions))
        with self._lock:
            self.rules.append(rule)
        return rule

    def release(self) -> None:
        """Let held requests (and later ones) through."""
        self._released.set()

    def requests(self, method: str, fragment: str = "") -> Iterator[str]:
        """The actions taken for requests with ``method`` whose target contains ``fragment``."""
        with self._lock:
            log = list(self.log)
        return (a for m, t, a in log if m == method and fragment in t)

    def _action(self, method: str, target: str) -> str:
        with self._lock:
            action = "ok"
            for rule in self.rules:
                if rule.method == method and rule.fragment in target:
                    rule.hits += 1
                    if rule.actions:
                        action = rule.actions.pop(0)
                        break
            self.log.append((method, target, action))
        return action

    # --- serving ------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in self._tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [line for line in lines[1:] if line]
        names = {h.split(":", 1)[0].strip().lower(): h.split(":", 1)[1].strip()
                 for h in headers}
        if names.get("transfer-encoding", "").lower() == "chunked":
            raise NotImplementedError("chunked request bodies")
        if names.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await reader.readexactly(int(names.get("content-length", "0")))
        action = self._action(method, target)
        if action == "503":
            await self._slowdown(writer)
            return
        if action == "hold":
            with self._lock:
                self.held += 1
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self._released.wait, 20)
        kept = [h for h in headers if h.split(":", 1)[0].strip().lower()
                not in ("connection", "expect", "keep-alive")]
        request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        try:
            up_writer.write(request + body)
            await up_writer.drain()
            response = await up_reader.read()  # to EOF: the server closes after its answer
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()
        if action == "lose":
            transport = writer.transport
            transport.abort()  # reset, no answer
            return
        if action == "forward-then-503":
            await self._slowdown(writer)
            return
        writer.write(_close(response))
        await writer.drain()

    @staticmethod
    async def _slowdown(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(_SLOWDOWN)
                     + _SLOWDOWN)
        await writer.drain()


def _close(response: bytes) -> bytes:
    """``response`` with ``Connection: close`` (the proxy serves one request per
    connection)."""
    head, sep, body = response.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n")
             if not line.lower().startswith((b"connection:", b"keep-alive:"))]
    return b"\r\n".join([*lines, b"Connection: close"]) + sep + body
