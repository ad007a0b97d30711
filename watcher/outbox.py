"""The notification outbox: a message leaves it only once its channel has accepted it.

Rows are written by ``alerts`` (and the digest) inside the transaction that decides to
notify, so a crash or a Slack outage can delay a message but never lose it. Delivery is in
id order per channel; a transient failure stops the channel's queue for this pass so later
messages never overtake earlier ones.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from watcher.models import Notice

QUEUED, SENT, FAILED = "queued", "sent", "failed"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    channel: str
    alert_id: int | None
    kind: str
    payload: dict[str, Any]
    created_at: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    state: str


def enqueue(
    db: sqlite3.Connection,
    channel: str,
    kind: str,
    payload: dict[str, Any],
    *,
    created_at: str,
    alert_id: int | None = None,
    dedupe_key: str | None = None,
) -> int | None:
    """Queue one message. A repeated ``dedupe_key`` is ignored, so retries never double up.

    Call inside the caller's transaction. Returns the row id, or None if deduplicated.
    """
    cur = db.execute(
        "INSERT OR IGNORE INTO outbox (channel, alert_id, kind, payload, created_at, dedupe_key)"
        " VALUES (?,?,?,?,?,?)",
        (channel, alert_id, kind, json.dumps(payload, ensure_ascii=False), created_at, dedupe_key),
    )
    return cur.lastrowid if cur.rowcount else None


def enqueue_notice(
    db: sqlite3.Connection, channel: str, notice: Notice, *, dedupe_key: str | None = None
) -> int | None:
    return enqueue(
        db,
        channel,
        notice.kind,
        notice.to_dict(),
        created_at=notice.checked_at,
        alert_id=notice.alert_id,
        dedupe_key=dedupe_key,
    )


def pending(db: sqlite3.Connection, channel: str) -> list[OutboxRow]:
    rows = db.execute(
        "SELECT id, channel, alert_id, kind, payload, created_at, attempts, next_attempt_at,"
        " last_error, state FROM outbox WHERE channel=? AND state=? ORDER BY id",
        (channel, QUEUED),
    ).fetchall()
    return [OutboxRow(*r[:4], json.loads(r[4]), *r[5:]) for r in rows]  # type: ignore[call-arg]


def mark_sent(db: sqlite3.Connection, row_id: int, at: str) -> None:
    db.execute(
        "UPDATE outbox SET state=?, sent_at=?, attempts=attempts+1 WHERE id=?", (SENT, at, row_id)
    )


def mark_retry(db: sqlite3.Connection, row_id: int, error: str, next_attempt_at: str) -> None:
    db.execute(
        "UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt_at=? WHERE id=?",
        (error, next_attempt_at, row_id),
    )


def mark_failed(db: sqlite3.Connection, row_id: int, error: str) -> None:
    """A permanent refusal (invalid_auth, channel_not_found): kept for ``watcher status``."""
    db.execute(
        "UPDATE outbox SET state=?, attempts=attempts+1, last_error=? WHERE id=?",
        (FAILED, error, row_id),
    )


def mark_skipped(db: sqlite3.Connection, row_id: int, at: str, reason: str) -> None:
    """Leave the queue without sending: the channel no longer wants this kind of message.

    The row counts as sent (it must never be sent later by surprise); ``last_error`` keeps the
    reason, so a user asking "why did this not reach Slack?" finds the answer.
    """
    db.execute(
        "UPDATE outbox SET state=?, sent_at=?, last_error=? WHERE id=?",
        (SENT, at, f"skipped: {reason}", row_id),
    )
