"""Delivering the outbox to Slack: every alert arrives once, in order, or stays queued.

A row leaves the outbox only after Slack accepted it, and is marked sent in its own
transaction right after, so a crash can at worst post one message twice, never lose one. What
happens on failure depends on whose fault it is:

* **transient** (429, 5xx, timeouts, connection errors): slack-sdk's retry handlers try again
  within a small, bounded wait budget; if that is not enough the row is scheduled for a later
  pass and this pass stops, so a later alert never overtakes an earlier one.
* **channel** (bad token, revoked webhook, archived channel): no message can get through until
  the user fixes the config. Rows stay queued, the pass stops, the error is recorded on the head
  row for ``watcher status``, and the next pass tries again (it costs one quick refusal).
* **message** (invalid blocks, too long): only this message is refused. It is marked failed,
  visible in status, and the pass moves on.

Two processes (``watcher run`` and a manual ``watcher check``) must not deliver the same rows at
once, so a pass holds a non-blocking file lock and simply skips when another pass is running.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from watcher import outbox
from watcher.config import Config, SlackConfig
from watcher.errors import NotifyError
from watcher.models import ALERT_KINDS, Notice
from watcher.redact import redact_text
from watcher.slack import build_message, build_test_message, fallback_text
from watcher.slack_client import (
    CHANNEL,
    ClientFactory,
    Poster,
    SlackError,
    make_client,
    register_secrets,
)
from watcher.store import Store, when

log = logging.getLogger("watcher.notify")


@dataclass
class DeliveryReport:
    """What one pass did. ``error`` says why it stopped early; it is already redacted."""

    sent: int = 0
    skipped: int = 0
    failed: int = 0
    waiting: int = 0
    error: str | None = None
    configured: bool = True
    busy: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.busy


def deliver_slack(
    store: Store,
    config: Config | SlackConfig | None,
    *,
    now: datetime,
    client_factory: ClientFactory = make_client,
) -> DeliveryReport:
    """Post every queued Slack notice, oldest first, that Slack will take now."""
    slack = config.notify.slack if isinstance(config, Config) else config
    tz: tzinfo = ZoneInfo(config.settings.timezone) if isinstance(config, Config) else UTC
    report = DeliveryReport()
    if slack is None:
        report.configured = False
        report.waiting = len(outbox.pending(store.db, CHANNEL))
        return report
    register_secrets(slack)
    with _delivery_lock(store) as acquired:
        if not acquired:
            report.busy = True
            return report
        _deliver(store, slack, tz, now, client_factory, report)
    report.waiting = len(outbox.pending(store.db, CHANNEL))
    return report


def _deliver(
    store: Store,
    slack: SlackConfig,
    tz: tzinfo,
    now: datetime,
    client_factory: ClientFactory,
    report: DeliveryReport,
) -> None:
    stamp = when(now)
    poster = None
    for row in outbox.pending(store.db, CHANNEL):
        if row.kind not in slack.kinds:
            with store.transaction() as db:
                outbox.mark_skipped(
                    db, row.id, stamp, f"kind {row.kind!r} not in notify.slack.kinds"
                )
            report.skipped += 1
            continue
        if row.next_attempt_at and row.next_attempt_at > stamp:
            report.error = f"{row.last_error or 'retrying'} (next attempt {row.next_attempt_at})"
            return
        try:
            notice = Notice.from_dict(row.payload)
            text, blocks = _render(notice, tz)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            # Not a Notice as alerts.py writes them: nothing sensible to post, ever.
            with store.transaction() as db:
                outbox.mark_failed(db, row.id, f"unreadable notice ({type(e).__name__})")
            report.failed += 1
            continue
        poster = poster or Poster(client_factory(slack), slack)
        thread_ts = _thread_of(store, notice) if poster.threads else None
        try:
            ts = poster.post(text, blocks, thread_ts=thread_ts)
        except SlackError as e:
            if _record_failure(store, row, e, now, report):
                return
            continue
        with store.transaction() as db:
            outbox.mark_sent(db, row.id, stamp)
            if ts and notice.kind in ALERT_KINDS:
                # The first message of an alert anchors its thread; reminders do not move it.
                db.execute(
                    "UPDATE alerts SET slack_ts=? WHERE id=? AND slack_ts IS NULL",
                    (ts, notice.alert_id),
                )
        report.sent += 1
        log.info("slack: posted %s for %s (outbox %d)", notice.kind, notice.target_id, row.id)


def _render(notice: Notice, tz: tzinfo) -> tuple[str, list[dict[str, Any]]]:
    """The full message; or, if some field has a shape rendering did not expect, the alert
    as one line of text: a plain alert beats a lost one."""
    try:
        return build_message(notice, tz=tz)
    except (TypeError, ValueError, KeyError, AttributeError):
        log.exception(
            "slack: cannot render notice for alert %s; posting text only", notice.alert_id
        )
        return fallback_text(notice), []


def _record_failure(
    store: Store, row: outbox.OutboxRow, error: SlackError, now: datetime, report: DeliveryReport
) -> bool:
    """Write down what went wrong with ``row``; True when the pass must stop here."""
    with store.transaction() as db:
        if error.scope == "message":
            outbox.mark_failed(db, row.id, error.message)
            report.failed += 1
            log.warning("slack refused outbox row %d: %s", row.id, error.message)
            return False
        if error.scope == "channel":
            next_at = now  # nothing to wait for but the user's fix: try again next pass
        else:
            backoff = min(60 * 2**row.attempts, 3600)
            next_at = now + timedelta(seconds=max(backoff, error.retry_after or 0))
        outbox.mark_retry(db, row.id, error.message, when(next_at))
    report.error = error.message
    log.warning("slack delivery paused at outbox row %d: %s", row.id, error.message)
    return True


def _thread_of(store: Store, notice: Notice) -> str | None:
    """A recovery replies in the thread of the alert's first message, when there was one."""
    if notice.kind != "recovered":
        return None
    row = store.db.execute("SELECT slack_ts FROM alerts WHERE id=?", (notice.alert_id,)).fetchone()
    return str(row[0]) if row and row[0] else None


