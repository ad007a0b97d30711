"""fetch tells a changed page from an unreachable, blocked or runaway one, without false alarms.

Every test talks to a real HTTP server on 127.0.0.1 (127.0.0.2 for a second host). Retry waits
go through a fake sleep that records them, so no test sleeps for a backoff.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import itertools
import socket
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import Handler, PageServer, endless, send, sequence, slow, unused_port
from watcher.errors import FetchError
from watcher.fetch import (
    FetchPolicy,
    HostLimiter,
    classify_block,
    fetch,
    make_client,
    normalise_etag,
)
from watcher.models import Fetched, Redirect, Validators

FIXTURES = Path(__file__).parent / "fixtures"

# As Akamai serves it: entity-encoded, with a line holding one space.
AKAMAI_403 = (
    b"<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n \n"
    b"You don't have permission to access \"http&#58;&#47;&#47;www&#46;ice&#46;gov&#47;detain"
    b'&#47;detention&#45;management" on this server.<P>\n'
    b"Reference&#32;&#35;18&#46;6f2d3217&#46;1713200000&#46;1a2b3c4d\n"
    b"<P>https&#58;&#47;&#47;errors&#46;edgesuite&#46;net&#47;18&#46;6f2d3217&#46;1713200000"
    b"&#46;1a2b3c4d</P>\n</BODY>\n</HTML>\n"
)
AKAMAI_REF = "18.6f2d3217.1713200000.1a2b3c4d"
CLOUDFLARE_CHALLENGE = b"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="390"></head><body><div class="main-wrapper">
<noscript>Enable JavaScript and cookies to continue</noscript></div>
<script>(function(){window._cf_chl_opt={cvId: '3',cZone: "www.example.gov",cType: 'managed'};
var a = document.createElement('script');
a.src = '/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=8f1e2d3c4b5a6978';
}());</script></body></html>"""


