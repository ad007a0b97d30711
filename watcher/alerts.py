"""The alert lifecycle: what a check observes now becomes alerts that open, fire and resolve.

Detection (``detect``, ``cadence``) states the conditions that hold *now*, each keyed by
(kind, subject). This module is the memory: an alert is one row per (target, kind, subject)
that is ``pending`` until the condition has been seen ``confirm`` checks in a row, then
``firing`` until the condition is gone, then ``resolved``. One flaky response therefore
pages nobody, a condition that persists pages once (and again every ``notify.slack.repeat``),
and a page that flips between two versions never gets past ``pending``.

Everything here runs inside the check's transaction, so the alert rows, the events and the
outbox rows that announce them are written together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from watcher import outbox
from watcher.config import SlackConfig, Target
from watcher.detect import titles
from watcher.models import Event, Notice, iso
from watcher.store import AlertRow, alert_row, when

# --- lifecycle rules ---------------------------------------------------------------------
# `stopped` is decided by the calendar, not by one response that might be a fluke, so it
# fires on the first check that finds the publication overdue. Everything else waits for
# `confirm` consecutive observations: ICE and DOJ answer the odd 503 or Akamai block to
# perfectly healthy pages, and Drupal caches briefly serve half-built listings.
NO_CONFIRMATION = frozenset({"stopped"})
PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"

Key = tuple[str, str]  # (kind, subject)


@dataclass(frozen=True)
class Observation:
    """One alert condition that holds now. ``items`` are the affected publications
    (``title``, ``url``, ``last_seen``, ``key``; ``confirmed`` False while an item has not
    yet been missing for ``confirm`` checks)."""

    kind: str
    subject: str
    title: str
    url: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, list[int]] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return (self.kind, self.subject)


@dataclass
class Assessment:
    """What one check concluded about every alert condition of one target.

    ``unknown`` keys could not be judged (the page could not be read, so whether items are
    still missing is unknown): their alerts are left exactly as they are. ``silent`` keys
    close without a ``recovered`` message because another alert supersedes them (a page
    that was timing out and now answers 404 has not recovered). ``recovery`` says, per key,
    what the recovery looks like when an open alert with that key resolves.
    """

    conditions: dict[Key, Observation] = field(default_factory=dict)
    unknown: set[Key] = field(default_factory=set)
    silent: set[Key] = field(default_factory=set)
    recovery: dict[Key, str] = field(default_factory=dict)

    def add(self, obs: Observation | None) -> None:
        if obs is not None:
            self.conditions[obs.key] = obs


@dataclass(frozen=True)
class Context:
    target: Target
    now: datetime
    confirm: int
    slack: SlackConfig | None = None
    snapshot_id: int | None = None


@dataclass
class Applied:
    events: list[Event] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)
    open: list[AlertRow] = field(default_factory=list)
    notices: int = 0


def muted_until(db: sqlite3.Connection, target_id: str) -> str | None:
    row = db.execute("SELECT muted_until FROM targets WHERE id=?", (target_id,)).fetchone()
    return row[0] if row and row[0] else None


def is_muted(db: sqlite3.Connection, target_id: str, now: datetime) -> bool:
    until = muted_until(db, target_id)
    return until is not None and until > when(now)


def set_mute(db: sqlite3.Connection, target: Target, until: datetime | None) -> None:
    db.execute(
        "INSERT INTO targets (id, url, muted_until) VALUES (?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET muted_until=excluded.muted_until",
        (target.id, target.url, when(until) if until else None),
    )


def apply(db: sqlite3.Connection, ctx: Context, assessment: Assessment) -> Applied:
    """Move this target's alerts one check forward. Call inside the check's transaction."""
    target, now, at = ctx.target, ctx.now, when(ctx.now)
    muted = is_muted(db, target.id, now)
    out = Applied()
    rows = db.execute(
        "SELECT * FROM alerts WHERE target_id=? AND state!=? ORDER BY id",
        (target.id, RESOLVED),
    ).fetchall()
    open_rows = {(r["kind"], r["subject"]): alert_row(r) for r in rows}

    for key, obs in assessment.conditions.items():
        need = 1 if obs.kind in NO_CONFIRMATION else ctx.confirm
        row = open_rows.get(key)
        streak = row.streak + 1 if row else 1
        state = FIRING if streak >= need else PENDING
        was_firing = row is not None and row.state == FIRING
        stored = row.data if row else {}
        notified: list[str] = list(stored.get("notified", []))
        data = {"data": obs.data, "counts": obs.counts, "items": obs.items, "notified": notified}
        if row is None:
            alert_id = _insert(db, target.id, obs, state, streak, at)
            fired_at = at if state == FIRING else None
            last_notified = None
        else:
            alert_id = row.id
            fired_at = row.fired_at or (at if state == FIRING else None)
            last_notified = row.last_notified_at
        notice_kind = _notice_due(obs, state, was_firing, last_notified, notified, ctx, now)
        if notice_kind and not muted and _wants(ctx.slack, obs.kind):
            repeat = notice_kind == "repeat"
            suffix = {"fired": "fired", "repeat": f"repeat:{at}", "grew": f"grew:{at}"}
            notice = _notice(ctx, alert_id, obs.kind, obs.kind, obs, obs.summary, repeat)
            outbox.enqueue_notice(
                db, "slack", notice, dedupe_key=f"slack:{alert_id}:{suffix[notice_kind]}"
            )
            out.notices += 1
            last_notified = at
            data["notified"] = sorted({*notified, *_confirmed_keys(obs)})
        db.execute(
            "UPDATE alerts SET state=?, streak=?, fired_at=?, last_seen_at=?, summary=?, data=?,"
            " last_notified_at=? WHERE id=?",
            (
                state,
                streak,
                fired_at,
                at,
                obs.summary,
                json.dumps(data, ensure_ascii=False),
                last_notified,
                alert_id,
            ),
        )
        summary = obs.summary
        if state == PENDING:
            summary += f" (unconfirmed: {streak} of {need} checks)"
        alert_info = {"id": alert_id, "state": state, "streak": streak, "confirm": need}
        out.events.append(
            Event(
                kind=obs.kind,
                severity="alert",
                subject=obs.subject,
                title=obs.title,
                url=obs.url,
                summary=summary,
                data=_event_data(obs, alert_info),
            )
        )

    for key, row in open_rows.items():
        if key in assessment.conditions or key in assessment.unknown:
            continue
        db.execute("UPDATE alerts SET state=?, resolved_at=? WHERE id=?", (RESOLVED, at, row.id))
        if row.fired_at is None or key in assessment.silent:
            continue  # an unconfirmed condition that cleared was never news
        summary = assessment.recovery.get(key) or f"The {row.kind} condition has cleared"
        back = row.data.get("items", []) if row.kind != "stopped" else []
        if back:
            summary += ": " + titles(back)
        out.events.append(
            Event(
                kind="recovered",
                severity="info",
                subject=row.subject,
                title=target.label,
                url=target.url,
                summary=summary,
                data={
                    "alert": {"id": row.id, "kind": row.kind, "fired_at": row.fired_at},
                    "was": row.summary,
                },
            )
        )
        if row.last_notified_at and not muted and _wants(ctx.slack, "recovered"):
            previous = Observation(
                row.kind,
                row.subject,
                target.label,
                target.url,
                row.summary,
                counts=row.data.get("counts", {}),
                items=row.data.get("items", []),
            )
            notice = _notice(ctx, row.id, "recovered", row.kind, previous, summary, False)
            outbox.enqueue_notice(db, "slack", notice, dedupe_key=f"slack:{row.id}:recovered")
            out.notices += 1

    now_open = db.execute(
        "SELECT * FROM alerts WHERE target_id=? AND state!=? ORDER BY id",
        (target.id, RESOLVED),
    ).fetchall()
    out.open = [alert_row(r) for r in now_open]
    out.firing = sorted({a.kind for a in out.open if a.state == FIRING})
    return out


def _insert(
    db: sqlite3.Connection, target_id: str, obs: Observation, state: str, streak: int, at: str
) -> int:
    cur = db.execute(
        "INSERT INTO alerts (target_id, kind, subject, state, streak, opened_at, last_seen_at,"
        " summary) VALUES (?,?,?,?,?,?,?,?)",
        (target_id, obs.kind, obs.subject, state, streak, at, at, obs.summary),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def _confirmed_keys(obs: Observation) -> list[str]:
    return [str(i.get("key") or i.get("url")) for i in obs.items if i.get("confirmed", True)]


def _notice_due(
    obs: Observation,
    state: str,
    was_firing: bool,
    last_notified: str | None,
    notified: list[str],
    ctx: Context,
    now: datetime,
) -> str | None:
    """Which message, if any, this check owes: the first one once the alert fires (or once
    a mute that hid it has ended), one when more items have vanished while it fires, and a
    reminder every ``repeat``."""
    if state != FIRING:
        return None
    if last_notified is None:
        return "fired"
    if was_firing and set(_confirmed_keys(obs)) - set(notified):
        return "grew"
    repeat: timedelta | None = ctx.slack.repeat if ctx.slack else None
    if repeat and datetime.fromisoformat(last_notified) + repeat <= now:
        return "repeat"
    return None


def _wants(slack: SlackConfig | None, kind: str) -> bool:
    return slack is not None and kind in slack.kinds


def _notice(
    ctx: Context,
    alert_id: int,
    kind: str,
    alert_kind: str,
    obs: Observation,
    summary: str,
    repeat: bool,
) -> Notice:
    t = ctx.target
    return Notice(
        alert_id=alert_id,
        target_id=t.id,
        target_name=t.label,
        target_url=t.url,
        kind=kind,
        alert_kind=alert_kind,
        subject=obs.subject,
        summary=summary,
        checked_at=iso(ctx.now),
        snapshot_id=ctx.snapshot_id,
        repeat=repeat,
        url=obs.url,
        counts={k: list(v) for k, v in obs.counts.items()},
        items=[
            {"title": i.get("title", ""), "url": i.get("url", ""), "last_seen": i.get("last_seen")}
            for i in obs.items
        ],
        agency=t.agency,
    )


def _event_data(obs: Observation, alert_info: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = dict(obs.data)
    if obs.items:
        data["items"] = obs.items
    if obs.counts:
        data["counts"] = obs.counts
    data["alert"] = alert_info
    return data
