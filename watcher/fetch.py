"""Read one URL politely and say precisely why it could not be read.

Every later stage trusts this module's verdict: a firewall page or a truncated body taken for
a successful fetch would look like a page that shrank or vanished, and a reporter would chase
a story that is not there. So redirects, decompression, size limits and retries are done by
hand, where each can be bounded and each failure named: redirects and retries here, the
capped body in ``body``, firewall pages in ``blocks``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from watcher.blocks import _PEEK, classify_block
from watcher.body import _Failure, _read_body
from watcher.errors import FetchError
from watcher.models import Fetched, Redirect, Validators

Sleep = Callable[[float], Awaitable[None]]
Gate = Callable[[], Awaitable[None]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchPolicy:
    timeout: float = 30.0  # seconds, per request (connect/read/write/pool)
    user_agent: str = "watcher/0.1.0 (+mailto:desk@example.org)"
    max_body: int = 20 * 1024 * 1024  # bytes, enforced on the decoded body while streaming
    retries: int = 3  # extra attempts for transient failures
    retry_max_time: float = 60.0  # total for all attempts, including waits
    backoff_base: float = 1.0  # seconds; exponential, with jitter
    max_redirects: int = 10
    per_host_concurrency: int = 2
    per_host_delay: float = 2.0  # seconds between the starts of requests to one host


def make_client(policy: FetchPolicy, *, tls: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The one client. Redirects stay manual so every hop is recorded and capped, and only
    encodings we can inflate with a size bound are offered. ``tls`` shares one TLS context
    between clients: building one loads the CA bundle (~20 ms)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(policy.timeout),
        headers={"User-Agent": policy.user_agent, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,
        verify=tls if tls is not None else True,
    )


class HostClients:
    """One client, so one connection pool, per host, all sharing one TLS context.

    httpcore 1.0's pool rescans all its connections for every queued request and for every
    idle one (quadratic in the open connections, encode/httpcore#1035), and once more than
    ``max_keepalive_connections`` (20) are open it closes idle ones it should keep. A watch
    list spread over 50 hosts keeps ~100 connections open: one shared client spent more CPU
    on pool bookkeeping than on HTTP. Per host, a pool holds ``per_host_concurrency``
    connections and keeps them alive. A redirect to another host reuses the first host's
    client, which is correct, only less tidy.
    """

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._tls: ssl.SSLContext | None = None
        self._clients: dict[str, httpx.AsyncClient] = {}

    def get(self, url: str) -> httpx.AsyncClient:
        host = (urlsplit(url).hostname or "").lower()
        client = self._clients.get(host)
        if client is None:
            if self._tls is None:
                self._tls = httpx.create_ssl_context()
            client = self._clients[host] = make_client(self.policy, tls=self._tls)
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> HostClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class HostLimiter:
    """Per-host politeness shared by every fetch of a run, so an agency server never sees a
    burst however many targets it hosts. Hosts never wait on each other.

    Bound to one event loop, like the asyncio primitives it holds.
    """

    def __init__(self, concurrency: int, delay: float) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency, self.delay = concurrency, delay
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, host: str, gate: Gate | None = None) -> AsyncIterator[None]:
        """Hold one of ``host``'s slots. ``gate``, awaited once the slot is ours, lets the
        caller hold back requests (while the pages already fetched wait to be parsed):
        waiting there bounds what is in flight, where waiting before the slot would not."""
        key = host.lower()
        async with self._sems.setdefault(key, asyncio.Semaphore(self.concurrency)):
            if gate is not None:
                await gate()
            # Reserve a start time with no await in between, so spacing holds for any queue.
            now = time.monotonic()
            start = max(now, self._next_start.get(key, now))
            self._next_start[key] = start + self.delay
            if start > now:
                await asyncio.sleep(start - now)
            yield


def normalise_etag(value: str | None) -> str | None:
    """EOIR's servers sometimes drop the quotes from an unchanged ETag, so `abc` and `"abc"`
    must compare equal and go back in the quoted form that servers match against."""
    if value is None or not value.strip():
        return None
    tag = value.strip()
    weak = tag[:2].upper() == "W/"
    core = (tag[2:] if weak else tag).strip().strip('"')
    return ('W/"' if weak else '"') + core + '"'


def _where(url: str) -> str:
    """Host[:port] only: messages must never carry query-string secrets or credentials."""
    parts = urlsplit(url)
    try:
        return (parts.hostname or "?") + (f":{parts.port}" if parts.port else "")
    except ValueError:  # a port out of range
        return parts.hostname or "?"


def _join(base: str, location: str) -> str | None:
    """The absolute URL a Location points to, if it is one we could fetch."""
    try:
        url = urljoin(base, location)
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and parts.hostname and parts.port != 0
    except ValueError:  # "[bad" hosts, ports out of range
        return None
    return url if ok else None


def _retry_after(value: str | None) -> float | None:
    """Seconds, or an HTTP-date measured against our clock (the server asked, we comply)."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _classify_exception(exc: Exception, url: str, policy: FetchPolicy) -> _Failure:
    where = _where(url)
    if isinstance(exc, httpx.TimeoutException):
        what = "no connection to" if isinstance(exc, httpx.ConnectTimeout) else "no response from"
        return _Failure("timeout", f"{what} {where} within {policy.timeout:g}s", transient=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        # httpx also parses a redirect's Location while receiving it, so blame either.
        return _Failure("http", f"unusable URL or redirect Location at {where}")
    reason = type(exc).__name__
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return _Failure("dns", f"{urlsplit(url).hostname} does not resolve")
        # TLS trouble after the handshake (an EOF mid-body) is a broken connection instead.
        if isinstance(cause, ssl.SSLError) and isinstance(exc, httpx.ConnectError):
            detail = getattr(cause, "verify_message", None) or cause.reason or "SSL error"
            return _Failure("tls", f"TLS handshake with {where} failed ({detail})")
        if isinstance(cause, OSError) and cause.errno:
            reason = os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        return _Failure("connect", f"cannot connect to {where}: {reason}", transient=True)
    # A read or write failing, or the server hanging up mid-response: the connection broke.
    return _Failure("connect", f"connection to {where} broke: {reason}", transient=True)


def _media_type(value: str) -> tuple[str, str | None]:
    media, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip(" \t\"'"):
            charset = val.strip(" \t\"'").lower()
    return media.strip().lower(), charset


def _validators(headers: httpx.Headers, fallback: Validators | None = None) -> Validators:
    """Only what the server said: a Last-Modified made from our clock would make a later
    304 claim sameness nobody vouched for."""
    fb = fallback or Validators()
    return Validators(
        etag=normalise_etag(headers.get("etag")) or fb.etag,
        last_modified=headers.get("last-modified") or fb.last_modified,
    )


class _Run:
    """One `fetch` call: its attempts, their failures, and the time charged to its budget.

    Time is counted, not read off a clock, so an injected sleep is charged like a real one,
    and queueing for a host slot (our politeness, not the server's fault) is not charged.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        policy: FetchPolicy,
        sent: Validators,
        gate: Gate | None = None,
    ) -> None:
        self.client, self.url, self.policy, self.sent = client, url, policy, sent
        self.gate = gate
        self.used = 0.0
        self.failures: list[_Failure] = []

    async def attempt(self, limiter: HostLimiter) -> Fetched:
        """One try: redirects followed by hand, each hop inside its own host's slot."""
        chain: list[Redirect] = []
        current, wire = self.url, 0.0
        try:
            while True:
                async with limiter.slot(urlsplit(current).hostname or "", self.gate):
                    started = time.monotonic()
                    try:
                        result = await self._hop(current)
                    finally:
                        spent = time.monotonic() - started
                        self.used += spent
                        wire += spent
                if isinstance(result, Fetched):
                    result.url, result.redirects, result.elapsed = self.url, chain, wire
                    return result
                # A second visit is allowed: firewalls set a cookie and redirect to the same
                # URL. A third means the chain goes round in a circle.
                visits = [self.url, *(r.url for r in chain)].count(result.url)
                chain.append(result)
                if visits >= 2:
                    msg = f"redirect loop at {_where(result.url)}"
                    raise _Failure("http", msg, result.status)
                if len(chain) > self.policy.max_redirects:
                    msg = f"more than {self.policy.max_redirects} redirects"
                    raise _Failure("http", msg, result.status)
                current = result.url
        except _Failure as failure:
            failure.redirects = chain
            self.failures.append(failure)
            raise

    async def _hop(self, url: str) -> Fetched | Redirect:
        try:
            # The deadline stops slow-drip servers that never trip a per-read timeout.
            async with asyncio.timeout(max(0.0, self.policy.retry_max_time - self.used)):
                return await self._exchange(url)
        except TimeoutError as exc:
            budget = f"{self.policy.retry_max_time:g}s retry budget"
            msg = f"no complete response from {_where(url)} within the {budget}"
            raise _Failure("timeout", msg, budget_cut=True) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError
            raise _classify_exception(exc, url, self.policy) from exc

    async def _exchange(self, url: str) -> Fetched | Redirect:
        """One request and its classified answer; a redirect goes back to be followed."""
        sent = self.sent
        pairs = (("If-None-Match", sent.etag), ("If-Modified-Since", sent.last_modified))
        request = self.client.build_request("GET", url, headers={k: v for k, v in pairs if v})
        response = await self.client.send(request, stream=True)
        try:
            status = response.status_code
            location = response.headers.get("location", "").strip()
            if status in _REDIRECTS and location:
                target = _join(url, location)
                if not target:
                    raise _Failure("http", f"{status} redirect to an unusable Location", status)
                # Read what little a redirect says, so its connection goes back to the pool:
                # closing a response mid-message closes the connection.
                await _read_body(response, _PEEK, peek=True)
                return Redirect(status, target)
            ctype, charset = _media_type(response.headers.get("content-type", ""))
            if status == 304 and (sent.etag or sent.last_modified):
                # A 304 has no body, but until the end of the message is read httpcore
                # counts the connection as busy and closes it: one new connection per 304.
                await response.aread()
                validators = _validators(response.headers, sent)
                return Fetched(url, url, 304, ctype, None, None, validators, charset=charset)
            ok = 200 <= status < 300
            limit = self.policy.max_body if ok else _PEEK
            body = await _read_body(response, limit, peek=not ok)
            reason = classify_block(status, response.headers, body)
            if reason:
                raise _Failure("blocked", reason, status)
            if ok:
                digest = hashlib.sha256(body).hexdigest()
                validators = _validators(response.headers)
                return Fetched(url, url, status, ctype, body, digest, validators, charset=charset)
            phrase = httpx.codes.get_reason_phrase(status) or response.reason_phrase or "error"
            retry_after = _retry_after(response.headers.get("retry-after"))
            transient = status == 429 or status >= 500
            raise _Failure("http", f"{status} {phrase}", status, transient, retry_after)
        finally:
            await response.aclose()

    def wait(self, state: RetryCallState) -> float:
        if self.failures and self.failures[-1].retry_after is not None:
            return self.failures[-1].retry_after
        backoff = self.policy.backoff_base * 2.0 ** (state.attempt_number - 1)
        return backoff + random.uniform(0, self.policy.backoff_base)

    def stop(self, state: RetryCallState) -> bool:
        # Give up now rather than begin a wait that would overrun the budget.
        over = self.used + state.upcoming_sleep >= self.policy.retry_max_time
        return state.attempt_number > self.policy.retries or over

    def error(self) -> FetchError:
        final = self.failures[-1]
        if final.budget_cut and len(self.failures) > 1:
            final = self.failures[-2]  # the server's own last answer says more than our deadline
        tries = f" ({len(self.failures)} attempts)" if len(self.failures) > 1 else ""
        redirects = [r.url for r in final.redirects]
        return FetchError(
            final.kind,
            final.message + tries,
            url=self.url,
            status=final.status,
            redirects=redirects,
        )


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    policy: FetchPolicy,
    limiter: HostLimiter,
    validators: Validators | None = None,
    sleep: Sleep = asyncio.sleep,
    gate: Gate | None = None,
) -> Fetched:
    """Fetch `url`, retrying only what a later try could fix, within a bounded total time.

    Raises FetchError. `sleep` is injectable so tests can see the retry waits without them.
    `gate` is awaited inside the host slot before each request (see `HostLimiter.slot`).
    """
    if _join(url, "") != url:
        raise FetchError("http", "not a usable http(s) URL", url=url)
    sent = Validators()
    if validators:
        sent = Validators(normalise_etag(validators.etag), validators.last_modified or None)
    run = _Run(client, url, policy, sent, gate)

    async def charged_sleep(seconds: float) -> None:
        run.used += seconds
        await sleep(seconds)

    retrying = AsyncRetrying(
        sleep=charged_sleep,
        stop=run.stop,
        wait=run.wait,
        retry=retry_if_exception(lambda exc: isinstance(exc, _Failure) and exc.transient),
        reraise=True,
    )
    try:
        result: Fetched = await retrying(run.attempt, limiter)
        return result
    except _Failure as failure:
        raise run.error() from failure