class Waits:
    """A fake sleep: records what fetch asked to wait, and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def _fetch(
    url: str,
    policy: FetchPolicy,
    validators: Validators | None,
    sleep: Waits,
    client: httpx.AsyncClient | None = None,
) -> Fetched:
    limiter = HostLimiter(policy.per_host_concurrency, policy.per_host_delay)
    async with client or make_client(policy) as c:
        return await fetch(
            c, url, policy=policy, limiter=limiter, validators=validators, sleep=sleep
        )


def run(
    url: str,
    policy: FetchPolicy | None = None,
    validators: Validators | None = None,
    sleep: Waits | None = None,
    client: httpx.AsyncClient | None = None,
) -> Fetched:
    return asyncio.run(_fetch(url, policy or make_policy(), validators, sleep or Waits(), client))


def fail(
    url: str,
    policy: FetchPolicy | None = None,
    sleep: Waits | None = None,
    client: httpx.AsyncClient | None = None,
) -> FetchError:
    with pytest.raises(FetchError) as info:
        run(url, policy, sleep=sleep, client=client)
    assert "\n" not in str(info.value)  # messages are one line
    return info.value


def make_policy(**changes: Any) -> FetchPolicy:
    """Test policy: no politeness delay (it would space retries out by real seconds)."""
    return FetchPolicy(**{"timeout": 5.0, "per_host_delay": 0.0, **changes})


@pytest.fixture(scope="module")
def shared_server() -> Iterator[PageServer]:
    # One server for the module: stopping one costs half a second of polling.
    with PageServer() as s:
        yield s


@pytest.fixture
def server(shared_server: PageServer) -> PageServer:
    with shared_server.lock:
        shared_server.routes.clear()
        shared_server.requests.clear()
        shared_server.max_active = shared_server.active
    return shared_server


# --- success -------------------------------------------------------------------------


def test_200_records_body_hash_media_type_and_charset(server: PageServer) -> None:
    body = "<html><title>Detention Management</title></html>"
    server.set("/d", body, headers={"Content-Type": 'Text/HTML; Charset="UTF-8"'})
    got = run(server.url("/d"))
    assert got.status == 200 and not got.not_modified
    assert got.body == body.encode()
    assert got.sha256 == hashlib.sha256(body.encode()).hexdigest()
    assert (got.content_type, got.charset) == ("text/html", "utf-8")
    assert got.url == got.final_url == server.url("/d")
    assert got.redirects == [] and got.elapsed > 0
    sent = server.hits("/d")[0].headers
    assert sent["user-agent"] == FetchPolicy().user_agent
    assert sent["accept-encoding"] == "gzip, deflate"


def test_latin1_body_without_charset_passes_through_unchanged(server: PageServer) -> None:
    body = "<p>Año fiscal — Büro</p>".encode("latin-1", errors="replace")
    server.set("/l", body, headers={"Content-Type": "text/html"})
    got = run(server.url("/l"))
    assert got.body == body and got.charset is None


def test_make_client_never_follows_redirects_itself() -> None:
    client = make_client(FetchPolicy(timeout=7.0, user_agent="ua/1"))
    assert client.follow_redirects is False
    assert client.timeout == httpx.Timeout(7.0)
    assert client.headers["user-agent"] == "ua/1"
    asyncio.run(client.aclose())


# --- redirects -----------------------------------------------------------------------


def test_redirect_chain_is_recorded_and_relative_locations_resolved(server: PageServer) -> None:
    server.redirect("/foia", server.url("/foia/library"), status=301)
    server.redirect("/foia/library", "index?page=0", status=302)  # relative to /foia/
    server.set("/foia/index", "<html>library</html>")
    got = run(server.url("/foia"))
    assert got.redirects == [
        Redirect(301, server.url("/foia/library")),
        Redirect(302, server.url("/foia/index?page=0")),
    ]
    assert got.url == server.url("/foia")
    assert got.final_url == server.url("/foia/index?page=0")
    assert got.body == b"<html>library</html>"


def test_redirect_loop_is_an_http_error_with_the_chain(server: PageServer) -> None:
    server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    err = fail(server.url("/a"))
    assert err.kind == "http" and "redirect loop" in err.message
    assert err.redirects == [server.url(p) for p in ("/b", "/a", "/b", "/a")]
    assert len(server.hits("/a")) == 2  # a loop is not transient: no retry


def test_a_cookie_redirect_to_the_same_url_is_followed(server: PageServer) -> None:
    # WAFs set a cookie and send the client back to the URL it asked for.
    def handle(h: BaseHTTPRequestHandler) -> None:
        if "visited=1" in (h.headers.get("Cookie") or ""):
            send(h, 200, b"<html>page</html>")
        else:
            send(h, 302, b"", {"Location": "/page", "Set-Cookie": "visited=1; Path=/"})

    server.set_handler("/page", handle)
    got = run(server.url("/page"))
    assert got.body == b"<html>page</html>"
    assert got.redirects == [Redirect(302, server.url("/page"))]


def test_more_redirects_than_allowed_is_an_http_error(server: PageServer) -> None:
    for i in range(5):
        server.redirect(f"/r{i}", f"/r{i + 1}", status=307)
    server.set("/r5", "end")
    err = fail(server.url("/r0"), make_policy(max_redirects=3))
    assert err.kind == "http" and "more than 3 redirects" in str(err)
    assert len(err.redirects) == 4
    assert run(server.url("/r0"), make_policy(max_redirects=5)).body == b"end"


@pytest.mark.parametrize("location", ["mailto:desk@example.org", "ftp://x/", "http://[bad/"])
def test_an_unusable_redirect_location_is_an_http_error(server: PageServer, location: str) -> None:
    server.redirect("/r", location)
    err = fail(server.url("/r"))
    assert err.kind == "http" and "redirect" in str(err) and len(server.hits("/r")) == 1


@pytest.mark.parametrize("url", ["ftp://www.ice.gov/", "www.ice.gov/foia", "http://[x"])
def test_an_unusable_url_is_an_http_error(url: str) -> None:
    assert fail(url).kind == "http"


# --- conditional requests ------------------------------------------------------------


def _conditional(etag: str, last_modified: str) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        headers = {"ETag": etag, "Last-Modified": last_modified}
        if h.headers.get("If-None-Match") == '"v1"' or (
            h.headers.get("If-Modified-Since") == last_modified
        ):
            send(h, 304, b"", headers)
        else:
            send(h, 200, b"<html>v1</html>", headers)

    return handle


def test_304_sends_quoted_etag_when_the_server_sent_it_unquoted(server: PageServer) -> None:
    # EOIR's case-data zip sometimes comes back with its ETag unquoted.
    lm = "Tue, 14 Nov 2023 17:02:11 GMT"
    server.set_handler("/zip", _conditional("v1", lm))
    first = run(server.url("/zip"))
    assert first.validators == Validators(etag='"v1"', last_modified=lm)
    again = run(server.url("/zip"), validators=first.validators)
    assert again.status == 304 and again.not_modified
    assert again.body is None and again.sha256 is None
    assert again.validators == first.validators
    assert server.hits("/zip")[1].headers["if-none-match"] == '"v1"'
    # Validators stored from an older, unquoted capture are sent quoted too.
    run(server.url("/zip"), validators=Validators(etag="v1"))
    assert server.hits("/zip")[2].headers["if-none-match"] == '"v1"'


def test_if_modified_since_is_last_modified_verbatim(server: PageServer) -> None:
    lm = "Sat, 04 Feb 2026 13:51:38 GMT"
    server.set_handler("/p", _conditional("other", lm))
    got = run(server.url("/p"), validators=Validators(last_modified=lm))
    assert got.status == 304 and got.validators.last_modified == lm
    assert server.hits("/p")[0].headers["if-modified-since"] == lm
    assert "if-none-match" not in server.hits("/p")[0].headers


def test_no_validators_are_invented_from_the_date_header(server: PageServer) -> None:
    server.set("/n", "x")  # BaseHTTPRequestHandler always sends Date
    assert run(server.url("/n")).validators == Validators()


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("abc", '"abc"'),
        ('"abc"', '"abc"'),
        ('W/"abc"', 'W/"abc"'),
        ("W/abc", 'W/"abc"'),
        (' "abc" ', '"abc"'),
        ("", None),
        (None, None),
    ],
)
def test_normalise_etag(raw: str | None, want: str | None) -> None:
    assert normalise_etag(raw) == want


# --- retries ---------------------------------------------------------------------------

OK = (200, b"<html>ok</html>", {})


def test_503s_are_retried_with_exponential_backoff_and_jitter(server: PageServer) -> None:
    unavailable = (503, b"busy", {})
    server.set_handler("/s", sequence(unavailable, unavailable, unavailable, OK))
    sleep = Waits()
    got = run(server.url("/s"), sleep=sleep)
    assert got.body == b"<html>ok</html>"
    assert len(server.hits("/s")) == 4
    assert [int(w) for w in sleep.waits] == [1, 2, 4]  # base * 2**n plus < base of jitter


def test_429_retry_after_seconds_is_honoured(server: PageServer) -> None:
    server.set_handler("/r", sequence((429, b"slow down", {"Retry-After": "7"}), OK))
    sleep = Waits()
    assert run(server.url("/r"), sleep=sleep).status == 200
    assert sleep.waits == [7.0]


def test_retry_after_http_date_is_honoured(server: PageServer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.set_handler("/r", sequence((503, b"", {"Retry-After": when}), OK))
    sleep = Waits()
    run(server.url("/r"), sleep=sleep)
    assert len(sleep.waits) == 1 and 28 <= sleep.waits[0] <= 30


def test_retry_after_beyond_the_budget_gives_up_at_once(server: PageServer) -> None:
    server.set("/r", "later", status=503, headers={"Retry-After": "120"})
    sleep = Waits()
    err = fail(server.url("/r"), sleep=sleep)
    assert (err.kind, err.status, str(err)) == ("http", 503, "http: 503 Service Unavailable")
    assert sleep.waits == [] and len(server.hits("/r")) == 1


def test_retries_stop_when_the_time_budget_is_spent(server: PageServer) -> None:
    server.set("/r", "busy", status=503, headers={"Retry-After": "4"})
    sleep = Waits()
    policy = make_policy(retries=10, retry_max_time=10.0)
    err = fail(server.url("/r"), policy, sleep=sleep)
    assert sleep.waits == [4.0, 4.0]  # a third wait would pass 10 s
    assert str(err) == "http: 503 Service Unavailable (3 attempts)"
    # Without Retry-After, backoff waits are held to the budget the same way.
    server.set("/b", "busy", status=502)
    sleep = Waits()
    policy = make_policy(retries=10, retry_max_time=5.5)
    assert "(3 attempts)" in str(fail(server.url("/b"), policy, sleep=sleep))
    assert len(sleep.waits) == 2 and sum(sleep.waits) < 5.5


@pytest.mark.parametrize("status", [404, 410, 400])
def test_client_errors_are_not_retried(server: PageServer, status: int) -> None:
    server.set("/gone", "<html>Page Not Found</html>", status=status)
    sleep = Waits()
    err = fail(server.url("/gone?token=SECRET"), sleep=sleep)
    assert err.kind == "http" and err.status == status
    assert str(err) == {404: "http: 404 Not Found", 410: "http: 410 Gone"}.get(
        status, "http: 400 Bad Request"
    )
    assert err.url == server.url("/gone?token=SECRET")
    assert len(server.requests) == 1 and sleep.waits == []


# --- timeouts and runaway bodies -----------------------------------------------------


def test_a_server_slower_than_the_timeout_is_a_timeout(server: PageServer) -> None:
    server.set_handler("/slow", slow(1.0))
    sleep = Waits()
    err = fail(server.url("/slow"), make_policy(timeout=0.3, retries=1), sleep=sleep)
    assert err.kind == "timeout" and err.status is None
    assert str(err) == f"timeout: no response from 127.0.0.1:{server.port} within 0.3s (2 attempts)"
    assert len(sleep.waits) == 1


def test_a_dripping_body_is_cut_off_by_the_retry_budget(server: PageServer) -> None:
    def drip(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        for _ in range(50):  # never trips a 5 s read timeout, never ends in time
            h.wfile.write(b"<p>")
            h.wfile.flush()
            time.sleep(0.05)

    server.set_handler("/drip", drip)
    started = time.monotonic()
    err = fail(server.url("/drip"), make_policy(retry_max_time=0.4))
    assert err.kind == "timeout" and "0.4s retry budget" in str(err)
    assert time.monotonic() - started < 1.5


def test_an_endless_body_fails_as_too_large(server: PageServer) -> None:
    server.set_handler("/forever", endless())
    err = fail(server.url("/forever"), make_policy(max_body=1024 * 1024))
    assert (err.kind, err.status) == ("too_large", 200)
    assert str(err) == "too_large: body exceeds 1 MB limit"


def test_content_length_over_the_cap_is_rejected_before_reading(server: PageServer) -> None:
    server.set("/big", b"x" * 5000)
    err = fail(server.url("/big"), make_policy(max_body=4096))
    assert str(err) == "too_large: body exceeds 4 KB limit (Content-Length 5000)"


# --- compression ---------------------------------------------------------------------


def test_a_gzip_bomb_fails_without_inflating_past_the_cap(server: PageServer) -> None:
    bomb = gzip.compress(bytes(10 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 20_000
    server.set("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    cap = 1024 * 1024
    server.set("/warm", "x")
    run(server.url("/warm"))  # first-use imports are not what we measure
    tracemalloc.start()
    try:
        err = fail(server.url("/bomb"), make_policy(max_body=cap))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.kind == "too_large"
    assert peak < cap + 512 * 1024  # the 10 MB never existed, nor a second copy of the cap


def test_gzip_body_is_decoded_and_hashed_decoded(server: PageServer) -> None:
    page = (FIXTURES / "ice" / "ice_node_62001.html").read_bytes()
    server.set("/g", gzip.compress(page), headers={"Content-Encoding": "gzip"})
    got = run(server.url("/g"))
    assert got.body == page and got.sha256 == hashlib.sha256(page).hexdigest()


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_both_wrapped_and_raw(server: PageServer, wbits: int) -> None:
    page = b"<html>" + b"FY25_detentionStats09252025.xlsx " * 500 + b"</html>"
    packer = zlib.compressobj(wbits=wbits)
    server.set(
        "/z", packer.compress(page) + packer.flush(), headers={"Content-Encoding": "deflate"}
    )
    assert run(server.url("/z")).body == page


def test_unknown_or_truncated_encoding_is_an_http_error(server: PageServer) -> None:
    server.set("/br", b"\x1b\x00", headers={"Content-Encoding": "br"})
    assert "unsupported Content-Encoding 'br'" in str(fail(server.url("/br")))
    cut = gzip.compress(b"<html>" * 1000)[:-20]
    server.set("/cut", cut, headers={"Content-Encoding": "gzip"})
    err = fail(server.url("/cut"))
    assert err.kind == "http" and "truncated" in str(err)


# --- firewalls -------------------------------------------------------------------------


def test_akamai_access_denied_is_blocked_with_its_reference(server: PageServer) -> None:
    server.set("/d", AKAMAI_403, status=403, headers={"Server": "AkamaiGHost"})
    sleep = Waits()
    err = fail(server.url("/d"), sleep=sleep)
    assert (err.kind, err.status) == ("blocked", 403)
    assert str(err) == f'blocked: Akamai "Access Denied" (reference #{AKAMAI_REF})'
    assert len(server.hits("/d")) == 1 and sleep.waits == []


def test_a_block_reached_by_redirect_is_blocked(server: PageServer) -> None:
    server.redirect("/stats", "/denied")
    server.set("/denied", AKAMAI_403)  # served as 200 at the end of the redirect
    err = fail(server.url("/stats"))
    assert err.kind == "blocked" and AKAMAI_REF in str(err)
    assert err.redirects == [server.url("/denied")]


@pytest.mark.parametrize("status", [403, 503])
def test_cloudflare_challenge_is_blocked_and_not_retried(server: PageServer, status: int) -> None:
    server.set("/c", CLOUDFLARE_CHALLENGE, status=status, headers={"cf-ray": "8f1e2d3c-IAD"})
    err = fail(server.url("/c"))
    assert err.kind == "blocked" and "Cloudflare challenge" in str(err)
    assert len(server.hits("/c")) == 1


def test_a_plain_403_is_an_http_error(server: PageServer) -> None:
    server.set(
        "/f", "<html><title>Forbidden</title><p>Directory listing denied</p></html>", status=403
    )
    err = fail(server.url("/f"))
    assert (err.kind, err.status, str(err)) == ("http", 403, "http: 403 Forbidden")
    assert len(server.hits("/f")) == 1


def test_classify_block_cases() -> None:
    assert (
        classify_block(200, {}, AKAMAI_403) == f'Akamai "Access Denied" (reference #{AKAMAI_REF})'
    )
    assert classify_block(200, {}, CLOUDFLARE_CHALLENGE) is not None
    attention = b"<title>Attention Required! | Cloudflare</title>"
    assert classify_block(403, {}, attention) == 'Cloudflare "Attention Required!" block'
    assert classify_block(403, {"CF-RAY": "8f1e"}, b"nope") == "Cloudflare 403 (cf-ray 8f1e)"
    assert classify_block(429, {}, b'<div class="g-recaptcha"></div>') == "captcha page"
    # An ordinary page with a contact-form captcha or Cloudflare's injected script is fine.
    form = b'<title>Contact ICE</title><div class="g-recaptcha"></div>'
    injected = b"<title>FOIA</title><script src='/cdn-cgi/challenge-platform/scripts/jsd/main.js'>"
    assert classify_block(200, {}, form) is None
    assert classify_block(200, {"cf-ray": "1"}, injected) is None
    assert classify_block(404, {}, AKAMAI_403) is None


def test_real_agency_pages_are_never_taken_for_blocks() -> None:
    pages = sorted(FIXTURES.rglob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        assert classify_block(200, {}, page.read_bytes()) is None, page.name


# --- network failures ----------------------------------------------------------------


def test_connection_refused_is_connect_and_retried() -> None:
    sleep = Waits()
    port = unused_port()
    err = fail(f"http://127.0.0.1:{port}/x?key=SECRET", make_policy(retries=2), sleep=sleep)
    assert err.kind == "connect" and err.status is None
    assert str(err).startswith(f"connect: cannot connect to 127.0.0.1:{port}")
    assert str(err).endswith("(3 attempts)") and "SECRET" not in str(err)
    assert len(sleep.waits) == 2


def test_an_unresolvable_name_is_dns_and_not_retried() -> None:
    async def resolves_nowhere() -> bool:
        try:
            await asyncio.wait_for(
                asyncio.to_thread(socket.getaddrinfo, "nonexistent.invalid", 80), 3
            )
        except socket.gaierror:
            return True
        except TimeoutError:
            return False
        return False

    if not asyncio.run(resolves_nowhere()):
        pytest.skip("the sandbox resolver does not fail fast on .invalid")
    sleep = Waits()
    err = fail("http://nonexistent.invalid/foia", sleep=sleep)
    assert str(err) == "dns: nonexistent.invalid does not resolve"
    assert sleep.waits == []


def test_dns_is_recognised_from_the_cause_of_a_connect_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    err = fail("http://www.ice.gov/foia/library", client=client)
    assert err.kind == "dns" and "www.ice.gov" in str(err)


def test_a_tls_failure_is_tls(server: PageServer) -> None:
    server.set("/", "plain http")
    err = fail(f"https://127.0.0.1:{server.port}/", make_policy(retries=0))
    assert err.kind == "tls" and "TLS handshake" in str(err)


# --- politeness ------------------------------------------------------------------------


async def _many(urls: list[str], limiter: HostLimiter) -> list[Fetched]:
    async with make_client(make_policy()) as client:
        jobs = [
            fetch(client, u, policy=make_policy(), limiter=limiter, sleep=Waits()) for u in urls
        ]
        return list(await asyncio.gather(*jobs))


def test_at_most_concurrency_requests_per_host() -> None:
    with PageServer() as own:  # its own server: max_active must not see other tests
        for i in range(6):
            own.set_handler(f"/p{i}", slow(0.15))
        got = asyncio.run(_many([own.url(f"/p{i}") for i in range(6)], HostLimiter(2, 0)))
        assert len(got) == 6 and own.max_active == 2


def test_request_starts_to_a_host_are_spaced_by_the_delay(server: PageServer) -> None:
    server.set("/q", "q")
    asyncio.run(_many([server.url("/q")] * 3, HostLimiter(3, 0.15)))
    starts = [r.at for r in server.hits("/q")]
    assert all(b - a >= 0.14 for a, b in itertools.pairwise(starts))


def test_a_slow_host_does_not_hold_up_another_host() -> None:
    server = PageServer()  # its own: the slow handlers outlive the test
    server.start()
    for i in range(20):
        server.set_handler(f"/p{i}", slow(0.5))
    with PageServer("127.0.0.2") as other:
        other.set("/quick", "quick")

        async def go() -> tuple[Fetched, float, int]:
            limiter = HostLimiter(2, 0)
            async with make_client(make_policy()) as client:
                queue = [
                    asyncio.create_task(
                        fetch(client, server.url(f"/p{i}"), policy=make_policy(), limiter=limiter)
                    )
                    for i in range(20)
                ]
                await asyncio.sleep(0.05)  # let the slow host's queue form
                started = time.monotonic()
                quick = await fetch(
                    client, other.url("/quick"), policy=make_policy(), limiter=limiter
                )
                took = time.monotonic() - started
                finished = sum(task.done() for task in queue)
                for task in queue:
                    task.cancel()
                await asyncio.gather(*queue, return_exceptions=True)
                return quick, took, finished

        quick, took, finished = asyncio.run(go())
    assert quick.body == b"quick"
    assert took < 0.4 and finished == 0  # 20 URLs at 2 x 0.5 s would take 5 s
    server.stop()
    assert server.max_active == 2
