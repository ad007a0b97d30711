"""Read one URL politely and say precisely why it could not be read.

Every later stage trusts this module's verdict: a blocked request or a truncated body that
slipped through as a "successful" fetch would look like a page that shrank or vanished, and a
reporter would chase a story that is not there. So redirects, decompression, size limits and
retries are all done here by hand, where each can be bounded and classified.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import random
import re
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from watcher.errors import FetchError
from watcher.models import Fetched, Redirect, Validators

Sleep = Callable[[float], Awaitable[None]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ERROR_BODY_PEEK = 64 * 1024  # enough to recognise a block page; error bodies are not kept


@dataclass(frozen=True)
class FetchPolicy:
    timeout: float = 30.0
    user_agent: str = "watcher/0.1.0 (+mailto:desk@example.org)"
    max_body: int = 20 * 1024 * 1024
    retries: int = 3
    retry_max_time: float = 60.0
    backoff_base: float = 1.0
    max_redirects: int = 10
    per_host_concurrency: int = 2
    per_host_delay: float = 2.0


def make_client(policy: FetchPolicy) -> httpx.AsyncClient:
    """The one client. Redirects stay manual so every hop is recorded and capped, and only
    encodings we can decompress with a size bound are offered."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(policy.timeout),
        headers={"User-Agent": policy.user_agent, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,
    )


