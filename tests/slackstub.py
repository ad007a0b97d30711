"""A stand-in for Slack on 127.0.0.1, for tests: real HTTP, real slack-sdk clients.

It plays both sides watcher talks to:

* the incoming webhook, ``POST /services/T…/B…/<key>``, answering ``ok`` (only at the path
  it issued; any other path gets Slack's ``404 no_service``);
* the Web API, ``POST /api/chat.postMessage``, answering ``{"ok": true, "ts": …}`` when the
  bearer token and the channel are the ones it issued (else ``invalid_auth`` /
  ``channel_not_found``, as Slack does).

Every request is recorded with its parsed JSON body. Tests script failures with
``fail(kind, times)``: ``http500``, ``http503``, ``ratelimited`` (429 with Retry-After),
``invalid_auth``, ``channel_not_found``, ``invalid_blocks``, ``no_service`` (webhook 404),
``hold`` (keep the request open until ``release()``; to provoke client timeouts and to kill a
client mid-request).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "xoxb-1111-2222-sEcReTbOtToKeN"
CHANNEL = "#foia-watch"
WEBHOOK_PATH = "/services/T0STUB01/B0STUB02/sEcReTwEbHoOkKeY9876"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes
    answered: int = 0  # HTTP status we answered; 0 while held or when the client vanished
    accepted: bool = False  # Slack would have posted it (even if the client never heard back)


@dataclass
class _Failure:
    kind: str
    retry_after: int = 1
    times: int | None = 1  # None: until ``heal()``


@dataclass
class _State:
    requests: list[Received] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    next_ts: int = 100


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        stub = self.server.stub
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        record = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw)
        with stub.lock:
            stub.state.requests.append(record)
            failure = stub._take_failure()
            stub.arrived.notify_all()
        try:
            status = self._answer(stub, failure, record)
        except (BrokenPipeError, ConnectionResetError):
            status = 0
        record.answered = status

    def _answer(self, stub: SlackStub, failure: _Failure | None, record: Received) -> int:
        webhook, body = self.path.startswith("/services/"), record.body
        if failure and failure.kind == "hold":
            stub.released.wait(timeout=30)
            failure = None
        if failure:
            return self._fail(failure, webhook)
        if webhook:
            if self.path != WEBHOOK_PATH:
                return self._send(404, "no_service", "text/html")
            record.accepted = True
            return self._send(200, "ok", "text/html")
        if self.path.split("?")[0] != "/api/chat.postMessage":
            return self._api(404, {"ok": False, "error": "unknown_method"})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._api(200, {"ok": False, "error": "invalid_auth"})
        if body.get("channel") != CHANNEL:
            return self._api(200, {"ok": False, "error": "channel_not_found"})
        with stub.lock:
            stub.state.next_ts += 1
            ts = f"1764000000.{stub.state.next_ts:06d}"
        record.accepted = True
        record.body["_ts"] = ts
        return self._api(200, {"ok": True, "channel": "C0STUB", "ts": ts})

    def _fail(self, failure: _Failure, webhook: bool) -> int:
        kind = failure.kind
        if kind.startswith("http5"):
            return self._send(int(kind[4:]), "<html><h1>Server Error</h1></html>", "text/html")
        if kind == "ratelimited":
            headers = {"Retry-After": str(failure.retry_after)}
            if webhook:
                return self._send(429, "rate_limited", "text/html", headers)
            return self._api(429, {"ok": False, "error": "ratelimited"}, headers)
        if webhook:
            status = {"no_service": 404, "invalid_blocks": 400, "invalid_payload": 400}
            return self._send(status.get(kind, 403), kind, "text/html")
        return self._api(200, {"ok": False, "error": kind})

    def _api(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> int:
        return self._send(status, json.dumps(data), "application/json; charset=utf-8", headers)

    def _send(
        self, status: int, text: str, ctype: str, headers: dict[str, str] | None = None
    ) -> int:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        return status


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: SlackStub


class SlackStub:
    """``with SlackStub() as slack: …; slack.posts`` — see the module docstring."""

    token = TOKEN
    channel = CHANNEL

    def __init__(self) -> None:
        self.state = _State()
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.released = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.stub = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> SlackStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.base + WEBHOOK_PATH

    @property
    def api_base(self) -> str:
        return self.base + "/api/"

    # --- scripting -------------------------------------------------------------------------

    def fail(self, kind: str, times: int | None = 1, *, retry_after: int = 1) -> None:
        with self.lock:
            self.state.failures.append(_Failure(kind, retry_after, times))

    def heal(self) -> None:
        with self.lock:
            self.state.failures.clear()

    def release(self) -> None:
        self.released.set()

    def _take_failure(self) -> _Failure | None:
        failures = self.state.failures
        if not failures:
            return None
        failure = failures[0]
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                failures.pop(0)
        return failure

    # --- what arrived ----------------------------------------------------------------------

    @property
    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.state.requests)

    @property
    def posts(self) -> list[dict[str, Any]]:
        """Bodies of the messages Slack accepted, in order."""
        return [r.body for r in self.requests if r.accepted]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.state.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests, got {self.state.requests}")
                self.arrived.wait(left)
