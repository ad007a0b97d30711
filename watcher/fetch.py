"""Read one URL politely and say precisely why it could not be read.

Every later stage trusts this module's verdict: a firewall page or a truncated body taken for
a successful fetch would look like a page that shrank or vanished, and a reporter would chase
a story that is not there. So redirects, decompression, size limits and retries are done here
by hand, where each can be bounded and each failure named.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import os
import random
import re
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from watcher.errors import FetchError
from watcher.models import Fetched, Redirect, Validators

Sleep = Callable[[float], Awaitable[None]]
Gate = Callable[[], Awaitable[None]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PEEK = 64 * 1024  # enough of an error page to recognise a block page
_GZIP = 16 + zlib.MAX_WBITS
_STEP = 64 * 1024  # most decoded bytes produced by one zlib call


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


_AKAMAI_REF = re.compile(r"reference\s*#\s*([0-9a-f]+(?:\.[0-9a-f]+){2,})", re.I)
_PERMISSION = re.compile(r"you don.t have permission to access", re.I)
_TITLE = re.compile(r"<title[^>]*>\s*(.*?)\s*</title>", re.I | re.S)
_CAPTCHA = ("g-recaptcha", "h-captcha", "hcaptcha", "px-captcha", "are you a robot",
            "verify you are human", "incapsula incident", "_incapsula_resource")  # fmt: skip


def classify_block(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """Name the firewall when a response is a bot block rather than the page.

    Federal sites sit behind Akamai, whose blocks come back as 403 "Access Denied" or as a
    redirect landing on one; neither means the page is gone. On a 200 only markers no real
    page carries count: ICE pages may embed a form captcha, and Cloudflare injects its
    /cdn-cgi/challenge-platform/ script into ordinary pages.
    """
    if status not in (200, 403, 429, 503):
        return None
    hdr = {k.lower(): v for k, v in headers.items()}
    # Akamai entity-encodes its page ("Reference&#32;&#35;18&#46;..."), so unescape first.
    text = html.unescape(body[:_PEEK].decode("latin-1"))
    low = text.lower()
    m = _TITLE.search(text)
    title = m.group(1).lower() if m else ""
    denied = "access denied" in title or "<h1>access denied</h1>" in low
    cf_chl = "cf-chl" in low or "_cf_chl_opt" in low
    moment = title.startswith("just a moment")
    # Only a denial page is searched for its reference: the case-insensitive search costs
    # ~0.4 ms on a 64 KB page, most of the time this function takes on every ordinary 200.
    ref = _AKAMAI_REF.search(text) if denied else None
    if denied and _PERMISSION.search(text) and (ref or status != 200):
        return 'Akamai "Access Denied"' + (f" (reference #{ref.group(1)})" if ref else "")
    if (cf_chl and moment) or (status != 200 and (cf_chl or moment)):
        return 'Cloudflare challenge ("Just a moment...")'
    if status == 200:
        return None
    if "attention required! | cloudflare" in title:
        return 'Cloudflare "Attention Required!" block'
    if denied and "akamai" in hdr.get("server", "").lower():
        return 'Akamai "Access Denied"'
    if "captcha" in title or any(marker in low for marker in _CAPTCHA):
        return "captcha page"
    if status == 403 and "cf-ray" in hdr:
        return f"Cloudflare 403 (cf-ray {hdr['cf-ray']})"
    return None


@dataclass(eq=False)
class _Failure(Exception):
    """One attempt's failure, kept until retries are settled and it becomes a FetchError."""

    kind: str
    message: str
    status: int | None = None
    transient: bool = False
    retry_after: float | None = None
    budget_cut: bool = False  # our own deadline, not the server, ended the attempt
    redirects: list[Redirect] = field(default_factory=list)


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


def _size(n: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


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


class _Inflater:
    """gzip/deflate inflated with `max_length`, so a small bomb cannot grow past the cap."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._d = zlib.decompressobj(_GZIP) if encoding != "deflate" else None
        self._head = b""  # deflate: held until we can tell zlib-wrapped from raw
        self._fed = False

    def feed(self, data: bytes, room: int) -> Iterator[bytes]:
        """Yield decoded pieces; stops once more than `room` bytes came out (over the cap)."""
        self._fed = self._fed or bool(data)
        if self._d is None:
            self._head += data
            if len(self._head) < 2:
                return
            # "deflate" means zlib-wrapped, but some servers send raw deflate: check the header.
            cmf, flg = self._head[0], self._head[1]
            wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        while data and room >= 0:
            # Small steps: zlib builds each piece from blocks and joins them, so one big
            # step would briefly hold twice its size.
            piece = self._d.decompress(data, min(room + 1, _STEP))
            room -= len(piece)
            yield piece
            data = self._d.unconsumed_tail
            more = self._d.unused_data.strip(b"\0\r\n\t ")  # padding is not a member
            if self._d.eof and more and self.encoding != "deflate":
                data = self._d.unused_data + data  # a further gzip member
                self._d = zlib.decompressobj(_GZIP)

    def finish(self) -> bytes:
        if not self._fed:
            return b""
        tail = self._d.flush() if self._d else b""
        if self._d is None or not self._d.eof:
            raise _Failure("http", f"{self.encoding} body is truncated")
        return tail


async def _read_body(response: httpx.Response, limit: int, *, peek: bool) -> bytes:
    """Stream the raw body and decode it ourselves, counting decoded bytes against `limit`.

    With `peek`, stop quietly at the limit: error pages are read only to spot block pages,
    and a garbled one is simply not recognised.
    """
    status = response.status_code
    encoding = response.headers.get("content-encoding", "").strip().lower()
    known = encoding in ("gzip", "x-gzip", "deflate")
    length = response.headers.get("content-length", "").strip()
    if not peek and encoding not in ("", "identity") and not known:
        raise _Failure("http", f"unsupported Content-Encoding {encoding!r}", status=status)
    if not peek and length.isdigit() and int(length) > limit:
        msg = f"body exceeds {_size(limit)} limit (Content-Length {length})"
        raise _Failure("too_large", msg, status=status)
    inflater = _Inflater(encoding) if known else None
    chunks: list[bytes] = []
    total = 0
    try:
        async for raw in response.aiter_raw():
            for piece in inflater.feed(raw, limit - total) if inflater else (raw,):
                chunks.append(piece)
                total += len(piece)
            if total > limit:
                break
        else:
            if inflater:
                chunks.append(inflater.finish())
                total += len(chunks[-1])
    except (_Failure, zlib.error) as exc:
        if not peek and isinstance(exc, _Failure):
            exc.status = status
            raise
        if not peek:
            raise _Failure("http", f"corrupt {encoding} body ({exc})", status=status) from exc
    if total > limit and not peek:
        raise _Failure("too_large", f"body exceeds {_size(limit)} limit", status=status)
    return b"".join(chunks)[:limit]


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
