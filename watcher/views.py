"""What ``watcher status``, ``watcher history`` and ``watcher diff`` show.

Each view is built from the store as plain data first (so tests and ``--json`` read the same
facts the table shows), then rendered. Nothing here writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from watcher.cadence import DueInfo, due_info
from watcher.compare import compare
from watcher.config import Config, Target
from watcher.errors import WatcherError
from watcher.store import AlertRow, CheckRow, Store

_STATE_STYLE = {"ok": "green", "alert": "bold red", "error": "yellow", "pending": "yellow"}


@dataclass
class Status:
    target: Target
    last: CheckRow | None
    state: str  # ok | alert | error | pending | new
    items: int
    newest: dict[str, Any] | None
    due: DueInfo | None
    alerts: list[AlertRow]
    muted_until: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.target.id,
            "name": self.target.label,
            "url": self.target.url,
            "state": self.state,
            "last_check": (
                {"at": self.last.checked_at, "outcome": self.last.outcome} if self.last else None
            ),
            "items": self.items,
            "newest": self.newest,
            "due": self.due.to_dict() if self.due else None,
            "alerts": [
                {
                    "id": a.id,
                    "kind": a.kind,
                    "subject": a.subject,
                    "state": a.state,
                    "since": a.fired_at or a.opened_at,
                    "summary": a.summary,
                }
                for a in self.alerts
            ],
            "muted_until": self.muted_until,
        }


def status(store: Store, config: Config, now: datetime) -> list[Status]:
    out = []
    for target in config.targets:
        last = store.latest_check(target.id)
        open_alerts = store.alerts(target.id, open_only=True)
        newest = store.newest_item(target.id)
        if any(a.state == "firing" for a in open_alerts):
            state = "alert"
        elif last is None:
            state = "new"
        elif last.outcome in ("error", "missing"):
            state = "error"
        else:
            state = "pending" if open_alerts else "ok"
        muted = store.muted_until(target.id)
        out.append(
            Status(
                target=target,
                last=last,
                state=state,
                items=store.count_items(target.id),
                newest=(
                    {
                        "title": newest.title,
                        "url": newest.url,
                        "date": newest.date.isoformat() if newest.date else None,
                    }
                    if newest
                    else None
                ),
                due=due_info(store, config, target, now),
                alerts=open_alerts,
                muted_until=muted if muted and muted > now.isoformat() else None,
            )
        )
    return out


def notification_problems(store: Store, now: datetime) -> list[str]:
    """One line per notification problem, if the Slack stage is installed."""
    try:
        from watcher.notify import notify_problems
    except ImportError:  # pragma: no cover - the notify stage ships with watcher
        return []
    return list(notify_problems(store.db, now=now))


def wide_console() -> Console:
    """A terminal's own width; 160 columns when piped, so rows stay readable in a log."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    return console


def print_status(rows: list[Status], problems: list[str], console: Console) -> None:
    table = Table(title="watcher status", title_justify="left")
    for name in ("target", "last check", "state", "items", "newest", "next due", "open alerts"):
        wrap = name in ("newest", "open alerts", "state")
        table.add_column(name, overflow="fold", no_wrap=not wrap)
    for s in rows:
        last = f"{_short(s.last.checked_at)} {s.last.outcome}" if s.last else "never"
        newest = f"{s.newest['date']} {s.newest['title'][:40]}" if s.newest else "—"
        due = "—"
        if s.due is not None:
            due = _short(s.due.due_at.isoformat()) if s.due.due_at else s.due.note
            if s.due.overdue:
                due += " (overdue)"
        alerts = "\n".join(
            f"{a.kind} {a.subject} ({a.state} since {_short(a.fired_at or a.opened_at)})"
            for a in s.alerts
        )
        state = Text(s.state, style=_STATE_STYLE.get(s.state, ""))
        if s.muted_until:
            state.append(f"\nmuted until {_short(s.muted_until)}", style="dim")
        table.add_row(s.target.id, last, state, str(s.items), newest, due, alerts or "—")
    console.print(table)
    for line in problems:
        console.print(Text(f"notifications: {line}", style="yellow"))


@dataclass
class Entry:
    at: str
    what: str  # check | snapshot | event | alert
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "what": self.what, "text": self.text, **self.data}


