"""The benchmark's corpus: N agency-like pages served over HTTP/1.1 from loopback addresses.

Run as its own process (``python bench/corpus.py --n 1000``) so that serving costs none of
the measured process's CPU. It prints one JSON line (``{"port": ..., "hosts": [...]}``) when
it is listening, then serves until killed.

Every page is the real ICE USWDS shell from the test fixtures with its ``<main>`` replaced by a
listing of 25 documents of its own (about 110 KB). Targets are spread round-robin over
127.0.0.2–127.0.0.51, so per-host politeness applies as it does against real agencies; where
those addresses cannot be bound (macOS has only 127.0.0.1), everything is served from
127.0.0.1 and the output says so.

Paths:
    /t/<i>                 target i's listing (version 0, or 1 if i is in the changed set)
    /large                 one 5 MB listing of 20,000 documents
    /_bench/state?...      sets the state; returns it as JSON. Parameters:
        validators=0|1     send ETag/Last-Modified and answer conditional requests with 304
        changed=0|1        serve version 1 of every 10th target (i % 10 == 7): items added
                           to half of them, removed from the other half
        large=0|1          version 1 of /large: 100 items removed, 100 added

The server is asyncio-based raw HTTP/1.1 with keep-alive and no per-request allocations
beyond the response itself, so that the fetch-and-hash floor measures the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from html import escape
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parent.parent
SHELL = ROOT / "tests" / "fixtures" / "ice" / "ice_contact_field-offices_listing.html"
HOSTS = [f"127.0.0.{n}" for n in range(2, 52)]
ITEMS = 25
LARGE_ITEMS = 20_000
CHANGED_EVERY = 10  # every 10th target changes in the "changed" cycle
CHANGED_AT = 7
BASE_DAY = date(2026, 1, 2)
# Last-Modified per version: far enough apart that If-Modified-Since never confuses them.
LAST_MODIFIED = ("Fri, 02 Jan 2026 15:00:00 GMT", "Mon, 05 Jan 2026 15:00:00 GMT")
KINDS = (("xlsx", "Detention Statistics"), ("pdf", "Annual Report"), ("csv", "Removals Data"))


def split_shell() -> tuple[bytes, bytes, bytes]:
    """The fixture around its <title> text and its <main>: (head, middle, tail)."""
    html = SHELL.read_text(encoding="utf-8")
    t0 = html.index("<title>") + len("<title>")
    t1 = html.index("</title>")
    m0 = html.index("<main")
    m1 = html.index("</main>") + len("</main>")
    return html[:t0].encode(), html[t1:m0].encode(), html[m1:].encode()


HEAD, MIDDLE, TAIL = split_shell()


def target_title(i: int) -> str:
    return f"Field Office {i:04d} Publications"


def changed(i: int) -> bool:
    return i % CHANGED_EVERY == CHANGED_AT


def item_numbers(i: int, version: int) -> list[int]:
    """Which items target i lists, newest first. Item k is k*14 days older than item 0."""
    ks = list(range(ITEMS))
    if version and changed(i):
        if (i // CHANGED_EVERY) % 2 == 0:
            ks = [-3, -2, -1, *ks]  # three new publications
        else:
            ks = [k for k in ks if k not in (5, 11)]  # two vanished from the listing
    return ks


def item_html(prefix: str, k: int, offset: int, *, step: int = 14, body: bool = True) -> str:
    """One listed document (~330 bytes with its blurb, ~250 without)."""
    day = BASE_DAY - timedelta(days=step * k + offset)
    ext, kind = KINDS[k % len(KINDS)]
    name = f"FY{day.year % 100:02d}_{kind.replace(' ', '')}{day.strftime('%m%d%Y')}.{ext}"
    href = f"/sites/default/files/documents/{prefix}/{name}"
    title = f"FY{day.year} {kind}, {day.strftime('%B')} {day.day}, {day.year}"
    blurb = (
        f"<p>Book-ins, book-outs and average daily population for the period ending "
        f"{day.strftime('%B %d, %Y')}.</p>"
        if body
        else f'<span class="file-size">({ext.upper()}, {20 + k % 80}.{k % 10} KB)</span>'
    )
    return (
        f'<li class="views-row"><a href="{href}">{escape(title)}</a> '
        f'<time datetime="{day.isoformat()}">{day.strftime("%m/%d/%Y")}</time>{blurb}</li>\n'
    )


def main_html(title: str, items: list[str]) -> str:
    return (
        '<main class="main-content usa-layout-docs usa-section " role="main">\n'
        '  <a id="main-content" tabindex="-1"></a>\n'
        '  <div class="grid-container"><div class="grid-row grid-gap">'
        '<div class="usa-layout-docs__main desktop:grid-col-fill">\n'
        f'  <h1 class="margin-0"><span>{escape(title)}</span></h1>\n'
        '<div id="block-system-main-block" class="block block-system block-system-main-block">'
        "<article><div>\n"
        '<div class="field field--name-body field--type-text-with-summary"><p>'
        "Statistics and reports published by this office under its reporting requirements. "
        "Documents are listed newest first.</p></div>\n"
        '<div class="view-content"><ul class="usa-list publications">\n'
        + "".join(items)
        + "</ul></div>\n</div></article></div>\n"
        '<div class="views-row"><span class="field-content">Updated: '
        '<time datetime="2026-01-02T10:00:00-05:00">01/02/2026</time></span></div>\n'
        "</div></div></div>\n</main>"
    )


@lru_cache(maxsize=4096)
def target_page(i: int, version: int) -> bytes:
    items = [item_html(f"t{i:04d}", k, i % 14) for k in item_numbers(i, version)]
    title = target_title(i)
    return b"".join(
        (HEAD, f"{title} | ICE".encode(), MIDDLE, main_html(title, items).encode(), TAIL)
    )


@lru_cache(maxsize=2)
def large_page(version: int) -> bytes:
    ks = list(range(LARGE_ITEMS))
    if version:
        ks = list(range(-100, 0)) + [k for k in ks if k % 200 != 13]  # 100 new, 100 gone
    items = [item_html(f"all/{k // 1000:+03d}", k, 0, step=1, body=False) for k in ks]
    title = "All Detention Statistics Releases"
    return b"".join(
        (HEAD, f"{title} | ICE".encode(), MIDDLE, main_html(title, items).encode(), TAIL)
    )


class State:
    validators = True
    changed = False
    large = False

    def as_dict(self) -> dict[str, bool]:
        return {"validators": self.validators, "changed": self.changed, "large": self.large}


STATE = State()
_STATUS = {200: "OK", 304: "Not Modified", 404: "Not Found"}


def respond(
    status: int, body: bytes, extra: list[tuple[str, str]], close: bool, ctype: str
) -> bytes:
    lines = [f"HTTP/1.1 {status} {_STATUS[status]}", "Server: bench-corpus"]
    if status != 304:
        lines += [f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in extra]
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if status != 304 else head


def not_modified(headers: dict[str, str], etag: str, last_modified: str) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since only without it."""
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return etag in tags or "*" in tags
    ims = headers.get("if-modified-since")
    if ims:
        try:
            return parsedate_to_datetime(ims) >= parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False
    return False


