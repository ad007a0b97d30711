"""How a check run is shown: the ``--json`` document scripts rely on, and the terminal table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from watcher.check import CheckRun, TargetResult
from watcher.models import iso

_STATE_STYLE = {"ok": "green", "alert": "bold red", "error": "yellow"}


def report_json(run: CheckRun) -> dict[str, Any]:
    return {"checked_at": iso(run.checked_at), "targets": [_target(r) for r in run.results]}


def _target(r: TargetResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.target.id,
        "name": r.target.label,
        "url": r.target.url,
        "state": r.state,
        "outcome": r.outcome,
        "http_status": r.http_status,
        "items": r.items,
        "newest": (
            {
                "title": r.newest.title,
                "url": r.newest.url,
                "date": r.newest.date.isoformat() if r.newest.date else None,
            }
            if r.newest
            else None
        ),
        "events": [e.to_dict() for e in r.events],
        "firing": r.firing,
        "alerts": [
            {
                "id": a.id,
                "kind": a.kind,
                "subject": a.subject,
                "state": a.state,
                "streak": a.streak,
                "opened_at": a.opened_at,
                "fired_at": a.fired_at,
                "summary": a.summary,
            }
            for a in r.alerts
        ],
        "snapshot_id": r.snapshot_id,
    }
    if r.due is not None:
        out["due"] = r.due.to_dict()
    if r.muted_until and r.muted_until > r.checked_at.isoformat():
        out["muted_until"] = r.muted_until
    if r.final_url and r.final_url != r.target.url:
        out["final_url"] = r.final_url
    if r.error is not None:
        out["error"] = {"class": r.error.kind, "message": r.error.message}
    if r.verdict is not None:
        # Why this capture is not the page: gone (404, soft 404, redirect home) or unreadable.
        out["verdict"] = {
            "gone": r.verdict.gone,
            "reason": r.verdict.reason,
            "summary": r.verdict.summary,
        }
    return out


def print_table(run: CheckRun, console: Console) -> None:
    table = Table(title=f"watcher check · {iso(run.checked_at)}", title_justify="left")
    table.add_column("target")
    table.add_column("state")
    table.add_column("http", justify="right")
    table.add_column("items", justify="right")
    table.add_column("newest")
    table.add_column("what happened", overflow="fold")
    for r in run.results:
        newest = ""
        if r.newest is not None and r.newest.date is not None:
            newest = f"{r.newest.date.isoformat()} {r.newest.title[:40]}"
        table.add_row(
            r.target.id,
            Text(r.state, style=_STATE_STYLE.get(r.state, "")),
            str(r.http_status or "—"),
            str(r.items),
            Text(newest),
            Text(_what(r)),
        )
    console.print(table)


def _what(r: TargetResult) -> str:
    if r.events:
        return "\n".join(f"{e.kind}: {e.summary}" for e in r.events)
    return {
        "first": f"first capture ({r.items} item{'' if r.items == 1 else 's'})",
        "unchanged": "unchanged",
        "not_modified": "unchanged (304)",
        "new": "changed",
        "missing": r.verdict.summary if r.verdict else "missing",
        "error": str(r.error) if r.error else "error",
    }.get(r.outcome, r.outcome)
