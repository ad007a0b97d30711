"""The floor: a bare httpx client that only fetches and hashes, as politely as watcher.

``python bench/floor.py URLS_FILE STATE_FILE [--concurrency 2]`` fetches every URL in the file
(one per line) with the same per-host concurrency as watcher, hashes each body with sha256,
and sends the ETag/Last-Modified it saw last time (kept in STATE_FILE) as conditional
headers, so a 304 cycle costs the floor what it costs watcher. It prints one JSON line:
counts by status, bytes read.

Nothing a watcher must do is done here: no parsing, no storage beyond the validators, no
comparison, no report. Its time is the least any Python client could take for the cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx


async def run(
    urls: list[str], state: dict[str, list[str | None]], concurrency: int, one_client: bool
) -> dict:
    """Fetch and hash every URL. Each host gets its own client (its own connection pool)
    unless ``one_client``: httpcore 1.0's pool does bookkeeping per request that grows with
    the square of its connections, and with 100 connections that would dominate the floor."""
    sems: dict[str, asyncio.Semaphore] = {}
    clients: dict[str, httpx.AsyncClient] = {}
    statuses: Counter[int] = Counter()
    total = 0
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    tls = httpx.create_ssl_context()  # one for all clients: each costs ~20 ms to build
    async with AsyncExitStack() as stack:

        async def one(url: str) -> None:
            nonlocal total
            host = urlsplit(url).hostname or ""
            etag, last_modified = state.get(url, [None, None])
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            key = "" if one_client else host
            if key not in clients:
                client = httpx.AsyncClient(timeout=30, limits=limits, verify=tls)
                clients[key] = await stack.enter_async_context(client)
            async with sems.setdefault(host, asyncio.Semaphore(concurrency)):
                response = await clients[key].get(url, headers=headers)
            statuses[response.status_code] += 1
            if response.status_code == 200:
                hashlib.sha256(response.content).hexdigest()
                total += len(response.content)
                state[url] = [response.headers.get("etag"), response.headers.get("last-modified")]

        await asyncio.gather(*(one(u) for u in urls))
    return {"statuses": {str(k): v for k, v in sorted(statuses.items())}, "bytes": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", type=Path)
    parser.add_argument("state", type=Path)
    parser.add_argument("--concurrency", type=int, default=2, help="per host")
    parser.add_argument("--one-client", action="store_true", help="one client for all hosts")
    args = parser.parse_args()
    urls = [u for u in args.urls.read_text().split() if u]
    state = json.loads(args.state.read_text()) if args.state.exists() else {}
    summary = asyncio.run(run(urls, state, args.concurrency, args.one_client))
    args.state.write_text(json.dumps(state))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