def answer(method: str, target: str, headers: dict[str, str], close: bool) -> bytes:
    parts = urlsplit(target)
    path = parts.path
    html = "text/html; charset=UTF-8"
    if path == "/_bench/state":
        for key, value in parse_qsl(parts.query):
            if key in ("validators", "changed", "large"):
                setattr(STATE, key, value in ("1", "true", "on"))
        body = json.dumps(STATE.as_dict()).encode()
        return respond(200, body, [], close, "application/json")
    if path.startswith("/t/") and path[3:].isdigit():
        i = int(path[3:])
        version = 1 if (STATE.changed and changed(i)) else 0
        body = target_page(i, version)
        tag = f'"t{i}-v{version}"'
    elif path == "/large":
        version = int(STATE.large)
        body = large_page(version)
        tag = f'"large-v{version}"'
    else:
        return respond(404, b"not found\n", [], close, "text/plain")
    extra: list[tuple[str, str]] = []
    if STATE.validators:
        last_modified = LAST_MODIFIED[version]
        extra = [("ETag", tag), ("Last-Modified", last_modified)]
        if not_modified(headers, tag, last_modified):
            return respond(304, b"", extra, close, html)
    return respond(200, b"" if method == "HEAD" else body, extra, close, html)


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                return
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(length)
            conn = headers.get("connection", "").lower()
            close = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
            writer.write(answer(method, target, headers, close))
            await writer.drain()
            if close:
                return
    except ConnectionError:
        pass
    finally:
        writer.close()


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def usable_hosts() -> list[str]:
    """127.0.0.2–51 where the OS routes all of 127/8 to loopback (Linux), else 127.0.0.1."""
    try:
        with socket.socket() as s:
            s.bind((HOSTS[-1], 0))
        return HOSTS
    except OSError:
        return ["127.0.0.1"]


async def serve(hosts: list[str], port: int, warm: int) -> None:
    servers = []
    for host in hosts:
        servers.append(
            await asyncio.start_server(serve_connection, host, port, backlog=512, limit=65536)
        )
    # Render every page once before anyone measures, so the first cycle costs the server
    # no more than later ones.
    for i in range(warm):
        target_page(i, 0)
        if changed(i):
            target_page(i, 1)
    print(json.dumps({"port": port, "hosts": hosts}), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="targets to pre-render")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--single-host", action="store_true", help="serve from 127.0.0.1 only")
    parser.add_argument("--large", action="store_true", help="pre-render the 5 MB page too")
    args = parser.parse_args()
    hosts = ["127.0.0.1"] if args.single_host else usable_hosts()
    port = args.port or free_port(hosts[0])
    if args.large:
        large_page(0)
        large_page(1)
    try:
        asyncio.run(serve(hosts, port, args.n))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
