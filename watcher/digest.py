"""The daily digest: what the watcher saw in a window, read from the store, for a phone screen.

Everything comes from the store, never from a live check, so a digest can be rebuilt for any
past window (``watcher digest --at``) and a retried digest says what the first attempt said.
``build_digest`` gathers the facts; ``render_digest`` (Jinja2, autoescaped HTML plus plain
text) turns them into a subject and two bodies; ``queue_digest`` puts that message in the
outbox under a dedupe key, so one window is never mailed twice.

New publications are items first seen inside the window, except those found by a target's very
first capture: that baseline is what was already there, not news.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from watcher.cadence import due_info
from watcher.config import Config, Target
from watcher.scheduler import parse_stored_time
from watcher.store import Store, when

DueOf = Callable[[Target], datetime | None]

DUE_AHEAD = timedelta(days=3)
ITEMS_SHOWN = 10  # new publications listed per target; the count stays exact
SUMMARIES_SHOWN = 3  # distinct summaries shown per event kind and target
# The order and words of event groups in a target's section.
KIND_LABELS = {
    "stopped": "Stopped",
    "disappeared": "Removed",
    "shrank": "Shrank",
    "error": "Errors",
    "recovered": "Recovered",
    "changed": "Changed",
}


@dataclass(frozen=True)
class Link:
    title: str
    url: str
    date: date | None = None


@dataclass
class EventGroup:
    """Every event of one kind for one target in the window, same summaries counted once."""

    kind: str
    label: str
    count: int
    lines: list[tuple[str, str]]  # (summary, url), newest first, distinct
    wayback: bool = False  # link to the Wayback Machine: the thing itself may be gone


@dataclass(frozen=True)
class AlertLine:
    kind: str
    subject: str
    summary: str
    since: datetime | None


@dataclass
class TargetDigest:
    id: str
    name: str
    url: str
    state: str  # alert | error | ok | unchecked
    newest: Link | None
    newest_age: int | None  # days between the newest publication's date and the window end
    next_due: datetime | None
    alerts: list[AlertLine] = field(default_factory=list)
    new_items: list[Link] = field(default_factory=list)
    new_count: int = 0
    events: list[EventGroup] = field(default_factory=list)
    checks: int = 0
    muted_until: datetime | None = None

    @property
    def quiet(self) -> bool:
        """Nothing to report: shown as one line."""
        return self.state in ("ok", "unchecked") and not (
            self.alerts or self.new_count or self.events
        )


@dataclass
class Digest:
    start: datetime
    end: datetime
    tz: ZoneInfo
    targets: list[TargetDigest]
    checks: dict[str, int]  # outcome -> count in the window
    due_soon: list[TargetDigest]

    @property
    def firing(self) -> int:
        return sum(len(t.alerts) for t in self.targets)

    @property
    def new_publications(self) -> int:
        return sum(t.new_count for t in self.targets)

    @property
    def eventful(self) -> list[TargetDigest]:
        """Targets with something in the window's event log: new publications or events."""
        return [t for t in self.targets if t.new_count or t.events]

    @property
    def checks_total(self) -> int:
        return sum(self.checks.values())

    @property
    def checks_failed(self) -> int:
        return self.checks.get("error", 0)

    @property
    def empty(self) -> bool:
        """All quiet. A window without a single check is not quiet: the watcher is not watching."""
        no_checks = self.checks_total == 0 and bool(self.targets)
        return not no_checks and all(t.quiet for t in self.targets)


def cadence_due_of(store: Store, config: Config, now: datetime) -> DueOf:
    """Next issue expected, as detection judges it (learned cadences, capped dates).

    ``due_at`` is the deadline after which ``stopped`` fires; editors plan on the expected
    date, which is that deadline less the grace.
    """

    def due_of(target: Target) -> datetime | None:
        info = due_info(store, config, target, now)
        return info.due_at - info.grace if info and info.due_at else None

    return due_of


def build_digest(
    store: Store,
    config: Config,
    *,
    start: datetime,
    end: datetime,
    due_of: DueOf | None = None,
) -> Digest:
    """Read the window ``[start, end)`` and the state at ``end`` from the store."""
    tz = ZoneInfo(config.settings.timezone)
    due_of = due_of or cadence_due_of(store, config, end)
    db, lo, hi = store.db, when(start), when(end)
    checks: dict[str, int] = {}
    per_target_checks: dict[str, int] = {}
    for target_id, outcome, n in db.execute(
        "SELECT target_id, outcome, COUNT(*) FROM checks WHERE checked_at>=? AND checked_at<?"
        " GROUP BY target_id, outcome",
        (lo, hi),
    ):
        checks[outcome] = checks.get(outcome, 0) + n
        per_target_checks[target_id] = per_target_checks.get(target_id, 0) + n
    targets = [
        _target(store, t, tz, lo, hi, end, due_of, per_target_checks.get(t.id, 0))
        for t in config.targets
    ]
    rank = {"alert": 0, "error": 1}
    targets.sort(key=lambda t: rank.get(t.state, 2))  # stable: config order within a state
    due_soon = sorted(
        (t for t in targets if t.next_due is not None and t.next_due <= end + DUE_AHEAD),
        key=lambda t: t.next_due or end,
    )
    return Digest(start, end, tz, targets, checks, due_soon)


