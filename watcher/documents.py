"""``documents: true``: watch each document a page links to, not only the link.

A link can stay on the page while the file behind it is gone (404), cut down, or replaced
with new content at the same URL. ICE has replaced a detention-statistics spreadsheet in
place with newer data: that is a new publication, and it counts for ``stopped``.

Each document costs one polite request per check: a HEAD first, and when the server's
validators show the file is unchanged, nothing more; otherwise a conditional GET. Only the
GET's verdict can say a document is gone (some servers answer HEAD with 404 or 405 for files
that are there).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from watcher.alerts import Observation
from watcher.conditions import step
from watcher.config import Target
from watcher.detect import count, replaced_event, titles
from watcher.errors import FetchError
from watcher.fetch import FetchPolicy, HostClients, HostLimiter, fetch, normalise_etag
from watcher.models import Event, Item, Validators
from watcher.urls import file_name
from watcher.verdict import GONE_STATUSES


@dataclass
class DocResult:
    item: Item
    status: int | None = None  # 200 (read or unchanged), 404/410 (gone), None (unreadable)
    error: FetchError | None = None
    sha256: str | None = None  # None when unchanged or too large to hash
    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    unchanged: bool = False


def document_items(items: list[Item]) -> list[Item]:
    """The linked files worth watching: documents, not other HTML pages."""
    seen: dict[str, Item] = {}
    for item in items:
        if item.type != "html":
            seen.setdefault(item.key, item)
    return list(seen.values())


def stored(db: sqlite3.Connection, target_id: str) -> dict[str, dict[str, Any]]:
    rows = db.execute("SELECT * FROM documents WHERE target_id=?", (target_id,)).fetchall()
    return {r["key"]: dict(r) for r in rows}


async def check_documents(
    clients: HostClients,
    items: list[Item],
    known: dict[str, dict[str, Any]],
    policy: FetchPolicy,
    limiter: HostLimiter,
) -> list[DocResult]:
    jobs = (_one(clients.get(i.url), i, known.get(i.key), policy, limiter) for i in items)
    return list(await asyncio.gather(*jobs))


async def _one(
    client: httpx.AsyncClient,
    item: Item,
    row: dict[str, Any] | None,
    policy: FetchPolicy,
    limiter: HostLimiter,
) -> DocResult:
    result = DocResult(item)
    head = await _head(client, item.url, limiter)
    if head is not None and row is not None and row.get("status") == 200:
        etag = normalise_etag(head.headers.get("etag"))
        length = head.headers.get("content-length")
        same_tag = etag is not None and etag == row.get("etag")
        same_date = (
            head.headers.get("last-modified") is not None
            and head.headers.get("last-modified") == row.get("last_modified")
            and length is not None
            and int(length) == row.get("size")
        )
        if head.status_code in (200, 304) and (same_tag or same_date):
            result.status, result.unchanged, result.size = 200, True, row.get("size")
            result.etag, result.last_modified = row.get("etag"), row.get("last_modified")
            return result
    validators = Validators(row.get("etag"), row.get("last_modified")) if row else Validators()
    try:
        got = await fetch(client, item.url, policy=policy, limiter=limiter, validators=validators)
    except FetchError as e:
        if e.kind == "http" and e.status in GONE_STATUSES:
            result.status = e.status
        else:
            result.error = e
            if e.kind == "too_large" and head is not None and head.status_code == 200:
                # Too big to hash: judge it by what the server says about it.
                result.status, result.error = 200, None
                length = head.headers.get("content-length")
                result.size = int(length) if length and length.isdigit() else None
                result.etag = normalise_etag(head.headers.get("etag"))
                result.last_modified = head.headers.get("last-modified")
        return result
    result.status = 200
    result.etag, result.last_modified = got.validators.etag, got.validators.last_modified
    if got.not_modified:
        result.unchanged, result.size = True, row.get("size") if row else None
    else:
        result.sha256, result.size = got.sha256, len(got.body or b"")
    return result


async def _head(client: httpx.AsyncClient, url: str, limiter: HostLimiter) -> httpx.Response | None:
    try:
        async with limiter.slot(urlsplit(url).hostname or ""):
            return await client.request("HEAD", url)
    except (httpx.HTTPError, httpx.InvalidURL):
        return None


def record(
    db: sqlite3.Connection,
    target: Target,
    results: list[DocResult],
    *,
    at: str,
    confirm: int,
) -> tuple[list[Event], list[Observation]]:
    """Store what each document answered; return the info events (replaced in place) and
    the document conditions (gone, shrunk) for every document the page lists now."""
    known = stored(db, target.id)
    events: list[Event] = []
    gone: list[dict[str, Any]] = []
    shrunk: list[dict[str, Any]] = []
    for r in results:
        row = known.get(r.item.key) or {}
        status = r.status if r.status is not None else row.get("status")
        base, recent = row.get("baseline_size"), json.loads(row.get("recent_sizes") or "[]")
        changed_at = row.get("changed_at")
        size = r.size if r.size is not None else row.get("size")
        sha = r.sha256 or row.get("sha256")
        if r.status == 200 and not r.unchanged and row.get("status") is not None:
            replaced = (
                r.sha256 != row.get("sha256")
                if r.sha256 and row.get("sha256")
                else (r.etag != row.get("etag") or r.size != row.get("size"))
            )
            if replaced:
                changed_at = at
                name = file_name(r.item.url) or r.item.title
                db.execute(
                    "INSERT INTO replacements (target_id, key, url, title, at, size_before,"
                    " size_after) VALUES (?,?,?,?,?,?,?)",
                    (target.id, r.item.key, r.item.url, name, at, row.get("size"), r.size),
                )
                events.append(
                    replaced_event(
                        name,
                        r.item.url,
                        {"size": [row.get("size"), r.size], "etag": [row.get("etag"), r.etag]},
                    )
                )
        if r.status == 200 and size is not None:
            before = base
            base, recent, is_shrunk = step(base, recent, size, target.shrink.size, confirm)
            if is_shrunk and before is not None:
                shrunk.append(_doc(r.item, row, {"size": [int(before), int(size)]}))
        elif (
            status == 200
            and base is not None
            and size is not None
            and target.shrink.size.exceeded(base, size)
        ):
            shrunk.append(_doc(r.item, row, {"size": [int(base), int(size)]}))
        gone_since = row.get("gone_since")
        if status in GONE_STATUSES:
            gone_since = gone_since or at
            # A link that never worked is a broken link, not a document that disappeared.
            if row.get("ok_at"):
                gone.append(_doc(r.item, row, {"status": status}))
        elif r.status == 200:
            gone_since = None
        db.execute(
            "INSERT OR REPLACE INTO documents (target_id, key, url, title, etag, last_modified,"
            " size, sha256, status, error, checked_at, ok_at, changed_at, gone_since,"
            " baseline_size, recent_sizes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                target.id,
                r.item.key,
                r.item.url,
                r.item.title,
                r.etag or row.get("etag"),
                r.last_modified or row.get("last_modified"),
                size,
                sha,
                status,
                str(r.error) if r.error else None,
                at,
                at if r.status == 200 else row.get("ok_at"),
                changed_at,
                gone_since,
                base,
                json.dumps(recent),
            ),
        )
    return events, _conditions(gone, shrunk)


def _doc(item: Item, row: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": item.key,
        "title": item.title or file_name(item.url),
        "url": item.url,
        "last_seen": row.get("ok_at"),
        **extra,
    }


def _conditions(gone: list[dict[str, Any]], shrunk: list[dict[str, Any]]) -> list[Observation]:
    out = []
    if gone:
        out.append(
            Observation(
                kind="disappeared",
                subject="document",
                title=str(gone[0]["title"]),
                url=str(gone[0]["url"]),
                summary=count(len(gone), "linked document")
                + " no longer available (404/410): "
                + titles(gone),
                items=gone,
            )
        )
    if shrunk:
        sizes = "; ".join(f"{d['title']} {d['size'][0]:,} → {d['size'][1]:,} bytes" for d in shrunk)
        out.append(
            Observation(
                kind="shrank",
                subject="document",
                title=str(shrunk[0]["title"]),
                url=str(shrunk[0]["url"]),
                summary=count(len(shrunk), "linked document") + " much smaller: " + sizes,
                counts={"size": list(shrunk[0]["size"])} if len(shrunk) == 1 else {},
                items=shrunk,
            )
        )
    return out
