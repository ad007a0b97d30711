"""How one check is written to the store: snapshot, check row, items, events, baselines.

``check._record`` calls these inside one transaction. Items keep their history here: when
each was first and last seen, when it left the listing and why (removed, moved, superseded,
rolled off), so later checks can judge what is missing and what is new.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from watcher import conditions, detect
from watcher.compare import Comparison
from watcher.config import Target
from watcher.detect import Changes
from watcher.models import Event, Fetched, Page
from watcher.store import SnapshotRow, when

if TYPE_CHECKING:
    from watcher.check import TargetResult


def classify(
    db: sqlite3.Connection,
    target_id: str,
    comparison: Comparison,
    before: Page,
    after: Page,
    confirm: int,
) -> Changes:
    seen = {r[0] for r in db.execute("SELECT key FROM items WHERE target_id=?", (target_id,))}
    missing = conditions.as_items(conditions.missing_items(db, target_id, confirm))
    return detect.classify(comparison, before, after, seen=seen, missing=missing)


def insert_snapshot(
    db: sqlite3.Connection,
    result: TargetResult,
    fetched: Fetched,
    body_sha: str | None,
    page_sha: str | None,
    changes: Changes | None,
    replaced: bool,
) -> int | None:
    verdict = result.verdict
    return db.execute(
        "INSERT INTO snapshots (target_id, taken_at, body_sha, page_sha, content_type,"
        " size, final_url, http_status, verdict, real_change) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            result.target.id,
            when(result.checked_at),
            body_sha,
            page_sha,
            fetched.content_type,
            len(fetched.body or b""),
            fetched.final_url,
            fetched.status,
            json.dumps({"reason": verdict.reason, "summary": verdict.summary}) if verdict else None,
            int(replaced or bool(changes and changes.real_change)),
        ),
    ).lastrowid


def insert_check(
    db: sqlite3.Connection,
    result: TargetResult,
    fetched: Fetched | None,
    snapshot_id: int | None,
) -> int | None:
    err = result.error
    redirects = [r.url for r in fetched.redirects] if fetched else (err.redirects if err else [])
    return db.execute(
        "INSERT INTO checks (target_id, checked_at, outcome, http_status, error_kind,"
        " error_message, final_url, redirects, etag, last_modified, duration, snapshot_id)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            result.target.id,
            when(result.checked_at),
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


def insert_event(
    db: sqlite3.Connection, target_id: str, check_id: int | None, at: str, event: Event
) -> None:
    db.execute(
        "INSERT INTO events (target_id, check_id, at, kind, severity, subject, title,"
        " url, summary, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            target_id,
            check_id,
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


def replaced(
    db: sqlite3.Connection,
    target: Target,
    page: Page,
    good: SnapshotRow | None,
    fetched: Fetched | None,
    at: str,
) -> list[Event]:
    """The target is itself a document and its content changed: a new issue in place."""
    item = page.items[0] if page.items else None
    url = item.url if item else target.url
    name = page.title or url
    size_before = good.size if good else None
    size_after = len(fetched.body or b"") if fetched else None
    db.execute(
        "INSERT INTO replacements (target_id, key, url, title, at, size_before, size_after)"
        " VALUES (?,?,?,?,?,?,?)",
        (target.id, item.key if item else url, url, name, at, size_before, size_after),
    )
    return [detect.replaced_event(name, url, {"size": [size_before, size_after]})]


def baselines(
    db: sqlite3.Connection,
    target: Target,
    page: Page | None,
    fetched: Fetched | None,
    confirm: int,
) -> list[conditions.Facet]:
    """This capture's measures against the last confirmed state (kept in ``targets.state``,
    and for an unchanged page taken from there); returns the ones that shrank."""
    row = db.execute("SELECT state FROM targets WHERE id=?", (target.id,)).fetchone()
    state: dict[str, Any] = json.loads(row[0]) if row and row[0] else {}
    if page is not None:
        size = len(fetched.body) if fetched is not None and fetched.body is not None else None
        metrics = conditions.metrics_of(page, size)
    else:
        metrics = dict(state.get("metrics", {}))
    facets = conditions.update_baselines(state, metrics, target, confirm)
    text = json.dumps(state, sort_keys=True)
    if not row or text != row[0]:  # an unchanged page rewrites nothing
        db.execute("UPDATE targets SET state=? WHERE id=?", (text, target.id))
    return facets


def record_items(
    db: sqlite3.Connection,
    target_id: str,
    page: Page,
    changes: Changes | None,
    at: str,
    snapshot_id: int | None,
) -> None:
    # A moved or reposted document keeps the first-seen time of its old URL: it is not a
    # new publication.
    carried = {}
    if changes is not None:
        for new_key, old_key in changes.carried().items():
            row = db.execute(
                "SELECT first_seen FROM items WHERE target_id=? AND key=?", (target_id, old_key)
            ).fetchone()
            if row:
                carried[new_key] = row[0]
    keys = set()
    for item in page.items:
        keys.add(item.key)
        db.execute(
            "INSERT INTO items (target_id, key, title, url, type, date, date_source,"
            " first_seen, last_seen, first_snapshot) VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(target_id, key) DO UPDATE SET title=excluded.title,"
            " url=excluded.url, type=excluded.type, date=excluded.date,"
            " date_source=excluded.date_source, last_seen=excluded.last_seen, gone_since=NULL,"
            " gone_reason=NULL, moved_to=NULL",
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
                snapshot_id,
            ),
        )
    reasons = changes.gone_reasons() if changes is not None else {}
    current = db.execute(
        "SELECT key FROM items WHERE target_id=? AND gone_since IS NULL", (target_id,)
    ).fetchall()
    for (key,) in current:
        if key not in keys:
            reason, moved_to = reasons.get(key, ("removed", None))
            db.execute(
                "UPDATE items SET gone_since=?, gone_reason=?, moved_to=? WHERE target_id=?"
                " AND key=?",
                (at, reason, moved_to, target_id, key),
            )
    if changes is not None:
        for old_key, new in changes.reposted:
            db.execute(
                "UPDATE items SET gone_reason='moved', moved_to=? WHERE target_id=? AND key=?",
                (new.key, target_id, old_key),
            )
