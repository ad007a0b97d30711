"""One check of many targets: fetch → extract → store → detect → alerts, per target.

This module is the only place that knows the order of the stages. Each target's writes go
into one transaction (capture, items, documents, events, alerts and the outbox rows that
announce them), so a crash leaves either the whole check recorded or none of it.
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

from watcher import alerts, cadence, conditions, detect, documents, record
from watcher.compare import Comparison, compare
from watcher.config import Config, Target
from watcher.detect import Changes
from watcher.errors import FetchError
from watcher.extract import extract
from watcher.fetch import FetchPolicy, HostClients, HostLimiter, fetch
from watcher.models import Event, Fetched, Item, Page, Validators
from watcher.resolver import ResolverProbe
from watcher.store import AlertRow, SnapshotRow, Store, when
from watcher.verdict import Verdict, failure_verdict, page_verdict


@dataclass
class TargetResult:
    target: Target
    checked_at: datetime
    outcome: str  # first | new | unchanged | not_modified | missing | error
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
    verdict: Verdict | None = None  # why the page could not be read, or is gone
    alerts: list[AlertRow] = field(default_factory=list)  # open after this check
    due: cadence.DueInfo | None = None
    muted_until: str | None = None

    @property
    def state(self) -> str:
        if self.firing:
            return "alert"
        return "error" if self.outcome in ("error", "missing") else "ok"


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
    probe = ResolverProbe(t.url for t in config.targets)
    try:
        async with HostClients(policy) as clients:

            async def one(target: Target) -> TargetResult:
                result = await _check_one(
                    config, target, store, clients, policy, limiter, now, parser, probe
                )
                if on_done:
                    on_done(result)
                return result

            results = await asyncio.gather(*(one(t) for t in targets))
    finally:
        parser.close()
    return CheckRun(now, list(results))


@dataclass
class _Capture:
    """What the fetch stage handed over, for ``_record``."""

    fetched: Fetched | None = None
    page: Page | None = None
    previous: SnapshotRow | None = None  # the newest capture of any kind
    good: SnapshotRow | None = None  # the newest capture that was the page itself
    docs: list[documents.DocResult] | None = None
    blobs: tuple[str, str] | None = None  # (body sha, page sha), written before _record


async def _check_one(
    config: Config,
    target: Target,
    store: Store,
    clients: HostClients,
    policy: FetchPolicy,
    limiter: HostLimiter,
    now: datetime,
    parser: PageParser | None = None,
    probe: ResolverProbe | None = None,
) -> TargetResult:
    started = time.monotonic()
    result = TargetResult(target=target, checked_at=now, outcome="error")
    cap = _Capture(
        previous=store.latest_snapshot(target.id), good=store.latest_good_snapshot(target.id)
    )
    etag, last_modified = store.last_good_validators(target.id) if cap.previous else (None, None)
    try:
        cap.fetched = await fetch(
            clients.get(target.url),
            target.url,
            policy=policy,
            limiter=limiter,
            validators=Validators(etag, last_modified),
            gate=parser.room if parser else None,
        )
    except FetchError as e:
        result.error = e
        result.http_status = e.status
        down = e.kind == "dns" and probe is not None and await probe.network_down(e.url)
        result.verdict = failure_verdict(e, ever_read=cap.good is not None, network_down=down)
    fetched, previous = cap.fetched, cap.previous
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
            cap.page = await (parser or PageParser(1)).extract(
                fetched.body,
                url=fetched.final_url,
                today=now.date(),
                content_type=fetched.content_type,
                charset=fetched.charset,
                select=target.items.select,
                within=target.items.within,
                sha256=fetched.sha256,
            )
            result.outcome = "first" if cap.good is None else "new"
        result.verdict = _soft_404(target, fetched, cap)
        if result.verdict is not None:
            result.outcome = "missing"
    if target.documents and result.verdict is None:
        listed = cap.page.items if cap.page is not None else _current_items(store, target.id)
        known = documents.stored(store.db, target.id)
        cap.docs = await documents.check_documents(
            clients, documents.document_items(listed), known, policy, limiter
        )
    if cap.page is not None and fetched is not None and fetched.body is not None:
        # Off the event loop: gzip and fsync release the GIL, and fetching goes on meanwhile.
        cap.blobs = await asyncio.to_thread(
            _write_blobs, store, fetched.body, fetched.sha256, cap.page
        )
    result.duration = time.monotonic() - started
    _record(store, config, result, cap)
    return result


def _write_blobs(store: Store, body: bytes, sha: str | None, page: Page) -> tuple[str, str]:
    return store.put_blob(body, sha), store.put_page(page)


def _soft_404(target: Target, fetched: Fetched, cap: _Capture) -> Verdict | None:
    """A 200 that is not the page: a redirect home or away, or a page saying it is gone.
    A page we have never read cannot disappear; that is an error (a wrong URL in the config)."""
    verdict = page_verdict(target.url, fetched.final_url, cap.page)
    if verdict is None and cap.page is None and cap.previous and cap.previous.verdict:
        stored = json.loads(cap.previous.verdict)  # the same body as last time, still missing
        if stored.get("reason") == "says_missing":
            verdict = Verdict(True, "says_missing", stored["summary"], {})
    if verdict is not None and cap.good is None:
        return Verdict(False, "missing", verdict.summary + "; it has never been read", verdict.data)
    return verdict


def _current_items(store: Store, target_id: str) -> list[Item]:
    return [
        Item.from_dict({k: row[k] for k in ("key", "title", "url", "type", "date")})
        for row in store.items(target_id)
    ]


def _record(store: Store, config: Config, result: TargetResult, cap: _Capture) -> None:
    """Blobs are written first (``cap.blobs``), then everything about this check in one
    transaction."""
    target, now, at = result.target, result.checked_at, when(result.checked_at)
    fetched, page = cap.fetched, cap.page
    confirm = config.confirm_of(target)
    body_sha, page_sha = cap.blobs or (None, None)
    before: Page | None = None
    if page is not None and result.outcome == "new" and cap.good is not None:
        before = store.get_page(cap.good.page_sha)
    readable = result.outcome in conditions.READABLE
    with store.transaction() as db:
        db.execute(
            "INSERT INTO targets (id, url) VALUES (?, ?) "
            "ON CONFLICT(id) DO UPDATE SET url=excluded.url",
            (target.id, target.url),
        )
        changes: Changes | None = None
        if before is not None and page is not None:
            result.comparison = compare(before, page)
            changes = record.classify(db, target.id, result.comparison, before, page, confirm)
        replaced = (
            result.outcome == "new"
            and page is not None
            and page.is_document
            and cap.good is not None
            and cap.good.body_sha != body_sha
        )
        snapshot_id = cap.previous.id if cap.previous else None
        if page is not None and fetched is not None:
            snapshot_id = record.insert_snapshot(
                db, result, fetched, body_sha, page_sha, changes, replaced
            )
        result.snapshot_id = snapshot_id
        result.check_id = record.insert_check(db, result, fetched, snapshot_id)
        events: list[Event] = []
        if result.outcome in ("first", "new") and page is not None:
            record.record_items(db, target.id, page, changes, at, snapshot_id)
            if changes is not None:
                events += detect.events_from_changes(changes, target.url)
        elif readable:
            db.execute(
                "UPDATE items SET last_seen=? WHERE target_id=? AND gone_since IS NULL",
                (at, target.id),
            )
        if replaced and page is not None:
            events += record.replaced(db, target, page, cap.good, fetched, at)
        facets = record.baselines(db, target, page, fetched, confirm) if readable else None
        doc_obs = None
        if cap.docs is not None:
            doc_events, doc_obs = documents.record(db, target, cap.docs, at=at, confirm=confirm)
            events += doc_events
        result.due = cadence.due(db, config, target, now)
        assessment = conditions.assess(
            db,
            config,
            target,
            now=now,
            verdict=result.verdict,
            facets=facets,
            documents=doc_obs,
            due=result.due,
        )
        ctx = alerts.Context(target, now, confirm, config.notify.slack, snapshot_id)
        applied = alerts.apply(db, ctx, assessment)
        events += applied.events
        for event in events:
            record.insert_event(db, target.id, result.check_id, at, event)
        result.events = events
        result.firing = applied.firing
        result.alerts = applied.open
        result.muted_until = alerts.muted_until(db, target.id)
    result.items = store.count_items(target.id)
    result.newest = store.newest_item(target.id)