def history(store: Store, target_id: str, limit: int) -> list[Entry]:
    """Checks, snapshots, events and alert transitions, oldest first (the last ``limit``)."""
    db = store.db
    out: list[Entry] = []
    for r in db.execute("SELECT * FROM checks WHERE target_id=? ORDER BY id", (target_id,)):
        detail = r["outcome"] + (f" {r['http_status']}" if r["http_status"] else "")
        if r["error_kind"]:
            detail += f" ({r['error_kind']}: {r['error_message']})"
        out.append(Entry(r["checked_at"], "check", detail, {"snapshot": r["snapshot_id"]}))
    for r in db.execute("SELECT * FROM snapshots WHERE target_id=? ORDER BY id", (target_id,)):
        text = f"snapshot {r['id']}: {r['size']:,} bytes, {r['final_url']}"
        if r["verdict"]:
            text += f" — {json.loads(r['verdict'])['summary']}"
        out.append(Entry(r["taken_at"], "snapshot", text, {"snapshot": r["id"]}))
    for r in db.execute("SELECT * FROM events WHERE target_id=? ORDER BY id", (target_id,)):
        out.append(Entry(r["at"], "event", f"{r['kind']}: {r['summary']}", {"kind": r["kind"]}))
    for a in store.alerts(target_id):
        tag = {"kind": a.kind, "alert": a.id}
        out.append(Entry(a.opened_at, "alert", f"#{a.id} {a.kind} {a.subject} opened", tag))
        if a.fired_at:
            out.append(Entry(a.fired_at, "alert", f"#{a.id} {a.kind} {a.subject} fired", tag))
        if a.resolved_at:
            how = "resolved" if a.fired_at else "cleared before confirmation"
            out.append(Entry(a.resolved_at, "alert", f"#{a.id} {a.kind} {a.subject} {how}", tag))
    order = {"check": 0, "snapshot": 1, "event": 2, "alert": 3}
    out.sort(key=lambda e: (e.at, order[e.what]))
    return out[-limit:] if limit else out


def print_history(entries: list[Entry], console: Console) -> None:
    for e in entries:
        style = {"alert": "bold", "event": ""}.get(e.what, "dim")
        console.print(Text(f"{_short(e.at)}  {e.what:<8} {e.text}", style=style))


@dataclass
class Diff:
    target_id: str
    before: dict[str, Any]
    after: dict[str, Any]
    lines: list[str]
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    moved: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def diff(store: Store, target_id: str, from_id: int | None, to_id: int | None) -> Diff:
    """The text diff and item changes between two snapshots (default: the last two), with
    where the raw captures are kept, so the evidence can be handed over."""
    snaps = store.snapshots(target_id)
    if len(snaps) < 2 and (from_id is None or to_id is None):
        raise WatcherError(f"{target_id}: fewer than two snapshots to compare")
    by_id = {s.id: s for s in snaps}
    a = by_id.get(from_id) if from_id is not None else snaps[-2]
    b = by_id.get(to_id) if to_id is not None else snaps[-1]
    if a is None or b is None:
        missing = from_id if a is None else to_id
        raise WatcherError(f"{target_id}: no snapshot {missing} (see watcher history)")
    before, after = store.get_page(a.page_sha), store.get_page(b.page_sha)
    c = compare(before, after)
    head = [f"--- snapshot {a.id} {a.taken_at}", f"+++ snapshot {b.id} {b.taken_at}"]
    return Diff(
        target_id=target_id,
        before=_evidence(store, a.id, a.taken_at, a.body_sha, a.page_sha),
        after=_evidence(store, b.id, b.taken_at, b.body_sha, b.page_sha),
        lines=head + c.diff,
        added=[i.to_dict() for i in c.added] + [m.new.to_dict() for m in c.replaced],
        removed=[i.to_dict() for i in c.removed] + [m.old.to_dict() for m in c.replaced],
        moved=[{"from": m.old.url, "to": m.new.url, "title": m.new.title} for m in c.moved],
    )


def _evidence(store: Store, sid: int, at: str, body: str | None, page: str) -> dict[str, Any]:
    return {
        "snapshot": sid,
        "taken_at": at,
        "body": str(store.blob_path(body)) if body else None,
        "page": str(store.blob_path(page)),
    }


def print_diff(d: Diff, console: Console) -> None:
    for side in (d.before, d.after):
        console.print(
            Text(f"snapshot {side['snapshot']} ({side['taken_at']}): body {side['body']}")
        )
    for line in d.lines:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else "bold"
        console.print(Text(line, style=style))
    for label, items in (("added", d.added), ("removed", d.removed)):
        for i in items:
            console.print(Text(f"{label}: {i['title']} <{i['url']}>"))
    for m in d.moved:
        console.print(Text(f"moved: {m['title']} <{m['from']}> → <{m['to']}>"))
    if len(d.lines) <= 2 and not (d.added or d.removed or d.moved):
        console.print("no differences in the main text or the items")


def _short(iso_text: str | None) -> str:
    if not iso_text:
        return "—"
    return iso_text.replace("T", " ")[:16]