def _target(
    store: Store,
    target: Target,
    tz: ZoneInfo,
    lo: str,
    hi: str,
    end: datetime,
    due_of: DueOf,
    checks: int,
) -> TargetDigest:
    db = store.db
    alerts = [
        AlertLine(r[0], r[1], r[2], parse_stored_time(r[3]))
        for r in db.execute(
            "SELECT kind, subject, summary, fired_at FROM alerts"
            " WHERE target_id=? AND state='firing' ORDER BY id",
            (target.id,),
        )
    ]
    last = db.execute(
        "SELECT outcome FROM checks WHERE target_id=? AND checked_at<? ORDER BY id DESC LIMIT 1",
        (target.id, hi),
    ).fetchone()
    state = _state(bool(alerts), last[0] if last else None)
    item = store.newest_item(target.id)
    newest = Link(item.title, item.url, item.date) if item else None
    age = (end.astimezone(tz).date() - newest.date).days if newest and newest.date else None
    muted = db.execute("SELECT muted_until FROM targets WHERE id=?", (target.id,)).fetchone()
    muted_until = parse_stored_time(muted[0]) if muted else None
    new_rows = db.execute(
        "SELECT title, url, date FROM items WHERE target_id=? AND first_seen>=? AND first_seen<?"
        " AND first_seen > (SELECT MIN(taken_at) FROM snapshots WHERE target_id=?)"
        " ORDER BY date DESC, first_seen DESC",
        (target.id, lo, hi, target.id),
    ).fetchall()
    return TargetDigest(
        id=target.id,
        name=target.label,
        url=target.url,
        state=state,
        newest=newest,
        newest_age=age,
        next_due=due_of(target),
        alerts=alerts,
        new_items=[
            Link(r[0], r[1], date.fromisoformat(r[2]) if r[2] else None)
            for r in new_rows[:ITEMS_SHOWN]
        ],
        new_count=len(new_rows),
        events=_event_groups(db, target.id, lo, hi),
        checks=checks,
        muted_until=muted_until if muted_until and muted_until > end else None,
    )


def _state(firing: bool, last_outcome: str | None) -> str:
    if firing:
        return "alert"
    if last_outcome is None:
        return "unchecked"
    return "error" if last_outcome == "error" else "ok"


def _event_groups(db: sqlite3.Connection, target_id: str, lo: str, hi: str) -> list[EventGroup]:
    groups: dict[str, EventGroup] = {}
    described: set[tuple[str, str]] = set()
    for kind, subject, severity, summary, url in db.execute(
        "SELECT kind, subject, severity, summary, url FROM events"
        " WHERE target_id=? AND at>=? AND at<? ORDER BY id DESC",
        (target_id, lo, hi),
    ):
        if kind not in KIND_LABELS:  # "added" is shown as the new publications themselves
            continue
        group = groups.setdefault(
            kind, EventGroup(kind, KIND_LABELS[kind], 0, [], wayback=kind == "disappeared")
        )
        group.count += 1
        # A condition is observed on every check while it lasts; its newest summary is the
        # current truth ("No new issue for 29 days"), so older ones are not repeated.
        if severity == "alert":
            if (kind, subject) in described:
                continue
            described.add((kind, subject))
        if len(group.lines) < SUMMARIES_SHOWN and all(s != summary for s, _ in group.lines):
            group.lines.append((summary, url))
    return [groups[k] for k in KIND_LABELS if k in groups]


# --- queueing ------------------------------------------------------------------------------


def is_queued(db: sqlite3.Connection, key: str) -> bool:
    return db.execute("SELECT 1 FROM outbox WHERE dedupe_key=?", (key,)).fetchone() is not None


def window_key(start: datetime, end: datetime) -> str:
    """Dedupe key of a digest for an explicit window (``watcher digest --send``)."""
    return f"digest:window:{when(start)}/{when(end)}"


def last_scheduled_end(db: sqlite3.Connection) -> datetime | None:
    """Where the last scheduled digest's window ended (queued, sent or failed alike)."""
    row = db.execute(
        "SELECT payload FROM outbox WHERE channel='email' AND dedupe_key LIKE 'digest:day:%'"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return parse_stored_time(json.loads(row[0]).get("window", {}).get("end"))


def first_check_time(db: sqlite3.Connection) -> datetime | None:
    row = db.execute("SELECT MIN(checked_at) FROM checks").fetchone()
    return parse_stored_time(row[0]) if row else None
