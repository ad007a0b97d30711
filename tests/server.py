"""A real HTTP server on 127.0.0.1 for tests: serves pages that tests change between checks.

Routes map a path (with query) to a ``Route``: a fixed response, or a callable that writes
the response itself (for hanging, endless or malformed answers). Every request is recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # When set, called instead of writing ``body``; gets the live handler.
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    at: float
    host: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(
                Request(
                    "GET",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    time.monotonic(),
                    self.server.server_address[0],  # type: ignore[index]
                )
            )
            owner.active += 1
            owner.max_active = max(owner.max_active, owner.active)
            route = owner.routes.get(self.path) or owner.routes.get(self.path.split("?")[0])
        try:
            if route is None:
                self._send(404, b"<html><head><title>Page Not Found</title></head></html>", {})
            elif route.handler is not None:
                route.handler(self)
            else:
                self._send(route.status, route.body, route.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with owner.lock:
                owner.active -= 1

    def do_HEAD(self) -> None:
        self.do_GET()

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        lower = {k.lower() for k in headers}
        if "content-type" not in lower:
            self.send_header("Content-Type", "text/html; charset=utf-8")
        for k, v in headers.items():
            self.send_header(k, v)
        if "content-length" not in lower:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: PageServer


class PageServer:
    """``with PageServer() as s: s.set('/p', html); url = s.url('/p')``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.owner = self
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def set(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self.lock:
            self.routes[path] = Route(data, status, dict(headers or {}))

    def set_handler(self, path: str, handler: Callable[[BaseHTTPRequestHandler], None]) -> None:
        with self.lock:
            self.routes[path] = Route(handler=handler)

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.set(path, b"", status=status, headers={"Location": to})

    def remove(self, path: str) -> None:
        with self.lock:
            self.routes.pop(path, None)

    def hits(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    """Write a complete response from inside a ``set_handler`` callable."""
    handler._send(status, body, headers or {})  # type: ignore[attr-defined]


# Helpers for ``set_handler``: canned misbehaviour that real servers show.

Handler = Callable[[BaseHTTPRequestHandler], None]


def slow(seconds: float, body: bytes = b"<html>late</html>") -> Handler:
    """Answer only after ``seconds``: a slow or hung server (the delay is the server's)."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        send(h, 200, body)

    return handle


def sequence(*responses: tuple[int, bytes, dict[str, str]]) -> Handler:
    """Answer successive requests with ``responses`` in turn, repeating the last one."""
    queue = list(responses)
    lock = threading.Lock()

    def handle(h: BaseHTTPRequestHandler) -> None:
        with lock:
            status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        send(h, status, body, headers)

    return handle


def endless(chunk: bytes = b"x" * 65536, limit: int = 512 * 1024 * 1024) -> Handler:
    """Stream a body with no length until the client hangs up (or ``limit`` bytes, so a
    broken client cannot make the test server run forever)."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        sent = 0
        while sent < limit:
            h.wfile.write(chunk)
            sent += len(chunk)

    return handle


def unused_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, for "connection refused"."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
