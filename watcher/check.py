"""One check of many targets: fetch → extract → store → detect, per target, concurrently.

This module is the only place that knows the order of the stages. Each target's writes go
into one transaction, so a crash leaves either the whole check recorded or none of it.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from watcher import detect
from watcher.compare import Comparison, compare
from watcher.config import Config, Target
from watcher.errors import FetchError
from watcher.extract import extract
from watcher.fetch import FetchPolicy, HostClients, HostLimiter, fetch
from watcher.models import Event, Fetched, Item, Page, Validators
from watcher.store import Store, when


@dataclass
class TargetResult:
    target: Target
    checked_at: datetime
    outcome: str  # first | new | unchanged | not_modified | error
    http_status: int | None = None
    final_url: str | None = None
    error: FetchError | None = None
    comparison: Comparison | None = None
    events: list[Event] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)
    items: int = 0
    newest: Item | None = None
    snapshot_id: int | None = None
    check_id: int | None = None
    duration: float = 0.0

    @property
    def state(self) -> str:
        if self.firing:
            return "alert"
        return "error" if self.outcome == "error" else "ok"


@dataclass
class CheckRun:
    checked_at: datetime
    results: list[TargetResult]

    @property
    def exit_code(self) -> int:
        return 1 if any(r.firing for r in self.results) else 0


def fetch_policy(config: Config) -> FetchPolicy:
    s = config.settings
    return FetchPolicy(
        timeout=s.timeout.total_seconds(),
        user_agent=s.user_agent_string,
        max_body=s.max_body,
        retries=s.retries,
        per_host_concurrency=s.per_host.concurrency,
        per_host_delay=s.per_host.delay.total_seconds(),
    )


# Runs with at least this many targets parse in worker processes; smaller ones in a thread.
POOL_MIN_TARGETS = 16
POOL_MAX_WORKERS = 4  # each worker holds ~50 MB of interpreter and parser
BACKLOG_PER_WORKER = 16  # pages fetched and waiting for a worker before fetching pauses


class PageParser:
    """Where pages are parsed: a thread for small runs, worker processes for large ones.

    Parsing a 110 KB page with BeautifulSoup takes ~20 ms of CPU. In threads, the parses of a
    large run hold the GIL that the event loop needs for fetching and storing: every call that
    releases the GIL there (socket reads, hashing, zlib, fsync) then waits up to the 5 ms
    switch interval to get it back, and a cold check of 1,000 pages took 41 s on 2 cores.
    Worker processes parse in parallel and leave the loop alone. They are started on the
    first page that needs parsing (an unchanged run starts none) with "spawn", which works
    the same on every platform, never forks a threaded process, and leaves the workers
    children of this process, so their CPU and memory are accounted to it.
    """

    def __init__(self, targets: int) -> None:
        self.use_pool = targets >= POOL_MIN_TARGETS
        self._pool: ProcessPoolExecutor | None = None
        self.workers = min(POOL_MAX_WORKERS, os.cpu_count() or 1)
        self.backlog = 0  # pages handed to the pool and not parsed yet
        self._room = asyncio.Event()
        self._room.set()

    async def room(self) -> None:
        """Wait while the workers have a full backlog (the fetch gate, inside a host slot).

        Fetching 1,000 pages takes ~1 s, parsing them ~20 s of CPU: unchecked, fetching ran
        ahead and held every body in memory until a worker was free (+80 MB at 1,000
        targets, growing with the list). Paused fetches hold only their host slot.
        """
        while self.use_pool and self.backlog >= BACKLOG_PER_WORKER * self.workers:
            self._room.clear()
            await self._room.wait()

    async def extract(self, body: bytes, **kwargs: Any) -> Page:
        job = partial(extract, body, **kwargs)
        if self.use_pool:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            self.backlog += 1
            try:
                page: Page = await asyncio.get_running_loop().run_in_executor(self._pool, job)
                return page
            except BrokenProcessPool:
                self.use_pool = False  # a worker was killed (out of memory?): parse here
                self._room.set()
            finally:
                self.backlog -= 1
                if self.backlog < BACKLOG_PER_WORKER * self.workers:
                    self._room.set()
        return await asyncio.to_thread(job)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


async def check_targets(
    config: Config,
    targets: list[Target],
    store: Store,
    *,
    now: datetime,
    limiter: HostLimiter | None = None,
    on_done: Callable[[TargetResult], None] | None = None,
) -> CheckRun:
    """Check ``targets`` once. Hosts proceed independently; each host is polled politely."""
    policy = fetch_policy(config)
    limiter = limiter or HostLimiter(policy.per_host_concurrency, policy.per_host_delay)
    parser = PageParser(len(targets))
    try:
        async with HostClients(policy) as clients:

            async def one(target: Target) -> TargetResult:
                client = clients.get(target.url)
                result = await _check_one(
                    config, target, store, client, policy, limiter, now, parser
                )
                if on_done:
                    on_done(result)
                return result

            results = await asyncio.gather(*(one(t) for t in targets))
    finally:
        parser.close()
    return CheckRun(now, list(results))


async def _check_one(
    config: Config,
    target: Target,
    store: Store,
    client: object,
    policy: FetchPolicy,
    limiter: HostLimiter,
    now: datetime,
    parser: PageParser | None = None,
) -> TargetResult:
    started = time.monotonic()
    result = TargetResult(target=target, checked_at=now, outcome="error")
    previous = store.latest_snapshot(target.id)
    etag, last_modified = store.last_good_validators(target.id) if previous else (None, None)
    fetched: Fetched | None = None
    page: Page | None = None
    try:
        fetched = await fetch(
            client,  # type: ignore[arg-type]
            target.url,
            policy=policy,
            limiter=limiter,
            validators=Validators(etag, last_modified),
            gate=parser.room if parser else None,
        )
    except FetchError as e:
        result.error = e
        result.http_status = e.status
        result.events = detect.events_from_failure(e, target.url, target.label)
    if fetched is not None:
        result.http_status = fetched.status
        result.final_url = fetched.final_url
        unchanged = fetched.not_modified or (
            previous is not None and previous.body_sha == fetched.sha256
        )
        if unchanged:
            result.outcome = "not_modified" if fetched.not_modified else "unchanged"
        else:
            assert fetched.body is not None
            page = await (parser or PageParser(1)).extract(
                fetched.body,
                url=fetched.final_url,
                today=now.date(),
                content_type=fetched.content_type,
                charset=fetched.charset,
                select=target.items.select,
                within=target.items.within,
                sha256=fetched.sha256,
            )
            if previous is None:
                result.outcome = "first"
            else:
                result.outcome = "new"
                result.comparison = compare(store.get_page(previous.page_sha), page)
                result.events = detect.events_from_comparison(result.comparison, target.url)
    blobs = None
    if page is not None and fetched is not None and fetched.body is not None:
        # Off the event loop: gzip and fsync release the GIL, and fetching goes on meanwhile.
        blobs = await asyncio.to_thread(_write_blobs, store, fetched.body, fetched.sha256, page)
    result.duration = time.monotonic() - started
    _record(store, result, fetched, page, previous.id if previous else None, blobs)
    return result


def _write_blobs(store: Store, body: bytes, sha: str | None, page: Page) -> tuple[str, str]:
    return store.put_blob(body, sha), store.put_page(page)


def _record(
    store: Store,
    result: TargetResult,
    fetched: Fetched | None,
    page: Page | None,
    previous_id: int | None,
    blobs: tuple[str, str] | None = None,
) -> None:
    """Blobs are written first (``blobs``), then everything about this check in one
    transaction."""
    target, at = result.target, when(result.checked_at)
    body_sha, page_sha = blobs or (None, None)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO targets (id, url) VALUES (?, ?) "
            "ON CONFLICT(id) DO UPDATE SET url=excluded.url",
            (target.id, target.url),
        )
        snapshot_id = previous_id
        if page is not None and fetched is not None:
            snapshot_id = db.execute(
                "INSERT INTO snapshots (target_id, taken_at, body_sha, page_sha, content_type,"
                " size, final_url, http_status) VALUES (?,?,?,?,?,?,?,?)",
                (
                    target.id,
                    at,
                    body_sha,
                    page_sha,
                    fetched.content_type,
                    len(fetched.body or b""),
                    fetched.final_url,
                    fetched.status,
                ),
            ).lastrowid
        err = result.error
        redirects = (
            [r.url for r in fetched.redirects] if fetched else (err.redirects if err else [])
        )
        result.check_id = db.execute(
            "INSERT INTO checks (target_id, checked_at, outcome, http_status, error_kind,"
            " error_message, final_url, redirects, etag, last_modified, duration, snapshot_id)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                target.id,
                at,
                result.outcome,
                result.http_status,
                err.kind if err else None,
                err.message if err else None,
                result.final_url,
                json.dumps(redirects) if redirects else None,
                fetched.validators.etag if fetched else None,
                fetched.validators.last_modified if fetched else None,
                round(result.duration, 3),
                snapshot_id if fetched else None,
            ),
        ).lastrowid
        result.snapshot_id = snapshot_id
        if page is not None:
            _record_items(db, target.id, page, result.comparison, at)
        elif fetched is not None:
            db.execute(
                "UPDATE items SET last_seen=? WHERE target_id=? AND gone_since IS NULL",
                (at, target.id),
            )
        for event in result.events:
            db.execute(
                "INSERT INTO events (target_id, check_id, at, kind, severity, subject, title,"
                " url, summary, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    target.id,
                    result.check_id,
                    at,
                    event.kind,
                    event.severity,
                    event.subject,
                    event.title,
                    event.url,
                    event.summary,
                    json.dumps(event.data, ensure_ascii=False) if event.data else None,
                ),
            )
    # Until alert confirmation lands, a read error is reported but does not count as firing.
    result.firing = sorted(
        {e.kind for e in result.events if e.severity == "alert" and e.kind != "error"}
    )
    items = store.items(target.id)
    result.items = len(items)
    result.newest = _newest(items)


def _record_items(
    db: object, target_id: str, page: Page, comparison: Comparison | None, at: str
) -> None:
    import sqlite3

    assert isinstance(db, sqlite3.Connection)
    # A moved document keeps the first-seen time of its old URL: it is not a new publication.
    carried = {}
    if comparison is not None:
        for move in comparison.moved:
            row = db.execute(
                "SELECT first_seen FROM items WHERE target_id=? AND key=?",
                (target_id, move.old.key),
            ).fetchone()
            if row:
                carried[move.new.key] = row[0]
    keys = set()
    for item in page.items:
        keys.add(item.key)
        db.execute(
            "INSERT INTO items (target_id, key, title, url, type, date, date_source,"
            " first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(target_id, key) DO UPDATE SET title=excluded.title,"
            " url=excluded.url, type=excluded.type, date=excluded.date,"
            " date_source=excluded.date_source, last_seen=excluded.last_seen, gone_since=NULL",
            (
                target_id,
                item.key,
                item.title,
                item.url,
                item.type,
                item.date.isoformat() if item.date else None,
                item.date_source,
                carried.get(item.key, at),
                at,
            ),
        )
    current = db.execute(
        "SELECT key FROM items WHERE target_id=? AND gone_since IS NULL", (target_id,)
    ).fetchall()
    gone = [(at, target_id, row[0]) for row in current if row[0] not in keys]
    db.executemany("UPDATE items SET gone_since=? WHERE target_id=? AND key=?", gone)


def _newest(items: list[dict[str, object]]) -> Item | None:
    dated = [i for i in items if i.get("date")]
    if not dated:
        return None
    best = max(dated, key=lambda i: (str(i["date"]), str(i["first_seen"])))
    return Item.from_dict({k: best[k] for k in ("key", "title", "url", "type", "date")})