@contextmanager
def _delivery_lock(store: Store) -> Iterator[bool]:
    fd = os.open(store.data_dir / "notify.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


# --- status and the test message ----------------------------------------------------------


def notify_problems(
    db: sqlite3.Connection, *, now: datetime | None = None, days: int = 7
) -> list[str]:
    """One line per problem a user should fix or know about, for ``watcher status``.

    A queue stuck behind an error (``slack: invalid_auth (3 notifications waiting since …)``)
    and messages refused for good in the last ``days`` days. Lines are redacted.
    """
    lines = []
    since = when((now or datetime.now(UTC)) - timedelta(days=days))
    queued = db.execute(
        "SELECT channel, COUNT(*), MIN(created_at) FROM outbox WHERE state=?"
        " GROUP BY channel ORDER BY channel",
        (outbox.QUEUED,),
    ).fetchall()
    for channel, count, oldest in queued:
        head = db.execute(
            "SELECT last_error FROM outbox WHERE channel=? AND state=? AND last_error IS NOT NULL"
            " ORDER BY id LIMIT 1",
            (channel, outbox.QUEUED),
        ).fetchone()
        if head:
            noun = "notification" if count == 1 else "notifications"
            lines.append(f"{channel}: {head[0]} ({count} {noun} waiting since {oldest})")
    failed = db.execute(
        "SELECT channel, COUNT(*), MAX(id) FROM outbox WHERE state=? AND created_at>=?"
        " GROUP BY channel ORDER BY channel",
        (outbox.FAILED, since),
    ).fetchall()
    for channel, count, last_id in failed:
        error = db.execute("SELECT last_error FROM outbox WHERE id=?", (last_id,)).fetchone()[0]
        noun = "notification" if count == 1 else "notifications"
        lines.append(f"{channel}: {count} {noun} refused in the last {days} days (last: {error})")
    return [redact_text(line) for line in lines]


def send_test(slack: SlackConfig, *, client_factory: ClientFactory = make_client) -> str:
    """Post the test message; returns where it went (redacted). Raises ``NotifyError``."""
    register_secrets(slack)
    poster = Poster(client_factory(slack), slack)
    text, blocks = build_test_message()
    try:
        poster.post(text, blocks)
        return poster.where
    except SlackError as e:
        message = f"{e.message} ({poster.where})"
    raise NotifyError(CHANNEL, message, permanent=True)  # outside ``except``: nothing chained


def deliver_after_check(store: Store, config: Config, *, now: datetime) -> list[str]:
    """The end of ``watcher check``: deliver, and say in one line each what is stuck."""
    if config.notify.slack is None:
        return []
    report = deliver_slack(store, config, now=now)
    if report.error is None and not report.failed:
        return []
    return notify_problems(store.db, now=now) or [f"{CHANNEL}: {report.error}"]