class HostLimiter:
    """Per-host politeness shared by all fetches of a run, so agency servers never see us
    as a burst however many targets sit on one host. Hosts never wait on each other.

    Bound to one event loop, like the asyncio primitives it uses.
    """

    def __init__(
        self,
        concurrency: int,
        delay: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.delay = delay
        self._clock = clock
        self._sleep = sleep
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        key = host.lower()
        sem = self._sems.setdefault(key, asyncio.Semaphore(self.concurrency))
        async with sem:
            # Reserve a start time without awaiting in between, so the spacing holds
            # for any number of waiters.
            now = self._clock()
            start = max(now, self._next_start.get(key, now))
            self._next_start[key] = start + self.delay
            if start > now:
                await self._sleep(start - now)
            yield


def normalise_etag(value: str | None) -> str | None:
    """EOIR's servers sometimes drop the quotes around the same ETag, so `abc` and `"abc"`
    must compare equal and be sent back in the quoted form RFC 9110 requires."""
    if value is None or not value.strip():
        return None
    tag = value.strip()
    weak = tag[:2].upper() == "W/"
    core = tag[2:].strip() if weak else tag
    return ('W/"' if weak else '"') + core.strip('"') + '"'


_AKAMAI_REF = re.compile(r"reference\s*#\s*([0-9a-f]+(?:\.[0-9a-f]+){2,})", re.I)
_PERMISSION = re.compile(r"you don.t have permission to access", re.I)
_TITLE = re.compile(r"<title[^>]*>\s*(.*?)\s*</title>", re.I | re.S)
_CAPTCHA = ("g-recaptcha", "h-captcha", "hcaptcha", "px-captcha", "are you a robot",
            "verify you are human", "incapsula incident", "_incapsula_resource")  # fmt: skip


def classify_block(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """Name the firewall when a response is a bot block rather than the page.

    Federal sites sit behind Akamai; its blocks come back as 403 "Access Denied" (or a
    redirect that lands on one) and must never read as "page gone". On 200 only markers no
    real page carries count, since ICE pages may legitimately embed a form captcha.
    """
    hdr = {k.lower(): v for k, v in headers.items()}
    # Akamai entity-encodes its page ("Reference&#32;&#35;18&#46;..."), so unescape first.
    text = html.unescape(body[:_ERROR_BODY_PEEK].decode("latin-1"))
    low = text.lower()
    m = _TITLE.search(text)
    title = m.group(1).lower() if m else ""
    ref = _AKAMAI_REF.search(text)
    denied = "access denied" in title or "<h1>access denied</h1>" in low
    permission = _PERMISSION.search(text) is not None
    # Cloudflare injects /cdn-cgi/challenge-platform/ scripts into ordinary pages too, so a
    # 200 needs both the interstitial's title and its challenge options to count.
    cf_chl = "cf-chl" in low or "_cf_chl_opt" in low
    moment = title.startswith("just a moment")
    if status in (200, 403, 429, 503):
        if denied and permission and (ref or status != 200):
            return 'Akamai "Access Denied"' + (f" (reference #{ref.group(1)})" if ref else "")
        if (cf_chl and moment) or (status != 200 and (cf_chl or moment)):
            return 'Cloudflare challenge ("Just a moment...")'
    if status == 200:
        return None
    if status in (403, 429, 503):
        if "attention required! | cloudflare" in title:
            return 'Cloudflare "Attention Required!" block'
        if denied and "akamai" in hdr.get("server", "").lower():
            return 'Akamai "Access Denied"'
        if "captcha" in title or any(marker in low for marker in _CAPTCHA):
            return "captcha page"
    if status == 403 and "cf-ray" in hdr:
        return f"Cloudflare 403 (cf-ray {hdr['cf-ray']})"
    return None


class _Failure(Exception):
    """One attempt's outcome before retries are settled; becomes a FetchError at the end."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        budget_cut: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.budget_cut = budget_cut
        self.redirects: list[Redirect] = []


def _where(url: str) -> str:
    """Host[:port] only: messages must never carry query-string secrets or credentials."""
    parts = urlsplit(url)
    return (parts.hostname or url) + (f":{parts.port}" if parts.port else "")


def _size(n: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _Decoder:
    """Bounded gzip/deflate: `max_length` keeps a small bomb from inflating past the cap."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._d: zlib._Decompress | None = None
        self._head = b""  # deflate: bytes held until we can tell zlib-wrapped from raw
        if encoding in ("gzip", "x-gzip"):
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode `data`, returning at most `room + 1` bytes (one past means over the cap)."""
        if self._d is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            cmf, flg = self._head[0], self._head[1]
            # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
            zlib_wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        out = bytearray()
        while data and len(out) <= room:
            out += self._d.decompress(data, room + 1 - len(out))
            data = self._d.unconsumed_tail
            if self._d.eof and self._d.unused_data.strip(b"\0\r\n "):
                if self.encoding == "deflate":
                    raise _Failure("http", "deflate body has trailing data")
                data = self._d.unused_data + data  # another gzip member follows
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return bytes(out)

    def finish(self) -> bytes:
        if self._d is None:
            if self._head:
                raise _Failure("http", f"{self.encoding} body is truncated")
            return b""
        tail = self._d.flush()
        if not self._d.eof:
            raise _Failure("http", f"{self.encoding} body is truncated")
        return tail


async def _read_body(response: httpx.Response, limit: int, *, peek: bool) -> bytes:
    """Stream the raw body and decode it ourselves, counting decoded bytes against `limit`.

    With `peek`, stop quietly at the limit instead: error pages are read only to recognise
    block pages, and a garbled one is just unrecognised.
    """
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    decoder = None if encoding in ("", "identity") else _Decoder(encoding)
    if decoder and encoding not in ("gzip", "x-gzip", "deflate"):
        if peek:
            decoder = None
        else:
            raise _Failure("http", f"unsupported Content-Encoding {encoding!r}")
    length = response.headers.get("content-length", "")
    if not peek and length.strip().isdigit() and int(length) > limit:
        raise _Failure("too_large", f"body exceeds {_size(limit)} limit (Content-Length {length})")
    chunks: list[bytes] = []
    total = 0
    try:
        async for raw in response.aiter_raw():
            piece = decoder.feed(raw, limit - total) if decoder else raw
            chunks.append(piece)
            total += len(piece)
            if total > limit:
                if peek:
                    break
                raise _Failure("too_large", f"body exceeds {_size(limit)} limit")
        else:
            if decoder:
                chunks.append(decoder.finish())
    except (_Failure, zlib.error) as exc:
        if peek:
            return b"".join(chunks)[:limit]
        if isinstance(exc, _Failure):
            raise
        raise _Failure("http", f"corrupt {encoding} body ({exc})") from exc
    body = b"".join(chunks)
    if len(body) > limit:
        if not peek:
            raise _Failure("too_large", f"body exceeds {_size(limit)} limit")
        body = body[:limit]
    return body


def _classify_exception(exc: BaseException, url: str, policy: FetchPolicy) -> _Failure:
    where = _where(url)
    if isinstance(exc, httpx.TimeoutException):
        what = "no connection to" if isinstance(exc, httpx.ConnectTimeout) else "no response from"
        return _Failure("timeout", f"{what} {where} within {policy.timeout:g}s", transient=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return _Failure("http", f"cannot fetch {urlsplit(url).scheme or 'this'}: URL")
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return _Failure("dns", f"{urlsplit(url).hostname} does not resolve")
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or cause.__class__.__name__
            return _Failure("tls", f"TLS handshake with {where} failed ({reason})")
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc).splitlines()[0] if str(exc) else "connection failed"
        return _Failure("connect", f"cannot connect to {where}: {reason}", transient=True)
    # Read/write errors and a server hanging up mid-response: the connection broke.
    return _Failure("connect", f"connection to {where} broke: {type(exc).__name__}", transient=True)


def _media_type(value: str) -> tuple[str, str | None]:
    media, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip().strip("\"'"):
            charset = val.strip().strip("\"'").lower()
    return media.strip().lower(), charset


def _validators(headers: httpx.Headers, fallback: Validators | None = None) -> Validators:
    """Only what the server said: no clock-made Last-Modified, so 304s stay trustworthy."""
    fb = fallback or Validators()
    return Validators(
        etag=normalise_etag(headers.get("etag")) or fb.etag,
        last_modified=headers.get("last-modified") or fb.last_modified,
    )


class _Budget:
    """Time charged to `retry_max_time`: time on the wire plus retry waits.

    Counted, not read off a clock, so an injected sleep is charged like a real one and
    queueing for a host slot (politeness, not the server's fault) is not charged at all.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.used = 0.0

    def remaining(self) -> float:
        return max(0.0, self.limit - self.used)


async def _exchange(
    client: httpx.AsyncClient, url: str, policy: FetchPolicy, sent: Validators
) -> Fetched | Redirect:
    """One request/response, classified; a redirect is returned for the caller to follow."""
    headers = {}
    if sent.etag:
        headers["If-None-Match"] = sent.etag
    if sent.last_modified:
        headers["If-Modified-Since"] = sent.last_modified
    response = await client.send(client.build_request("GET", url, headers=headers), stream=True)
    try:
        status = response.status_code
        location = response.headers.get("location", "").strip()
        if status in _REDIRECTS and location:
            return Redirect(status, urljoin(url, location))
        content_type, charset = _media_type(response.headers.get("content-type", ""))
        if status == 304 and (sent.etag or sent.last_modified):
            validators = _validators(response.headers, sent)
            return Fetched(url, url, 304, content_type, None, None, validators, charset=charset)
        if 200 <= status < 300:
            body = await _read_body(response, policy.max_body, peek=False)
            reason = classify_block(status, response.headers, body)
            if reason:
                raise _Failure("blocked", reason, status=status)
            digest = hashlib.sha256(body).hexdigest()
            validators = _validators(response.headers)
            return Fetched(
                url, url, status, content_type, body, digest, validators, charset=charset
            )
        peek = await _read_body(response, _ERROR_BODY_PEEK, peek=True)
        reason = classify_block(status, response.headers, peek)
        if reason:
            raise _Failure("blocked", reason, status=status)
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = response.reason_phrase or "error"
        raise _Failure(
            "http",
            f"{status} {phrase}",
            status=status,
            transient=status == 429 or status >= 500,
            retry_after=_parse_retry_after(response.headers.get("retry-after")),
        )
    finally:
        await response.aclose()


async def _attempt(
    client: httpx.AsyncClient,
    url: str,
    policy: FetchPolicy,
    limiter: HostLimiter,
    sent: Validators,
    budget: _Budget,
) -> Fetched:
    """One try: redirects followed by hand, each hop inside its host's politeness slot."""
    chain: list[Redirect] = []
    current = url
    wire = 0.0
    try:
        while True:
            async with limiter.slot(urlsplit(current).hostname or ""):
                started = time.monotonic()
                try:
                    # The deadline catches slow-drip servers that never trip a read timeout.
                    async with asyncio.timeout(budget.remaining()):
                        result = await _exchange(client, current, policy, sent)
                except TimeoutError as exc:
                    raise _Failure(
                        "timeout",
                        f"no complete response from {_where(current)} within the "
                        f"{policy.retry_max_time:g}s retry budget",
                        budget_cut=True,
                    ) from exc
                except httpx.HTTPError as exc:
                    raise _classify_exception(exc, current, policy) from exc
                finally:
                    spent = time.monotonic() - started
                    budget.used += spent
                    wire += spent
            if isinstance(result, Fetched):
                result.url, result.redirects, result.elapsed = url, chain, wire
                return result
            if result.url == url or any(r.url == result.url for r in chain):
                chain.append(result)
                raise _Failure(
                    "http", f"redirect loop at {_where(result.url)}", status=result.status
                )
            chain.append(result)
            if len(chain) > policy.max_redirects:
                msg = f"more than {policy.max_redirects} redirects"
                raise _Failure("http", msg, status=result.status)
            current = result.url
    except _Failure as failure:
        failure.redirects = chain
        raise


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    policy: FetchPolicy,
    limiter: HostLimiter,
    validators: Validators | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Fetched:
    """Fetch `url`, retrying only what a later try could fix, within a bounded total time.

    Raises FetchError. `sleep` is injectable so tests can see the retry waits.
    """
    sent = Validators()
    if validators:
        sent = Validators(normalise_etag(validators.etag), validators.last_modified or None)
    budget = _Budget(policy.retry_max_time)
    failures: list[_Failure] = []

    async def attempt() -> Fetched:
        try:
            return await _attempt(client, url, policy, limiter, sent, budget)
        except _Failure as failure:
            failures.append(failure)
            raise

    def wait(state: RetryCallState) -> float:
        if failures and failures[-1].retry_after is not None:
            return failures[-1].retry_after
        backoff = policy.backoff_base * 2.0 ** (state.attempt_number - 1)
        return backoff + random.uniform(0, policy.backoff_base)

    def stop(state: RetryCallState) -> bool:
        # Give up now rather than start a wait that would overrun the budget.
        over = budget.used + state.upcoming_sleep >= budget.limit
        return state.attempt_number > policy.retries or over

    async def charged_sleep(seconds: float) -> None:
        budget.used += seconds
        await sleep(seconds)

    retrying = AsyncRetrying(
        sleep=charged_sleep,
        stop=stop,
        wait=wait,
        retry=retry_if_exception(lambda exc: isinstance(exc, _Failure) and exc.transient),
        reraise=True,
    )
    try:
        result: Fetched = await retrying(attempt)
        return result
    except _Failure:
        final = failures[-1]
        if final.budget_cut and len(failures) > 1:
            final = failures[-2]  # the server's own answer says more than our deadline
        tries = f" ({len(failures)} attempts)" if len(failures) > 1 else ""
        raise FetchError(
            final.kind,
            final.message + tries,
            url=url,
            status=final.status,
            redirects=[r.url for r in final.redirects],
        ) from final
